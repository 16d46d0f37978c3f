"""The kernel analysis result: plain dataclasses that round-trip through JSON (for the cache and the report)."""
from __future__ import annotations

from dataclasses import dataclass, field, fields

from ..syscalls import X32_SYSCALL_BIT

ABIS = ("x86_64", "x32", "i386")

MSR_NAMES = {
    0x48: "MSR_IA32_SPEC_CTRL",
    0x174: "MSR_IA32_SYSENTER_CS",
    0x175: "MSR_IA32_SYSENTER_ESP",
    0x176: "MSR_IA32_SYSENTER_EIP",
    0xC0000081: "MSR_STAR",
    0xC0000082: "MSR_LSTAR",
    0xC0000083: "MSR_CSTAR",
    0xC0000084: "MSR_SYSCALL_MASK",
}


@dataclass
class PathStep:
    """One hop from an entry point to the C function that dispatches (e.g. entry_SYSCALL_64 -> do_syscall_64)."""

    address: int
    symbol: str | None
    how: str  # "call" | "jmp" (a direct transfer found in the code)
    at: int | None = None  # the instruction that transfers here


@dataclass
class EntryPoint:
    """A way into the kernel: the `syscall`/`sysenter`/`int 0x80` target and how we know it."""

    instruction: str  # "syscall" | "syscall (compat)" | "sysenter" | "int 0x80"
    abi: str  # "x86_64" | "i386"
    address: int
    symbol: str | None
    method: str  # "wrmsr" | "paravirt" | "msr-call" | "idt" | "symbol-fallback"
    msr: int | None = None
    msr_name: str | None = None
    at: int | None = None  # the MSR write (or IDT record) that names this address
    writer: str | None = None  # function holding the write
    via: str | None = None  # e.g. "pv_ops+0xc0 -> native_write_msr"
    path: list[PathStep] = field(default_factory=list)  # entry -> ... -> C dispatcher function
    c_entry: int | None = None  # do_syscall_64 / __do_fast_syscall_32 / do_int80_emulation ...
    c_entry_symbol: str | None = None
    dispatcher: str | None = None  # the abi key in KernelAnalysis.dispatchers this entry reaches
    note: str | None = None


@dataclass
class Dispatcher:
    """How numbers become handlers for one ABI."""

    abi: str
    kind: str  # "table" | "switch" | "jump-table"
    address: int  # the table, or the switch function (x64_sys_call)
    symbol: str | None
    site: int  # the call/load in the C entry function that dispatches
    c_entry: int
    c_entry_symbol: str | None
    nr_syscalls: int
    bound_method: str  # "cmp/sbb (array_index_nospec)" | "cmp/ja" | "switch cases" | ...
    bound_at: int | None = None
    default: int | None = None  # the switch's default target (the ni stub)
    default_symbol: str | None = None
    found_by: str = "data flow"  # "data flow" | "symbol-fallback"


@dataclass
class Handler:
    abi: str
    nr: int
    address: int
    symbol: str | None  # e.g. "__x64_sys_write"
    name: str | None  # the syscall's name, e.g. "write" (from the symbol)
    enosys: bool  # returns -ENOSYS on this kernel (ni stub, COND_SYSCALL stub, or out of range)
    how: str  # "switch decode" | "table read" | "jump-table decode" | "out of range" | ...
    aliases: list[str] = field(default_factory=list)
    via: str | None = None  # "jmp" (tail call) | "call" from the switch
    chain: list[str] = field(default_factory=list)  # __x64_sys_write -> ksys_write
    implementation: str | None = None
    implementation_address: int | None = None
    source: str | None = None  # file:line of the SYSCALL_DEFINE (DWARF), when asked for
    signature: list[dict] | None = None  # [{"type": "unsigned int", "name": "fd"}, ...]

    @property
    def arg_names(self) -> list[str] | None:
        return [a["name"] for a in self.signature] if self.signature else None

    def prototype(self) -> str | None:
        """'write(unsigned int fd, const char *buf, size_t count)' when the signature is known."""
        if self.signature is None:
            return None
        args = ", ".join(a["type"] + ("" if a["type"].endswith("*") else " ") + a["name"] for a in self.signature)
        return f"{self.name or self.symbol}({args})"


