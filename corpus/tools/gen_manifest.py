#!/usr/bin/env python3
"""Generate and verify corpus/manifest.json.

The ground truth comes from two independent places, never from sysscan:

  * the hand-written site table below (syscall numbers / argument values,
    read off the C and assembly sources in corpus/src and, for the few libc
    sites, off the objdump listing by hand);
  * GNU binutils (objdump -d -w, readelf) for addresses, sections, counts,
    symbols, ELF properties and byte-pattern decoys.

The script fails loudly if the two disagree (a listed function does not
contain exactly the listed number of sites, a site has the wrong
instruction, a decoy is not where it should be, an ELF property is not the
declared one, ...).  If capstone is importable, every function is also
re-disassembled with capstone as a cross-check of objdump's site list.

Usage:  python3 corpus/tools/gen_manifest.py [--check]
  --check  only verify that corpus/manifest.json is up to date.
"""
import json
import os
import re
import subprocess
import sys

CORPUS = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OBJDUMP_CMD = ["objdump", "-d", "-w"]
SITE_RE = re.compile(r"^(syscall|sysenter|int\s+\$0x80)$")
PATTERNS = {b"\x0f\x05": "syscall", b"\x0f\x34": "sysenter", b"\xcd\x80": "int 0x80"}


# --------------------------------------------------------------------------
# syscall names, from the kernel UAPI headers (independent of sysscan)
def load_unistd(path):
    names = {}
    with open(path) as fh:
        for line in fh:
            m = re.match(r"#define __NR_(\w+)\s+(\d+)\s*$", line)
            if m:
                names[int(m.group(2))] = m.group(1)
    return names


NAMES = {
    "x86_64": load_unistd("/usr/include/x86_64-linux-gnu/asm/unistd_64.h"),
    "i386": load_unistd("/usr/include/x86_64-linux-gnu/asm/unistd_32.h"),
}


# --------------------------------------------------------------------------
# hand-written ground truth
def S(function, number, idx=0, insn="syscall", abi=None, args=None,
      strings=None, reason=None, section=".text", note=None, optional=False,
      hard=None, callers=None):
    if abi is None:
        abi = "x86_64" if insn == "syscall" else "i386"
    if not isinstance(number, (list, type(None))):
        number = [number]
    return dict(function=function, idx=idx, instruction=insn, abi=abi,
                number=number, args=args or {}, strings=strings or {},
                reason=reason, section=section, note=note, optional=optional,
                hard=hard, callers=callers)


def W(function, number_includes, callers=None, note=None):
    """A wrapper site whose number is a parameter with too many callers to
    list exactly: the numbers the program's source certainly passes to it
    (sysscan must report at least these), and how many direct call/jmp
    instructions objdump shows to the function."""
    return dict(function=function, number_includes=sorted(number_includes),
                callers=callers, note=note)


# sites of src/idioms.c + src/idioms_o0.c + src/idioms_asm.S (x86-64)
IDIOMS_SITES = [
    S("site_mov_imm_write", 1, args={"rdi": [1], "rdx": [23]},
      strings={"rsi": "sysscan corpus: idioms\n"}),
    S("site_xor_read", 0, args={"rdi": [0], "rdx": [0]}),
    S("site_lea_disp", 39),
    S("site_lea_scaled", 102),
    S("site_and", 110),
    S("site_or", 102),
    S("site_add", 104),
    S("site_sub", 107),
    S("site_alu_chain", 108),
    S("site_rodata_number", 110, note="number loaded rip-relative from .rodata (static const long)"),
    S("site_openat_close", 257, idx=0,
      args={"rdi": [-100], "rdx": [0], "r10": [0]},
      strings={"rsi": "/etc/hostname"}),
    S("site_openat_close", 3, idx=1, note="rdi is the fd returned by openat"),
    S("site_mmap_munmap", 9, idx=0,
      args={"rdi": [0], "rsi": [4096], "rdx": [3], "r10": [0x22], "r8": [-1], "r9": [0]}),
    S("site_mmap_munmap", 11, idx=1, args={"rsi": [4096]}),
    S("site_branch_c", [39, 102], note="two arms, one mov each"),
    S("site_branch_cmov", [39, 102], note="cmov"),
    S("site_branch_sbb", [39, 102],
      note="compiler computes cmp/sbb/and $0x3f/add $0x27 (0 or -1 -> 39 or 102)",
      hard="number: needs cmp/sbb carry-flag modelling"),
    S("site_branch_jump", [39, 102], note="explicit jz/jmp in asm"),
    S("site_int80_getpid", 20, insn="int 0x80"),
    S("site_int80_getpriority", 96, insn="int 0x80", args={"ebx": [0], "ecx": [0]}),
    S("site_sysenter_never_called", 20, insn="sysenter", args={"ebx": [0]},
      note="never executed"),
    S("rawsys_getpid", 39, section=".rawsys"),
    S("my_syscall", None, reason="parameter"),
    S("site_writable_global", None, reason="writable"),
    S("o0_spill_write", 1, args={"rdi": [1], "rdx": [9]}, strings={"rsi": "o0 spill\n"},
      note="-O0: every value spilled to the stack and reloaded"),
    S("asm_spill_reload", 104, args={"rdi": [0]}, note="stored to -8(%rbp), reloaded"),
    S("asm_push_pop", 110, note="push $110; pop %rax"),
]
IDIOMS_DECOY_FUNCS = {"decoy_immediates": "inside_instruction"}

# a few glibc 2.36 x86-64 sites, read by hand off objdump (static binaries)
GLIBC64_SITES = [
    S("__getpid", 39),
    S("_exit", 60, idx=0, args={}, note="eax copied from edx=0x3c set before the loop"),
    S("_exit", 231, idx=1, note="eax copied from esi=0xe7 set at entry"),
    S("__libc_write", 1, idx=0),
    S("__libc_write", 1, idx=1),
    S("__close", 3, idx=0),
    S("__close", 3, idx=1),
    S("__libc_read", 0, idx=0, note="xor %eax,%eax"),
    S("__libc_read", 0, idx=1, note="xor %eax,%eax"),
    S("__libc_openat64", 257, idx=0, optional=True),
    S("__libc_openat64", 257, idx=1, optional=True),
    S("__brk", 12),
    S("__mmap64", 9),
    S("__munmap", 11),
    S("__mprotect", 10),
    S("__restore_rt", 15, note="mov $0xf,%rax (64-bit mov)"),
    S("time", 201, optional=True),
]

