"""The ELF header, checked before any parser sees the file: magic, class, machine, and that what it points at lies
inside the file. Every bad input gets one line and its own exit code (errors.py) here, not a parser's exception."""
from __future__ import annotations

import os
import stat
import struct

from ..errors import CorruptELF, InputNotFound, LimitExceeded, NotAnELF, UnsupportedArch


EM_386 = 3


EM_X86_64 = 62


MACHINE_NAMES = {
    2: "SPARC", 3: "i386", 8: "MIPS", 20: "PowerPC", 21: "PowerPC64", 22: "s390", 40: "ARM", 42: "SuperH",
    43: "SPARC v9", 50: "IA-64", 62: "x86-64", 183: "AArch64", 243: "RISC-V", 258: "LoongArch",
}


MAX_INPUT_BYTES = 2 << 30


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
