"""The pipeline for one binary: load → sites → values → names → (kernel) → (rules) → Report.

This is the pure function a worker pool (or a distributed engine) runs: a path and options in, a Report out.
"""
from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from typing import TYPE_CHECKING

from . import model
from .limits import BUDGET_REASON, NEVER, BudgetExceeded, Deadline, Limits, gc_paused
from .syscalls import load_table
from .values.noreturn import NORETURN_NAMES

if TYPE_CHECKING:  # LIEF, Capstone and the data-flow engine are imported on first use: a run answered from the
    from .load import LoadedBinary  # result cache (analyzer.batch) imports this module for ScanOptions and
    from .sites import RawSite  # summarize_report only, and must not pay ~0.15 s (or ~1 s with LIEF) for them
    from .values.local import FunctionDataflow, ValueSummary


def load(path: str, max_size: int | None = None) -> LoadedBinary:
    """`analyzer.load.load`, imported when first called (a module attribute, so tests can still replace it)."""
    from .load import load as load_elf

    return load_elf(path, max_size)


def find_sites(lb: LoadedBinary, **kw):
    """`analyzer.sites.find_sites`, imported when first called (a module attribute, so tests can replace it)."""
    from .sites import find_sites as find

    return find(lb, **kw)

ABI_REGS = {
    "x86_64": ("rax", ("rdi", "rsi", "rdx", "r10", "r8", "r9")),
    "i386": ("eax", ("ebx", "ecx", "edx", "esi", "edi", "ebp")),
}
X32_BIT = 0x40000000


@dataclass
class ScanOptions:
    """Options that change results (and so belong in a cache key)."""

    max_seconds: float | None = None
    rules: object = None  # an analyzer.rules.RuleSet; None: the shipped rules; RuleSet([]): no rules
    kernel: object = None  # an analyzer.kernel.KernelAnalysis (--vmlinux), analysed once per run and shared

    def key(self) -> str:
        rules = "shipped" if self.rules is None else getattr(self.rules, "digest", "?")
        kernel = getattr(self.kernel, "sha256", None)
        return f"t={self.max_seconds};rules={rules};kernel={kernel}"


def site_abi(lb: LoadedBinary, instruction: str) -> str:
    """`syscall` in 64-bit code uses the x86-64 table; `int 0x80` and `sysenter` always use the i386 one."""
    if lb.bits == 64 and instruction == "syscall":
        return "x86_64"
    return "i386"