# musl 1.2.3 x86-64 static sites (idioms_musl_static), all of them
MUSL64_SITES = [
    S("__init_libc", 7, idx=0, args={"rsi": [3], "rdx": [0]}, note="poll"),
    S("__init_libc", 2, idx=1, args={"rsi": [0x8002]}, strings={"rdi": "/dev/null"},
      note="open in a loop, eax copied from r9=2"),
    S("__init_tp", 218),
    S("__init_tls", 9, idx=0,
      args={"rdi": [0], "rdx": [3], "r10": [0x22], "r8": [-1], "r9": [0]}),
    S("__init_tls", 218, idx=1, note="__init_tp inlined"),
    S("_Exit", 231, idx=0),
    S("_Exit", 60, idx=1, note="loop, eax copied from rdx=0x3c"),
    S("__set_thread_area", 158, args={"rdi": [0x1002]}, note="arch_prctl(ARCH_SET_FS)"),
]

# src/decoys.c
DECOYS_SITES = [
    S("real_write", 1, args={"rdi": [1], "rdx": [10]}, strings={"rsi": "decoys ok\n"}),
]
DECOYS_DECOY_FUNCS = {
    "decoy_immediates": "inside_instruction",
    "decoy_straddle": "straddle",
    "decoy_jump_over": "data_in_code",
    "decoy_table_in_text": "data_in_code",
}

# src/libraw.c
LIBRAW_SITES = [
    S("raw_write_msg", 1, args={"rdi": [1], "rdx": [7]}, strings={"rsi": "libraw\n"}),
    S("raw_getpid", 39),
    S("raw_openat_ro", 257, args={"rdi": [-100], "rdx": [0], "r10": [0]}),
    S("raw_syscall1", None, reason="parameter"),
]

# src/i386_raw.c (i386 ABI, 32-bit ELF)
I386_SITES = [
    S("s32_write", 4, insn="int 0x80", args={"ebx": [1], "edx": [21]},
      strings={"ecx": "sysscan corpus: i386\n"}),
    S("s32_getpid_al", 20, insn="int 0x80", note="xor %eax,%eax; mov $20,%al"),
    S("s32_getpid_lea", 20, insn="int 0x80", note="lea 10(%edx),%eax"),
    S("s32_open_close", 5, idx=0, insn="int 0x80", args={"ecx": [0]},
      strings={"ebx": "/etc/hostname"}),
    S("s32_open_close", 6, idx=1, insn="int 0x80", note="ebx is the fd returned by open"),
    S("s32_param", None, insn="int 0x80", reason="parameter",
      note="number loaded from the stack argument slot 4(%esp)"),
    S("s32_sysenter_never_called", 20, insn="sysenter", note="never executed"),
]
I386_PIE_SITES = [
    dict(st, hard="strings: pointer = __x86.get_pc_thunk.* return address + GOT offset - k")
    if st["strings"] else st for st in I386_SITES]
I386_START_SITES = [
    S("_start", 252, insn="int 0x80", note="exit_group(main's return value)"),
]

# musl 1.2.3 i386 static (i386_musl_static, hello.c): musl enters through the same TCB slot as glibc
MUSL32_SITES = [
    S("getpid", 20, insn="call *%gs:0x10"),
    S("_Exit", 252, idx=0, insn="call *%gs:0x10", note="exit_group; ebx swapped in from edx around the call"),
    S("_Exit", 1, idx=1, insn="call *%gs:0x10", note="exit, looping after exit_group"),
    S("__stdio_write", 146, insn="call *%gs:0x10", note="writev"),
    S("__stdout_write", 54, insn="call *%gs:0x10", args={"ecx": [0x5413]}, note="ioctl(1, TIOCGWINSZ)"),
]

# src/vsyscall.S: calls into the legacy x86-64 vsyscall page (the number is the address called)
VSYSCALL_SITES = [
    S("_start", 231, args={"rdi": [0]}, note="exit_group(0)"),
    S("site_time", 201, insn="vsyscall", abi="x86_64", args={"rdi": [0]},
      note="mov $0xffffffffff600400,%rax; call *%rax: time(NULL)"),
    S("site_gtod", 96, insn="vsyscall", abi="x86_64", args={"rsi": [0]},
      note="movabs $0xffffffffff600000,%r11; call *%r11: gettimeofday(tv, NULL)"),
    S("site_getcpu", 309, insn="vsyscall", abi="x86_64", args={"rdx": [0]},
      note="the address loaded four instructions before the call *%rcx: getcpu(&cpu, &node, NULL)"),
]

# src/i386_vdso_forms.S: call *_dl_sysinfo and a direct call to the program's own __kernel_vsyscall (whose int $0x80
# takes its number from those callers: not listed, tests/test_i386_entry.py checks it)
I386_VDSO_FORMS_SITES = [
    S("_start", 4, idx=0, insn="call *_dl_sysinfo", args={"ebx": [1], "edx": [32]},
      strings={"ecx": "sysscan corpus: i386 vdso forms\n"}),
    S("_start", 20, idx=1, insn="call __kernel_vsyscall"),
    S("_start", 252, idx=2, insn="call *_dl_sysinfo", args={"ebx": [0]}),
]

# glibc 2.36 i386 static: call *%gs:0x10 sites of the syscalls hello's run makes (strace: write, getpid, exit_group)
GLIBC32_VDSO_SITES = [
    S("__libc_write", 4, idx=0, insn="call *%gs:0x10", note="write, no cancellation"),
    S("__libc_write", 4, idx=1, insn="call *%gs:0x10", note="write between async-cancel enable/disable"),
    S("__getpid", 20, insn="call *%gs:0x10"),
    S("_exit", 1, idx=0, insn="call *%gs:0x10", note="exit: eax copied from edx=1, after exit_group returned"),
    S("_exit", 252, idx=1, insn="call *%gs:0x10", note="exit_group: eax copied from ecx=0xfc"),
]

