"""Build one object's program model from its ELF file (LIEF): memory, executable ranges, and the functions from every
source there is — symbols, .eh_frame FDEs, Go's pclntab, the entry point, and a disassembly sweep when a stripped
file knows too few.

The ELF header is checked first (elf/header.py), so that every bad input gets one clear sentence (LIEF answers
many malformed files with a half-parsed object or a log line, not an error).
"""
from __future__ import annotations

import bisect
import hashlib
import io
import warnings

from ..elf import debugfile
from ..elf.debugfile import DEFAULT_DIRS as DEFAULT_DEBUG_DIRS
from ..elf.ehframe import _eh_frame_functions
from ..elf.header import EM_X86_64, check_header, read_and_check
from ..elf.memory import Memory
from ..errors import CorruptELF
from ..textsafe import escape_controls
from .functions import discover_starts
from .model import ExecRange, Function, LoadedBinary

SHF_EXECINSTR = 0x4
MAX_EXEC_SECTIONS = 4096
"""More executable sections than this means corrupt section headers: use the PT_LOAD segments instead."""


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


def load(path: str, max_size: int | None = None, debug_dirs: tuple[str, ...] = DEFAULT_DEBUG_DIRS) -> LoadedBinary:
    """Read, validate and load one ELF file. Raises an analyzer.errors type on any bad input. A stripped file's
    symbols come from its separate debug file where one of `debug_dirs` holds it (elf/debugfile.py).

    Hostile input: LIEF answers unknown enum values with a RuntimeWarning on stderr (silenced here: stderr is for
    one-line errors) and non-UTF-8 names with bytes (made text by `_text`); optional parts that fail to parse
    (symbols, .eh_frame, imports, notes) are skipped and listed in `LoadedBinary.notes`, not fatal."""
    return _load_data(path, read_and_check(path, max_size), debug_dirs)


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


def load_bytes(data: bytes, name: str) -> LoadedBinary:
    """An ELF image that is not a file of its own (a vDSO image embedded in a kernel), loaded as `load` loads a
    file; `name` stands for its path in reports and errors."""
    return _load_data(name, data, ())


def _load_data(path: str, data: bytes, debug_dirs: tuple[str, ...]) -> LoadedBinary:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            return _load_lief(path, data, debug_dirs)
        except RecursionError:
            raise CorruptELF(path, "LIEF could not parse it: structures nest too deeply") from None


def _load_lief(path: str, data: bytes, debug_dirs: tuple[str, ...]) -> LoadedBinary:
    import lief

    bits, machine = check_header(path, data)
    sha256 = hashlib.sha256(data).hexdigest()
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

    build_id = None
    try:
        for note in binary.notes:
            if note.type == lief.ELF.Note.TYPE.GNU_BUILD_ID:
                build_id = bytes(note.description).hex()
    except Exception as e:  # corrupt notes: the build-id is a nicety
        notes.append(f"notes not readable: {type(e).__name__}")

    stripped = True
    data_objects: dict[int, tuple[int, str]] = {}  # start -> (end, name) of sized data symbols in code
    variables: dict[int, int] = {}  # start -> end of sized data symbols elsewhere (the surface's data chunks)
    debug = None
    try:
        all_symbols = list(binary.symtab_symbols) + list(binary.dynamic_symbols)
        if debug_dirs and not any(True for _ in binary.symtab_symbols):
            debug = debugfile.find(path, binary, build_id, debug_dirs)
            if debug is not None:  # not its assembler-local labels (a switch's `.L9` cases): not functions
                all_symbols = [s for s in debug.symbols if not _text(s.name).startswith(".L")] + all_symbols
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
        elif sym.type == lief.ELF.Symbol.TYPE.OBJECT and sym.size:
            end = addr + min(sym.size, 1 << 30)
            if end > variables.get(addr, 0):
                variables[addr] = end
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

    dyn = _dynamic_facts(binary, memory, bits)
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
        final.append(Function(s, max(end, s + 1), f.name, f.source, sha256))

    try:
        needed = [_text(lib) for lib in binary.libraries]
    except Exception as e:
        needed = []
        notes.append(f"DT_NEEDED entries not readable: {type(e).__name__}")
    return LoadedBinary(
        path=path,
        size=len(data),
        sha256=sha256,
        arch="x86_64" if machine == EM_X86_64 else "i386",
        bits=bits,
        elf_type=elf_type,
        static=not interp and not binary.has(lief.ELF.DynamicEntry.TAG.NEEDED) and elf_type != "shared-object",
        stripped=stripped,
        interpreter=interp or None,
        build_id=build_id,
        debug_file=debug.path if debug else None,
        debug_sha256=debug.sha256 if debug else None,
        entry=entry,
        memory=memory,
        exec_ranges=exec_ranges,
        functions=final,
        symbols=symbols,
        imports=imports,
        needed=needed,
        variables=sorted(variables.items()),
        **dyn,
        notes=notes,
        go=go,
        data_in_code=[(a, e, n) for a, (e, n) in data_objects.items()],
    )


