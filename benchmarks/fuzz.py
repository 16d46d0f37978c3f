#!/usr/bin/env python3
"""Fuzz sysscan with mutated corpus ELFs (and mutated synthetic kernels): it must answer every input with a report
or a one-line error with a documented exit code, within its budget — never a traceback, a signal or a hang.

    python benchmarks/fuzz.py                       # 300 cases, seed 1 (what CI runs, via tests/test_fuzz.py)
    python benchmarks/fuzz.py --cases 5000          # the larger local run
    python benchmarks/fuzz.py --cases 2000 --seed 7 --keep-failures /tmp/fuzz-fails
    python benchmarks/fuzz.py --replay 1:123        # re-create case 123 of seed 1 and show the result

How it runs: cases are made deterministically from (seed, index) by mutating corpus binaries — truncation at
interesting offsets, ELF header fields set to 0 / huge / out-of-file values, program and section headers with
absurd offsets and sizes, symbols pointing outside the file, garbage .eh_frame and code, random byte flips,
zeroed ranges. Each case goes through the real CLI entry point (`analyzer.cli.main([FILE, "-f", "json", ...])`)
in a persistent worker process (importing LIEF costs ~1.5 s, so a process per case would be too slow for CI)
under RLIMIT_AS; the worker's stdout and stderr are captured at the file-descriptor level, so native libraries
writing to fd 2 are caught too. A worker that dies (signal) or does not answer within the case budget is a
crash / a hang and is restarted. A few cases also run as a real `python -m analyzer.cli` subprocess.

Per case, the assertion: exit code in the documented set (0, 3, 4, 5, 6, 10; 7 for kernels), a non-zero exit
has exactly one line on stderr naming the file, no "Traceback" anywhere, a JSON report that parses and
validates against the schema, and it finished within its budget.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import select
import signal
import struct
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT / "corpus"

USER_SEEDS = ["bin/idioms_nopie", "bin/i386_raw", "bin/libraw.so", "bin/decoys", "bin/idioms_pie_stripped",
              "bin/i386_pie", "bin/idioms_musl_static"]
LARGE_SEEDS = ["bin/hello_static_stripped"]
LARGE_EVERY = 25  # one case in this many mutates the large static binary (it takes ~4 s to analyse)
KERNEL_GLOB = "kernel/bin/vmlinux-*"
EXTRA_SEEDS_DIR = "hostile"  # corpus/hostile/*.elf: crafted inputs are good seeds too

OK_CODES = {0, 3, 4, 5, 6, 10}
KERNEL_OK_CODES = {0, 7}  # through the CLI (--vmlinux): every bad kernel is exit 7
KERNEL_API_OK_CODES = {0, 3, 4, 5, 6, 7}  # analyze_kernel() before the CLI has --vmlinux: any SysscanError
CASE_TIMEOUT = 20.0  # what the CLI is told (--timeout) for user binaries
HANG_GRACE = 25.0  # seconds past the CLI budget before the harness calls it a hang
WORKER_MEMORY_MB = 3072


# ---- ELF layout (our own parser: the mutator must not trust LIEF) ----------------------------------------------

@dataclass
class Layout:
    bits: int
    hdr: dict[str, tuple[int, int]]  # field -> (file offset, size)
    phdrs: list[dict[str, tuple[int, int, int]]]  # field -> (offset, size, value)
    shdrs: list[dict[str, tuple[int, int, int]]]
    sections: list[tuple[str, int, int, int]]  # (name, file offset, size, sh_type)
    symtabs: list[tuple[int, int, int]]  # (file offset, size, entsize) of SYMTAB/DYNSYM


def layout(data: bytes) -> Layout | None:
    if len(data) < 64 or data[:4] != b"\x7fELF" or data[4] not in (1, 2) or data[5] != 1:
        return None
    b64 = data[4] == 2
    names = ["e_type", "e_machine", "e_version", "e_entry", "e_phoff", "e_shoff", "e_flags", "e_ehsize",
             "e_phentsize", "e_phnum", "e_shentsize", "e_shnum", "e_shstrndx"]
    sizes = [2, 2, 4, 8, 8, 8, 4, 2, 2, 2, 2, 2, 2] if b64 else [2, 2, 4, 4, 4, 4, 4, 2, 2, 2, 2, 2, 2]
    hdr, off = {}, 16
    for n, s in zip(names, sizes):
        hdr[n] = (off, s)
        off += s
    hdr["EI_CLASS"], hdr["EI_DATA"], hdr["EI_VERSION"], hdr["EI_OSABI"] = (4, 1), (5, 1), (6, 1), (7, 1)

    def val(o: int, s: int) -> int:
        return int.from_bytes(data[o:o + s], "little") if o + s <= len(data) else 0

    g = {k: val(*v) for k, v in hdr.items()}
    if b64:
        pf = [("p_type", 4), ("p_flags", 4), ("p_offset", 8), ("p_vaddr", 8), ("p_paddr", 8), ("p_filesz", 8),
              ("p_memsz", 8), ("p_align", 8)]
        sf = [("sh_name", 4), ("sh_type", 4), ("sh_flags", 8), ("sh_addr", 8), ("sh_offset", 8), ("sh_size", 8),
              ("sh_link", 4), ("sh_info", 4), ("sh_addralign", 8), ("sh_entsize", 8)]
    else:
        pf = [("p_type", 4), ("p_offset", 4), ("p_vaddr", 4), ("p_paddr", 4), ("p_filesz", 4), ("p_memsz", 4),
              ("p_flags", 4), ("p_align", 4)]
        sf = [("sh_name", 4), ("sh_type", 4), ("sh_flags", 4), ("sh_addr", 4), ("sh_offset", 4), ("sh_size", 4),
              ("sh_link", 4), ("sh_info", 4), ("sh_addralign", 4), ("sh_entsize", 4)]

    def table(base: int, count: int, entsize: int, fields) -> list[dict]:
        out = []
        for i in range(min(count, 4096)):
            o = base + i * entsize
            if o + entsize > len(data):
                break
            ent, p = {}, o
            for n, s in fields:
                ent[n] = (p, s, val(p, s))
                p += s
            out.append(ent)
        return out

    phdrs = table(g["e_phoff"], g["e_phnum"], g["e_phentsize"] or 1, pf) if g["e_phentsize"] else []
    shdrs = table(g["e_shoff"], g["e_shnum"], g["e_shentsize"] or 1, sf) if g["e_shentsize"] else []
    strtab = None
    if 0 <= g["e_shstrndx"] < len(shdrs):
        s = shdrs[g["e_shstrndx"]]
        strtab = (s["sh_offset"][2], s["sh_size"][2])
    sections, symtabs = [], []
    for s in shdrs:
        name = ""
        if strtab and strtab[0] + s["sh_name"][2] < len(data):
            o = strtab[0] + s["sh_name"][2]
            end = data.find(b"\0", o, o + 64)
            name = data[o:end if end > 0 else o].decode("latin-1")
        sections.append((name, s["sh_offset"][2], s["sh_size"][2], s["sh_type"][2]))
        if s["sh_type"][2] in (2, 11):  # SYMTAB, DYNSYM
            symtabs.append((s["sh_offset"][2], s["sh_size"][2], s["sh_entsize"][2] or (24 if b64 else 16)))
    return Layout(64 if b64 else 32, hdr, phdrs, shdrs, sections, symtabs)


# ---- mutators: each (rng, data, layout) -> (new data, description) --------------------------------------------

def _put(data: bytearray, off: int, size: int, value: int) -> None:
    if 0 <= off and off + size <= len(data):
        data[off:off + size] = (value & ((1 << (8 * size)) - 1)).to_bytes(size, "little")


def _interesting(rng: random.Random, size: int, n: int, extra: list[int] = ()) -> int:
    top = (1 << (8 * size)) - 1
    choices = [0, 1, 2, 0x7F, 0x80, 0xFF, 0xFFFF, top, top >> 1, top - 1, n, n - 1, n + 1, n // 2, 4 * n,
               0x1000, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFF, 1 << 40, *extra]
    if rng.random() < 0.2:
        return rng.getrandbits(8 * size)
    return rng.choice(choices) & top


def m_truncate(rng, data, lay):
    n = len(data)
    points = {0, 1, 3, 4, 5, 15, 16, 17, 51, 52, 63, 64, n - 1, n // 2}
    if lay:
        for key in ("e_phoff", "e_shoff"):
            o, s = lay.hdr[key]
            v = int.from_bytes(data[o:o + s], "little")
            points |= {v, v + 1, v + 8, v + 31, v + 56}
        for name, off, size, _t in lay.sections:
            points |= {off, off + 1, off + size // 2, off + size - 1}
        for p in lay.phdrs:
            off, fs = p["p_offset"][2], p["p_filesz"][2]
            points |= {off, off + fs // 2, off + fs - 1}
    cut = rng.choice(sorted(x for x in points if 0 <= x < n))
    return bytes(data[:cut]), f"truncate at {cut:#x}"


HEADER_FIELDS = ["e_phoff", "e_shoff", "e_phnum", "e_shnum", "e_shstrndx", "e_phentsize", "e_shentsize", "e_entry",
                 "e_type", "e_machine", "e_ehsize", "EI_CLASS", "EI_DATA", "EI_VERSION", "e_version"]


def m_header(rng, data, lay):
    f = rng.choice(HEADER_FIELDS if rng.random() < 0.8 else HEADER_FIELDS[:7])
    o, s = lay.hdr[f]
    v = _interesting(rng, s, len(data), [3, 62, 40, 183, 56, 32, 64, 52])
    d = bytearray(data)
    _put(d, o, s, v)
    return bytes(d), f"{f}={v:#x}"


PH_FIELDS = ["p_type", "p_flags", "p_offset", "p_vaddr", "p_filesz", "p_memsz", "p_align"]


def m_phdr(rng, data, lay):
    if not lay.phdrs:
        return m_header(rng, data, lay)
    i = rng.randrange(len(lay.phdrs))
    d = bytearray(data)
    descs = []
    for _ in range(rng.choice((1, 1, 2, 3))):
        f = rng.choice(PH_FIELDS)
        o, s, _cur = lay.phdrs[i][f]
        other = rng.choice(lay.phdrs)
        v = _interesting(rng, s, len(data), [other["p_vaddr"][2], other["p_offset"][2], 1, 6, 7, 0x6474E552,
                                             0x6474E550, 0x10000000000])
        _put(d, o, s, v)
        descs.append(f"phdr[{i}].{f}={v:#x}")
    return bytes(d), ", ".join(descs)


SH_FIELDS = ["sh_name", "sh_type", "sh_flags", "sh_addr", "sh_offset", "sh_size", "sh_link", "sh_info",
             "sh_entsize", "sh_addralign"]


def m_shdr(rng, data, lay):
    if not lay.shdrs:
        return m_header(rng, data, lay)
    i = rng.randrange(len(lay.shdrs))
    # bias towards the sections that matter: code, symbols, strings, .eh_frame, .dynamic
    important = [j for j, (n, *_r) in enumerate(lay.sections)
                 if n in (".text", ".symtab", ".strtab", ".dynsym", ".dynstr", ".eh_frame", ".dynamic",
                          ".shstrtab", ".rela.plt", ".note.gnu.build-id", ".rawsys")]
    if important and rng.random() < 0.6:
        i = rng.choice(important)
    d = bytearray(data)
    f = rng.choice(SH_FIELDS)
    o, s, _cur = lay.shdrs[i][f]
    v = _interesting(rng, s, len(data), [4, 6, 7, 8, 1, 2, 3, 11, len(lay.shdrs), len(lay.shdrs) + 5])
    _put(d, o, s, v)
    return bytes(d), f"shdr[{i}:{lay.sections[i][0]}].{f}={v:#x}"


def m_symbols(rng, data, lay):
    if not lay.symtabs:
        return m_flip(rng, data, lay)
    off, size, ent = rng.choice(lay.symtabs)
    count = size // ent if ent else 0
    if count <= 1 or off + size > len(data):
        return m_flip(rng, data, lay)
    d = bytearray(data)
    b64 = lay.bits == 64
    # (field, offset in the entry, size)
    fields = ([("st_name", 0, 4), ("st_info", 4, 1), ("st_shndx", 6, 2), ("st_value", 8, 8), ("st_size", 16, 8)]
              if b64 else [("st_name", 0, 4), ("st_value", 4, 4), ("st_size", 8, 4), ("st_info", 12, 1),
                           ("st_shndx", 14, 2)])
    descs = []
    for _ in range(rng.choice((1, 3, 10, 50))):
        k = rng.randrange(1, count)
        f, fo, fs = rng.choice(fields)
        v = _interesting(rng, fs, len(data), [0x12, 0x1A, 0x02, 0xFFF1, 0x400000, 0x401000, 0x402000])
        _put(d, off + k * ent + fo, fs, v)
        descs.append(f"sym[{k}].{f}={v:#x}")
    return bytes(d), f"symbols: {', '.join(descs[:4])}{' …' if len(descs) > 4 else ''}"


def m_section_garbage(rng, data, lay):
    names = [".eh_frame", ".text", ".strtab", ".dynstr", ".dynamic", ".shstrtab", ".rela.plt", ".eh_frame_hdr",
             ".note.gnu.build-id", ".interp", ".symtab", ".rawsys", ".init", ".plt"]
    cands = [s for s in lay.sections if s[0] in names and s[3] != 8 and s[1] + s[2] <= len(data) and s[2]]
    if not cands:
        return m_zero(rng, data, lay)
    name, off, size, _t = rng.choice(cands)
    d = bytearray(data)
    how = rng.choice(("random", "zero", "ff", "partial", "syscalls", "jumps"))
    if how == "random":
        d[off:off + size] = rng.randbytes(size)
    elif how == "zero":
        d[off:off + size] = bytes(size)
    elif how == "ff":
        d[off:off + size] = b"\xff" * size
    elif how == "syscalls":  # a flood of candidate sites
        pat = rng.choice((b"\x0f\x05", b"\xcd\x80", b"\x0f\x34", b"\xb8\x01\x00\x00\x00\x0f\x05"))
        d[off:off + size] = (pat * (size // len(pat) + 1))[:size]
    elif how == "jumps":  # pathological control flow: a dense mesh of short branches and loops
        chunk = bytearray()
        while len(chunk) < size:
            chunk += rng.choice((b"\x74\xfe", b"\xeb\xfc", b"\x75\x02", b"\x48\x31\xc0", b"\x0f\x05", b"\x90",
                                 b"\x48\xff\xc0", b"\x50", b"\x58", b"\xc3", b"\xe8\x00\x00\x00\x00", b"\x7f\xf0"))
        d[off:off + size] = chunk[:size]
    else:
        a = off + rng.randrange(size)
        b = min(off + size, a + rng.randrange(1, 256))
        d[a:b] = rng.randbytes(b - a)
    return bytes(d), f"{name}: {how} bytes"


def m_flip(rng, data, lay):
    d = bytearray(data)
    n = rng.choice((1, 2, 4, 8, 16, 64))
    hot = rng.random() < 0.5
    spans = [(0, min(len(d), 64))]  # the headers are where a flip hurts most
    if lay and lay.phdrs:
        spans.append((lay.phdrs[0]["p_type"][0], lay.phdrs[-1]["p_align"][0] + lay.phdrs[-1]["p_align"][1]))
    if lay and lay.shdrs:
        spans.append((lay.shdrs[0]["sh_name"][0], lay.shdrs[-1]["sh_entsize"][0] + lay.shdrs[-1]["sh_entsize"][1]))
    for _ in range(n):
        lo, hi = rng.choice(spans) if hot else (0, len(d))
        hi = min(hi, len(d))
        if hi <= lo:
            continue
        pos = rng.randrange(lo, hi)
        d[pos] ^= (1 << rng.randrange(8)) if rng.random() < 0.7 else rng.randrange(1, 256)
    return bytes(d), f"{n} byte flips{' in headers' if hot else ''}"


def m_zero(rng, data, lay):
    d = bytearray(data)
    a = rng.randrange(len(d))
    b = min(len(d), a + rng.choice((8, 64, 512, 4096, len(d))))
    d[a:b] = bytes(b - a)
    return bytes(d), f"zero [{a:#x}, {b:#x})"


def _block_size(rng) -> int:
    return rng.choice((1, 3, 16, 512, 4096, 65536))


def _block_at(rng, data, lay) -> int:
    """Where a block goes: mostly inside code (where shifting it breaks what symbols and .eh_frame say)."""
    code = [(s["sh_offset"][2], s["sh_size"][2]) for s in (lay.shdrs if lay else [])
            if s["sh_flags"][2] & 0x4 and 0 < s["sh_offset"][2] < len(data)]  # SHF_EXECINSTR
    if code and rng.random() < 0.7:
        off, size = rng.choice(code)
        return min(len(data) - 1, off + rng.randrange(max(1, min(size, len(data) - off))))
    return rng.randrange(len(data))


def m_insert(rng, data, lay):
    """Insert a block (zeros, random bytes, or a copy of other bytes of the file): everything after it shifts,
    so offsets in the headers, symbols and .eh_frame no longer line up with the code (a corrupt download)."""
    at, n = _block_at(rng, data, lay), _block_size(rng)
    how = rng.choice(("zero", "zero", "random", "copy"))
    if how == "zero":
        block = bytes(n)
    elif how == "random":
        block = rng.randbytes(n)
    else:
        src = rng.randrange(len(data))
        block = (data[src:src + n] * (n // max(1, len(data[src:src + n])) + 1))[:n]
    return bytes(data[:at]) + block + bytes(data[at:]), f"insert {n} {how} bytes at {at:#x}"


def m_delete(rng, data, lay):
    """Delete a block: everything after it shifts back."""
    at = _block_at(rng, data, lay)
    n = min(_block_size(rng), len(data) - at - 1)
    return bytes(data[:at]) + bytes(data[at + max(1, n):]), f"delete {max(1, n)} bytes at {at:#x}"


def m_zero_block(rng, data, lay):
    """Zero a whole block in place (inside code, most often)."""
    at = _block_at(rng, data, lay)
    n = min(_block_size(rng), len(data) - at)
    d = bytearray(data)
    d[at:at + n] = bytes(n)
    return bytes(d), f"zero block [{at:#x}, {at + n:#x})"


BLOCK_MUTATORS = [(m_insert, 3), (m_delete, 2), (m_zero_block, 1)]


def m_extend(rng, data, lay):
    """Append junk, or pad a huge NOBITS-like tail: the file is longer than its headers say."""
    extra = rng.choice((1, 7, 4096, 65536))
    return bytes(data) + rng.randbytes(extra), f"append {extra} random bytes"


MUTATORS = [(m_truncate, 3), (m_header, 4), (m_phdr, 4), (m_shdr, 5), (m_symbols, 3), (m_section_garbage, 4),
            (m_flip, 4), (m_zero, 2), (m_extend, 1)]


def mutate(rng: random.Random, data: bytes) -> tuple[bytes, str]:
    steps = rng.choice((1, 1, 1, 2, 2, 3))
    descs = []
    for _ in range(steps):
        lay = layout(data)
        if lay is None:
            fn = rng.choice((m_flip, m_zero, m_extend)) if len(data) else m_extend
        else:
            fn = rng.choices([m for m, _ in MUTATORS], [w for _, w in MUTATORS])[0]
        if not data:
            break
        data, d = fn(rng, data, lay)
        descs.append(d)
        if fn is m_truncate:
            break
    return data, "; ".join(descs)


# ---- cases --------------------------------------------------------------------------------------------------------

@dataclass
class Case:
    seed: int
    index: int
    base: str
    kind: str  # "user" | "kernel"
    mutation: str
    data: bytes = field(repr=False)
    argv_extra: tuple[str, ...] = ()

    @property
    def ident(self) -> str:
        return f"{self.seed}:{self.index}"


def seed_files(kernel: bool = True) -> dict[str, list[str]]:
    user = [p for p in USER_SEEDS if (CORPUS / p).is_file()]
    user += sorted(str(p.relative_to(CORPUS)) for p in (CORPUS / EXTRA_SEEDS_DIR).glob("*.elf"))
    large = [p for p in LARGE_SEEDS if (CORPUS / p).is_file()]
    kern = sorted(str(p.relative_to(CORPUS)) for p in CORPUS.glob(KERNEL_GLOB)) if kernel else []
    return {"user": user, "large": large, "kernel": kern}


_seed_cache: dict[str, bytes] = {}


def _seed_bytes(rel: str) -> bytes:
    if rel not in _seed_cache:
        _seed_cache[rel] = (CORPUS / rel).read_bytes()
    return _seed_cache[rel]


def make_case(seed: int, index: int, seeds: dict[str, list[str]], kernel_every: int = 8) -> Case:
    """Case `index` of `seed`: always the same bytes. One case in `kernel_every` mutates a synthetic vmlinux
    (kernel_every=1: kernels only; 0: never)."""
    rng = random.Random(f"sysscan-fuzz:{seed}:{index}")
    if seeds["kernel"] and kernel_every and index % kernel_every == kernel_every - 1:
        kind, base = "kernel", rng.choice(seeds["kernel"])
    elif seeds["large"] and index % LARGE_EVERY == LARGE_EVERY - 1:
        kind, base = "user", rng.choice(seeds["large"])
    else:
        kind, base = "user", rng.choice(seeds["user"])
    data, desc = mutate(rng, _seed_bytes(base))
    if kind == "kernel" and rng.random() < BZIMAGE_SHARE:
        data, how = bzimage(rng, data if rng.random() < 0.5 else _seed_bytes(base))
        desc = f"{how} bzImage of ({desc})"
    extra: tuple[str, ...] = ()
    if kind == "user" and rng.random() < 0.15:
        extra = ("-f", "table", "-v", "--color", "always")  # the terminal renderer sees the garbage strings too
    return Case(seed, index, base, kind, desc, data, extra)


BZIMAGE_SHARE = 0.5  # kernel cases wrapped as a /boot/vmlinuz, some with their compressed payload damaged


def bzimage(rng: random.Random, elf: bytes) -> tuple[bytes, str]:
    """The ELF as a bzImage's payload, compressed by one of the formats a vmlinuz uses, then perhaps damaged: bytes
    flipped in the compressed stream, the stream cut, the size trailer lying, the header's payload fields absurd."""
    import bz2
    import gzip
    import lzma

    import lz4.block
    import zstandard

    fmt = rng.choice(("gzip", "bzip2", "xz", "lzma", "lz4", "zstd"))
    if fmt == "gzip":
        packed = gzip.compress(elf, 6, mtime=0)
    elif fmt == "bzip2":
        packed = bz2.compress(elf)
    elif fmt == "xz":
        packed = lzma.compress(elf, format=lzma.FORMAT_XZ, check=lzma.CHECK_CRC32,
                               filters=[{"id": lzma.FILTER_X86}, {"id": lzma.FILTER_LZMA2}])
    elif fmt == "lzma":
        packed = lzma.compress(elf, format=lzma.FORMAT_ALONE)
    elif fmt == "lz4":  # the legacy frame: magic, then (u32 size, block) per 8 MiB
        block = lz4.block.compress(elf, store_size=False)
        packed = b"\x02\x21\x4c\x18" + struct.pack("<I", len(block)) + block
    else:
        packed = zstandard.ZstdCompressor(write_content_size=False).compress(elf)
    size = len(elf)
    hows = [fmt]
    r = rng.random()
    if r < 0.3 and len(packed) > 16:
        b = bytearray(packed)
        for _ in range(rng.randint(1, 8)):
            b[rng.randrange(len(b))] ^= 1 << rng.randrange(8)
        packed = bytes(b)
        hows.append("flipped")
    elif r < 0.45:
        packed = packed[:rng.randrange(len(packed) + 1)]
        hows.append("cut")
    elif r < 0.55:
        size = rng.choice((0, 1, 0xFFFFFFFF, size * 1000))
        hows.append("size trailer lies")
    setup_sects = rng.choice((0, 1, 4, 31))
    head = bytearray((setup_sects or 4) * 512 + 512)
    head[0x1F1] = setup_sects
    head[0x1FE:0x200] = b"\x55\xaa"
    head[0x202:0x206] = b"HdrS"
    version = rng.choice((0x0206, 0x020F, 0x020F))
    struct.pack_into("<H", head, 0x206, version)
    stub = bytes(rng.randrange(0, 0x400))
    payload = packed + struct.pack("<I", size & 0xFFFFFFFF)
    off, length = len(stub), len(payload)
    if rng.random() < 0.15:
        off, length = rng.choice(((0xFFFFFFFF, length), (off, 0xFFFFFFFF), (0, 0), (off + 3, length)))
        hows.append("payload fields absurd")
    struct.pack_into("<II", head, 0x248, off, length)
    return bytes(head) + stub + payload, " ".join(hows)


