"""The surface stage: closure → per-object summaries (cached) → reachability → the report's `surface` section.

The program's own sites and values come from the pipeline (its report and its value engine); every other object is
analysed here by the same site and value stages, once per content hash.
"""
from __future__ import annotations

import contextlib
import dataclasses
import os
from dataclasses import dataclass, field
from types import SimpleNamespace

from .. import model
from ..budget import NEVER, BudgetExceeded, Deadline
from ..elf.debugfile import DEFAULT_DIRS as DEFAULT_DEBUG_DIRS
from ..program.libraries import in_root
from ..syscalls import load_table
from ..syscalls.abi import name_syscall, native_abi
from .closure import LoadedObject, closure
from .dlopen import Opener, unread_calls
from ..syscalls.filters import FILTERED_ARGS
from .gates import GATES, glibc, named
from .reach import Node, walk
from .summary import (ARG_CALLEES, ARG_REGS, KIND, LOADER_CALLS, STRING_ARG, STRING_ARG32, ObjectSummary,
                      summarize_object)

EXEC_SYSCALLS = {("x86_64", 59), ("x86_64", 322), ("i386", 11), ("i386", 358)}  # execve, execveat
MAX_SITES_PER_OBJECT = 20000


@dataclass
class Facts:
    """What the value engine of one object knows that its summary needs: exported wrappers' number registers and
    the constant names passed to dlopen and dlsym."""

    params: dict[int, str] = field(default_factory=dict)
    loader_args: dict[int, tuple[str, str | None]] = field(default_factory=dict)  # call -> (callee, name or None)
    arg_params: dict[int, dict[int, str]] = field(default_factory=dict)  # site -> {arg index: entry register}
    arg_calls: dict[int, dict[str, list[int] | None]] = field(default_factory=dict)  # call -> {register: values}
    local_arg_calls: dict[int, tuple[int, dict[str, list[int] | None]]] = field(default_factory=dict)
    """Call inside the object -> (callee, {register: values}) for callees that pass a parameter on."""


def object_facts(lb, engine, sites: list[model.Site]) -> Facts:
    """Computed with the object's value engine (the pipeline's, for the program)."""
    f = Facts()
    with contextlib.suppress(BudgetExceeded, Exception):
        f.params = _wrapper_params(lb, engine, sites)
    with contextlib.suppress(BudgetExceeded, Exception):
        f.loader_args = _loader_args(lb, engine)
    with contextlib.suppress(BudgetExceeded, Exception):
        f.arg_params = _arg_params(lb, engine, sites)
    with contextlib.suppress(BudgetExceeded, Exception):
        f.arg_calls = _arg_calls(lb, engine)
    with contextlib.suppress(BudgetExceeded, Exception):
        f.local_arg_calls = _local_arg_calls(lb, engine, sites, f.arg_params)
    return f


def _arg_params(lb, engine, sites) -> dict[int, dict[int, str]]:
    """Site -> {index: register} for a FILTERED_ARGS argument not known at the site that is exactly an entry
    register of its function (glibc's socket(): the family is rdi): known then at the function's callers."""
    from ..values.atoms import EntryReg
    from ..values.local import AnalysisBound

    out: dict[int, dict[int, str]] = {}
    for site in sites:
        wanted = {FILTERED_ARGS[r.name] for r in site.syscalls if r.name in FILTERED_ARGS}
        fn = lb.function_at(site.address) if wanted else None
        if fn is None or fn.start != site.function_address:
            continue
        try:
            state = engine.flow(fn.start, fn.end, fn.name, site.address).state_before(site.address)
        except AnalysisBound:
            continue
        for idx in sorted(wanted):
            arg = site.args[idx] if idx < len(site.args) else None
            if state is None or arg is None or arg.status == "resolved":
                continue
            atoms = list(state.get(arg.register))
            if len(atoms) == 1 and isinstance(atoms[0], EntryReg):
                out.setdefault(site.address, {})[idx] = atoms[0].reg
    return out


