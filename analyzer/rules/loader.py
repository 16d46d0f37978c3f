"""Read rule files safely: YAML through a SafeLoader that also refuses anchors/aliases and duplicate keys, a size
and depth limit, JSON Schema validation, then compilation into the engine's node tree. Rules are data: nothing in
a rule file is ever executed or used as a format string.
"""
from __future__ import annotations

import fnmatch
import hashlib
import json
import os
from dataclasses import dataclass, field
from importlib import resources

import yaml

from ..errors import BadRules
from . import engine
from .constants import CONSTANTS
from .schema import RULE_SCHEMA

MAX_RULE_BYTES = 256 * 1024
MAX_DEPTH = 32
RULE_SUFFIXES = (".yml", ".yaml")


class RuleError(BadRules):
    """A rule file that cannot be read, parsed, validated or compiled (exit code 8)."""


class _StrictLoader(yaml.SafeLoader):
    """SafeLoader (no Python objects) without aliases (no billion-laughs) and without duplicate keys."""

    def compose_node(self, parent, index):  # type: ignore[override]
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()
            raise yaml.composer.ComposerError(None, None, "anchors and aliases are not allowed in rule files",
                                              event.start_mark)
        return super().compose_node(parent, index)

    def construct_mapping(self, node, deep=False):  # type: ignore[override]
        seen = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise yaml.constructor.ConstructorError(None, None, f"duplicate key {key!r}", key_node.start_mark)
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


@dataclass(frozen=True)
class Rule:
    id: str
    name: str
    severity: str
    scope: str
    description: str
    match: "engine.Node"
    tags: tuple[str, ...] = ()
    references: tuple[str, ...] = ()
    cwe: tuple[int, ...] = ()
    attack: tuple[str, ...] = ()
    message: str | None = None
    surface: bool = False  # a site rule that also runs on the program surface (syscalls reachable via libraries)
    examples: dict = field(default_factory=dict, compare=False, hash=False)
    path: str = ""
    source: str = "shipped"  # "shipped" | the --rules directory it came from
    raw: dict = field(default_factory=dict, compare=False, hash=False)


@dataclass
class RuleSet:
    rules: list[Rule]

    def __iter__(self):
        return iter(self.rules)

    def __len__(self) -> int:
        return len(self.rules)

    def by_id(self, rule_id: str) -> Rule | None:
        return next((r for r in self.rules if r.id == rule_id), None)

    @property
    def digest(self) -> str:
        """Identifies the rule set's content (for caches and for the report)."""
        h = hashlib.sha256()
        for r in sorted(self.rules, key=lambda r: r.id):
            h.update(json.dumps(r.raw, sort_keys=True).encode())
        return h.hexdigest()

    def select(self, select: list[str] | None = None, ignore: list[str] | None = None) -> "RuleSet":
        """Keep rules matching any `select` spec, then drop those matching any `ignore` spec. A spec is a rule id,
        an id glob (`ptrace*`), `tag:NAME`, or `severity:LEVEL+` (that level and above)."""
        rules = self.rules
        if select:
            unknown = [s for s in select if not any(_spec_matches(s, r) for r in self.rules)]
            if unknown:
                raise RuleError(None, f"--select {', '.join(unknown)}: no rule matches (ids: "
                                      f"{', '.join(r.id for r in self.rules[:8])}, ...)")
            rules = [r for r in rules if any(_spec_matches(s, r) for s in select)]
        if ignore:
            rules = [r for r in rules if not any(_spec_matches(s, r) for s in ignore)]
        return RuleSet(rules)


def _spec_matches(spec: str, rule: Rule) -> bool:
    from .engine import SEVERITY_RANK

    spec = spec.strip()
    if spec.startswith("tag:"):
        return spec[4:] in rule.tags
    if spec.startswith("severity:"):
        want = spec[9:].rstrip("+")
        if want not in SEVERITY_RANK:
            raise RuleError(None, f"unknown severity in {spec!r}")
        if spec.endswith("+"):
            return SEVERITY_RANK[rule.severity] >= SEVERITY_RANK[want]
        return rule.severity == want
    return fnmatch.fnmatchcase(rule.id, spec)


def default_rules_dir() -> str:
    """The shipped rules: the package analyzer.rules_data (mapped onto the top-level rules/ directory)."""
    try:
        return str(resources.files("analyzer.rules_data"))
    except ModuleNotFoundError:  # running from a source tree that was not installed
        here = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
        return os.path.join(here, "rules")


def rule_files(path: str) -> list[str]:
    if os.path.isfile(path):
        return [path]
    if not os.path.isdir(path):
        raise RuleError(path, "no such rule file or directory")
    out = []
    for root, dirs, files in os.walk(path):
        dirs.sort()
        out += [os.path.join(root, f) for f in sorted(files) if f.endswith(RULE_SUFFIXES)]
    return out