# glibc 2.36 i386 static (i386_glibc_static): every int $0x80 site
GLIBC32_SITES = [
    S("__libc_start_call_main", 1, insn="int 0x80", args={"ebx": [0]},
      note="eax copied from edx=1"),
    S("__libc_setup_tls", 243, idx=0, insn="int 0x80", note="set_thread_area"),
    S("__libc_setup_tls", 4, idx=1, insn="int 0x80", args={"ebx": [2], "edx": [0x3c]}),
    S("__libc_setup_tls", 252, idx=2, insn="int 0x80", args={"ebx": [0x7f]}),
    S("__libc_setup_tls", 4, idx=3, insn="int 0x80", args={"ebx": [2], "edx": [0x2d]}),
    S("__libc_setup_tls", 252, idx=4, insn="int 0x80", args={"ebx": [0x7f]}),
    S("__brk", 45, insn="int 0x80"),
    S("__tunables_init", 33, insn="int 0x80", args={"ecx": [0]}, note="access"),
    S("_dl_early_allocate", 45, idx=0, insn="int 0x80", args={"ebx": [0]},
      note="eax copied from ecx=0x2d"),
    S("_dl_early_allocate", 45, idx=1, insn="int 0x80", note="eax copied from ecx=0x2d"),
    S("_dl_sysinfo_int80", None, insn="int 0x80",
      note="bare 'int $0x80; ret' stub: number set by the caller"),
    S("__restore_rt", 173, insn="int 0x80"),
    S("__restore", 119, insn="int 0x80"),
    S("__libc_do_syscall_int80", 192, insn="int 0x80",
      note="generic syscall helper: eax set by its only direct caller, _dl_early_allocate "
           "(mov $0xc0,%eax; call __libc_do_syscall_int80): mmap2",
      hard="number: inter-procedural (the number is the caller's eax)"),
]


# src/wrappers.c (x86-64): numbers that are parameters (resolved at the
# callers), a bounded table index, a stack array index, a loop.
# `callers` = direct call/jmp instructions objdump shows to the function.
WRAPPERS_SITES = [
    S("raw1", [39, 102, 104, 110], callers=4,
      note="number in rdi: main calls raw1(SYS_getgid) and raw1(SYS_getpid); w2(0, SYS_getppid) -> w1 -> raw1 "
           "(tail jumps); pick() tail-jumps with {getuid, getgid}",
      hard="number: inter-procedural (callers, a chain of two wrappers, a caller's cmp/sbb value set)"),
    S("stack7", 186, callers=1, note="7th argument: push $0xba before the call, mov 0x8(%rsp),%rax",
      hard="number: the caller's stack slot"),
    S("table_pick", [39, 102, 104], note="table_nrs[min(i, 2)] in .rodata",
      hard="number: bounded index into a read-only table"),
    S("stack_pick", [39, 110], note="nrs[c & 1], nrs on the stack",
      hard="number: variable index into a stack array"),
    S("loop_number", 39, note="13 added three times by a loop",
      hard="number: computed by a loop"),
    S("keep_across_call", [39, 110], note="cmp/sbb before call bump; and/add after it: rdx survives the call",
      hard="number: kept in a caller-saved register (rdx) across a call to a function that does not touch it"),
]
# libc's syscall() in those binaries: called only by main, four times
WRAPPERS_LIBC_SYSCALL = [
    S("syscall", [1, 39, 102, 186], callers=4,
      note="libc's syscall(): main calls it with SYS_getpid, SYS_getuid, SYS_write, SYS_gettid",
      hard="number: inter-procedural (libc's generic wrapper, number in rdi)"),
]
# musl 1.2.3 sites in bin/wrappers_musl_static, all of them
MUSL64_WRAPPERS_SITES = [
    S("__init_libc", 7, idx=0, args={"rsi": [3], "rdx": [0]}, note="poll"),
    S("__init_libc", 2, idx=1, args={"rsi": [0x8002]}, strings={"rdi": "/dev/null"}),
    S("__init_tp", 218),
    S("static_init_tls", 9, idx=0, args={"rdi": [0], "rdx": [3], "r10": [0x22], "r8": [-1], "r9": [0]}),
    S("static_init_tls", 218, idx=1),
    S("_Exit", 231, idx=0),
    S("_Exit", 60, idx=1),
    S("__set_thread_area", 158, args={"rdi": [0x1002]}),
    S("dup", 32),
    S("sccp", [0, 1, 3], callers=1,
      note="musl's cancellation-point syscall: read/write/close call __syscall_cp(SYS_x, ...), which tail-jumps "
           "to __syscall_cp_c (= sccp without pthread_cancel)",
      hard="number: inter-procedural (read/write/close -> __syscall_cp -> sccp)"),
]

# src/gohello (Go 1.19.8): the runtime's assembly functions, numbers read off
# go/src/runtime/sys_linux_amd64.s and time_linux_amd64.s; names as in the
# unstripped twin (ABI0 functions carry the .abi0 suffix)
GO_SITES = [
    S("runtime.exit.abi0", 231), S("runtime.exitThread.abi0", 60), S("runtime.open.abi0", 257),
    S("runtime.closefd.abi0", 3), S("runtime.write1.abi0", 1), S("runtime.read.abi0", 0),
    S("runtime.pipe2.abi0", 293), S("runtime.usleep.abi0", 35), S("runtime.gettid.abi0", 186),
    S("runtime.raise.abi0", 39, idx=0), S("runtime.raise.abi0", 186, idx=1), S("runtime.raise.abi0", 234, idx=2),
    S("runtime.raiseproc.abi0", 39, idx=0), S("runtime.raiseproc.abi0", 62, idx=1),
    S("runtime.getpid.abi0", 39), S("runtime.tgkill.abi0", 234), S("runtime.timer_create.abi0", 222),
    S("runtime.timer_settime.abi0", 223), S("runtime.timer_delete.abi0", 226), S("runtime.mincore.abi0", 27),
    S("runtime.nanotime1.abi0", 228), S("runtime.rtsigprocmask.abi0", 14), S("runtime.rt_sigaction.abi0", 13),
    S("runtime.sigreturn.abi0", 15), S("runtime.sysMmap.abi0", 9), S("runtime.sysMunmap.abi0", 11),
    S("runtime.madvise.abi0", 28), S("runtime.futex.abi0", 202),
    S("runtime.clone.abi0", 56, idx=0), S("runtime.clone.abi0", 186, idx=1), S("runtime.clone.abi0", 60, idx=2),
    S("runtime.sigaltstack.abi0", 131), S("runtime.settls.abi0", 158), S("runtime.osyield.abi0", 24),
    S("runtime.sched_getaffinity.abi0", 204), S("runtime.epollcreate.abi0", 213),
    S("runtime.epollcreate1.abi0", 291), S("runtime.epollctl.abi0", 233), S("runtime.epollwait.abi0", 281),
    S("runtime.closeonexec.abi0", 72),
    S("time.now", 228, idx=0, note="vDSO fallback"), S("time.now", 228, idx=1, note="vDSO fallback"),
    S("syscall.rawSyscallNoError.abi0", 102, callers=1,
      note="ABI0 assembly (stack ABI): MOVQ trap+0(FP), AX; its only caller is syscall.Getuid, inlined in main.main",
      hard="number: inter-procedural, stack ABI (the caller's stack slot)"),
]
GO_WRAPPERS = [
    W("runtime/internal/syscall.Syscall6",
      [0, 1, 3, 5, 39, 110, 140, 257],
      note="register ABI (number in AX): main.main passes SYS_GETPID (Syscall), SYS_GETPPID (RawSyscall), "
           "SYS_GETPRIORITY (Syscall6); os.ReadFile makes openat, fstat, read, close; fmt.Println writes"),
]


