"""/etc/ld.so.cache as glibc's loader reads it (elf/dl-cache.c): the "glibc-ld.so.cache1.1" format, alone or after
the old "ld.so-1.7.0" one. Entries map a SONAME to a path, with flags for the ABI (x86-64, i386, x32)."""
from __future__ import annotations

import struct

NEW_MAGIC = b"glibc-ld.so.cache1.1"
OLD_MAGIC = b"ld.so-1.7.0"
FLAG_ELF = 0x0001  # "(ELF)": not tied to a libc; i386's ld-linux.so.2 is listed so
FLAG_ELF_LIBC6 = 0x0003
FLAG_TYPE_MASK = 0x00FF
FLAG_ARCH_MASK = 0xFF00
FLAG_X8664_LIB64 = 0x0300
FLAG_X8632_LIBX32 = 0x0800
MAX_CACHE = 64 << 20


def parse(data: bytes) -> dict[tuple[str, int], str]:
    """{(soname, bits): path} — bits 64 for x86-64 entries, 32 for i386 ones (x32 entries are left out). The first
    entry of a name wins, as in the loader's binary search over the sorted table. ValueError when not a cache."""
    base = 0
    if data.startswith(OLD_MAGIC):  # old table first: skip it (12-byte entries after a 16-byte header)
        nlibs, = struct.unpack_from("<I", data, 12)
        base = 16 + nlibs * 12
        base = (base + 7) & ~7  # the new table is aligned
    if data[base:base + len(NEW_MAGIC)] != NEW_MAGIC:
        raise ValueError("not a glibc ld.so.cache (no glibc-ld.so.cache1.1 table)")
    nlibs, len_strings = struct.unpack_from("<II", data, base + 20)
    if 48 + nlibs * 24 > len(data) - base:
        raise ValueError("ld.so.cache entries extend past the end of the file")
    out: dict[tuple[str, int], str] = {}
    for i in range(nlibs):
        flags, key, value, _os, _hwcap = struct.unpack_from("<iIIIQ", data, base + 48 + i * 24)
        if flags & FLAG_TYPE_MASK not in (FLAG_ELF, FLAG_ELF_LIBC6):  # the loader takes both (dl-cache.h)
            continue
        arch = flags & FLAG_ARCH_MASK
        bits = 64 if arch == FLAG_X8664_LIB64 else 32 if arch == 0 else None
        if bits is None:
            continue
        name, path = _cstr(data, base + key), _cstr(data, base + value)
        if name and path:
            out.setdefault((name, bits), path)
    return out


def _cstr(data: bytes, off: int) -> str | None:
    if not 0 <= off < len(data):
        return None
    end = data.find(b"\0", off)
    return data[off:end if end >= 0 else len(data)].decode("utf-8", "replace")


def read(path: str) -> dict[tuple[str, int], str]:
    """The cache at `path`, or {} when it is missing or not one (the loader then uses the default directories)."""
    try:
        with open(path, "rb") as fh:
            data = fh.read(MAX_CACHE)
        return parse(data)
    except (OSError, ValueError, struct.error):
        return {}