# ---- the worker: runs cases in-process, results over a private pipe -----------------------------------------------

def worker_main(result_fd: int, memory_mb: int) -> None:
    import resource

    want = memory_mb * 1024 * 1024
    resource.setrlimit(resource.RLIMIT_AS, (want, want))
    os.environ.pop("SYSSCAN_DEBUG", None)
    os.environ.setdefault("XDG_CACHE_HOME", tempfile.mkdtemp(prefix="sysscan-fuzz-cache-"))
    from analyzer.cli import main as cli_main  # noqa: F401 - warm the imports before the first case
    import analyzer.run.pipeline  # noqa: F401
    try:
        import lief  # noqa: F401
    except ImportError:
        pass
    out = os.fdopen(result_fd, "w", buffering=1)
    saved1, saved2 = os.dup(1), os.dup(2)
    for line in sys.stdin:
        req = json.loads(line)
        argv = req["argv"]
        with tempfile.TemporaryFile() as fo, tempfile.TemporaryFile() as fe:
            _reset_peak()
            rss0 = _rss_mb()
            sys.stdout.flush()
            sys.stderr.flush()
            os.dup2(fo.fileno(), 1)
            os.dup2(fe.fileno(), 2)
            t0 = time.perf_counter()
            try:
                code = _dispatch(req.get("entry", "cli"), argv, cli_main)
            except SystemExit as e:  # argparse
                code = e.code if isinstance(e.code, int) else 2
            except BaseException as e:  # noqa: BLE001 - the harness reports it
                import traceback
                traceback.print_exc()
                code = f"escaped: {type(e).__name__}: {e}"
            dt = time.perf_counter() - t0
            sys.stdout.flush()
            sys.stderr.flush()
            os.dup2(saved1, 1)
            os.dup2(saved2, 2)
            fo.seek(0)
            fe.seek(0)
            stdout = fo.read().decode("utf-8", "replace")
            stderr = fe.read().decode("utf-8", "replace")
        out.write(json.dumps({"code": code, "stdout": stdout, "stderr": stderr, "seconds": dt,
                              "peak_mb": _peak_mb(), "rss_before_mb": rss0}) + "\n")