def _dynamic_facts(binary, memory: Memory, bits: int) -> dict:
    """What the loader reads besides DT_NEEDED: SONAME, RPATH/RUNPATH, DT_INIT/DT_FINI, and the dynamic relocations
    (symbol slots, relocated pointers). Anything unreadable is left empty: these feed the program surface, which
    says what it could not see."""
    import lief

    out: dict = {"soname": None, "rpath": [], "runpath": [], "got_symbols": {}, "pointers": {}, "data_symbols": [],
                 "init": [], "tables": [], "sections": [], "init_arrays": [], "exports": {}, "data_exports": {},
                 "import_versions": {}, "textrel": False}
    try:
        for sec in binary.sections:
            if sec.virtual_address and sec.size and not sec.flags & SHF_EXECINSTR and sec.flags & 0x2:  # SHF_ALLOC
                out["sections"].append((sec.virtual_address, sec.virtual_address + sec.size))
                if _text(sec.name) in (".init_array", ".fini_array", ".preinit_array", "__libc_atexit"):
                    out["init_arrays"].append((sec.virtual_address, sec.virtual_address + sec.size))
            if _text(sec.name).startswith((".dynsym", ".symtab", ".strtab", ".dynstr", ".rela", ".rel.", ".hash",
                                            ".gnu.hash", ".eh_frame", ".gnu.version", ".note")) and sec.virtual_address:
                out["tables"].append((sec.virtual_address, sec.virtual_address + sec.size))
    except Exception:  # corrupt section headers
        pass
    T = lief.ELF.DynamicEntry.TAG
    try:
        for e in binary.dynamic_entries:
            if e.tag == T.SONAME:
                out["soname"] = _text(e.name)
            elif e.tag == T.RPATH:
                out["rpath"] += [p for p in _text(e.rpath).split(":") if p]
            elif e.tag == T.RUNPATH:
                out["runpath"] += [p for p in _text(e.runpath).split(":") if p]
            elif e.tag in (T.INIT, T.FINI) and e.value:
                out["init"].append(e.value)
            elif e.tag == T.TEXTREL or (e.tag == T.FLAGS and e.value & 0x4):  # DF_TEXTREL
                out["textrel"] = True
        for arr, size in ((T.INIT_ARRAY, T.INIT_ARRAYSZ), (T.FINI_ARRAY, T.FINI_ARRAYSZ),
                          (T.PREINIT_ARRAY, T.PREINIT_ARRAYSZ)):
            if binary.has(arr) and binary.has(size):
                a = binary.get(arr).value
                r = memory.region_of(a)
                if r is not None:  # clipped to what is mapped: a corrupt size must not span the address space
                    out["init_arrays"].append((a, min(a + binary.get(size).value, r.end)))
    except Exception:  # corrupt dynamic section
        pass
    width = bits // 8
    try:
        relocs = list(binary.dynamic_relocations) + list(binary.pltgot_relocations)
    except Exception:
        relocs = []
    S = lief.ELF.Symbol
    defaults: set[tuple[str, str]] = set()
    try:  # defined global symbols: functions (IFUNCs bind to their resolver) and data
        for sym in binary.dynamic_symbols:
            if not (sym.value and sym.shndx and sym.binding in (S.BINDING.GLOBAL, S.BINDING.WEAK)):
                continue
            kind = "exports" if sym.type in (S.TYPE.FUNC, S.TYPE.GNU_IFUNC) else \
                "data_exports" if sym.type == S.TYPE.OBJECT else None
            name = _text(sym.name)
            if kind and name:
                version, hidden = _version(sym)
                if version:  # `name@VERSION` binds a reference that asks for that version
                    out[kind].setdefault(f"{name}@{version}", sym.value)
                if hidden:  # `name@VERSION` only (a compatibility symbol): a plain name binds the default one
                    out[kind].setdefault(name, sym.value)
                elif (kind, name) not in defaults:  # the first default definition wins over compatibility ones
                    defaults.add((kind, name))
                    out[kind][name] = sym.value
    except Exception:  # a corrupt dynamic symbol table: no exports (the symbol loop above said so already)
        out["exports"], out["data_exports"] = {}, {}
    out["sections"].sort()
    out["init_arrays"] = sorted(set(out["init_arrays"]))
    for r in relocs:
        try:
            kind = r.type.name if hasattr(r.type, "name") else str(r.type)
            name = _text(r.symbol.name) if r.has_symbol and r.symbol is not None else ""
            if kind.endswith(("_RELATIVE", "_IRELATIVE")) and not name:
                target = r.addend
                if not target:  # REL, or RELR (DT_RELR): the addend is the word in place
                    word = memory.read(r.address, width)
                    target = int.from_bytes(word, "little") if word and len(word) == width else 0
                if target:
                    out["pointers"][r.address] = target
            elif name and kind.endswith(("_GLOB_DAT", "_JUMP_SLOT", "_64", "_32")):
                out["got_symbols"][r.address] = name
                version, _hidden = _version(r.symbol)
                if version:
                    out["import_versions"][name] = version
                if kind.endswith(("_64", "_32")):
                    out["data_symbols"].append(name)
        except Exception:
            continue
    out["data_symbols"] = sorted(set(out["data_symbols"]))
    return out


def _version(sym) -> tuple[str | None, bool]:
    """A dynamic symbol's version name (a definition's from .gnu.version_d, a reference's from .gnu.version_r) and
    whether it is hidden (`name@VERSION`, not the default `name@@VERSION`); (None, False) when it has none."""
    try:
        v = sym.symbol_version if sym.has_version else None
        if v is None or (v.value & 0x7FFF) < 2 or not v.has_auxiliary_version:  # 0 local, 1 global: no version
            return None, False
        return _text(v.symbol_version_auxiliary.name) or None, bool(v.value & 0x8000)
    except Exception:  # a corrupt version table: as if there were none
        return None, False


def _go_functions(binary, memory: Memory, in_exec, functions: dict[int, Function], symbols: dict[int, str]):
    """Go binaries keep their pclntab (function entries, ends and names) even when stripped: add what it knows."""
    from ..elf.golang import find_pclntab

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


