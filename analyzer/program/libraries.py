"""Where a needed library is: the default directories of the loader, under a root (`/` for this machine, or a
container's root filesystem or a cross tree). The full loader search order (DT_RPATH/DT_RUNPATH, ld.so.cache) is
the program-surface stage's; this is the part every stage shares."""
from __future__ import annotations

import os

LIB_DIRS = {
    64: ("/lib/x86_64-linux-gnu", "/usr/lib/x86_64-linux-gnu", "/lib64", "/usr/lib64", "/lib", "/usr/lib"),
    32: ("/lib/i386-linux-gnu", "/usr/lib/i386-linux-gnu", "/lib32", "/usr/lib32", "/lib", "/usr/lib"),
}


MAX_LINKS = 40  # as the kernel's path walk (ELOOP)


def in_root(sysroot: str, path: str) -> str:
    """An absolute `path` as a process whose root is `sysroot` sees it, as a path on this machine. Every symbolic
    link on the way is followed inside the root: an absolute target starts again at the root and `..` stops there,
    as in a chroot. Without this a container's /lib64/ld-linux-x86-64.so.2 (an absolute link to
    /lib/x86_64-linux-gnu/ld-linux-x86-64.so.2 in Debian's images) would be the host's loader. A relative `path`
    is returned as it is; so is every path when the root is /."""
    if not os.path.isabs(path):
        return path
    if sysroot in ("", "/"):
        return path
    root = os.path.realpath(sysroot)
    todo = [p for p in path.split("/") if p and p != "."]
    done: list[str] = []
    links = 0
    while todo:
        part = todo.pop(0)
        if part == "..":
            if done:
                done.pop()
            continue
        try:
            target = os.readlink(os.path.join(root, *done, part))
        except OSError:  # not a link (or not there: the caller's open says so)
            done.append(part)
            continue
        links += 1
        if links > MAX_LINKS:
            return os.path.join(root, ".sysscan-too-many-links", *done, part)  # never a file: unusable, as ELOOP
        if target.startswith("/"):
            done = []
        todo = [p for p in target.split("/") if p and p != "."] + todo
    return os.path.join(root, *done)


def find_library(name: str, bits: int, sysroot: str = "/") -> str | None:
    """The file a DT_NEEDED `name` resolves to in the default directories under `sysroot`, or None."""
    if "/" in name:
        p = in_root(sysroot, name)
        return p if os.path.isfile(p) else None
    for d in LIB_DIRS[bits]:
        p = in_root(sysroot, os.path.join(d, name))
        if os.path.isfile(p):
            return p
    return None
