"""Generate the embedded syscall tables from a Linux kernel source tree.

Run as::

    python -m analyzer.syscalls.generate --src /path/to/linux-source \
        [--debian-version 6.1.192-2] [--out analyzer/syscalls/data]

The tables are generated offline (not at runtime) so sysscan has no dependency
on kernel headers being installed, and so the data is reproducible from a
known, versioned kernel source.

Inputs:
  * arch/x86/entry/syscalls/syscall_64.tbl -> x86_64.json (abi common+64) and
    x32.json (abi common+x32; the x32 ABI ORs 0x40000000 into the number).
  * arch/x86/entry/syscalls/syscall_32.tbl -> i386.json.
  * Argument lists come from the ``asmlinkage long sys_X(...)`` prototypes in
    the kernel headers (include/, arch/x86/include/).  Prototypes whose
    parameters are unnamed get names from the matching ``SYSCALL_DEFINEn``;
    entry points with no header prototype (arch-specific ones such as
    arch_prctl, iopl, modify_ldt, rt_sigreturn, the ia32 wrappers) fall back
    to ``SYSCALL_DEFINEn`` / ``COMPAT_SYSCALL_DEFINEn`` in the .c sources.

Both prototypes and definitions are filtered through a tiny tri-state
preprocessor evaluator, because several syscalls (clone, sigsuspend, ...)
have per-arch variants selected by ``#ifdef CONFIG_...``; symbols we have no
opinion about evaluate to "unknown" and are treated as active.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Iterator

from . import X32_SYSCALL_BIT
from .abi import ABIS

# ---------------------------------------------------------------------------
# .tbl parsing
# ---------------------------------------------------------------------------

TBL_64 = "arch/x86/entry/syscalls/syscall_64.tbl"
TBL_32 = "arch/x86/entry/syscalls/syscall_32.tbl"


@dataclass(frozen=True)
class TblEntry:
    """One line of a syscall_*.tbl file."""

    nr: int
    abi: str
    name: str
    entry: str | None
    compat_entry: str | None


def parse_tbl(text: str) -> list[TblEntry]:
    """Parse a syscall .tbl file: ``<nr> <abi> <name> [<entry> [<compat>]]``.

    Lines without an entry point (reserved / never implemented numbers) are
    returned with ``entry=None`` so callers can decide to drop them.
    """
    out: list[TblEntry] = []
    for raw in text.splitlines():
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        cols = line.split()
        if len(cols) < 3:
            raise ValueError(f"malformed .tbl line: {raw!r}")
        nr = int(cols[0], 0)
        entry = cols[3] if len(cols) > 3 else None
        compat = cols[4] if len(cols) > 4 else None
        out.append(TblEntry(nr, cols[1], cols[2], entry, compat))
    return out


def select_abi(entries: Iterable[TblEntry], abis: set[str]) -> list[TblEntry]:
    """Keep entries of the given abi column values that have an entry point."""
    picked = [e for e in entries if e.abi in abis and e.entry]
    picked.sort(key=lambda e: e.nr)
    seen: set[int] = set()
    for e in picked:
        if e.nr in seen:
            raise ValueError(f"duplicate syscall number {e.nr} for abis {sorted(abis)}")
        seen.add(e.nr)
    return picked


# ---------------------------------------------------------------------------
# Minimal C preprocessing helpers
# ---------------------------------------------------------------------------

_COMMENT_RE = re.compile(r"/\*.*?\*/|//[^\n]*", re.S)


def strip_comments(text: str) -> str:
    """Remove C comments, keeping newlines so line numbers stay valid."""
    return _COMMENT_RE.sub(lambda m: "\n" * m.group(0).count("\n") or " ", text)


# Kernel configuration facts that pick between syscall variants.  Anything not
# listed is "unknown" (None) and does not exclude code.
CONFIGS: dict[str, dict[str, int]] = {
    "x86_64": {
        "CONFIG_X86_64": 1,
        "CONFIG_X86_32": 0,
        "CONFIG_64BIT": 1,
        "BITS_PER_LONG": 64,
        "CONFIG_COMPAT": 1,
        "CONFIG_IA32_EMULATION": 1,
        "CONFIG_X86_X32_ABI": 1,
        "CONFIG_CLONE_BACKWARDS": 0,
        "CONFIG_CLONE_BACKWARDS2": 0,
        "CONFIG_CLONE_BACKWARDS3": 0,
        "CONFIG_ARCH_SPLIT_ARG64": 0,
        "CONFIG_ODD_RT_SIGACTION": 0,
        "CONFIG_OLD_SIGACTION": 0,
        "CONFIG_OLD_SIGSUSPEND": 0,
        "CONFIG_OLD_SIGSUSPEND3": 1,
        "CONFIG_ADVISE_SYSCALLS": 1,
        "CONFIG_MMU": 1,
        "CONFIG_X86_IOPL_IOPERM": 1,
        "CONFIG_COMPAT_32BIT_TIME": 1,
    },
    "i386": {
        "CONFIG_X86_64": 0,
        "CONFIG_X86_32": 1,
        "CONFIG_64BIT": 0,
        "BITS_PER_LONG": 32,
        "CONFIG_COMPAT": 0,
        "CONFIG_IA32_EMULATION": 0,
        "CONFIG_X86_X32_ABI": 0,
        "CONFIG_CLONE_BACKWARDS": 1,
        "CONFIG_CLONE_BACKWARDS2": 0,
        "CONFIG_CLONE_BACKWARDS3": 0,
        "CONFIG_ARCH_SPLIT_ARG64": 0,
        "CONFIG_ODD_RT_SIGACTION": 0,
        "CONFIG_OLD_SIGACTION": 1,
        "CONFIG_OLD_SIGSUSPEND": 0,
        "CONFIG_OLD_SIGSUSPEND3": 1,
        "CONFIG_ADVISE_SYSCALLS": 1,
        "CONFIG_MMU": 1,
        "CONFIG_X86_IOPL_IOPERM": 1,
        "CONFIG_COMPAT_32BIT_TIME": 1,
        "CONFIG_HAVE_UID16": 1,
    },
}
CONFIGS["x32"] = CONFIGS["x86_64"]

_PP_TOKEN_RE = re.compile(r"\s*(defined|IS_ENABLED|IS_BUILTIN|\|\||&&|==|!=|>=|<=|[()!<>]|0x[0-9a-fA-F]+|\d+|[A-Za-z_]\w*)")


class _CondParser:
    """Tri-state (True/False/None=unknown) evaluator for #if expressions."""

    def __init__(self, expr: str, config: dict[str, int]):
        self.toks: list[str] = []
        pos = 0
        expr = expr.strip()
        while pos < len(expr):
            m = _PP_TOKEN_RE.match(expr, pos)
            if not m:
                raise ValueError(expr)
            self.toks.append(m.group(1))
            pos = m.end()
            while pos < len(expr) and expr[pos].isspace():
                pos += 1
        self.i = 0
        self.config = config

    def peek(self) -> str | None:
        return self.toks[self.i] if self.i < len(self.toks) else None

    def take(self) -> str:
        t = self.toks[self.i]
        self.i += 1
        return t

    def parse(self) -> bool | None:
        v = self.or_()
        if self.peek() is not None:
            raise ValueError("trailing tokens")
        return v

    def or_(self) -> bool | None:
        v = self.and_()
        while self.peek() == "||":
            self.take()
            w = self.and_()
            v = True if (v is True or w is True) else (None if (v is None or w is None) else False)
        return v

    def and_(self) -> bool | None:
        v = self.cmp()
        while self.peek() == "&&":
            self.take()
            w = self.cmp()
            v = False if (v is False or w is False) else (None if (v is None or w is None) else True)
        return v

    def cmp(self) -> bool | None:
        left = self.value()
        op = self.peek()
        if op in ("==", "!=", ">=", "<=", ">", "<"):
            self.take()
            right = self.value()
            if not isinstance(left, int) or not isinstance(right, int) or isinstance(left, bool) or isinstance(right, bool):
                return None
            return {"==": left == right, "!=": left != right, ">=": left >= right,
                    "<=": left <= right, ">": left > right, "<": left < right}[op]
        return self.truth(left)

    @staticmethod
    def truth(v: object) -> bool | None:
        if v is None:
            return None
        return bool(v)

    def value(self) -> object:
        """Return int for known numeric symbols, bool, or None (unknown)."""
        t = self.take()
        if t == "!":
            v = self.truth(self.value())
            return None if v is None else (not v)
        if t == "(":
            v = self.or_()
            if self.take() != ")":
                raise ValueError("missing )")
            return v
        if t in ("defined", "IS_ENABLED", "IS_BUILTIN"):
            paren = self.peek() == "("
            if paren:
                self.take()
            sym = self.take()
            if paren and self.take() != ")":
                raise ValueError("missing )")
            if sym in self.config:
                return bool(self.config[sym])
            return None
        if t[0].isdigit():
            return int(t, 0)
        return self.config.get(t)


