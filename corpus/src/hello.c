/* sysscan corpus: plain libc program, linked statically (glibc) for the
 * benchmark binaries.  No raw syscalls of its own; all sites are in libc. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

int main(int argc, char **argv)
{
    char buf[128];
    int fd;
    FILE *f;

    (void)argv;
    printf("hello from the sysscan corpus (%d arg%s)\n", argc, argc == 1 ? "" : "s");
    fd = open("/etc/hostname", O_RDONLY);
    if (fd >= 0) {
        ssize_t n = read(fd, buf, sizeof buf);
        (void)n;
        close(fd);
    }
    if (time(NULL) == (time_t)-1)
        puts("time failed");
    f = fopen("/proc/self/stat", "r");
    if (f) {
        if (!fgets(buf, sizeof buf, f))
            buf[0] = 0;
        fclose(f);
    }
    if (getpid() <= 0)
        puts("getpid failed");
    fflush(stdout);
    return 0;
}
