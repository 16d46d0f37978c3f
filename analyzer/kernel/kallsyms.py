"""Symbols of a kernel without a symbol table (a vmlinuz's payload, a stripped vmlinux), from its kallsyms tables.

scripts/kallsyms.c compresses every symbol name with a 256-entry token table and emits, in one .rodata blob:
kallsyms_num_syms (u32), kallsyms_names (per symbol a length, ULEB128 since 6.1, then token bytes; the first
character is the nm type), kallsyms_markers (the offset of every 256th name: u32, unsigned long before 4.20),
[kallsyms_seqs_of_names (3 bytes per symbol)], kallsyms_token_table (256 NUL-terminated strings),
kallsyms_token_index (u16 offsets), and the addresses: kallsyms_offsets (s32) + kallsyms_relative_base (u64), or
kallsyms_addresses (u64) on old or !BASE_RELATIVE kernels. Up to 6.3 the addresses come first; 6.4 moved them
after the token index.

Nothing here trusts a version number. The token table is found by content (the characters used in names keep
their own slot, so "0".."9" are consecutive tokens 48..57), the index must match it entry for entry, the markers
must match the parsed names at every 256th entry, and among the address layouts and encodings (relative,
absolute-percpu, absolute) the one chosen is the one that puts `_text` and `_stext` at the ELF's text start.
"""
from __future__ import annotations

import bisect
import struct
from array import array
from dataclasses import dataclass

DIGITS = b"0\x001\x002\x003\x004\x005\x006\x007\x008\x009\x00"
MAX_ENTRY = 2 + 512  # ULEB128 length + KSYM_NAME_LEN
MAX_SYMS = 1 << 22
SEARCH_BACK = 1 << 24  # how far before the token table the markers may lie (seqs_of_names is 3 bytes/symbol)
MAX_MARKER_TRIES = 256  # zero words tried as kallsyms_markers[0], nearest the token table first
MAX_TABLE_TRIES = 16  # "0".."9" runs tried as the token table
MARKER_SLACK = 3  # how many marker-like words past the real markers are allowed for


class NoKallsyms(Exception):
    """The image has no kallsyms tables this reader can validate; the message says what was missing."""


@dataclass
class Kallsyms:
    names: list[bytes]  # without the type character
    types: bytes  # nm type per symbol: T t D d R r B b W w A V ...
    addresses: list[int]
    layout: str  # "offsets-first" | "offsets-last"
    encoding: str  # "relative" | "absolute-percpu" | "absolute"
    table_address: int  # kallsyms_token_table

    def __len__(self) -> int:
        return len(self.names)


def recover(segments: list[tuple[int, bytes]], text_start: int) -> Kallsyms:
    """Find and decode the kallsyms tables in the kernel-space segments [(vaddr, bytes)]; `text_start` is where
    `_text` must land. Raises NoKallsyms."""
    tried = 0
    for vaddr, data in segments:
        p = data.find(DIGITS)
        while p >= 0 and tried < MAX_TABLE_TRIES:
            tried += 1
            tokens = _token_table(data, p)
            if tokens is not None:
                tt, index_at = tokens
                found = _decode(data, vaddr, tt, index_at, text_start)
                if found is not None:
                    return found
            p = data.find(DIGITS, p + 1)
    if not tried:
        raise NoKallsyms("no kallsyms token table (the kernel was built without CONFIG_KALLSYMS?)")
    raise NoKallsyms("kallsyms tables found but none decodes to symbols that place _text at the text start")


def _token_table(data: bytes, digits: int) -> tuple[int, int] | None:
    """(start, the token index's position) if the "0".."9" at `digits` are tokens 48-57
    of a token table followed by its index."""
    p = digits
    for _ in range(48):  # back to token 0: each token is non-empty and ends with a NUL
        if p < 2 or data[p - 1] != 0:
            return None
        start = data.rfind(b"\0", 0, p - 1) + 1
        if start >= p - 1:
            return None
        p = start
    tt = p
    offsets = []
    for _ in range(256):
        end = data.find(b"\0", p)
        if end <= p:
            return None
        offsets.append(p - tt)
        p = end + 1
    want = array("H", offsets)
    raw = want.tobytes()
    for pad in range(16):  # the index follows, aligned
        if data.startswith(raw, p + pad):
            return tt, p + pad
    return None


