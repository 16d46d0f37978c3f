"""Load a vmlinux: memory by address, symbols by address (with aliases), build-id, a content hash, the banner.

We read the ELF ourselves through mmap instead of LIEF. Measured on Debian's 6.1 cloud vmlinux (590 MB with
DWARF): LIEF 1.0 with relocations off still takes 0.35 s to import plus 0.57 s to parse without symbols (1.13 s
with them, +0.3 s to list 119k symbols in Python, +0.2 s to copy the segments) and 640-730 MB RSS because it
reads the whole file. Here the symbol table is one `struct.iter_unpack` over 2.8 MB, only the PT_LOAD bytes
(~45 MB) are copied out of the page cache, and nothing else of the file (DWARF, relocations) is touched.

A vmlinux is the simplest kind of ELF (ET_EXEC, no dynamic linking, absolute link-time addresses everywhere),
so the subset read here is small: ELF header, program headers, section headers, .symtab/.strtab, PT_NOTE.
"""
from __future__ import annotations

import bisect
import hashlib
import mmap
import os
import stat
import struct
from dataclasses import dataclass, field
from array import array
from typing import NamedTuple

from ..errors import BadKernel, CorruptELF, InputNotFound, NotAnELF
from ..memory import Memory, Region

EM_X86_64 = 62
MACHINES = {
    2: "SPARC", 3: "i386", 8: "MIPS", 20: "PowerPC", 21: "PowerPC64", 22: "s390", 40: "ARM", 42: "SuperH",
    43: "SPARC v9", 50: "IA-64", 62: "x86-64", 183: "AArch64", 243: "RISC-V", 258: "LoongArch",
}
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
    """The ELF symbol table as columns sorted by address; names are decoded only when asked for.

    Names repeat (1,352 duplicate names on 6.12) and addresses have aliases (__x64_sys_ni_syscall and
    __ia32_sys_ni_syscall share one): everything is keyed by address, and a name is chosen per use (best_name).
    Building Symbol objects for all 116k-186k symbols would cost ~0.5 s; the columns cost ~0.06 s.
    """

    def __init__(self, raw: bytes, strtab: bytes, exec_sections: set[int]) -> None:
        # Columns straight from the raw table: each 24-byte Elf64_Sym is three u64 (name|info|other|shndx, value,
        # size), so array slicing splits the columns at C speed; one sort of (value << 20 | index) keys orders
        # them by address and drops everything below kernel space (per-cpu symbols, FILE/ABS entries at 0).
        words = array("Q")
        words.frombytes(raw[:len(raw) - len(raw) % 24])
        heads, values, sizes_all = words[0::3], words[1::3], words[2::3]
        keys = sorted([(v << 20) | i for i, v in enumerate(values) if v >= KERNEL_SPACE])
        order = [k & 0xFFFFF for k in keys]
        heads_sorted = [heads[i] for i in order]
        self.strtab = strtab
        name_offs = tuple([h & 0xFFFFFFFF for h in heads_sorted])
        infos = tuple([(h >> 32) & 0xFF for h in heads_sorted])
        shndx = [h >> 48 for h in heads_sorted]
        self.name_offs: tuple[int, ...] = name_offs
        self.infos: tuple[int, ...] = infos
        self.addrs: list[int] = [k >> 20 for k in keys]
        self.sizes: list[int] = [sizes_all[i] for i in order]
        self.code: list[bool] = [x in exec_sections for x in shndx]
        self.valid: list[bool] = [bool(n) and (i & 0xF) <= STT_FUNC and x != SHN_UNDEF
                                  for n, i, x in zip(name_offs, infos, shndx)]
        self._off_last: dict[int, int] | None = None

    def __len__(self) -> int:
        return len(self.addrs)

    def name(self, i: int) -> str:
        off = self.name_offs[i]
        end = self.strtab.find(b"\0", off)  # a corrupt table may lack the terminator: up to the end, not a crash
        return self.strtab[off:end if end >= 0 else len(self.strtab)].decode("latin-1")

    def symbol(self, i: int) -> Symbol:
        info = self.infos[i]
        return Symbol(self.addrs[i], self.sizes[i], self.name(i), _KINDS[info & 0xF], info < 0x10, self.code[i])

    def at(self, addr: int) -> list[int]:
        i = bisect.bisect_left(self.addrs, addr)
        out = []
        while i < len(self.addrs) and self.addrs[i] == addr:
            if self.valid[i]:
                out.append(i)
            i += 1
        return out

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
        if self._off_last is None:
            self._off_last = dict(zip(self.name_offs, range(len(self.name_offs))))
        out = []
        for off in offs:
            j = self._off_last.get(off)
            if j is None:
                continue
            i = self.name_offs.index(off)
            out.extend([i] if i == j else [k for k in range(i, j + 1) if self.name_offs[k] == off])
        return sorted(i for i in out if self.valid[i])


