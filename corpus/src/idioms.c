/*
 * sysscan corpus: raw syscall idioms for x86-64 (built for glibc dynamic
 * PIE / non-PIE / stripped, glibc static and musl static).
 *
 * Every function containing a raw site is noipa (no inlining, no cloning,
 * no interprocedural constant propagation) and `used`, so each site appears
 * exactly once in the final binary, inside the named function.
 *
 * All syscalls executed at run time are harmless (write to stdout, read of
 * 0 bytes, get*id, openat read-only + close, anonymous mmap + munmap).
 * The sysenter site is never executed (SIGILL on AMD / unsupported from
 * 64-bit mode), it only exists for static analysis.
 *
 * x86-64 numbers: read 0, write 1, close 3, mmap 9, munmap 11, getpid 39,
 * getuid 102, getgid 104, geteuid 107, getegid 108, getppid 110,
 * openat 257.  i386 numbers: getpid 20, getpriority 96.
 */
#define SITE __attribute__((noipa, used))
#define CLOB "rcx", "r11", "memory"

static const char msg_hello[] = "sysscan corpus: idioms\n";   /* 23 bytes */
static const char path_hostname[] = "/etc/hostname";
/* read-only syscall number, loaded rip-relative from .rodata */
static const long k_nr_getppid __attribute__((used)) = 110;
/* writable syscall number: must stay UNRESOLVED */
volatile int g_nr = 39;

/* 1. mov $imm,%eax (32-bit write zero-extends): write(1, msg_hello, 23) */
SITE long site_mov_imm_write(void)
{
    long r;
    asm volatile("mov $1, %%eax\n\t"
                 "mov $1, %%edi\n\t"
                 "mov $23, %%edx\n\t"
                 "syscall"
                 : "=a"(r)
                 : "S"(msg_hello)
                 : "rdi", "rdx", CLOB);
    return r;
}

/* 2. xor %eax,%eax -> read(0, buf, 0) */
SITE long site_xor_read(void)
{
    char buf[16];
    long r;
    asm volatile("xor %%eax, %%eax\n\t"
                 "xor %%edi, %%edi\n\t"
                 "xor %%edx, %%edx\n\t"
                 "syscall"
                 : "=a"(r)
                 : "S"(buf)
                 : "rdi", "rdx", CLOB);
    return r;
}

/* 3a. lea with displacement: rcx = 0; eax = rcx + 0x27 = 39 getpid */
SITE long site_lea_disp(void)
{
    long r;
    asm volatile("xor %%ecx, %%ecx\n\t"
                 "lea 0x27(%%rcx), %%eax\n\t"
                 "syscall"
                 : "=a"(r) : : CLOB);
    return r;
}

/* 3b. lea with base+index*scale+disp: 50 + 50*1 + 2 = 102 getuid */
SITE long site_lea_scaled(void)
{
    long r;
    asm volatile("mov $50, %%edx\n\t"
                 "lea 2(%%rdx,%%rdx,1), %%eax\n\t"
                 "syscall"
                 : "=a"(r) : : "rdx", CLOB);
    return r;
}

/* 4a. and: 0xff6e & 0xff = 0x6e = 110 getppid */
SITE long site_and(void)
{
    long r;
    asm volatile("mov $0xff6e, %%eax\n\t"
                 "and $0xff, %%eax\n\t"
                 "syscall"
                 : "=a"(r) : : CLOB);
    return r;
}

/* 4b. or: 0x60 | 0x6 = 0x66 = 102 getuid */
SITE long site_or(void)
{
    long r;
    asm volatile("mov $0x60, %%eax\n\t"
                 "or $0x6, %%eax\n\t"
                 "syscall"
                 : "=a"(r) : : CLOB);
    return r;
}

/* 4c. add: 100 + 4 = 104 getgid */
SITE long site_add(void)
{
    long r;
    asm volatile("mov $100, %%eax\n\t"
                 "add $4, %%eax\n\t"
                 "syscall"
                 : "=a"(r) : : CLOB);
    return r;
}