def _local_arg_calls(lb, engine, sites, arg_params) -> dict[int, tuple[int, dict[str, list[int] | None]]]:
    """Direct call of a function that passes its parameter to a filterable argument -> (the function, the values
    of that register at the call, None when not all known)."""
    wanted: dict[int, set[str]] = {}
    for site in sites:
        if site.address in arg_params:
            wanted.setdefault(site.function_address, set()).update(arg_params[site.address].values())
    return _registers_at_calls(lb, engine, wanted)


def _arg_calls(lb, engine) -> dict[int, dict[str, list[int] | None]]:
    """Call of an ARG_CALLEES import -> the values of the argument registers there (None: not all known)."""
    from ..program.calls import import_stubs

    stubs = {a: set(ARG_REGS) for a, n in import_stubs(lb).items() if n in ARG_CALLEES}
    return {call: regs for call, (_stub, regs) in _registers_at_calls(lb, engine, stubs).items()}


def _registers_at_calls(lb, engine, targets: dict[int, set[str]]) -> dict[int, tuple[int, dict[str, list[int] | None]]]:
    """Every confirmed direct call of each target (a function, a PLT stub) -> (the target, {register: its constant
    values there, followed up to 3 callers; None when not all known}). 64-bit code only."""
    from ..values.atoms import EntryReg
    from ..values.interproc import value_at_call
    from ..values.wrappers import Interproc

    if lb.bits != 64 or not targets:
        return {}
    if engine.interproc is None:
        engine.interproc = Interproc(lb, engine)
    ip = engine.interproc
    mask = (1 << lb.bits) - 1
    out: dict[int, tuple[int, dict[str, list[int] | None]]] = {}
    for target, wanted in sorted(targets.items()):
        for cs in ip.index.callers(target):
            regs: dict[str, list[int] | None] = {}
            for reg in sorted(wanted):
                v = ip.resolve_value(cs.function_start, cs.function, value_at_call(cs, EntryReg(reg), lb.bits), mask,
                                     3)
                regs[reg] = sorted(v.constants) if v.status == "resolved" and v.constants else None
            out[cs.address] = (target, regs)
    return out


def _wrapper_params(lb, engine, sites) -> dict[int, str]:
    """Exported function start -> the register it takes a syscall number in (glibc's syscall(): rdi)."""
    from ..values.atoms import EntryReg
    from ..values.local import AnalysisBound

    starts = set(lb.exports.values())
    out: dict[int, str] = {}
    for site in sites:
        if site.number.status == "resolved":
            continue
        fn = lb.function_at(site.address)
        if fn is None or fn.start not in starts or fn.start in out:
            continue
        try:
            state = engine.flow(fn.start, fn.end, fn.name, site.address).state_before(site.address)
        except AnalysisBound:
            continue
        if state is None:
            continue
        regs = [a.reg for a in state.get(site.number.register) if isinstance(a, EntryReg)]
        if regs:
            out[fn.start] = regs[0]
    return out


def _loader_args(lb, engine) -> dict[int, tuple[str, str | None]]:
    """dlopen/dlmopen/dlsym/dlvsym call (through its PLT stub or its GOT slot) -> (callee, the library or symbol
    name passed when it is one constant string, else None)."""
    from ..values.atoms import EntryReg, EntryStack
    from ..values.interproc import value_at_call
    from ..values.wrappers import Interproc, import_calls, import_targets

    targets = stubs, direct = import_targets(lb)
    if not ({*stubs.values(), *(n for _a, n in direct)} & STRING_ARG.keys()):
        return {}
    if engine.interproc is None:
        engine.interproc = Interproc(lb, engine)
    ip = engine.interproc
    mask = (1 << lb.bits) - 1
    out: dict[int, tuple[str, str | None]] = {}
    for cs, callee in sorted(import_calls(lb, ip, set(STRING_ARG), targets), key=lambda c: c[0].address):
        arg = EntryReg(STRING_ARG[callee]) if lb.bits == 64 else EntryStack(STRING_ARG32[callee])
        v = value_at_call(cs, arg, lb.bits)
        s = ip.resolve_value(cs.function_start, cs.function, v, mask, 3)
        names = [lb.memory.read_cstring(c) for c in s.constants]
        out[cs.address] = (callee, names[0] if s.status == "resolved" and len(names) == 1 and names[0] else None)
    return out


