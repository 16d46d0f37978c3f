"""Calls: the callers of a function (direct call/jmp/jcc and call/jmp through the GOT), PLT stubs and GOT calls of
imported functions."""
from __future__ import annotations

import re
import struct
import time

from .functions import FunctionFinder


def _rel32_fields(data: bytes, c: int, window: int = 1 << 16) -> list[int]:
    """Every x with le32(data[x:x+4]) == (c - x) mod 2^32: per window of x, the upper 16 bits of c - x take at most
    two values, searched as 2-byte needles at x + 2 (C speed); each hit is then checked in full."""
    out = []
    n = len(data) - 3  # x < n: four bytes to read
    for w in range(0, max(n, 0), window):
        xe = min(w + window, n)
        highs = {((c - w) >> 16) & 0xFFFF, ((c - xe + 1) >> 16) & 0xFFFF}
        for h in highs:
            needle = h.to_bytes(2, "little")
            pos = data.find(needle, w + 2, xe + 3)
            while pos >= 0:
                x = pos - 2
                if int.from_bytes(data[x:x + 4], "little") == (c - x) & 0xFFFFFFFF:
                    out.append(x)
                pos = data.find(needle, pos + 1, xe + 3)
    return sorted(set(out))


class CallIndex:
    """Every direct call/jump into each function start, found by a byte scan: the candidates, which the value stage
    confirms by decoding the caller (values/interproc.CallerIndex); and what is address-taken.

    Patterns: e8/e9 rel32 (call/jmp), eb/7x rel8 (short tail jumps), 0f 8x rel32 (jcc), ff 15/ff 25 through a
    read-only GOT slot."""

    PER_TARGET_SEARCHES = 8
    PER_TARGET_SECONDS = 0.5
    """Targets searched one by one (a few C-speed byte searches per 64 KB of code: 0.15 s on node's 80 MB) before
    the whole index is built (every call-like byte decoded in Python: 3.7 s on node, which asks for 1 target).
    Go binaries ask for dozens (Syscall chains: 24 on rclone), so they build the index at once."""

    def __init__(self, lb) -> None:
        self.lb = lb
        self._cands: dict[int, list[tuple[int, str, int]]] | None = None
        self._per_target: dict[int, list[tuple[int, str, int]]] = {}
        self._search_seconds = 0.0
        self._refs: dict[int, str] | None = None
        self.finder = FunctionFinder(lb)

    def _build(self) -> dict[int, list[tuple[int, str, int]]]:
        lb = self.lb
        cands: dict[int, list[tuple[int, str, int]]] = {}
        mask = (1 << lb.bits) - 1
        spans = [(r.start, r.end) for r in lb.exec_ranges]

        def add(target: int, at: int, kind: str, size: int) -> None:
            for lo, hi in spans:
                if lo <= target < hi:
                    cands.setdefault(target, []).append((at, kind, size))
                    return

        for rng in lb.exec_ranges:
            data = lb.memory.read(rng.start, rng.end - rng.start)
            if not data:
                continue
            n = len(data)
            for m in re.finditer(rb"[\xe8\xe9]", data):
                p = m.start()
                if p + 5 > n:
                    break
                rel = struct.unpack_from("<i", data, p + 1)[0]
                add((rng.start + p + 5 + rel) & mask, rng.start + p, "call" if data[p] == 0xE8 else "jmp", 5)
            # short tail jumps (jmp rel8, jcc rel8): a wrapper placed right after its caller (w1: jmp raw1)
            for m in re.finditer(rb"[\xeb\x70-\x7f]", data):
                p = m.start()
                if p + 2 > n:
                    break
                rel = data[p + 1] - 256 if data[p + 1] > 127 else data[p + 1]
                add((rng.start + p + 2 + rel) & mask, rng.start + p, "jmp" if data[p] == 0xEB else "jcc", 2)
            for m in re.finditer(rb"\x0f[\x80-\x8f]", data):
                p = m.start()
                if p + 6 > n:
                    break
                rel = struct.unpack_from("<i", data, p + 2)[0]
                add((rng.start + p + 6 + rel) & mask, rng.start + p, "jcc", 6)
            if lb.bits == 64:
                # call/jmp *disp32(%rip) through a GOT slot that is read-only after relocation (static, -fno-plt)
                for m in re.finditer(rb"\xff[\x15\x25]", data):
                    p = m.start()
                    if p + 6 > n:
                        break
                    slot = rng.start + p + 6 + struct.unpack_from("<i", data, p + 2)[0]
                    if lb.memory.is_readonly(slot):
                        t = lb.memory.read_u64(slot)
                        if t is not None:
                            add(t, rng.start + p, "call" if data[p + 1] == 0x15 else "jmp", 6)
        return cands

    def candidates(self, target: int) -> list[tuple[int, str, int]]:
        """(address, kind, size) of every call-like instruction whose target is `target` (not yet confirmed)."""
        if self._cands is not None:
            return self._cands.get(target, [])
        got = self._per_target.get(target)
        if got is None:
            if (len(self._per_target) >= self.PER_TARGET_SEARCHES or self._search_seconds > self.PER_TARGET_SECONDS
                    or getattr(self.lb, "go", None) is not None):
                self._cands = self._build()
                return self._cands.get(target, [])
            t0 = time.perf_counter()
            got = self._per_target[target] = self._search(target)
            self._search_seconds += time.perf_counter() - t0
        return got

    def _search(self, target: int) -> list[tuple[int, str, int]]:
        """What `_build()` finds for one target, without decoding every call-like byte of the binary: a rel32 field
        at offset x that reaches `target` holds (target - base - x - 4) mod 2^32, whose upper 16 bits are one of
        two values over any 64 KB of x, so two 2-byte searches per 64 KB window find every candidate field."""
        lb = self.lb
        mask = (1 << lb.bits) - 1
        spans = [(r.start, r.end) for r in lb.exec_ranges]
        if not any(lo <= target < hi for lo, hi in spans):
            return []
        slots = self._slots_holding(target) if lb.bits == 64 else []
        out: list[tuple[int, str, int]] = []
        for rng in lb.exec_ranges:
            data = lb.memory.read(rng.start, rng.end - rng.start)
            if not data:
                continue
            base, n = rng.start, len(data)
            for x in _rel32_fields(data, target - base - 4):
                if (base + x + 4 + struct.unpack_from("<i", data, x)[0]) & mask != target:
                    continue
                if x >= 1 and data[x - 1] in (0xE8, 0xE9):
                    out.append((base + x - 1, "call" if data[x - 1] == 0xE8 else "jmp", 5))
                if x >= 2 and data[x - 2] == 0x0F and 0x80 <= data[x - 1] <= 0x8F:
                    out.append((base + x - 2, "jcc", 6))
            near = target - base - 2  # jmp/jcc rel8 at p reaches p + 2 + [-128, 127]
            for p in range(max(0, near - 127), min(n - 1, near + 129)):
                b = data[p]
                if b == 0xEB or 0x70 <= b <= 0x7F:
                    r = data[p + 1]
                    if (base + p + 2 + (r - 256 if r > 127 else r)) & mask == target:
                        out.append((base + p, "jmp" if b == 0xEB else "jcc", 2))
            for slot in slots:
                for x in _rel32_fields(data, slot - base - 4):
                    if x >= 2 and data[x - 2] == 0xFF and data[x - 1] in (0x15, 0x25) and \
                            base + x + 4 + struct.unpack_from("<i", data, x)[0] == slot:
                        out.append((base + x - 2, "call" if data[x - 1] == 0x15 else "jmp", 6))
        return sorted(set(out))

    def _slots_holding(self, target: int) -> list[int]:
        """Read-only words that hold `target` (GOT slots of `call *slot(%rip)` after relocation)."""
        needle = target.to_bytes(8, "little")
        out = []
        for r in self.lb.memory.regions:
            p = r.data.find(needle)
            while p >= 0:
                if self.lb.memory.is_readonly(r.start + p):
                    out.append(r.start + p)
                p = r.data.find(needle, p + 1)
        return out

    def address_taken(self, target: int) -> list[str]:
        """Ways the function may also be reached indirectly: its address stored in data or formed in code.

        A conservative search, built once per binary: aligned words in non-executable memory (function pointer
        tables, GOT, vtables; the pclntab and .eh_frame encode addresses relatively or are skipped), rip-relative
        `lea`/`mov` and absolute immediates (`mov $f,%reg`, `push $f`) in code."""
        why = self.address_taken_all().get(target)
        return [why] if why else []

    def address_taken_all(self) -> dict[int, str]:
        """Every function start found address-taken, with the first place that takes it."""
        if self._refs is None:
            self._refs = self._build_refs()
        return self._refs

    def preset_address_taken(self, refs: dict[int, str]) -> None:
        """A saved answer (program/freeze.py): a frozen model has no bytes to search."""
        self._refs = dict(refs)

    def _build_refs(self) -> dict[int, str]:
        lb = self.lb
        starts = {f.start for f in lb.functions}
        refs: dict[int, str] = {}
        width = lb.bits // 8
        fmt = "<Q" if width == 8 else "<I"
        skip = _go_table_range(lb)
        for r in lb.memory.regions:
            if r.executable or not r.readable:
                continue
            data = r.data[: len(r.data) - len(r.data) % width]
            for k, (v,) in enumerate(struct.iter_unpack(fmt, data)):
                if v in starts and v not in refs:
                    a = r.start + k * width
                    if not (skip and skip[0] <= a < skip[1]):
                        refs[v] = f"its address is stored at {a:#x}"
        for rng in lb.exec_ranges:
            data = lb.memory.read(rng.start, rng.end - rng.start)
            if not data:
                continue
            n = len(data)
            if lb.bits == 64:
                # lea/mov disp32(%rip),%reg: REX.W 8d/8b with modrm mod=00 rm=101
                for m in re.finditer(rb"[\x48\x4c][\x8d\x8b]", data):
                    p = m.start()
                    if p + 7 <= n and data[p + 2] & 0xC7 == 0x05:
                        t = rng.start + p + 7 + struct.unpack_from("<i", data, p + 3)[0]
                        if t in starts and t not in refs:
                            refs[t] = f"its address is taken at {rng.start + p:#x}"
            # absolute immediates: mov $imm32,%r32 (b8+r), push $imm32 (68), movl $imm32,r/m (c7 /0, register form)
            for m in re.finditer(rb"[\xb8-\xbf\x68]|\xc7[\xc0-\xc7]", data):
                p = m.end()
                if p + 4 <= n:
                    t = struct.unpack_from("<I", data, p)[0]
                    if t in starts and t not in refs:
                        refs[t] = f"its address is used as an immediate at {rng.start + m.start():#x}"
        return refs


