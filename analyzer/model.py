"""The one result model: every stage fills it, every renderer reads it, `--format json` writes it.

Addresses and register values are written as hex strings in JSON ("0x401000"): kernel addresses and 64-bit
values do not fit a JavaScript number, and a reviewer reads hex. Syscall numbers stay plain integers.
A saved report loads back with `Report.from_dict`, so it can be rendered again without re-analysing.
"""
from __future__ import annotations

import dataclasses
import sys
import typing
from dataclasses import dataclass, field
from typing import Any

from . import __version__

SCHEMA_VERSION = "1.2"
SEVERITIES = ("info", "low", "medium", "high", "critical")
"""A finding's severity, least to most severe (rules' `severity`, `--fail-on`)."""
SEVERITY_RANK = {s: i for i, s in enumerate(SEVERITIES)}  # info 0 .. critical 4
BY_SEVERITY = SEVERITIES[::-1]
"""Most severe first: the order reports list findings and counts in."""
HEX = {"hex": True}


def hexfield(**kw: Any) -> Any:
    """A field written as hex in JSON (an int, a list of ints, or a dict keyed by int)."""
    return field(metadata=HEX, **kw)


@dataclass
class CallerValue:
    """One caller's share of a wrapper's register (a site whose value is its function's parameter).

    `call_site` is the call where the value is finally known (in `function`); `via` lists the wrapper calls between
    it and the site, outermost first ("0x472383 in syscall.Syscall"). Empty `via`: a direct caller."""

    call_site: int = hexfield()
    function: str = ""
    via: list[str] = field(default_factory=list)
    values: list[int] = hexfield(default_factory=list)
    status: str = "unresolved"
    reasons: list[str] = field(default_factory=list)


@dataclass
class RegisterValue:
    """What one register holds at a site: the set of constants, or why it is not known."""

    register: str  # as the ABI names it: "rax", "r10", "eax", "ebx"
    role: str  # "number" or "arg0".."arg5"
    values: list[int] = hexfield(default_factory=list)
    status: str = "unresolved"  # "resolved" | "partial" (some paths known) | "unresolved"
    reasons: list[str] = field(default_factory=list)
    strings: dict[int, str] = hexfield(default_factory=dict)  # value -> the read-only string it points to
    param: str | None = None  # the kernel's parameter name for this argument, when the syscall is known
    provenance: list[str] = field(default_factory=list)  # how it was found: "local", "caller 0x… in f", …
    callers: list[CallerValue] = field(default_factory=list)  # per-caller detail when the value is a parameter


@dataclass
class KernelPath:
    """How one syscall number from a site reaches the kernel function that handles it."""

    nr: int
    abi: str
    entry: str | None = None  # entry symbol, e.g. entry_SYSCALL_64
    entry_address: int | None = hexfield(default=None)
    handler: str | None = None  # e.g. __x64_sys_write
    handler_address: int | None = hexfield(default=None)
    implementation: str | None = None  # e.g. ksys_write
    source: str | None = None  # file:line of the SYSCALL_DEFINE, when DWARF gives it
    enosys: bool = False
    path: list[str] = field(default_factory=list)  # node names, site first


@dataclass
class SyscallRef:
    """One possible syscall of a site, named from the table in use."""

    nr: int
    abi: str
    name: str | None
    params: list[str] = field(default_factory=list)  # "type name", from the table's prototype


@dataclass
class Site:
    """A real `syscall` / `sysenter` / `int 0x80` instruction, or a call that enters the kernel through code it maps
    (the 32-bit vDSO's `__kernel_vsyscall`, the legacy vsyscall page), and what it asks the kernel for."""

    address: int = hexfield()
    offset: int = hexfield()
    section: str = ""
    function: str = ""
    function_address: int = hexfield(default=0)
    instruction: str = "syscall"  # a kind of sites.KINDS: "syscall" | "sysenter" | "int 0x80" | "call *%gs:0x10" …
    abi: str = "x86_64"  # the syscall table that applies: "x86_64" | "i386" | "x32"
    bytes: str = ""
    number: RegisterValue = field(default_factory=lambda: RegisterValue("rax", "number"))
    args: list[RegisterValue] = field(default_factory=list)
    syscalls: list[SyscallRef] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    kernel: list[KernelPath] = field(default_factory=list)
    # Registers the kernel does not read here but a rule may ask about, when they hold a known constant: rcx just
    # before `syscall` (which overwrites it with the return address), role "extra". Empty in most sites.
    extra_registers: list[RegisterValue] = field(default_factory=list)
    source: str | None = None  # "file:line" of the instruction from the binary's DWARF line table (built with -g)

    @property
    def resolved(self) -> bool:
        return self.number.status == "resolved"