def analyse_object(lb, deadline: Deadline) -> tuple[list[model.Site], list[model.WrapperCall], Facts, list[str]]:
    """A library's sites, values and facts, by the stages a scan runs (sites, values; no kernel, no rules)."""
    from ..sites import find_sites
    from ..values.engine import ValueEngine
    from ..values.report import build_site_safely
    from ..values.wrappers import library_wrapper_calls

    incomplete: list[str] = []
    raws, _rejected = find_sites(lb, deadline=deadline, incomplete=incomplete, max_sites=MAX_SITES_PER_OBJECT)
    with contextlib.closing(ValueEngine(lb, deadline)) as engine:
        engine.expect(raws)
        sites = [build_site_safely(lb, r, engine, incomplete) for r in raws]
        calls = []
        if lb.needed:
            with contextlib.suppress(Exception):
                calls = library_wrapper_calls(lb, engine, incomplete)
        facts = object_facts(lb, engine, sites)
    return sites, calls, facts, incomplete


_MEMO: dict[str, ObjectSummary] = {}
"""Summaries computed in this process, by content hash: a worker scanning many programs (or a run with the disk
cache off) summarises libc.so.6 once, not once per program. Bounded by MEMO_ENTRIES."""
MEMO_ENTRIES = 64


def object_summary(lb, deadline: Deadline = NEVER, *, report=None, facts: Facts | None = None,
                   use_cache: bool = True) -> ObjectSummary:
    """The object's summary: from this process's memo or the disk cache (by content hash), else computed."""
    from ..cache import derived_get, derived_put

    if report is None and lb.key in _MEMO:
        s = _MEMO[lb.key]
        return s if s.path == lb.path else dataclasses.replace(s, path=lb.path)
    s = _object_summary(lb, deadline, report, facts, use_cache, derived_get, derived_put)
    if report is None and not any("time budget" in n for n in s.notes):
        if len(_MEMO) >= MEMO_ENTRIES:
            _MEMO.pop(next(iter(_MEMO)))
        _MEMO[lb.key] = s
    return s


def _object_summary(lb, deadline, report, facts, use_cache, derived_get, derived_put) -> ObjectSummary:
    if use_cache:
        doc = derived_get(KIND, lb.key)
        if doc is not None:
            with contextlib.suppress(ValueError, KeyError, TypeError):
                s = ObjectSummary.from_doc(doc)
                s.path = lb.path
                return s
    if report is None:
        sites, calls, facts, notes = analyse_object(lb, deadline)
        report = SimpleNamespace(sites=sites, wrapper_calls=calls)
    else:
        notes = []
    f = facts or Facts()
    s = summarize_object(lb, report, f.params, f.loader_args, f.arg_params, f.arg_calls, f.local_arg_calls)
    s.notes = sorted(set(s.notes) | {n if "time budget" not in n else "time budget exhausted" for n in notes})
    if use_cache and not any("time budget" in n for n in notes):
        derived_put(KIND, lb.key, s.to_doc())
    return s


