"""Rule evaluation: a pure function from a Report (and a RuleSet) to Findings. Knows nothing of disassembly.

A rule's `match` expression compiles into a small tree of nodes. Every node answers, for the report and
optionally one site, "does it hold?" and "which sites made it hold?" (for the finding's location):

* site scope: the expression is asked once per site; each site where it holds is one finding.
* binary scope: the expression is asked once with no site. A site feature then means "some site has it"; the
  `site:` node asks that one single site satisfy its whole sub-expression, and `count:` counts such sites.
  One finding per binary, located at the first contributing site.

Register predicates work on value *sets*: a predicate holds when some known value satisfies it (the site *may*
do it). `unknown: true` also lets a value that is not fully known (status partial/unresolved) match.
"""
from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from dataclasses import dataclass

from ..model import SEVERITY_RANK, Finding, RegisterValue, Report, Site, SyscallRef
from ..syscalls import X32_SYSCALL_BIT
from ..textsafe import num  # the one spelling of a number in every text
from .location import site_location

N_OR_MORE = re.compile(r"^([1-9][0-9]*) or more$")
STRIPPED_FN = re.compile(r"^sub_[0-9a-f]+$")


class CompileError(ValueError):
    pass


@dataclass
class Context:
    report: Report
    locations: dict[int, str]
    disagreements: frozenset[tuple[str, int]]

    @classmethod
    def of(cls, report: Report) -> "Context":
        dis = set()
        for d in (report.kernel or {}).get("disagreements", []) or []:
            try:
                abi, nr = str(d["abi"]), int(d["nr"])
            except (KeyError, TypeError, ValueError):
                continue
            dis.add((abi, nr & ~X32_SYSCALL_BIT if abi == "x32" else nr))
        return cls(report, {s.address: site_location(report, s) for s in report.sites}, frozenset(dis))


Result = tuple[bool, frozenset]
NO: Result = (False, frozenset())


class Node:
    site_feature = False  # a feature of one site (at binary scope: "some site has it")

    def eval(self, ctx: Context, site: Site | None) -> Result:
        if self.site_feature and site is None:
            hits = frozenset(s.address for s in ctx.report.sites if self.test(ctx, s))
            return (bool(hits), hits)
        return self.test_result(ctx, site)

    def test_result(self, ctx: Context, site: Site | None) -> Result:
        ok = self.test(ctx, site)
        return (ok, frozenset([site.address]) if ok and site is not None else frozenset())

    def test(self, ctx: Context, site: Site | None) -> bool:  # pragma: no cover - abstract
        raise NotImplementedError

    def arg_refs(self) -> Iterable[tuple[str, object]]:
        """The registers/arguments this node looks at (for the finding message)."""
        return ()


class And(Node):
    def __init__(self, kids: list[Node]) -> None:
        self.kids = kids

    def eval(self, ctx, site):
        hits: frozenset = frozenset()
        for k in self.kids:
            ok, h = k.eval(ctx, site)
            if not ok:
                return NO
            hits |= h
        return (True, hits)

    def arg_refs(self):
        for k in self.kids:
            yield from k.arg_refs()


class Or(Node):
    def __init__(self, kids: list[Node]) -> None:
        self.kids = kids

    def eval(self, ctx, site):
        return NOrMore(1, self.kids).eval(ctx, site)

    def arg_refs(self):
        for k in self.kids:
            yield from k.arg_refs()


class NOrMore(Node):
    def __init__(self, n: int, kids: list[Node]) -> None:
        self.n, self.kids = n, kids

    def eval(self, ctx, site):
        count, hits = 0, frozenset()
        for k in self.kids:
            ok, h = k.eval(ctx, site)
            if ok:
                count += 1
                hits |= h
        return (count >= self.n, hits) if count >= self.n else NO

    def arg_refs(self):
        for k in self.kids:
            yield from k.arg_refs()


class Not(Node):
    def __init__(self, kid: Node) -> None:
        self.kid = kid

    def eval(self, ctx, site):
        ok, _ = self.kid.eval(ctx, site)
        return (not ok, frozenset())


class OneSite(Node):
    """binary scope: some single site satisfies the whole sub-expression."""

    def __init__(self, kid: Node) -> None:
        self.kid = kid

    def eval(self, ctx, site):
        hits = frozenset(s.address for s in ctx.report.sites if self.kid.eval(ctx, s)[0])
        return (bool(hits), hits)

    def arg_refs(self):
        return self.kid.arg_refs()


class Count(Node):
    def __init__(self, kid: Node, lo: int, hi: int | None) -> None:
        self.kid, self.lo, self.hi = kid, lo, hi

    def eval(self, ctx, site):
        hits = frozenset(s.address for s in ctx.report.sites if self.kid.eval(ctx, s)[0])
        ok = len(hits) >= self.lo and (self.hi is None or len(hits) <= self.hi)
        return (ok, hits if ok else frozenset())


