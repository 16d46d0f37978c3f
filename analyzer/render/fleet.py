"""A fleet document (aggregate.build_fleet plus each input's multi-report document) as JSON, Markdown, HTML or a
terminal table. Only the fleet view is drawn here; each input's own reports are in the JSON (`inputs`), or come
from `sysscan INPUT` for the per-binary detail."""
from __future__ import annotations

import io
import json

from .. import __version__

FORMATS = ("json", "markdown", "html", "table")
SHOWN = 8  # binaries named per syscall in the Markdown/HTML/table index; the JSON has them all


def render_fleet(doc: dict, fmt: str, opts: dict | None = None) -> str:
    if fmt == "json":
        return json.dumps(doc, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
    if fmt == "markdown":
        return _markdown(doc["fleet"])
    if fmt == "html":
        return _html(doc["fleet"])
    return _table(doc["fleet"], opts or {})


def _who(entries: list[dict]) -> list[str]:
    return [f"{e['input']}:{e['path']}" + (" (raw)" if e.get("raw") else "") for e in entries]


def _markdown(f: dict) -> str:
    from .markdown import code, text

    s = f["summary"]
    out = [f"# sysscan {text(__version__)} fleet report", "",
           f"{s['inputs']} inputs, {s['binaries']} binaries, {s['syscalls']} distinct syscalls, "
           f"{s['raw']} binaries with raw syscall sites, {s['failed']} failed.", "",
           "| input | images | binaries | failed | raw | syscalls |", "| --- | --- | ---: | ---: | ---: | ---: |"]
    for r in f["inputs"]:
        out.append(f"| {code(r['input'])} | {', '.join(code(i) for i in r['images']) or '—'} | {r['binaries']} | "
                   f"{r['failed']} | {r['raw']} | {r['syscalls']} |")
    out += ["", "## Who can make which syscall", "", "| syscall | binaries | who |", "| --- | ---: | --- |"]
    for name, entries in f["index"].items():
        who = ", ".join(code(w) for w in _who(entries[:SHOWN])) + (" …" if len(entries) > SHOWN else "")
        out.append(f"| {code(name)} | {len(entries)} | {who} |")
    if f["raw"]:
        out += ["", "## Raw syscall sites", "", "| input | binary | syscalls |", "| --- | --- | --- |"]
        out += [f"| {code(r['input'])} | {code(r['path'])} | {', '.join(code(n) for n in r['syscalls'])} |"
                for r in f["raw"]]
    if f["failed"]:
        out += ["", "## Failed", "", "| input | file | exit | error |", "| --- | --- | ---: | --- |"]
        out += [f"| {code(r['input'])} | {code(r['path'])} | {r['exit_code']} | {code(r['error'])} |"
                for r in f["failed"]]
    return "\n".join(out) + "\n"


def _html(f: dict) -> str:
    from .html import e

    s = f["summary"]

    def table(head: list[str], rows: list[list[str]]) -> str:
        return ("<table><thead><tr>" + "".join(f"<th>{e(h)}</th>" for h in head) + "</tr></thead><tbody>" +
                "".join("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in rows) +
                "</tbody></table>")

    parts = ["<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>sysscan fleet report</title>"
             "<style>body{font-family:system-ui,sans-serif;margin:24px}table{border-collapse:collapse}"
             "td,th{border:1px solid #ccc;padding:2px 8px;text-align:left;vertical-align:top}"
             "code{font-family:ui-monospace,monospace}</style></head><body>",
             f"<h1>sysscan {e(__version__)} fleet report</h1>",
             f"<p>{s['inputs']} inputs, {s['binaries']} binaries, {s['syscalls']} distinct syscalls, {s['raw']} "
             f"binaries with raw syscall sites, {s['failed']} failed.</p>",
             table(["input", "images", "binaries", "failed", "raw", "syscalls"],
                   [[f"<code>{e(r['input'])}</code>", e(", ".join(r["images"])), str(r["binaries"]),
                     str(r["failed"]), str(r["raw"]), str(r["syscalls"])] for r in f["inputs"]]),
             "<h2>Who can make which syscall</h2>",
             table(["syscall", "binaries", "who"],
                   [[f"<code>{e(n)}</code>", str(len(es)),
                     "<details><summary>" + e(", ".join(_who(es[:3]))) + (" …" if len(es) > 3 else "") +
                     "</summary>" + "<br>".join(f"<code>{e(w)}</code>" for w in _who(es)) + "</details>"]
                    for n, es in f["index"].items()])]
    if f["raw"]:
        parts += ["<h2>Raw syscall sites</h2>",
                  table(["input", "binary", "syscalls"], [[f"<code>{e(r['input'])}</code>", f"<code>{e(r['path'])}"
                                                           "</code>", e(", ".join(r["syscalls"]))] for r in f["raw"]])]
    if f["failed"]:
        parts += ["<h2>Failed</h2>",
                  table(["input", "file", "exit", "error"],
                        [[f"<code>{e(r['input'])}</code>", f"<code>{e(r['path'])}</code>", str(r["exit_code"]),
                          e(r["error"])] for r in f["failed"]])]
    parts.append(f"<footer>sysscan {e(__version__)}</footer></body></html>")
    return "\n".join(parts) + "\n"


def _table(f: dict, opts: dict) -> str:
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    from ..textsafe import escape_controls

    def t(s) -> str:
        return escape(escape_controls(str(s)))

    buf = io.StringIO()
    console = Console(file=buf, width=opts.get("width") or 140, force_terminal=bool(opts.get("color")),
                      color_system="standard" if opts.get("color") else None, highlight=False, emoji=False)
    s = f["summary"]
    console.print(f"sysscan {__version__} fleet: {s['inputs']} inputs, {s['binaries']} binaries, "
                  f"{s['syscalls']} distinct syscalls, {s['raw']} with raw sites, {s['failed']} failed")
    inputs = Table("input", "images", "binaries", "failed", "raw", "syscalls")
    for r in f["inputs"]:
        inputs.add_row(t(r["input"]), t(", ".join(r["images"])), str(r["binaries"]), str(r["failed"]),
                       str(r["raw"]), str(r["syscalls"]))
    console.print(inputs)
    index = Table("syscall", "binaries", "who")
    for n, es in f["index"].items():
        index.add_row(t(n), str(len(es)), t(", ".join(_who(es[:3])) + (" …" if len(es) > 3 else "")))
    console.print(index)
    for r in f["failed"]:
        console.print(f"failed {t(r['input'])}:{t(r['path'])}: {t(r['error'])}")
    return buf.getvalue()
