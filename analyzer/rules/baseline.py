"""Baselines and allowlists, for CI gates that only fail on what is new.

* Baseline: a previous sysscan JSON report (one report or {"reports": [...]}) or a sysscan SARIF file. A finding
  whose fingerprint (rule + function + syscall + order; never an address) is in the baseline for the same binary
  name is "unchanged"; the others are "new". With one report on each side, names need not match (a renamed
  build output is still the same program).
* Allowlist: a YAML file of reviewed, accepted findings, each with a reason:

      accepted:
        - rule: ptrace              # rule id or glob (required)
          binary: my-debugger       # file name or glob (optional)
          function: attach_to_pid   # function name or glob (optional)
          syscall: ptrace           # (optional)
          fingerprint: 3f2a…        # exactly this finding (optional)
          reason: "we are a debugger; reviewed in PR #123"   # required

  A matching finding becomes "accepted" and carries the reason (SARIF: a suppression with a justification).

Findings in the baseline or accepted stay in the report, marked, but are not counted in the summary and never
fail --fail-on.
"""
from __future__ import annotations

import fnmatch
import json
import os
from dataclasses import dataclass

import yaml

from ..errors import BadReport, BadRules
from ..model import Report

MAX_FILE = 64 << 20

ALLOWLIST_SCHEMA = {
    "type": "object",
    "required": ["accepted"],
    "additionalProperties": False,
    "properties": {
        "accepted": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["rule", "reason"],
                "additionalProperties": False,
                "properties": {
                    "rule": {"type": "string", "minLength": 1},
                    "binary": {"type": "string", "minLength": 1},
                    "function": {"type": "string", "minLength": 1},
                    "syscall": {"type": "string", "minLength": 1},
                    "fingerprint": {"type": "string", "pattern": "^[0-9a-f]{8,64}$"},
                    "reason": {"type": "string", "minLength": 3},
                },
            },
        }
    },
}


@dataclass(frozen=True)
class Accepted:
    rule: str
    reason: str
    binary: str | None = None
    function: str | None = None
    syscall: str | None = None
    fingerprint: str | None = None

    def matches(self, binary: str, f) -> bool:
        if not fnmatch.fnmatchcase(f.rule, self.rule):
            return False
        if self.binary is not None and not fnmatch.fnmatchcase(binary, self.binary):
            return False
        if self.function is not None and not fnmatch.fnmatchcase(f.function or "", self.function):
            return False
        if self.syscall is not None and self.syscall not in (f.syscall or "").split(","):
            return False
        if self.fingerprint is not None and not f.fingerprint.startswith(self.fingerprint):
            return False
        return True


def _read(path: str, err) -> str:
    try:
        if os.path.getsize(path) > MAX_FILE:
            raise err(path, f"larger than {MAX_FILE >> 20} MB")
        with open(path, encoding="utf-8") as fh:
            return fh.read()
    except FileNotFoundError:
        raise err(path, "no such file") from None
    except IsADirectoryError:
        raise err(path, "is a directory") from None
    except (OSError, UnicodeDecodeError) as e:
        raise err(path, f"cannot read: {getattr(e, 'strerror', None) or e}") from None


def load_baseline(path: str) -> dict[str, set[str]]:
    """Binary name -> fingerprints of its findings. Raises BadReport (exit 9) for anything unreadable."""
    try:
        data = json.loads(_read(path, BadReport))
    except json.JSONDecodeError as e:
        raise BadReport(path, f"baseline is not JSON: {e}") from None
    out: dict[str, set[str]] = {}
    try:
        if isinstance(data, dict) and "runs" in data:  # a sysscan SARIF file
            for run in data["runs"]:
                arts = run.get("artifacts", [])
                for res in run.get("results", []):
                    loc = res["locations"][0]["physicalLocation"]["artifactLocation"]
                    idx = loc.get("index")
                    uri = arts[idx]["location"]["uri"] if idx is not None and idx < len(arts) else loc["uri"]
                    fp = (res.get("partialFingerprints") or {}).get("sysscanFinding/v1")
                    if fp:
                        out.setdefault(os.path.basename(uri), set()).add(fp)
                for art in arts:
                    out.setdefault(os.path.basename(art["location"]["uri"]), set())
            return out
        items = data["reports"] if isinstance(data, dict) and "reports" in data else [data]
        for d in items:
            name = d["binary"]["name"]
            out.setdefault(name, set()).update(f["fingerprint"] for f in d.get("findings", []) if f.get("fingerprint"))
    except (KeyError, TypeError, IndexError, AttributeError) as e:
        raise BadReport(path, f"not a sysscan report or SARIF file (missing {e})") from None
    return out


def load_allowlist(path: str) -> list[Accepted]:
    """The accepted findings. Raises BadRules (exit 8): the allowlist is review configuration, like rules."""
    from .loader import _StrictLoader

    text = _read(path, BadRules)
    try:
        doc = yaml.load(text, Loader=_StrictLoader)  # noqa: S506 - a SafeLoader without aliases
    except yaml.YAMLError as e:
        raise BadRules(path, f"allowlist is not valid YAML: {' '.join(str(e).split())}") from None
    import jsonschema

    errors = list(jsonschema.Draft7Validator(ALLOWLIST_SCHEMA).iter_errors(doc))
    if errors:
        best = jsonschema.exceptions.best_match(errors)
        where = "/".join(str(p) for p in best.absolute_path) or "(top)"
        raise BadRules(path, f"allowlist does not match its schema at {where}: {best.message[:200]}")
    return [Accepted(**e) for e in doc["accepted"]]


def apply(reports: list[Report], baseline: dict[str, set[str]] | None,
          allowlist: list[Accepted] | None) -> list[Accepted]:
    """Mark every finding new / unchanged / accepted in place; returns the allowlist entries that matched nothing."""
    used: set[int] = set()
    for rep in reports:
        known: set[str] | None = None
        if baseline is not None:
            known = baseline.get(rep.binary.name)
            if known is None and len(baseline) == 1 and len(reports) == 1:
                known = next(iter(baseline.values()))
            known = known or set()
        for f in rep.findings:
            f.baseline, f.justification = None, None
            if known is not None:
                f.baseline = "unchanged" if f.fingerprint in known else "new"
            for i, a in enumerate(allowlist or []):
                if a.matches(rep.binary.name, f):
                    used.add(i)
                    if f.baseline != "unchanged":
                        f.baseline, f.justification = "accepted", a.reason
                    break
    return [a for i, a in enumerate(allowlist or []) if i not in used]