def _dispatch(entry: str, argv: list[str], cli_main) -> int:
    if entry == "kernel-api":
        # The kernel loader and analysis as a library call: BadKernel (exit 7) is the only acceptable error.
        from analyzer.errors import SysscanError
        from analyzer.kernel import analyze_kernel

        try:
            analyze_kernel(argv[0], use_cache=False)
        except SysscanError as e:
            print(f"sysscan: error: {e}", file=sys.stderr)
            return e.exit_code
        return 0
    return cli_main(argv)


def _reset_peak() -> None:
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
    except OSError:
        pass


def _rss_mb() -> float:
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def _peak_mb() -> float:
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    import resource
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


class Worker:
    """A persistent `fuzz.py --worker` process. `run` returns the case result, or a crash/hang marker."""

    def __init__(self, memory_mb: int = WORKER_MEMORY_MB) -> None:
        self.memory_mb = memory_mb
        self.proc: subprocess.Popen | None = None
        self.starts = 0

    def _start(self) -> None:
        r, w = os.pipe()
        env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
        env.pop("SYSSCAN_DEBUG", None)
        self.proc = subprocess.Popen([sys.executable, str(Path(__file__).resolve()), "--worker", str(w),
                                      "--worker-memory", str(self.memory_mb)],
                                     stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                     pass_fds=(w,), cwd=str(ROOT), env=env, text=True, start_new_session=True)
        os.close(w)
        self.rfd = r
        self.buf = b""
        self.starts += 1

    def close(self) -> None:
        if self.proc is not None:
            try:
                self.proc.stdin.close()
            except OSError:
                pass
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
            os.close(self.rfd)
            self.proc = None

    def _kill(self) -> int | None:
        assert self.proc is not None
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except OSError:
            pass
        rc = self.proc.wait()
        os.close(self.rfd)
        self.proc = None
        return rc

    def run(self, argv: list[str], timeout: float, entry: str = "cli") -> dict:
        if self.proc is None or self.proc.poll() is not None:
            if self.proc is not None:
                os.close(self.rfd)
                self.proc = None
            self._start()
        t0 = time.perf_counter()
        try:
            self.proc.stdin.write(json.dumps({"argv": argv, "entry": entry}) + "\n")
            self.proc.stdin.flush()
        except BrokenPipeError:
            rc = self._kill()
            return {"crash": f"worker died before the case (status {rc})", "seconds": 0.0}
        # first case of a fresh worker includes the imports
        deadline = t0 + timeout + (30.0 if self.starts and self.buf == b"" else 0.0)
        while b"\n" not in self.buf:
            left = deadline - time.perf_counter()
            if left <= 0:
                self._kill()
                return {"hang": True, "seconds": time.perf_counter() - t0}
            ready, _, _ = select.select([self.rfd], [], [], left)
            if not ready:
                continue
            chunk = os.read(self.rfd, 1 << 20)
            if not chunk:
                rc = self._kill()
                return {"crash": f"worker died: {_status(rc)}", "seconds": time.perf_counter() - t0}
            self.buf += chunk
        line, _, self.buf = self.buf.partition(b"\n")
        return json.loads(line)


