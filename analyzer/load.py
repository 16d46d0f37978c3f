"""Load a user ELF with LIEF into what the later stages need: memory, executable ranges, functions, symbols.

We check the ELF header ourselves before LIEF sees the file, so that every bad input gets one clear sentence
(LIEF answers many malformed files with a half-parsed object or a log line, not an error).
"""
from __future__ import annotations

import bisect
import hashlib
import io
import os
import stat
import struct
import warnings
from dataclasses import dataclass, field

from .errors import CorruptELF, InputNotFound, LimitExceeded, NotAnELF, UnsupportedArch
from .memory import Memory
from .textsafe import escape_controls

EM_386 = 3
EM_X86_64 = 62
MACHINE_NAMES = {
    2: "SPARC", 3: "i386", 8: "MIPS", 20: "PowerPC", 21: "PowerPC64", 22: "s390", 40: "ARM", 42: "SuperH",
    43: "SPARC v9", 50: "IA-64", 62: "x86-64", 183: "AArch64", 243: "RISC-V", 258: "LoongArch",
}
SHF_EXECINSTR = 0x4
MAX_EXEC_SECTIONS = 4096
"""More executable sections than this means corrupt section headers: use the PT_LOAD segments instead."""
MAX_INPUT_BYTES = 2 << 30


@dataclass(frozen=True)
class ExecRange:
    """An executable section (or segment, when there are no section headers) that may hold syscall sites."""

    name: str
    start: int
    end: int
    offset: int  # file offset of `start`


@dataclass(frozen=True)
class Function:
    start: int
    end: int
    name: str
    source: str  # "symbol" | "eh_frame" | "entry" | "section"


@dataclass
class LoadedBinary:
    """Everything the scan needs from one ELF; the LIEF object itself stays private to this module."""

    path: str
    size: int
    sha256: str
    arch: str  # "x86_64" | "i386"
    bits: int
    elf_type: str  # "executable" | "pie" | "shared-object" | "relocatable" | "core"
    static: bool
    stripped: bool
    interpreter: str | None
    build_id: str | None
    entry: int
    memory: Memory
    exec_ranges: list[ExecRange]
    functions: list[Function]
    symbols: dict[int, str]  # every named address (functions and data), first name by sort order
    imports: dict[int, str] = field(default_factory=dict)  # PLT stub / GOT slot -> imported name
    needed: list[str] = field(default_factory=list)
    go: object | None = None  # analyzer.golang.GoInfo for Go binaries (pclntab), else None
    notes: list[str] = field(default_factory=list)  # parts of a corrupt file that were skipped (report.incomplete)
    data_in_code: list[tuple[int, int, str]] = field(default_factory=list)
    """(start, end, name) of sized STT_OBJECT symbols inside executable sections: tables that hand-written assembly
    keeps in .text (OpenSSL's ecp_nistz256_precomputed, 148 KB in node). Bytes there are data, never sites."""

    def __post_init__(self) -> None:
        self.functions.sort(key=lambda f: (f.start, -f.end))
        self._fstarts = [f.start for f in self.functions]
        self._sym_addrs = sorted(self.symbols)
        self.data_in_code.sort()
        self._dstarts = [d[0] for d in self.data_in_code]

    def data_object_at(self, addr: int) -> tuple[int, int, str] | None:
        """The data object in code (see data_in_code) that holds addr, if any."""
        i = bisect.bisect_right(self._dstarts, addr) - 1
        if i >= 0 and addr < self.data_in_code[i][1]:
            return self.data_in_code[i]
        return None

    @property
    def pie(self) -> bool:
        return self.elf_type == "pie"

    def function_at(self, addr: int) -> Function | None:
        """The innermost known function whose range holds addr."""
        i = bisect.bisect_right(self._fstarts, addr) - 1
        while i >= 0:
            f = self.functions[i]
            if f.start <= addr < f.end:
                return f
            if addr - f.start > (1 << 20):
                break
            i -= 1
        return None

    def next_function_start(self, addr: int) -> int | None:
        i = bisect.bisect_right(self._fstarts, addr)
        return self._fstarts[i] if i < len(self._fstarts) else None

    def anchor_before(self, addr: int) -> int | None:
        """The closest known instruction boundary at or before addr: a function start or a function end."""
        best = None
        i = bisect.bisect_right(self._fstarts, addr) - 1
        if i >= 0:
            best = self._fstarts[i]
            # a function that ended before addr: code often resumes right after it
            for j in range(max(0, i - 4), i + 1):
                f = self.functions[j]
                if best < f.end <= addr:
                    best = f.end
        k = bisect.bisect_right(self._dstarts, addr) - 1  # code resumes after a data object too
        if k >= 0 and self.data_in_code[k][1] <= addr and (best is None or best < self.data_in_code[k][1]):
            best = self.data_in_code[k][1]
        return best

    def next_data_start(self, addr: int) -> int | None:
        i = bisect.bisect_right(self._dstarts, addr)
        return self._dstarts[i] if i < len(self._dstarts) else None

    def symbolize(self, addr: int | None) -> str | None:
        if addr is None:
            return None
        if addr in self.imports:
            return self.imports[addr] + "@plt"
        return self.symbols.get(addr)

    def exec_range_of(self, addr: int) -> ExecRange | None:
        for r in self.exec_ranges:
            if r.start <= addr < r.end:
                return r
        return None

    def file_offset(self, addr: int) -> int | None:
        r = self.exec_range_of(addr)
        return None if r is None else r.offset + (addr - r.start)


