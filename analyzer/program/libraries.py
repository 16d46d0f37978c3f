"""Where a needed library is: the default directories of the loader, under a root (`/` for this machine, or a
container's root filesystem or a cross tree). The full loader search order (DT_RPATH/DT_RUNPATH, ld.so.cache) is
the program-surface stage's; this is the part every stage shares."""
from __future__ import annotations

import os

LIB_DIRS = {
    64: ("/lib/x86_64-linux-gnu", "/usr/lib/x86_64-linux-gnu", "/lib64", "/usr/lib64", "/lib", "/usr/lib"),
    32: ("/lib/i386-linux-gnu", "/usr/lib/i386-linux-gnu", "/lib32", "/usr/lib32", "/lib", "/usr/lib"),
}


def find_library(name: str, bits: int, sysroot: str = "/") -> str | None:
    """The file a DT_NEEDED `name` resolves to in the default directories under `sysroot`, or None."""
    if "/" in name:
        p = os.path.join(sysroot, name.lstrip("/")) if os.path.isabs(name) else name
        return p if os.path.isfile(p) else None
    for d in LIB_DIRS[bits]:
        p = os.path.join(sysroot, d.lstrip("/"), name)
        if os.path.isfile(p):
            return p
    return None
