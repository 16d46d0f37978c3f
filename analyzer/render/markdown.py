"""Markdown for a pull-request comment (GitHub-flavoured): a summary, the findings grouped by severity, then the
sites table in a collapsed <details>.

Everything that comes from the binary (function and section names, strings, messages that quote them) goes into
code spans: GitHub does not interpret Markdown, HTML, @mentions, #references or autolinks inside them. Table
cells also escape `|`. Our own text (rule names) is backslash-escaped.
"""
from __future__ import annotations

import re

from .. import __version__
from ..model import Report
from .common import (SEVERITIES, args_text, binary_line, gating, severity_counts, sorted_findings, summary_line,
                     syscall_text)

MAX_SITES = 200
_PUNCT = re.compile(r"([\\`*_\[\]|~#])")


def text(s: str) -> str:
    """Escape our own prose: Markdown punctuation backslash-escaped, HTML-significant characters as entities,
    @ and newlines neutralised."""
    s = " ".join(str(s).split())
    s = s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    s = _PUNCT.sub(r"\\\1", s)
    return s.replace("@", "&#64;")


def code(s: str, table: bool = True) -> str:
    """A code span holding `s` literally (binary-derived text). The fence is longer than any backtick run
    inside; control characters and newlines become spaces / escapes; in a table `|` is escaped."""
    s = str(s)
    s = "".join(ch if ch >= " " and ch != "\x7f" else f"\\x{ord(ch):02x}" for ch in s)
    if not s:
        return "` `"
    longest = max((len(m) for m in re.findall(r"`+", s)), default=0)
    fence = "`" * (longest + 1)
    if s.startswith("`") or s.endswith("`") or s.startswith(" ") or s.endswith(" "):
        s = f" {s} "
    if table:
        s = s.replace("|", "\\|")
    return f"{fence}{s}{fence}"


def _report(report: Report, opts: dict, heading: str = "##") -> list[str]:
    b = report.binary
    fs = sorted_findings(report.findings)
    live = [f for f in fs if gating(f)]
    counts = severity_counts(fs)
    shown = ", ".join(f"{n} {s}" for s, n in counts.items() if n) or "none"
    out = [f"{heading} sysscan: {code(b.name, False)} — {len(live)} finding{'s' * (len(live) != 1)} ({shown})", ""]
    out.append(f"- **binary**: {code(b.path, False)} — {text(binary_line(report))}")
    out.append(f"- **sha256**: `{b.sha256}`" + (f" · **build-id**: `{b.build_id}`" if b.build_id else ""))
    if b.debug_file:
        out.append(f"- **symbols**: from {code(b.debug_file, False)}")
    out.append(f"- **sites**: {text(summary_line(report))}")
    kv = report.table.kernel_version
    out.append(f"- **syscall table**: {text(report.table.source)} (kernel {code(kv, False)})")
    if report.kernel:
        out.append(f"- **kernel**: {code(str(report.kernel.get('version') or report.kernel.get('path', '')), False)}")
    out.append(f"- **tool**: sysscan {text(report.tool.get('version', __version__))}")
    out.append("")

    out.append(f"{heading}# Findings")
    out.append("")
    if not live:
        out.append("No findings" + (" (all are in the baseline or the allowlist)." if fs else "."))
        out.append("")
    by_addr = {s.address: s for s in report.sites}
    for sev in SEVERITIES:
        group = [f for f in live if f.severity == sev]
        if not group:
            continue
        out.append(f"**{sev.upper()}** ({len(group)})")
        out.append("")
        out.append("| rule | where | syscall | details |")
        out.append("| --- | --- | --- | --- |")
        for f in group:
            where = "binary" if f.site is None else f"{code(f.function or '?')} at `{f.site:#x}`"
            src = by_addr.get(f.site).source if f.site in by_addr else None
            if src:
                where += f" ({code(src)})"
            msg = f.message[len(f.name) + 2:] if f.message.startswith(f.name + ": ") else f.message
            out.append(f"| {text(f.name)} ({code(f.rule)}) | {where} | {code(f.syscall or '-')} | "
                       f"{code(msg)} |")
        out.append("")
    suppressed = [f for f in fs if not gating(f)]
    if suppressed:
        out.append(f"<details><summary>{len(suppressed)} finding(s) in the baseline or accepted</summary>")
        out.append("")
        out.append("| state | severity | rule | where | reason |")
        out.append("| --- | --- | --- | --- | --- |")
        for f in suppressed:
            where = "binary" if f.site is None else f"{code(f.function or '?')} at `{f.site:#x}`"
            out.append(f"| {text(f.baseline or '')} | {text(f.severity)} | {code(f.rule)} | {where} | "
                       f"{code(f.justification or '-')} |")
        out.append("")
        out.append("</details>")
        out.append("")

    sites = report.sites
    out.append(f"<details><summary>Sites ({len(sites)})</summary>")
    out.append("")
    out.append("| address | function | instruction | syscall | arguments |")
    out.append("| --- | --- | --- | --- | --- |")
    for s in sites[:MAX_SITES]:
        instr = s.instruction + (f" ({s.abi})" if s.abi != ("x86_64" if b.bits == 64 else "i386") else "")
        out.append(f"| `{s.address:#x}` | {code(s.function or '?')} | {text(instr)} | {code(syscall_text(s))} | "
                   f"{code(args_text(s) or '-')} |")
    if len(sites) > MAX_SITES:
        out.append(f"| … | {len(sites) - MAX_SITES} more sites (see the JSON report) | | | |")
    out.append("")
    out.append("</details>")
    out.append("")
    if report.surface is not None:
        sf = report.surface
        out.append(f"<details><summary>Program surface: {len(sf.syscalls)} syscalls reachable through "
                   f"{len(sf.objects)} objects, {len(sf.open_ends)} open ends</summary>")
        out.append("")
        out.append("| syscall | abi | objects | one path |")
        out.append("| --- | --- | --- | --- |")
        for u in sf.syscalls:
            out.append(f"| {code(u.name or str(u.nr))} | {text(u.abi)} | {code(', '.join(u.objects))} | "
                       f"{code(' → '.join(u.path))} |")
        out.append("")
        for o in sf.open_ends:
            out.append(f"- open end ({text(o.kind)}): {code(o.object)} {code(o.detail)}")
        out.append("")
        out.append("</details>")
        out.append("")
    if report.incomplete:
        out.append(f"_Incomplete analysis ({len(report.incomplete)}):_ " +
                   "; ".join(code(m, False) for m in report.incomplete[:5]) +
                   (" …" if len(report.incomplete) > 5 else ""))
        out.append("")
    return out


def render_many(reports: list[Report], opts: dict) -> str:
    if len(reports) == 1:
        return "\n".join(_report(reports[0], opts)).rstrip() + "\n"
    total = sum(1 for r in reports for f in r.findings if gating(f))
    out = [f"## sysscan: {len(reports)} binaries — {total} finding{'s' * (total != 1)}", ""]
    out.append("| binary | sites | findings | critical | high | medium | low | info |")
    out.append("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for r in reports:
        c = severity_counts(r.findings)
        out.append(f"| {code(r.binary.name)} | {r.summary.sites} | {sum(c.values())} | " +
                   " | ".join(str(c[s]) for s in SEVERITIES) + " |")
    out.append("")
    for r in reports:
        out += _report(r, opts, "###")
    return "\n".join(out).rstrip() + "\n"


def render(report: Report, opts: dict) -> str:
    return render_many([report], opts)
