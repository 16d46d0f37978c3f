/* A tiny synthetic "vmlinux" for sysscan's kernel tests: the shapes of Linux's x86-64 syscall path, nothing
 * else. Built by ../build.sh in four variants:
 *   DISPATCH_SWITCH  do_syscall_64 -> x64_sys_call(regs, nr): a compare tree (-fno-jump-tables), like 6.9+
 *                    (and Debian's 6.1); also ia32_sys_call and x32_sys_call; the old tables still exist.
 *   DISPATCH_TABLE   the old form: sys_call_table[nr](regs) through a retpoline thunk (x86-64) and a plain
 *                    `call *ia32_sys_call_table(,%rax,8)` (ia32); no x32.
 *   (switch built with -fjump-tables: the jump-table form)
 *   HOOKED           the switch form whose stored sys_call_table has one entry replaced.
 * MSRs are written both ways the kernel does: LSTAR with a literal wrmsr, CSTAR and SYSENTER_EIP through
 * paravirt pv_ops slots (value low in esi, high in edx).
 */
#include "syscalls.h"

#define MSR_IA32_SPEC_CTRL 0x48
#define MSR_IA32_SYSENTER_CS 0x174
#define MSR_IA32_SYSENTER_ESP 0x175
#define MSR_IA32_SYSENTER_EIP 0x176
#define MSR_STAR 0xc0000081
#define MSR_LSTAR 0xc0000082
#define MSR_CSTAR 0xc0000083
#define MSR_SYSCALL_MASK 0xc0000084
#define ENOSYS 38
#define X32_BIT 0x40000000

struct pt_regs {
	unsigned long r15, r14, r13, r12, bp, bx, r11, r10, r9, r8, ax, cx, dx, si, di, orig_ax, ip, cs, flags, sp, ss;
};
typedef long (*sys_call_ptr_t)(const struct pt_regs *);
struct syscall_metadata {
	const char *name;
	int syscall_nr;
	int nb_args;
	const char **types;
	const char **args;
	void *enter_fields[2];
	void *enter_event, *exit_event;
};

const char linux_banner[] = "Linux version 6.1.0-sysscan-synthetic (sysscan corpus) (gcc) #1 SMP PREEMPT\n";
volatile long sink;
unsigned long saved_lstar;

/* ---- implementations and handlers ------------------------------------------------------------------------ */
#define IMPL(name, k) \
	__attribute__((noinline)) long ksys_##name(long a, long b, long c) { sink = a * (k) + b; return c ^ (k); }
IMPLS(IMPL)

__attribute__((noinline, noreturn)) void do_exit(long code) { sink = code; for (;;) __asm__ volatile("hlt"); }
__attribute__((noinline, noreturn)) void do_group_exit(long code) { sink = ~code; for (;;) __asm__ volatile("hlt"); }

/* handlers live in other compilation units in a real kernel: never inline them into the dispatchers */
#define HANDLER __attribute__((noipa))
HANDLER long sys_ni_syscall(void) { return -ENOSYS; }
HANDLER long __x64_sys_ni_syscall(const struct pt_regs *regs) { return -ENOSYS; }
long __ia32_sys_ni_syscall(const struct pt_regs *regs) __attribute__((alias("__x64_sys_ni_syscall")));

#define X64_HANDLER(name) \
	HANDLER long __x64_sys_##name(const struct pt_regs *regs) { return ksys_##name(regs->di, regs->si, regs->dx); }
X64_HANDLERS(X64_HANDLER)
HANDLER __attribute__((noreturn)) long __x64_sys_exit(const struct pt_regs *regs) { do_exit(regs->di); }
HANDLER __attribute__((noreturn)) long __x64_sys_exit_group(const struct pt_regs *regs) { do_group_exit(regs->di); }
/* COND_SYSCALL: not configured, a weak stub */
HANDLER __attribute__((weak)) long __x64_sys_lookup_dcookie(const struct pt_regs *regs) { return sys_ni_syscall(); }