def eval_condition(expr: str, config: dict[str, int]) -> bool | None:
    """Evaluate a #if expression; unparseable or unknown -> None."""
    try:
        return _CondParser(expr, config).parse()
    except (ValueError, IndexError):
        return None


def _and3(a: bool | None, b: bool | None) -> bool | None:
    if a is False or b is False:
        return False
    if a is None or b is None:
        return None
    return True


def _or3(a: bool | None, b: bool | None) -> bool | None:
    if a is True or b is True:
        return True
    if a is None or b is None:
        return None
    return False


def _not3(a: bool | None) -> bool | None:
    return None if a is None else (not a)


def active_lines(text: str, config: dict[str, int]) -> list[bool]:
    """Per line: False if the line is inside a branch known to be compiled out.

    ``text`` must already be comment-stripped.  Index 0 is line 1.
    """
    lines = text.split("\n")
    # Join backslash continuations for directive parsing.
    result: list[bool] = []
    # stack of (branch_value, any_previous_branch_taken)
    stack: list[tuple[bool | None, bool | None]] = []
    i = 0
    while i < len(lines):
        line = lines[i]
        span = 1
        while line.endswith("\\") and i + span < len(lines):
            line = line[:-1] + " " + lines[i + span]
            span += 1
        s = line.strip()
        m = re.match(r"#\s*(ifdef|ifndef|if|elif|else|endif)\b(.*)", s)
        if m:
            kind, rest = m.group(1), m.group(2).strip()
            if kind == "ifdef":
                v = eval_condition(f"defined({rest.split()[0]})", config) if rest else None
                stack.append((v, v))
            elif kind == "ifndef":
                v = _not3(eval_condition(f"defined({rest.split()[0]})", config)) if rest else None
                stack.append((v, v))
            elif kind == "if":
                v = eval_condition(rest, config)
                stack.append((v, v))
            elif kind == "elif" and stack:
                _, prev = stack.pop()
                v = _and3(_not3(prev), eval_condition(rest, config))
                stack.append((v, _or3(prev, v)))
            elif kind == "else" and stack:
                _, prev = stack.pop()
                v = _not3(prev)
                stack.append((v, True))
            elif kind == "endif" and stack:
                stack.pop()
            result.extend([True] * span)  # directives themselves don't matter
        else:
            on = all(v is not False for v, _ in stack)
            result.extend([on] * span)
        i += span
    return result


