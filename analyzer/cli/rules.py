"""The rules side of the command line: options, the rule selection (handed to the pipeline, which owns the rules
stage), baseline/allowlist marking, the --fail-on gate, and the `sysscan rules` subcommand.

Exit codes: 0 no finding at or above --fail-on (default: never fail), 1 findings at or above it, 8 bad rule or
allowlist file, 9 bad baseline; the other codes are the scan's (README, "Exit codes").
"""
from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from ..errors import UsageError
from ..rules.engine import SEVERITY_RANK
from ..rules.schema import SEVERITIES

FAIL_ON = ("never", *SEVERITIES)


def _csv(text: str) -> list[str]:
    return [t.strip() for t in text.split(",") if t.strip()]


def add_rule_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("rules and CI gate")
    g.add_argument("--rules", action="append", metavar="PATH", default=None,
                   help="extra rule file or directory (repeatable); a rule with a shipped id replaces it")
    g.add_argument("--no-default-rules", action="store_true", help="do not load the shipped rules")
    g.add_argument("--select", action="append", type=_csv, metavar="SPEC", default=None,
                   help="only these rules: ids, id globs, tag:NAME, severity:LEVEL+ (comma separated, repeatable)")
    g.add_argument("--ignore", action="append", type=_csv, metavar="SPEC", default=None,
                   help="drop these rules (same syntax as --select)")
    g.add_argument("--fail-on", choices=FAIL_ON, default="never",
                   help="exit 1 when a finding at or above this severity is reported (not in the baseline, not "
                        "accepted); default: never")
    g.add_argument("--baseline", metavar="OLD.json",
                   help="a previous JSON report (or sysscan SARIF): its findings are 'unchanged' and do not gate")
    g.add_argument("--allowlist", metavar="FILE.yml", help="accepted findings, each with a reason (see docs)")


def _flatten(x: list[list[str]] | None) -> list[str] | None:
    return None if not x else [s for group in x for s in group]


def ruleset_from_cli(args: argparse.Namespace):
    """The selected rules (BadRules, exit 8): the shipped ones, plus --rules, less --no-default-rules, filtered by
    --select/--ignore."""
    from ..rules import RuleSet, load_rules, shipped_rules

    if getattr(args, "rules", None) or getattr(args, "no_default_rules", False):
        rs = load_rules(args.rules or [], default=not args.no_default_rules)
    else:
        rs = shipped_rules()
    sel, ign = _flatten(getattr(args, "select", None)), _flatten(getattr(args, "ignore", None))
    if sel or ign:
        rs = rs.select(sel, ign)
    return rs if isinstance(rs, RuleSet) else RuleSet(list(rs))


def rules_asked(args: argparse.Namespace) -> bool:
    return bool(getattr(args, "rules", None) or getattr(args, "no_default_rules", False) or
                getattr(args, "select", None) or getattr(args, "ignore", None))


def finish(reports: list, args: argparse.Namespace, emit, ruleset=None) -> int:
    """After scanning (or loading saved reports): baseline, allowlist, output, then the exit code.

    `ruleset`: the rules the scan's pipeline already ran. Without it (`sysscan render`) the saved findings are
    kept, unless rule options are given: then the selected rules run on the saved reports."""
    from ..model import summarize_report
    from ..rules import apply_rules
    from ..rules.baseline import apply, load_allowlist, load_baseline

    if ruleset is None and rules_asked(args):
        ruleset = ruleset_from_cli(args)
        for r in reports:
            apply_rules(r, ruleset)
    baseline = load_baseline(args.baseline) if getattr(args, "baseline", None) else None
    allow = load_allowlist(args.allowlist) if getattr(args, "allowlist", None) else None
    if baseline is not None or allow is not None:
        unused = apply(reports, baseline, allow)
        for r in reports:
            summarize_report(r)
        if unused and not getattr(args, "quiet", False):
            for a in unused:
                print(f"sysscan: note: allowlist entry for rule {a.rule!r} matched no finding", file=sys.stderr)
    emit(reports, ruleset)
    return gate(reports, getattr(args, "fail_on", "never"))


def gate(reports: list, fail_on: str) -> int:
    if fail_on == "never":
        return 0
    if fail_on not in SEVERITY_RANK:
        raise UsageError(None, f"--fail-on {fail_on}: choose from {', '.join(FAIL_ON)}")
    floor = SEVERITY_RANK[fail_on]
    for r in reports:
        for f in r.findings:
            if f.baseline not in ("unchanged", "accepted") and SEVERITY_RANK.get(f.severity, 0) >= floor:
                return 1
    return 0


# ---- sysscan rules ... --------------------------------------------------------------------------------------------

def cmd_rules(argv: Sequence[str]) -> int:
    p = argparse.ArgumentParser(prog="sysscan rules", description="Work with the YAML rules.")
    sub = p.add_subparsers(dest="action", required=True)
    lint_p = sub.add_parser("lint", help="validate rule files and run every rule on its examples")
    lint_p.add_argument("paths", nargs="*", metavar="PATH", help="rule files or directories (default: shipped)")
    lint_p.add_argument("--corpus", metavar="DIR", help="where example files are (default: ./corpus)")
    lint_p.add_argument("--no-examples", action="store_true", help="only parse and validate")
    lint_p.add_argument("-v", "--verbose", action="store_true", help="list every example that passed")
    list_p = sub.add_parser("list", help="the rules that would run")
    list_p.add_argument("--rules", action="append", metavar="PATH", default=None)
    list_p.add_argument("--no-default-rules", action="store_true")
    list_p.add_argument("--select", action="append", type=_csv, metavar="SPEC", default=None)
    list_p.add_argument("--ignore", action="append", type=_csv, metavar="SPEC", default=None)
    args = p.parse_args(list(argv))
    if args.action == "lint":
        from ..errors import BadRules
        from ..rules import RuleSet
        from ..rules.lint import format_result, lint
        from ..run.pipeline import ScanOptions, scan_file

        def scan(path: str):  # each example binary as the pipeline sees it, without findings
            return scan_file(path, ScanOptions(rules=RuleSet([])))

        res = lint(args.paths or None, corpus=args.corpus, examples=not args.no_examples, scan=scan)
        sys.stdout.write(format_result(res, args.verbose))
        if not res.ok:
            raise BadRules(None, f"rules lint: {len(res.problems)} problem(s)")
        return 0
    rs = ruleset_from_cli(args)
    for r in rs:
        print(f"{r.id:32} {r.severity:8} {r.scope:6} {','.join(r.tags):40} {r.name}")
    print(f"{len(rs)} rules")
    return 0