# dynamic binaries: calls to libc's syscall() through the PLT, in the order
# they appear in main (src/wrappers.c)
WRAPPERS_PIE_LIBC_CALLS = [("main", "syscall", [39]), ("main", "syscall", [102]),
                           ("main", "syscall", [1]), ("main", "syscall", [186])]


def B(file, sources, arch, props, sites, decoy_funcs=None, twin=None,
      complete=True, note=None, wrappers=None, libcalls=None, unnamed=None):
    """unnamed: {address: why} of sites in no symbol at all (hand-written
    code behind a local label), which cannot be listed by function."""
    return dict(file=file, sources=sources, arch=arch, properties=props,
                sites=sites, decoy_funcs=decoy_funcs or {}, twin=twin,
                complete=complete, note=note, wrappers=wrappers or [],
                libcalls=libcalls or [], unnamed=unnamed or {})


def P(pie, static, stripped, libc, shared_object=False):
    return {"pie": pie, "static": static, "stripped": stripped, "libc": libc,
            "shared_object": shared_object}


IDIOMS_SRC = ["src/idioms.c", "src/idioms_o0.c", "src/idioms_asm.S"]
BINARIES = [
    B("bin/idioms_pie", IDIOMS_SRC, "x86_64", P(True, False, False, "glibc"),
      IDIOMS_SITES, IDIOMS_DECOY_FUNCS),
    B("bin/idioms_pie_stripped", IDIOMS_SRC, "x86_64", P(True, False, True, "glibc"),
      IDIOMS_SITES, IDIOMS_DECOY_FUNCS, twin="bin/idioms_pie",
      note="strip --strip-all of bin/idioms_pie; addresses identical"),
    B("bin/idioms_nopie", IDIOMS_SRC, "x86_64", P(False, False, False, "glibc"),
      IDIOMS_SITES, IDIOMS_DECOY_FUNCS),
    B("bin/idioms_glibc_static", IDIOMS_SRC, "x86_64", P(False, True, False, "glibc"),
      IDIOMS_SITES + [dict(s, optional=True) for s in GLIBC64_SITES], IDIOMS_DECOY_FUNCS, complete=False),
    B("bin/idioms_musl_static", IDIOMS_SRC, "x86_64", P(False, True, False, "musl"),
      IDIOMS_SITES + MUSL64_SITES, IDIOMS_DECOY_FUNCS),
    B("bin/decoys", ["src/decoys.c"], "x86_64", P(True, False, False, "glibc"),
      DECOYS_SITES, DECOYS_DECOY_FUNCS),
    B("bin/libraw.so", ["src/libraw.c"], "x86_64", P(False, False, False, "glibc", True),
      LIBRAW_SITES),
    B("bin/hello_static", ["src/hello.c"], "x86_64", P(False, True, False, "glibc"),
      GLIBC64_SITES, complete=False,
      note="benchmark: plain glibc static program, all sites are in libc"),
    B("bin/hello_static_stripped", ["src/hello.c"], "x86_64", P(False, True, True, "glibc"),
      GLIBC64_SITES, twin="bin/hello_static", complete=False,
      note="benchmark: strip --strip-all of bin/hello_static; addresses identical"),
    B("bin/i386_raw", ["src/i386_raw.c"], "i386", P(False, True, False, "none"),
      I386_SITES + I386_START_SITES),
    B("bin/i386_pie", ["src/i386_raw.c"], "i386", P(True, False, False, "glibc"),
      I386_PIE_SITES,
      note="PIC: pointer arguments are computed from __x86.get_pc_thunk.* + GOT offset"),
    B("bin/i386_glibc_static", ["src/hello.c"], "i386", P(False, True, False, "glibc"),
      GLIBC32_SITES + GLIBC32_VDSO_SITES, complete=False,
      note="every int $0x80 site listed; of the call *%gs:0x10 (vDSO) sites, the ones hello's run makes"),
    B("bin/i386_musl_static", ["src/hello.c"], "i386", P(False, True, False, "musl"),
      MUSL32_SITES, complete=False,
      unnamed={"0x804958e": "musl's src/internal/i386/defsysinfo.s: `1: int $128; ret`, the default __sysinfo "
                            "target; reached only through the pointer, so its number is any caller's"},
      note="musl 1.2.3 (Debian musl-dev:i386): call *%gs:0x10 like glibc; the sites hello's run makes"),
    B("bin/i386_vdso_forms", ["src/i386_vdso_forms.S"], "i386", P(False, True, False, "none"),
      I386_VDSO_FORMS_SITES, complete=False,
      note="the int $0x80 inside __kernel_vsyscall is partial (callers through the pointer): not listed"),
    B("bin/i386_syscall_dyn", ["src/i386_syscall_dyn.S"], "i386", P(False, False, False, "glibc"), [],
      note="no site of its own: syscall(SYS_getpid) and syscall(SYS_exit_group, 0) through the PLT"),
    B("bin/i386_syscall_pie", ["src/i386_syscall_dyn.S"], "i386", P(True, False, False, "glibc"), [],
      note="the same as a PIE: the PLT jumps through disp(%ebx)"),
    B("bin/vsyscall", ["src/vsyscall.S"], "x86_64", P(False, True, False, "none"),
      VSYSCALL_SITES, note="decoy_store loads the vsyscall address but stores it: not a site"),
    B("bin/wrappers_glibc_static", ["src/wrappers.c"], "x86_64", P(False, True, False, "glibc"),
      WRAPPERS_SITES + WRAPPERS_LIBC_SYSCALL + [dict(s, optional=True) for s in GLIBC64_SITES], complete=False,
      note="numbers that are parameters (wrappers, chains, stack argument, caller value sets), a table, a "
           "stack array, a loop; plus glibc's syscall()"),
    B("bin/wrappers_musl_static", ["src/wrappers.c"], "x86_64", P(False, True, False, "musl"),
      WRAPPERS_SITES + WRAPPERS_LIBC_SYSCALL + MUSL64_WRAPPERS_SITES,
      note="the same program with musl: syscall() and the __syscall_cp cancellation-point wrapper"),
    B("bin/wrappers_pie", ["src/wrappers.c"], "x86_64", P(True, False, False, "glibc"),
      WRAPPERS_SITES, libcalls=WRAPPERS_PIE_LIBC_CALLS,
      note="dynamic: syscall() is in libc.so.6, called through the PLT (see wrapper_calls)"),
    B("bin/wrappers_musl_nofde", ["src/wrappers.c"], "x86_64", P(False, True, False, "musl"),
      WRAPPERS_SITES + WRAPPERS_LIBC_SYSCALL + MUSL64_WRAPPERS_SITES,
      note="built with -fno-asynchronous-unwind-tables -fno-unwind-tables: no FDEs"),
    B("bin/wrappers_musl_nofde_stripped", ["src/wrappers.c"], "x86_64", P(False, True, True, "musl"),
      WRAPPERS_SITES + WRAPPERS_LIBC_SYSCALL + MUSL64_WRAPPERS_SITES, twin="bin/wrappers_musl_nofde",
      note="strip --strip-all of bin/wrappers_musl_nofde: no symbols and no FDEs, only the entry point is known; "
           "callers are found by disassembly"),
    B("bin/go_hello", ["src/gohello/main.go", "src/gohello/go.mod"], "x86_64", P(False, True, False, "none"),
      GO_SITES, complete=False, wrappers=GO_WRAPPERS,
      note="Go 1.19.8, no cgo; every site is listed but the register-ABI wrapper Syscall6 (see wrapper_sites)"),
    B("bin/go_hello_stripped", ["src/gohello/main.go", "src/gohello/go.mod"], "x86_64",
      P(False, True, True, "none"), GO_SITES, twin="bin/go_hello", complete=False, wrappers=GO_WRAPPERS,
      note="the same, built with -ldflags=-s -w (no .symtab, no DWARF); Go keeps its pclntab"),
]