def _status(rc: int | None) -> str:
    if rc is not None and rc < 0:
        try:
            return f"signal {signal.Signals(-rc).name}"
        except ValueError:
            return f"signal {-rc}"
    return f"exit status {rc}"


# ---- checking -----------------------------------------------------------------------------------------------------

_schema = None


def _validate(doc: dict) -> str | None:
    global _schema
    try:
        import jsonschema
    except ImportError:
        return None
    if _schema is None:
        _schema = json.loads((ROOT / "analyzer" / "schemas" / "report.schema.json").read_text())
    docs = doc["reports"] if "reports" in doc and "binary" not in doc else [doc]
    for d in docs:
        err = jsonschema.Draft7Validator(_schema).iter_errors(d)
        first = next(err, None)
        if first is not None:
            return f"schema: {first.message[:200]} at {'/'.join(map(str, first.path))}"
    return None


def check(case: Case, path: str, res: dict, budget: float) -> list[str]:
    """The per-case assertion. Returns the problems (empty: the case passed)."""
    if res.get("hang"):
        return [f"hang: no answer within {budget:g}s"]
    if res.get("crash"):
        return [f"crash: {res['crash']}"]
    problems = []
    code, out, err = res["code"], res["stdout"], res["stderr"]
    ok = OK_CODES
    if case.kind == "kernel":
        ok = KERNEL_OK_CODES if "--vmlinux" in res.get("argv", ()) else KERNEL_API_OK_CODES
    if not isinstance(code, int):
        problems.append(str(code))
    elif code not in ok:
        problems.append(f"exit code {code} not in {sorted(ok)}")
    if "Traceback" in err or "Traceback" in out:
        problems.append("traceback in output")
    lines = err.strip().splitlines()
    if code != 0:
        if len(lines) != 1:
            problems.append(f"stderr has {len(lines)} lines, want 1")
        elif path not in lines[0]:
            problems.append("the error line does not name the file")
    elif err.strip() and (case.kind == "user" or "--vmlinux" in res.get("argv", ())):
        problems.append(f"stderr not empty on success: {err.strip()[:120]!r}")
    if code == 0 and (case.kind == "user" or "--vmlinux" in res.get("argv", ())):
        if "-f" in case.argv_extra and "table" in case.argv_extra:
            if "\x1b[2J" in out or "\x1b]" in out:
                problems.append("terminal control sequence from the binary in the table output")
        else:
            try:
                doc = json.loads(out)
            except json.JSONDecodeError as e:
                problems.append(f"stdout is not JSON: {e}")
            else:
                bad = _validate(doc)
                if bad:
                    problems.append(bad)
    if res.get("seconds", 0) > budget:
        problems.append(f"took {res['seconds']:.1f}s, budget {budget:g}s")
    return problems