def _match_paren(text: str, open_idx: int) -> int:
    """Index of the ')' matching the '(' at open_idx."""
    depth = 0
    for j in range(open_idx, len(text)):
        c = text[j]
        if c == "(":
            depth += 1
        elif c == ")":
            depth -= 1
            if depth == 0:
                return j
    raise ValueError("unbalanced parentheses")


def split_top_level(s: str) -> list[str]:
    """Split on commas not nested in parentheses/brackets."""
    parts: list[str] = []
    depth = 0
    cur: list[str] = []
    for c in s:
        if c in "([":
            depth += 1
        elif c in ")]":
            depth -= 1
        if c == "," and depth == 0:
            parts.append("".join(cur))
            cur = []
        else:
            cur.append(c)
    parts.append("".join(cur))
    return [p.strip() for p in parts]


def normalize_type(t: str) -> str:
    """Canonical spacing: 'const char __user *const __user *'."""
    t = " ".join(t.split())
    t = re.sub(r"\s*\*\s*", "*", t)
    t = re.sub(r"(?<=[^*\s])\*", " *", t)
    # '* __user *' (kernel style) but keep '*const'.
    t = re.sub(r"\*(?=(?!const\b|volatile\b|restrict\b)[A-Za-z_])", "* ", t)
    return t.strip()