# --------------------------------------------------------------------------
# binutils helpers
def run(cmd):
    return subprocess.run(cmd, check=True, capture_output=True, text=True).stdout


def objdump(path):
    """-> list of insns (addr, bytes, text, section, objdump_label)"""
    insns = []
    section = label = None
    for line in run(OBJDUMP_CMD + [path]).splitlines():
        m = re.match(r"^Disassembly of section (\S+):$", line)
        if m:
            section = m.group(1)
            continue
        m = re.match(r"^([0-9a-f]+) <(.*)>:$", line)
        if m:
            label = m.group(2)
            continue
        m = re.match(r"^\s*([0-9a-f]+):\t([0-9a-f ]+?)\s*(?:\t(.*))?$", line)
        if m:
            full = m.group(3) or ""
            text = re.sub(r"\s+", " ", full.split("#")[0].strip())
            insns.append(dict(addr=int(m.group(1), 16),
                              bytes=bytes.fromhex(m.group(2).replace(" ", "")),
                              text=text, full=full, section=section, label=label))
    return insns


VSYSCALL_ADDRS = {0xffffffffff600000: 96, 0xffffffffff600400: 201, 0xffffffffff600800: 309}


def mark_kinds(insns, path):
    """Set each instruction's "kind": the kernel-entering instructions by their text, plus the calls that enter
    through code the kernel maps (issue 16): `call *ADDR` where ADDR is the _dl_sysinfo / __sysinfo data symbol,
    `call <__kernel_vsyscall>`, and `call *%reg` after `mov $0xffffffffff600X00,%reg` (the vsyscall page)."""
    sysinfo = set()
    for line in run(["readelf", "-sW", path]).splitlines():
        parts = line.split()
        if len(parts) >= 8 and parts[3] == "OBJECT" and parts[7] in ("_dl_sysinfo", "__sysinfo"):
            sysinfo.add(int(parts[1], 16))
    loaded = {}  # register -> (vsyscall address, instructions since)
    for i in insns:
        t = i["text"]
        i["kind"] = insn_kind(t)
        m = re.match(r"call \*0x([0-9a-f]+)$", t)
        if m and int(m.group(1), 16) in sysinfo:
            i["kind"] = "call *_dl_sysinfo"
        if re.match(r"call [0-9a-f]+ <__kernel_vsyscall>$", t):
            i["kind"] = "call __kernel_vsyscall"
        m = re.match(r"call \*%(\w+)$", t)
        if m and m.group(1) in loaded:
            i["kind"] = "vsyscall"
            i["vsyscall_nr"] = VSYSCALL_ADDRS[loaded[m.group(1)]]
        m = re.match(r"mov(?:abs)?q? \$0x([0-9a-f]+),%(\w+)$", t)
        if m and int(m.group(1), 16) in VSYSCALL_ADDRS:
            loaded[m.group(2)] = int(m.group(1), 16)
        elif t.startswith(("j", "call", "ret")):
            loaded = {}
        else:
            loaded = {r: a for r, a in loaded.items() if not re.search(r",%" + r + r"$", t)}
    return insns


def insn_kind(text):
    t = re.sub(r"\s+", " ", text)
    if t == "syscall":
        return "syscall"
    if t == "sysenter":
        return "sysenter"
    if t == "int $0x80":
        return "int 0x80"
    if t == "call *%gs:0x10":  # i386 glibc/musl: the vDSO's __kernel_vsyscall through the TCB
        return "call *%gs:0x10"
    return None


def sections(path):
    out = []
    for line in run(["readelf", "-SW", path]).splitlines():
        m = re.match(r"^\s*\[\s*\d+\]\s+(\S+)\s+(\S+)\s+([0-9a-f]+)\s+([0-9a-f]+)\s+"
                     r"([0-9a-f]+)\s+\S+\s+(\S*)\s+\d+\s+\d+\s+\d+$", line)
        if m:
            out.append(dict(name=m.group(1), type=m.group(2), addr=int(m.group(3), 16),
                            off=int(m.group(4), 16), size=int(m.group(5), 16),
                            flags=m.group(6)))
    return out