# ---- driver -------------------------------------------------------------------------------------------------------

@dataclass
class Outcome:
    ident: str
    base: str
    kind: str
    mutation: str
    code: object
    seconds: float
    peak_mb: float
    problems: list[str]
    stderr: str = ""
    growth_mb: float = 0.0  # peak RSS during the case minus RSS before it: what this case itself took


@dataclass
class Summary:
    seed: int
    cases: int = 0
    user_cases: int = 0
    kernel_cases: int = 0
    subprocess_cases: int = 0
    crashes: int = 0
    hangs: int = 0
    failures: int = 0
    exit_codes: dict[str, int] = field(default_factory=dict)
    slowest: tuple[str, float, str] = ("", 0.0, "")
    largest_mb: tuple[str, float] = ("", 0.0)  # the worker's peak RSS (includes what earlier cases left)
    largest_growth: tuple[str, float, str] = ("", 0.0, "")  # the most one case added on top of the worker
    wall_seconds: float = 0.0
    incomplete_reports: int = 0
    failed: list[Outcome] = field(default_factory=list)

    def add(self, o: Outcome) -> None:
        self.cases += 1
        if o.kind == "kernel":
            self.kernel_cases += 1
        else:
            self.user_cases += 1
        self.exit_codes[str(o.code)] = self.exit_codes.get(str(o.code), 0) + 1
        if any(p.startswith("crash") for p in o.problems):
            self.crashes += 1
        if any(p.startswith("hang") for p in o.problems):
            self.hangs += 1
        if o.problems:
            self.failures += 1
            self.failed.append(o)
        if o.seconds > self.slowest[1]:
            self.slowest = (o.ident, o.seconds, f"{o.base}: {o.mutation}")
        if o.peak_mb > self.largest_mb[1]:
            self.largest_mb = (o.ident, o.peak_mb)
        if o.growth_mb > self.largest_growth[1]:
            self.largest_growth = (o.ident, o.growth_mb, f"{o.base}: {o.mutation}")

    def text(self) -> str:
        lines = [
            f"fuzz seed {self.seed}: {self.cases} cases ({self.user_cases} user ELF, {self.kernel_cases} kernel, "
            f"{self.subprocess_cases} as subprocesses) in {self.wall_seconds:.0f}s",
            f"crashes {self.crashes}, hangs {self.hangs}, failed assertions {self.failures}",
            f"exit codes: {', '.join(f'{k}×{v}' for k, v in sorted(self.exit_codes.items()))}",
            f"reports marked incomplete: {self.incomplete_reports}",
            f"slowest case {self.slowest[0]}: {self.slowest[1]:.2f}s ({self.slowest[2]})",
            f"largest peak RSS of the worker {self.largest_mb[1]:.0f} MB (case {self.largest_mb[0]}); most memory "
            f"one case added {self.largest_growth[1]:.0f} MB (case {self.largest_growth[0]}: {self.largest_growth[2]})",
        ]
        for o in self.failed[:20]:
            lines.append(f"  FAIL {o.ident} {o.base} [{o.mutation}] -> {o.code}: {'; '.join(o.problems)}"
                         + (f" | stderr: {o.stderr.strip()[:300]!r}" if o.stderr.strip() else ""))
        return "\n".join(lines)