@dataclass
class Disagreement:
    abi: str
    nr: int
    table_address: int | None
    table_symbol: str | None
    switch_address: int | None
    switch_symbol: str | None


@dataclass
class MsrWrite:
    at: int
    writer: str | None
    msr: int
    msr_name: str | None
    values: list[int]
    method: str  # "wrmsr" | "paravirt" | "msr-call"
    via: str | None = None


@dataclass
class VdsoSite:
    address: int  # the image's own (link-time) address
    function: str
    section: str
    instruction: str
    abi: str
    status: str  # of the number: resolved | partial | unresolved
    numbers: list[int] = field(default_factory=list)
    names: list[str] = field(default_factory=list)  # the syscalls named in the ABI's table


@dataclass
class VdsoImage:
    symbol: str  # vdso_image_64 | vdso_image_32 | vdso_image_x32
    bits: int
    address: int  # where the ELF lies in the kernel image
    size: int
    sha256: str
    kernel_vsyscall: int | None = None  # the 32-bit entry's address in the image
    entry_traps: list[str] = field(default_factory=list)
    """The instructions __kernel_vsyscall can enter the kernel with: its own and the alternatives patched in."""
    sites: list[VdsoSite] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @classmethod
    def from_dict(cls, d: dict) -> VdsoImage:
        return cls(**{**d, "sites": [VdsoSite(**s) for s in d.get("sites", [])]})

    def to_dict(self) -> dict:
        d = dict(self.__dict__)
        d["sites"] = [dict(s.__dict__) for s in self.sites]
        return d