@dataclass
class Finding:
    """A rule that matched, at a site or on the whole binary."""

    rule: str  # rule id
    name: str
    severity: str  # info | low | medium | high | critical
    message: str
    site: int | None = hexfield(default=None)
    function: str | None = None
    syscall: str | None = None
    tags: list[str] = field(default_factory=list)
    references: list[str] = field(default_factory=list)
    fingerprint: str = ""  # stable across rebuilds: rule + function + syscall, never a raw address
    baseline: str | None = None  # "new" | "unchanged" | "accepted", when a baseline or allowlist was given
    justification: str | None = None  # the allowlist entry's reason, when baseline == "accepted"


@dataclass
class BinaryInfo:
    path: str
    name: str
    size: int
    sha256: str
    arch: str
    bits: int
    elf_type: str
    pie: bool
    static: bool
    stripped: bool
    interpreter: str | None = None
    build_id: str | None = None
    entry: int = hexfield(default=0)
    needed: list[str] = field(default_factory=list)
    functions: int = 0
    debug_file: str | None = None  # the separate debug file a stripped file's symbols came from (schema 1.2)


@dataclass
class TableInfo:
    """Where syscall names come from: the embedded tables, or the --vmlinux kernel."""

    source: str  # "embedded" | "vmlinux"
    kernel_version: str
    path: str | None = None


@dataclass
class SyscallUse:
    """One row of the binary's syscall set: a syscall and the sites that may make it."""

    abi: str
    nr: int
    name: str | None
    sites: list[int] = hexfield(default_factory=list)
    handler: str | None = None
    enosys: bool = False


@dataclass
class Rejected:
    """Bytes that look like a syscall instruction but are not one, and why (decoys, data in code)."""

    address: int = hexfield()
    pattern: str = ""
    function: str = ""
    reason: str = ""


@dataclass
class WrapperCall:
    """A call from this file to an imported library function that makes a system call with a parameter as its
    number (libc's `syscall()`), in a dynamic binary: the number at the call. The kernel entry is in the library,
    so this is not a Site; `number.register` is the wrapper's parameter ("rdi")."""

    call_site: int = hexfield()
    function: str = ""
    callee: str = ""  # the imported function, e.g. "syscall"
    library: str = ""  # the library that was analysed, e.g. "libc.so.6"
    number: RegisterValue = field(default_factory=lambda: RegisterValue("rdi", "number"))
    syscalls: list[SyscallRef] = field(default_factory=list)


@dataclass
class Summary:
    sites: int = 0
    resolved: int = 0
    partial: int = 0
    unresolved: int = 0
    syscalls: int = 0  # distinct (abi, nr)
    findings: int = 0
    by_instruction: dict[str, int] = field(default_factory=dict)
    by_severity: dict[str, int] = field(default_factory=dict)


@dataclass
class SurfaceObject:
    """One object the program runs with: the program, ld.so, a needed or dlopen'ed library, the vDSO."""

    path: str
    name: str  # as it was asked for: the program's path, PT_INTERP, a DT_NEEDED or dlopen name, "[vdso]"
    kind: str  # "program" | "interpreter" | "needed" | "dlopen" | "vdso"
    sha256: str = ""
    needed_by: str | None = None
    functions: int = 0
    reachable_functions: int = 0
    sites: int = 0
    reachable_sites: int = 0
    build_id: str | None = None  # (schema 1.2)
    debug_file: str | None = None  # where its symbols came from when it is stripped (schema 1.2)


