/* Hand-written x86-64 stack spill / reload idioms. */
    .text

/* getgid (104): number stored to a stack slot, reloaded into rax */
    .globl asm_spill_reload
    .type asm_spill_reload, @function
asm_spill_reload:
    push %rbp
    mov %rsp, %rbp
    sub $16, %rsp
    movq $104, -8(%rbp)
    movq $0, -16(%rbp)
    mov -8(%rbp), %rax
    mov -16(%rbp), %rdi
    syscall
    leave
    ret
    .size asm_spill_reload, .-asm_spill_reload

/* getppid (110): push imm / pop rax */
    .globl asm_push_pop
    .type asm_push_pop, @function
asm_push_pop:
    push $110
    pop %rax
    syscall
    ret
    .size asm_push_pop, .-asm_push_pop

    .section .note.GNU-stack, "", @progbits