def func_symbols(path):
    """FUNC and NOTYPE symbols defined in executable sections, deduplicated
    (.symtab and .dynsym).  Zero-size symbols get an effective size reaching
    to the next symbol (or the end of their section); they are only used
    when no sized FUNC symbol contains an address."""
    secs = sections(path)
    index = {}
    for line in run(["readelf", "-SW", path]).splitlines():
        m = re.match(r"^\s*\[\s*(\d+)\]\s+(\S+)", line)
        if m:
            index[m.group(1)] = m.group(2)
    xsecs = {s["name"]: s for s in secs if "X" in s["flags"]}
    syms = {}
    for line in run(["readelf", "-sW", path]).splitlines():
        parts = line.split()
        if len(parts) < 8 or parts[3] not in ("FUNC", "NOTYPE") or not parts[6].isdigit():
            continue
        sec = index.get(parts[6])
        if sec not in xsecs:
            continue
        name = parts[7].split("@")[0]
        size = int(parts[2], 16) if parts[2].startswith("0x") else int(parts[2])
        key = (name, int(parts[1], 16))
        syms[key] = dict(name=name, value=key[1], size=size, type=parts[3],
                         section=sec, sized=size > 0)
    syms = sorted(syms.values(), key=lambda s: (s["value"], s["name"]))
    for s in syms:
        if not s["sized"]:
            later = [t["value"] for t in syms
                     if t["section"] == s["section"] and t["value"] > s["value"]]
            sec = xsecs[s["section"]]
            s["size"] = min(later) - s["value"] if later else sec["addr"] + sec["size"] - s["value"]
    return syms


def elf_props(path):
    hdr = run(["readelf", "-hlSdW", path])
    etype = re.search(r"Type:\s+(\w+)", hdr).group(1)
    interp = "INTERP" in hdr.split("Program Headers:")[1] if "Program Headers:" in hdr else False
    dynamic = re.search(r"^\s*DYNAMIC\s", hdr, re.M) is not None
    pie_flag = re.search(r"FLAGS_1\)\s+Flags:.*\bPIE\b", hdr) is not None
    stripped = ".symtab" not in hdr
    shared = etype == "DYN" and not interp and not pie_flag
    return {"pie": etype == "DYN" and (interp or pie_flag) and not shared,
            "static": not dynamic and not interp,
            "stripped": stripped, "shared_object": shared}


def containing(syms, addr):
    """Symbols containing addr: sized FUNC symbols first, else the zero-size
    symbol(s) nearest before addr."""
    hits = [s for s in syms if s["sized"] and s["type"] == "FUNC"
            and s["value"] <= addr < s["value"] + s["size"]]
    if hits:
        return hits
    return [s for s in syms if not s["sized"] and s["value"] <= addr < s["value"] + s["size"]]


# --------------------------------------------------------------------------
def signed(v, bits):
    v &= (1 << bits) - 1
    return v - (1 << bits) if v >> (bits - 1) else v