def run_subprocess_case(path: str, argv: list[str], budget: float, memory_mb: int) -> dict:
    """One case as the user runs it: a fresh interpreter, rlimits, a hard timeout."""
    import resource

    def limits() -> None:
        want = memory_mb * 1024 * 1024
        resource.setrlimit(resource.RLIMIT_AS, (want, want))

    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    env.pop("SYSSCAN_DEBUG", None)
    t0 = time.perf_counter()
    try:
        p = subprocess.run([sys.executable, "-m", "analyzer.cli", *argv], capture_output=True, timeout=budget + 30,
                           preexec_fn=limits, cwd=str(ROOT), env=env)
    except subprocess.TimeoutExpired:
        return {"hang": True, "seconds": time.perf_counter() - t0}
    dt = time.perf_counter() - t0
    if p.returncode < 0:
        return {"crash": _status(p.returncode), "seconds": dt}
    # a fresh interpreter pays ~1.5 s of imports: do not count it against the analysis budget
    return {"code": p.returncode, "stdout": p.stdout.decode("utf-8", "replace"),
            "stderr": p.stderr.decode("utf-8", "replace"), "seconds": max(0.0, dt - 3.0), "peak_mb": 0.0}


def kernel_cli() -> bool:
    """Does this checkout's CLI take --vmlinux? Then kernel cases go through it (the user's contract: exit 7 for
    any bad kernel); before that, through analyze_kernel() (any one-line SysscanError is acceptable)."""
    return '"--vmlinux"' in _cli_source()