# Words that are never a parameter name when they end a declaration.
_TYPE_KEYWORDS = {
    "void", "char", "short", "int", "long", "signed", "unsigned", "float",
    "double", "_Bool", "bool",
}
# Words that carry no type on their own.
_QUALIFIERS = {"const", "volatile", "__user", "restrict", "__restrict", "__force"}
_TAGS = {"struct", "union", "enum"}


@dataclass(frozen=True)
class Param:
    type: str
    name: str | None


def parse_param(p: str) -> Param:
    """Split one prototype parameter into type and (optional) name."""
    p = " ".join(p.split())
    arr = ""
    m = re.search(r"(\[[^\]]*\])\s*$", p)
    if m:
        arr = m.group(1)
        p = p[: m.start()].rstrip()
    m = re.match(r"^(.*?)([A-Za-z_]\w*)$", p)
    if m and m.group(1).strip():
        type_part, cand = m.group(1).strip(), m.group(2)
        words = re.findall(r"[A-Za-z_]\w*", type_part)
        has_type = any(w not in _QUALIFIERS for w in words) or "*" in type_part
        if (cand not in _TYPE_KEYWORDS and cand not in _QUALIFIERS
                and has_type and (not words or words[-1] not in _TAGS or type_part.endswith("*"))):
            t = normalize_type(type_part)
            return Param(t + (" *" if arr else ""), cand)
    # no name present
    return Param(normalize_type(p) + (" *" if arr else ""), None)


def parse_param_list(s: str) -> list[Param]:
    """Parse the inside of a prototype's parentheses."""
    s = " ".join(s.split())
    if s in ("", "void"):
        return []
    return [parse_param(p) for p in split_top_level(s)]


_PROTO_RE = re.compile(r"\basmlinkage\b[^;{}()]*?\b((?:compat_)?sys_\w+)\s*\(")


@dataclass
class Candidate:
    """One set of arguments for an entry point, with where it came from."""

    func: str
    params: list[Param]
    where: str  # "path:line"
    kind: str  # "prototype" | "define"


def parse_prototypes(text: str, path: str, config: dict[str, int]) -> list[Candidate]:
    """Find ``asmlinkage ... sys_X(...)`` prototypes (possibly multi-line)."""
    text = strip_comments(text)
    act = active_lines(text, config)
    out: list[Candidate] = []
    for m in _PROTO_RE.finditer(text):
        line = text.count("\n", 0, m.start()) + 1
        if not act[line - 1]:
            continue
        open_idx = m.end() - 1
        try:
            close = _match_paren(text, open_idx)
        except ValueError:
            continue
        # Must be a declaration or definition, not a macro body fragment.
        params = parse_param_list(text[open_idx + 1 : close])
        out.append(Candidate(m.group(1), params, f"{path}:{line}", "prototype"))
    return out


_DEFINE_RE = re.compile(r"\b(COMPAT_)?SYSCALL_DEFINE(\d)\s*\(")


