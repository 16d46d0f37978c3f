"""Source lines for sites, from the binary's own DWARF line table (when it was built with -g).

A site's `source` ("file:line") lets SARIF point GitHub code scanning at the line of C or assembly that holds the
syscall instead of at the binary. Read with binutils' addr2line in one batch per binary, only when the ELF has a
.debug_line section; bounded by a timeout, and every failure just leaves `source` empty (noted in `incomplete`).
File names come from the binary: they are made safe like every other binary-derived name.
"""
from __future__ import annotations

import os
import shutil
import struct
import subprocess

from ..textsafe import escape_controls

TIMEOUT = 10.0
MAX_SECTIONS = 4096


def has_debug_line(path: str) -> bool:
    """Does the ELF have a .debug_line section? Reads only the ELF header, the section headers and their names."""
    try:
        with open(path, "rb") as f:
            ident = f.read(64)
            if len(ident) < 52 or ident[:4] != b"\x7fELF" or ident[4] not in (1, 2) or ident[5] not in (1, 2):
                return False
            is64, end = ident[4] == 2, "<" if ident[5] == 1 else ">"
            if is64:
                shoff, = struct.unpack_from(end + "Q", ident, 0x28)
                shentsize, shnum, shstrndx = struct.unpack_from(end + "HHH", ident, 0x3A)
            else:
                shoff, = struct.unpack_from(end + "I", ident, 0x20)
                shentsize, shnum, shstrndx = struct.unpack_from(end + "HHH", ident, 0x2E)
            if not shoff or not shnum or shnum > MAX_SECTIONS or shstrndx >= shnum or shentsize < (64 if is64
                                                                                                      else 40):
                return False
            f.seek(shoff)
            table = f.read(shentsize * shnum)
            if len(table) < shentsize * shnum:
                return False

            def sect(i: int) -> tuple[int, int, int]:
                base = i * shentsize
                if is64:
                    name, _t, _fl, _a, off, size = struct.unpack_from(end + "IIQQQQ", table, base)
                else:
                    name, _t, _fl, _a, off, size = struct.unpack_from(end + "IIIIII", table, base)
                return name, off, size

            _, stroff, strsize = sect(shstrndx)
            if strsize > 1 << 24:
                return False
            f.seek(stroff)
            strtab = f.read(strsize)
            for i in range(shnum):
                name, _, _ = sect(i)
                if strtab[name:name + 12] == b".debug_line\0":
                    return True
    except (OSError, struct.error, ValueError):
        return False
    return False


def site_sources(path: str, addresses: list[int], timeout: float = TIMEOUT) -> tuple[dict[int, str], str | None]:
    """address -> "file:line" for the addresses DWARF knows, and a note when the lookup could not run."""
    if not addresses:
        return {}, None
    tool = shutil.which("addr2line") or shutil.which("llvm-addr2line")
    if tool is None:
        return {}, "source lines: the binary has DWARF but addr2line (binutils) is not installed"
    try:
        p = subprocess.run([tool, "-e", os.path.abspath(path), *[f"{a:#x}" for a in addresses]],
                           capture_output=True, text=True, errors="replace", timeout=timeout)
    except subprocess.TimeoutExpired:
        return {}, f"source lines: addr2line took more than {timeout:g} s"
    except OSError as e:
        return {}, f"source lines: addr2line failed: {e}"
    lines = p.stdout.splitlines()
    if p.returncode != 0 or len(lines) != len(addresses):
        return {}, "source lines: addr2line could not read the DWARF line table"
    out: dict[int, str] = {}
    for a, line in zip(addresses, lines):
        line = line.split(" (discriminator")[0].strip()
        file, _, num = line.rpartition(":")
        if not file or file.startswith("??") or not num.isdigit() or int(num) <= 0:
            continue
        file = os.path.normpath(file)
        if os.path.isabs(file):
            rel = os.path.relpath(file)
            file = rel if not rel.startswith("..") else file
        out[a] = f"{escape_controls(file)[:1024]}:{int(num)}"
    return out, None