def _cli_source() -> str:
    """The CLI's source, in a checkout where it is one module (analyzer/cli.py) or a package (analyzer/cli/)."""
    one = ROOT / "analyzer" / "cli.py"
    files = [one] if one.exists() else sorted((ROOT / "analyzer" / "cli").glob("*.py"))
    return "".join(f.read_text() for f in files)


def run_fuzz(cases: int = 300, seed: int = 1, time_limit: float | None = None, subprocess_cases: int = 4,
             keep_failures: str | None = None, kernel: bool = True, memory_mb: int = WORKER_MEMORY_MB,
             case_timeout: float = CASE_TIMEOUT, log=None, user: bool = True, kernel_every: int = 8) -> Summary:
    seeds = seed_files(kernel)
    if not user:
        seeds["user"], seeds["large"], kernel_every = [], [], 1
    via_cli = kernel_cli()
    summary = Summary(seed)
    worker = Worker(memory_mb)
    tmp = tempfile.mkdtemp(prefix="sysscan-fuzz-")
    t_start = time.perf_counter()
    sub_every = max(1, cases // subprocess_cases) if subprocess_cases else 0
    try:
        for i in range(cases):
            if time_limit is not None and time.perf_counter() - t_start > time_limit:
                break
            case = make_case(seed, i, seeds, kernel_every if kernel else 0)
            path = os.path.join(tmp, f"case-{seed}-{i}-{Path(case.base).name}")
            with open(path, "wb") as fh:
                fh.write(case.data)
            budget = case_timeout + HANG_GRACE
            if case.kind == "kernel" and via_cli:
                host = str(CORPUS / "bin" / "idioms_nopie")
                argv, entry = _drop_unsupported([host, "--vmlinux", path, "-f", "json", "--timeout",
                                                 str(case_timeout)]), "cli"
            elif case.kind == "kernel":
                argv, entry = [path], "kernel-api"
            else:
                argv, entry = [path, "-f", "json", "--timeout", str(case_timeout), *case.argv_extra], "cli"
                argv = _drop_unsupported(argv)
            if case.kind == "user" and sub_every and i % sub_every == sub_every // 2:
                res = run_subprocess_case(path, argv, budget, memory_mb)
                summary.subprocess_cases += 1
            else:
                res = worker.run(argv, budget, entry)
            res["argv"] = argv
            problems = check(case, path, res, budget)
            if res.get("code") == 0 and '"incomplete": [\n' in res.get("stdout", ""):
                summary.incomplete_reports += 1
            o = Outcome(case.ident, case.base, case.kind, case.mutation, res.get("code"), res.get("seconds", 0.0),
                        res.get("peak_mb", 0.0), problems, res.get("stderr", "")[-2000:],
                        max(0.0, res.get("peak_mb", 0.0) - res.get("rss_before_mb", res.get("peak_mb", 0.0))))
            summary.add(o)
            if problems and keep_failures:
                os.makedirs(keep_failures, exist_ok=True)
                dst = os.path.join(keep_failures, f"case-{seed}-{i}-{Path(case.base).name}")
                with open(dst, "wb") as fh:
                    fh.write(case.data)
                with open(dst + ".json", "w") as fh:
                    json.dump(asdict(o), fh, indent=1)
            if log is not None:
                log(o)
            os.unlink(path)
    finally:
        _finish(worker, summary, t_start, tmp)
    return summary


def _finish(worker: Worker, summary: Summary, t_start: float, tmp: str) -> None:
    """End a campaign: the worker stopped, the wall time taken, the (empty) case directory gone."""
    worker.close()
    summary.wall_seconds = time.perf_counter() - t_start
    with contextlib.suppress(OSError):
        os.rmdir(tmp)


SHIFT_SEEDS = ["bin/hello_static_stripped", "bin/wrappers_glibc_static", "bin/go_hello_stripped",
               "bin/idioms_pie_stripped"]
SHIFT_ENV_SEEDS = ("SYSSCAN_BUSYBOX", "SYSSCAN_GOFMT")  # Debian's busybox and gofmt, when fetched
DEFAULT_BUDGET = 120.0  # the CLI's own --timeout default: what a shift case runs under


def shift_seeds() -> list[str]:
    out = [str(CORPUS / p) for p in SHIFT_SEEDS if (CORPUS / p).is_file()]
    return out + [os.environ[v] for v in SHIFT_ENV_SEEDS if os.path.isfile(os.environ.get(v, ""))]


def run_shift(cases: int = 60, seed: int = 1, log=None, memory_mb: int = WORKER_MEMORY_MB,
              time_limit: float | None = None) -> tuple[Summary, dict[str, float], list[tuple]]:
    """Issue 14's campaign: blocks inserted, deleted and zeroed (everything after them shifts) in static glibc, Go
    and stripped PIE binaries (and Debian's busybox and gofmt), scanned at default options — no --timeout, so the
    CLI's 120 s budget is the only net. Each case must finish within max(15 s, 10 x its original's time).
    Returns the summary, the originals' times, and (seconds, ratio, ident, seed file, mutation) per case."""
    summary = Summary(seed)
    worker = Worker(memory_mb)
    tmp = tempfile.mkdtemp(prefix="sysscan-shift-")
    originals: dict[str, float] = {}
    rows: list[tuple] = []
    t_start = time.perf_counter()
    try:
        bases = shift_seeds()
        for b in bases:  # the original's time, in the same worker (warm imports, like the cases), no result cache
            worker.run([b, "-f", "json", "--no-cache"], DEFAULT_BUDGET + HANG_GRACE)
            originals[b] = worker.run([b, "-f", "json", "--no-cache"], DEFAULT_BUDGET + HANG_GRACE).get("seconds", 0.0)
        for i in range(cases):
            if time_limit is not None and time.perf_counter() - t_start > time_limit:
                break
            rng = random.Random(f"sysscan-shift:{seed}:{i}")
            base = bases[i % len(bases)]
            data = Path(base).read_bytes()
            descs = []
            for _ in range(rng.choice((1, 1, 2))):
                fn = rng.choices([m for m, _ in BLOCK_MUTATORS], [w for _, w in BLOCK_MUTATORS])[0]
                data, d = fn(rng, data, layout(data))
                descs.append(d)
            case = Case(seed, i, os.path.basename(base), "user", "; ".join(descs), data)
            path = os.path.join(tmp, f"shift-{seed}-{i}-{case.base}")
            Path(path).write_bytes(data)
            argv = [path, "-f", "json", "--no-cache"]
            res = worker.run(argv, DEFAULT_BUDGET + HANG_GRACE)
            res["argv"] = argv
            problems = check(case, path, res, DEFAULT_BUDGET + HANG_GRACE)
            secs = res.get("seconds", 0.0)
            bound = max(15.0, 10 * originals[base])
            if secs > bound:
                problems.append(f"slow: {secs:.1f} s > max(15 s, 10 x the original's {originals[base]:.1f} s)")
            o = Outcome(case.ident, case.base, "user", case.mutation, res.get("code"), secs, res.get("peak_mb", 0.0),
                        problems, res.get("stderr", "")[-2000:], 0.0)
            summary.add(o)
            rows.append((secs, secs / max(originals[base], 1e-3), case.ident, case.base, case.mutation))
            if log is not None:
                log(o)
            os.unlink(path)
    finally:
        _finish(worker, summary, t_start, tmp)
    return summary, {os.path.basename(k): v for k, v in originals.items()}, sorted(rows, reverse=True)


_SUPPORTED: set[str] | None = None


def _drop_unsupported(argv: list[str]) -> list[str]:
    """Leave out options this checkout's CLI does not have yet (the harness predates some of them)."""
    global _SUPPORTED
    if _SUPPORTED is None:
        src = _cli_source()
        _SUPPORTED = {o for o in ("--timeout", "--max-memory", "--max-size") if f'"{o}"' in src}
    out, skip = [], False
    for i, a in enumerate(argv):
        if skip:
            skip = False
            continue
        if a.startswith("--") and a in ("--timeout", "--max-memory", "--max-size") and a not in _SUPPORTED:
            skip = True
            continue
        out.append(a)
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--cases", type=int, default=300)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--time-limit", type=float, default=None, help="stop starting new cases after this many s")
    ap.add_argument("--subprocess-cases", type=int, default=4)
    ap.add_argument("--keep-failures", metavar="DIR")
    ap.add_argument("--no-kernel", action="store_true", help="user ELF cases only")
    ap.add_argument("--kernel-only", action="store_true", help="mutated synthetic vmlinux cases only")
    ap.add_argument("--memory-mb", type=int, default=WORKER_MEMORY_MB)
    ap.add_argument("--case-timeout", type=float, default=CASE_TIMEOUT)
    ap.add_argument("--replay", metavar="SEED:INDEX", help="write that case to ./fuzz-case and print it")
    ap.add_argument("--shift", action="store_true",
                    help="issue 14's campaign: inserted/deleted/zeroed blocks, default options, time bound per case")
    ap.add_argument("--json", metavar="FILE", help="write the summary as JSON")
    ap.add_argument("-v", "--verbose", action="store_true", help="one line per case")
    ap.add_argument("--worker", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--worker-memory", type=int, default=WORKER_MEMORY_MB, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker is not None:
        sys.path.insert(0, str(ROOT))
        worker_main(args.worker, args.worker_memory)
        return 0
    if args.replay:
        s, i = (int(x) for x in args.replay.split(":"))
        case = make_case(s, i, seed_files(not args.no_kernel))
        Path("fuzz-case").write_bytes(case.data)
        print(f"fuzz-case: {case.base} [{case.mutation}] ({case.kind}; extra argv {' '.join(case.argv_extra)})")
        return 0

    def log(o: Outcome) -> None:
        if args.verbose or o.problems:
            mark = "FAIL" if o.problems else "ok  "
            print(f"{mark} {o.ident:>8} {o.seconds:6.2f}s {o.peak_mb:5.0f}MB exit {o.code!s:>3} {o.base} "
                  f"[{o.mutation}] {'; '.join(o.problems)}", flush=True)

    if args.shift:
        summary, originals, rows = run_shift(args.cases, args.seed, log, args.memory_mb, args.time_limit)
        print(summary.text())
        print("originals: " + ", ".join(f"{k} {v:.2f} s" for k, v in sorted(originals.items())))
        print("slowest cases (s, x original):")
        for secs, ratio, ident, base, mutation in rows[:8]:
            print(f"  {secs:7.2f} s {ratio:6.1f}x  {ident:>7} {base} [{mutation}]")
        if args.json:
            Path(args.json).write_text(json.dumps({"summary": asdict(summary), "originals": originals,
                                                   "cases": rows}, indent=1, default=str))
        return 1 if summary.failures else 0
    summary = run_fuzz(args.cases, args.seed, args.time_limit, args.subprocess_cases, args.keep_failures,
                       not args.no_kernel, args.memory_mb, args.case_timeout, log, user=not args.kernel_only)
    print(summary.text())
    if args.json:
        d = asdict(summary)
        d["failed"] = [asdict(o) for o in summary.failed]
        Path(args.json).write_text(json.dumps(d, indent=1))
    return 1 if summary.failures else 0


if __name__ == "__main__":
    sys.exit(main())
