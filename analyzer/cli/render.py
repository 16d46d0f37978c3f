"""`sysscan render REPORT.json`: a saved report rendered again, without re-analysing."""
from __future__ import annotations

import argparse
import json
from collections.abc import Sequence

from ..errors import BadReport
from ..model import Report
from ..textsafe import terminal_safe
from .args import add_output_args, emit_reports

_REPORT_SCHEMA = None


def _parser() -> argparse.ArgumentParser:
    from .rules import add_rule_args  # saved findings are kept unless rule options are given

    p = argparse.ArgumentParser(prog="sysscan render", description="Render a saved JSON report again.")
    p.add_argument("report", metavar="REPORT.json")
    add_rule_args(p)
    add_output_args(p)
    return p


def check_saved_report(doc) -> None:
    """Validate one saved report against analyzer/schemas/report.schema.json; ValueError naming the first problem."""
    import importlib.resources

    import jsonschema

    global _REPORT_SCHEMA
    if _REPORT_SCHEMA is None:
        text = importlib.resources.files("analyzer").joinpath("schemas/report.schema.json").read_text("utf-8")
        _REPORT_SCHEMA = jsonschema.Draft7Validator(json.loads(text))
    err = jsonschema.exceptions.best_match(_REPORT_SCHEMA.iter_errors(doc))
    if err is not None:
        where = "/".join(str(p) for p in err.absolute_path) or "top level"
        raise ValueError(f"does not match the report schema at {where}: {err.message[:200]}")


def document_from_cli(path: str):
    """The saved JSON document (BadReport, exit 9, when it is not JSON)."""
    try:
        with open(path, encoding="utf-8") as fh:
            return json.load(fh)
    except FileNotFoundError:
        raise BadReport(path, "no such file") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, RecursionError) as e:
        raise BadReport(path, f"not a JSON report: {type(e).__name__}: {str(e)[:200]}") from None


def reports_from_cli(path: str, data) -> list[Report]:
    """The reports of a saved document, each checked against the schema first (BadReport, exit 9)."""
    try:
        items = data["reports"] if isinstance(data, dict) and "reports" in data else [data]
        if not isinstance(items, list):
            raise TypeError("'reports' is not a list")
        for d in items:  # a saved report is untrusted input too (an artifact from a fork): the schema first
            check_saved_report(d)
        # strings in a saved report reach terminals and files: no control or bidi characters (names from the
        # binary were escaped when it was scanned; this holds for reports sysscan did not write)
        return [terminal_safe(Report.from_dict(d), keep_whitespace=True) for d in items]
    except (ValueError, KeyError, TypeError, AttributeError, RecursionError) as e:
        raise BadReport(path, f"not a sysscan report: {str(e)[:300]}") from None


def cmd_render(argv: Sequence[str]) -> int:
    args = _parser().parse_args(argv)
    data = document_from_cli(args.report)
    reports = reports_from_cli(args.report, data)
    many = None
    if isinstance(data, dict) and "reports" in data:  # a multi-report document: its union is recomputed
        from ..aggregate import saved_lists

        many = saved_lists(data)
    from .rules import finish  # rules stage (only if rule options are given), baseline/allowlist, the gate

    return finish(reports, args, lambda reps, ruleset: emit_reports(reps, args, ruleset, many))