def parse_syscall_defines(text: str, path: str, config: dict[str, int]) -> list[Candidate]:
    """Find ``[COMPAT_]SYSCALL_DEFINEn(name, type, arg, ...)`` definitions."""
    text = strip_comments(text)
    act = active_lines(text, config)
    out: list[Candidate] = []
    for m in _DEFINE_RE.finditer(text):
        line = text.count("\n", 0, m.start()) + 1
        if not act[line - 1]:
            continue
        # Skip the macro machinery itself (#define SYSCALL_DEFINE1(name, ...)).
        line_start = text.rfind("\n", 0, m.start()) + 1
        if text[line_start:m.start()].lstrip().startswith("#"):
            continue
        open_idx = m.end() - 1
        try:
            close = _match_paren(text, open_idx)
        except ValueError:
            continue
        parts = split_top_level(text[open_idx + 1 : close])
        n = int(m.group(2))
        name = parts[0]
        if not re.fullmatch(r"[A-Za-z_]\w*", name) or len(parts) != 1 + 2 * n:
            continue
        params = [Param(normalize_type(parts[1 + 2 * k]), parts[2 + 2 * k].strip()) for k in range(n)]
        if any(not re.fullmatch(r"[A-Za-z_]\w*", p.name or "") for p in params):
            continue
        prefix = "compat_sys_" if m.group(1) else "sys_"
        out.append(Candidate(prefix + name, params, f"{path}:{line}", "define"))
    return out


# ---------------------------------------------------------------------------
# Source tree scanning
# ---------------------------------------------------------------------------

# include/asm-generic/syscalls.h is deliberately excluded: x86 does not use it
# (its sys_rt_sigreturn(struct pt_regs *) is wrong for x86).
PROTO_DIRS = ("include/linux", "arch/x86/include")
DEFINE_DIRS = ("kernel", "fs", "mm", "net", "ipc", "security", "block", "io_uring", "arch/x86")
SKIP_PARTS = ("arch/x86/um",)  # User-Mode Linux: different configuration


def _iter_files(src: Path, dirs: Iterable[str], suffix: str) -> Iterator[Path]:
    for d in dirs:
        base = src / d
        if not base.is_dir():
            continue
        for root, _dirs, files in os.walk(base):
            rel_root = os.path.relpath(root, src)
            if any(rel_root == s or rel_root.startswith(s + os.sep) for s in SKIP_PARTS):
                continue
            for f in sorted(files):
                if f.endswith(suffix):
                    yield Path(root) / f


@dataclass
class SourceIndex:
    """All prototype and definition candidates found in a tree, per config."""

    protos: dict[str, list[Candidate]] = field(default_factory=dict)
    defines: dict[str, list[Candidate]] = field(default_factory=dict)


def build_index(src: Path, config: dict[str, int], wanted: set[str]) -> SourceIndex:
    """Scan the tree once for the entry points in ``wanted``."""
    idx = SourceIndex()
    # Cheap pre-filter: skip files that cannot contain prototypes/definitions.
    for path in _iter_files(src, PROTO_DIRS, ".h"):
        text = path.read_text(errors="replace")
        if "asmlinkage" not in text:
            continue
        rel = str(path.relative_to(src))
        for c in parse_prototypes(text, rel, config):
            if c.func in wanted:
                idx.protos.setdefault(c.func, []).append(c)
    for path in _iter_files(src, DEFINE_DIRS, ".c"):
        text = path.read_text(errors="replace")
        if "SYSCALL_DEFINE" not in text:
            continue
        rel = str(path.relative_to(src))
        for c in parse_syscall_defines(text, rel, config):
            if c.func in wanted:
                idx.defines.setdefault(c.func, []).append(c)
    return idx


def _arch_file_penalty(where: str, abi: str) -> int:
    """Prefer arch/x86 files built for this ABI (process_32.c vs _64.c)."""
    path = where.split(":", 1)[0]
    bits = "32" if abi == "i386" else "64"
    other = "64" if bits == "32" else "32"
    if re.search(rf"_{other}\.c$", path):
        return 1
    return 0


