"""SARIF 2.1.0 for GitHub code scanning and other SARIF viewers. Valid against the official schema
(tests/test_render_sarif.py validates every sample), one run for all the binaries of an invocation.

GitHub specifics (docs "SARIF support for code scanning"):
* every result has ruleId, level, message.text and one location with physicalLocation.artifactLocation (the
  binary, relative to the working directory, uriBaseId %SRCROOT%) and region.startLine (a binary has no lines:
  always 1; the instruction itself is in `address` and in properties: virtual address, file offset); when the
  binary has DWARF line info (Site.source), the location is the source file and line instead, and the binary
  location becomes a related location;
* `partialFingerprints.primaryLocationLineHash` is sysscan's own fingerprint (rule + function + syscall + order,
  never an address), so alerts survive rebuilds; upload-sarif then does not try to hash "lines" of a binary;
* rules carry `properties.security-severity` and `tags` (security, external/cwe/cwe-N) and a default level.

Strings from the binary only ever appear as JSON strings (message.text, logical location names); results carry
no `message.markdown`, so nothing from the binary is interpreted as Markdown.
"""
from __future__ import annotations

import json
import os
from urllib.parse import quote

from .. import __url__, __version__
from ..model import Finding, Report
from .common import SARIF_LEVEL, SECURITY_SEVERITY, sorted_findings

SCHEMA_URI = "https://json.schemastore.org/sarif-2.1.0.json"
FINGERPRINT_KEY = "sysscanFinding/v1"


def artifact_uri(path: str) -> tuple[str, str | None]:
    """(uri, uriBaseId): relative to the working directory when the binary is under it, else a file: URI."""
    p = path
    if os.path.isabs(p):
        try:
            rel = os.path.relpath(p)
        except ValueError:
            rel = None
        if rel is not None and not rel.startswith(".."):
            p = rel
        else:
            return "file://" + quote(os.path.normpath(p)), None
    p = os.path.normpath(p).replace(os.sep, "/")
    return quote(p), "%SRCROOT%"


def _rule_catalogue(reports: list[Report], rules) -> list[dict]:
    """reportingDescriptors: every rule that was run (when known) plus any rule id seen in a finding."""
    out: dict[str, dict] = {}
    for r in rules or []:
        out[r.id] = _descriptor(r.id, r.name, r.severity, r.description, list(r.tags), list(r.cwe),
                                list(r.attack), list(r.references))
    for rep in reports:
        for f in rep.findings:
            if f.rule not in out:
                out[f.rule] = _descriptor(f.rule, f.name, f.severity, f.name, list(f.tags), [], [],
                                          list(f.references))
    return [out[k] for k in sorted(out)]


def _descriptor(rid: str, name: str, severity: str, description: str, tags: list[str], cwe: list[int],
                attack: list[str], references: list[str]) -> dict:
    cwe = cwe or [int(r[4:]) for r in references if r.startswith("CWE-") and r[4:].isdigit()]
    gh_tags = ["security", *tags, *[f"external/cwe/cwe-{c}" for c in cwe],
               *[f"external/attack/{t.lower()}" for t in attack]]
    help_lines = [description, "", f"Severity: {severity}."]
    if cwe:
        help_lines.append("CWE: " + ", ".join(f"CWE-{c}" for c in cwe) + ".")
    if attack:
        help_lines.append("MITRE ATT&CK: " + ", ".join(attack) + ".")
    refs = [r for r in references if not r.startswith("CWE-") and not r.startswith("ATT&CK ")]
    if refs:
        help_lines.append("References: " + "; ".join(refs) + ".")
    d = {
        "id": rid,
        "name": _rule_name(rid),
        "shortDescription": {"text": name},
        "fullDescription": {"text": description},
        "help": {"text": "\n".join(help_lines)},
        "defaultConfiguration": {"level": SARIF_LEVEL.get(severity, "warning")},
        "properties": {"tags": list(dict.fromkeys(gh_tags)), "security-severity": SECURITY_SEVERITY.get(severity,
                                                                                                      "5.0"),
                       "precision": "high", "severity": severity},
    }
    urls = [r for r in references if "://" in r]
    for r in urls[:1]:
        d["helpUri"] = r[r.index("http"):] if "http" in r else r
    return d


def _rule_name(rid: str) -> str:
    """SARIF wants `name` to be a readable identifier that differs from the opaque `id` (multitool SARIF1001,
    compared without case): PascalCase of the id, with "Uses" before a one-word id ("bpf" -> "UsesBpf")."""
    words = [w for w in rid.replace("_", "-").split("-") if w]
    name = "".join(w.capitalize() for w in words)
    return name if name.lower() != rid.lower() else "Uses" + name


