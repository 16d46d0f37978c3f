/*
 * sysscan rule corpus: NEGATIVE examples, x86-64 (glibc, dynamic, non-PIE).
 *
 * Raw syscalls that are the harmless neighbours of what the rules look for: the same syscalls with safe
 * arguments (mprotect without PROT_EXEC, clone without CLONE_NEW*, setuid to a non-root uid ...), and
 * memfd_create without any execveat. Every number is a constant in the table, every argument is in the
 * register the kernel reads, and there is no int 0x80. No shipped rule may report anything here except
 * `raw-syscall-in-application` (these are raw syscalls in application code, by design).
 *
 * main() calls none of the functions and returns 0.
 */
#define SITE __attribute__((noipa, used))
#define CLOB "rcx", "r11", "memory"

#define SYS6(nr, a, b, c, d, e, f) ({                                                   \
        long _ret;                                                                  \
        register long _r10 asm("r10") = (long)(d);                                  \
        register long _r8 asm("r8") = (long)(e);                                    \
        register long _r9 asm("r9") = (long)(f);                                    \
        asm volatile("syscall" : "=a"(_ret)                                         \
                     : "a"((long)(nr)), "D"((long)(a)), "S"((long)(b)), "d"((long)(c)), \
                       "r"(_r10), "r"(_r8), "r"(_r9) : CLOB);                        \
        _ret; })
#define SYS3(nr, a, b, c) ({                                                            \
        long _ret;                                                                  \
        asm volatile("syscall" : "=a"(_ret)                                         \
                     : "a"((long)(nr)), "D"((long)(a)), "S"((long)(b)), "d"((long)(c)) : CLOB); \
        _ret; })

static const char s_msg[] = "clean\n";
static const char s_name[] = "worker";
static const char s_memfd[] = "cache";
static char g_buf[64];

SITE long clean_write(void) { return SYS3(1, 1, s_msg, 6); }
SITE long clean_getpid(void) { return SYS3(39, 0, 0, 0); }
SITE long clean_mprotect_ro(void) { return SYS3(10, g_buf, 4096, 1); }                    /* PROT_READ */
SITE long clean_mprotect_rx(void) { return SYS3(10, g_buf, 4096, 5); }                    /* READ|EXEC, no WRITE */
SITE long clean_mmap_rw(void) { return SYS6(9, 0, 4096, 3, 0x22, -1, 0); }                /* READ|WRITE */
SITE long clean_clone_fork(void) { return SYS6(56, 17, 0, 0, 0, 0, 0); }                  /* SIGCHLD only */
SITE long clean_socket_inet(void) { return SYS3(41, 2, 1, 0); }                           /* AF_INET, STREAM */
SITE long clean_prctl_name(void) { return SYS6(157, 15, s_name, 0, 0, 0, 0); }            /* PR_SET_NAME */
SITE long clean_setuid_user(void) { return SYS3(105, 1000, 0, 0); }
SITE long clean_setresuid_user(void) { return SYS3(117, 1000, 1000, 1000); }
SITE long clean_memfd_only(void) { return SYS3(319, s_memfd, 1, 0); }                    /* no execveat anywhere */
SITE long clean_openat(void) { return SYS6(257, -100, s_name, 0, 0, 0, 0); }

int main(void)
{
    return 0;
}