_MISSING = object()
_KINDS = {STT_NOTYPE: "notype", STT_OBJECT: "object", STT_FUNC: "func"}


class KernelImage:
    """What the kernel analysis needs from a vmlinux. `memory` holds the kernel-space PT_LOAD segments."""

    def __init__(self, path: str, memory: Memory, build_id: str | None, sha256: str, version: str | None,
                 file_size: int, table: SymbolTable, sections: list) -> None:
        self.path = path
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
        self._code_starts = list(dict.fromkeys(
            [a for a, c, i, v in zip(t.addrs, t.code, t.infos, t.valid) if c and v and (i & 0xF) != STT_OBJECT]))
        sized = [(a, a + n) for a, n, c, i in zip(t.addrs, t.sizes, t.code, t.infos)
                 if n and c and (i & 0xF) == STT_FUNC]
        self._sized, self._sized_starts = sized, [a for a, _ in sized]
        self._symbols: list[Symbol] | None = None
        self._best: dict = {}

    # ---- symbols ------------------------------------------------------------------------------------------------
    @property
    def symbols(self) -> list[Symbol]:
        """Every symbol, sorted by address (built on first use: ~0.3 s on a big kernel)."""
        if self._symbols is None:
            self._symbols = [self.table.symbol(i) for i in range(len(self.table)) if self.table.valid[i]]
        return self._symbols

    def symbols_at(self, addr: int) -> list[Symbol]:
        return [self.table.symbol(i) for i in self.table.at(addr)]

    def has_symbol(self, addr: int) -> bool:
        return bool(self.table.at(addr))

    def symbols_named(self, name: str) -> list[Symbol]:
        return [self.table.symbol(i) for i in self.table.named(name)]

    def symbols_with_prefix(self, prefix: str) -> list[Symbol]:
        out = []
        needle = b"\0" + prefix.encode("latin-1")
        strtab = self.table.strtab
        offs = set()
        p = strtab.find(needle)
        while p >= 0:
            offs.add(p + 1)
            p = strtab.find(needle, p + 1)
        for i, off in enumerate(self.table.name_offs):
            if off in offs and self.table.valid[i]:
                out.append(self.table.symbol(i))
        return out

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
            lo, n = t.addrs[i], t.sizes[i]
            if n and t.valid[i] and lo <= addr < lo + n:
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
            lo, hi = self._sized[j]
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
    if len(head) >= 0x206 and head[:2] == b"MZ" and head[0x202:0x206] == b"HdrS":
        raise BadKernel(path, "a compressed bzImage/vmlinuz, not a vmlinux; pass the ELF vmlinux "
                              "(e.g. /usr/lib/debug/boot/vmlinux-* from the -dbg package)")
    if head[:4] == b"\x7fELF":
        return
    if head[:2] == b"\x1f\x8b" or head[:3] == b"BZh" or head[:6] == b"\xfd7zXZ\x00" or head[:4] == b"\x28\xb5\x2f\xfd":
        raise BadKernel(path, "a compressed file, not a vmlinux; decompress it first")
    raise NotAnELF(path, "not an ELF file (no \\x7fELF magic)")


@dataclass(frozen=True)
class Fingerprint:
    """Identity of a vmlinux for the cache: build-id and the content hash (see KernelImage.sha256)."""

    build_id: str | None
    sha256: str
    size: int


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


def fingerprint(path: str) -> Fingerprint:
    """Check the file and hash what the analysis reads (~50 ms on a 590 MB vmlinux), without building symbols."""
    f, mm, size = _open(path)
    try:
        lay = _layout(path, mm, size)
        return Fingerprint(lay.build_id, lay.hasher.hexdigest(), size)
    finally:
        _close(mm, f)


def load_kernel(path: str, known: Fingerprint | None = None) -> KernelImage:
    """Open and check a vmlinux. Raises InputNotFound / NotAnELF / CorruptELF / BadKernel with one-line problems.
    `known`: a fingerprint just computed for this file (its hash is not computed again)."""
    f, mm, size = _open(path)
    try:
        return _parse(path, mm, size, known if known is not None and known.size == size else None)
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


class _NoHash:
    def update(self, _data) -> None:
        pass

    def hexdigest(self) -> str:
        return ""


@dataclass
class _Layout:
    phdrs: list
    shdrs: list
    e_shstrndx: int
    symtab: tuple | None
    build_id: str | None
    hasher: object


