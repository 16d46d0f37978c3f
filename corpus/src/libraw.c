/*
 * sysscan corpus: a shared object (-fPIC -shared) with raw syscall sites in
 * exported functions.  Never executed by the corpus itself.
 */
#define SITE __attribute__((noipa, used, visibility("default")))
#define CLOB "rcx", "r11", "memory"

static const char raw_msg[] = "libraw\n";   /* 7 bytes */

/* write(1, "libraw\n", 7) */
SITE long raw_write_msg(void)
{
    long r;
    asm volatile("syscall"
                 : "=a"(r)
                 : "a"(1L), "D"(1L), "S"(raw_msg), "d"(7L)
                 : CLOB);
    return r;
}

/* getpid */
SITE long raw_getpid(void)
{
    long r;
    asm volatile("mov $39, %%eax\n\tsyscall" : "=a"(r) : : CLOB);
    return r;
}

/* openat(AT_FDCWD, path, O_RDONLY, 0): path is a parameter */
SITE long raw_openat_ro(const char *path)
{
    long r;
    register long r10 asm("r10") = 0;
    asm volatile("syscall"
                 : "=a"(r)
                 : "a"(257L), "D"(-100L), "S"(path), "d"(0L), "r"(r10)
                 : CLOB);
    return r;
}

/* UNRESOLVED: number is a parameter */
SITE long raw_syscall1(long n, long a)
{
    long r;
    asm volatile("syscall" : "=a"(r) : "a"(n), "D"(a) : CLOB);
    return r;
}
