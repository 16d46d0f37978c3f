"""The program model of one object (file): executable ranges, functions, symbols, imports and exports, needed
libraries, data in code; calls and what is address-taken come from program/calls.py on first use.

Every stage above reads it (sites, values, the coming surface). An address is only meaningful with the object it
belongs to once a program spans several (ld.so, libc, …): `Address(obj, va)` and `Function.obj` carry the object's
content hash. A model is saved and loaded back as the same interface by program/freeze.py.
"""
from __future__ import annotations

import bisect
import hashlib
from dataclasses import dataclass, field

from ..elf.memory import Memory


@dataclass(frozen=True)
class ExecRange:
    """An executable section (or segment, when there are no section headers) that may hold syscall sites."""

    name: str
    start: int
    end: int
    offset: int  # file offset of `start`


@dataclass(frozen=True, order=True)
class Address:
    """A virtual address in one object, named by the object's content hash (sha256): a path can hold other bytes
    tomorrow, and the same bytes can sit under many paths (a library in every container image)."""

    obj: str
    va: int

    def __str__(self) -> str:
        return f"{self.obj[:12]}:{self.va:#x}"


@dataclass(frozen=True)
class Function:
    start: int
    end: int
    name: str
    source: str  # "symbol" (ELF or Go pclntab) | "eh_frame" | "entry" | "discovered"
    obj: str = ""  # the object's content hash (Address.obj)

    @property
    def address(self) -> Address:
        return Address(self.obj, self.start)


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
    exports: dict[str, int] = field(default_factory=dict)  # defined dynamic function symbol -> address
    needed: list[str] = field(default_factory=list)
    soname: str | None = None
    rpath: list[str] = field(default_factory=list)  # DT_RPATH entries (colon lists split), as written
    runpath: list[str] = field(default_factory=list)  # DT_RUNPATH entries
    got_symbols: dict[int, str] = field(default_factory=dict)
    """Slot -> symbol name of every dynamic relocation that names a symbol (GLOB_DAT, JUMP_SLOT, 64): what the
    loader binds across objects (`imports` is the JUMP_SLOT part, as PLT stubs see it)."""
    pointers: dict[int, int] = field(default_factory=dict)
    """Slot -> address of this object's RELATIVE / IRELATIVE relocations (the pointers the loader relocates;
    an IRELATIVE target is an IFUNC resolver)."""
    data_symbols: list[str] = field(default_factory=list)
    """Names whose address is stored in data by an absolute relocation (R_X86_64_64): function pointers into
    other objects."""
    init: list[int] = field(default_factory=list)  # DT_INIT and DT_FINI: called by the loader
    tables: list[tuple[int, int]] = field(default_factory=list)  # symbol, string, relocation, hash, unwind tables
    sections: list[tuple[int, int]] = field(default_factory=list)  # allocated, not executable: data sections
    variables: list[tuple[int, int]] = field(default_factory=list)  # (start, end) of sized data symbols
    init_arrays: list[tuple[int, int]] = field(default_factory=list)  # what the loader calls through: init/fini
    data_exports: dict[str, int] = field(default_factory=dict)  # defined dynamic data symbol -> address
    import_versions: dict[str, str] = field(default_factory=dict)
    """Imported name -> the symbol version it asks for (`name@VERSION` in the exports of the defining object; the
    plain name there is the default version)."""
    go: object | None = None  # analyzer.elf.golang.GoInfo for Go binaries (pclntab), else None
    notes: list[str] = field(default_factory=list)  # parts of a corrupt file that were skipped (report.incomplete)
    calls: object | None = field(default=None, repr=False, compare=False)
    """program.calls.CallIndex: direct calls into each function, what is address-taken; built on first use by
    program.calls.call_index and shared by every stage."""
    data_in_code: list[tuple[int, int, str]] = field(default_factory=list)
    """(start, end, name) of sized STT_OBJECT symbols inside executable sections: tables that hand-written assembly
    keeps in .text (OpenSSL's ecp_nistz256_precomputed, 148 KB in node). Bytes there are data, never sites."""
    textrel: bool = False  # DT_TEXTREL / DF_TEXTREL: the loader relocates words inside the code
    debug_file: str | None = None  # the separate debug file the symbols of a stripped file came from
    debug_sha256: str | None = None

    @property
    def key(self) -> str:
        """What the analysis of this object depends on: its bytes, and the debug file its symbols came from (the
        key of its cached summaries and models)."""
        if self.debug_sha256 is None:
            return self.sha256
        return hashlib.sha256(f"{self.sha256}+debug:{self.debug_sha256}".encode()).hexdigest()

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

    def in_symbol_table(self, addr: int) -> bool:
        """Is addr inside the symbol or relocation tables (where every function's address is written, though no
        code can call through it)?"""
        return any(lo <= addr < hi for lo, hi in self.tables)

    def address(self, va: int) -> Address:
        """`va` as an address of this object."""
        return Address(self.sha256, va)

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