def _decode(data: bytes, vaddr: int, tt: int, index_at: int, text_start: int) -> Kallsyms | None:
    z = tt - 4
    floor = max(0, tt - SEARCH_BACK)
    tries = 0
    while z >= floor and tries < MAX_MARKER_TRIES:  # markers[0] == 0: zero words before the table, nearest first
        z = data.rfind(b"\0\0\0\0", floor, z + 4)
        if z < 0:
            return None
        if (vaddr + z) % 4:
            z -= 1
            continue
        tries += 1
        for width in (4, 8):  # u32 markers; unsigned long (u64) before Linux 4.20
            if width == 8 and ((vaddr + z) % 8 or data[z + 4:z + 8] != b"\0\0\0\0"):
                continue
            markers = _markers(data, z, width)
            names = _names(data, z, markers)
            if names is not None:
                start, count, entries = names
                sym = _addresses(data, vaddr, start, count, index_at, entries, text_start, tt)
                if sym is not None:
                    return sym
        z -= 4
    return None


def _markers(data: bytes, z: int, width: int) -> list[int]:
    """The run of words from z that could be kallsyms_markers: 0, then increasing by what 256 names can take."""
    out = [0]
    p = z + width
    while p + width <= len(data):
        v = int.from_bytes(data[p:p + width], "little")
        step = v - out[-1]
        if not 2 * 256 <= step <= MAX_ENTRY * 256:
            break
        out.append(v)
        p += width
    return out


def _names(data: bytes, z: int, markers: list[int]):
    """(names start, symbol count, [(start, end) of each name's token bytes]) for the kallsyms_num_syms +
    kallsyms_names that end at the markers at z: the count precedes the names, and there is one marker per 256
    names (the run of marker-like words may go on a little past the real ones). The count is looked for among the
    words of the window where the names can start, by value (a C-speed filter), then each candidate is parsed."""
    for m in range(len(markers), max(0, len(markers) - MARKER_SLACK), -1):
        hi = z - markers[m - 1]  # the names start at or before this
        lo = max(8, hi - 256 * MAX_ENTRY)
        w0 = lo - 8 - (lo - 8) % 4
        words = array("I")
        words.frombytes(data[w0:hi - (hi - w0) % 4])
        low, high = 256 * (m - 1), 256 * m
        for k in [k for k, v in enumerate(words) if low < v <= high]:
            count_at = w0 + 4 * k
            for p in (count_at + 4, count_at + 8):  # the names follow the count, 8-aligned on 64-bit
                if lo <= p <= hi:
                    spans = _parse_names(data, p, words[k], markers, z)
                    if spans is not None:
                        return p, words[k], spans
    return None


def _parse_names(data: bytes, start: int, n: int, markers: list[int], z: int) -> list[tuple[int, int]] | None:
    spans = []
    pos = start
    for i in range(n):
        if not i & 0xFF and markers[i >> 8] != pos - start:
            return None
        if pos >= z:
            return None
        length = data[pos]
        if length & 0x80:
            length = (length & 0x7F) | (data[pos + 1] << 7)
            pos += 2
        else:
            pos += 1
        if length == 0:
            return None
        spans.append((pos, pos + length))
        pos += length
    if not 0 <= z - pos < 16:  # the markers follow, aligned
        return None
    return spans


def _addresses(data: bytes, vaddr: int, names_start: int, n: int, index_at: int, spans, text_start: int,
               tt: int) -> Kallsyms | None:
    names = _expand(data, spans, tt, index_at)
    if names is None:
        return None
    text_ids = [i for i, nm in enumerate(names) if nm[1:] in (b"_text", b"_stext")]
    if not text_ids:
        return None
    count_at = names_start - 4 if int.from_bytes(data[names_start - 4:names_start], "little") == n else names_start - 8
    index_end = index_at + 512
    candidates = []
    # Every table starts 8-aligned (scripts/kallsyms.c: `.balign 8` before each label on 64-bit).
    # offsets first (<= 6.3): [offsets][pad][relative_base][num_syms] or [addresses][num_syms]
    rb = count_at - 8
    at = rb - 4 * n
    candidates.append(("offsets-first", at - (vaddr + at) % 8, rb))
    candidates.append(("offsets-first", count_at - 8 * n, None))
    # offsets last (6.4+): [token_index][pad][offsets][pad][relative_base]
    off = _align(vaddr, index_end, 8)
    candidates.append(("offsets-last", off, _align(vaddr, off + 4 * n, 8)))
    candidates.append(("offsets-last", off, None))
    for layout, at, base_at in candidates:
        if at < 0 or at + (4 if base_at is not None else 8) * n > len(data):
            continue
        if base_at is None:
            vals = array("Q")
            vals.frombytes(data[at:at + 8 * n])
            encodings = {"absolute": list(vals)}
        else:
            if base_at + 8 > len(data):
                continue
            base = int.from_bytes(data[base_at:base_at + 8], "little")
            offs = array("i")
            offs.frombytes(data[at:at + 4 * n])
            encodings = {"relative": [base + (o & 0xFFFFFFFF) for o in offs],
                         "absolute-percpu": [o if o >= 0 else base - 1 - o for o in offs]}
        for enc, addrs in encodings.items():
            if all(addrs[i] == text_start for i in text_ids):
                return Kallsyms(names=[nm[1:] for nm in names], types=bytes(nm[0] for nm in names),
                                addresses=addrs, layout=layout, encoding=enc, table_address=vaddr + tt)
    return None


