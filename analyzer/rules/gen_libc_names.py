"""Regenerate libc_functions.txt: the function names of the C libraries, used to tell libc code from application
code in a *static* binary (analyzer/rules/location.py).

    python -m analyzer.rules.gen_libc_names [LIBC.a ...]  > analyzer/rules/libc_functions.txt

Default archives: Debian 12's glibc (x86-64 and i386: libc6-dev, libc6-dev-i386) and musl (musl-dev). The list
holds every global function name that does not start with an underscore (names starting with `_` are reserved
for the implementation in C and are classified by that rule alone) plus the local (static) functions that contain
a raw syscall instruction in that build (glibc's `do_sym`, `clear_once_control` ...). Needs binutils (nm,
objdump); it is a maintainer tool, never run at analysis time.
"""
from __future__ import annotations

import os
import re
import subprocess
import sys

DEFAULT_ARCHIVES = (
    "/usr/lib/x86_64-linux-gnu/libc.a",
    "/usr/lib32/libc.a",
    "/usr/lib/x86_64-linux-musl/libc.a",
)
SITE_RE = re.compile(r"\t(syscall|sysenter|int +\$0x80) *$")
FUNC_RE = re.compile(r"^[0-9a-f]+ <([^>]+)>:$")
MEMBER_RE = re.compile(r"^(\S+):\s+file format ")


def names_from(archive: str) -> set[str]:
    out: set[str] = set()
    nm = subprocess.run(["nm", "--defined-only", archive], capture_output=True, text=True, check=True).stdout
    for line in nm.splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[1] in ("T", "W", "i") and not parts[2].startswith("_"):
            out.add(parts[2])
    # Functions holding a site, as (member, section, address): objdump labels each address with one name only
    # (musl's static_init_tls shows as its alias __init_tls), so every symbol there is taken from the symtab.
    dump = subprocess.run(["objdump", "-d", "-w", archive], capture_output=True, text=True, check=True).stdout
    holders: set[tuple[str, str, int]] = set()
    member = section = ""
    fn = None
    for line in dump.splitlines():
        if MEMBER_RE.match(line):
            member = MEMBER_RE.match(line).group(1)
        elif line.startswith("Disassembly of section "):
            section = line[len("Disassembly of section "):].rstrip(":")
        elif FUNC_RE.match(line):
            m = FUNC_RE.match(line)
            fn = (member, section, int(line.split()[0], 16))
        elif fn and SITE_RE.search(line):
            holders.add(fn)
    syms = subprocess.run(["objdump", "-t", "-w", archive], capture_output=True, text=True, check=True).stdout
    for line in syms.splitlines():
        if MEMBER_RE.match(line):
            member = MEMBER_RE.match(line).group(1)
            continue
        parts = [p for p in line.split() if p not in (".hidden", ".protected", ".internal")]
        if len(parts) >= 6 and parts[-4] != "*UND*" and "F" in parts[1:-3]:
            name, sec, value = parts[-1], parts[-3], int(parts[0], 16)
            if (member, sec, value) in holders and not name.startswith("_"):
                out.add(name)
    return out


def main(argv: list[str]) -> int:
    archives = argv or [a for a in DEFAULT_ARCHIVES if os.path.exists(a)]
    names: set[str] = set()
    for a in archives:
        names |= names_from(a)
    print("# Function names of glibc and musl (analyzer/rules/gen_libc_names.py); one per line.")
    print("# Sources: " + ", ".join(archives))
    for n in sorted(names):
        print(n)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
