/*
 * sysscan rule corpus: POSITIVE examples for the i386 ABI (int $0x80), a 32-bit ELF with no libc and its own
 * _start. The rules match by syscall name, so the same rules fire here with the i386 numbers and registers
 * (ebx, ecx, edx, esi, edi, ebp). _start only calls exit_group(0); the other functions are never run.
 *
 * i386 numbers: ptrace 26, mprotect 125, mmap2 192, setuid32 213, unshare 310, exit_group 252.
 */
#define SITE __attribute__((noipa, used))

static char g_buf[64];

SITE long i386_ptrace_attach(void)
{
    long r;
    asm volatile("int $0x80" : "=a"(r) : "a"(26), "b"(16), "c"(1234), "d"(0), "S"(0) : "memory");
    return r;
}

SITE long i386_wx_mprotect(void)
{
    long r;
    asm volatile("int $0x80" : "=a"(r) : "a"(125), "b"(g_buf), "c"(4096), "d"(7) : "memory");
    return r;
}

SITE long i386_setuid32_root(void)
{
    long r;
    asm volatile("int $0x80" : "=a"(r) : "a"(213), "b"(0) : "memory");
    return r;
}

SITE long i386_unshare_user(void)
{
    long r;
    asm volatile("int $0x80" : "=a"(r) : "a"(310), "b"(0x10000000) : "memory");
    return r;
}

__attribute__((noreturn, used)) void _start(void)
{
    asm volatile("int $0x80" : : "a"(252), "b"(0) : "memory");
    __builtin_unreachable();
}
