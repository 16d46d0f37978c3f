"""Go binaries: function starts and names from the pclntab, which Go keeps even in stripped binaries.

The runtime needs the pc→function table for stack traces and garbage collection, so `go build -ldflags=-s -w`
removes .symtab and DWARF but never the pclntab. We read its function table: every function's entry, its end (the
next entry) and its full name (`syscall.Syscall`, `runtime/internal/syscall.Syscall6`, `main.main`).

Layouts (header magic, little-endian):

* 0xfffffffb — Go 1.2 … 1.15: header then `functab[nfunc]` of (entry uintptr, funcoff uintptr); names are
  offsets from the pclntab start.
* 0xfffffffa — Go 1.16, 1.17: header with offsets of funcnametab and pclntab; functab entries are
  (entry uintptr, funcoff uintptr).
* 0xfffffff0 / 0xfffffff1 — Go 1.18, 1.19 / 1.20+: header also holds textStart; functab entries are
  (entryoff uint32, funcoff uint32) relative to textStart.

The table is found by its section (`.gopclntab`) or, without section headers, by searching read-only memory for a
header that validates (sorted entries inside the executable ranges).
"""
from __future__ import annotations

import struct
from dataclasses import dataclass

MAGICS = {0xFFFFFFFB: "1.2", 0xFFFFFFFA: "1.16", 0xFFFFFFF0: "1.18", 0xFFFFFFF1: "1.20"}
MAX_FUNCS = 1 << 20


@dataclass(frozen=True)
class GoFunc:
    start: int
    end: int
    name: str


@dataclass
class GoInfo:
    """What a Go binary tells us about itself."""

    pclntab: int  # address of the header
    version: str  # pclntab layout: "1.2" | "1.16" | "1.18" | "1.20"
    ptr_size: int
    functions: list[GoFunc]

    @property
    def regabi_possible(self) -> bool:
        """Go ≥ 1.17 on amd64 passes arguments in registers (ABIInternal); older Go only on the stack (ABI0)."""
        return self.version in ("1.18", "1.20") or self.version == "1.16"  # 1.16 layout is also used by 1.17


def parse_pclntab(data: bytes, addr: int, text_ok, base: int = 0) -> GoInfo | None:
    """Parse a pclntab whose header is at data[base] (loaded at `addr`). `text_ok(a)` says whether a is executable.

    Returns None when the bytes do not form a consistent table (a false match of the magic)."""
    if len(data) < base + 16:
        return None
    magic, pad1, pad2, min_lc, ptr = struct.unpack_from("<IBBBB", data, base)
    version = MAGICS.get(magic)
    if version is None or pad1 or pad2 or min_lc not in (1, 2, 4) or ptr not in (4, 8):
        return None
    word = "<Q" if ptr == 8 else "<I"

    def uword(off: int) -> int | None:
        if off < 0 or base + off + ptr > len(data):
            return None
        return struct.unpack_from(word, data, base + off)[0]

    def cstr(off: int) -> str | None:
        if off < 0 or base + off >= len(data):
            return None
        end = data.find(b"\0", base + off, base + off + 4096)
        if end < 0:
            return None
        try:
            return data[base + off:end].decode("utf-8")
        except UnicodeDecodeError:
            return None

    nfunc = uword(8)
    if nfunc is None or not 0 < nfunc < MAX_FUNCS:
        return None
    entries: list[tuple[int, int]] = []  # (entry address, funcoff)
    if version == "1.2":
        ftab = 8 + ptr
        name_base = 0
        func_base = 0
        for i in range(nfunc + 1):
            e = uword(ftab + i * 2 * ptr)
            f = uword(ftab + i * 2 * ptr + ptr)
            if e is None or f is None:
                return None
            entries.append((e, f))
    elif version == "1.16":
        # nfunc, nfiles, funcnameOffset, cuOffset, filetabOffset, pctabOffset, pclnOffset
        fields = [uword(8 + i * ptr) for i in range(7)]
        if any(x is None for x in fields):
            return None
        name_base, func_base = fields[2], fields[6]
        for i in range(nfunc + 1):
            e = uword(func_base + i * 2 * ptr)
            f = uword(func_base + i * 2 * ptr + ptr)
            if e is None or f is None:
                return None
            entries.append((e, f))
    else:
        # nfunc, nfiles, textStart, funcnameOffset, cuOffset, filetabOffset, pctabOffset, pclnOffset
        fields = [uword(8 + i * ptr) for i in range(8)]
        if any(x is None for x in fields):
            return None
        text_start, name_base, func_base = fields[2], fields[3], fields[7]
        end = base + func_base + (nfunc + 1) * 8
        if end > len(data):
            return None
        for i in range(nfunc + 1):
            eo, fo = struct.unpack_from("<II", data, base + func_base + i * 8)
            entries.append((text_start + eo, fo))

    # Validate: entries sorted and executable; the last one is the end of the text (it need not be executable).
    prev = -1
    for e, _ in entries:
        if e < prev:
            return None
        prev = e
    if not text_ok(entries[0][0]) or not text_ok(entries[nfunc // 2][0]):
        return None

    funcs: list[GoFunc] = []
    for i in range(nfunc):
        start, foff = entries[i]
        end = entries[i + 1][0]
        fstart = func_base + foff
        if version in ("1.18", "1.20"):
            if base + fstart + 8 > len(data):
                return None
            _entryoff, nameoff = struct.unpack_from("<Ii", data, base + fstart)
        else:
            if base + fstart + ptr + 4 > len(data):
                return None
            nameoff = struct.unpack_from("<i", data, base + fstart + ptr)[0]
        name = cstr(name_base + nameoff) or f"sub_{start:x}"
        if end > start:
            funcs.append(GoFunc(start, end, name))
    if not funcs:
        return None
    return GoInfo(addr, version, ptr, funcs)


def find_pclntab(sections: dict[str, tuple[int, bytes]], regions, text_ok) -> GoInfo | None:
    """The Go function table of a binary, or None when it is not a Go binary.

    `sections` maps section names to (address, bytes); `regions` are memory regions (start, data, writable) searched
    for the header when there is no .gopclntab section (section headers stripped)."""
    sec = sections.get(".gopclntab")
    if sec is not None:
        info = parse_pclntab(sec[1], sec[0], text_ok)
        if info is not None:
            return info
    for start, data, writable in regions:
        if writable:
            continue
        for magic in MAGICS:
            pat = struct.pack("<I", magic)
            i = data.find(pat)
            tries = 0
            while i >= 0 and tries < 64:
                if i % 4 == 0:
                    info = parse_pclntab(data, start + i, text_ok, base=i)
                    if info is not None:
                        return info
                tries += 1
                i = data.find(pat, i + 1)
    return None