def resolve_args(func: str, idx: SourceIndex, abi: str) -> tuple[list[Param] | None, str | None, list[str]]:
    """Pick the argument list for one entry point.

    Returns (params, where, notes).  params is None when nothing was found.
    Policy: header prototype first (as the kernel declares it); unnamed
    prototype parameters borrow names from a same-arity SYSCALL_DEFINE;
    without a prototype use the SYSCALL_DEFINE itself.
    """
    notes: list[str] = []
    protos = idx.protos.get(func, [])
    defines = sorted(idx.defines.get(func, []), key=lambda c: _arch_file_penalty(c.where, abi))
    # De-duplicate identical variants, then report remaining ambiguity.
    def distinct(cands: list[Candidate]) -> list[Candidate]:
        seen: dict[tuple, Candidate] = {}
        for c in cands:
            key = tuple((p.type, p.name) for p in c.params)
            seen.setdefault(key, c)
        return list(seen.values())

    protos_d = distinct(protos)
    defines_d = distinct(defines)
    if len(protos_d) > 1:
        notes.append(f"{func}: {len(protos_d)} differing prototypes, using {protos_d[0].where}")
    if len(defines_d) > 1 and len({len(c.params) for c in defines_d}) > 1:
        notes.append(f"{func}: {len(defines_d)} differing definitions, using {defines_d[0].where}")

    if protos_d:
        proto = protos_d[0]
        params = list(proto.params)
        where = proto.where
        if any(p.name is None for p in params):
            match = next((d for d in defines_d if len(d.params) == len(params)), None)
            if match is not None:
                params = [Param(p.type, p.name or d.name) for p, d in zip(params, match.params)]
                where = f"{proto.where} (names from {match.where})"
            else:
                params = [Param(p.type, p.name or f"arg{i + 1}") for i, p in enumerate(params)]
                notes.append(f"{func}: unnamed prototype parameters, no definition to borrow names from")
        if defines_d and len(defines_d[0].params) != len(params):
            notes.append(
                f"{func}: prototype {proto.where} has {len(params)} args but "
                f"definition {defines_d[0].where} has {len(defines_d[0].params)}"
            )
        return params, where, notes
    if defines_d:
        return list(defines_d[0].params), defines_d[0].where, notes
    return None, None, notes


# ---------------------------------------------------------------------------
# Table assembly
# ---------------------------------------------------------------------------

CALLING_CONVENTIONS = {  # written into each table's JSON for its readers; the facts are the ABI objects'
    name: {
        "instruction": " / ".join(abi.instructions),
        "nr_register": abi.number_register,
        "arg_registers": list(abi.arg_registers),
        "return_register": abi.number_register,
    } for name, abi in ABIS.items()
}


def kernel_version(src: Path, debian_version: str | None) -> str:
    """'6.1.192 (Debian linux-source-6.1 6.1.192-2)' from the top Makefile."""
    vals: dict[str, str] = {}
    for line in (src / "Makefile").read_text().splitlines()[:20]:
        m = re.match(r"^(VERSION|PATCHLEVEL|SUBLEVEL|EXTRAVERSION)\s*=\s*(.*)$", line)
        if m:
            vals[m.group(1)] = m.group(2).strip()
    ver = f"{vals['VERSION']}.{vals['PATCHLEVEL']}.{vals['SUBLEVEL']}{vals.get('EXTRAVERSION', '')}"
    if debian_version:
        return f"{ver} (Debian linux-source-{vals['VERSION']}.{vals['PATCHLEVEL']} {debian_version})"
    return ver


def _detect_debian_version(src: Path) -> str | None:
    """Best effort: a Debian source tree carries debian/changelog.

    The linux-source-X.Y binary package's tarball does not, so pass
    --debian-version explicitly when generating from it.
    """
    cand = src / "debian" / "changelog"
    if cand.exists():
        m = re.match(r"\S+ \(([^)]+)\)", cand.read_text(errors="replace"))
        if m:
            return m.group(1)
    return None


