/*
 * sysscan corpus: syscall numbers that are not constants where the site is.
 * Built static with glibc (bin/wrappers_glibc_static) and with musl
 * (bin/wrappers_musl_static).
 *
 *  - wrappers: the number is a parameter of the function holding the site,
 *    known only at its callers (raw1), through a chain of wrappers (w2 -> w1
 *    -> raw1, the inner calls are tail jumps at -O2), passed on the stack
 *    (stack7: 7th argument of the x86-64 SysV ABI), as a branch-free value
 *    set computed by the caller (pick: cmp/sbb/and/add);
 *  - libc's own generic wrapper syscall() called with several numbers;
 *  - values the local data flow cannot follow: a bounded index into a
 *    read-only table (table_pick), a variable index into a stack array
 *    (stack_pick), a number computed by a loop (loop_number), a number kept
 *    in a caller-saved register across a call (keep_across_call).
 *
 * Every function with a site is noipa (no inlining, cloning or
 * inter-procedural constant propagation) and `used`.  Everything executed
 * is harmless: getpid, getppid, getuid, getgid, gettid, write to stdout,
 * read of 0 bytes from stdin, close of a dup of stdout.
 *
 * x86-64 numbers: read 0, write 1, close 3, dup 32, getpid 39,
 * getuid 102, getgid 104, getppid 110, gettid 186.
 */
#define _GNU_SOURCE
#include <sys/syscall.h>
#include <unistd.h>

#define SITE __attribute__((noipa, used))
#define CLOB "rcx", "r11", "memory"

static const char msg[] = "sysscan corpus: wrappers\n";   /* 25 bytes */
static const char msg2[] = "syscall() write\n";           /* 16 bytes */

/* 1. the number is a parameter: mov %rdi,%rax (like glibc's syscall()) */
SITE long raw1(long n, long a)
{
    long r;
    asm volatile("syscall" : "=a"(r) : "a"(n), "D"(a) : CLOB);
    return r;
}

/* 2. wrapper of wrapper: w2 -> w1 -> raw1, the parameters change registers */
SITE long w1(long n, long a)
{
    return raw1(n, a);
}

SITE long w2(long a, long n)
{
    return w1(n, a);
}

/* 3. the number is the 7th argument: on the stack, at 8(%rsp) on entry */
SITE long stack7(long a1, long a2, long a3, long a4, long a5, long a6, long n)
{
    long r;
    (void)a2; (void)a3; (void)a4; (void)a5; (void)a6;
    asm volatile("syscall" : "=a"(r) : "a"(n), "D"(a1) : CLOB);
    return r;
}

/* 4. a value set computed by the caller without a branch (cmp; sbb; and; add) */
SITE long pick(int c)
{
    return raw1(c ? SYS_getuid : SYS_getgid, 0);
}

/* 5. a bounded index into a read-only table */
static const long table_nrs[3] = {SYS_getpid, SYS_getuid, SYS_getgid};

SITE long table_pick(unsigned i)
{
    long r;
    if (i > 2)
        i = 2;
    asm volatile("syscall" : "=a"(r) : "a"(table_nrs[i]) : CLOB);
    return r;
}

/* 6. a variable index into an array on the stack */
SITE long stack_pick(int c)
{
    volatile long nrs[2] = {SYS_getpid, SYS_getppid};
    long r;
    asm volatile("syscall" : "=a"(r) : "a"(nrs[c & 1]) : CLOB);
    return r;
}

/* 7. a number computed by a loop (13 + 13 + 13 = 39, getpid) */
SITE long loop_number(void)
{
    long n = 0, r;
    for (volatile int i = 0; i < 3; i++)
        n += 13;
    asm volatile("syscall" : "=a"(r) : "a"(n) : CLOB);
    return r;
}

/* 8. a value kept in a caller-saved register across a call: gcc's IPA-RA knows
 * that bump() only changes rax, so the number stays in rdx over the call */
volatile long sink;

static __attribute__((noinline)) long bump(long x)
{
    sink = x;
    return x + 1;
}

SITE long keep_across_call(long a, long c)
{
    long r, n = c ? SYS_getppid : SYS_getpid;
    long b = bump(a);
    asm volatile("syscall" : "=a"(r) : "a"(n), "D"(b) : CLOB);
    return r + bump(r);
}

int main(int argc, char **argv)
{
    char buf[1];
    int fd;

    (void)argv;
    raw1(SYS_getgid, 0);
    raw1(SYS_getpid, 0);
    w2(0, SYS_getppid);
    stack7(0, 0, 0, 0, 0, 0, SYS_gettid);
    pick(argc > 1);
    table_pick((unsigned)argc - 1);
    stack_pick(argc);
    loop_number();
    keep_across_call(0, argc > 1);
    syscall(SYS_getpid);
    syscall(SYS_getuid);
    syscall(SYS_write, 1, msg2, sizeof msg2 - 1);
    syscall(SYS_gettid);
    write(1, msg, sizeof msg - 1);
    if (read(0, buf, 0) < 0)
        buf[0] = 0;
    fd = dup(1);
    if (fd >= 0)
        close(fd);
    return 0;
}
