"""`sysscan rules lint`: every rule file parses and validates, ids are unique, syscall names exist in a syscall
table, and every rule does what its examples say on the real corpus binaries:

* positive example: the rule reports at least one finding in the file, and one in each listed function;
* negative example: the rule reports nothing in the file (or nothing in the listed functions);
* a listed function must hold a site in that file (so a typo cannot make a negative example pass vacuously);
* a rule without a positive example must say why (`examples.no-positive-because`).
"""
from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field

from ..errors import SysscanError
from .engine import Syscall, evaluate
from .loader import Rule, RuleError, RuleSet, default_rules_dir, load_rule_file, rule_files


@dataclass
class LintResult:
    rules: list[Rule] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    checked: list[tuple[str, str, str, str]] = field(default_factory=list)  # (rule, kind, file, functions) passed
    files: int = 0

    @property
    def ok(self) -> bool:
        return not self.problems


def find_corpus(start: str | None = None) -> str | None:
    """The corpus directory: ./corpus, else the source tree's corpus/ next to the package."""
    for cand in ([start] if start else []) + [os.path.join(os.getcwd(), "corpus"),
                                               os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(
                                                   os.path.abspath(__file__)))), "corpus")]:
        if cand and os.path.isfile(os.path.join(cand, "manifest.json")):
            return cand
    return None


def _walk_syscalls(node, out: list) -> None:
    if isinstance(node, Syscall):
        out.append(node)
    for attr in ("kids",):
        for k in getattr(node, attr, []) or []:
            _walk_syscalls(k, out)
    kid = getattr(node, "kid", None)
    if kid is not None:
        _walk_syscalls(kid, out)


def _known_names() -> set[str]:
    from ..syscalls import load_table

    names: set[str] = set()
    for abi in ("x86_64", "i386", "x32"):
        names |= {e.name for e in load_table(abi)}
    return names


def lint(paths: list[str] | None = None, *, corpus: str | None = None, examples: bool = True,
         scan: Callable | None = None) -> LintResult:
    """Lint the rule files under `paths` (default: the shipped rules). `scan(path)` returns a Report without
    findings (the caller's pipeline: the rules stage knows nothing of how a binary is analysed); needed only
    when `examples` are checked."""
    res = LintResult()
    files: list[str] = []
    for p in paths or [default_rules_dir()]:
        try:
            files += rule_files(p)
        except RuleError as e:
            res.problems.append(str(e))
    res.files = len(files)
    seen: dict[str, str] = {}
    known = _known_names()
    for f in files:
        try:
            r = load_rule_file(f, "lint")
        except RuleError as e:
            res.problems.append(str(e))
            continue
        if r.id in seen:
            res.problems.append(f"{f}: duplicate rule id {r.id!r} (also in {seen[r.id]})")
            continue
        seen[r.id] = f
        if os.path.splitext(os.path.basename(f))[0] != r.id:
            res.problems.append(f"{f}: file name should be {r.id}.yml")
        nodes: list = []
        _walk_syscalls(r.match, nodes)
        for n in nodes:
            for name in sorted(n.names - known):
                res.problems.append(f"{f}: rule {r.id}: syscall {name!r} is in no syscall table (x86_64, i386, x32)")
        if not r.examples.get("positive") and not r.examples.get("no-positive-because"):
            res.problems.append(f"{f}: rule {r.id}: no positive example and no examples.no-positive-because")
        res.rules.append(r)
    if examples:
        _check_examples(res, corpus, scan)
    return res


def _check_examples(res: LintResult, corpus: str | None, scan: Callable | None) -> None:
    root = find_corpus(corpus)
    if root is None:
        res.problems.append("examples not checked: no corpus directory (with manifest.json) found; use --corpus")
        return
    if scan is None:
        raise ValueError("lint: checking examples needs a scan function")
    cache: dict[str, object] = {}

    def report_of(rel: str):
        if rel not in cache:
            path = os.path.join(root, rel)
            try:
                cache[rel] = scan(path)
            except SysscanError as e:
                cache[rel] = e
        return cache[rel]

    for r in res.rules:
        for kind in ("positive", "negative"):
            for ex in r.examples.get(kind, []):
                rep = report_of(ex["file"])
                where = f"rule {r.id}: {kind} example {ex['file']}"
                if isinstance(rep, Exception):
                    res.problems.append(f"{r.path}: {where}: cannot scan: {rep}")
                    continue
                found = evaluate(rep, RuleSet([r]))
                fns = ex.get("functions")
                site_fns = {s.function for s in rep.sites}
                missing = [fn for fn in fns or [] if fn not in site_fns]
                if missing:
                    res.problems.append(f"{r.path}: {where}: no site in function(s) {', '.join(missing)}")
                    continue
                hit_fns = {f.function for f in found}
                if kind == "positive":
                    bad = [fn for fn in fns if fn not in hit_fns] if fns else ([] if found else ["(any)"])
                    if bad:
                        res.problems.append(f"{r.path}: {where}: expected a finding in {', '.join(bad)}, got "
                                            f"{len(found)} finding(s)" + (f" in {', '.join(sorted(hit_fns))}"
                                                                          if hit_fns else ""))
                        continue
                else:
                    bad = sorted(hit_fns & set(fns)) if fns else sorted({str(f.function) for f in found})
                    if bad or (not fns and found):
                        res.problems.append(f"{r.path}: {where}: expected no finding, got one in {', '.join(bad)}")
                        continue
                res.checked.append((r.id, kind, ex["file"], ",".join(fns or [])))


def format_result(res: LintResult, verbose: bool = False) -> str:
    lines = []
    if verbose:
        for rid, kind, f, fns in res.checked:
            lines.append(f"ok  {rid:32} {kind:8} {f}" + (f" [{fns}]" if fns else ""))
    lines += [f"problem: {p}" for p in res.problems]
    pos = sum(1 for c in res.checked if c[1] == "positive")
    neg = sum(1 for c in res.checked if c[1] == "negative")
    lines.append(f"{len(res.rules)} rules in {res.files} files; examples passed: {pos} positive, {neg} negative; "
                 f"{len(res.problems)} problem(s)")
    return "\n".join(lines) + "\n"