#define IA32_HANDLER(name) \
	HANDLER long __ia32_sys_##name(const struct pt_regs *regs) \
	{ return ksys_##name((unsigned int)regs->bx, (unsigned int)regs->cx, (unsigned int)regs->dx); }
IA32_HANDLERS(IA32_HANDLER)
HANDLER __attribute__((noreturn)) long __ia32_sys_exit(const struct pt_regs *regs) { do_exit((int)regs->bx); }
HANDLER __attribute__((noreturn)) long __ia32_sys_exit_group(const struct pt_regs *regs) { do_group_exit((int)regs->bx); }
#define IA32_COMPAT_HANDLER(name) \
	__attribute__((noinline)) long __ia32_compat_sys_##name(const struct pt_regs *regs) \
	{ sink = regs->bx + __LINE__; return (long)regs->cx - __LINE__; }
IA32_COMPAT(IA32_COMPAT_HANDLER)
#define X32_COMPAT_HANDLER(name) \
	__attribute__((noinline)) long __x32_compat_sys_##name(const struct pt_regs *regs) \
	{ sink = regs->di + __LINE__; return (long)regs->si - __LINE__; }
X32_COMPAT(X32_COMPAT_HANDLER)
__attribute__((noinline)) long evil_getpid(const struct pt_regs *regs) { sink = 0x1337; return 1; }

SYSCALL_METADATA

/* ---- stored tables ---------------------------------------------------------------------------------------- */
#define TABLE_ENTRY(nr, sym) [nr] = sym,
const sys_call_ptr_t sys_call_table[NR_X64] = {
	[0 ... NR_X64 - 1] = __x64_sys_ni_syscall,
	X64_CASES(TABLE_ENTRY)
#ifdef HOOKED
	[HOOKED_NR] = evil_getpid,
#endif
};
const sys_call_ptr_t ia32_sys_call_table[NR_IA32] = {
	[0 ... NR_IA32 - 1] = __ia32_sys_ni_syscall,
	IA32_CASES(TABLE_ENTRY)
};
#ifdef DISPATCH_SWITCH
const sys_call_ptr_t x32_sys_call_table[NR_X32] = {
	[0 ... NR_X32 - 1] = __x64_sys_ni_syscall,
	X32_CASES(TABLE_ENTRY)
};
#endif

/* ---- the dispatchers ---------------------------------------------------------------------------------------- */
static inline unsigned long array_index_mask_nospec(unsigned long index, unsigned long size)
{
	unsigned long mask;
	__asm__ volatile("cmp %1,%2; sbb %0,%0;" : "=r"(mask) : "g"(size), "r"(index));
	return mask;
}
#define array_index_nospec(index, size) ((index) & array_index_mask_nospec((index), (size)))

__attribute__((noinline)) long syscall_enter_from_user_mode(struct pt_regs *regs, long nr) { sink = nr; return nr; }
__attribute__((noinline)) void syscall_exit_to_user_mode(struct pt_regs *regs) { sink = regs->ax; }

#ifdef DISPATCH_SWITCH
#define CASE(nr, sym) case nr: return sym(regs);
long x64_sys_call(const struct pt_regs *regs, unsigned int nr)
{
	switch (nr) {
	X64_CASES(CASE)
	default: return __x64_sys_ni_syscall(regs);
	}
}
long ia32_sys_call(const struct pt_regs *regs, unsigned int nr)
{
	switch (nr) {
	IA32_CASES(CASE)
	default: return __ia32_sys_ni_syscall(regs);
	}
}
long x32_sys_call(const struct pt_regs *regs, unsigned int nr)
{
	switch (nr) {
	X32_CASES(CASE)
	default: return __x64_sys_ni_syscall(regs);
	}
}
#define DISPATCH_X64(regs, nr) x64_sys_call(regs, nr)
#define DISPATCH_IA32(regs, nr) ia32_sys_call(regs, nr)
#else
#define DISPATCH_X64(regs, nr) sys_call_table[nr](regs)
#define DISPATCH_IA32(regs, nr) ia32_sys_call_table[nr](regs)
#endif

__attribute__((noinline)) void do_syscall_64(struct pt_regs *regs, int nr)
{
	nr = syscall_enter_from_user_mode(regs, nr);
	unsigned int unr = nr;
	if (__builtin_expect(unr < NR_X64, 1)) {
		unr = array_index_nospec(unr, NR_X64);
		regs->ax = DISPATCH_X64(regs, unr);
	}
#ifdef DISPATCH_SWITCH
	else if ((unsigned int)(nr - X32_BIT) < NR_X32) {
		unsigned int xnr = nr - X32_BIT;
		xnr = array_index_nospec(xnr, NR_X32);
		regs->ax = x32_sys_call(regs, xnr);
	}
#endif
	else if (nr != -1) {
		regs->ax = -ENOSYS;
	}
	syscall_exit_to_user_mode(regs);
}

#ifndef DISPATCH_SWITCH
__attribute__((indirect_branch("keep")))
#endif
static __attribute__((noinline)) void do_syscall_32_irqs_on(struct pt_regs *regs, int nr)
{
	unsigned int unr = nr;
	if (__builtin_expect(unr < NR_IA32, 1)) {
		unr = array_index_nospec(unr, NR_IA32);
		regs->ax = DISPATCH_IA32(regs, unr);
	} else if (nr != -1) {
		regs->ax = -ENOSYS;
	}
}

__attribute__((noinline)) long __do_fast_syscall_32(struct pt_regs *regs)
{
	int nr = syscall_enter_from_user_mode(regs, (int)regs->orig_ax);
	do_syscall_32_irqs_on(regs, nr);
	syscall_exit_to_user_mode(regs);
	return 1;
}
__attribute__((noinline)) long do_fast_syscall_32(struct pt_regs *regs) { return __do_fast_syscall_32(regs) + 1; }
long do_SYSENTER_32(struct pt_regs *regs) { return do_fast_syscall_32(regs); }
void do_int80_syscall_32(struct pt_regs *regs)
{
	int nr = syscall_enter_from_user_mode(regs, (int)regs->orig_ax);
	do_syscall_32_irqs_on(regs, nr);
	syscall_exit_to_user_mode(regs);
}

/* ---- MSR writes: literal wrmsr and the paravirt form ---------------------------------------------------------- */
void entry_SYSCALL_64(void);
void entry_SYSCALL_compat(void);
void entry_SYSENTER_compat(void);

__attribute__((noinline)) void native_write_msr(unsigned int msr, unsigned int low, unsigned int high)
{
	__asm__ volatile("wrmsr" : : "c"(msr), "a"(low), "d"(high) : "memory");
}
__attribute__((noinline)) int native_write_msr_safe(unsigned int msr, unsigned int low, unsigned int high)
{
	__asm__ volatile("wrmsr" : : "c"(msr), "a"(low), "d"(high) : "memory");
	return 0;
}
struct pv_cpu_ops {
	void *other[24];
	void (*write_msr)(unsigned int msr, unsigned int low, unsigned int high); /* pv_ops+0xc0 */
	void *read_msr_safe;
	int (*write_msr_safe)(unsigned int msr, unsigned int low, unsigned int high); /* pv_ops+0xd0 */
};
struct paravirt_patch_template {
	struct pv_cpu_ops cpu;
} pv_ops = { .cpu = { .write_msr = native_write_msr, .write_msr_safe = native_write_msr_safe } };

static inline void wrmsrl_literal(unsigned int msr, unsigned long val)
{
	__asm__ volatile("wrmsr" : : "c"(msr), "a"((unsigned int)val), "d"((unsigned int)(val >> 32)) : "memory");
}
static inline void wrmsrl_pv(unsigned int msr, unsigned long val)
{
	pv_ops.cpu.write_msr(msr, (unsigned int)val, val >> 32);
}
static inline void wrmsrl_safe_pv(unsigned int msr, unsigned long val)
{
	pv_ops.cpu.write_msr_safe(msr, (unsigned int)val, val >> 32);
}
extern unsigned char cpu_has_ia32;

void syscall_init(void)
{
	wrmsrl_pv(MSR_STAR, 0x0023001000000000UL);
	wrmsrl_literal(MSR_LSTAR, (unsigned long)entry_SYSCALL_64);
	if (cpu_has_ia32) {
		wrmsrl_pv(MSR_CSTAR, (unsigned long)entry_SYSCALL_compat);
		wrmsrl_safe_pv(MSR_IA32_SYSENTER_CS, 0x10);
		wrmsrl_safe_pv(MSR_IA32_SYSENTER_EIP, (unsigned long)entry_SYSENTER_compat);
	}
	wrmsrl_pv(MSR_SYSCALL_MASK, 0x257fd5);
}
/* a decoy: restores a saved LSTAR (a value from writable memory: not a constant, must not become an entry) */
void restore_lstar(void) { wrmsrl_literal(MSR_LSTAR, saved_lstar); }
unsigned char cpu_has_ia32 = 1;

/* ---- the IDT: struct idt_data records in init data --------------------------------------------------------- */
struct idt_data {
	unsigned int vector;
	unsigned int segment;
	unsigned short bits;
	const void *addr;
};
void asm_exc_divide_error(void);
void asm_exc_int3(void);
void entry_INT80_compat(void);
__attribute__((section(".init.data"), used)) static const struct idt_data def_idts[] = {
	{ 0, 0x10, 0x8e00, asm_exc_divide_error },
	{ 3, 0x10, 0xee00, asm_exc_int3 },
	{ 0x80, 0x10, 0xee00, entry_INT80_compat },
};