def build_surface(lb, report: model.Report, facts: Facts, *, sysroot: str = "/", deadline: Deadline = NEVER,
                  use_cache: bool = True, debug_dirs: tuple[str, ...] = DEFAULT_DEBUG_DIRS) -> model.Surface:
    """The program's surface (model.Surface). A library's debug file is looked for in the root's debug directory
    first, then in `debug_dirs` (a build-id names one build, wherever its debug file is)."""
    from ..program.load import load

    if debug_dirs and sysroot != "/":
        debug_dirs = (in_root(sysroot, "/usr/lib/debug"), *debug_dirs)

    def load_obj(path: str):
        return load(path, None, debug_dirs)

    cl = closure(lb, load_obj, sysroot, deadline.expired)
    out = model.Surface(notes=list(cl.notes))
    summaries: list[ObjectSummary] = []
    objects: list[LoadedObject] = []
    for obj in cl.objects:
        if obj.kind != "program" and deadline.expired():
            out.open_ends.append(model.OpenEnd("not-analysed", _name(obj.path), "not analysed: the time budget ran "
                                               "out first (its syscalls are missing)"))
            continue
        try:
            if obj.kind == "program":
                s = object_summary(obj.lb, deadline, report=report, facts=facts, use_cache=use_cache)
            else:
                s = object_summary(obj.lb, deadline, use_cache=use_cache)
        except BudgetExceeded:
            raise
        except Exception as e:  # noqa: BLE001 - one library we cannot analyse is said, not fatal
            out.open_ends.append(model.OpenEnd("not-analysed", _name(obj.path), f"not analysed: "
                                               f"{type(e).__name__}: {str(e)[:160]} (its syscalls are missing)"))
            continue
        summaries.append(s)
        objects.append(obj)
    extra: list[tuple[Node, str]] = []
    if lb.elf_type == "shared-object" and summaries and objects[0].kind == "program":
        # a library analysed on its own: whatever loads it may call any of its exports
        extra += [((0, a), "exported") for _n, a in sorted(summaries[0].exports.items())]
    opener = Opener(summaries, objects, extra, out, sysroot,
                    lambda x: object_summary(x, deadline, use_cache=use_cache), load_obj)
    for name, requester in cl.missing:
        out.open_ends.append(model.OpenEnd("missing-library", _name(requester),
                                           f"{name} (needed by {requester}) was not found: its syscalls are missing"))
    prog = objects[0].lb if objects and objects[0].kind == "program" else None
    entered = {i for i, o in enumerate(objects) if o.kind in ("program", "interpreter")}
    opened = frozenset(g.name for g in GATES if g.program and prog is not None and prog.soname
                       and prog.soname.startswith(g.program))
    names = [_name(o.path) for o in objects]

    def label(n: Node) -> str:
        i, a = n
        if a < 0:
            return f"data at {~a:#x} ({names[i]})"
        return f"{summaries[i].names.get(a) or f'sub_{a:x}'} ({names[i]})"

    while True:  # a load is followed once what makes it is reached: then walk again
        r = walk(summaries, extra, entered=entered, opened=opened)
        if not opener.follow(r, label):
            break
        names[:] = [_name(o.path) for o in objects]
    held_sites = _held_sites(r, summaries)  # (object, node) -> {syscall name: gate name}
    kept_out: dict[str, set[str]] = {}  # gate name -> the syscalls of sites it held
    found: dict[tuple[str, int], dict] = {}

    def add(abi: str, nr: int, obj: int, node: Node | None, last: str) -> None:
        key = (abi, nr)
        e = found.get(key)
        if e is None:
            via = [n for n in (r.nodes(node) if node else []) if n[0] == 0 and n[1] >= 0]
            e = found[key] = {"objects": set(), "sites": 0, "path": (r.path(node, label) if node else []) + [last],
                              "via": via[-1][1] if via else None,
                              "via_function": summaries[0].names.get(via[-1][1]) if via else None}
        e["objects"].add(names[obj])
        e["sites"] += 1

    argv: dict[tuple[str, int], dict] = {}  # (abi, nr) -> {"values": set, "unknown": reason or None}

    def note_arg(abi: str, nr: int, known: set[int] | None, reason: str) -> None:
        name = name_syscall(abi, nr).name
        if name not in FILTERED_ARGS:
            return
        e = argv.setdefault((abi, nr), {"values": set(), "unknown": None})
        if known is None:
            e["unknown"] = e["unknown"] or reason
        else:
            e["values"] |= known

    called_wrappers = {w.callee for i, s in enumerate(summaries) for w in s.wrapper_calls if (i, w.node) in r.parent}
    for i, s in enumerate(summaries):
        reached = [a for a in s.names if (i, a) in r.parent]
        o = objects[i]
        out.objects.append(model.SurfaceObject(
            path=o.path, name=o.name, kind=o.kind, sha256=s.sha256, needed_by=o.needed_by, functions=len(s.names),
            reachable_functions=len(reached), sites=len(s.sites),
            reachable_sites=sum(1 for x in s.sites if (i, x.node) in r.parent), build_id=o.lb.build_id,
            debug_file=o.lb.debug_file))
        for site in s.sites:
            node = (i, site.node)
            if node not in r.parent:
                continue
            where = f"{site.instruction} at {site.address:#x} in {names[i]}"
            held = held_sites.get(node, {})
            for nr in site.numbers:
                if _nm(site.abi, nr) in held:
                    kept_out.setdefault(held[_nm(site.abi, nr)], set()).add(
                        f"{_nm(site.abi, nr)} in {s.names.get(site.node)}")
                    continue
                add(site.abi, nr, i, node, f"syscall {nr} {_nm(site.abi, nr)}: {where}")
                idx = FILTERED_ARGS.get(_nm(site.abi, nr))
                if idx is not None:
                    note_arg(site.abi, nr, *_site_arg(site, idx, i, summaries, r, where))
            if site.status != "resolved":
                if (site.param and s.names.get(site.node) in called_wrappers
                        and not _reached_from_elsewhere(r, node, summaries)):
                    pass  # a wrapper reached by calls whose numbers are known: they are counted at those calls
                else:
                    detail = ("number taken from " + site.param + " of an exported wrapper that is reached "
                              "indirectly: any syscall" if site.param else
                              "number not fully known: " + "; ".join(site.reasons[:2]))
                    out.open_ends.append(model.OpenEnd("unknown-number", names[i], detail, site.address,
                                                       s.names.get(site.node), r.path(node, label)))
        for w in s.wrapper_calls:
            node = (i, w.node)
            if node not in r.parent:
                continue
            where = f"{w.callee}() called at {w.address:#x} in {names[i]}"
            wabi = native_abi(s.bits).name
            for nr in w.numbers:
                add(wabi, nr, i, node, f"syscall {nr} {_nm(wabi, nr)}: {where}")
                note_arg(wabi, nr, None, f"made through {where}: its arguments are not read")
            if w.status != "resolved":
                out.open_ends.append(model.OpenEnd("unknown-number", names[i], f"{w.callee}() with a number not "
                                                   "fully known: " + "; ".join(w.reasons[:2]), w.address,
                                                   s.names.get(w.node), r.path(node, label)))
        for addr, node_a, callee, lib in s.loader_calls:
            node = (i, node_a)
            if node in r.parent and lib is None and callee in LOADER_CALLS:
                out.open_ends.append(model.OpenEnd("dlopen", names[i], f"{callee}() of a name not known statically: "
                                                   "what it loads is not in the surface", addr,
                                                   s.names.get(node_a), r.path(node, label)))
        for node_a, callee in unread_calls(s, objects[i].lb, LOADER_CALLS):  # its name argument not read: said too
            if (i, node_a) in r.parent:
                why = "called through its GOT slot or its address taken: its argument is not read"
                out.open_ends.append(model.OpenEnd("dlopen", names[i], f"{callee}() ({why}): what it loads is not in "
                                                   "the surface", node_a, s.names.get(node_a),
                                                   r.path((i, node_a), label)))
        if any((i, a) in r.parent for a in s.names):
            abi = "x86_64" if s.bits == 64 else "i386"
            for fn, call in sorted(s.vdso.items()):
                via = _vdso_caller(fn, summaries, r)
                entry = load_table(abi).by_name(call)
                if via is None or entry is None:
                    continue
                add(abi, entry.nr, i, via if via != (-1, -1) else None,
                    f"syscall {entry.nr} {call}: the vDSO's {fn} falls back to it ({names[i]} looks {fn} up by "
                    "name)")
    for (abi, nr), e in sorted(found.items()):
        ref = name_syscall(abi, nr)
        path = e["path"]
        out.syscalls.append(model.SurfaceSyscall(abi=ref.abi, nr=nr, name=ref.name, objects=sorted(e["objects"]),
                                                 sites=e["sites"], path=path, via=e["via"],
                                                 via_function=e["via_function"],
                                                 args=_surface_args(ref, argv.get((abi, nr)))))
        if (abi, nr) in EXEC_SYSCALLS:
            out.open_ends.append(model.OpenEnd("execve", ", ".join(sorted(e["objects"])), f"{ref.name} runs another "
                                               "program: its syscalls are its own, not in this surface",
                                               path=path))
    bare = [f"{_name(o.path)} (build-id {o.lb.build_id})" for o in objects
            if o.lb.stripped and not o.lb.debug_file and o.lb.build_id and debug_dirs]
    if bare:
        out.notes.append(f"stripped, with no debug file in {', '.join(debug_dirs)}: {', '.join(bare)}; their data "
                         "objects' extents are guessed from the code, which makes the surface looser (Debian: the "
                         "-dbg or -dbgsym packages)")
    for name in sorted(set(r.held) | set(kept_out)):
        gate = r.held[name][0] if name in r.held else r.closed[name]
        what = sorted(r.held.get(name, (None, []))[1]) + [f"syscall {x}" for x in sorted(kept_out.get(name, ()))]
        out.notes.append(f"{gate.name}: left out {', '.join(what)}: {gate.why}")
    for name, users in sorted(r.unbound.items()):
        out.notes.append(f"{name}: imported by {', '.join(users)} and defined by no loaded object")
    out.roots = sum(1 for n in r.parent if r.parent[n] is None)
    out.reachable_functions = sum(1 for n in r.parent if n[1] >= 0)
    out.open_ends.sort(key=lambda o: (o.kind, o.object, o.address or 0, o.detail))
    out.notes = sorted(set(out.notes) | {f"{_name(o.path)}: {n}" for o, s in zip(objects, summaries)
                                         for n in s.notes[:5]})
    return out