def _result(f: Finding, rep: Report, artifact_index: int, rule_index: dict[str, int]) -> dict:
    uri, base = artifact_uri(rep.binary.path)
    art = {"uri": uri, "index": artifact_index}
    if base:
        art["uriBaseId"] = base
    site = next((s for s in rep.sites if s.address == f.site), None) if f.site is not None else None
    phys: dict = {"artifactLocation": art, "region": {"startLine": 1}}
    loc: dict = {"physicalLocation": phys}
    props: dict = {"severity": f.severity, "binary": rep.binary.name, "sha256": rep.binary.sha256}
    if site is not None:
        delta = site.address - site.function_address
        fq = f"{rep.binary.name}!{site.function}+{delta:#x}" if site.function else f"{rep.binary.name}!{site.address:#x}"
        phys["address"] = {"absoluteAddress": site.address, "length": max(1, len(site.bytes) // 2),
                           "kind": "instruction", "name": site.function or f"{site.address:#x}",
                           "fullyQualifiedName": fq}
        loc["logicalLocations"] = [{"name": site.function or f"{site.address:#x}", "kind": "function",
                                    "fullyQualifiedName": f"{rep.binary.name}!{site.function or hex(site.address)}"}]
        loc["message"] = {"text": f"{site.instruction} at {site.address:#x} (file offset {site.offset:#x}, "
                                  f"section {site.section})"}
        props.update(address=f"{site.address:#x}", fileOffset=f"{site.offset:#x}", instruction=site.instruction,
                     abi=site.abi)
    if f.syscall:
        props["syscall"] = f.syscall
    res: dict = {
        "ruleId": f.rule,
        "ruleIndex": rule_index[f.rule],
        "level": SARIF_LEVEL.get(f.severity, "warning"),
        "kind": "fail",
        "message": {"text": f.message},
        "locations": [loc],
        "partialFingerprints": {"primaryLocationLineHash": f.fingerprint, FINGERPRINT_KEY: f.fingerprint},
        "properties": props,
    }
    if site is not None and site.source:
        # built with -g: the primary location is the source line (GitHub shows the alert there); the binary
        # location, with the instruction's address, becomes a related location
        file, _, line = site.source.rpartition(":")
        suri, sbase = artifact_uri(file)
        src_art = {"uri": suri, **({"uriBaseId": sbase} if sbase else {})}
        res["locations"] = [{"physicalLocation": {"artifactLocation": src_art,
                                                  "region": {"startLine": int(line) if line.isdigit() else 1}},
                             "logicalLocations": loc["logicalLocations"], "message": loc["message"]}]
        res["relatedLocations"] = [{"id": 1, **loc}]
        props["source"] = site.source
    if f.baseline:
        res["baselineState"] = "unchanged" if f.baseline == "unchanged" else "new"
    if f.baseline == "accepted":
        res["suppressions"] = [{"kind": "external", "status": "accepted",
                                "justification": f.justification or "accepted in the allowlist"}]
    return res


def render_many(reports: list[Report], opts: dict) -> str:
    rules = opts.get("rules")
    catalogue = _rule_catalogue(reports, rules)
    rule_index = {d["id"]: i for i, d in enumerate(catalogue)}
    artifacts, results, notes = [], [], []
    for i, rep in enumerate(reports):
        uri, base = artifact_uri(rep.binary.path)
        loc = {"uri": uri}
        if base:
            loc["uriBaseId"] = base
        artifacts.append({
            "location": loc, "length": rep.binary.size, "roles": ["analysisTarget"],
            "mimeType": "application/x-executable", "hashes": {"sha-256": rep.binary.sha256},
            "properties": {"arch": rep.binary.arch, "elfType": rep.binary.elf_type, "static": rep.binary.static,
                           "stripped": rep.binary.stripped, "buildId": rep.binary.build_id,
                           "sites": rep.summary.sites, "resolved": rep.summary.resolved,
                           "partial": rep.summary.partial, "unresolved": rep.summary.unresolved,
                           "syscalls": rep.summary.syscalls, "table": rep.table.source,
                           "kernel": rep.table.kernel_version},
        })
        for f in sorted_findings(rep.findings):
            results.append(_result(f, rep, i, rule_index))
        for msg in rep.incomplete:
            notes.append({"level": "warning", "message": {"text": f"{rep.binary.name}: incomplete: {msg}"},
                          "locations": [{"physicalLocation": {"artifactLocation": {"index": i, "uri": uri,
                                                                                   **({"uriBaseId": base}
                                                                                      if base else {})}}}]})
    doc = {
        "$schema": SCHEMA_URI,
        "version": "2.1.0",
        "runs": [{
            "tool": {"driver": {"name": "sysscan", "version": __version__, "semanticVersion": __version__,
                                "informationUri": __url__, "rules": catalogue}},
            "automationDetails": {"id": "sysscan/"},
            "invocations": [{"executionSuccessful": True, "toolExecutionNotifications": notes}],
            "artifacts": artifacts,
            "results": results,
            "properties": {"sysscanVersion": __version__,
                           "baseline": any(f.baseline for rep in reports for f in rep.findings)},
        }],
    }
    return json.dumps(doc, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def render(report: Report, opts: dict) -> str:
    return render_many([report], opts)