class Syscall(Node):
    site_feature = True

    def __init__(self, names: set[str], numbers: set[int]) -> None:
        self.names, self.numbers = names, numbers

    def test(self, ctx, site):
        return any(r.name in self.names or r.nr in self.numbers for r in site.syscalls)


class Number(Node):
    site_feature = True

    def __init__(self, status: set[str] | None, in_table: bool | None) -> None:
        self.status, self.in_table = status, in_table

    def test(self, ctx, site):
        if self.status is not None and site.number.status not in self.status:
            return False
        if self.in_table is not None:
            if not site.syscalls:
                return False
            missing = any(r.name is None for r in site.syscalls)
            if missing == self.in_table:
                return False
        return True


class ValuePredicate:
    def __init__(self, spec: dict, constants: dict[str, int]) -> None:
        def vals(key: str) -> list[int] | None:
            if key not in spec:
                return None
            raw = spec[key] if isinstance(spec[key], list) else [spec[key]]
            out = []
            for v in raw:
                if isinstance(v, str):
                    if v not in constants:
                        raise CompileError(f"unknown constant {v!r} in {key}")
                    v = constants[v]
                out.append(int(v))
            return out

        self.equals = vals("equals")
        self.bits_set = vals("bits-set")
        self.bits_clear = vals("bits-clear")
        self.any_bits = vals("any-bits")
        st = spec.get("status")
        self.status = None if st is None else set(st if isinstance(st, list) else [st])
        self.unknown = bool(spec.get("unknown", False))
        rs = spec.get("reason")
        self.reason = None if rs is None else list(rs if isinstance(rs, list) else [rs])
        self.has_value_test = any(x is not None for x in (self.equals, self.bits_set, self.bits_clear, self.any_bits))

    def _one(self, v: int, mask: int) -> bool:
        def m(vs: list[int]) -> int:
            out = 0
            for x in vs:
                out |= x & mask
            return out

        if self.equals is not None and v not in {x & mask for x in self.equals}:
            return False
        if self.bits_set is not None and (v & m(self.bits_set)) != m(self.bits_set):
            return False
        if self.bits_clear is not None and v & m(self.bits_clear):
            return False
        if self.any_bits is not None and not v & m(self.any_bits):
            return False
        return True

    def test(self, rv: RegisterValue, bits: int) -> bool:
        if self.status is not None and rv.status not in self.status:
            return False
        if self.reason is not None and not any(want in r for want in self.reason for r in rv.reasons):
            return False
        if not self.has_value_test:
            return True
        mask = (1 << bits) - 1
        if any(self._one(v & mask, mask) for v in rv.values):
            return True
        return self.unknown and rv.status != "resolved"


def _bits(site: Site) -> int:
    return 64 if site.abi == "x86_64" else 32


def _param_index(site: Site, name: str) -> list[int]:
    out = []
    for ref in site.syscalls:
        for i, p in enumerate(ref.params):
            if p.rpartition(" ")[2].lstrip("*") == name and i not in out:
                out.append(i)
    return out


class Arg(Node):
    site_feature = True

    def __init__(self, index: int | None, name: str | None, pred: ValuePredicate) -> None:
        self.index, self.name, self.pred = index, name, pred

    def registers(self, site: Site) -> list[RegisterValue]:
        idx = [self.index] if self.index is not None else _param_index(site, self.name or "")
        return [site.args[i] for i in idx if i < len(site.args)]

    def test(self, ctx, site):
        return any(self.pred.test(rv, _bits(site)) for rv in self.registers(site))

    def arg_refs(self):
        yield ("arg", self.index if self.index is not None else self.name)


class Register(Node):
    site_feature = True

    def __init__(self, name: str, pred: ValuePredicate) -> None:
        self.name, self.pred = name, pred

    def register(self, site: Site) -> RegisterValue | None:
        for rv in [site.number, *site.args, *getattr(site, "extra_registers", [])]:
            if rv.register == self.name:
                return rv
        return None

    def test(self, ctx, site):
        rv = self.register(site)
        return rv is not None and self.pred.test(rv, _bits(site))

    def arg_refs(self):
        yield ("register", self.name)


class Attr(Node):
    """instruction / abi / section / function / location: the site's value is one of a set."""

    site_feature = True

    def __init__(self, what: str, allowed: set[str]) -> None:
        self.what, self.allowed = what, allowed

    def test(self, ctx, site):
        if self.what == "location":
            return ctx.locations.get(site.address) in self.allowed
        return getattr(site, self.what) in self.allowed


