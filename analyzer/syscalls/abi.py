"""One object per syscall ABI: the facts every stage needs about it, in one place (as systrack's arch/ does).

A user site picks its ABI by its instruction (`syscall` in 64-bit code: x86_64, or x32 when the number carries the
x32 bit; `int 0x80` and `sysenter`: always i386, even in a 64-bit program); the kernel stage finds the ABI's table
and dispatcher by the symbol names here and names its handlers by the prefixes here.
"""
from __future__ import annotations

from dataclasses import dataclass

from .. import model
from . import X32_SYSCALL_BIT, SyscallTable, load_table


@dataclass(frozen=True)
class Abi:
    name: str  # "x86_64" | "i386" | "x32": the table's name
    number_register: str
    arg_registers: tuple[str, ...]
    nr_bit: int  # set in the number by this ABI's callers (x32's 0x40000000)
    table_symbol: str  # the kernel's table of handlers
    dispatcher_symbol: str  # the kernel's switch (x64_sys_call …) when the table is not called
    handler_prefixes: tuple[str, ...]  # how the kernel names this ABI's handlers, most specific first
    instructions: tuple[str, ...]  # the user-space instructions that enter the kernel with this ABI

    def table(self) -> SyscallTable:
        """The embedded table (analyzer/syscalls/data)."""
        return load_table(self.name)


# The kinds of site (model.Site.instruction): the traps, and the calls that enter the kernel through code it maps.
TRAPS = ("syscall", "sysenter", "int 0x80")
GS_SYSINFO = "call *%gs:0x10"  # glibc's SYSINFO_OFFSET in the i386 TCB (musl's pthread struct uses the same slot)
SYSINFO_POINTERS = ("_dl_sysinfo", "__sysinfo")  # pointers a static binary initialises to the vDSO entry
KERNEL_VSYSCALL = "__kernel_vsyscall"
VDSO_KINDS = (GS_SYSINFO, f"call {KERNEL_VSYSCALL}") + tuple(f"call *{p}" for p in SYSINFO_POINTERS)
"""Site kinds that enter the kernel through the 32-bit vDSO's `__kernel_vsyscall` (the i386 ABI)."""
VSYSCALL = "vsyscall"  # a call into the legacy x86-64 vsyscall page
KINDS = (*TRAPS, *VDSO_KINDS, VSYSCALL)
"""Every site kind, as the report schema and the rule schema list them."""

X86_64 = Abi("x86_64", "rax", ("rdi", "rsi", "rdx", "r10", "r8", "r9"), 0, "sys_call_table", "x64_sys_call",
             ("__x64_sys_", "__x64_"), ("syscall",))
I386 = Abi("i386", "eax", ("ebx", "ecx", "edx", "esi", "edi", "ebp"), 0, "ia32_sys_call_table", "ia32_sys_call",
           ("__ia32_compat_sys_", "__ia32_sys_", "__ia32_"), ("int 0x80", "sysenter"))
X32 = Abi("x32", "rax", X86_64.arg_registers, X32_SYSCALL_BIT, "x32_sys_call_table", "x32_sys_call",
          ("__x32_compat_sys_", "__x64_sys_", "__x32_", "__x64_"), ("syscall",))
ABIS: dict[str, Abi] = {a.name: a for a in (X86_64, I386, X32)}


def native_abi(bits: int) -> Abi:
    """The ABI a binary's own libc uses: x86-64 for 64-bit code, i386 for 32-bit (x32 is never a binary's own)."""
    return X86_64 if bits == 64 else I386


def site_abi(bits: int, instruction: str) -> Abi:
    """`syscall` in 64-bit code uses the x86-64 table (x32 is decided by the number: name_syscall); `int 0x80` and
    `sysenter` always use the i386 one, even in a 64-bit program, and so do the calls into the 32-bit vDSO's
    `__kernel_vsyscall` (`call *%gs:0x10` …). A call to the legacy vsyscall page emulates an x86-64 syscall."""
    if instruction == VSYSCALL:
        return X86_64
    return X86_64 if bits == 64 and instruction in X86_64.instructions else I386


def name_syscall(abi: str, nr: int) -> model.SyscallRef:
    """Name a number from the embedded tables; x32 numbers (bit 30 set) in 64-bit code use the x32 table."""
    table_abi = abi
    if abi == "x86_64" and nr & X32.nr_bit:
        table_abi = "x32"
    table = load_table(table_abi)
    entry = table.get(nr) or (table.get(nr & ~X32.nr_bit) if table_abi == "x32" else None)
    if entry is None:
        return model.SyscallRef(nr=nr, abi=table_abi, name=None)
    return model.SyscallRef(nr=nr, abi=table_abi, name=entry.name,
                            params=[f"{a.type} {a.name}".strip() for a in entry.args])
