"""Function discovery by disassembly, for code no symbol, FDE or pclntab describes: a linear sweep (call targets,
code pointers in data on instruction boundaries, the start after the previous ret/jmp)."""
from __future__ import annotations

import bisect
import struct

from ..elf.decode import decoder
from .model import Function


class FunctionFinder:
    """Function starts for code no symbol, FDE or pclntab entry covers (busybox's own code has no .eh_frame).

    Disassembly-based discovery, run once and only when a caller lies outside every known function: a linear
    sweep of the executable ranges (Capstone; an undecodable byte is stepped over) marks instruction boundaries;
    the targets of `call rel32` found on boundaries, and code addresses stored as aligned words in data (function
    pointer tables) that fall on boundaries, are function starts. A function runs to the next start."""

    def __init__(self, lb) -> None:
        self.lb = lb
        self._starts: list[int] | None = None
        self.discovered = 0

    def function_for(self, addr: int):
        f = self.lb.function_at(addr)
        if f is not None and f.source in ("symbol", "eh_frame"):
            return f
        if self._starts is None:
            self._starts = self._discover()
        i = bisect.bisect_right(self._starts, addr) - 1
        if i < 0:
            return f
        start = self._starts[i]
        if f is not None and f.start >= start:
            return f
        end = self._starts[i + 1] if i + 1 < len(self._starts) else None
        rng = self.lb.exec_range_of(start)
        if rng is None:
            return f
        end = min(end or rng.end, rng.end)
        return Function(start, end, self.lb.symbols.get(start) or f"sub_{start:x}", "discovered", self.lb.sha256)

    _ENDS = ("ret", "jmp", "ud2", "hlt")

    def split_before(self, addr: int, f):
        """A start between f.start and addr: the first instruction after the last ret/jmp/ud2/hlt (and its
        padding) before addr, when there is one."""
        lb = self.lb
        if addr - f.start > (1 << 16):
            return None
        code = lb.memory.read(f.start, addr - f.start + 1)
        if not code:
            return None
        md = decoder(lb.bits)
        after_end = False
        best = None
        for a, sz, m, _op in md.disasm_lite(code + b"\x90" * 15, f.start):
            if a > addr:
                break
            if after_end and not (m.startswith("nop") or m == "int3" or m.startswith("xchg")):
                best = a
                after_end = False
            if m in self._ENDS or m.startswith("ret"):
                after_end = True
        if best is None or best <= f.start or best > addr:
            return None
        return Function(best, f.end, lb.symbols.get(best) or f"sub_{best:x}", "discovered", lb.sha256)

    def _discover(self) -> list[int]:
        lb = self.lb
        starts = {f.start for f in lb.functions}
        found = discover_starts(lb.memory, lb.exec_ranges, lb.bits)
        self.discovered = len(found - starts)
        return sorted(starts | found)


def discover_starts(memory, exec_ranges, bits: int) -> set[int]:
    """Function starts by disassembly: a linear sweep of the executable ranges marks instruction boundaries;
    `call rel32` targets on boundaries and code addresses stored as aligned words in data (function pointer
    tables) that fall on boundaries are starts."""
    md = decoder(bits)
    boundary: dict[int, bytearray] = {}
    calls: list[int] = []
    for rng in exec_ranges:
        data = memory.read(rng.start, rng.end - rng.start)
        if not data:
            continue
        marks = bytearray(len(data))
        boundary[rng.start] = marks
        off = 0
        n = len(data)
        while off < n:
            last = off
            for a, sz, m, op in md.disasm_lite(data[off:off + 65536], rng.start + off):
                marks[a - rng.start] = 1
                if m == "call" and op.startswith("0x"):
                    calls.append(int(op, 16))
                last = a - rng.start + sz
            off = last if last > off else off + 1
    spans = [(r.start, r.end) for r in exec_ranges]

    def on_boundary(t: int) -> bool:
        for lo, hi in spans:
            if lo <= t < hi:
                b = boundary.get(lo)
                return bool(b is not None and b[t - lo])
        return False

    found = {t for t in calls if on_boundary(t)}
    width = bits // 8
    fmt = "<Q" if width == 8 else "<I"
    lo_all = min((lo for lo, _ in spans), default=0)
    hi_all = max((hi for _, hi in spans), default=0)
    for r in memory.regions:
        if r.executable or not r.readable:
            continue
        data = r.data[: len(r.data) - len(r.data) % width]
        for (v,) in struct.iter_unpack(fmt, data):
            if lo_all <= v < hi_all and v not in found and on_boundary(v):
                found.add(v)
    return found
