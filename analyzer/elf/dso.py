"""A light reader for shared libraries: PT_LOAD segments and .dynsym, without LIEF (a library is read for its exported
functions only, and LIEF's import and full parse would cost more than the question)."""
from __future__ import annotations

import struct

from .memory import Memory, Region


def read_dso(path: str):
    """(Memory of the PT_LOAD segments, {exported function name: (address, size)}, 64 or 32: its class) of an
    ELF .so."""

    with open(path, "rb") as fh:
        data = fh.read()
    if data[:4] != b"\x7fELF" or data[4] not in (1, 2) or data[5] != 1:
        raise ValueError("not a little-endian ELF")
    if data[4] == 2:
        (phoff, shoff) = struct.unpack_from("<QQ", data, 0x20)
        (phentsize, phnum, shentsize, shnum) = struct.unpack_from("<HHHH", data, 0x36)
    else:
        (phoff, shoff) = struct.unpack_from("<II", data, 0x1C)
        (phentsize, phnum, shentsize, shnum) = struct.unpack_from("<HHHH", data, 0x2A)
    regions = []
    for i in range(phnum):
        if data[4] == 2:
            p_type, p_flags, p_off, p_vaddr, _pa, p_filesz, p_memsz, _al = struct.unpack_from(
                "<IIQQQQQQ", data, phoff + i * phentsize)
        else:
            p_type, p_off, p_vaddr, _pa, p_filesz, p_memsz, p_flags, _al = struct.unpack_from(
                "<IIIIIIII", data, phoff + i * phentsize)
        if p_type == 1 and p_filesz:
            regions.append(Region(p_vaddr, data[p_off:p_off + p_filesz], True, bool(p_flags & 2),
                                  bool(p_flags & 1), f"LOAD@{p_vaddr:#x}"))
    # section header as (name, type, flags, addr, offset, size, link, ...): the same indices in both classes
    shfmt, symsize = ("<IIQQQQIIQQ", 24) if data[4] == 2 else ("<IIIIIIIIII", 16)
    sections = [struct.unpack_from(shfmt, data, shoff + i * shentsize) for i in range(shnum)]
    exports: dict[str, tuple[int, int]] = {}
    for sh in sections:
        if sh[1] != 11:  # SHT_DYNSYM
            continue
        strtab = sections[sh[6]]
        str_off = strtab[4]
        for k in range(sh[5] // symsize):
            if data[4] == 2:
                st_name, st_info, _other, st_shndx, st_value, st_size = struct.unpack_from("<IBBHQQ", data,
                                                                                          sh[4] + k * 24)
            else:
                st_name, st_value, st_size, st_info, _other, st_shndx = struct.unpack_from("<IIIBBH", data,
                                                                                          sh[4] + k * 16)
            if st_info & 0xF not in (2, 10) or not st_shndx or not st_value:  # FUNC / IFUNC, defined
                continue
            if st_info >> 4 not in (1, 2):  # GLOBAL / WEAK
                continue
            end = data.find(b"\0", str_off + st_name)
            name = data[str_off + st_name:end].decode("utf-8", "replace")
            exports.setdefault(name, (st_value, st_size))
    return Memory(regions), exports, 64 if data[4] == 2 else 32
