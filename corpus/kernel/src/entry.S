/* Entry points of the synthetic kernel, shaped like arch/x86/entry/entry_64.S and entry_64_compat.S. */
	.text
	.globl __fentry__
	.type __fentry__, @function
__fentry__:
	ret
	.size __fentry__, .-__fentry__

	/* 6.1+ names the first thunk of the array twice: the best name sorts as "..._array", not "..._rax" */
	.globl __x86_indirect_thunk_array
	.globl __x86_indirect_thunk_rax
	.type __x86_indirect_thunk_rax, @function
__x86_indirect_thunk_array:
__x86_indirect_thunk_rax:
	call 1f
2:	pause
	lfence
	jmp 2b
1:	mov %rax, (%rsp)
	ret
	.size __x86_indirect_thunk_rax, .-__x86_indirect_thunk_rax

	.globl entry_SYSCALL_64
	.type entry_SYSCALL_64, @function
entry_SYSCALL_64:
	swapgs
	mov %rsp, %gs:0x6014
	jmp 1f				/* PTI CR3 switch, patched out */
	mov %cr3, %rsp
	and $~0x1800, %rsp
	mov %rsp, %cr3
1:	mov %gs:0x1fb50, %rsp
	.globl entry_SYSCALL_64_after_hwframe
entry_SYSCALL_64_after_hwframe:
	push $0x2b
	push %rcx
	push %rax
	push %rdi
	push %rsi
	push %rdx
	push %rcx
	push $-38
	xor %esi, %esi
	xor %edx, %edx
	mov %rsp, %rdi
	movslq %eax, %rsi
	jmp 2f				/* IBRS_ENTER: writes MSR_IA32_SPEC_CTRL (0x48), skipped by an alternative */
	mov $0x48, %ecx
	mov %gs:0x1fb88, %rdx
	mov %edx, %eax
	shr $32, %rdx
	wrmsr
2:	.nops 16			/* UNTRAIN_RET / CLEAR_BRANCH_HISTORY padding */
	call do_syscall_64
	.nops 5
	pop %rax
	add $0x38, %rsp
	swapgs
	sysretq
	.size entry_SYSCALL_64, .-entry_SYSCALL_64

	.globl entry_SYSENTER_compat
	.type entry_SYSENTER_compat, @function
entry_SYSENTER_compat:
	swapgs
	mov %gs:0x6004, %rsp
	push $0x2b
	push %rbp
	push %rax
	mov %rsp, %rdi
	call do_SYSENTER_32
	add $24, %rsp
	swapgs
	iretq
	.size entry_SYSENTER_compat, .-entry_SYSENTER_compat

	.globl entry_SYSCALL_compat
	.type entry_SYSCALL_compat, @function
entry_SYSCALL_compat:
	swapgs
	mov %rsp, %gs:0x6014
	mov %gs:0x1fb50, %rsp
	push %rax
	mov %rsp, %rdi
	call do_fast_syscall_32
	pop %rax
	swapgs
	sysretl
	.size entry_SYSCALL_compat, .-entry_SYSCALL_compat

	.globl entry_INT80_compat
	.type entry_INT80_compat, @function
entry_INT80_compat:
	push %rax
	mov %rsp, %rdi
	call do_int80_syscall_32
	pop %rax
	iretq
	.size entry_INT80_compat, .-entry_INT80_compat

	.globl asm_exc_divide_error
	.type asm_exc_divide_error, @function
asm_exc_divide_error:
	iretq
	.size asm_exc_divide_error, .-asm_exc_divide_error

	.globl asm_exc_int3
	.type asm_exc_int3, @function
asm_exc_int3:
	iretq
	.size asm_exc_int3, .-asm_exc_int3

	.section .note.GNU-stack,"",@progbits
