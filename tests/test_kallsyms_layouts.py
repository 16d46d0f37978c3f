"""kallsyms recovery across the layouts and encodings scripts/kallsyms.c has written, including those Debian's images
do not exercise (their 6.1 and 6.12 cloud images are checked symbol by symbol in tests/test_kernel_vmlinuz.py).

The tables are written here as scripts/kallsyms.c writes them: the names compressed with a token table (the
characters used keep their own slot; the others hold longer tokens), ULEB128 lengths, a marker every 256 names,
the optional kallsyms_seqs_of_names, and the addresses before the names (up to 6.3) or after the token index
(6.4+), as absolute u64 (!BASE_RELATIVE), relative offsets, or absolute-percpu offsets. Each is embedded in a
segment among other bytes and must come back exactly, with the layout and encoding named.
"""
from __future__ import annotations

import random
import struct

import pytest

from analyzer.kernel import kallsyms

TEXT = 0xFFFFFFFF81000000
SEGMENT = 0xFFFFFFFF82000000


def symbols(n: int = 900, seed: int = 3) -> list[tuple[bytes, str, int]]:
    rnd = random.Random(seed)
    out = [(b"_text", "T", TEXT), (b"_stext", "T", TEXT), (b"startup_64", "T", TEXT)]
    addr = TEXT + 0x40
    for i in range(n):
        kind = rnd.choice("TtTtDdRrBb")
        long = i % 97 == 0  # a name longer than 127 tokens: a two-byte ULEB128 length
        name = (f"sym_{i}_" + ("x" * 190 if long else rnd.choice(["read", "write", "ops", "sys_open", "v4l2"])))
        out.append((name.encode(), kind, addr))
        addr += rnd.randrange(16, 4096, 16)
    out += [(b"fixed_percpu_data", "A", 0), (b"cpu_number", "A", 0x2000)]  # per-cpu: absolute, below kernel space
    return sorted(out, key=lambda s: s[2])


def _align(buf: bytearray, a: int) -> None:
    while (SEGMENT + len(buf)) % a:
        buf.append(0)


def _uleb(n: int) -> bytes:
    return bytes([n]) if n < 0x80 else bytes([(n & 0x7F) | 0x80, n >> 7])


def tables(syms, layout: str, encoding: str, seqs: bool = True, marker_width: int = 4) -> bytes:
    """The kallsyms blob at SEGMENT, preceded by unrelated bytes."""
    used = sorted({c for name, t, _ in syms for c in t.encode() + name})
    tokens = []
    spare = iter(b"~%d~" % i for i in range(256))  # tokens for the unused slots (never referenced here)
    for i in range(256):
        tokens.append(bytes([i]) if i in used else next(spare))
    entries = [t.encode() + name for name, t, _ in syms]
    names = bytearray()
    markers = []
    for i, e in enumerate(entries):
        if i % 256 == 0:
            markers.append(len(names))
        names += _uleb(len(e)) + e
    table = bytearray()
    index = []
    for tok in tokens:
        index.append(len(table))
        table += tok + b"\0"
    addrs = [a for _, _, a in syms]
    if encoding == "absolute":
        addr_part = struct.pack(f"<{len(addrs)}Q", *addrs)
        base = None
    elif encoding == "relative":
        base = min(addrs)
        addr_part = struct.pack(f"<{len(addrs)}I", *(a - base for a in addrs))
    else:  # absolute-percpu
        base = TEXT
        addr_part = struct.pack(f"<{len(addrs)}i", *(a if t == "A" else base - a - 1 for _, t, a in syms))
    order = sorted(range(len(syms)), key=lambda i: syms[i][0])
    seq_part = b"".join(i.to_bytes(3, "big") for i in order) if seqs else b""

    buf = bytearray(random.Random(1).randbytes(0x3000))  # whatever .rodata holds before

    def addresses() -> None:
        _align(buf, 8)
        buf.extend(addr_part)
        if base is not None:
            _align(buf, 8)
            buf.extend(struct.pack("<Q", base))

    if layout == "offsets-first":
        addresses()
    _align(buf, 8)
    buf.extend(struct.pack("<I", len(syms)))
    _align(buf, 8)
    buf.extend(names)
    _align(buf, 8)
    buf.extend(struct.pack(f"<{len(markers)}{'I' if marker_width == 4 else 'Q'}", *markers))
    if seqs and layout == "offsets-first":
        _align(buf, 8)
        buf.extend(seq_part)
    _align(buf, 8)
    buf.extend(table)
    _align(buf, 8)
    buf.extend(struct.pack("<256H", *index))
    if layout == "offsets-last":
        addresses()
        if seqs:
            _align(buf, 8)
            buf.extend(seq_part)
    buf.extend(random.Random(2).randbytes(0x1000))
    return bytes(buf)