class Kernel(Node):
    site_feature = True

    def __init__(self, spec: dict) -> None:
        self.enosys = spec.get("enosys")
        self.disagreement = spec.get("disagreement")
        h = spec.get("handler")
        self.handlers = None if h is None else set(h if isinstance(h, list) else [h])

    def eval(self, ctx, site):
        if site is None and self.disagreement is not None and self.enosys is None and self.handlers is None:
            return (bool(ctx.disagreements) == self.disagreement, frozenset())  # a fact of the kernel alone
        return super().eval(ctx, site)

    def test(self, ctx, site):
        if self.enosys is not None:
            if not site.kernel or any(k.enosys for k in site.kernel) != self.enosys:
                return False
        if self.disagreement is not None:
            keys = {(r.abi, r.nr & ~X32_SYSCALL_BIT if r.abi == "x32" else r.nr) for r in site.syscalls}
            if bool(keys & ctx.disagreements) != self.disagreement:
                return False
        if self.handlers is not None:
            if not any(k.handler in self.handlers or k.implementation in self.handlers for k in site.kernel):
                return False
        return True


class Binary(Node):
    def __init__(self, spec: dict) -> None:
        self.spec = spec

    def test(self, ctx, site):
        b = ctx.report.binary
        return all(getattr(b, k.replace("-", "_")) == v for k, v in self.spec.items())

    def test_result(self, ctx, site):
        return (self.test(ctx, site), frozenset())


def _as_set(v) -> set:
    return set(v if isinstance(v, list) else [v])


def compile_expr(expr: dict, scope: str, constants: dict[str, int], depth: int = 0) -> Node:
    if depth > 32:
        raise CompileError("expression nested too deeply")
    (key, val), = expr.items()
    sub = lambda e: compile_expr(e, scope, constants, depth + 1)  # noqa: E731
    if key == "and":
        return And([sub(e) for e in val])
    if key == "or":
        return Or([sub(e) for e in val])
    if key == "not":
        return Not(sub(val))
    m = N_OR_MORE.match(key)
    if m:
        n = int(m.group(1))
        if n > len(val):
            raise CompileError(f"'{key}' has only {len(val)} alternatives")
        return NOrMore(n, [sub(e) for e in val])
    if key in ("site", "count"):
        if scope != "binary":
            raise CompileError(f"'{key}:' only makes sense in a rule with scope: binary")
        if key == "site":
            return OneSite(compile_expr(val, "site", constants, depth + 1))
        return Count(compile_expr(val["match"], "site", constants, depth + 1), int(val.get("min", 1)),
                     val.get("max"))
    if key == "syscall":
        items = _as_set(val)
        return Syscall({x for x in items if isinstance(x, str)}, {x for x in items if isinstance(x, int)})
    if key == "number":
        st = val.get("status")
        return Number(None if st is None else _as_set(st), val.get("in-table"))
    if key == "arg":
        return Arg(val.get("index"), val.get("name"), ValuePredicate(val, constants))
    if key == "register":
        return Register(val["name"], ValuePredicate(val, constants))
    if key in ("instruction", "abi", "section", "function", "location"):
        return Attr(key, _as_set(val))
    if key == "kernel":
        return Kernel(val)
    if key == "binary":
        return Binary(val)
    raise CompileError(f"unknown expression {key!r}")  # the schema rejects this first


# ---- findings ------------------------------------------------------------------------------------------------------

def _names(site: Site) -> str:
    if not site.syscalls:
        return "?"
    return ",".join(dict.fromkeys(r.name or str(r.nr) for r in site.syscalls))


def _value_text(rv: RegisterValue) -> str:
    if not rv.values:
        return "?"
    parts = [repr(rv.strings[v]) if v in rv.strings else num(v) for v in rv.values[:4]]
    text = parts[0] if len(parts) == 1 else "{" + ", ".join(parts) + "}"
    return text + ("|?" if rv.status == "partial" else "")


def _args_text(rule_node: Node, site: Site) -> str:
    out = []
    for kind, ref in dict.fromkeys(rule_node.arg_refs()):
        if kind == "arg":
            idx = [ref] if isinstance(ref, int) else _param_index(site, str(ref))
            for i in idx:
                if i < len(site.args):
                    rv = site.args[i]
                    out.append(f"{rv.param or rv.register}={_value_text(rv)}")
        else:
            rv = Register(str(ref), ValuePredicate({}, {})).register(site)
            if rv is not None:
                out.append(f"{rv.register}={_value_text(rv)}")
    return ", ".join(dict.fromkeys(out))


TEMPLATE = re.compile(r"\{(syscall|function|address|instruction|abi|args|binary|location|count|section)\}")


