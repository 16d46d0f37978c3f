"""Reachability across objects: imports bound as the loader binds them, a breadth-first walk from the roots, and
one shortest path to every syscall.

Binding: an imported name goes to the first object in load order that exports it (the global scope); a reference
that asks for a symbol version binds to `name@VERSION` where an object defines that version (a compatibility
symbol such as i386 glibc's getrlimit64@GLIBC_2.1), else to the plain name, the default version. A name nothing
exports is an unbound import, said in the notes. An IFUNC export binds to its resolver, whose code takes the
addresses of the implementations it can choose: they are reached through it.
"""
from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

from .gates import GATES, Gate, glibc, named
from .summary import ObjectSummary

Node = tuple[int, int]  # (object index in load order, function start); a data chunk is (index, ~chunk start)


def chunk_node(i: int, c: int) -> Node:
    return (i, ~c)


def is_chunk(n: Node) -> bool:
    return n[1] < 0


@dataclass
class Reach:
    parent: dict[Node, Node | None] = field(default_factory=dict)
    why: dict[Node, str] = field(default_factory=dict)  # a root's reason
    unbound: dict[str, list[str]] = field(default_factory=dict)  # imported name -> objects that import it
    held: dict[str, tuple[Gate, list[str]]] = field(default_factory=dict)
    """gate name -> (gate, what it kept out: functions, and calls as "caller -> callee")"""
    closed: dict[str, Gate] = field(default_factory=dict)  # the gates that never opened (their sites are held too)

    def nodes(self, node: Node) -> list[Node]:
        """The path to node, root first."""
        out = []
        n: Node | None = node
        while n is not None:
            out.append(n)
            n = self.parent.get(n)
        return out[::-1]

    def path(self, node: Node, label) -> list[str]:
        """Root first; `label(node)` names one step."""
        out = []
        n: Node | None = node
        while n is not None:
            out.append(label(n))
            n = self.parent.get(n)
        out.reverse()
        if out and node in self.parent:
            root = node
            while self.parent.get(root) is not None:
                root = self.parent[root]
            if self.why.get(root):
                out[0] += f" [{self.why[root]}]"
        return out


def bind(summaries: list[ObjectSummary]) -> dict[str, Node]:
    """Imported name -> the definition the loader would pick (first object in load order that exports it)."""
    scope: dict[str, Node] = {}
    for i, s in enumerate(summaries):
        for name, addr in s.exports.items():
            scope.setdefault(name, (i, addr))
    return scope


def data_scope(summaries: list[ObjectSummary]) -> dict[str, list[Node]]:
    """Exported data symbol -> the chunk of every object that defines it: with copy relocations the program's copy
    starts as the library's contents, so both are live when either is referred to."""
    out: dict[str, list[Node]] = {}
    for i, s in enumerate(summaries):
        for name, c in s.data_exports.items():
            out.setdefault(name, []).append(chunk_node(i, c))
    return out


def _lookup(table: dict, name: str, s: ObjectSummary):
    """What `name`, imported by `s`, binds to in `table`: the version it asks for where one is defined, else the
    plain name (the default version)."""
    version = s.import_versions.get(name)
    return (table.get(f"{name}@{version}") if version else None) or table.get(name)