def read_and_check(path: str, max_size: int | None = None) -> bytes:
    """Read the file and validate the ELF header; raise the precise error a user should see.

    Files over `max_size` bytes (default MAX_INPUT_BYTES, `--max-size`) are refused before reading them."""
    limit = MAX_INPUT_BYTES if max_size is None else max_size
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise InputNotFound(path, "no such file") from None
    except OSError as e:
        raise InputNotFound(path, f"cannot access: {e.strerror or e}") from None
    if stat.S_ISDIR(st.st_mode):
        raise InputNotFound(path, "is a directory, not a file")
    if not stat.S_ISREG(st.st_mode):
        raise InputNotFound(path, "is not a regular file")
    if st.st_size > limit:
        raise LimitExceeded(path, f"file is too large ({st.st_size} bytes; the limit is {limit}, see --max-size)")
    try:
        with open(path, "rb") as fh:
            data = fh.read(min(st.st_size, limit) + 1)  # +1: the file may have grown since the stat
    except OSError as e:
        raise InputNotFound(path, f"cannot read: {e.strerror or e}") from None
    if len(data) > limit:
        raise LimitExceeded(path, f"file is too large (over {limit} bytes, see --max-size)")
    check_header(path, data)
    return data


def check_header(path: str, data: bytes) -> tuple[int, int]:
    """Validate e_ident and the header tables' extents. Returns (bits, e_machine)."""
    if len(data) < 4 or data[:4] != b"\x7fELF":
        if len(data) == 0:
            raise NotAnELF(path, "empty file, not an ELF")
        raise NotAnELF(path, "not an ELF file (no \\x7fELF magic)")
    if len(data) < 16:
        raise CorruptELF(path, f"truncated ELF: {len(data)} bytes, shorter than e_ident")
    ei_class, ei_data = data[4], data[5]
    if ei_class not in (1, 2):
        raise CorruptELF(path, f"corrupt ELF header: EI_CLASS is {ei_class}")
    if ei_data != 1:
        if ei_data == 2:
            machine = struct.unpack_from(">H", data, 18)[0] if len(data) >= 20 else 0
            raise UnsupportedArch(path, f"big-endian ELF for {MACHINE_NAMES.get(machine, f'machine {machine}')}; "
                                        "sysscan analyses x86-64 and i386")
        raise CorruptELF(path, f"corrupt ELF header: EI_DATA is {ei_data}")
    bits = 64 if ei_class == 2 else 32
    hdr_size = 64 if bits == 64 else 52
    if len(data) < hdr_size:
        raise CorruptELF(path, f"truncated ELF: {len(data)} bytes, shorter than the {hdr_size}-byte ELF header")
    if bits == 64:
        (e_type, e_machine, _v, _entry, e_phoff, e_shoff, _fl, _eh, e_phentsize, e_phnum, e_shentsize, e_shnum,
         e_shstrndx) = struct.unpack_from("<HHIQQQIHHHHHH", data, 16)
    else:
        (e_type, e_machine, _v, _entry, e_phoff, e_shoff, _fl, _eh, e_phentsize, e_phnum, e_shentsize, e_shnum,
         e_shstrndx) = struct.unpack_from("<HHIIIIIHHHHHH", data, 16)
    if e_machine not in (EM_386, EM_X86_64):
        name = MACHINE_NAMES.get(e_machine, f"machine {e_machine}")
        raise UnsupportedArch(path, f"ELF for {name}; sysscan analyses x86-64 and i386")
    if (e_machine == EM_X86_64) != (bits == 64):
        raise UnsupportedArch(path, f"{bits}-bit ELF for {MACHINE_NAMES[e_machine]} (x32 or mixed) is not supported")
    want_ph = 56 if bits == 64 else 32
    want_sh = 64 if bits == 64 else 40
    if e_phnum:
        if e_phentsize != want_ph:
            raise CorruptELF(path, f"corrupt ELF header: e_phentsize is {e_phentsize}, expected {want_ph}")
        if e_phoff + e_phnum * e_phentsize > len(data):
            raise CorruptELF(path, f"truncated or corrupt: program headers at {e_phoff:#x} ({e_phnum} entries) "
                                   f"extend past the end of the file ({len(data)} bytes)")
    if e_shnum:
        if e_shentsize != want_sh:
            raise CorruptELF(path, f"corrupt ELF header: e_shentsize is {e_shentsize}, expected {want_sh}")
        if e_shoff + e_shnum * e_shentsize > len(data):
            raise CorruptELF(path, f"truncated or corrupt: section headers at {e_shoff:#x} ({e_shnum} entries) "
                                   f"extend past the end of the file ({len(data)} bytes)")
        if e_shstrndx >= e_shnum and e_shstrndx != 0xFFFF:
            raise CorruptELF(path, f"corrupt ELF header: e_shstrndx {e_shstrndx} >= e_shnum {e_shnum}")
    if not e_phnum and not e_shnum:
        raise CorruptELF(path, "ELF has neither program headers nor section headers")
    if e_type not in (1, 2, 3, 4):
        raise CorruptELF(path, f"corrupt ELF header: e_type is {e_type}")
    return bits, e_machine