def build_entry(spec, problems):
    path = os.path.join(CORPUS, spec["file"])
    twin = os.path.join(CORPUS, spec["twin"]) if spec["twin"] else None
    insns = mark_kinds(objdump(path), path)
    secs = sections(path)
    symsrc = twin or path
    syms = func_symbols(symsrc)

    def err(msg):
        problems.append("%s: %s" % (spec["file"], msg))

    # ELF properties
    props = dict(spec["properties"])
    got = elf_props(path)
    for k, v in got.items():
        if props[k] != v:
            err("property %s declared %r but readelf says %r" % (k, props[k], v))

    # objdump must have covered every executable section
    exec_secs = {s["name"] for s in secs if "X" in s["flags"] and s["size"] and s["type"] != "NOBITS"}
    seen_secs = {i["section"] for i in insns}
    if exec_secs != seen_secs:
        err("objdump sections %s != executable sections %s" % (sorted(seen_secs), sorted(exec_secs)))

    starts = {i["addr"]: i for i in insns}
    objdump_sites = [i for i in insns if i["kind"]]

    if twin:
        tw = [i["addr"] for i in mark_kinds(objdump(twin), twin) if i["kind"]]
        if tw != [i["addr"] for i in objdump_sites]:
            err("stripped binary's sites differ from twin %s" % spec["twin"])

    def func_of(addr):
        c = containing(syms, addr)
        return c

    # decoys -----------------------------------------------------------
    decoys = []
    data_in_code = set()
    for s in secs:
        if s["name"] not in exec_secs:
            continue
        with open(path, "rb") as fh:
            fh.seek(s["off"])
            data = fh.read(s["size"])
        for pat, kind in PATTERNS.items():
            start = 0
            while True:
                k = data.find(pat, start)
                if k < 0:
                    break
                start = k + 1
                addr = s["addr"] + k
                fns = func_of(addr)
                fname = fns[0]["name"] if fns else None
                intended_kind = spec["decoy_funcs"].get(fname)
                ins = starts.get(addr)
                if ins is not None and insn_kind(ins["text"]) == kind:
                    if intended_kind == "data_in_code":
                        data_in_code.add(addr)
                        d = dict(kind="data_in_code", objdump_reports_it=True)
                    else:
                        continue  # a real site
                elif (addr + 1) in starts:
                    d = dict(kind="straddle", objdump_reports_it=False)
                else:
                    d = dict(kind="inside_instruction", objdump_reports_it=False)
                if intended_kind and intended_kind != d["kind"]:
                    # intended functions must only hold the intended kind
                    if not (intended_kind == "inside_instruction" and d["kind"] == "straddle"):
                        err("decoy in %s at %#x is %s, expected %s"
                            % (fname, addr, d["kind"], intended_kind))
                entry = {}
                if fname and not props["stripped"]:
                    entry["function"] = fname
                entry["address"] = "%#x" % addr
                entry["bytes"] = pat.hex()
                entry["looks_like"] = kind
                entry["section"] = s["name"]
                entry.update(d)
                entry["intended"] = bool(intended_kind)
                decoys.append(entry)
    decoys.sort(key=lambda d: int(d["address"], 16))
    for fn in spec["decoy_funcs"]:
        if not any(d.get("function", None) == fn or
                   (props["stripped"] and d["intended"]) for d in decoys):
            if not props["stripped"]:
                err("no decoy found in %s" % fn)

    real_sites = [i for i in objdump_sites if i["addr"] not in data_in_code]

    # sites ------------------------------------------------------------
    by_func = {}
    for i in real_sites:
        fns = func_of(i["addr"])
        if not fns:
            if "%#x" % i["addr"] not in spec["unnamed"]:
                err("objdump site at %#x (%s) is in no FUNC symbol" % (i["addr"], i["label"]))
            continue
        for f in fns:
            by_func.setdefault(f["name"], []).append(i)

    listed = {}
    for st in spec["sites"]:
        listed.setdefault(st["function"], []).append(st)

    out_sites = []
    covered = set()
    for fname, sts in listed.items():
        found = by_func.get(fname, [])
        if not found:
            if all(s["optional"] for s in sts):
                continue
            err("function %s has no site" % fname)
            continue
        if len(found) != len(sts):
            err("function %s has %d sites, %d listed" % (fname, len(found), len(sts)))
            continue
        for st in sorted(sts, key=lambda s: s["idx"]):
            ins = found[st["idx"]]
            covered.add(ins["addr"])
            kind = ins["kind"]
            if kind != st["instruction"]:
                err("%s[%d] is %s, listed %s" % (fname, st["idx"], kind, st["instruction"]))
            if kind == "vsyscall" and st["number"] != [ins["vsyscall_nr"]]:
                err("%s[%d] calls the vsyscall entry of %d, listed %s" % (fname, st["idx"], ins["vsyscall_nr"],
                                                                       st["number"]))
            if ins["section"] != st["section"]:
                err("%s[%d] in %s, listed %s" % (fname, st["idx"], ins["section"], st["section"]))
            e = {}
            if not props["stripped"]:
                e["function"] = fname
                fsym = [f for f in func_of(ins["addr"]) if f["name"] == fname][0]
                aliases = sorted({f["name"] for f in syms
                                  if f["value"] == fsym["value"] and f["name"] != fname})
                if aliases:
                    e["function_aliases"] = aliases
            e["address"] = "%#x" % ins["addr"]
            e["instruction"] = st["instruction"]
            e["abi"] = st["abi"]
            e["section"] = ins["section"]
            e["number"] = sorted(st["number"]) if st["number"] is not None else None
            if st["number"] is None:
                if st["reason"]:
                    e["unresolved_reason_contains"] = st["reason"]
            else:
                for n in st["number"]:
                    if n not in NAMES[st["abi"]]:
                        err("unknown %s syscall %d" % (st["abi"], n))
                e["names"] = [NAMES[st["abi"]][n] for n in sorted(st["number"])]
            if st["args"]:
                e["args"] = {r: sorted(v) for r, v in st["args"].items()}
            if st["strings"]:
                e["strings"] = st["strings"]
            if st["note"]:
                e["note"] = st["note"]
            if st["hard"]:
                e["hard"] = st["hard"]
            if st.get("callers") is not None:
                n = count_callers(insns, syms, fname)
                if n != st["callers"]:
                    err("%s: objdump shows %d direct calls/jumps to it, %d declared" % (fname, n, st["callers"]))
                e["direct_callers"] = n
            out_sites.append(e)
    out_sites.sort(key=lambda e: int(e["address"], 16))

    if spec["complete"]:
        missing = [i for i in real_sites if i["addr"] not in covered]
        if missing:
            err("unlisted sites: %s" % ", ".join("%#x <%s>" % (i["addr"], i["label"]) for i in missing))

    # verify string args point at the string in a non-writable section
    check_strings(path, secs, out_sites, err)
    check_string_pointers(path, secs, insns, out_sites, err)
    unchecked = [(e["address"], e.pop("_unchecked")) for e in out_sites if "_unchecked" in e]
    if unchecked:
        print("%s: string pointers not directly checkable (indirect): %s" % (spec["file"], unchecked))


    wrapper_sites = []
    for w in spec["wrappers"]:
        found = by_func.get(w["function"], [])
        if len(found) != 1:
            err("wrapper %s has %d sites, expected 1" % (w["function"], len(found)))
            continue
        e = {}
        if not props["stripped"]:
            e["function"] = w["function"]
        e["address"] = "%#x" % found[0]["addr"]
        e["instruction"] = found[0]["kind"]
        e["number_includes"] = w["number_includes"]
        e["names_include"] = [NAMES["x86_64"][n] for n in w["number_includes"]]
        n = count_callers(insns, syms, w["function"])
        if w["callers"] is not None and n != w["callers"]:
            err("%s: objdump shows %d direct calls/jumps to it, %d declared" % (w["function"], n, w["callers"]))
        e["direct_callers"] = n
        if w["note"]:
            e["note"] = w["note"]
        wrapper_sites.append(e)
        covered.add(found[0]["addr"])

    wrapper_calls = []
    if spec["libcalls"]:
        for fname in sorted({f for f, _, _ in spec["libcalls"]}):
            want = [c for c in spec["libcalls"] if c[0] == fname]
            got = [i for i in insns if i["label"] == fname and
                   any(re.match(r"^call [0-9a-f]+ <%s@plt>$" % re.escape(callee), i["text"])
                       for _, callee, _ in want)]
            if len(got) != len(want):
                err("%s: objdump shows %d calls to %s, %d declared"
                    % (fname, len(got), sorted({c for _, c, _ in want}), len(want)))
                continue
            for i, (_, callee, nums) in zip(got, want):
                if "<%s@plt>" % callee not in i["text"]:
                    err("call at %#x is not to %s@plt" % (i["addr"], callee))
                wrapper_calls.append({"function": fname, "call_site": "%#x" % i["addr"], "callee": callee,
                                      "number": nums, "names": [NAMES["x86_64"][n] for n in nums]})

    names = set()
    for e in out_sites:
        names.update(e.get("names", []))
    for e in wrapper_sites:
        names.update(e["names_include"])

    entry = {
        "file": spec["file"],
        "sources": spec["sources"],
        "arch": spec["arch"],
        "properties": props,
        "size": os.path.getsize(path),
        "objdump_site_count": len(objdump_sites),
        "objdump_decoy_hits": len(data_in_code),
        "site_count": len(real_sites),
        "sites_complete": spec["complete"],
        "sites": out_sites,
        "decoys": decoys,
        "syscalls_include": sorted(names),
    }
    if wrapper_sites:
        entry["wrapper_sites"] = wrapper_sites
    if wrapper_calls:
        entry["wrapper_calls"] = wrapper_calls
    if spec["twin"]:
        entry["unstripped_twin"] = spec["twin"]
    if spec["note"]:
        entry["note"] = spec["note"]
    return entry, objdump_sites, syms