def _held_sites(r, summaries: list[ObjectSummary]) -> dict[Node, dict[str, str]]:
    """The sites the closed gates hold: (object, function node) -> {syscall name: the gate's name}."""
    out: dict[Node, dict[str, str]] = {}
    holding = [g for g in r.closed.values() if g.sites]
    for i, s in enumerate(summaries if holding else ()):
        by_name = named(s.names, s.exports)
        is_glibc = glibc(by_name)
        makes: dict[int, set[str]] = {}
        for site in s.sites:
            makes.setdefault(site.node, set()).update(_nm(site.abi, nr) for nr in site.numbers)
        for g in holding:
            if not (g.anywhere or is_glibc):
                continue
            for fn, call in g.sites:
                for a in by_name.get(fn, ()):
                    if g.beside is None or g.beside in makes.get(a, ()):
                        out.setdefault((i, a), {})[call] = g.name
    return out


def _surface_args(ref: model.SyscallRef, e: dict | None) -> list[model.SurfaceArg]:
    if e is None or ref.name not in FILTERED_ARGS:
        return []
    idx = FILTERED_ARGS[ref.name]
    param = ref.params[idx].split()[-1].lstrip("*") if idx < len(ref.params) else f"arg{idx}"
    if e["unknown"] is not None or not e["values"]:
        return [model.SurfaceArg(idx, param, [], "unresolved", e["unknown"] or "no value seen")]
    return [model.SurfaceArg(idx, param, sorted(e["values"]), "resolved", "")]