def _parse_lief(path: str, data: bytes):
    import lief

    lief.logging.disable()
    try:
        binary = lief.ELF.parse(io.BytesIO(data))  # LIEF 0.15 takes a `bytes` argument for a path
    except Exception as e:  # LIEF raises a variety of types on malformed input
        raise CorruptELF(path, f"LIEF could not parse it: {e}") from None
    if binary is None:
        raise CorruptELF(path, "LIEF could not parse the ELF structures")
    return binary


def load(path: str, max_size: int | None = None) -> LoadedBinary:
    """Read, validate and load one ELF file. Raises an analyzer.errors type on any bad input.

    Hostile input: LIEF answers unknown enum values with a RuntimeWarning on stderr (silenced here: stderr is for
    one-line errors) and non-UTF-8 names with bytes (made text by `_text`); optional parts that fail to parse
    (symbols, .eh_frame, imports, notes) are skipped and listed in `LoadedBinary.notes`, not fatal."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            return _load(path, max_size)
        except RecursionError:
            raise CorruptELF(path, "LIEF could not parse it: structures nest too deeply") from None


MAX_NAME_CHARS = 1024


def _text(v) -> str:
    """A name from the binary as text: LIEF gives bytes when it is not UTF-8; keep every byte visible (as \\xNN).
    Names longer than MAX_NAME_CHARS are cut (with "…"): a hostile 1 MB symbol name must not flood a report.
    Control and bidi characters become visible escapes (textsafe): no name can drive a terminal or reorder text;
    markup-looking text stays, each renderer escapes its own syntax."""
    if isinstance(v, bytes):
        v = v.decode("utf-8", "backslashreplace")
    elif not isinstance(v, str):
        v = str(v)
    v = escape_controls(v)
    return v if len(v) <= MAX_NAME_CHARS else v[: MAX_NAME_CHARS - 1] + "…"


def _load(path: str, max_size: int | None) -> LoadedBinary:
    import lief

    data = read_and_check(path, max_size)
    bits, machine = check_header(path, data)
    binary = _parse_lief(path, data)
    memory = Memory.from_lief(binary)
    if not memory.regions:
        raise CorruptELF(path, "no loadable segments")

    e_type = binary.header.file_type
    notes: list[str] = []
    try:
        interp = _text(binary.interpreter) if binary.has_interpreter else None
    except Exception:  # LIEF decodes PT_INTERP as UTF-8 and raises on anything else: read the bytes ourselves
        interp = next((_text(bytes(seg.content).split(b"\0")[0]) for seg in binary.segments
                       if seg.type == lief.ELF.Segment.TYPE.INTERP), None) or "?"
    if e_type == lief.ELF.Header.FILE_TYPE.EXEC:
        elf_type = "executable"
    elif e_type == lief.ELF.Header.FILE_TYPE.DYN:
        # A DYN with an interpreter, or with DF_1_PIE, or with an entry point and no SONAME, is a PIE program.
        flags1 = 0
        if binary.has(lief.ELF.DynamicEntry.TAG.FLAGS_1):
            flags1 = binary.get(lief.ELF.DynamicEntry.TAG.FLAGS_1).value
        soname = binary.has(lief.ELF.DynamicEntry.TAG.SONAME)
        is_pie = bool(interp) or bool(flags1 & 0x08000000) or (not soname and binary.entrypoint != 0 and
                                                               not binary.has(lief.ELF.DynamicEntry.TAG.NEEDED))
        elf_type = "pie" if is_pie else "shared-object"
    elif e_type == lief.ELF.Header.FILE_TYPE.REL:
        elf_type = "relocatable"
    else:
        elf_type = "core"

    symbols: dict[int, str] = {}
    functions: dict[int, Function] = {}
    text_ranges = []
    exec_ranges: list[ExecRange] = []
    for sec in binary.sections:
        if sec.flags & SHF_EXECINSTR and sec.size and sec.type != lief.ELF.Section.TYPE.NOBITS and sec.virtual_address:
            exec_ranges.append(ExecRange(_text(sec.name) or f"section@{sec.virtual_address:#x}", sec.virtual_address,
                                         sec.virtual_address + sec.size, sec.offset))
    if len(exec_ranges) > MAX_EXEC_SECTIONS:
        notes.append(f"{len(exec_ranges)} executable sections (corrupt section headers?): searched the executable "
                     "segments instead")
        exec_ranges = []
    if not exec_ranges:
        for seg in binary.segments:
            if seg.type == lief.ELF.Segment.TYPE.LOAD and seg.flags & lief.ELF.Segment.FLAGS.X and seg.physical_size:
                exec_ranges.append(ExecRange(f"LOAD@{seg.virtual_address:#x}", seg.virtual_address,
                                             seg.virtual_address + seg.physical_size, seg.file_offset))
    exec_ranges.sort(key=lambda r: r.start)
    text_ranges = [(r.start, r.end) for r in exec_ranges]

    def in_exec(a: int) -> bool:
        return any(lo <= a < hi for lo, hi in text_ranges)

    stripped = True
    data_objects: dict[int, tuple[int, str]] = {}  # start -> (end, name) of sized data symbols in code
    try:
        all_symbols = list(binary.symtab_symbols) + list(binary.dynamic_symbols)
    except Exception as e:  # a corrupt symbol table: analyse without names
        all_symbols = []
        notes.append(f"symbol table not readable ({type(e).__name__}): functions come from .eh_frame and the entry")
    for sym in all_symbols:
        name = _text(sym.name)
        if not name or not sym.value:
            continue
        if sym.type == lief.ELF.Symbol.TYPE.SECTION or sym.type == lief.ELF.Symbol.TYPE.FILE:
            continue
        addr = sym.value
        if name not in ("", "$x", "$d") and (addr not in symbols or _better_name(name, symbols[addr])):
            symbols[addr] = name
        is_func = sym.type in (lief.ELF.Symbol.TYPE.FUNC, lief.ELF.Symbol.TYPE.GNU_IFUNC)
        is_label = sym.type == lief.ELF.Symbol.TYPE.NOTYPE and in_exec(addr)
        if sym.type == lief.ELF.Symbol.TYPE.OBJECT and sym.size and in_exec(addr):
            end = addr + min(sym.size, 1 << 30)
            if end > data_objects.get(addr, (0, ""))[0]:
                data_objects[addr] = (end, symbols.get(addr, name))
        if (is_func or is_label) and in_exec(addr):
            end = addr + sym.size if sym.size else 0
            prev = functions.get(addr)
            if prev is None or (prev.end == 0 and end) or _better_name(name, prev.name):
                functions[addr] = Function(addr, end or (prev.end if prev else 0), symbols.get(addr, name), "symbol")
    if any(True for _ in binary.symtab_symbols):
        stripped = False

    for start, end in _eh_frame_functions(binary, memory):
        if in_exec(start) and start not in functions:
            functions[start] = Function(start, end, f"sub_{start:x}", "eh_frame")
        elif start in functions and functions[start].end == 0:
            f = functions[start]
            functions[start] = Function(start, end, f.name, f.source)

    go = _go_functions(binary, memory, in_exec, functions, symbols)

    entry = binary.entrypoint
    if entry and in_exec(entry) and entry not in functions:
        functions[entry] = Function(entry, 0, symbols.get(entry, "_start" if stripped else f"sub_{entry:x}"), "entry")

    imports: dict[int, str] = {}
    try:
        for reloc in binary.pltgot_relocations:
            if reloc.has_symbol and reloc.symbol.name:
                imports[reloc.address] = _text(reloc.symbol.name)
    except Exception:  # LIEF may fail on corrupt relocation tables; names are a nicety
        pass

    if stripped and go is None and _sparse(functions, exec_ranges):
        # No symbols, no FDEs, no pclntab (hand-stripped, section headers gone, -fno-asynchronous-unwind-tables):
        # find function starts by disassembly, so that sites and callers get real function bounds.
        try:
            from .values.interproc import discover_starts

            for start in discover_starts(memory, exec_ranges, bits):
                if start not in functions:
                    functions[start] = Function(start, 0, symbols.get(start, f"sub_{start:x}"), "discovered")
        except Exception as e:  # noqa: BLE001 - discovery is a nicety
            notes.append(f"function discovery by disassembly failed: {type(e).__name__}")

    # Close open-ended functions at the next start (or data object, or the end of their executable range).
    starts = sorted(functions)
    data_starts = sorted(data_objects)
    final: list[Function] = []
    for i, s in enumerate(starts):
        f = functions[s]
        end = f.end
        if not end:
            rng = next((r for r in exec_ranges if r.start <= s < r.end), None)
            nxt = starts[i + 1] if i + 1 < len(starts) else None
            j = bisect.bisect_right(data_starts, s)
            data_next = data_starts[j] if j < len(data_starts) else None
            end = min(x for x in (nxt, data_next, rng.end if rng else None, s + (1 << 16)) if x is not None)
        final.append(Function(s, max(end, s + 1), f.name, f.source))

    build_id = None
    try:
        for note in binary.notes:
            if note.type == lief.ELF.Note.TYPE.GNU_BUILD_ID:
                build_id = bytes(note.description).hex()
    except Exception as e:  # corrupt notes: the build-id is a nicety
        notes.append(f"notes not readable: {type(e).__name__}")
    try:
        needed = [_text(lib) for lib in binary.libraries]
    except Exception as e:
        needed = []
        notes.append(f"DT_NEEDED entries not readable: {type(e).__name__}")
    return LoadedBinary(
        path=path,
        size=len(data),
        sha256=hashlib.sha256(data).hexdigest(),
        arch="x86_64" if machine == EM_X86_64 else "i386",
        bits=bits,
        elf_type=elf_type,
        static=not interp and not binary.has(lief.ELF.DynamicEntry.TAG.NEEDED) and elf_type != "shared-object",
        stripped=stripped,
        interpreter=interp or None,
        build_id=build_id,
        entry=entry,
        memory=memory,
        exec_ranges=exec_ranges,
        functions=final,
        symbols=symbols,
        imports=imports,
        needed=needed,
        notes=notes,
        go=go,
        data_in_code=[(a, e, n) for a, (e, n) in data_objects.items()],
    )


def _go_functions(binary, memory: Memory, in_exec, functions: dict[int, Function], symbols: dict[int, str]):
    """Go binaries keep their pclntab (function entries, ends and names) even when stripped: add what it knows."""
    from .golang import find_pclntab

    sections = {}
    sec = binary.get_section(".gopclntab")
    if sec is not None and sec.size:
        sections[".gopclntab"] = (sec.virtual_address, bytes(sec.content))
    elif len(binary.sections):
        return None  # with section headers and no .gopclntab it is not a Go binary (Go always emits the section)
    try:
        info = find_pclntab(sections, [(r.start, r.data, r.writable) for r in memory.regions], in_exec)
    except Exception:  # a corrupt table must not stop the scan: Go names are a nicety
        return None
    if info is None:
        return None
    for gf in info.functions:
        if not in_exec(gf.start):
            continue
        symbols.setdefault(gf.start, _text(gf.name))
        prev = functions.get(gf.start)
        if prev is None:
            functions[gf.start] = Function(gf.start, gf.end, _text(gf.name), "symbol")  # Go's own symbol table
        elif prev.end == 0:
            functions[gf.start] = Function(gf.start, gf.end, prev.name, prev.source)
    return info


def _sparse(functions: dict, exec_ranges: list[ExecRange]) -> bool:
    """Only the entry point, or fewer known functions than one per 16 KB of code: too few for sites and callers
    to have real bounds."""
    code = sum(r.end - r.start for r in exec_ranges)
    return len(functions) <= 1 or len(functions) * 16384 < code


def _better_name(new: str, old: str) -> bool:
    """Prefer public names over local/compiler ones (`write` over `__libc_write`, `f` over `f.cold`)."""
    def rank(n: str) -> tuple:
        return (n.startswith("_"), "." in n, len(n), n)
    return rank(new) < rank(old)


def _eh_frame_functions(binary, memory: Memory) -> list[tuple[int, int]]:
    """Function ranges from .eh_frame FDEs: they survive stripping, so stripped binaries still have functions.

    Hostile input: bounded by the section size (every record advances), and never raises — garbage gives the
    FDEs that could be read before it."""
    out: list[tuple[int, int]] = []
    try:
        _eh_frame_walk(binary, out, memory)
    except Exception:  # noqa: BLE001 - a corrupt .eh_frame costs us function starts, never the scan
        pass
    return out


def _eh_frame_walk(binary, out: list[tuple[int, int]], memory: Memory | None = None) -> None:
    sec = binary.get_section(".eh_frame")
    stop_at_zero = False
    if sec is None or not sec.size:
        # No section headers (sstrip) or no .eh_frame section: PT_GNU_EH_FRAME still points at .eh_frame_hdr,
        # whose eh_frame_ptr gives where .eh_frame starts; its end is the zero terminator.
        found = _eh_frame_via_hdr(binary, memory) if memory is not None else None
        if found is None:
            return
        base, data = found
        stop_at_zero = True
    else:
        data = bytes(sec.content)
        base = sec.virtual_address
    cie_enc: dict[int, int] = {}
    off = 0
    n = len(data)
    while off + 4 <= n:
        (length,) = struct.unpack_from("<I", data, off)
        if length == 0:
            if stop_at_zero:
                break
            off += 4
            continue
        hdr = 4
        if length == 0xFFFFFFFF:
            if off + 12 > n:
                break
            (length,) = struct.unpack_from("<Q", data, off + 4)
            hdr = 12
        rec = off + hdr
        end = rec + length
        if end > n or length < 4:
            break
        (cie_id,) = struct.unpack_from("<I", data, rec)
        if cie_id == 0:
            try:
                cie_enc[off] = _cie_fde_encoding(data, rec + 4, end)
            except (IndexError, UnicodeDecodeError):  # a CIE cut short: its FDEs get the common encoding
                cie_enc[off] = 0x1B
        else:
            cie_off = rec - cie_id
            enc = cie_enc.get(cie_off, 0x1B)
            p = rec + 4
            start = _read_encoded(data, p, enc, base + p)
            size = _read_encoded(data, p + _enc_size(enc), enc & 0x0F, 0)
            if start is not None and size is not None and 0 < size < (1 << 24):
                out.append((start & ((1 << 64) - 1), (start + size) & ((1 << 64) - 1)))
        off = end


def _eh_frame_via_hdr(binary, memory: Memory) -> tuple[int, bytes] | None:
    """(address, bytes from there to the end of its segment) of .eh_frame, found through PT_GNU_EH_FRAME."""
    import lief

    for seg in binary.segments:
        if seg.type != lief.ELF.Segment.TYPE.GNU_EH_FRAME:
            continue
        hdr = seg.virtual_address
        raw = memory.read(hdr, 12)
        if raw is None or raw[0] != 1:  # version 1
            return None
        enc = raw[1]
        ptr = _read_encoded(raw, 4, enc, hdr + 4)
        if ptr is None:
            return None
        if enc & 0x70 == 0x30:  # datarel: relative to the start of .eh_frame_hdr
            ptr = hdr + (ptr - (hdr + 4) if enc & 0x70 == 0x10 else ptr)
        ptr &= (1 << 64) - 1
        region = memory.region_of(ptr)
        if region is None:
            return None
        return ptr, memory.read(ptr, region.end - ptr) or b""
    return None


def _uleb(data: bytes, p: int) -> tuple[int, int]:
    v = shift = 0
    while p < len(data):
        b = data[p]
        p += 1
        v |= (b & 0x7F) << shift
        shift += 7
        if not b & 0x80:
            break
    return v, p


def _cie_fde_encoding(data: bytes, p: int, end: int) -> int:
    """Parse a CIE just far enough to learn how its FDEs encode pc_begin (augmentation 'R')."""
    if p >= end:
        return 0x1B
    version = data[p]
    p += 1
    z = data.find(b"\0", p, end)
    if z < 0:
        return 0x1B
    aug = data[p:z].decode("latin-1")
    p = z + 1
    if "eh" in aug:
        p += 8
    _, p = _uleb(data, p)  # code alignment
    _, p = _uleb(data, p)  # data alignment (sleb, same length)
    if version == 1:
        p += 1
    else:
        _, p = _uleb(data, p)
    if not aug.startswith("z"):
        return 0x00
    _, p = _uleb(data, p)
    for ch in aug[1:]:
        if ch == "R":
            return data[p] if p < end else 0x1B
        if ch == "P":
            penc = data[p]
            p += 1 + _enc_size(penc)
        elif ch == "L":
            p += 1
        else:
            break
    return 0x00


def _enc_size(enc: int) -> int:
    return {0x00: 8, 0x02: 2, 0x03: 4, 0x04: 8, 0x0A: 2, 0x0B: 4, 0x0C: 8}.get(enc & 0x0F, 4)


def _read_encoded(data: bytes, p: int, enc: int, pc: int) -> int | None:
    fmt = {0x00: "<Q", 0x02: "<H", 0x03: "<I", 0x04: "<Q", 0x0A: "<h", 0x0B: "<i", 0x0C: "<q"}.get(enc & 0x0F)
    if fmt is None or p + struct.calcsize(fmt) > len(data):
        return None
    (v,) = struct.unpack_from(fmt, data, p)
    if enc & 0x70 == 0x10:
        v += pc
    return v
