/*
 * sysscan corpus: decoys.  Byte patterns 0f 05 (syscall), 0f 34 (sysenter)
 * and cd 80 (int $0x80) that are NOT syscall instructions.  The only real
 * site is the write(1, "decoys ok\n", 10) in real_write().
 *
 * Kinds of decoys:
 *   immediate     - pattern inside an instruction's immediate operand
 *   displacement  - pattern inside a memory displacement
 *   straddle      - last byte of one instruction + first byte of the next
 *   data_in_code  - raw bytes in .text that are jumped over / never reached;
 *                   objdump's linear sweep DOES decode these as instructions,
 *                   so they inflate objdump's count (a recursive-descent
 *                   disassembler does not reach them).
 */
#define SITE __attribute__((noipa, used))

static const char msg_ok[] = "decoys ok\n";

SITE long real_write(void)
{
    long r;
    asm volatile("syscall"
                 : "=a"(r)
                 : "a"(1L), "D"(1L), "S"(msg_ok), "d"(10L)
                 : "rcx", "r11", "memory");
    return r;
}

/* immediates and a displacement */
SITE long decoy_immediates(long x)
{
    long a, c, d;
    asm volatile("mov $0x9090050f, %%eax\n\t"      /* b8 0f 05 90 90 */
                 "mov $0x909080cd, %%ecx\n\t"      /* b9 cd 80 90 90 */
                 "mov $0x9090340f, %%edx\n\t"      /* ba 0f 34 90 90 */
                 "lea 0x50f(%%rax), %%rax\n\t"     /* 48 8d 80 0f 05 00 00 */
                 "movabs $0x340f80cd050f, %%rdx\n\t" /* 48 ba 0f 05 cd 80 0f 34 00 00 */
                 : "=&a"(a), "=&c"(c), "=&d"(d) : : );
    return a + c + d + x;
}

/* pattern straddling two instructions: mov ends with 0f, add starts with 05 */
SITE long decoy_straddle(void)
{
    long a;
    asm volatile("mov $0x0f000000, %%eax\n\t"      /* b8 00 00 00 0f */
                 "add $0x90909090, %%eax\n\t"      /* 05 90 90 90 90 */
                 : "=a"(a));
    return a;
}

/* data bytes jumped over: never executed, but linear sweep decodes them */
SITE long decoy_jump_over(void)
{
    long a;
    asm volatile("xor %%eax, %%eax\n\t"
                 "jmp 1f\n\t"
                 ".byte 0x0f, 0x05\n"                 /* "syscall" */
                 "1:\n\t"
                 "jmp 2f\n\t"
                 ".byte 0xcd, 0x80\n"                 /* "int $0x80" */
                 "2:\n\t"
                 "jmp 3f\n\t"
                 ".byte 0x0f, 0x34\n"                 /* "sysenter" */
                 "3:\n\t"
                 : "=a"(a));
    return a;
}

/* a data table placed in .text after a ret (never executed) */
asm(".text\n"
    ".globl decoy_table_in_text\n"
    ".type decoy_table_in_text, @function\n"
    "decoy_table_in_text:\n\t"
    "xor %eax, %eax\n\t"
    "ret\n\t"
    ".byte 0x0f, 0x05, 0xcd, 0x80, 0x0f, 0x34\n\t"
    ".size decoy_table_in_text, .-decoy_table_in_text\n");
long decoy_table_in_text(void);

int main(void)
{
    long s = decoy_immediates(1) + decoy_straddle() + decoy_jump_over()
             + decoy_table_in_text();
    (void)s;
    real_write();
    return 0;
}