def count_callers(insns, syms, fname):
    """Direct call/jmp/jcc instructions whose target is the start of fname
    (objdump prints the target address; tail jumps count, jumps from inside
    the function itself do not)."""
    starts = {s["value"] for s in syms if s["name"] == fname}
    n = 0
    for i in insns:
        m = re.match(r"^(call|jmp|j[a-z]+)q? (?:0x)?([0-9a-f]+)( |$)", i["text"])
        if m and int(m.group(2), 16) in starts:
            own = [s for s in containing(syms, i["addr"]) if s["name"] == fname]
            if not own:
                n += 1
    return n


def check_strings(path, secs, sites, err):
    """The string must exist, NUL-terminated, in a non-writable alloc section."""
    blobs = []
    with open(path, "rb") as fh:
        for s in secs:
            if "A" in s["flags"] and "W" not in s["flags"] and "X" not in s["flags"] \
                    and s["type"] == "PROGBITS":
                fh.seek(s["off"])
                blobs.append(fh.read(s["size"]))
    for e in sites:
        for reg, st in e.get("strings", {}).items():
            if not any(st.encode() + b"\0" in b for b in blobs):
                err("string %r (%s at %s) not in read-only data" % (st, reg, e["address"]))


REG_ALIASES = {
    "rdi": ("rdi", "edi"), "rsi": ("rsi", "esi"), "rdx": ("rdx", "edx"),
    "r10": ("r10", "r10d"), "r8": ("r8", "r8d"), "r9": ("r9", "r9d"),
    "ebx": ("ebx", "rbx"), "ecx": ("ecx", "rcx"), "edx": ("edx", "rdx"),
    "esi": ("esi", "rsi"), "edi": ("edi", "rdi"), "ebp": ("ebp", "rbp"),
}


def read_cstring(path, secs, addr):
    with open(path, "rb") as fh:
        for s in secs:
            if s["type"] == "PROGBITS" and s["addr"] <= addr < s["addr"] + s["size"]:
                fh.seek(s["off"] + addr - s["addr"])
                data = fh.read(s["addr"] + s["size"] - addr)
                return data.split(b"\0")[0].decode("latin-1")
    return None


def check_string_pointers(path, secs, insns, sites, err):
    """Where the pointer register is set in the same function by a
    'mov $imm,%reg' or a rip-relative 'lea', check it points at the string.
    Indirect cases (stack reload at -O0, i386 PIC) are only checked by
    check_strings()."""
    for e in sites:
        for reg, want in e.get("strings", {}).items():
            addr = int(e["address"], 16)
            idx = [k for k, i in enumerate(insns) if i["addr"] == addr][0]
            label = insns[idx]["label"]
            target = None
            for i in reversed(insns[:idx]):
                if i["label"] != label:
                    break
                ops = i["text"].split(" ", 1)
                if len(ops) < 2:
                    continue
                dst = ops[1].rsplit(",", 1)[-1]
                if dst.lstrip("%") not in REG_ALIASES[reg]:
                    continue
                m = re.match(r"mov[lq]? \$0x([0-9a-f]+),", i["text"])
                if m:
                    target = int(m.group(1), 16)
                m = re.match(r"lea 0x[0-9a-f]+\(%rip\),", i["text"])
                if m:
                    target = int(re.search(r"#\s*(?:0x)?([0-9a-f]+)", i["full"]).group(1), 16)
                break  # last writer found
            if target is None:
                e.setdefault("_unchecked", []).append(reg)
                continue
            got = read_cstring(path, secs, target)
            if got != want:
                err("%s at %s points at %r, listed %r" % (reg, e["address"], got, want))


def capstone_crosscheck(spec, objdump_sites, syms, problems):
    try:
        import capstone
    except ImportError:
        return False
    path = os.path.join(CORPUS, spec["file"])
    mode = capstone.CS_MODE_64 if spec["arch"] == "x86_64" else capstone.CS_MODE_32
    md = capstone.Cs(capstone.CS_ARCH_X86, mode)
    secs = [s for s in sections(path) if "X" in s["flags"] and s["type"] != "NOBITS"]
    with open(path, "rb") as fh:
        raw = fh.read()
    found = set()
    for f in syms:
        sec = [s for s in secs if s["addr"] <= f["value"] < s["addr"] + s["size"]]
        if not sec:
            continue
        s = sec[0]
        off = s["off"] + f["value"] - s["addr"]
        code = raw[off:off + f["size"]]
        for i in md.disasm(code, f["value"]):
            t = (i.mnemonic + " " + i.op_str).strip()
            if t in ("syscall", "sysenter", "int 0x80", "call dword ptr gs:[0x10]"):
                found.add(i.address)
    # the sweep sees the instructions by themselves; the calls into a vsyscall page or through _dl_sysinfo need
    # their context (mark_kinds), so they are not part of the cross-check
    od = {i["addr"] for i in objdump_sites if i["kind"] in ("syscall", "sysenter", "int 0x80", "call *%gs:0x10")
          and "%#x" % i["addr"] not in spec["unnamed"]}  # the sweep goes by symbol
    if found != od:
        problems.append("%s: capstone per-function sweep %s != objdump %s" % (
            spec["file"], sorted(hex(a) for a in found - od), sorted(hex(a) for a in od - found)))
    return True


def main():
    problems = []
    out = {"version": 1,
           "generated_by": "corpus/tools/gen_manifest.py (objdump/readelf + hand-written site table)",
           "objdump_command": " ".join(OBJDUMP_CMD) + " FILE",
           "binaries": []}
    cs = False
    for spec in BINARIES:
        entry, od_sites, syms = build_entry(spec, problems)
        cs = capstone_crosscheck(spec, od_sites, syms, problems) or cs
        out["binaries"].append(entry)
    text = json.dumps(out, indent=1) + "\n"
    dest = os.path.join(CORPUS, "manifest.json")
    if problems:
        print("\n".join("PROBLEM: " + p for p in problems))
        sys.exit(1)
    if "--check" in sys.argv:
        with open(dest) as fh:
            if fh.read() != text:
                print("manifest.json is out of date")
                sys.exit(1)
        print("manifest.json is up to date")
        return
    with open(dest, "w") as fh:
        fh.write(text)
    for b in out["binaries"]:
        print("%-28s %8d bytes  objdump=%3d decoy_hits=%d true=%3d listed=%2d decoys=%d" % (
            b["file"], b["size"], b["objdump_site_count"], b["objdump_decoy_hits"],
            b["site_count"], len(b["sites"]), len(b["decoys"])))
    print("capstone cross-check:", "done" if cs else "skipped (capstone not importable)")


if __name__ == "__main__":
    main()
