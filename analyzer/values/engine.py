"""The value engine: local data flow once per function, register values at sites, and the inter-procedural stage
(values/wrappers.py) for what one function cannot tell."""
from __future__ import annotations

from typing import TYPE_CHECKING

from ..budget import NEVER, BudgetExceeded, Deadline
from ..elf.decode import decoder
from .noreturn import NORETURN_NAMES

if TYPE_CHECKING:  # Capstone and the data-flow engine are imported on first use
    from ..program.model import LoadedBinary
    from ..sites import RawSite
    from .local import FunctionDataflow, ValueSummary


class ValueEngine:
    """Runs local data flow once per function and answers register values at sites."""

    def __init__(self, lb: LoadedBinary, deadline: Deadline = NEVER) -> None:
        self.lb = lb
        self.deadline = deadline
        self._flows: dict[tuple[int, int], FunctionDataflow] = {}
        self._failed: dict[tuple[int, int], Exception] = {}  # a function whose analysis raised: its sites share it
        self._noreturn: dict[int, bool] = {}
        self._cached_insns = 0
        self._big_work = 0  # instructions decoded for functions too big to solve whole (BIG_WORK)
        self._expected: dict[tuple[int, int], list[int]] = {}  # function -> the sites that will be asked about
        self.incomplete: list[str] = []
        self._md = decoder(lb.bits)

    def expect(self, sites) -> None:
        """The sites that will be asked about (RawSite objects): a function too big to solve whole is then solved
        once for all of its sites, not once per site."""
        for r in sites:
            self._expected.setdefault((r.function_start, r.function_end), []).append(r.address)

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

    BIG_WORK = 1_500_000
    """Instructions of oversized functions (local.WHOLE_LIMIT) decoded per scan, after which a question about
    another one gets "analysis bound reached": a file of garbage bounds cannot spend the time budget this way
    (~0.4 s per 60k-instruction function). OpenSSL's libcrypto, the largest real case met, uses ~150k."""

    MAX_CACHED_INSNS = 50_000
    """Decoded instructions kept across functions (~5 KB each with Capstone details): least recently used
    functions are dropped beyond this, so a binary of huge functions cannot grow memory without bound."""

    def flow(self, start: int, end: int, name: str, focus: int | None = None) -> FunctionDataflow:
        """The function's data flow. A function too big to solve whole (local.WHOLE_LIMIT) is solved for the
        blocks that reach `focus` (the instruction the caller will ask about); asking about another instruction
        of it solves that one's cone, from the same light decoding. local.AnalysisBound when the cone is too big."""
        key = (start, end)
        fd = self._flows.pop(key, None)
        lite = None
        if fd is not None and fd.partial and focus is not None and focus not in fd.insns:
            self._cached_insns -= _weight(fd)
            lite, fd = fd.lite, None
        if fd is not None:
            self._flows[key] = fd  # most recently used last
        else:
            if key in self._failed:
                raise self._failed[key]
            self.deadline.check(name)
            from ..values.local import BIG_FUNCTION_BYTES, AnalysisBound, FunctionDataflow
            if lite is None and end - start > BIG_FUNCTION_BYTES and self._big_work >= self.BIG_WORK:
                raise AnalysisBound(f"analysis bound reached: {name} spans more than {BIG_FUNCTION_BYTES} bytes, "
                                    "and this scan "
                                    f"already decoded {self._big_work} instructions of oversized functions")
            try:
                fd = FunctionDataflow(self.lb.memory, start, end, self.lb.bits, name, symbolize=self.lb.symbolize,
                                      noreturn=self.noreturn, deadline=self.deadline, focus=focus, lite=lite,
                                      also=tuple(self._expected.get(key, ())))
            except (BudgetExceeded, AnalysisBound):  # the bound depends on the question: not remembered
                raise
            except Exception as e:  # contained per function by build_site_safely; remembered for its other sites
                self._failed[key] = e
                raise
            self._flows[key] = fd
            if fd.partial and lite is None:
                self._big_work += len(fd.lite.insns)
            self.incomplete.extend(f"{name}: {m}" for m in fd.incomplete[:3])
            self._cached_insns += _weight(fd)
            while self._cached_insns > self.MAX_CACHED_INSNS and len(self._flows) > 1:
                old = self._flows.pop(next(iter(self._flows)))
                self._cached_insns -= _weight(old)
        return fd

    def at_site(self, site: RawSite, regs: list[str]) -> dict[str, ValueSummary]:
        fd = self.flow(site.function_start, site.function_end, site.function_name, site.address)
        state = fd.state_before(site.address)
        mask = 0xFFFFFFFF if regs[0] == "eax" else None
        from ..values.local import ValueSummary, summarize

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
            from ..values.wrappers import Interproc

            self.interproc = Interproc(self.lb, self)
        return self.interproc.refine(site, regs, out)


def _weight(fd: FunctionDataflow) -> int:
    """What a cached flow holds, in detailed instructions: a big function's light decoding and control flow too
    (an instruction without details and its place in a block cost about a tenth of one with details)."""
    return len(fd.insns) + (len(fd.lite.insns) // 10 if fd.partial else 0)