def walk(summaries: list[ObjectSummary], extra_roots: list[tuple[Node, str]] = (),
         gates: tuple[Gate, ...] = GATES, entered: set[int] | None = None,
         opened: frozenset[str] = frozenset()) -> Reach:
    """`entered`: the objects whose entry point runs (the program and its interpreter; None: every object whose
    summary has one). libc.so.6 can be run as a program (it prints its version), but loaded as a library its
    e_entry never runs. `opened`: the gates open from the start (gates.Gate.program)."""
    scope = bind(summaries)
    dscope = data_scope(summaries)
    r = Reach()
    q: deque[Node] = deque()
    held_by: dict[Node, Gate] = {}  # node -> the gate that holds it back
    held_call: dict[tuple[Node, Node], Gate] = {}  # (caller, callee) -> the gate that holds that call back
    opens: dict[Node, list[Gate]] = {}  # node -> the gates reaching it opens
    opens_import = {n: [g for g in gates if n in g.imports] for g0 in gates for n in g0.imports}
    not_glibc: set[int] = set()  # objects whose calls of a gate's `imports` open it
    for i, s in enumerate(summaries):
        by_name = named(s.names, s.exports)
        is_glibc = glibc(by_name)
        if not is_glibc:
            not_glibc.add(i)
        for g in gates:
            for name in g.openers:
                for a in by_name.get(name, ()):
                    opens.setdefault((i, a), []).append(g)
            if not (g.anywhere or is_glibc):
                continue
            for name in g.held:
                for a in by_name.get(name, ()):
                    held_by[(i, a)] = g
            for caller, callee in g.calls:
                for a in by_name.get(caller, ()):
                    for t in by_name.get(callee, ()):
                        held_call[((i, a), (i, t))] = g
    waiting: dict[str, list[tuple[Node, Node | None, str | None]]] = {}
    opened = set(opened)

    def visit(n: Node, parent: Node | None, why: str | None = None) -> None:
        if n in r.parent:
            return
        for g in (held_by.get(n), held_call.get((parent, n))):
            if g is not None and g.name not in opened:
                waiting.setdefault(g.name, []).append((n, parent, why))
                return
        r.parent[n] = parent
        if why:
            r.why[n] = why
        q.append(n)
        open_gates(opens.get(n, ()))

    def open_gates(gs) -> None:
        for g in gs:
            if g.name not in opened:
                opened.add(g.name)
                for args in waiting.pop(g.name, []):
                    visit(*args)

    roots: list[tuple[Node, str]] = []
    for i, s in enumerate(summaries):  # the entry points first: the shortest paths then start there
        if entered is None or i in entered:
            roots += [((i, a), why) for a, why in s.roots.items() if why == "the entry point"]
    for i, s in enumerate(summaries):
        roots += [((i, a), why) for a, why in sorted(s.roots.items()) if why != "the entry point"]
        roots += [((i, a), why) for a, why in sorted(s.outside.items())]
        for name in s.data_imports:
            d = _lookup(scope, name, s)
            if d is not None:
                roots.append((d, f"its address is stored in data of {_short(s.path)}"))
        roots += [(chunk_node(i, c), why) for c, why in sorted(s.live.items())]
    roots += list(extra_roots)
    for n, why in roots:
        visit(n, None, why)

    def use(name: str, n: Node, s: ObjectSummary) -> None:
        if name in opens_import and n[0] in not_glibc:
            open_gates(opens_import[name])
        d = _lookup(scope, name, s)
        chunks = _lookup(dscope, name, s) or ()
        if d is None and not chunks:
            r.unbound.setdefault(name, []).append(_short(s.path))
        if d is not None:
            visit(d, n)
        for c in chunks:
            visit(c, n)

    while q:
        n = q.popleft()
        i, a = n
        s = summaries[i]
        if a < 0:  # a data chunk: the pointers it holds
            c = ~a
            for t in s.chunk_ptrs.get(c, ()):
                visit((i, t), n)
            for c2 in s.chunk_data.get(c, ()):
                visit(chunk_node(i, c2), n)
            for name in s.chunk_imports.get(c, ()):
                use(name, n, s)
            continue
        for t in s.edges.get(a, ()):
            visit((i, t), n)
        for c in s.data_refs.get(a, ()):
            visit(chunk_node(i, c), n)
        for name in s.calls_out.get(a, ()):
            use(name, n, s)
    for k in r.unbound:
        r.unbound[k] = sorted(set(r.unbound[k]))
    for name, nodes in sorted(waiting.items()):
        gate = next(g for g in gates if g.name == name)
        kept = set()
        for n, p, _w in nodes:
            if n in r.parent:
                continue  # reached later by another way
            label = summaries[n[0]].names.get(n[1]) or f"sub_{n[1]:x}"
            if held_by.get(n) is gate:
                kept.add(label)
            elif p is not None:
                kept.add(f"{summaries[p[0]].names.get(p[1]) or f'sub_{p[1]:x}'} -> {label}")
        if kept:
            r.held[name] = (gate, sorted(kept))
    r.closed = {g.name: g for g in gates if g.name not in opened}
    return r


def _short(path: str) -> str:
    return path.rsplit("/", 1)[-1]
