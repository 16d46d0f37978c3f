/* Compiled at -O0: every value is spilled to the stack and reloaded before
 * the syscall.  write(1, "o0 spill\n", 9) */
static const char msg_o0[] = "o0 spill\n";

long o0_spill_write(void)
{
    long nr = 1;
    long fd = 1;
    const char *buf = msg_o0;
    long len = 9;
    long r;
    asm volatile("syscall"
                 : "=a"(r)
                 : "a"(nr), "D"(fd), "S"(buf), "d"(len)
                 : "rcx", "r11", "memory");
    return r;
}