def _site_arg(site, idx: int, i: int, summaries, r, where: str) -> tuple[set[int] | None, str]:
    """The values of argument `idx` at a reachable site: its own when known; else, when it is its exported
    function's entry register and that function is entered only by calls whose registers were read, theirs."""
    entry = next((a for a in site.args if a[0] == idx), None)
    if entry is None:
        return None, f"not recorded at {where}"
    _idx, values, reg = entry
    if values is not None:
        return set(values), ""
    if reg is None:
        return None, f"not known at {where}"
    return _values_at_calls(i, site.node, reg, summaries, r, where)


def _values_at_calls(j: int, w: int, reg: str, summaries, r, where: str) -> tuple[set[int] | None, str]:
    """Every way into function (j, w) is a read call of one of its exported names: the union of `reg` there."""
    aliases = {n for n, a in summaries[j].exports.items() if a == w}
    fn = summaries[j].names.get(w) or f"sub_{w:x}"
    node = (j, w)
    if r.parent.get(node) is None:
        return None, f"{fn} is an entry point (or its address is stored where the loader calls it), {where}"
    if any(w in ts and (j, ~c) in r.parent for c, ts in summaries[j].chunk_ptrs.items()):
        return None, f"{fn}'s address is stored in data, {where}"
    # every reached place that enters the function, by address (a summary read from the cache has its dicts in
    # another order than a fresh one): its recorded calls of it (None: none was read, a step that fails as it is)
    # and what to say when they do not give `reg`
    entries: list[tuple[list | None, str]] = []
    inside = _calls_by_node(summaries[j].arg_calls, {f"@{w:x}"})
    entries += [(inside.get(src), f"{fn} is entered from {summaries[j].names.get(src) or hex(src)} other than by "
                                  f"calls with {reg} known, {where}")
                for src, ts in sorted(summaries[j].edges.items()) if w in ts and (j, src) in r.parent]
    for i, s in enumerate(summaries):
        if not aliases:
            break
        if any({"dlsym", "dlvsym"} & set(names) and (i, src) in r.parent for src, names in s.calls_out.items()):
            entries.append((None, f"{_name(s.path)} looks functions up by name (dlsym): {fn} may be called through "
                                  f"the pointer, {where}"))
            break
        if any(set(names) & aliases for c, names in s.chunk_imports.items()) or set(s.data_imports) & aliases:
            entries.append((None, f"{fn}'s address is stored in data of {_name(s.path)}, {where}"))
            break
        read = _calls_by_node(s.arg_calls, aliases)
        entries += [(read.get(src), f"{reg} is not known at a call of {fn} in {s.names.get(src) or hex(src)} "
                                    f"({_name(s.path)}), {where}")
                    for src, names in sorted(s.calls_out.items()) if set(names) & aliases and (i, src) in r.parent]
    values: set[int] = set()
    for calls, unknown in entries:
        got = _read_values(calls, reg)
        if got is None:
            return None, unknown
        values |= got
    return (values, "") if values else (None, f"no read call of {fn}, {where}")