/* 4d. sub: 200 - 93 = 107 geteuid */
SITE long site_sub(void)
{
    long r;
    asm volatile("mov $200, %%eax\n\t"
                 "sub $93, %%eax\n\t"
                 "syscall"
                 : "=a"(r) : : CLOB);
    return r;
}

/* 4e. chain: ((0x3ff & 0x7f) - 20) | 1 = 107 | 1 = 107; + 1 = 108 getegid */
SITE long site_alu_chain(void)
{
    long r;
    asm volatile("mov $0x3ff, %%eax\n\t"
                 "and $0x7f, %%eax\n\t"
                 "sub $20, %%eax\n\t"
                 "or $1, %%eax\n\t"
                 "add $1, %%eax\n\t"
                 "syscall"
                 : "=a"(r) : : CLOB);
    return r;
}

/* 5. rip-relative load of the number from .rodata: 110 getppid */
SITE long site_rodata_number(void)
{
    long r;
    asm volatile("mov %1, %%rax\n\t"
                 "syscall"
                 : "=a"(r) : "m"(k_nr_getppid) : CLOB);
    return r;
}

/* 6. openat(AT_FDCWD, "/etc/hostname", O_RDONLY, 0) -- 4 args, r10 used;
 *    then close(fd) -- two sites in one function. Args set up by the
 *    compiler (register variables), pointer to a .rodata string. */
SITE long site_openat_close(void)
{
    long fd;
    {
        register long r10 asm("r10") = 0;
        asm volatile("syscall"
                     : "=a"(fd)
                     : "a"(257L), "D"(-100L), "S"(path_hostname), "d"(0L), "r"(r10)
                     : CLOB);
    }
    if (fd >= 0) {
        long r;
        asm volatile("syscall" : "=a"(r) : "a"(3L), "D"(fd) : CLOB);
    }
    return fd >= 0 ? 0 : fd;
}

/* 7. mmap(NULL, 4096, PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS, -1, 0)
 *    (flags 0x22 in r10, fd -1 in r8, offset 0 in r9), then munmap(p, 4096). */
SITE long site_mmap_munmap(void)
{
    long p;
    {
        register long r10 asm("r10") = 0x22;
        register long r8 asm("r8") = -1;
        register long r9 asm("r9") = 0;
        asm volatile("syscall"
                     : "=a"(p)
                     : "a"(9L), "D"(0L), "S"(4096L), "d"(3L), "r"(r10), "r"(r8), "r"(r9)
                     : CLOB);
    }
    if ((unsigned long)p < (unsigned long)-4095L) {
        long r;
        asm volatile("syscall" : "=a"(r) : "a"(11L), "D"(p), "S"(4096L) : CLOB);
    }
    return 0;
}

/* 8a. number differs by branch, plain C with a side effect in each arm so
 *     the compiler keeps two real arms: c ? 39 : 102 (getpid / getuid) */
volatile int g_side;
SITE long site_branch_c(int c)
{
    long n, r;
    if (c) {
        g_side = 1;
        n = 39;
    } else {
        g_side = 7;
        n = 102;
    }
    asm volatile("syscall" : "=a"(r) : "a"(n) : CLOB);
    return r;
}

/* 8b. number selected by the compiler with cmov: a > b ? 39 : 102 */
SITE long site_branch_cmov(long a, long b)
{
    long r;
    long n = a > b ? 39 : 102;
    asm volatile("syscall" : "=a"(r) : "a"(n) : CLOB);
    return r;
}

/* 8c. number computed branch-free by the compiler (cmp/sbb/and/add):
 *     c ? 39 : 102 -- harder case, ground truth is still {39, 102} */
SITE long site_branch_sbb(int c)
{
    long r;
    long n = c ? 39 : 102;
    asm volatile("syscall" : "=a"(r) : "a"(n) : CLOB);
    return r;
}