class ValueEngine:
    """Runs local data flow once per function and answers register values at sites."""

    def __init__(self, lb: LoadedBinary, deadline: Deadline = NEVER) -> None:
        self.lb = lb
        self.deadline = deadline
        self._flows: dict[tuple[int, int], FunctionDataflow] = {}
        self._failed: dict[tuple[int, int], Exception] = {}  # a function whose analysis raised: its sites share it
        self._noreturn: dict[int, bool] = {}
        self.incomplete: list[str] = []
        import capstone

        self._md = capstone.Cs(capstone.CS_ARCH_X86, capstone.CS_MODE_64 if lb.bits == 64 else capstone.CS_MODE_32)

    def close(self) -> None:
        """Drop what the analysis holds: the flows reference the engine (noreturn, summaries) and the engine them,
        so without this they wait for the cyclic collector, which scan_file pauses."""
        self._flows.clear()
        self._failed.clear()
        self.interproc = None

    def noreturn(self, target: int, depth: int = 0) -> bool:
        """Does a call to target never come back? By name for imports, else by looking for a way out of its body.

        Only functions with an exact extent (symbol size or .eh_frame range) are judged by their body: a guessed
        end could hide the `ret` and cut real paths."""
        if target in self._noreturn:
            return self._noreturn[target]
        self._noreturn[target] = False  # recursion guard
        name = self.lb.imports.get(target) or self.lb.symbols.get(target)
        result = False
        if name is not None and name.split("@")[0] in NORETURN_NAMES:
            result = True
        else:
            f = self.lb.function_at(target)
            if f is not None and f.start == target and f.source in ("symbol", "eh_frame") and depth < 3:
                result = self._body_never_returns(f.start, f.end, depth)
        self._noreturn[target] = result
        return result

    def _body_never_returns(self, start: int, end: int, depth: int) -> bool:
        code = self.lb.memory.read(start, min(end - start, 1 << 16))
        if not code:
            return False
        last = None
        for a, sz, m, op in self._md.disasm_lite(code, start):
            last = (a, sz, m, op)
            if m.startswith("ret") or m in ("iretq", "sysretq"):
                return False
            if m == "jmp" or (m.startswith("j") and m != "jmp"):
                try:
                    t = int(op, 16)
                except ValueError:
                    return False  # indirect jump: a jump table or a tail call; assume it may return
                if not start <= t < end:
                    if m != "jmp" or not self.noreturn(t, depth + 1):
                        return False
        if last is None or last[0] + last[1] < end - 16:
            return False  # did not decode to the end: do not guess
        return True

    MAX_CACHED_INSNS = 50_000
    """Decoded instructions kept across functions (~5 KB each with Capstone details): least recently used
    functions are dropped beyond this, so a binary of huge functions cannot grow memory without bound."""

    def flow(self, start: int, end: int, name: str) -> FunctionDataflow:
        key = (start, end)
        fd = self._flows.pop(key, None)
        if fd is not None:
            self._flows[key] = fd  # most recently used last
        else:
            if key in self._failed:
                raise self._failed[key]
            self.deadline.check(name)
            from .values.local import FunctionDataflow
            try:
                fd = FunctionDataflow(self.lb.memory, start, end, self.lb.bits, name, symbolize=self.lb.symbolize,
                                      noreturn=self.noreturn, deadline=self.deadline)
            except BudgetExceeded:
                raise
            except Exception as e:  # contained per function by build_site_safely; remembered for its other sites
                self._failed[key] = e
                raise
            self._flows[key] = fd
            self.incomplete.extend(f"{name}: {m}" for m in fd.incomplete[:3])
            self._cached_insns = getattr(self, "_cached_insns", 0) + len(fd.insns)
            while self._cached_insns > self.MAX_CACHED_INSNS and len(self._flows) > 1:
                old = self._flows.pop(next(iter(self._flows)))
                self._cached_insns -= len(old.insns)
        return fd

    def at_site(self, site: RawSite, regs: list[str]) -> dict[str, ValueSummary]:
        fd = self.flow(site.function_start, site.function_end, site.function_name)
        state = fd.state_before(site.address)
        mask = 0xFFFFFFFF if regs[0] == "eax" else None
        from .values.local import ValueSummary, summarize

        out: dict[str, ValueSummary] = {}
        for r in regs:
            if state is None:
                out[r] = ValueSummary((), (f"the site is not reached when decoding {site.function_name}",), ())
            else:
                out[r] = summarize(state.get(r), site.function_name, self.lb.bits, mask)
        return self._interproc(site, regs, out)

    interproc_enabled = True
    """The inter-procedural stage (values/wrappers.py): parameters resolved at the callers, clobber summaries."""
    interproc = None

    def _interproc(self, site: RawSite, regs: list[str], out: dict[str, ValueSummary]) -> dict[str, ValueSummary]:
        """Hand what the local engine could not finish to the inter-procedural stage (imported only when needed)."""
        if not self.interproc_enabled or all(s.status == "resolved" for s in out.values()):
            return out
        if self.interproc is None:
            from .values.wrappers import Interproc

            self.interproc = Interproc(self.lb, self)
        return self.interproc.refine(site, regs, out)


def name_syscall(abi: str, nr: int) -> model.SyscallRef:
    """Name a number from the embedded tables; x32 numbers (bit 30 set) in 64-bit code use the x32 table."""
    table_abi = abi
    if abi == "x86_64" and nr & X32_BIT:
        table_abi = "x32"
    table = load_table(table_abi)
    entry = table.get(nr) or (table.get(nr & ~X32_BIT) if table_abi == "x32" else None)
    if entry is None:
        return model.SyscallRef(nr=nr, abi=table_abi, name=None)
    return model.SyscallRef(nr=nr, abi=table_abi, name=entry.name,
                            params=[f"{a.type} {a.name}".strip() for a in entry.args])


def _register_value(reg: str, role: str, s: ValueSummary, lb: LoadedBinary,
                    param_type: str | None, param: str | None) -> model.RegisterValue:
    strings: dict[int, str] = {}
    if s.constants and (param_type is None or "char" in param_type):
        for v in s.constants:
            if lb.memory.is_readonly(v):
                text = lb.memory.read_cstring(v)
                if text is not None and (param_type is not None or len(text) >= 3):
                    strings[v] = text
    return model.RegisterValue(
        register=reg, role=role, values=list(s.constants), status=s.status, reasons=list(s.reasons),
        strings=strings, param=param,
        provenance=list(getattr(s, "provenance", ()) or (["local"] if s.constants else [])),
        callers=list(getattr(s, "callers", ())),
    )


