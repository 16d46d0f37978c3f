"""Separate debug files: the full symbol table of a stripped object, where the distribution ships it.

Debian's `libc6-dbg` (and every `-dbgsym` package) installs `/usr/lib/debug/.build-id/ab/cdef….debug` for the object
with build-id `abcdef…`: the same link-time layout, its code as NOBITS, and the `.symtab` the object lost when it was
stripped — local functions, and the sized data objects (`_nl_C_locobj`, `svcauthsw`) whose extents the program
surface needs to keep one object's pointers from spilling into the next one's. gdb looks for them the same way:
by build-id first, then by `.gnu_debuglink` (a name and a CRC-32 of the debug file) beside the object, in its
`.debug/` directory, and under the debug directory with the object's own directory.

A candidate is used only when its build-id equals the object's (or, found by debuglink, when its CRC matches):
never a debug file of another build.
"""
from __future__ import annotations

import os
import struct
import zlib
from dataclasses import dataclass

DEFAULT_DIRS = ("/usr/lib/debug",)
MAX_DEBUG_BYTES = 256 << 20
"""A debug file larger than this is not read (it is read whole, for its CRC and by LIEF; the largest C++ libraries'
are gigabytes, nearly all of it DWARF the symbol table does not need): the object is analysed as it is."""


@dataclass(frozen=True)
class Symbol:
    """What the loader reads of one symbol, copied out of LIEF (its objects die with the parsed file)."""

    name: str | bytes
    value: int
    size: int
    type: object  # lief.ELF.Symbol.TYPE


@dataclass(frozen=True)
class DebugFile:
    path: str
    sha256: str
    symbols: list[Symbol]  # its .symtab


def candidates(path: str, build_id: str | None, debuglink: str | None, dirs) -> list[tuple[str, str]]:
    """(candidate path, how it must be checked: "build-id" | "crc"), in gdb's order."""
    out: list[tuple[str, str]] = []
    if build_id and len(build_id) > 2:
        out += [(os.path.join(d, ".build-id", build_id[:2], build_id[2:] + ".debug"), "build-id") for d in dirs]
    if debuglink and "/" not in debuglink:
        here = os.path.dirname(os.path.abspath(path))
        out += [(os.path.join(here, debuglink), "crc"), (os.path.join(here, ".debug", debuglink), "crc")]
        out += [(os.path.join(d, here.lstrip("/"), debuglink), "crc") for d in dirs]
    return [(p, how) for p, how in out if os.path.abspath(p) != os.path.abspath(path)]


def debuglink_of(binary) -> tuple[str, int] | None:
    """(file name, CRC-32) from the object's `.gnu_debuglink` section, if it has one."""
    try:
        sec = binary.get_section(".gnu_debuglink")
        raw = bytes(sec.content) if sec is not None else b""
    except Exception:  # noqa: BLE001 - corrupt section headers: no link
        return None
    name, sep, _rest = raw.partition(b"\0")
    if not sep or not name or len(raw) < 4:
        return None
    try:
        text = name.decode()
    except UnicodeDecodeError:
        return None
    return text, struct.unpack_from("<I", raw, len(raw) - 4)[0]


def find(path: str, binary, build_id: str | None, dirs=DEFAULT_DIRS) -> DebugFile | None:
    """The debug file of the object at `path` (its LIEF `binary`, its `build_id`), or None."""
    import hashlib

    link = debuglink_of(binary)
    for cand, how in candidates(path, build_id, link[0] if link else None, dirs):
        try:
            st = os.stat(cand)
            if not os.path.isfile(cand) or st.st_size > MAX_DEBUG_BYTES:
                continue
            memo = (cand, st.st_size, st.st_mtime_ns, how, build_id, link)
            if memo in _READ:  # libc's debug file, once per process (every dynamic program loads libc)
                return _READ[memo]
            with open(cand, "rb") as fh:
                data = fh.read()
        except OSError:
            continue
        if how == "crc" and (link is None or zlib.crc32(data) != link[1]):
            continue
        symbols = _symbols_if_same_build(data, build_id if how == "build-id" else None)
        if symbols is not None:
            if len(_READ) >= MEMO_ENTRIES:
                _READ.pop(next(iter(_READ)))
            _READ[memo] = DebugFile(cand, hashlib.sha256(data).hexdigest(), symbols)
            return _READ[memo]
    return None


_READ: dict[tuple, DebugFile] = {}
MEMO_ENTRIES = 32


def _symbols_if_same_build(data: bytes, build_id: str | None) -> list | None:
    """The debug file's .symtab symbols; None when it is not an ELF LIEF reads, or its build-id is not `build_id`
    (when one is asked for)."""
    import io

    import lief

    if data[:4] != b"\x7fELF":
        return None
    lief.logging.disable()
    try:
        dbg = lief.ELF.parse(io.BytesIO(data))
        if dbg is None:
            return None
        if build_id is not None:
            ids = [bytes(n.description).hex() for n in dbg.notes if n.type == lief.ELF.Note.TYPE.GNU_BUILD_ID]
            if build_id not in ids:
                return None
        return [Symbol(sym.name, sym.value, sym.size, sym.type) for sym in dbg.symtab_symbols]
    except Exception:  # noqa: BLE001 - a corrupt debug file is as if there were none
        return None