def call_index(lb) -> CallIndex:
    """The object's call index, built on first use and kept with its program model (every stage shares it)."""
    if lb.calls is None:
        lb.calls = CallIndex(lb)
    return lb.calls


def _go_table_range(lb) -> tuple[int, int] | None:
    go = getattr(lb, "go", None)
    if go is None or not go.functions:
        return None
    # Go 1.2-1.17 pclntabs store absolute entry addresses: they are not references.
    return (go.pclntab, go.pclntab + 16 + (len(go.functions) + 2) * 2 * go.ptr_size + (1 << 24))


def _through_got(lb, modrm: int, slots=None):
    """(code range, its bytes, offset, slot) of every `ff <modrm> disp32(%rip)` whose slot is in `slots` (default:
    the imports' GOT slots): modrm 0x25 is `jmp *slot` (a PLT stub), 0x15 `call *slot` (-fno-plt).

    In 32-bit code the same modrm takes an absolute address (a non-PIC PLT), and `ff a3` / `ff 93` take one relative
    to the GOT in %ebx (a PIC PLT, -fno-plt PIC calls). The GOT's base is not recorded anywhere the stubs could
    show: it is where .got.plt starts, three reserved words before the first jump slot (bfd, gold and lld alike).
    The jump slots (`lb.imports`) tell it: `slots` may hold .got's GLOB_DAT slots too, which lie below it."""
    slots = lb.imports if slots is None else slots
    if not slots:
        return
    forms = [(modrm, 0)]
    if lb.bits == 32:
        got = min(lb.imports or slots) - 12
        forms.append((modrm + 0x7E, got))  # 0x25 -> 0xa3, 0x15 -> 0x93: disp32(%ebx)
    for rng in lb.exec_ranges:
        data = lb.memory.read(rng.start, rng.end - rng.start)
        if not data:
            continue
        for form, base in forms:
            for m in re.finditer(re.escape(bytes((0xFF, form))), data):
                p = m.start()
                if p + 6 > len(data):
                    break
                disp = int.from_bytes(data[p + 2:p + 6], "little", signed=lb.bits == 64 or form != modrm)
                if lb.bits == 64:
                    slot = rng.start + p + 6 + disp
                else:
                    slot = (base + disp if form != modrm else disp) & 0xFFFFFFFF
                if slot in slots:
                    yield rng, data, p, slot


