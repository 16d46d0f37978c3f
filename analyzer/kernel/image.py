"""Load a vmlinux: memory by address, symbols by address (with aliases), build-id, a content hash, the banner.

We read the ELF ourselves instead of LIEF. Measured on Debian's 6.1 cloud vmlinux (590 MB with DWARF): LIEF 1.0
with relocations off takes 0.35 s to import and 1.13 s to parse it (640-730 MB), LIEF 0.15.1 3.9 s and 600 MB,
because they read the whole file. Here the headers come through mmap, the symbol and string tables (~5 MB) and the
kernel PT_LOAD segments (~45 MB) through pread, and nothing else of the file (DWARF, relocations) is touched.

A vmlinux is the simplest kind of ELF (ET_EXEC, no dynamic linking, absolute link-time addresses everywhere),
so the subset read here is small: ELF header, program headers, section headers, .symtab/.strtab, PT_NOTE.
"""
from __future__ import annotations

import bisect
import hashlib
import mmap
import os
import re
import stat
import struct
import threading
from array import array
from dataclasses import dataclass
from itertools import compress
from operator import add
from typing import NamedTuple

from ..errors import BadKernel, CorruptELF, InputNotFound, NotAnELF
from ..elf.header import EM_X86_64, MACHINE_NAMES
from ..elf.memory import Memory, Region
from . import bzimage as bz, kallsyms
from .bzimage import is_bzimage

KERNEL_SPACE = 0xFFFF800000000000
SHT_SYMTAB = 2
STT_NOTYPE, STT_OBJECT, STT_FUNC = 0, 1, 2
SHN_UNDEF, SHN_ABS = 0, 0xFFF1
PT_LOAD, PT_NOTE, PT_INTERP, PT_DYNAMIC = 1, 4, 3, 2
NT_GNU_BUILD_ID = 3
MAX_FALLBACK_FUNCTION = 0x4000


class Symbol(NamedTuple):
    address: int
    size: int
    name: str
    kind: str  # "func" | "object" | "notype"
    local: bool
    code: bool  # defined in an executable section