@dataclass
class SurfaceArg:
    """The values one argument of a surface syscall can have, over every reachable place that makes it: known only
    when known at each (at the site, or at every call of the library function that passes it on)."""

    index: int
    param: str  # the kernel's parameter name
    values: list[int] = hexfield(default_factory=list)
    status: str = "unresolved"  # "resolved" | "unresolved"
    reason: str = ""  # why not known, when unresolved (one place that does not pin it)


@dataclass
class SurfaceSyscall:
    """A syscall the program can make, with one shortest path from an entry point to a place that makes it."""

    abi: str
    nr: int
    name: str | None = None
    objects: list[str] = field(default_factory=list)  # the objects (names) whose reachable code makes it
    sites: int = 0  # reachable sites (and wrapper calls) that can make it
    path: list[str] = field(default_factory=list)  # "function (object)" steps, the last one the site
    via: int | None = hexfield(default=None)  # the program's own function where that path leaves the program
    via_function: str | None = None
    handler: str | None = None  # with --vmlinux
    enosys: bool = False
    args: list[SurfaceArg] = field(default_factory=list)  # the argument a seccomp filter could test, if any


@dataclass
class OpenEnd:
    """What the static surface cannot see, said: a number not known, a dlopen, an exec, a missing library."""

    kind: str  # "unknown-number" | "dlopen" | "missing-library" | "execve" | "not-analysed"
    object: str
    detail: str
    address: int | None = hexfield(default=None)
    function: str | None = None
    path: list[str] = field(default_factory=list)


@dataclass
class Surface:
    """Every syscall the program can make through its own code, ld.so and its libraries, from its entry points."""

    objects: list[SurfaceObject] = field(default_factory=list)  # load order
    syscalls: list[SurfaceSyscall] = field(default_factory=list)  # sorted by (abi, nr)
    open_ends: list[OpenEnd] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    roots: int = 0
    reachable_functions: int = 0


@dataclass
class Report:
    """The whole answer for one binary. JSON written from it is byte-identical for identical inputs."""

    binary: BinaryInfo
    table: TableInfo
    sites: list[Site] = field(default_factory=list)
    syscalls: list[SyscallUse] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    summary: Summary = field(default_factory=Summary)
    rejected: list[Rejected] = field(default_factory=list)
    kernel: dict | None = None  # the kernel analysis summary when --vmlinux was given
    incomplete: list[str] = field(default_factory=list)  # what was skipped and why
    wrapper_calls: list[WrapperCall] = field(default_factory=list)  # dynamic binaries: calls to libc's syscall()
    surface: Surface | None = None  # every syscall reachable through the program and its libraries (--no-surface)
    tool: dict[str, str] = field(default_factory=lambda: {"name": "sysscan", "version": __version__})
    schema_version: str = SCHEMA_VERSION

    def to_dict(self) -> dict:
        return _encode(self)

    @classmethod
    def from_dict(cls, data: dict) -> "Report":
        if not isinstance(data, dict) or "binary" not in data or "schema_version" not in data:
            raise ValueError("not a sysscan report (no binary / schema_version)")
        major = str(data["schema_version"]).split(".")[0]
        if major != SCHEMA_VERSION.split(".")[0]:
            raise ValueError(f"report schema {data['schema_version']} is not readable by this version "
                             f"(expects {SCHEMA_VERSION})")
        return _decode(cls, data)


def _hex(v: int) -> str:
    return f"{v:#x}"


_FIELDS: dict[type, tuple[tuple[str, bool], ...]] = {}