@pytest.mark.parametrize("layout,encoding,seqs,marker_width", [
    ("offsets-first", "absolute", False, 8),  # before 4.6: absolute addresses, unsigned long markers
    ("offsets-first", "absolute-percpu", False, 8),  # 4.6-4.19 on x86-64
    ("offsets-first", "absolute", False, 4),  # !KALLSYMS_BASE_RELATIVE (other architectures, old kernels)
    ("offsets-first", "relative", False, 4),
    ("offsets-first", "absolute-percpu", False, 4),  # x86-64 SMP up to 6.1
    ("offsets-first", "absolute-percpu", True, 4),  # 6.2-6.3 (Debian backported the seqs to 6.1)
    ("offsets-last", "absolute-percpu", True, 4),  # 6.4+
    ("offsets-last", "relative", True, 4),  # 6.4+ without absolute per-cpu symbols
    ("offsets-last", "absolute", True, 4),
])
def test_every_layout_and_encoding_comes_back_exactly(layout, encoding, seqs, marker_width):
    syms = symbols()
    if encoding == "relative":
        syms = [s for s in syms if s[1] != "A"]  # only the percpu encoding stores absolute values
    blob = tables(syms, layout, encoding, seqs, marker_width)
    got = kallsyms.recover([(SEGMENT, blob)], TEXT)
    assert (got.layout, got.encoding) == (layout, encoding)
    assert list(zip(got.names, map(chr, got.types), got.addresses)) == syms


def test_no_token_table_says_so():
    with pytest.raises(kallsyms.NoKallsyms, match="no kallsyms token table"):
        kallsyms.recover([(SEGMENT, bytes(4096))], TEXT)


def test_tables_whose_text_is_elsewhere_are_not_taken():
    """The encoding is chosen by where it puts _text: an image whose text starts elsewhere decodes to nothing."""
    blob = tables(symbols(), "offsets-last", "absolute-percpu")
    with pytest.raises(kallsyms.NoKallsyms, match="none decodes"):
        kallsyms.recover([(SEGMENT, blob)], TEXT + 0x1000)


def test_damaged_markers_are_refused():
    syms = symbols()
    blob = bytearray(tables(syms, "offsets-last", "absolute-percpu"))
    names_len = sum(len(_uleb(len(t.encode() + n))) + 1 + len(n) for n, t, _ in syms[:256])
    needle = struct.pack("<I", names_len)  # markers[1]
    at = blob.index(needle)
    blob[at:at + 4] = struct.pack("<I", names_len + 1)
    with pytest.raises(kallsyms.NoKallsyms):
        kallsyms.recover([(SEGMENT, bytes(blob))], TEXT)


def test_elf_symtab_sizes_reach_the_next_symbol_and_entry_labels_stay_inside():
    syms = [(b"_text", "T", TEXT), (b"__entry_text_start", "T", TEXT + 0x100),
            (b"entry_SYSCALL_64", "T", TEXT + 0x100), (b"entry_SYSCALL_64_after_hwframe", "T", TEXT + 0x140),
            (b"entry_SYSCALL_64_safe_stack", "t", TEXT + 0x180), (b"entry_INT80_compat", "T", TEXT + 0x200),
            (b"__entry_text_end", "T", TEXT + 0x300), (b"do_syscall_64", "T", TEXT + 0x400),
            (b"do_syscall_64_helper", "t", TEXT + 0x480), (b"sys_call_table", "D", TEXT + 0x2000)]
    k = kallsyms.Kallsyms(names=[s[0] for s in syms], types=bytes(ord(s[1]) for s in syms),
                          addresses=[s[2] for s in syms], layout="offsets-last", encoding="relative",
                          table_address=0)
    raw, strtab = kallsyms.elf_symtab(k, [(1, TEXT, 0x1000, True), (2, TEXT + 0x2000, 0x1000, False)])
    got = {}
    for i in range(1, len(raw) // 24):
        name_off, info, _other, shndx, value, size = struct.unpack_from("<IBBHQQ", raw, 24 * i)
        name = strtab[name_off:strtab.index(b"\0", name_off)].decode()
        got[name] = (info & 0xF, info >> 4, shndx, value, size)
    assert got["entry_SYSCALL_64"][4] == 0x100  # over its two labels, up to the next entry
    assert got["entry_SYSCALL_64_after_hwframe"][4] == 0x40
    assert got["do_syscall_64"][4] == 0x80  # outside the entry text: up to the next symbol, as kallsyms says
    assert got["sys_call_table"][:3] == (kallsyms.STT_OBJECT, kallsyms.STB_GLOBAL, 2)
    assert got["entry_SYSCALL_64_safe_stack"][:3] == (kallsyms.STT_FUNC, kallsyms.STB_LOCAL, 1)


@pytest.mark.parametrize("before", ["zeros", "random", "marker-like"])
def test_a_token_table_without_the_rest_is_refused_with_bounded_work(before):
    """Hostile or damaged images: a real-looking token table and index after 16 MiB of zeros (every word a
    candidate kallsyms_markers[0]), of random bytes, or of words that look like a long markers run. The search is
    bounded (candidates tried nearest first, a few hundred at most) and ends in NoKallsyms, never a hang."""
    blob = tables(symbols(), "offsets-last", "absolute-percpu")
    tt, index_at = kallsyms._token_table(blob, blob.index(kallsyms.DIGITS))
    tail = blob[tt - tt % 8:index_at + 512]
    if before == "zeros":
        head = bytes(16 << 20)
    elif before == "random":
        head = random.Random(5).randbytes(4 << 20)
    else:
        head = b"".join(struct.pack("<I", 600 * i) for i in range(1 << 18))
    with pytest.raises(kallsyms.NoKallsyms, match="none decodes"):
        kallsyms.recover([(SEGMENT, head + tail)], TEXT)
