"""Objects loaded after start: dlopen of a constant name, and the libraries glibc loads by itself (libcloads).

Each is found as the loader would find it (its search order, from the object that loads it), with what it needs;
its exports are roots, since what loaded it reaches them through dlsym (for glibc's own loads, only the names
glibc looks up). A library loaded already is the handle dlopen returns: the same roots. A load is followed only
once the function that makes it is reachable (libselinux's dlopen of libsepol is in policy loading, which `ls`
never reaches), so the caller walks, asks `follow`, and walks again while it adds objects or roots.
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
from .reach import Node, Reach, chunk_node
from .summary import LOADER_CALLS, LOOKUP_CALLS, ObjectSummary

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
        self.dlopen_seen: set[tuple[int, int]] = set()  # (object, call address): constant dlopens followed already
        self.lookups: set[str] = set()  # the constant names reached dlsym calls look up
        self.any_lookup = False  # a reached dlsym call whose name is not known: anything can be looked up
        self.plugins: dict[int, str] = {}  # object a constant dlopen loads (or finds loaded) -> why
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
        """Load `lib` as object i's dlopen at addr would, with what it needs. Its exports that `looks_up` accepts
        become roots (`why`): glibc's own loads look up fixed names; None: a program's dlopen, whose library is
        entered through the names its dlsym calls look up (`lookups`, anything when one is not known). Not found:
        an open end, or the note `missing` when not finding it is harmless (glibc skips it). A library loaded
        already (needed, or opened before) is the handle dlopen returns: what is looked up in it is a root too."""
        if lib in self.sonames:
            j = self._loaded(lib)
            if j is not None:
                self._enter(j, lib, why, looks_up)
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
        self._enter(j, lib, why, looks_up)
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

    def _enter(self, j: int, lib: str, why: str, looks_up: Callable[[str], bool] | None) -> None:
        if looks_up is None:  # a program's own dlopen: entered again as its dlsym calls are reached (follow)
            self.plugins.setdefault(j, f"exported by {lib}, {why}")
            self._roots(j, self._looked_up, lambda _n: self.plugins[j])
        else:
            self._roots(j, looks_up, lambda n: f"{n} in {lib}, looked up by {why}")

    def _looked_up(self, name: str) -> bool:
        return self.any_lookup or name in self.lookups

    def _roots(self, j: int, looks_up: Callable[[str], bool], why: Callable[[str], str]) -> None:
        """Object j's exports that `looks_up` accepts, functions and data (a table of function pointers dlsym
        hands out), as roots."""
        seen = {n for n, _w in self.extra}
        s = self.summaries[j]
        for n, node in [*[(n, (j, a)) for n, a in sorted(s.exports.items())],
                        *[(n, chunk_node(j, c)) for n, c in sorted(s.data_exports.items())]]:
            plain = n.split("@", 1)[0]
            if node not in seen and looks_up(plain):
                seen.add(node)
                self.extra.append((node, why(plain)))

    def _note_lookups(self, r: Reach) -> None:
        """The names reached dlsym/dlvsym calls look up (any name once one is not known or not read)."""
        for i, s in enumerate(self.summaries):
            for _addr, node, callee, name in s.loader_calls:
                if callee in LOOKUP_CALLS and (i, node) in r.parent:
                    if name is None:
                        self.any_lookup = True
                    else:
                        self.lookups.add(name)
            if not self.any_lookup and any((i, node) in r.parent
                                           for node, _c in unread_calls(s, self.objects[i].lb, LOOKUP_CALLS)):
                self.any_lookup = True

    def follow(self, r: Reach, label: Callable[[Node], str]) -> bool:
        """The loads made by the functions `r` reaches — dlopen of a constant name, and glibc's own (libcloads) —
        each followed once; True when objects or roots were added (walk again). A dlopen in code no path reaches
        loads nothing. `label` names a node in the paths of open ends."""
        n, roots = len(self.summaries), len(self.extra)
        self._note_lookups(r)
        for j in list(self.plugins):
            self._roots(j, self._looked_up, lambda _n, j=j: self.plugins[j])
        for i in range(n):
            s = self.summaries[i]
            for addr, node, callee, lib in s.loader_calls:
                if lib and callee in LOADER_CALLS and (i, node) in r.parent and (i, addr) not in self.dlopen_seen \
                        and self.opened < MAX_DLOPEN:
                    self.dlopen_seen.add((i, addr))
                    self.open(lib, i, addr, f"dlopen'ed at {addr:#x} in {short(self.objects[i].path)}")
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
        return len(self.summaries) > n or len(self.extra) > roots

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


def unread_calls(s: ObjectSummary, lb, callees: tuple[str, ...]) -> list[tuple[int, str]]:
    """(node, callee) where a node calls one of `callees` (imports) in a way whose name argument was not read: the
    address taken, or called through a GOT slot in a way not read (32-bit `call *slot(%ebx)`). PLT stubs are no
    call."""
    read = {n for _a, n, c, _l in s.loader_calls if c in callees}
    plt = [(x.start, x.end) for x in lb.exec_ranges if x.name.startswith(".plt")]
    out = []
    for node, used in sorted(s.calls_out.items()):
        callee = next((c for c in callees if c in used), None)
        if callee and node not in read and not any(a <= node < b for a, b in plt):
            out.append((node, callee))
    return out


def _calls(lb, start: int, targets: set[int]) -> bool:
    """Does the function at `start` call or jump to one of `targets` (a direct branch, decoded from its start)?"""
    f = lb.function_at(start)
    if f is None:
        return True  # no extent to decode: the graph's edge stands
    md = decoder(lb.bits)
    want = {hex(x) for x in targets}
    code = lb.memory.read(f.start, min(f.end - f.start, 1 << 16)) or b""
    return any(m in ("call", "jmp") and op in want for _a, _s, m, op in md.disasm_lite(code, f.start))
