/* sysscan corpus: a 32-bit dynamic program that calls libc's syscall() through
 * the PLT (issue 16: the number is resolved at the call, as in 64-bit ones).
 * Hand-written so that no 32-bit C toolchain is needed: linked with ld against
 * the i386 libc.so.6 (libc6:i386). Built twice: non-PIC (PLT: jmp *ADDR) and,
 * with -DPIC, as a PIE (PLT: jmp *disp(%ebx), %ebx = the GOT).
 *   syscall(SYS_getpid); syscall(SYS_exit_group, 0)   (i386: 20, 252) */
        .text
        .globl _start
_start:
#ifdef PIC
        call    1f
1:      pop     %ebx
        addl    $_GLOBAL_OFFSET_TABLE_+(.-1b), %ebx
#define CALL_SYSCALL call syscall@PLT
#else
#define CALL_SYSCALL call syscall
#endif
        push    $20
        CALL_SYSCALL
        add     $4, %esp
        push    $0
        push    $252
        CALL_SYSCALL
        hlt
        .section .note.GNU-stack,"",@progbits
