/* sysscan corpus: the other ways 32-bit code enters the kernel through the
 * vDSO entry (issue 16), hand-written, no libc, runnable:
 *   call *_dl_sysinfo       the pointer old static glibc kept (here it holds
 *                           our own __kernel_vsyscall, as a vDSO-less kernel
 *                           would leave it: _dl_sysinfo_int80)
 *   call __kernel_vsyscall  a direct call, as the kernel's own 32-bit vDSO
 *                           makes in its clock_gettime fallback
 *   __kernel_vsyscall       int $0x80; ret  (the number comes from callers)
 * write(1, msg, len) through the pointer, getpid() directly, then
 * exit_group(0) through the pointer. */
        .text
        .globl _start
        .type _start, @function
_start:
        mov     $4, %eax
        mov     $1, %ebx
        mov     $msg, %ecx
        mov     $len, %edx
        call    *_dl_sysinfo
        mov     $20, %eax
        call    __kernel_vsyscall
        mov     $252, %eax
        xor     %ebx, %ebx
        call    *_dl_sysinfo
        hlt
        .size _start, .-_start

        .globl __kernel_vsyscall
        .type __kernel_vsyscall, @function
__kernel_vsyscall:
        int     $0x80
        ret
        .size __kernel_vsyscall, .-__kernel_vsyscall

        .data
        .globl _dl_sysinfo
        .type _dl_sysinfo, @object
        .align 4
_dl_sysinfo:
        .long   __kernel_vsyscall
        .size _dl_sysinfo, 4

        .section .rodata
msg:    .asciz "sysscan corpus: i386 vdso forms\n"
        len = . - msg - 1
        .section .note.GNU-stack,"",@progbits
