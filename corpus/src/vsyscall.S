/* sysscan corpus: calls into the legacy x86-64 vsyscall page (issue 16).
 * The kernel emulates gettimeofday, time and getcpu at 0xffffffffff600000,
 * ...400 and ...800 (vsyscall=xonly/emulate; SIGSEGV with vsyscall=none).
 * Old glibc and old Go runtimes called them this way. Hand-written: no libc.
 *   site_time:  mov $0xffffffffff600400,%rax (imm32, sign-extended); call *%rax
 *   site_gtod:  movabs $0xffffffffff600000,%r11; call *%r11
 *   site_getcpu: mov $0xffffffffff600800,%rcx; a few instructions; call *%rcx
 *   decoy_store: the address stored to memory, never called: not a site
 * then exit_group(0) with a plain syscall. */
        .text
        .globl _start
        .type _start, @function
_start:
        call    site_time
        call    site_gtod
        call    site_getcpu
        call    decoy_store
        mov     $231, %eax
        xor     %edi, %edi
        syscall
        hlt
        .size _start, .-_start

        .type site_time, @function
site_time:
        xor     %edi, %edi
        mov     $0xffffffffff600400, %rax
        call    *%rax
        ret
        .size site_time, .-site_time

        .type site_gtod, @function
site_gtod:
        sub     $24, %rsp
        mov     %rsp, %rdi
        xor     %esi, %esi
        movabs  $0xffffffffff600000, %r11
        call    *%r11
        add     $24, %rsp
        ret
        .size site_gtod, .-site_gtod

        .type site_getcpu, @function
site_getcpu:
        sub     $24, %rsp
        mov     $0xffffffffff600800, %rcx
        mov     %rsp, %rdi
        lea     8(%rsp), %rsi
        xor     %edx, %edx
        call    *%rcx
        add     $24, %rsp
        ret
        .size site_getcpu, .-site_getcpu

        .type decoy_store, @function
decoy_store:
        mov     $0xffffffffff600400, %rax
        mov     %rax, slot(%rip)
        ret
        .size decoy_store, .-decoy_store

        .bss
        .align 8
slot:   .quad 0
        .section .note.GNU-stack,"",@progbits
