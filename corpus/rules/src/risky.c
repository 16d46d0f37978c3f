/*
 * sysscan rule corpus: POSITIVE examples, x86-64 (glibc, dynamic, non-PIE).
 *
 * One raw `syscall` per function, each a pattern that a shipped rule in rules/ must report. Every function is
 * noipa + used, so it survives as its own symbol and each site appears exactly once, inside the named function.
 *
 * NEVER RUN THE RISKY FUNCTIONS: they would trace, load modules, reboot, ... main() calls none of them and
 * returns 0; the file only exists for static analysis. The expectations live in the rules' meta.examples.
 */
#define SITE __attribute__((noipa, used))
#define CLOB "rcx", "r11", "memory"

/* Raw syscall with 0..6 arguments in the kernel's registers: rdi, rsi, rdx, r10, r8, r9. */
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

static const char s_module[] = "evil_mod";
static const char s_dev[] = "/dev/sda1";
static const char s_mnt[] = "/mnt";
static const char s_fs[] = "ext4";
static const char s_newroot[] = "/newroot";
static const char s_oldroot[] = "/newroot/old";
static const char s_jail[] = "/jail";
static const char s_keytype[] = "user";
static const char s_keydesc[] = "sysscan:key";
static const char s_memfd[] = "payload";
static const char s_empty[] = "";
static char g_buf[64];

/* W^X: memory that is both writable and executable */
SITE long wx_mprotect(void) { return SYS3(10, g_buf, 4096, 7); }                 /* PROT_READ|WRITE|EXEC */
SITE long wx_mmap(void) { return SYS6(9, 0, 4096, 7, 0x22, -1, 0); }             /* rwx, MAP_PRIVATE|ANON */
SITE long wx_pkey_mprotect(void) { return SYS6(329, g_buf, 4096, 6, 0, 0, 0); }  /* WRITE|EXEC, pkey 0 */

/* process access */
SITE long ptrace_attach(void) { return SYS6(101, 16, 1234, 0, 0, 0, 0); }        /* PTRACE_ATTACH */
SITE long vm_readv(void) { return SYS6(310, 1234, g_buf, 1, g_buf, 1, 0); }
SITE long vm_writev(void) { return SYS6(311, 1234, g_buf, 1, g_buf, 1, 0); }

/* kernel modules, kexec */
SITE long mod_init(void) { return SYS3(175, g_buf, 64, s_empty); }
SITE long mod_finit(void) { return SYS3(313, 3, s_empty, 0); }
SITE long mod_delete(void) { return SYS3(176, s_module, 0, 0); }
SITE long kexec_load_raw(void) { return SYS6(246, 0x1000000, 1, g_buf, 0, 0, 0); }
SITE long kexec_file_load_raw(void) { return SYS6(320, 3, 4, 1, s_empty, 0, 0); }

/* kernel attack surface */
SITE long bpf_raw(void) { return SYS3(321, 5, g_buf, 64); }                      /* BPF_PROG_LOAD */
SITE long perf_open(void) { return SYS6(298, g_buf, 0, -1, -1, 0, 0); }
SITE long uffd(void) { return SYS3(323, 0x80000, 0, 0); }                      /* O_CLOEXEC */
SITE long uring_setup(void) { return SYS3(425, 8, g_buf, 0); }

/* keyring */
SITE long key_add(void) { return SYS6(248, s_keytype, s_keydesc, g_buf, 8, -2, 0); }  /* KEY_SPEC_PROCESS_KEYRING */
SITE long key_ctl(void) { return SYS6(250, 0, -2, 1, 0, 0, 0); }                     /* KEYCTL_GET_KEYRING_ID */

/* namespaces */
SITE long ns_unshare(void) { return SYS3(272, 0x10020000, 0, 0); }              /* CLONE_NEWUSER|CLONE_NEWNS */
SITE long ns_setns(void) { return SYS3(308, 3, 0x20000000, 0); }                /* CLONE_NEWPID */
SITE long ns_clone(void) { return SYS6(56, 0x20000000 | 17, 0, 0, 0, 0, 0); }   /* CLONE_NEWPID|SIGCHLD */

/* mounts and root changes */
SITE long do_mount(void) { return SYS6(165, s_dev, s_mnt, s_fs, 0, 0, 0); }
SITE long do_umount(void) { return SYS3(166, s_mnt, 2, 0); }                    /* MNT_DETACH */
SITE long do_pivot_root(void) { return SYS3(155, s_newroot, s_oldroot, 0); }
SITE long do_chroot(void) { return SYS3(161, s_jail, 0, 0); }

/* machine control */
SITE long do_reboot(void) { return SYS6(169, 0xfee1dead, 672274793, 0x4321fedc, 0, 0, 0); }  /* RESTART */
SITE long do_iopl(void) { return SYS3(172, 3, 0, 0); }
SITE long do_ioperm(void) { return SYS3(173, 0x378, 3, 1); }
SITE long do_modify_ldt(void) { return SYS3(154, 1, g_buf, 16); }

/* fileless execution: memfd_create + execveat(fd, "", argv, envp, AT_EMPTY_PATH) */
SITE long fileless_memfd(void) { return SYS3(319, s_memfd, 1, 0); }             /* MFD_CLOEXEC */
SITE long fileless_execveat(void) { return SYS6(322, 3, s_empty, 0, 0, 0x1000, 0); }

/* personality: ADDR_NO_RANDOMIZE turns ASLR off for the next exec */
SITE long persona(void) { return SYS3(135, 0x0040000, 0, 0); }

/* privilege changes to uid/gid 0 */
SITE long to_root_setuid(void) { return SYS3(105, 0, 0, 0); }
SITE long to_root_setresuid(void) { return SYS3(117, 0, 0, 0); }
SITE long to_root_setreuid(void) { return SYS3(113, -1, 0, 0); }
SITE long to_root_setgid(void) { return SYS3(106, 0, 0, 0); }

/* raw packet socket: socket(AF_PACKET, SOCK_RAW, htons(ETH_P_ALL)) */
SITE long raw_packet_socket(void) { return SYS3(41, 17, 3, 0x0300); }

/* prctl(PR_SET_PTRACER, PR_SET_PTRACER_ANY): any process may ptrace this one */
SITE long ptracer_any(void) { return SYS6(157, 0x59616d61, -1, 0, 0, 0, 0); }

/* a number that is a hole in the x86-64 table (335..423): -ENOSYS on every 6.1 kernel */
SITE long enosys_hole(void) { return SYS3(400, 0, 0, 0); }

/* the classic wrapper bug: the 4th argument (flags) put in rcx, where the C ABI has it, instead of r10, which
 * the kernel reads. `syscall` overwrites rcx with the return address, so flags never reach the kernel. */
SITE long rcx_instead_of_r10(void)
{
    long ret;
    long flags = 0x22;          /* MAP_PRIVATE|MAP_ANONYMOUS, meant for r10 */
    register long r8 asm("r8") = -1;
    register long r9 asm("r9") = 0;
    asm volatile("syscall"
                 : "=a"(ret), "+c"(flags)
                 : "a"(9L), "D"(0L), "S"(4096L), "d"(3L), "r"(r8), "r"(r9)
                 : "r11", "memory");
    return ret;
}

/* _sysctl (156) is still in the 6.1 syscall table, but the syscall was removed in 5.5: every 6.1 kernel sends it
 * to the "not implemented" stub. Only the kernel's own dispatcher (--vmlinux) knows; the table does not. */
SITE long enosys_on_kernel(void) { return SYS3(156, g_buf, 0, 0); }

int main(void)
{
    return 0;   /* never calls any of the above */
}