def plt_stubs(lb, slots=None) -> dict[int, int]:
    """PLT stub address (and its `jmp *slot` instruction) -> the GOT slot it jumps through, for the slots in
    `slots` (default: the imports'). A stub may open with endbr64 and jump with a bnd prefix."""
    stubs: dict[int, int] = {}
    for rng, data, p, slot in _through_got(lb, 0x25, slots):
        start = p - 1 if p >= 1 and data[p - 1] == 0xF2 else p  # bnd jmp
        stubs[rng.start + start] = slot
        if start >= 4 and data[start - 4:start] in (b"\xf3\x0f\x1e\xfa", b"\xf3\x0f\x1e\xfb"):  # endbr64/32
            stubs[rng.start + start - 4] = slot
    return stubs


def import_stubs(lb) -> dict[int, str]:
    """PLT stub (and `jmp *GOT` instruction) address -> imported name, from the jumps through GOT slots."""
    return {a: lb.imports[slot] for a, slot in plt_stubs(lb).items()}


def got_calls(lb) -> list[tuple[int, str]]:
    """`call *slot(%rip)` straight through a GOT slot of an import (-fno-plt): (address, imported name). Such a
    slot is bound at start (GLOB_DAT), not lazily: in 64-bit code every slot that names a symbol counts."""
    slots = lb.imports if lb.bits == 32 else {**lb.got_symbols, **lb.imports}
    return [(rng.start + p, slots[slot]) for rng, _data, p, slot in _through_got(lb, 0x15, slots)]