@dataclass
class KernelAnalysis:
    path: str
    sha256: str
    build_id: str | None
    version: str | None
    file_size: int
    tool_version: str
    entries: list[EntryPoint] = field(default_factory=list)
    msr_writes: list[MsrWrite] = field(default_factory=list)
    do_syscall_64: int | None = None
    do_syscall_64_symbol: str | None = None
    dispatchers: dict[str, Dispatcher] = field(default_factory=dict)
    tables: dict[str, dict[int, Handler]] = field(default_factory=dict)
    table_reads: dict[str, str] = field(default_factory=dict)  # abi -> symbol of the stored table we read
    disagreements: list[Disagreement] = field(default_factory=list)
    ni: dict[str, int] = field(default_factory=dict)  # abi -> address of the ni stub
    warnings: list[str] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)
    cached: bool = False
    vdso: list[VdsoImage] = field(default_factory=list)  # the vDSO images it embeds, analysed as programs
    vsyscall_emulation: int | None = None  # emulate_vsyscall: where calls into the legacy vsyscall page go
    vsyscall_emulation_symbol: str | None = None
    symbols: str = "symtab"  # where the symbols came from: the ELF's "symtab", or "kallsyms" (no sizes, no DWARF)
    compression: str | None = None  # a bzImage's payload compressor (lz4, zstd, xz...); None for an ELF vmlinux

    # ---- questions ----------------------------------------------------------------------------------------------
    def resolve(self, abi: str, nr: int) -> Handler:
        """The handler this kernel runs for `nr` on `abi`; numbers out of range or in holes give the ni stub,
        enosys=True. For x32, nr may carry the 0x40000000 bit or not."""
        if abi == "x32":
            nr &= ~X32_SYSCALL_BIT
        table = self.tables.get(abi)
        if table is None:
            return Handler(abi, nr, 0, None, None, True, f"no {abi} dispatcher in this kernel")
        h = table.get(nr)
        if h is not None:
            return h
        d = self.dispatchers.get(abi)
        bound = d.nr_syscalls if d else len(table)
        ni = self.ni.get(abi)
        how = f"out of range (>= NR_syscalls {bound})" if nr >= bound or nr < 0 else "hole in the table"
        ni_h = next((h for h in table.values() if h.address == ni), None) if ni is not None else None
        return Handler(abi, nr, ni or 0, ni_h.symbol if ni_h else None, "ni_syscall", True, how,
                       aliases=list(ni_h.aliases) if ni_h else [])

    def entry_for(self, instruction: str, abi: str) -> EntryPoint | None:
        """The entry a user-side instruction takes: 'syscall' (x86_64, or i386 compat), 'sysenter', 'int 0x80'."""
        want = {"syscall": "syscall", "sysenter": "sysenter", "int 0x80": "int 0x80"}.get(instruction, instruction)
        if want == "syscall" and abi == "i386":
            want = "syscall (compat)"
        for e in self.entries:
            if e.instruction == want and e.dispatcher:
                return e
        for e in self.entries:
            if e.instruction == want:
                return e
        return None

    def counts(self) -> dict[str, dict[str, int]]:
        out = {}
        for abi, table in self.tables.items():
            n = self.dispatchers[abi].nr_syscalls if abi in self.dispatchers else len(table)
            out[abi] = {"nr_syscalls": n, "implemented": sum(1 for h in table.values() if not h.enosys),
                        "enosys": sum(1 for h in table.values() if h.enosys)}
        return out

    # ---- JSON ---------------------------------------------------------------------------------------------------
    def to_dict(self) -> dict:
        """Plain JSON-ready data (hand-rolled: dataclasses.asdict deep-copies and takes ~0.15 s here)."""
        d = {f.name: getattr(self, f.name) for f in fields(self)}
        d["entries"] = [_entry_dict(e) for e in self.entries]
        d["msr_writes"] = [dict(m.__dict__) for m in self.msr_writes]
        d["dispatchers"] = {k: dict(v.__dict__) for k, v in self.dispatchers.items()}
        d["tables"] = {abi: [_handler_dict(h) for _, h in sorted(t.items())] for abi, t in self.tables.items()}
        d["table_reads"] = dict(self.table_reads)
        d["disagreements"] = [dict(x.__dict__) for x in self.disagreements]
        d["ni"] = dict(self.ni)
        d["warnings"] = list(self.warnings)
        d["timings"] = dict(self.timings)
        d["vdso"] = [v.to_dict() for v in self.vdso]
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "KernelAnalysis":
        kw = {f.name: d[f.name] for f in fields(cls) if f.name in d}
        kw["entries"] = [_entry(e) for e in d.get("entries", [])]
        kw["msr_writes"] = [MsrWrite(**m) for m in d.get("msr_writes", [])]
        kw["dispatchers"] = {k: Dispatcher(**v) for k, v in d.get("dispatchers", {}).items()}
        kw["tables"] = {abi: {h["nr"]: Handler(**h) for h in rows} for abi, rows in d.get("tables", {}).items()}
        kw["disagreements"] = [Disagreement(**x) for x in d.get("disagreements", [])]
        kw["ni"] = dict(d.get("ni", {}))
        kw["vdso"] = [VdsoImage.from_dict(v) for v in d.get("vdso", [])]
        return cls(**kw)


def _entry_dict(e: EntryPoint) -> dict:
    d = dict(e.__dict__)
    d["path"] = [dict(p.__dict__) for p in e.path]
    return d


def _handler_dict(h: Handler) -> dict:
    d = dict(h.__dict__)
    d["aliases"] = list(h.aliases)
    d["chain"] = list(h.chain)
    d["signature"] = [dict(a) for a in h.signature] if h.signature is not None else None
    return d


def _entry(e: dict) -> EntryPoint:
    e = dict(e)
    e["path"] = [PathStep(**p) for p in e.get("path", [])]
    return EntryPoint(**e)