def _encode(obj: Any, hexed: bool = False) -> Any:
    t = type(obj)  # exact types first: a report is thousands of small values, and this runs for each
    if t is str or obj is None or t is bool or t is float:
        return obj
    if t is int:
        return _hex(obj) if hexed else obj
    if t is list or t is tuple:
        return [_encode(v, hexed) for v in obj]
    spec = _FIELDS.get(t)
    if spec is None and dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        spec = _FIELDS[t] = tuple((f.name, f.metadata.get("hex", False)) for f in dataclasses.fields(obj))
    if spec is not None:
        return {name: _encode(getattr(obj, name), h) for name, h in spec}
    if dataclasses.is_dataclass(obj):
        return {f.name: _encode(getattr(obj, f.name), f.metadata.get("hex", False)) for f in dataclasses.fields(obj)}
    if isinstance(obj, dict):
        return {(_hex(k) if hexed and isinstance(k, int) else str(k)): _encode(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_encode(v, hexed) for v in obj]
    if hexed and isinstance(obj, int) and not isinstance(obj, bool):
        return _hex(obj)
    return obj


def _decode(tp: Any, data: Any, hexed: bool = False) -> Any:
    return _decoder(tp, hexed)(data)


_DECODERS: dict[tuple[Any, bool], Any] = {}


def _decoder(tp: Any, hexed: bool) -> Any:
    """A function turning JSON data into `tp`, built once per (type, hex) and reused: decoding a saved or cached
    report walks thousands of values, and resolving type hints per value dominated `from_dict`."""
    key = (tp, hexed)
    fn = _DECODERS.get(key)
    if fn is None:
        fn = _DECODERS[key] = _make_decoder(tp, hexed)
    return fn


def _identity(data: Any) -> Any:
    return data


def _make_decoder(tp: Any, hexed: bool) -> Any:
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin is typing.Union or (sys.version_info >= (3, 10) and origin is __import__("types").UnionType):
        inner = [a for a in args if a is not type(None)]
        if not inner:
            return _identity
        one = _decoder(inner[0], hexed)
        return lambda data: None if data is None else one(data)
    if dataclasses.is_dataclass(tp):
        hints = typing.get_type_hints(tp)
        spec = [(f.name, hints[f.name], f.metadata.get("hex", False)) for f in dataclasses.fields(tp)]
        fields: list[tuple[str, Any]] = []  # filled on first use: a dataclass may (indirectly) contain itself

        def dataclass_(data: Any) -> Any:
            if data is None:
                return None
            if not fields:
                fields.extend((name, _decoder(t, h)) for name, t, h in spec)
            return tp(**{name: dec(data[name]) for name, dec in fields if name in data})
        return dataclass_
    if origin in (list, tuple):
        (inner,) = args[:1] or (Any,)
        item = _decoder(inner, hexed)
        return lambda data: None if data is None else [item(v) for v in data]
    if origin is dict:
        kt, vt = args or (Any, Any)
        kdec, vdec = _decoder(kt, hexed), _decoder(vt, False)
        return lambda data: None if data is None else {kdec(k): vdec(v) for k, v in data.items()}
    if tp is int:
        def int_(data: Any) -> Any:
            if data is None:
                return None
            if isinstance(data, str):
                return int(data, 16) if hexed or data.startswith("0x") else int(data)
            return int(data)
        return int_
    return _identity


def summarize_report(report: Report) -> None:
    """Recompute the derived parts (syscall set, summary) from the sites and findings."""
    uses: dict[tuple[str, int], SyscallUse] = {}
    for site in report.sites:
        handlers = {(k.abi, k.nr): k for k in site.kernel}
        for ref in site.syscalls:
            u = uses.setdefault((ref.abi, ref.nr), SyscallUse(abi=ref.abi, nr=ref.nr, name=ref.name))
            u.sites.append(site.address)
            k = handlers.get((ref.abi, ref.nr))
            if k is not None:
                u.handler, u.enosys = k.handler, k.enosys
    report.syscalls = [uses[k] for k in sorted(uses)]
    s = Summary()
    s.sites = len(report.sites)
    for site in report.sites:
        setattr(s, site.number.status, getattr(s, site.number.status) + 1)
        s.by_instruction[site.instruction] = s.by_instruction.get(site.instruction, 0) + 1
    s.syscalls = len(uses)
    gating = [f for f in report.findings if f.baseline not in ("unchanged", "accepted")]  # not baselined/allowed
    s.findings = len(gating)
    for f in gating:
        s.by_severity[f.severity] = s.by_severity.get(f.severity, 0) + 1
    s.by_instruction = dict(sorted(s.by_instruction.items()))
    s.by_severity = dict(sorted(s.by_severity.items()))
    report.summary = s
