"""The objects a program runs with, found as glibc's loader finds them (elf/dl-load.c, dl-deps.c): the program, its
PT_INTERP (ld.so, analysed too: its own start-up makes syscalls in every process), then DT_NEEDED breadth first.

A needed name is looked up in this order: a name with a slash is a path; else DT_RPATH of the requesting object and
of the objects that loaded it up to the program (only when the requester has no DT_RUNPATH), LD_LIBRARY_PATH (not
known statically: left out, and said), the requester's DT_RUNPATH, /etc/ld.so.cache, the default directories. An
object already loaded under the same SONAME or file is not loaded again. `$ORIGIN` is the requester's directory;
`$LIB` and `$PLATFORM` take Debian's x86 values. Everything is resolved under `sysroot` (a container root or a
cross tree uses its own libraries and ld.so.cache, never the host's). A library that cannot be found is named in
the result, never silently skipped.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field

from ..program.libraries import LIB_DIRS, in_root
from . import ldcache

LIB_TOKEN = {64: "lib/x86_64-linux-gnu", 32: "lib/i386-linux-gnu"}
PLATFORM_TOKEN = {64: "x86_64", 32: "i686"}
MAX_OBJECTS = 512


@dataclass
class LoadedObject:
    path: str  # as found (under the sysroot)
    name: str  # how it was asked for: the program's path, PT_INTERP, or the DT_NEEDED name
    kind: str  # "program" | "interpreter" | "needed"
    needed_by: str | None  # the path of the object that asked for it
    lb: object  # the program model (program.model.LoadedBinary)


@dataclass
class Closure:
    objects: list[LoadedObject] = field(default_factory=list)  # load order: the symbol search scope
    missing: list[tuple[str, str]] = field(default_factory=list)  # (needed name, requester path)
    notes: list[str] = field(default_factory=list)


def expand(entry: str, origin: str, bits: int) -> str:
    """$ORIGIN / ${ORIGIN}, $LIB, $PLATFORM in one RPATH/RUNPATH entry."""
    for tok, val in (("ORIGIN", origin), ("LIB", LIB_TOKEN.get(bits, "lib")), ("PLATFORM", PLATFORM_TOKEN.get(bits, ""))):
        entry = entry.replace("${" + tok + "}", val).replace("$" + tok, val)
    return entry


def _origin(obj_path: str, sysroot: str) -> str:
    """$ORIGIN: the directory of the object as the process sees it (inside the sysroot)."""
    real = os.path.realpath(obj_path)
    root = os.path.realpath(sysroot)
    d = os.path.dirname(real)
    if root != "/" and (d == root or d.startswith(root + os.sep)):
        d = "/" + os.path.relpath(d, root)
    return d


def _usable(path: str, bits: int) -> bool:
    """A regular file that is an ELF of the requester's class (the loader skips a wrong-class library and goes on)."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(5)
    except OSError:
        return False
    return head[:4] == b"\x7fELF" and head[4] == (2 if bits == 64 else 1)


def find(name: str, requester: LoadedObject, chain: list[LoadedObject], sysroot: str, cache: dict,
         bits: int) -> str | None:
    """The file DT_NEEDED `name` of `requester` resolves to, or None."""
    if "/" in name:
        p = in_root(sysroot, expand(name, _origin(requester.path, sysroot), bits))
        return p if _usable(p, bits) else None
    dirs: list[str] = []
    if not requester.lb.runpath:
        for o in [requester, *reversed(chain)]:
            dirs += [expand(d, _origin(o.path, sysroot), bits) for d in o.lb.rpath]
    dirs += [expand(d, _origin(requester.path, sysroot), bits) for d in requester.lb.runpath]
    for d in dirs:
        if d:
            p = in_root(sysroot, os.path.join(d, name))
            if _usable(p, bits):
                return p
    hit = cache.get((name, bits))
    if hit:
        p = in_root(sysroot, hit)
        if _usable(p, bits):
            return p
    for d in LIB_DIRS[bits]:
        p = in_root(sysroot, os.path.join(d, name))
        if _usable(p, bits):
            return p
    return None


def closure(program, load, sysroot: str = "/", expired=lambda: False) -> Closure:
    """The load order of `program` (a LoadedBinary); `load(path)` gives the model of another object (and may raise
    an analyzer error for a broken one, which is then a note). `expired()` true: stop loading (the time budget)."""
    from ..errors import SysscanError

    out = Closure()
    bits = program.bits
    cache = ldcache.read(in_root(sysroot, "/etc/ld.so.cache"))
    top = LoadedObject(program.path, program.path, "program", None, program)
    out.objects.append(top)
    seen_files = {os.path.realpath(program.path)}
    seen_names = {n for n in (program.soname,) if n}
    queue: list[tuple[LoadedObject, list[LoadedObject]]] = [(top, [])]
    if program.interpreter and program.interpreter != "?":
        p = in_root(sysroot, program.interpreter)
        if _usable(p, bits):
            try:
                lb = load(p)
                ld = LoadedObject(p, program.interpreter, "interpreter", program.path, lb)
                seen_files.add(os.path.realpath(p))
                seen_names.add(os.path.basename(program.interpreter))
                if lb.soname:
                    seen_names.add(lb.soname)
                interp = ld
            except SysscanError as e:
                out.notes.append(f"{program.interpreter}: not analysed: {e.problem}")
                interp = None
        else:
            out.missing.append((program.interpreter, program.path))
            interp = None
    else:
        interp = None
    while queue:
        obj, chain = queue.pop(0)
        for name in obj.lb.needed:
            if name in seen_names:
                continue
            path = find(name, obj, chain, sysroot, cache, bits)
            if path is None:
                out.missing.append((name, obj.path))
                seen_names.add(name)
                continue
            real = os.path.realpath(path)
            seen_names.add(name)
            if real in seen_files:
                continue
            if len(out.objects) >= MAX_OBJECTS or expired():
                out.notes.append(f"more than {MAX_OBJECTS} objects: the rest were not loaded" if not expired() else
                                 "time budget exhausted while loading the libraries: the rest were not loaded")
                out.missing.append((name, obj.path))
                queue.clear()
                break
            try:
                lb = load(path)
            except SysscanError as e:
                out.notes.append(f"{name}: {path}: not analysed: {e.problem}")
                continue
            seen_files.add(real)
            if lb.soname:
                seen_names.add(lb.soname)
            new = LoadedObject(path, name, "needed", obj.path, lb)
            out.objects.append(new)
            queue.append((new, [*chain, obj]))
    if interp is not None:
        # ld.so is in every process; in the global scope it comes where libc's DT_NEEDED names it (glibc's
        # rtld adds itself if nothing asked for it): after the objects that were loaded before it.
        out.objects.append(interp)
    return out
