/* A tiny static x86-64 program whose symbol names, a section name and a string are hostile to whoever reads a
 * report: terminal markup (rich), ANSI/OSC escape sequences, HTML, Markdown, newlines, bidi overrides, bytes that
 * are not UTF-8. The compiler only sees placeholders (NAME_nn_...); patch.py writes the hostile bytes over them in
 * .strtab/.shstrtab afterwards (gas cannot spell an ESC byte in a symbol name). Built by build.sh; never run. */

#define SYS(nr, a0)                                                                                 \
    do {                                                                                            \
        long _r;                                                                                    \
        __asm__ volatile("syscall" : "=a"(_r) : "0"((long)(nr)), "D"((long)(a0)) : "rcx", "r11", "memory"); \
    } while (0)

#define HOSTILE(n, k)                                                                                \
    __attribute__((noinline, used)) void f##n(void) __asm__("NAME_" #n "_xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"); \
    void f##n(void) { SYS(39, k); }

HOSTILE(01, 1)
HOSTILE(02, 2)
HOSTILE(03, 3)
HOSTILE(04, 4)
HOSTILE(05, 5)
HOSTILE(06, 6)
HOSTILE(07, 7)
HOSTILE(08, 8)
HOSTILE(09, 9)
HOSTILE(10, 10)
HOSTILE(11, 11)

/* a path argument shown as a string in reports (printable, so it is shown: markup and HTML only) */
static const char path[] = "/tmp/[bold red]x[/bold red]<script>alert(1)</script>|`md`";

__attribute__((noinline, used, section(".SECTNAME_xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx")))
void in_weird_section(void) {
    long r;
    __asm__ volatile("syscall" : "=a"(r) : "0"(257L), "D"(-100L), "S"(path), "d"(0L) : "rcx", "r11", "memory");
}

__attribute__((noreturn)) void _start(void) {
    f01(); f02(); f03(); f04(); f05(); f06(); f07(); f08(); f09(); f10(); f11();
    in_weird_section();
    SYS(60, 0);
    for (;;) {}
}
