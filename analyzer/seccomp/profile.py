"""One seccomp profile from one or more reports' surfaces: every syscall the programs can make is allowed, each with
the path that reaches it; the rest get the default action. The details that break real profiles are decided here,
once, for every output format:

- `clone3` is answered ENOSYS (never EPERM) when the surface also has `clone` and only the C library makes clone3:
  glibc then falls back to `clone`, whose flags a filter can read (clone3 keeps them in memory, out of seccomp's
  reach); a clone3 made elsewhere (`syscall(SYS_clone3)`, maybe with no fallback) stays allowed;
- syscalls of the table numbered above the highest one a program can make are answered ENOSYS, as runc does for
  syscalls newer than a profile: a newer C library probes them and falls back on ENOSYS, never on EPERM (with
  `--seccomp-default log` nothing is answered: the run logs what it would deny);
- what the container runtime itself makes after it installs the filter is allowed on x86-64 even when the programs
  never make it: runc's init (Go) waits on its FIFO, closes descriptors and execs the program (measured:
  seccomp/data/runc.json); without a runtime, only that execve;
- an argument filter is emitted only where every reachable site's value is known (syscalls.filters.FILTERED_ARGS);
  otherwise the syscall is allowed whole and the rule says why.

What the surface cannot see (a number not known statically, a dlopen of an unknown name, a library not found) makes
the profile unsound: each is carried as a warning, so the output can say so.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass, field

from .. import __version__
from ..model import Report
from ..syscalls import load_table
from ..syscalls.filters import FILTERED_ARGS

DEFAULT_ACTIONS = ("errno", "kill", "log")
EPERM, ENOSYS = 1, 38
UNSOUND_KINDS = ("unknown-number", "dlopen", "missing-library", "not-analysed")
"""Open ends after which the surface may lack syscalls (an exec'd program has its own profile: not listed)."""

CLONE_NEW_FLAGS = 0x7E020000 | 0x00000080
"""CLONE_NEWNS|NEWCGROUP|NEWUTS|NEWIPC|NEWUSER|NEWPID|NEWNET (0x7e020000) and CLONE_NEWTIME (0x80)."""

NO_BITS: dict[str, int] = {"clone": CLONE_NEW_FLAGS}
"""Syscalls whose argument (syscalls.filters.FILTERED_ARGS) is filtered as "none of these bits set" rather than
"one of the known values" (clone's flags: no namespace). The others get one SCMP_CMP_EQ per value; a 32-bit
parameter is compared on its low 32 bits (the upper half of the register is not defined by the ABI)."""


@dataclass
class Cond:
    """One comparison of a syscall argument, as seccomp makes it (SCMP_CMP_EQ / SCMP_CMP_MASKED_EQ)."""

    index: int
    op: str  # "eq" | "masked_eq"
    value: int  # eq: the value; masked_eq: the mask
    value_two: int = 0  # masked_eq: what (arg & mask) must equal


@dataclass
class Rule:
    """What the profile does with one syscall of one ABI, and why."""

    abi: str
    nr: int
    name: str
    action: str  # "allow" | "errno"
    errno: int | None = None
    why: str = ""
    path: list[str] = field(default_factory=list)  # one surface path that reaches it
    binaries: list[str] = field(default_factory=list)
    alternatives: list[list[Cond]] = field(default_factory=list)  # allowed when one alternative holds; [] = always
    args_note: str | None = None  # why a filterable argument was not filtered
    libc_only: bool = True  # made only by a C library (or a static program's own copy of one): its fallbacks apply


@dataclass
class Profile:
    default_action: str  # one of DEFAULT_ACTIONS
    default_errno: int
    abis: list[str]  # the syscall ABIs the filter admits ("x86_64" always: the runtime's execve)
    rules: list[Rule]  # sorted by (abi, nr)
    unnamed: list[tuple[str, int]] = field(default_factory=list)  # in a surface, but no name in the table
    warnings: list[str] = field(default_factory=list)  # why the profile may be incomplete
    inputs: list[dict] = field(default_factory=list)  # {"path", "sha256"} per program
    tables: dict[str, str] = field(default_factory=dict)  # ABI -> the kernel version of the table that names
    tool: str = f"sysscan {__version__}"
    runtime: str | None = None  # the container runtime whose own post-filter syscalls are allowed

    def allowed(self) -> list[Rule]:
        return [r for r in self.rules if r.action == "allow"]


def build_profile(reports: list[Report], default: str = "errno", runtime: str | None = "runc") -> Profile:
    """The union of the reports' surfaces as one profile, plus what `runtime` itself makes after it installs the
    filter (RUNTIMES; None: only the execve that starts the program). ValueError when a report has no surface."""
    if default not in DEFAULT_ACTIONS:
        raise ValueError(f"unknown default action {default!r}")
    if runtime is not None and runtime not in RUNTIMES:
        raise ValueError(f"unknown runtime {runtime!r}")
    found: dict[tuple[str, int], Rule] = {}
    values: dict[tuple[str, int], tuple[set[int] | None, str]] = {}
    unnamed: set[tuple[str, int]] = set()
    warnings: list[str] = []
    for rep in sorted(reports, key=lambda r: r.binary.path):
        if rep.surface is None:
            raise ValueError(f"{rep.binary.path}: the report has no surface (scanned with --no-surface): a profile "
                             "needs every syscall the program can make")
        who = rep.binary.path
        for msg in rep.incomplete:
            warnings.append(f"{who}: the analysis is incomplete ({msg}): syscalls may be missing")
        for o in rep.surface.open_ends:
            if o.kind in UNSOUND_KINDS:
                at = f" at {o.address:#x}" if o.address is not None else ""
                warnings.append(f"{who}: {o.kind} in {o.object}{at}: {o.detail}")
        for s in rep.surface.syscalls:
            if not s.name:
                unnamed.add((s.abi, s.nr))
                continue
            key = (s.abi, s.nr)
            r = found.get(key)
            if r is None:
                r = found[key] = Rule(abi=s.abi, nr=s.nr, name=s.name, action="allow", path=list(s.path),
                                      why=_why(s.path, s.objects))
            r.binaries.append(who)
            r.libc_only = r.libc_only and all(_is_libc(o) or (rep.binary.static and o == rep.binary.name)
                                              for o in s.objects)
        _collect_args(rep, values)
    used = sorted({a for a, _ in found}, key=_abi_order)
    abis = sorted(set(used) | {"x86_64"}, key=_abi_order)
    x64 = load_table("x86_64")
    made = {r.name for r in found.values()}
    spec = _runtime(runtime) if runtime else None
    for name in (spec["syscalls"] if spec else ["execve"]):
        e = x64.by_name(name)
        if e is not None and name not in made:
            found[("x86_64", e.nr)] = Rule(
                abi="x86_64", nr=e.nr, name=name, action="allow",
                why=(f"{spec['runtime']} {spec['version']}'s init makes it after it installs the filter, before it "
                     f"execs the program (measured {spec['measured']}; the program itself does not)") if spec else
                "the runtime starts the program with execve after it installs the filter (no program path needs it)")
    if default != "log":  # an audit run logs what it would deny: no errno answers there
        _enosys(used, found)
    warnings += [f"{abi} syscall {nr} is made but has no name in the Linux {load_table(abi).kernel_version} table: "
                 "a profile names syscalls, so it is not allowed" for abi, nr in sorted(unnamed)]
    # a profile names syscalls and its architectures pick the numbers: a name allowed in one ABI is allowed in all
    allowed = {r.name for r in found.values() if r.action == "allow"}
    for key in [k for k, r in found.items() if r.action != "allow" and r.name in allowed]:
        del found[key]
    for key, r in found.items():
        if r.action == "allow" and r.name in FILTERED_ARGS:
            _arg_filter(r, *values.get(key, (None, "not in the report")))
    return Profile(default_action=default, default_errno=EPERM, abis=abis,
                   rules=[found[k] for k in sorted(found, key=lambda k: (_abi_order(k[0]), k[1]))],
                   unnamed=sorted(unnamed), warnings=sorted(set(warnings)),
                   inputs=[{"path": r.binary.path, "sha256": r.binary.sha256}
                           for r in sorted(reports, key=lambda r: r.binary.path)],
                   tables={abi: load_table(abi).kernel_version for abi in abis},
                   runtime=f"{spec['runtime']} {spec['version']}" if spec else None)


RUNTIMES = ("runc",)
"""Runtimes whose own syscalls between installing the filter and exec'ing the program were measured
(analyzer/seccomp/data/NAME.json, benchmarks/measure_runtime_syscalls.py)."""


@functools.lru_cache(maxsize=None)
def _runtime(name: str) -> dict:
    """Read once per process: `-o DIR` builds a profile per binary."""
    import json
    from importlib import resources

    return json.loads(resources.files(__package__).joinpath("data", f"{name}.json").read_text(encoding="utf-8"))


def _is_libc(obj: str) -> bool:
    """glibc's or musl's C library (or loader): the code whose clone3 falls back to clone on ENOSYS."""
    return obj.startswith(("libc.so", "ld-linux", "ld-musl", "libc.musl"))


def _abi_order(abi: str) -> int:
    return {"x86_64": 0, "i386": 1, "x32": 2}.get(abi, 3)


def _why(path: list[str], objects: list[str]) -> str:
    """The path's two ends, short enough for a comment: where it starts and the site."""
    if not path:
        return "made by " + ", ".join(objects)
    if len(path) <= 2:
        return " -> ".join(path)
    return f"{path[0]} -> ... -> {path[-2]} -> {path[-1]}"


def _enosys(used: list[str], found: dict[tuple[str, int], Rule]) -> None:
    """clone3 when clone is there; a syscall numbered above the highest one the programs make, when not made.
    A profile names syscalls for all its architectures at once, so a name is answered ENOSYS only when it is above
    that line in every ABI the programs use that has it."""
    for abi in used:
        table = load_table(abi)
        clone3, clone = table.by_name("clone3"), table.by_name("clone")
        made = found.get((abi, clone3.nr)) if clone3 is not None else None
        if clone3 is not None and clone is not None and (abi, clone.nr) in found and (made is None or made.libc_only):
            found[(abi, clone3.nr)] = Rule(abi=abi, nr=clone3.nr, name="clone3", action="errno", errno=ENOSYS,
                                           why="answered ENOSYS so the C library falls back to clone, whose flags "
                                               "a filter can read (clone3 passes them in memory)",
                                           binaries=made.binaries if made else [])
    tops = {abi: max((nr for (a, nr), r in found.items() if a == abi and r.action == "allow"), default=-1)
            for abi in used}
    named = {r.name for r in found.values()}
    newer: dict[str, tuple[str, int]] = {}
    above: dict[str, bool] = {}
    for abi in used:
        for e in load_table(abi):
            above[e.name] = above.get(e.name, True) and e.nr > tops[abi]
            newer.setdefault(e.name, (abi, e.nr))
    for name, (abi, nr) in newer.items():
        if above[name] and name not in named:
            found[(abi, nr)] = Rule(abi=abi, nr=nr, name=name, action="errno", errno=ENOSYS,
                                    why=f"newer than every syscall the programs make (above {tops[abi]} in {abi}): "
                                        "answered ENOSYS, as by a kernel without it, so a probe falls back")


def _collect_args(rep: Report, values: dict) -> None:
    """Per (abi, nr): (the surface's values of the filterable argument, why not known), merged over reports
    (unknown in one report: unknown in the profile). A report from before the surface kept them has none."""
    for s in rep.surface.syscalls:
        if s.name not in FILTERED_ARGS:
            continue
        arg = next((a for a in s.args if a.index == FILTERED_ARGS[s.name]), None)
        known, why = values.get((s.abi, s.nr), (set(), ""))
        if arg is None or arg.status != "resolved" or not arg.values:
            values[(s.abi, s.nr)] = (None, why or (arg.reason if arg is not None else "not in the report"))
        elif known is not None:
            values[(s.abi, s.nr)] = (known | set(arg.values), why)


def _arg_filter(r: Rule, vals: set[int] | None, why: str) -> None:
    idx = FILTERED_ARGS[r.name]
    param = _param(r.abi, r.name, idx)
    if not vals:
        r.args_note = f"{param} is not known everywhere it is made ({why or 'not known'}): allowed whole"
        return
    shown = ", ".join(f"{v:#x}" for v in sorted(vals))
    if r.name in NO_BITS:
        if any(v & NO_BITS[r.name] for v in vals):
            r.args_note = f"{param} can carry CLONE_NEW* flags ({shown})"
            return
        r.alternatives = [[Cond(idx, "masked_eq", NO_BITS[r.name], 0)]]
        r.why += f"; {param} never has a CLONE_NEW* bit (known values {shown})"
        return
    wide = _is_wide(r.abi, r.name, idx)
    r.alternatives = [[Cond(idx, "eq", v)] if wide else [Cond(idx, "masked_eq", 0xFFFFFFFF, v & 0xFFFFFFFF)]
                      for v in sorted(vals)]
    r.why += f"; {param} only {shown}"


def _param(abi: str, name: str, idx: int) -> str:
    e = load_table(abi).by_name(name)
    return e.args[idx].name if e is not None and idx < len(e.args) else f"arg{idx}"


def _is_wide(abi: str, name: str, idx: int) -> bool:
    """Is the parameter a full register (long, pointer) rather than an int the ABI leaves the upper half of?"""
    if abi != "x86_64":
        return True
    e = load_table(abi).by_name(name)
    t = e.args[idx].type if e is not None and idx < len(e.args) else "long"
    return "long" in t or "*" in t or "size_t" in t