def build_table(abi: str, tbl: list[TblEntry], idx: SourceIndex, version: str,
                source: str) -> tuple[dict, list[str]]:
    """Assemble the JSON document for one ABI."""
    notes: list[str] = []
    entries = []
    for e in tbl:
        assert e.entry is not None
        params, where, n = resolve_args(e.entry, idx, abi)
        notes.extend(n)
        entries.append({
            "nr": e.nr,
            "name": e.name,
            "entry": e.entry,
            "compat_entry": e.compat_entry,
            "args": None if params is None else [{"type": p.type, "name": p.name} for p in params],
            "args_source": where,
        })
    doc = {
        "kernel_version": version,
        "source": source,
        "abi": abi,
        "nr_offset": X32_SYSCALL_BIT if abi == "x32" else 0,
        "calling_convention": CALLING_CONVENTIONS[abi],
        "entries": entries,
    }
    return doc, notes


def dump_table(doc: dict) -> str:
    """JSON with one entry per line: compact, yet diffs stay readable."""
    head = {k: v for k, v in doc.items() if k != "entries"}
    lines = ["{"]
    for k, v in head.items():
        lines.append(f"  {json.dumps(k)}: {json.dumps(v)},")
    lines.append('  "entries": [')
    rows = [json.dumps(e, separators=(", ", ": ")) for e in doc["entries"]]
    lines.append(",\n".join(f"    {r}" for r in rows))
    lines.append("  ]")
    lines.append("}")
    return "\n".join(lines) + "\n"


def generate(src: Path, out_dir: Path, debian_version: str | None) -> dict[str, dict]:
    """Generate all three tables into out_dir; returns the documents."""
    version = kernel_version(src, debian_version or _detect_debian_version(src))
    t64 = parse_tbl((src / TBL_64).read_text())
    t32 = parse_tbl((src / TBL_32).read_text())
    tables = {
        "x86_64": (select_abi(t64, {"common", "64"}), TBL_64),
        "x32": (select_abi(t64, {"common", "x32"}), TBL_64),
        "i386": (select_abi(t32, {"i386"}), TBL_32),
    }
    docs: dict[str, dict] = {}
    out_dir.mkdir(parents=True, exist_ok=True)
    # x32 is built by a 64-bit kernel, so it shares the x86_64 configuration.
    cfg_of = {"x86_64": "x86_64", "x32": "x86_64", "i386": "i386"}
    indexes: dict[str, SourceIndex] = {}
    for cfg_key in sorted(set(cfg_of.values())):
        wanted = {e.entry for abi, (tbl, _) in tables.items() if cfg_of[abi] == cfg_key
                  for e in tbl if e.entry}
        indexes[cfg_key] = build_index(src, CONFIGS[cfg_key], wanted)
    for abi, (tbl, source) in tables.items():
        doc, notes = build_table(abi, tbl, indexes[cfg_of[abi]], version, source)
        docs[abi] = doc
        path = out_dir / f"{abi}.json"
        path.write_text(dump_table(doc))
        with_args = sum(1 for e in doc["entries"] if e["args"])
        no_args = sum(1 for e in doc["entries"] if e["args"] == [])
        unknown = [e["name"] for e in doc["entries"] if e["args"] is None]
        print(f"{abi}: {len(doc['entries'])} entries, max nr {doc['entries'][-1]['nr']}, "
              f"{with_args} with args, {no_args} take no args, {len(unknown)} unresolved"
              + (f": {', '.join(unknown)}" if unknown else ""))
        for n in notes:
            print(f"  note: {n}")
    print(f"kernel_version: {version}")
    return docs


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    ap.add_argument("--src", required=True, type=Path, help="Linux source tree root")
    ap.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "data",
                    help="output directory (default: the package's data/ dir)")
    ap.add_argument("--debian-version", default=None,
                    help="Debian package version to record, e.g. 6.1.192-2")
    args = ap.parse_args(argv)
    generate(args.src, args.out, args.debian_version)
    return 0


if __name__ == "__main__":
    sys.exit(main())