def _layout(path: str, mm: mmap.mmap, size: int, hash_content: bool = True) -> _Layout:
    """Validate headers, find the build-id, hash header + program headers + PT_LOAD bytes + .symtab + .strtab."""
    head = mm[:0x240]
    _refuse_non_elf(path, head)
    if len(head) < 20:
        raise CorruptELF(path, "truncated ELF header")
    ei_class, ei_data = head[4], head[5]
    if ei_data != 1:
        raise BadKernel(path, "big-endian ELF; only x86-64 kernels are supported")
    if ei_class == 1:
        machine = struct.unpack_from("<H", head, 18)[0]
        raise BadKernel(path, f"32-bit {MACHINES.get(machine, f'machine {machine}')} ELF; "
                              "only x86-64 vmlinux images are supported")
    if ei_class != 2:
        raise CorruptELF(path, f"bad ELF class {ei_class}")
    if len(head) < 64:
        raise CorruptELF(path, "truncated ELF header")
    (e_type, e_machine, _ver, _entry, e_phoff, e_shoff, _flags, _ehsize, e_phentsize, e_phnum, e_shentsize,
     e_shnum, e_shstrndx) = struct.unpack_from("<HHIQQQIHHHHHH", head, 16)
    if e_machine != EM_X86_64:
        raise BadKernel(path, f"{MACHINES.get(e_machine, f'machine {e_machine}')} ELF; "
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
    view = memoryview(mm)
    hasher = hashlib.sha256() if hash_content else _NoHash()
    hasher.update(head[:64])
    hasher.update(view[e_phoff:e_phoff + e_phnum * 56])
    for p in loads:
        if p[2] + p[5] > size:
            raise CorruptELF(path, f"segment at {p[3]:#x} extends past the end of the file")
        if p[3] >= KERNEL_SPACE:
            hasher.update(view[p[2]:p[2] + p[5]])
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
            hasher.update(view[off:off + sz - sz % 24])
            hasher.update(view[shdrs[link][4]:shdrs[link][4] + shdrs[link][5]])
    view.release()
    if symtab is None:
        raise BadKernel(path, "a stripped vmlinux (no symbol table); use the unstripped one, e.g. "
                              "/usr/lib/debug/boot/vmlinux-* from the linux-image-*-dbg package")
    return _Layout(phdrs, shdrs, e_shstrndx, symtab, build_id, hasher)


def _parse(path: str, mm: mmap.mmap, size: int, known: Fingerprint | None) -> KernelImage:
    lay = _layout(path, mm, size, hash_content=known is None)
    sha256 = known.sha256 if known is not None else lay.hasher.hexdigest()
    regions: list[Region] = []
    for _t, p_flags, p_offset, p_vaddr, _paddr, p_filesz, p_memsz, _align in (p for p in lay.phdrs if p[0] == PT_LOAD):
        if p_vaddr < KERNEL_SPACE:
            continue  # the per-cpu template (.data..percpu, linked at 0): not mapped at these addresses
        data = mm[p_offset:p_offset + p_filesz]
        if p_memsz > p_filesz:
            data += bytes(min(p_memsz - p_filesz, 1 << 26))
        regions.append(Region(start=p_vaddr, data=data, readable=bool(p_flags & 4), writable=bool(p_flags & 2),
                              executable=bool(p_flags & 1), name=f"LOAD@{p_vaddr:#x}"))
    memory = Memory(regions)

    shdrs = lay.shdrs
    sections: list[tuple[str, int, int, int, int, int]] = []
    names_sh = shdrs[lay.e_shstrndx] if lay.e_shstrndx < len(shdrs) else None
    shstr = mm[names_sh[4]:names_sh[4] + names_sh[5]] if names_sh and names_sh[4] + names_sh[5] <= size else b""
    for sh in shdrs:
        nm = shstr[sh[0]:shstr.find(b"\0", sh[0])].decode("latin-1") if sh[0] < len(shstr) else ""
        sections.append((nm, sh[3], sh[5], sh[4], sh[1], sh[2]))
    off, sz, link = lay.symtab[4], lay.symtab[5], lay.symtab[6]
    strtab = mm[shdrs[link][4]:shdrs[link][4] + shdrs[link][5]]
    exec_sections = {i for i, sh in enumerate(shdrs) if sh[2] & 0x4}
    table = SymbolTable(mm[off:off + sz - sz % 24], strtab, exec_sections)
    if not any(table.valid):
        raise BadKernel(path, "a stripped vmlinux (empty symbol table); use the unstripped one, e.g. "
                              "/usr/lib/debug/boot/vmlinux-* from the linux-image-*-dbg package")

    image = KernelImage(path=path, memory=memory, build_id=lay.build_id, sha256=sha256, version=None,
                        file_size=size, table=table, sections=sections)
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
    if text is None:
        for r in image.memory.regions:
            i = r.data.find(b"Linux version ")
            if i >= 0:
                text = image.memory.read_cstring(r.start + i, 512)
                break
    return text.strip() if text else None