def _message(rule, site: Site | None, report: Report, ctx: Context, count: int, syscalls: str | None = None) -> str:
    if site is not None:
        args = _args_text(rule.match, site)
        values = {"syscall": _names(site), "function": site.function or "?", "address": f"{site.address:#x}",
                  "instruction": site.instruction, "abi": site.abi, "args": args, "section": site.section,
                  "location": ctx.locations.get(site.address, "?")}
    else:
        args = ""
        values = {"syscall": "", "function": "", "address": "", "instruction": "", "abi": "", "args": "",
                  "section": "", "location": ""}
    values.update(binary=report.binary.name, count=str(count))
    if syscalls is not None:
        values["syscall"] = syscalls
    if rule.message:
        return TEMPLATE.sub(lambda m: values[m.group(1)], rule.message)
    if rule.scope == "binary" or site is None:
        return f"{rule.name} ({report.binary.name})" + (f": {syscalls}" if syscalls else "")
    text = f"{rule.name}: {values['syscall']} ({site.instruction}) in {values['function']} at {values['address']}"
    return text + (f" with {args}" if args else "")


def fingerprint_key(rule_id: str, function: str | None, syscall: str | None) -> str:
    """What identifies a finding across rebuilds: rule, function (never an address: stripped `sub_…` names are
    collapsed) and syscall. Findings that share it are told apart by their order in the binary."""
    fn = function or ""
    if STRIPPED_FN.match(fn):
        fn = "sub_?"
    return f"{rule_id}\x1f{fn}\x1f{syscall or ''}"


def evaluate(report: Report, ruleset: Iterable) -> list[Finding]:
    """All findings of all rules on one report, sorted (severity, rule, address) with stable fingerprints."""
    ctx = Context.of(report)
    by_addr = {s.address: s for s in report.sites}
    findings: list[Finding] = []
    surface = _surface_sites(report)
    for rule in ruleset:
        if rule.scope == "site":
            for site in report.sites:
                ok, _ = rule.match.eval(ctx, site)
                if ok:
                    findings.append(_finding(rule, site, report, ctx, 1))
            if getattr(rule, "surface", False):
                for site, u in surface:
                    ok, _ = rule.match.eval(ctx, site)
                    if ok:
                        f = _finding(rule, site, report, ctx, 1)
                        f.message += f" — reachable through {', '.join(u.objects)}: {' → '.join(u.path)}"
                        findings.append(f)
        else:
            ok, hits = rule.match.eval(ctx, None)
            if ok:
                sites = [by_addr[a] for a in sorted(hits) if a in by_addr]
                names = ",".join(sorted({n for s in sites for n in _names(s).split(",")})) if sites else None
                findings.append(_finding(rule, sites[0] if sites else None, report, ctx, len(sites), names))
    findings.sort(key=lambda f: (-SEVERITY_RANK[f.severity], f.rule, -1 if f.site is None else f.site,
                                 f.function or ""))
    seen: dict[str, int] = {}
    for f in sorted(findings, key=lambda f: (-1 if f.site is None else f.site, f.rule)):
        key = fingerprint_key(f.rule, f.function, f.syscall)
        k = seen.get(key, 0)
        seen[key] = k + 1
        f.fingerprint = hashlib.sha256(f"{key}\x1f{k}".encode()).hexdigest()[:32]
    return findings


def _surface_sites(report: Report) -> list[tuple[Site, object]]:
    """The surface's syscalls that no raw site of the program makes, as sites for the rules that ask for them: at
    the program's function where the path leaves the program (the call into the library), number known."""
    if report.surface is None:
        return []
    raw = {(r.abi, r.nr) for s in report.sites for r in s.syscalls}
    out = []
    for u in report.surface.syscalls:
        if (u.abi, u.nr) in raw or u.via is None:
            continue
        site = Site(address=u.via, offset=0, function=u.via_function or f"sub_{u.via:x}", function_address=u.via,
                    instruction="call", abi=u.abi,
                    number=RegisterValue("eax" if u.abi == "i386" else "rax", "number", values=[u.nr],
                                         status="resolved"),
                    syscalls=[SyscallRef(nr=u.nr, abi=u.abi, name=u.name)])
        out.append((site, u))
    return out


def _finding(rule, site: Site | None, report: Report, ctx: Context, count: int,
             syscalls: str | None = None) -> Finding:
    """One finding. At binary scope `site` is the first contributing site (the location) and `syscalls` names the
    syscalls of every contributing site."""
    refs = list(rule.references) + [f"CWE-{c}" for c in rule.cwe] + [f"ATT&CK {t}" for t in rule.attack]
    if rule.scope == "site" and site is not None:
        syscalls = _names(site)
    return Finding(
        rule=rule.id, name=rule.name, severity=rule.severity,
        message=_message(rule, site, report, ctx, count, syscalls if rule.scope == "binary" else None),
        site=None if site is None else site.address, function=None if site is None else site.function,
        syscall=syscalls, tags=list(rule.tags), references=list(dict.fromkeys(refs)),
    )