def _calls_by_node(arg_calls: list, callees: set[str]) -> dict[int, list]:
    """Caller node -> the registers read at each of its recorded calls of one of `callees` (None: not read)."""
    out: dict[int, list] = {}
    for _addr, node, callee, regs in arg_calls:
        if callee in callees:
            out.setdefault(node, []).append(regs)
    return out


def _read_values(calls: list | None, reg: str) -> set[int] | None:
    """The union of `reg` over one caller's calls; None when a call was not read or `reg` is not known there."""
    if not calls or any(c is None for c in calls):
        return None
    out: set[int] = set()
    for regs in calls:
        got = dict(regs).get(reg)
        if got is None:
            return None
        out |= set(got)
    return out


def _reached_from_elsewhere(r, node: Node, summaries) -> bool:
    """Is the wrapper reached other than through calls whose numbers were read: as a root (data pointer), by an
    edge inside its own object, or by a reached caller whose calls to it were not analysed? Then its numbers are
    not all known."""
    if r.parent.get(node) is None or r.why.get(node):
        return True
    j, w = node
    name = summaries[j].names.get(w)
    for i, s in enumerate(summaries):
        known = {x.node for x in s.wrapper_calls if x.callee == name}
        for src, names in s.calls_out.items():
            if name in names and (i, src) in r.parent and src not in known:
                return True
        if i == j and any(w in ts and (i, src) in r.parent for src, ts in s.edges.items()):
            return True
    return False


def _vdso_caller(fn: str, summaries, r) -> Node | None:
    """A reached function that calls the vDSO's `fn` (by the C library's names for it); (-1, -1) when no loaded
    object names those functions at all (a stripped static binary): then the vDSO is assumed called."""
    from .summary import VDSO_CALLERS

    wanted = set(VDSO_CALLERS.get(fn, ()))
    named = False
    for i, s in enumerate(summaries):
        for a, nm in s.names.items():
            if nm in wanted:
                named = True
                if (i, a) in r.parent:
                    return (i, a)
        for nm in wanted & set(s.exports):
            named = True
            if (i, s.exports[nm]) in r.parent:
                return (i, s.exports[nm])
    return None if named else (-1, -1)


def _name(path: str) -> str:
    return os.path.basename(path)


def _nm(abi: str, nr: int) -> str:
    return name_syscall(abi, nr).name or "?"
