/*
 * sysscan corpus: raw i386 syscalls (int $0x80, one sysenter) in a 32-bit
 * ELF.  Built twice: static with its own _start and no libc (-DOWN_START,
 * non-PIE) and as a glibc dynamic PIE.
 *
 * i386 numbers: exit 1, write 4, open 5, close 6, getpid 20,
 * exit_group 252.  The sysenter site is NEVER executed.
 */
#define SITE __attribute__((noipa, used))

static const char msg32[] = "sysscan corpus: i386\n";   /* 21 bytes */
static const char path32[] = "/etc/hostname";
volatile int g_nr32 = 20;

/* write(1, msg32, 21) */
SITE long s32_write(void)
{
    long r;
    asm volatile("int $0x80"
                 : "=a"(r)
                 : "a"(4), "b"(1), "c"(msg32), "d"(21)
                 : "memory");
    return r;
}

/* getpid via partial register write: xor eax,eax; mov $20,al */
SITE long s32_getpid_al(void)
{
    long r;
    asm volatile("xor %%eax, %%eax\n\t"
                 "mov $20, %%al\n\t"
                 "int $0x80"
                 : "=a"(r) : : "memory");
    return r;
}

/* getpid via lea: edx = 10; eax = edx + 10 */
SITE long s32_getpid_lea(void)
{
    long r;
    asm volatile("mov $10, %%edx\n\t"
                 "lea 10(%%edx), %%eax\n\t"
                 "int $0x80"
                 : "=a"(r) : : "edx", "memory");
    return r;
}

/* open("/etc/hostname", O_RDONLY) then close(fd): two sites */
SITE long s32_open_close(void)
{
    long fd;
    asm volatile("int $0x80"
                 : "=a"(fd)
                 : "a"(5), "b"(path32), "c"(0)
                 : "memory");
    if (fd >= 0) {
        long r;
        asm volatile("int $0x80" : "=a"(r) : "a"(6), "b"(fd) : "memory");
    }
    return fd >= 0 ? 0 : fd;
}

/* UNRESOLVED: number is a parameter (passed on the stack) */
SITE long s32_param(long n)
{
    long r;
    asm volatile("int $0x80" : "=a"(r) : "a"(n) : "memory");
    return r;
}

/* sysenter, i386 getpid.  NEVER CALLED. */
SITE long s32_sysenter_never_called(void)
{
    long r;
    asm volatile("mov $20, %%eax\n\t"
                 "sysenter"
                 : "=a"(r) : : "ecx", "edx", "memory");
    return r;
}

int main(void)
{
    s32_write();
    s32_getpid_al();
    s32_getpid_lea();
    s32_open_close();
    s32_param(g_nr32);
    return 0;
}

#ifdef OWN_START
/* _start: call main, then exit_group(main's return value) */
asm(".text\n"
    ".globl _start\n"
    ".type _start, @function\n"
    "_start:\n\t"
    "xor %ebp, %ebp\n\t"
    "and $-16, %esp\n\t"
    "call main\n\t"
    "mov %eax, %ebx\n\t"
    "mov $252, %eax\n\t"
    "int $0x80\n\t"
    "hlt\n\t"
    ".size _start, .-_start\n");
#endif
