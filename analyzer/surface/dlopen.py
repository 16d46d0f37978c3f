"""Objects loaded after start: dlopen of a constant name, and the libraries glibc loads by itself (libcloads).

Each is found as the loader would find it (its search order, from the object that loads it), with what it needs;
its exports are roots, since what loaded it reaches them through dlsym (for glibc's own loads, only the names
glibc looks up). A library loaded already is the handle dlopen returns: the same roots. glibc's own loads are
followed only once the function that makes them is reachable, so the caller walks, asks `follow_libc`, and walks
again while it adds objects.
"""
from __future__ import annotations

import os
from collections.abc import Callable

from .. import model
from ..budget import BudgetExceeded
from ..elf.decode import decoder
from ..program.libraries import in_root
from . import libcloads
from .closure import LoadedObject, find
from .gates import glibc, named
from .ldcache import read
from .reach import Node, Reach
from .summary import ObjectSummary

MAX_DLOPEN = 64


def short(path: str) -> str:
    return path.rsplit("/", 1)[-1]


class Opener:
    """Adds loaded objects to `summaries`/`objects` (load order) and their exports to `extra` (roots)."""

    def __init__(self, summaries: list[ObjectSummary], objects: list[LoadedObject], extra: list[tuple[Node, str]],
                 out: model.Surface, sysroot: str, summarize: Callable, load: Callable):
        self.summaries, self.objects, self.extra, self.out = summaries, objects, extra, out
        self.sysroot, self.summarize, self.load = sysroot, summarize, load
        self.cache = read(in_root(sysroot, "/etc/ld.so.cache"))
        self.done = {os.path.realpath(o.path) for o in objects}
        self.sonames = {o.lb.soname for o in objects if o.lb.soname} | {os.path.basename(o.name) for o in objects}
        self.opened = 0
        self.libc_seen: set[Node] = set()  # glibc functions whose loads are followed already
        self._dl: dict[int, set[int]] = {}  # object -> the starts of glibc's internal dlopen in it (none: not glibc)

    def _add(self, path: str, name: str, kind: str, requester: LoadedObject, addr: int) -> int | None:
        try:
            lb = self.load(path)
            s = self.summarize(lb)
        except BudgetExceeded:
            raise
        except Exception as e:  # noqa: BLE001 - a library we cannot analyse is said, not fatal
            self.out.open_ends.append(model.OpenEnd("not-analysed", short(path), f"loaded by dlopen at {addr:#x} "
                                                    f"but not analysed: {type(e).__name__}: {str(e)[:120]}", addr))
            return None
        self.done.add(os.path.realpath(path))
        self.sonames.update(x for x in (lb.soname, name) if x)
        self.objects.append(LoadedObject(path, name, kind, requester.path, lb))
        self.summaries.append(s)
        return len(self.summaries) - 1

    def open(self, lib: str, i: int, addr: int, why: str, missing: str | None = None,
             looks_up: Callable[[str], bool] | None = None) -> bool:
        """Load `lib` as object i's dlopen at addr would, with what it needs; its exports become roots (`why`),
        or only those `looks_up` accepts when the loader asks dlsym for known names (glibc's own loads). Not found:
        an open end, or the note `missing` when not finding it is harmless (glibc skips it). A library loaded
        already (needed, or opened before) is the handle dlopen returns: what is looked up in it is a root too."""
        if lib in self.sonames:
            j = self._loaded(lib)
            if j is not None:
                self._roots(j, lib, why, looks_up)
            return False
        if self.opened >= MAX_DLOPEN:
            return False
        requester = self.objects[i]
        path = find(lib, requester, [], self.sysroot, self.cache, requester.lb.bits)
        if path is None:
            if missing is not None:
                self.out.notes.append(missing)
                self.sonames.add(lib)
            else:  # one open end per call that asks for it
                self.out.open_ends.append(model.OpenEnd("missing-library", short(requester.path), f"dlopen(\"{lib}\") "
                                                        f"at {addr:#x}: not found, its syscalls are missing", addr))
            return False
        if os.path.realpath(path) in self.done:
            return False
        self.opened += 1
        j = self._add(path, lib, "dlopen", requester, addr)
        if j is None:
            return False
        self._roots(j, lib, why, looks_up)
        queue = [j]
        while queue:  # what the dlopen'ed library needs, breadth first
            k = queue.pop(0)
            for name in self.objects[k].lb.needed:
                if name in self.sonames:
                    continue
                p = find(name, self.objects[k], [], self.sysroot, self.cache, self.objects[k].lb.bits)
                if p is None:
                    self.sonames.add(name)
                    self.out.open_ends.append(model.OpenEnd("missing-library", short(self.objects[k].path),
                                                            f"{name} (needed by {self.objects[k].path}, dlopen'ed) "
                                                            "was not found: its syscalls are missing"))
                    continue
                if os.path.realpath(p) in self.done:
                    continue
                n = self._add(p, name, "needed", self.objects[k], addr)
                if n is not None:
                    queue.append(n)
        return True

    def _loaded(self, lib: str) -> int | None:
        """The object a dlopen of `lib` finds loaded already (by soname or the name it was asked for)."""
        for j, o in enumerate(self.objects):
            if lib in (o.lb.soname, os.path.basename(o.name)):
                return j
        return None

    def _roots(self, j: int, lib: str, why: str, looks_up: Callable[[str], bool] | None) -> None:
        seen = {n for n, _w in self.extra}
        for n, a in sorted(self.summaries[j].exports.items()):
            if (j, a) not in seen and (looks_up is None or looks_up(n.split("@", 1)[0])):
                seen.add((j, a))
                self.extra.append(((j, a), f"exported by {lib}, {why}" if looks_up is None else
                                   f"{n.split('@', 1)[0]} in {lib}, looked up by {why}"))

    def follow_constants(self, start: int = 0) -> None:
        """dlopen of a constant name in the objects from `start` on, and in what those loads bring in."""
        todo = [(i, addr, lib) for i in range(start, len(self.summaries))
                for addr, _n, _c, lib in self.summaries[i].loader_calls if lib]
        while todo and self.opened < MAX_DLOPEN:
            i, addr, lib = todo.pop(0)
            n = len(self.summaries)
            if self.open(lib, i, addr, f"dlopen'ed at {addr:#x} in {short(self.objects[i].path)}"):
                todo += [(k, a2, l2) for k in range(n, len(self.summaries))
                         for a2, _n, _c, l2 in self.summaries[k].loader_calls if l2]

    def follow_libc(self, r: Reach, label: Callable[[Node], str]) -> bool:
        """glibc's own loads (libcloads) made by the functions `r` reaches; True when objects were added (walk
        again). `label` names a node in the paths of open ends."""
        n = len(self.summaries)
        for i in range(n):
            s = self.summaries[i]
            if i not in self._dl:  # once per object: objects only ever join the end of the list
                by_name = named(s.names, s.exports)
                dl = {a for x in libcloads.DLOPEN for a in by_name.get(x, ())}
                self._dl[i] = dl if dl and glibc(by_name) else set()
            dl = self._dl[i]
            if not dl:
                continue
            for a in sorted(s.edges):
                if (i, a) not in r.parent or (i, a) in self.libc_seen or not dl.intersection(s.edges[a]):
                    continue
                self.libc_seen.add((i, a))
                self._libc_load(i, a, s.names.get(a), r.path((i, a), label))
        if len(self.summaries) > n:
            self.follow_constants(n)
        return len(self.summaries) > n

    def _libc_load(self, i: int, a: int, fn: str | None, path: list[str]) -> None:
        obj = short(self.objects[i].path)
        load = libcloads.BY_FUNCTION.get(fn or "")
        if load is None:
            if not _calls(self.objects[i].lb, a, self._dl[i]):
                return  # an edge of the graph (fallen into past a jump, a constant that looks like it), no call
            self.out.open_ends.append(model.OpenEnd("dlopen", obj, f"{fn or f'sub_{a:x}'} calls glibc's internal "
                                                    "dlopen: what it loads is not in the surface", a, fn,
                                                    path))
        elif load.kind == "constant":
            for lib in load.names:
                self.open(lib, i, a, f"{load.what} ({fn} in {obj})",
                          missing=f"{lib} is not installed: when {fn} loads it ({load.what}), the load "
                          "fails and none of its code runs", looks_up=load.symbols.__contains__)
        elif load.kind == "nss":
            services, source = libcloads.nss_services(self.sysroot)
            for svc, dbs in sorted(services.items()):
                lib = libcloads.nss_soname(svc)
                self.open(lib, i, a, f"{load.what} ({svc}: {', '.join(dbs)} in {source})",
                          missing=f"{source} names the NSS service {svc} ({', '.join(dbs)}): {lib} is not "
                          "installed, so glibc skips it", looks_up=libcloads.nss_lookups(svc))
        elif load.kind == "gconv":
            d, count = libcloads.gconv_modules(self.sysroot, self.objects[i].lb.memory)
            where = f"{count} modules in {d}" if d else "the gconv directory is not known"
            self.out.open_ends.append(model.OpenEnd("dlopen", obj, f"{load.what}: which one depends on "
                                                    f"the character sets asked for at run time ({where}); "
                                                    "what they load is not in the surface", a, fn,
                                                    path))


def _calls(lb, start: int, targets: set[int]) -> bool:
    """Does the function at `start` call or jump to one of `targets` (a direct branch, decoded from its start)?"""
    f = lb.function_at(start)
    if f is None:
        return True  # no extent to decode: the graph's edge stands
    md = decoder(lb.bits)
    want = {hex(x) for x in targets}
    code = lb.memory.read(f.start, min(f.end - f.start, 1 << 16)) or b""
    return any(m in ("call", "jmp") and op in want for _a, _s, m, op in md.disasm_lite(code, f.start))