/* 8d. number differs by branch, explicit jumps in asm: c ? 39 : 102 */
SITE long site_branch_jump(int c)
{
    long r;
    asm volatile("test %k1, %k1\n\t"
                 "jz 1f\n\t"
                 "mov $39, %%eax\n\t"
                 "jmp 2f\n"
                 "1:\n\t"
                 "mov $102, %%eax\n"
                 "2:\n\t"
                 "syscall"
                 : "=&a"(r) : "r"(c) : CLOB);
    return r;
}

/* 9. int $0x80 in a 64-bit binary, i386 ABI: eax = 20 (i386 getpid) */
SITE long site_int80_getpid(void)
{
    long r;
    asm volatile("mov $20, %%eax\n\t"
                 "int $0x80"
                 : "=a"(r) : : "memory");
    return r;
}

/* 9b. int $0x80 with i386 args: getpriority(PRIO_PROCESS=0 in ebx, 0 in ecx),
 *     i386 number 96 */
SITE long site_int80_getpriority(void)
{
    long r;
    asm volatile("mov $96, %%eax\n\t"
                 "xor %%ebx, %%ebx\n\t"
                 "xor %%ecx, %%ecx\n\t"
                 "int $0x80"
                 : "=a"(r) : : "rbx", "rcx", "memory");
    return r;
}

/* 10. sysenter in a 64-bit binary, i386 ABI: eax = 20 (getpid), ebx = 0.
 *     NEVER CALLED. */
SITE long site_sysenter_never_called(void)
{
    long r;
    asm volatile("mov $20, %%eax\n\t"
                 "xor %%ebx, %%ebx\n\t"
                 "sysenter"
                 : "=a"(r) : : "rbx", "rcx", "rdx", "memory");
    return r;
}

/* 11. site in its own executable section (.rawsys, not merged into .text):
 *     getpid */
__attribute__((noipa, used, section(".rawsys")))
long rawsys_getpid(void)
{
    long r;
    asm volatile("mov $39, %%eax\n\t"
                 "syscall"
                 : "=a"(r) : : CLOB);
    return r;
}

/* 12. decoys: syscall opcode bytes inside immediates / displacements.
 *     This function never executes a syscall. */
SITE long decoy_immediates(long x)
{
    long a, c, d;
    asm volatile("mov $0x9090050f, %%eax\n\t"      /* b8 0f 05 90 90 */
                 "mov $0x909080cd, %%ecx\n\t"      /* b9 cd 80 90 90 */
                 "mov $0x9090340f, %%edx\n\t"      /* ba 0f 34 90 90 */
                 "lea 0x50f(%%rax), %%rax\n\t"     /* 48 8d 80 0f 05 00 00 */
                 : "=&a"(a), "=&c"(c), "=&d"(d) : : );
    return a + c + d + x;
}

/* 13a. UNRESOLVED: number is a function parameter */
SITE long my_syscall(long n, long a)
{
    long r;
    asm volatile("syscall" : "=a"(r) : "a"(n), "D"(a) : CLOB);
    return r;
}

/* 13b. UNRESOLVED: number loaded from a writable global */
SITE long site_writable_global(void)
{
    long r;
    asm volatile("syscall" : "=a"(r) : "a"((long)g_nr) : CLOB);
    return r;
}

/* defined in idioms_o0.c (compiled at -O0) and idioms_asm.S */
long o0_spill_write(void);
long asm_spill_reload(void);
long asm_push_pop(void);

int main(int argc, char **argv)
{
    (void)argv;
    site_mov_imm_write();
    site_xor_read();
    site_lea_disp();
    site_lea_scaled();
    site_and();
    site_or();
    site_add();
    site_sub();
    site_alu_chain();
    site_rodata_number();
    site_openat_close();
    site_mmap_munmap();
    site_branch_c(argc > 1);
    site_branch_cmov(argc, 1);
    site_branch_sbb(argc > 1);
    site_branch_jump(argc > 1);
    site_int80_getpid();
    site_int80_getpriority();
    rawsys_getpid();
    decoy_immediates(argc);
    my_syscall(g_nr, 0);
    site_writable_global();
    o0_spill_write();
    asm_spill_reload();
    asm_push_pop();
    return 0;
}