class SymbolTable:
    """The ELF symbol table, sorted by address; every other column stays in the file's order until asked for.

    Names repeat (1,352 duplicate names on 6.12) and addresses have aliases (__x64_sys_ni_syscall and
    __ia32_sys_ni_syscall share one): everything is keyed by address, and a name is chosen per use (best_name).
    Only the addresses become a Python list (the sort needs it); names, types, sizes and section indexes are read
    per symbol through `order`, and the masks (valid, code) are built with bytes.translate and map over C methods.
    That is ~0.05 s for 116k symbols, where a column per field cost ~0.1 s and Symbol objects for all ~0.5 s.
    """

    def __init__(self, raw: bytes, strtab: bytes, exec_sections: set[int]) -> None:
        # Each 24-byte Elf64_Sym is st_name u32, st_info u8, st_other u8, st_shndx u16, st_value u64, st_size u64:
        # typed arrays over the same bytes give each field as one strided slice, at C speed.
        n = len(raw) // 24
        if len(raw) != n * 24:
            raw = raw[:n * 24]
        q = array("Q")
        q.frombytes(raw)
        self.values = values = q[1::3]
        order = sorted(range(n), key=values.__getitem__)
        addrs = list(map(values.__getitem__, order))
        cut = bisect.bisect_left(addrs, KERNEL_SPACE)  # below kernel space: per-cpu symbols, FILE/ABS entries at 0
        del order[:cut], addrs[:cut]
        self.addrs: list[int] = addrs
        self.order: list[int] = order
        """Position in the file of the i-th symbol by address."""
        names = array("I")
        names.frombytes(raw)
        self.name_offs = names[0::6]
        self.raw = raw
        self.infos = raw[4::24]
        shndx = array("H")
        shndx.frombytes(raw)
        self.shndx = shndx[3::12]
        self.sizes = q[2::3]
        self.strtab = strtab
        # file-order masks, one byte per symbol: named, NOTYPE/OBJECT/FUNC, defined / in an executable section
        valid = bytearray(self.infos.translate(_TYPE_UP_TO_FUNC))
        _clear_where_zero(self.name_offs, valid)
        _clear_where_zero(self.shndx, valid)
        self.valid = bytes(valid)
        self.code = bytes(map(exec_sections.__contains__, self.shndx))
        # and all of them as bits of one byte per symbol (big-integer shifts keep each bit in its byte), permuted
        # into address order once: FLAG_VALID | FLAG_CODE | FLAG_TEXT_TYPE | FLAG_FUNC | FLAG_SIZED
        flags = (int.from_bytes(self.valid, "little")
                 | int.from_bytes(self.code, "little") << 1
                 | int.from_bytes(self.infos.translate(_TYPE_CODE), "little") << 2
                 | int.from_bytes(self.infos.translate(_TYPE_FUNC), "little") << 3
                 | int.from_bytes(self.sized_mask(), "little") << 4).to_bytes(n, "little")
        self.flags: bytes = bytes(map(flags.__getitem__, order))
        self._by_off: dict[int, list[int]] | None = None
        self._pos: list[int] | None = None

    def __len__(self) -> int:
        return len(self.addrs)

    def name(self, i: int) -> str:
        off = self.name_offs[self.order[i]]
        end = self.strtab.find(b"\0", off)  # a corrupt table may lack the terminator: up to the end, not a crash
        return self.strtab[off:end if end >= 0 else len(self.strtab)].decode("latin-1")

    def is_valid(self, i: int) -> bool:
        return bool(self.flags[i] & FLAG_VALID)

    def symbol(self, i: int) -> Symbol:
        j = self.order[i]
        info = self.infos[j]
        return Symbol(self.addrs[i], self.sizes[j], self.name(i), _KINDS[info & 0xF], info < 0x10,
                      bool(self.code[j]))

    def sized_mask(self) -> bytes:
        """1 where st_size != 0: the OR of the size's 8 bytes, each a strided slice of the raw table."""
        acc = 0
        for k in range(16, 24):
            acc |= int.from_bytes(self.raw[k::24].translate(_NONZERO), "little")
        return acc.to_bytes(len(self.raw) // 24, "little")

    def where(self, mask: bytes) -> list[int]:
        """Indexes by address (i) of the kernel-space symbols whose file-order mask byte is set."""
        return sorted(i for i in map(self.index_of, compress(range(len(mask)), mask)) if i is not None)

    def at(self, addr: int) -> list[int]:
        i = bisect.bisect_left(self.addrs, addr)
        out = []
        while i < len(self.addrs) and self.addrs[i] == addr:
            if self.flags[i] & FLAG_VALID:
                out.append(i)
            i += 1
        return out

    def index_of(self, j: int) -> int | None:
        """The address-sorted index of the symbol at file position j (None if it is not in kernel space): a bisect
        for the few lookups an analysis makes; the inverse permutation (built once) when more than 64 symbols share
        the address (a hostile table could make every lookup a long scan)."""
        if self._pos is None:
            addr = self.values[j]
            i = bisect.bisect_left(self.addrs, addr)
            for i in range(i, min(i + 64, len(self.addrs))):
                if self.addrs[i] != addr:
                    return None
                if self.order[i] == j:
                    return i
            if i + 1 >= len(self.addrs) or self.addrs[i + 1] != addr:
                return None  # the run of symbols at this address ended without j
            pos = [-1] * len(self.values)
            for i, k in enumerate(self.order):
                pos[k] = i
            self._pos = pos
        i = self._pos[j]
        return i if i >= 0 else None

    def _users(self, off: int) -> list[int]:
        """File positions of the symbols whose st_name is `off`: the 4 bytes searched in the raw table (C speed),
        kept where they start a record; a key so common that it keeps matching elsewhere falls back to an index."""
        if self._by_off is None:
            key = off.to_bytes(4, "little")
            out, misses = [], 0
            p = self.raw.find(key)
            while p >= 0 and misses < 64:
                if p % 24 == 0:
                    out.append(p // 24)
                else:
                    misses += 1
                p = self.raw.find(key, p + 1)
            if p < 0:
                return out
            self._by_off = {}
            for j, o in enumerate(self.name_offs):
                self._by_off.setdefault(o, []).append(j)
        return self._by_off.get(off, [])

    def named(self, name: str) -> list[int]:
        """Indexes of every symbol with this name: find the string in .strtab (C speed), then its users."""
        needle = name.encode("latin-1") + b"\0"
        offs = []
        p = self.strtab.find(needle)
        while p >= 0:
            offs.append(p)
            p = self.strtab.find(needle, p + 1)
        if not offs:
            return []
        out = []
        for off in offs:
            out.extend(i for i in map(self.index_of, self._users(off)) if i is not None)
        return sorted(i for i in out if self.flags[i] & FLAG_VALID)


def _clear_where_zero(column, mask: bytearray) -> None:
    """mask[j] = 0 wherever column[j] == 0 (array.index scans at C speed; zeros are few)."""
    j = -1
    while True:
        try:
            j = column.index(0, j + 1)
        except ValueError:
            return
        mask[j] = 0


_NONZERO = bytes([0] + [1] * 255)
FLAG_VALID, FLAG_CODE, FLAG_TEXT_TYPE, FLAG_FUNC, FLAG_SIZED = 1, 2, 4, 8, 16
_SEL_VALID = bytes(b & FLAG_VALID for b in range(256))
_SEL_START = bytes(int(b & 7 == 7) for b in range(256))  # valid, in a code section, NOTYPE or FUNC
_SEL_SIZED = bytes(int(b & 26 == 26) for b in range(256))  # in a code section, FUNC, size > 0
_TYPE_UP_TO_FUNC = bytes(1 if (b & 0xF) <= STT_FUNC else 0 for b in range(256))
_TYPE_CODE = bytes(1 if (b & 0xF) in (STT_NOTYPE, STT_FUNC) else 0 for b in range(256))
_TYPE_FUNC = bytes(1 if (b & 0xF) == STT_FUNC else 0 for b in range(256))
_MISSING = object()
_KINDS = {STT_NOTYPE: "notype", STT_OBJECT: "object", STT_FUNC: "func"}


class KernelImage:
    """What the kernel analysis needs from a vmlinux. `memory` holds the kernel-space PT_LOAD segments."""

    def __init__(self, path: str, memory: Memory, build_id: str | None, sha256: str, version: str | None,
                 file_size: int, table: SymbolTable, sections: list, symbols: str = "symtab",
                 compression: str | None = None) -> None:
        self.path = path
        self.symbols_from = symbols
        """"symtab" (the ELF's own) or "kallsyms" (recovered from the image: no sizes, no DWARF)."""
        self.compression = compression
        """The bzImage payload's compressor (None for an ELF file)."""
        self.memory = memory
        self.build_id = build_id
        self.sha256 = sha256
        """sha256 over the ELF/program headers, every kernel PT_LOAD's file bytes, .symtab and .strtab:
        everything the analysis reads. Not the whole file (~500 MB of DWARF, 1.4 s to hash): see cache.py."""
        self.version = version
        self.file_size = file_size
        self.table = table
        self.sections = sections
        """(name, address, size, file offset, sh_type, sh_flags) of every section; debug sections have address 0."""
        t = table
        # function starts (named code symbols that are not data) and sized functions: a translate of the flags
        # and a compress of the (already sorted) addresses each
        starts = t.flags.translate(_SEL_START)
        self._code_starts = list(dict.fromkeys(compress(t.addrs, starts)))
        sized = t.flags.translate(_SEL_SIZED)
        self._sized_starts = list(compress(t.addrs, sized))
        self._sized_ends = list(map(add, self._sized_starts, map(t.sizes.__getitem__, compress(t.order, sized))))
        self._symbols: list[Symbol] | None = None
        self._best: dict = {}

    # ---- symbols ------------------------------------------------------------------------------------------------
    @property
    def symbols(self) -> list[Symbol]:
        """Every symbol, sorted by address (built on first use: ~0.3 s on a big kernel)."""
        if self._symbols is None:
            self._symbols = [self.table.symbol(i) for i in range(len(self.table)) if self.table.is_valid(i)]
        return self._symbols

    def symbols_at(self, addr: int) -> list[Symbol]:
        return [self.table.symbol(i) for i in self.table.at(addr)]

    def has_symbol(self, addr: int) -> bool:
        return bool(self.table.at(addr))

    def symbols_named(self, name: str) -> list[Symbol]:
        return [self.table.symbol(i) for i in self.table.named(name)]

    def symbols_with_prefix(self, prefix: str) -> list[Symbol]:
        needle = b"\0" + prefix.encode("latin-1")
        strtab = self.table.strtab
        offs = set()
        p = strtab.find(needle)
        while p >= 0:
            offs.add(p + 1)
            p = strtab.find(needle, p + 1)
        t = self.table
        hits = bytes(map(offs.__contains__, t.name_offs))
        return [t.symbol(i) for i in t.where(hits) if t.flags[i] & FLAG_VALID]

    def names_at(self, addr: int) -> list[str]:
        return [s.name for s in self.symbols_at(addr)]

    def addresses_of(self, name: str) -> list[int]:
        return [s.address for s in self.symbols_named(name)]

    def address_of(self, name: str) -> int | None:
        """The address of a unique-enough name: global first, else the only local one."""
        syms = self.symbols_named(name)
        if not syms:
            return None
        glob = [s for s in syms if not s.local]
        pick = glob or syms
        return pick[0].address if len({s.address for s in pick}) == 1 else None

    def symbol_size(self, name: str) -> int | None:
        syms = self.symbols_named(name)
        return syms[0].size if syms else None

    def best_name(self, addr: int | None, prefixes: tuple[str, ...] = ()) -> str | None:
        """One name for an address with aliases: first the given prefixes in order, then globals, then any."""
        key = (addr, prefixes)
        hit = self._best.get(key, _MISSING)
        if hit is _MISSING:
            hit = self._best[key] = self._best_name(addr, prefixes)
        return hit

    def _best_name(self, addr: int | None, prefixes: tuple[str, ...]) -> str | None:
        syms = self.symbols_at(addr) if addr is not None else None
        if not syms:
            return None
        names = sorted({s.name for s in syms})
        for p in prefixes:
            hits = [n for n in names if n.startswith(p)]
            if hits:
                return hits[0]
        glob = sorted({s.name for s in syms if not s.local and s.kind in ("func", "notype")})
        funcs = sorted({s.name for s in syms if s.kind == "func"})
        return (glob or funcs or names)[0]

    def symbolize(self, addr: int) -> str | None:
        """'name' or 'name+0x10' for any address inside a known function or data symbol."""
        if self.has_symbol(addr):
            return self.best_name(addr)
        t = self.table
        top = bisect.bisect_right(t.addrs, addr) - 1
        for i in range(top, max(top - 64, -1), -1):
            j = t.order[i]
            lo, n = t.addrs[i], t.sizes[j]
            if n and t.valid[j] and lo <= addr < lo + n:
                name = self.best_name(lo)
                return f"{name}+{addr - lo:#x}" if name else None
        return None

    def function_range(self, addr: int) -> tuple[int, int]:
        """[start, end) of the code that starts at addr: the largest symbol size there, else up to the next
        code symbol (assembly entry points often have size 0), capped."""
        size = max((s.size for s in self.symbols_at(addr) if s.kind in ("func", "notype")), default=0)
        if size > 0:
            return addr, addr + size
        i = bisect.bisect_right(self._code_starts, addr)
        nxt = self._code_starts[i] if i < len(self._code_starts) else addr + MAX_FALLBACK_FUNCTION
        return addr, min(nxt, addr + MAX_FALLBACK_FUNCTION)

    def containing_function(self, addr: int) -> tuple[int, int] | None:
        """The sized function symbol whose range covers addr, else the nearest preceding code symbol's range."""
        i = bisect.bisect_right(self._sized_starts, addr) - 1
        j = i
        while j >= 0 and j > i - 8:
            lo, hi = self._sized_starts[j], self._sized_ends[j]
            if lo <= addr < hi:
                return lo, hi
            j -= 1
        k = bisect.bisect_right(self._code_starts, addr) - 1
        if k < 0:
            return None
        lo, hi = self.function_range(self._code_starts[k])
        return (lo, hi) if lo <= addr < hi else None

    def section_of(self, addr: int) -> str | None:
        for name, a, size, _off, _t, _f in self.sections:
            if a and a <= addr < a + size:
                return name
        return None

    def code_ranges(self) -> list[tuple[int, int]]:
        """[start, end) of every executable section (SHF_EXECINSTR) that is loaded."""
        return [(a, a + size) for _n, a, size, _o, t, f in self.sections if a and f & 0x4 and t != 8]

    def executable(self, addr: int) -> bool:
        return self.memory.is_executable(addr)


def _refuse_non_elf(path: str, head: bytes) -> None:
    if head[:4] == b"\x7fELF":
        return
    if head[:2] == b"\x1f\x8b" or head[:3] == b"BZh" or head[:6] == b"\xfd7zXZ\x00" or head[:4] == b"\x28\xb5\x2f\xfd":
        raise BadKernel(path, "a compressed file, not a vmlinux or a bzImage; decompress it first")
    raise NotAnELF(path, "not an ELF file (no \\x7fELF magic)")


class Fingerprint:
    """Identity of a vmlinux for the cache (build-id and content hash, see KernelImage.sha256), and the bytes the
    analysis needs, read once: the kernel-space PT_LOAD segments, .symtab and .strtab.

    The segments (~45 MB) are read and hashed in a thread (pread and hashlib release the GIL), so on a cold run
    the symbol table is parsed meanwhile; `segments` and `sha256` wait for it."""

    def __init__(self, path: str, fd: int, build_id: str | None, size: int, hasher, loads: list[tuple[int, int]],
                 symtab: bytes, strtab: bytes) -> None:
        self.path = path
        self.build_id = build_id
        self.size = size
        self.symtab = symtab
        self.strtab = strtab
        self._segments: dict[int, bytes] = {}
        self._error: Exception | None = None
        self._hasher = hasher
        self._sha256: str | None = None
        # the thread owns a duplicate of the descriptor: the caller closes its own when it is done with the map
        self._thread = threading.Thread(target=self._read_and_hash, args=(os.dup(fd), loads),
                                        name="sysscan-kernel-read", daemon=True)
        self._thread.start()

    def _read_and_hash(self, fd: int, loads: list[tuple[int, int]]) -> None:
        try:
            for off, n in loads:
                data = _pread(self.path, fd, n, off)
                self._segments[off] = data
                self._hasher.update(data)
            self._hasher.update(self.symtab)
            self._hasher.update(self.strtab)
        except Exception as e:  # re-raised by the caller's thread (segments / sha256)
            self._error = e
        finally:
            os.close(fd)

    def _wait(self) -> None:
        self._thread.join()
        if self._error is not None:
            raise self._error

    @property
    def segments(self) -> dict[int, bytes]:
        """file offset -> the kernel-space segment's file bytes"""
        self._wait()
        return self._segments

    @property
    def sha256(self) -> str:
        if self._sha256 is None:
            self._wait()
            self._sha256 = self._hasher.hexdigest()
        return self._sha256


def _open(path: str):
    try:
        st = os.stat(path)
    except OSError as e:
        raise InputNotFound(path, f"cannot open: {e.strerror or e}") from None
    if stat.S_ISDIR(st.st_mode):
        raise InputNotFound(path, "is a directory, not a vmlinux")
    try:
        f = open(path, "rb")
    except OSError as e:
        raise InputNotFound(path, f"cannot open: {e.strerror or e}") from None
    if st.st_size == 0:
        f.close()
        raise NotAnELF(path, "empty file")
    try:
        mm = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
    except (OSError, ValueError) as e:
        f.close()
        raise InputNotFound(path, f"cannot map: {e}") from None
    return f, mm, st.st_size


class WholeFile:
    """Identity of a kernel file that is read whole: a bzImage (decompressed only on a cache miss) or a stripped
    vmlinux (its symbols come from kallsyms). The sha256 is the file's; a bzImage's build-id is unknown until its
    payload is decompressed, so it is None here and the cache is keyed by the hash alone."""

    def __init__(self, path: str, data: bytes, build_id: str | None, compressed: bool) -> None:
        self.path = path
        self.data = data
        self.size = len(data)
        self.build_id = build_id
        self.compressed = compressed
        self.sha256 = hashlib.sha256(data).hexdigest()
        self._thread: threading.Thread | None = None
        self._payload: bz.Payload | None = None
        self._error: Exception | None = None

    def start(self) -> None:
        """Decompress a bzImage's payload in a thread (the decompressors release the GIL) while the caller imports
        what the analysis needs; payload() waits for it."""
        if self.compressed and self._thread is None:
            self._thread = threading.Thread(target=self._extract, name="sysscan-vmlinuz", daemon=True)
            self._thread.start()

    def _extract(self) -> None:
        try:
            self._payload = bz.extract(self.path, self.data)
        except Exception as e:  # re-raised by payload(), in the caller's thread
            self._error = e

    def payload(self) -> bz.Payload:
        if self._thread is None:
            return bz.extract(self.path, self.data)
        self._thread.join()
        if self._error is not None:
            raise self._error
        assert self._payload is not None
        return self._payload


MAX_BZIMAGE = 256 << 20
"""A bzImage is read whole: real ones are 5-20 MB."""


def fingerprint(path: str) -> Fingerprint | WholeFile:
    """Check the file and read what the analysis needs (~45 MB of a 590 MB vmlinux); hash it in the background.
    A bzImage or a stripped vmlinux is read and hashed whole."""
    f, mm, size = _open(path)
    try:
        if is_bzimage(mm[:0x240]):
            return WholeFile(path, _whole(path, mm, size), None, compressed=True)
        lay = _layout(path, mm, size, f.fileno(), stripped_ok=True)
        if lay.fingerprint is None:
            return WholeFile(path, _whole(path, mm, size, bz.MAX_OUTPUT, "a stripped vmlinux"), lay.build_id,
                             compressed=False)
        return lay.fingerprint
    finally:
        _close(mm, f)


def _whole(path: str, mm, size: int, cap: int = MAX_BZIMAGE, what: str = "a bzImage") -> bytes:
    """The file read whole (it is hashed and parsed from memory), if it is no larger than any real one."""
    if size > cap:
        raise BadKernel(path, f"{what} of {size >> 20} MiB: larger than any real one ({cap >> 20} MiB)")
    return mm[:]


def load_kernel(path: str, known: Fingerprint | WholeFile | None = None) -> KernelImage:
    """Open and check a kernel: a vmlinux (symbols from its ELF symbol table), a stripped vmlinux or a bzImage
    (/boot/vmlinuz-*; symbols from kallsyms). Raises InputNotFound / NotAnELF / CorruptELF / BadKernel with
    one-line problems. `known`: the fingerprint just taken of this file (its bytes are not read again)."""
    f, mm, size = _open(path)
    try:
        if known is not None and known.size != size:
            known = None
        if is_bzimage(mm[:0x240]):
            whole = known if isinstance(known, WholeFile) else WholeFile(path, _whole(path, mm, size), None, True)
            payload = whole.payload()
            return _from_elf_bytes(path, payload.elf, whole.sha256, size, payload.compression)
        return _parse(path, mm, size, f.fileno(), known)
    finally:
        _close(mm, f)


def _close(mm: mmap.mmap, f) -> None:
    """Close the map and the file. While an exception unwinds, slices of the map may still be alive in its frames
    and mmap.close() raises BufferError, which would replace the real one-line error (CorruptELF): the map is then
    left to the garbage collector."""
    try:
        mm.close()
    except BufferError:
        pass
    f.close()


@dataclass
class _Layout:
    phdrs: list
    shdrs: list
    e_shstrndx: int
    symtab: tuple | None
    build_id: str | None
    fingerprint: Fingerprint | None = None


def _layout(path: str, mm: mmap.mmap | bytes, size: int, fd: int | None = None, stripped_ok: bool = False) -> _Layout:
    """Validate headers and find the build-id; with `fd`, also read the kernel PT_LOAD bytes, .symtab and .strtab
    (pread: no page faults on the map) and start hashing them with the ELF and program headers."""
    head = mm[:0x240]
    _refuse_non_elf(path, head)
    if len(head) < 20:
        raise CorruptELF(path, "truncated ELF header")
    ei_class, ei_data = head[4], head[5]
    if ei_data != 1:
        raise BadKernel(path, "big-endian ELF; only x86-64 kernels are supported")
    if ei_class == 1:
        machine = struct.unpack_from("<H", head, 18)[0]
        raise BadKernel(path, f"32-bit {MACHINE_NAMES.get(machine, f'machine {machine}')} ELF; "
                              "only x86-64 vmlinux images are supported")
    if ei_class != 2:
        raise CorruptELF(path, f"bad ELF class {ei_class}")
    if len(head) < 64:
        raise CorruptELF(path, "truncated ELF header")
    (e_type, e_machine, _ver, _entry, e_phoff, e_shoff, _flags, _ehsize, e_phentsize, e_phnum, e_shentsize,
     e_shnum, e_shstrndx) = struct.unpack_from("<HHIQQQIHHHHHH", head, 16)
    if e_machine != EM_X86_64:
        raise BadKernel(path, f"{MACHINE_NAMES.get(e_machine, f'machine {e_machine}')} ELF; "
                              "only x86-64 vmlinux images are supported")
    if e_phentsize != 56 or e_phoff + e_phnum * 56 > size:
        raise CorruptELF(path, "program headers out of the file")
    phdrs = [struct.unpack_from("<IIQQQQQQ", mm, e_phoff + i * 56) for i in range(e_phnum)]
    if any(p[0] in (PT_INTERP, PT_DYNAMIC) for p in phdrs) or e_type == 3:
        raise BadKernel(path, "a user-space program or library, not a vmlinux (it has a dynamic loader/PIE "
                              "header); pass the kernel image with --vmlinux")
    loads = [p for p in phdrs if p[0] == PT_LOAD]
    if not any(p[3] >= KERNEL_SPACE for p in loads):
        raise BadKernel(path, "no segment is loaded in kernel space (0xffff8...): a user-space program, not a vmlinux")
    for p in loads:
        if p[2] + p[5] > size:
            raise CorruptELF(path, f"segment at {p[3]:#x} extends past the end of the file")
    build_id = None
    for p in phdrs:
        if p[0] == PT_NOTE and p[2] + p[5] <= size:
            build_id = build_id or _build_id(mm[p[2]:p[2] + p[5]])
    shdrs: list = []
    symtab = None
    if e_shoff and e_shnum:
        if e_shentsize != 64 or e_shoff + e_shnum * 64 > size:
            raise CorruptELF(path, "section headers out of the file")
        shdrs = [struct.unpack_from("<IIQQQQIIQQ", mm, e_shoff + i * 64) for i in range(e_shnum)]
        symtab = next((sh for sh in shdrs if sh[1] == SHT_SYMTAB), None)
        if symtab is not None:
            off, sz, link = symtab[4], symtab[5], symtab[6]
            if off + sz > size or link >= e_shnum or shdrs[link][4] + shdrs[link][5] > size:
                raise CorruptELF(path, "symbol table out of the file")
    if symtab is None and not stripped_ok:
        raise BadKernel(path, "a stripped vmlinux (no symbol table); use the unstripped one, e.g. "
                              "/usr/lib/debug/boot/vmlinux-* from the linux-image-*-dbg package")
    lay = _Layout(phdrs, shdrs, e_shstrndx, symtab, build_id)
    if fd is not None and symtab is not None:
        off, sz, link = symtab[4], symtab[5], symtab[6]
        raw_symtab = _pread(path, fd, sz - sz % 24, off)
        strtab = _pread(path, fd, shdrs[link][5], shdrs[link][4])
        hasher = hashlib.sha256(head[:64])
        hasher.update(mm[e_phoff:e_phoff + e_phnum * 56])
        kernel_loads = [(p[2], p[5]) for p in loads if p[3] >= KERNEL_SPACE]
        lay.fingerprint = Fingerprint(path, fd, build_id, size, hasher, kernel_loads, raw_symtab, strtab)
    return lay


def _pread(path: str, fd: int, n: int, offset: int) -> bytes:
    data = os.pread(fd, n, offset) if n else b""
    if len(data) != n:
        raise CorruptELF(path, f"short read at {offset:#x} (the file changed while being read?)")
    return data


def _parse(path: str, mm: mmap.mmap, size: int, fd: int, known: Fingerprint | WholeFile | None) -> KernelImage:
    if isinstance(known, WholeFile):
        return _from_elf_bytes(path, known.data, known.sha256, size, None)
    lay = _layout(path, mm, size, fd if known is None else None, stripped_ok=True)
    if lay.symtab is None:  # a stripped vmlinux (extract-vmlinux's output, say): its kallsyms
        data = _whole(path, mm, size, bz.MAX_OUTPUT, "a stripped vmlinux")
        return _from_elf_bytes(path, data, hashlib.sha256(data).hexdigest(), size, None)
    fp = known if known is not None else lay.fingerprint
    sections = _sections(lay, mm, size)
    # the symbol table first: the segments are still being read in the fingerprint's thread
    exec_sections = {i for i, sh in enumerate(lay.shdrs) if sh[2] & 0x4}
    table = SymbolTable(fp.symtab, fp.strtab, exec_sections)
    if not any(table.flags.translate(_SEL_VALID)):
        raise BadKernel(path, "a stripped vmlinux (empty symbol table); use the unstripped one, e.g. "
                              "/usr/lib/debug/boot/vmlinux-* from the linux-image-*-dbg package")
    segments = fp.segments
    regions = _regions(lay, lambda off, n: segments[off] if len(segments.get(off, b"")) == n else mm[off:off + n])
    return _image(path, Memory(regions), lay, fp.sha256, size, table, sections, "symtab", None)


def _from_elf_bytes(path: str, elf: bytes, sha256: str, file_size: int, compression: str | None) -> KernelImage:
    """A kernel ELF held in memory (a bzImage's payload, a stripped vmlinux): symbols from its kallsyms tables,
    or from its symbol table if it kept one."""
    lay = _layout(path, elf, len(elf), None, stripped_ok=True)
    sections = _sections(lay, elf, len(elf))
    exec_sections = {i for i, sh in enumerate(lay.shdrs) if sh[2] & 0x4}
    regions = _regions(lay, lambda off, n: elf[off:off + n])
    if lay.symtab is not None:
        off, sz, link = lay.symtab[4], lay.symtab[5], lay.symtab[6]
        strtab = lay.shdrs[link]
        table = SymbolTable(elf[off:off + sz - sz % 24], elf[strtab[4]:strtab[4] + strtab[5]], exec_sections)
        how = "symtab"
    else:
        text = next((a for n, a, *_ in sections if n == ".text" and a), None)
        if text is None:
            text = min((r.start for r in regions if r.executable), default=0)
        try:
            syms = kallsyms.recover([(r.start, r.data) for r in regions], text)
        except kallsyms.NoKallsyms as e:
            if compression:
                raise BadKernel(path, f"the bzImage's {compression} payload has no symbol table, and {e}") from None
            raise BadKernel(path, f"a stripped vmlinux (no symbol table), and {e}; use the unstripped one, e.g. "
                                  "/usr/lib/debug/boot/vmlinux-* from the linux-image-*-dbg package") from None
        loaded = [(i, a, n, bool(f & 0x4)) for i, (_nm, a, n, _o, t, f) in enumerate(sections) if f & 0x2 and a]
        if not loaded:  # no section headers (a memory dump, a rebuilt image): the segments stand in for them
            loaded = [(len(sections) + i + 1, r.start, len(r.data), r.executable) for i, r in enumerate(regions)]
            exec_sections = {i for i, _a, _n, x in loaded if x}
        table = SymbolTable(*kallsyms.elf_symtab(syms, loaded), exec_sections)
        how = "kallsyms"
    return _image(path, Memory(regions), lay, sha256, file_size, table, sections, how, compression)


def _sections(lay: _Layout, mm, size: int) -> list[tuple[str, int, int, int, int, int]]:
    shdrs = lay.shdrs
    sections: list[tuple[str, int, int, int, int, int]] = []
    names_sh = shdrs[lay.e_shstrndx] if lay.e_shstrndx < len(shdrs) else None
    shstr = mm[names_sh[4]:names_sh[4] + names_sh[5]] if names_sh and names_sh[4] + names_sh[5] <= size else b""
    for sh in shdrs:
        nm = shstr[sh[0]:shstr.find(b"\0", sh[0])].decode("latin-1") if sh[0] < len(shstr) else ""
        sections.append((nm, sh[3], sh[5], sh[4], sh[1], sh[2]))
    return sections


def _regions(lay: _Layout, read) -> list[Region]:
    """The kernel-space PT_LOAD segments as memory regions; `read(offset, size)` gives a segment's file bytes."""
    regions: list[Region] = []
    for _t, p_flags, p_offset, p_vaddr, _paddr, p_filesz, p_memsz, _align in (p for p in lay.phdrs if p[0] == PT_LOAD):
        if p_vaddr < KERNEL_SPACE:
            continue  # the per-cpu template (.data..percpu, linked at 0): not mapped at these addresses
        data = read(p_offset, p_filesz)
        if p_memsz > p_filesz:
            data += bytes(min(p_memsz - p_filesz, 1 << 26))
        regions.append(Region(start=p_vaddr, data=data, readable=bool(p_flags & 4), writable=bool(p_flags & 2),
                              executable=bool(p_flags & 1), name=f"LOAD@{p_vaddr:#x}"))
    return regions


def _image(path: str, memory: Memory, lay: _Layout, sha256: str, size: int, table: SymbolTable, sections: list,
           symbols: str, compression: str | None) -> KernelImage:
    image = KernelImage(path=path, memory=memory, build_id=lay.build_id, sha256=sha256, version=None,
                        file_size=size, table=table, sections=sections, symbols=symbols, compression=compression)
    if not image.symbols_named("linux_banner") and not any(n == ".text" for n, *_ in sections):
        raise BadKernel(path, "no linux_banner and no .text: not a Linux kernel image")
    image.version = _version(image)
    return image


def _build_id(notes: bytes) -> str | None:
    off = 0
    while off + 12 <= len(notes):
        namesz, descsz, ntype = struct.unpack_from("<III", notes, off)
        name_end = off + 12 + ((namesz + 3) & ~3)
        desc_end = name_end + ((descsz + 3) & ~3)
        if desc_end > len(notes):
            return None
        if ntype == NT_GNU_BUILD_ID and notes[off + 12:off + 12 + namesz].rstrip(b"\0") == b"GNU":
            return notes[name_end:name_end + descsz].hex()
        off = desc_end
    return None


def _version(image: KernelImage) -> str | None:
    addr = image.address_of("linux_banner")
    text = image.memory.read_cstring(addr, 512) if addr else None
    if text is None:  # no linux_banner symbol: the banner's text, "#<build number>" included (other copies of
        found = []    # the format lack it)
        for r in image.memory.regions:
            i = r.data.find(b"Linux version ")
            while i >= 0 and len(found) < 16:
                found.append(image.memory.read_cstring(r.start + i, 512) or "")
                i = r.data.find(b"Linux version ", i + 1)
        text = next((t for t in found if _BANNER.search(t)), found[0] if found else None)
    return text.strip() if text else None


_BANNER = re.compile(r"^Linux version \S+ .*#\d")