def _align(vaddr: int, pos: int, a: int) -> int:
    return pos + (-(vaddr + pos)) % a


def _expand(data: bytes, spans: list[tuple[int, int]], tt: int, index_at: int) -> list[bytes] | None:
    index = array("H")
    index.frombytes(data[index_at:index_at + 512])
    tokens = [data[tt + o:data.index(b"\0", tt + o)] for o in index]
    get = tokens.__getitem__
    join = b"".join
    out = [join(map(get, data[s:e])) for s, e in spans]
    return out if all(out) else None


# ---- an ELF symbol table from the recovered symbols ---------------------------------------------------------------
STB_LOCAL, STB_GLOBAL, STB_WEAK = 0, 1, 2
STT_NOTYPE, STT_OBJECT, STT_FUNC = 0, 1, 2
SHN_ABS = 0xFFF1
_SYM = struct.Struct("<IBBHQQ")


def elf_symtab(sym: Kallsyms, sections: list[tuple[int, int, int, bool]]) -> tuple[bytes, bytes]:
    """(.symtab bytes, .strtab bytes) in ELF64 form for the recovered symbols, so that the kernel stage reads them
    exactly as it reads a real symbol table. `sections`: (index, address, size, executable) of the loaded ones.

    kallsyms has no sizes: each symbol extends to the next higher address in its section, as the kernel's own
    kallsyms_lookup_size_offset() decides, with one exception. The entry code's assembly labels the points other
    code jumps to (entry_SYSCALL_64_safe_stack, entry_SYSCALL_64_after_hwframe), and kallsyms lists them like
    functions; between __entry_text_start and __entry_text_end (without those markers: from a symbol named
    entry_*) a symbol named like the one before it plus a suffix is a label inside it, so the function keeps going
    (its ELF symbol's size says the same)."""
    secs = sorted((a, a + n, i, x) for i, a, n, x in sections if a and n)
    order = sorted(range(len(sym)), key=sym.addresses.__getitem__)
    addrs = [sym.addresses[i] for i in order]
    names = [sym.names[i] for i in order]
    count = len(addrs)
    # the next higher address after each symbol's (one pass from the end)
    after = [0] * count
    nxt = None
    for k in range(count - 1, -1, -1):
        after[k] = nxt
        if k and addrs[k - 1] != addrs[k]:
            nxt = addrs[k]
    entry_lo, entry_hi = _named(sym, b"__entry_text_start"), _named(sym, b"__entry_text_end")
    marked = entry_lo is not None and entry_hi is not None
    infos = {(t, x): _info(chr(t), x) for t in set(sym.types) for x in (False, True)}
    strtab = bytearray(b"\0")
    out = [bytes(24)]  # the null symbol
    pack = _SYM.pack
    j = 0  # the section of the current address: addresses only grow
    for k in range(count):
        addr = addrs[k]
        while j < len(secs) and secs[j][1] <= addr:
            j += 1
        sec = secs[j] if j < len(secs) and secs[j][0] <= addr else None
        if sec is not None:
            end = after[k]
            if (entry_lo <= addr < entry_hi) if marked else names[k].startswith(b"entry_"):
                label, limit = names[k] + b"_", entry_hi if marked else sec[1]
                m = bisect.bisect_right(addrs, addr, k)
                while m < count and addrs[m] < limit and names[m].startswith(label):
                    m = bisect.bisect_right(addrs, addrs[m], m)
                end = addrs[m] if m < count else None
            size = min(end if end is not None else sec[1], sec[1]) - addr
            shndx, executable = sec[2], sec[3]
        else:
            size, shndx, executable = 0, SHN_ABS, False
        out.append(pack(len(strtab), infos[sym.types[order[k]], executable], 0, shndx, addr, size))
        strtab += names[k] + b"\0"
    return b"".join(out), bytes(strtab)


def _info(t: str, executable: bool) -> int:
    """st_info for an nm type letter: text in an executable section is a function, data an object; upper case
    is global, V/W weak."""
    upper = t.upper()
    kind = STT_FUNC if upper in "TW" and executable else STT_OBJECT if upper in "DRBVGSW" else STT_NOTYPE
    bind = STB_WEAK if upper in "WV" else STB_GLOBAL if t.isupper() else STB_LOCAL
    return bind << 4 | kind


def _named(sym: Kallsyms, name: bytes) -> int | None:
    try:
        return sym.addresses[sym.names.index(name)]
    except ValueError:
        return None