def build_site(lb: LoadedBinary, raw: RawSite, engine: ValueEngine) -> model.Site:
    abi = site_abi(lb, raw.instruction)
    nreg, aregs = ABI_REGS[abi]
    # rcx as well before `syscall`: the instruction overwrites it, so a constant left there is a lost argument.
    extra_regs = ["rcx"] if abi == "x86_64" and raw.instruction == "syscall" else []
    vals = engine.at_site(raw, [nreg, *aregs, *extra_regs])
    number = vals[nreg]
    refs = [name_syscall(abi, nr) for nr in number.constants]
    # How many arguments to show: what the possible syscalls take; all six when we do not know which syscall.
    if refs and number.status == "resolved" and all(r.name for r in refs):
        nargs = max(len(r.params) for r in refs)
    else:
        nargs = len(aregs)
    single = refs[0] if len(refs) == 1 and refs[0].name else None
    args = []
    for i, reg in enumerate(aregs[:nargs]):
        ptype = pname = None
        if single and i < len(single.params):
            ptype, _, pname = single.params[i].rpartition(" ")
            pname = pname.lstrip("*")
        args.append(_register_value(reg, f"arg{i}", vals[reg], lb, ptype, pname))
    notes = []
    if lb.bits == 64 and abi == "i386":
        notes.append(f"{raw.instruction} in a 64-bit binary enters the kernel's 32-bit (i386) syscall table")
    if any(r.abi == "x32" for r in refs):
        notes.append("number has the x32 bit (0x40000000) set: the x32 table applies")
    for r in refs:
        if r.name is None:
            notes.append(f"number {r.nr} is not in the {r.abi} table of kernel {load_table(r.abi).kernel_version}")
    code = lb.memory.read(raw.address, 2) or b""
    return model.Site(
        address=raw.address, offset=raw.offset, section=raw.section, function=raw.function_name,
        function_address=raw.function_start, instruction=raw.instruction, abi=abi, bytes=code.hex(),
        number=_register_value(nreg, "number", number, lb, "int", None), args=args, syscalls=refs, notes=notes,
        extra_registers=[_register_value(r, "extra", vals[r], lb, "long", None) for r in extra_regs
                         if vals[r].constants],
    )


def binary_info(lb: LoadedBinary) -> model.BinaryInfo:
    return model.BinaryInfo(
        path=lb.path, name=os.path.basename(lb.path), size=lb.size, sha256=lb.sha256, arch=lb.arch, bits=lb.bits,
        elf_type=lb.elf_type, pie=lb.pie, static=lb.static, stripped=lb.stripped, interpreter=lb.interpreter,
        build_id=lb.build_id, entry=lb.entry, needed=sorted(lb.needed), functions=len(lb.functions),
    )


def summarize_report(report: model.Report) -> None:
    """Recompute the derived parts (syscall set, summary) from the sites and findings."""
    uses: dict[tuple[str, int], model.SyscallUse] = {}
    for site in report.sites:
        handlers = {(k.abi, k.nr): k for k in site.kernel}
        for ref in site.syscalls:
            u = uses.setdefault((ref.abi, ref.nr), model.SyscallUse(abi=ref.abi, nr=ref.nr, name=ref.name))
            u.sites.append(site.address)
            k = handlers.get((ref.abi, ref.nr))
            if k is not None:
                u.handler, u.enosys = k.handler, k.enosys
    report.syscalls = [uses[k] for k in sorted(uses)]
    s = model.Summary()
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


def unresolved_site(lb: LoadedBinary, raw: RawSite, reason: str) -> model.Site:
    """The site as far as site finding knows it, with every register unresolved for `reason` (a contained analysis
    failure or the time budget): it stays in the report, honestly marked, instead of vanishing."""
    abi = site_abi(lb, raw.instruction)
    nreg, aregs = ABI_REGS[abi]

    def unknown(reg: str, role: str) -> model.RegisterValue:
        return model.RegisterValue(register=reg, role=role, status="unresolved", reasons=[reason])

    code = lb.memory.read(raw.address, 2) or b""
    return model.Site(
        address=raw.address, offset=raw.offset, section=raw.section, function=raw.function_name,
        function_address=raw.function_start, instruction=raw.instruction, abi=abi, bytes=code.hex(),
        number=unknown(nreg, "number"), args=[unknown(r, f"arg{i}") for i, r in enumerate(aregs)],
    )