def parse_rule_text(text: str, path: str = "<rule>") -> dict:
    from ..cache import derived_get, derived_put  # a validated document is kept by the text's sha256: warm runs

    cached = derived_get("rule", text)  # skip YAML and JSON Schema (~0.2 s for the shipped rules)
    if isinstance(cached, dict):
        return cached
    doc = _parse_and_validate(text, path)
    try:
        if json.loads(json.dumps(doc)) == doc:  # only what survives JSON unchanged
            derived_put("rule", text, doc)
    except (TypeError, ValueError):
        pass
    return doc


def _parse_and_validate(text: str, path: str) -> dict:
    try:
        doc = yaml.load(text, Loader=_StrictLoader)  # noqa: S506 - _StrictLoader is a SafeLoader
    except yaml.YAMLError as e:
        raise RuleError(path, f"not valid YAML: {' '.join(str(e).split())}") from None
    _check_depth(doc, path)
    import jsonschema

    validator = jsonschema.Draft7Validator(RULE_SCHEMA)
    errors = sorted(validator.iter_errors(doc), key=lambda e: list(e.absolute_path))
    if errors:
        e = min(errors, key=lambda e: len(list(e.absolute_path)))
        best = jsonschema.exceptions.best_match(errors) or e
        where = "/".join(str(p) for p in best.absolute_path) or "(top)"
        raise RuleError(path, f"does not match the rule schema at {where}: {_short(best.message)}")
    return doc


def _short(msg: str, n: int = 200) -> str:
    msg = " ".join(msg.split())
    return msg if len(msg) <= n else msg[: n - 1] + "…"


def _check_depth(obj, path: str, depth: int = 0) -> None:
    if depth > MAX_DEPTH * 2:
        raise RuleError(path, f"nested deeper than {MAX_DEPTH} expressions")
    if isinstance(obj, dict):
        for v in obj.values():
            _check_depth(v, path, depth + 1)
    elif isinstance(obj, list):
        for v in obj:
            _check_depth(v, path, depth + 1)


def load_rule_file(path: str, source: str = "shipped") -> Rule:
    try:
        size = os.path.getsize(path)
        if size > MAX_RULE_BYTES:
            raise RuleError(path, f"rule file is {size} bytes (limit {MAX_RULE_BYTES})")
        with open(path, "rb") as fh:
            data = fh.read(MAX_RULE_BYTES + 1)
        text = data.decode("utf-8")
    except OSError as e:
        raise RuleError(path, f"cannot read: {e.strerror or e}") from None
    except UnicodeDecodeError:
        raise RuleError(path, "not UTF-8 text") from None
    return compile_rule(parse_rule_text(text, path), path, source)


def compile_rule(doc: dict, path: str = "<rule>", source: str = "shipped") -> Rule:
    meta = doc["rule"]["meta"]
    scope = meta["scope"]
    try:
        node = engine.compile_expr(doc["rule"]["match"], scope, CONSTANTS)
    except engine.CompileError as e:
        raise RuleError(path, f"rule {meta['id']}: {e}") from None
    refs = list(meta.get("references", []))
    return Rule(
        id=meta["id"], name=meta["name"], severity=meta["severity"], scope=scope,
        description=" ".join(meta["description"].split()), match=node, tags=tuple(meta.get("tags", [])),
        references=tuple(refs), cwe=tuple(meta.get("cwe", [])), attack=tuple(meta.get("attack", [])),
        message=meta.get("message"), surface=bool(meta.get("surface", False)), examples=meta["examples"],
        path=path, source=source, raw=doc,
    )


def load_rules(paths: list[str] | None = None, *, default: bool = True) -> RuleSet:
    """The shipped rules (unless default=False), then each path (file or directory) in order. A rule whose id is
    already loaded from an earlier source replaces it; two rules with one id in the same source are an error."""
    rules: dict[str, Rule] = {}
    sources = ([(default_rules_dir(), "shipped")] if default else []) + [(p, p) for p in (paths or [])]
    for where, label in sources:
        seen: dict[str, str] = {}
        files = rule_files(where)
        if label != "shipped" and not files:
            raise RuleError(where, "no rule files (*.yml, *.yaml) found")
        for f in files:
            r = load_rule_file(f, label)
            if r.id in seen:
                raise RuleError(f, f"duplicate rule id {r.id!r} (also in {seen[r.id]})")
            seen[r.id] = f
            rules[r.id] = r
    return RuleSet(sorted(rules.values(), key=lambda r: r.id))
