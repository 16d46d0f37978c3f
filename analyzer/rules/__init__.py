"""Rules: YAML rule files (the shipped ones live in the top-level rules/ directory, packaged as
analyzer.rules_data), a safe loader, a pure evaluation engine, a linter, and baselines/allowlists for CI.

    from analyzer.rules import load_rules, evaluate
    findings = evaluate(report, load_rules())      # report in, findings out; nothing else is touched

The rule language is documented in docs/rules.md; its JSON Schema is analyzer/rules/schema.py.
"""
from __future__ import annotations

import functools

from .engine import SEVERITY_RANK, evaluate
from .loader import Rule, RuleError, RuleSet, default_rules_dir, load_rule_file, load_rules
from .schema import SEVERITIES

__all__ = ["SEVERITIES", "SEVERITY_RANK", "Rule", "RuleError", "RuleSet", "apply_rules", "default_rules_dir",
           "evaluate", "load_rule_file", "load_rules", "shipped_rules"]


@functools.lru_cache(maxsize=1)
def shipped_rules() -> RuleSet:
    """The rules shipped with sysscan, loaded once per process."""
    return load_rules()


def apply_rules(report, ruleset: RuleSet | None = None) -> None:
    """The rules stage, in place: report.findings from `ruleset` (None: the shipped rules), then the summary."""
    from ..model import summarize_report

    report.findings = evaluate(report, shipped_rules() if ruleset is None else ruleset)
    summarize_report(report)