def build_site_safely(lb: LoadedBinary, raw: RawSite, engine: ValueEngine, incomplete: list[str]) -> model.Site:
    """`build_site`, with whatever goes wrong contained to this site: a bug or a library exception (LIEF,
    Capstone, networkx, angr) on hostile code makes this one site unresolved with the reason, and the rest of the
    binary is still analysed. MemoryError and RecursionError are contained too (the frame is gone by the time we
    catch them, so the memory is back)."""
    if engine.deadline.expired():
        return unresolved_site(lb, raw, BUDGET_REASON)
    try:
        return build_site(lb, raw, engine)
    except BudgetExceeded:
        return unresolved_site(lb, raw, BUDGET_REASON)
    except Exception as e:  # noqa: BLE001 - containment is the point
        why = f"analysis failed: {type(e).__name__}: {str(e)[:200]}"
        incomplete.append(f"{raw.address:#x} in {raw.function_name}: {why}")
        return unresolved_site(lb, raw, why)


def scan_file(path: str, options: ScanOptions | None = None, *, limits: Limits | None = None,
              progress=None) -> model.Report:
    """Analyse one ELF: the pure per-binary job.

    `limits.timeout` (else `options.max_seconds`) is the wall-clock budget: when it runs out, the sites not yet
    analysed are reported unresolved with reason "time budget exhausted" and `report.incomplete` says how many.
    `progress(stage, payload)`, when given, receives ("binary", a site-less report dict) once the ELF is loaded,
    so that a supervising process (limits.run_isolated) can still report the binary if this one is killed."""
    with gc_paused():
        return _scan_file(path, options, limits, progress)


def _scan_file(path: str, options: ScanOptions | None, limits: Limits | None, progress) -> model.Report:
    options = options or ScanOptions()
    timeout = limits.timeout if limits is not None else options.max_seconds
    deadline = Deadline(timeout)
    lb = load(path, limits.max_size if limits is not None else None)
    table = load_table("x86_64" if lb.bits == 64 else "i386")
    report = model.Report(
        binary=binary_info(lb),
        table=model.TableInfo(source="embedded", kernel_version=table.kernel_version, path=None),
    )
    incomplete: list[str] = list(lb.notes)
    if progress is not None:
        report.incomplete = sorted(set(incomplete))
        progress("binary", report.to_dict())
    raws, rejected = find_sites(lb, deadline=deadline, incomplete=incomplete,
                                max_sites=(limits or Limits()).max_sites)
    with contextlib.closing(ValueEngine(lb, deadline)) as engine:  # close(): its reference cycles go now
        sites = [build_site_safely(lb, r, engine, incomplete) for r in raws]
        skipped = sum(1 for s in sites if BUDGET_REASON in s.number.reasons)
        if skipped:
            incomplete.append(f"{BUDGET_REASON} ({timeout:g}s, --timeout): {skipped} of {len(sites)} sites not "
                              "analysed, reported unresolved")
        report.sites = sorted(sites, key=lambda s: s.address)
        report.rejected = [model.Rejected(r.address, r.pattern, r.function, r.reason) for r in rejected]
        if lb.needed and engine.interproc_enabled:  # calls to a library's own syscall wrappers (libc's syscall())
            try:
                from .values.wrappers import library_wrapper_calls

                report.wrapper_calls = library_wrapper_calls(lb, engine, incomplete)
            except Exception as e:  # noqa: BLE001 - an extra; never costs the sites
                incomplete.append(f"calls to library syscall wrappers not analysed: {type(e).__name__}: {str(e)[:160]}")
        report.incomplete = sorted(set(engine.incomplete) | set(incomplete))
    if options.kernel is not None:
        from .link import link_report  # the kernel stage: each site's path into this kernel

        try:
            link_report(report, options.kernel)
        except Exception as e:  # noqa: BLE001 - a hostile kernel must not cost the binary its report
            report.incomplete = sorted(set(report.incomplete) | {
                f"kernel linking failed: {type(e).__name__}: {str(e)[:200]} (sites may lack kernel paths)"})
    if not lb.stripped and report.sites:
        from .sources import has_debug_line, site_sources  # DWARF file:line of each site, when built with -g

        if has_debug_line(path):
            found, note = site_sources(path, [s.address for s in report.sites])
            for s in report.sites:
                s.source = found.get(s.address)
            if note:
                report.incomplete = sorted(set(report.incomplete) | {note})
    summarize_report(report)
    from .rules import apply_rules  # the rules stage: pure, report in -> findings + summary counts

    apply_rules(report, options.rules)
    return report
