"""HTML: one self-contained page (inline CSS, inline SVG, no script, no network; a Content-Security-Policy of
default-src 'none' makes the browser refuse any fetch). Summary, findings, the sites table, and each site's
kernel path drawn as SVG from a networkx graph of Site.kernel (present when the scan had --vmlinux).

Every string from the report is escaped with html.escape (text and attributes, SVG included).
"""
from __future__ import annotations

from html import escape

from .. import __version__
from ..model import Report, Site
from .common import (SEVERITIES, args_text, binary_line, gating, kernel_graph, layered_layout, severity_counts,
                     sorted_findings, summary_line, syscall_text)

MAX_GRAPH_NODES = 60
CSS = """
:root{--fg:#1f2328;--muted:#59636e;--bg:#fff;--line:#d1d9e0;--head:#f6f8fa;
--critical:#82071e;--high:#cf222e;--medium:#9a6700;--low:#0969da;--info:#59636e}
*{box-sizing:border-box}
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Helvetica,Arial,sans-serif;color:var(--fg);background:var(--bg);
margin:0;padding:0 24px 48px}
header{border-bottom:1px solid var(--line);padding:16px 0 8px;margin-bottom:8px}
h1{font-size:22px;margin:0}h2{font-size:19px;margin:28px 0 8px;border-bottom:1px solid var(--line);padding-bottom:4px}
h3{font-size:16px;margin:22px 0 8px}
code,.mono{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;font-size:12.5px}
.muted{color:var(--muted)}
dl.meta{display:grid;grid-template-columns:max-content 1fr;gap:2px 14px;margin:8px 0}
dl.meta dt{font-weight:600}dl.meta dd{margin:0;word-break:break-all}
.cards{display:flex;flex-wrap:wrap;gap:10px;margin:12px 0}
.card{border:1px solid var(--line);border-radius:6px;padding:8px 14px;min-width:96px;background:var(--head)}
.card b{display:block;font-size:20px}
table{border-collapse:collapse;width:100%;margin:6px 0 14px}
th,td{border:1px solid var(--line);padding:4px 8px;text-align:left;vertical-align:top}
th{background:var(--head);position:sticky;top:0}
td.addr{white-space:nowrap}
.badge{display:inline-block;border-radius:10px;padding:0 8px;color:#fff;font-size:12px;font-weight:600}
.badge.critical{background:var(--critical)}.badge.high{background:var(--high)}.badge.medium{background:var(--medium)}
.badge.low{background:var(--low)}.badge.info{background:var(--info)}
.st-resolved{color:#1a7f37}.st-partial{color:var(--medium)}.st-unresolved{color:var(--high);font-weight:600}
details{margin:4px 0}summary{cursor:pointer}
figure{margin:8px 0 16px;overflow-x:auto}figcaption{font-size:12px;color:var(--muted)}
svg text{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;font-size:11px}
.empty{color:var(--muted);font-style:italic}
footer{margin-top:32px;color:var(--muted);font-size:12px}
"""


def e(s) -> str:
    return escape(str(s), quote=True)


def _svg(site: Site, idx: str) -> str:
    """The kernel path(s) of one site as an SVG (columns left to right: site, entry, ..., handler)."""
    g = kernel_graph(site)
    if g.number_of_nodes() == 0:
        return ""
    if g.number_of_nodes() > MAX_GRAPH_NODES:
        return f'<p class="empty">{g.number_of_nodes()} nodes: too many to draw; see the JSON report.</p>'
    pos = layered_layout(g)
    char_w, box_h, gap_x, gap_y, pad = 6.8, 24, 34, 12, 10
    widths = {n: int(min(len(str(n)), 48) * char_w + 16) for n in g.nodes}
    cols = max(c for c, _ in pos.values()) + 1
    col_w = [max([widths[n] for n in g.nodes if pos[n][0] == c] or [60]) for c in range(cols)]
    col_x = [pad + sum(col_w[:c]) + gap_x * c for c in range(cols)]
    rows = max(r for _, r in pos.values()) + 1
    width = int(col_x[-1] + col_w[-1] + pad)
    height = int(pad * 2 + rows * box_h + (rows - 1) * gap_y)

    def box(n):
        c, r = pos[n]
        return col_x[c], pad + r * (box_h + gap_y), widths[n]

    parts = [f'<svg role="img" width="{width}" height="{height}" '
             f'viewBox="0 0 {width} {height}" aria-label="{e("kernel path of the site at " + hex(site.address))}">',
             f'<defs><marker id="arrow-{e(idx)}" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" '
             'markerHeight="7" orient="auto-start-reverse"><path d="M0,0L10,5L0,10z" fill="#59636e"/></marker></defs>']
    for a, b in g.edges:
        xa, ya, wa = box(a)
        xb, yb, _ = box(b)
        parts.append(f'<line x1="{xa + wa:.0f}" y1="{ya + box_h / 2:.0f}" x2="{xb:.0f}" y2="{yb + box_h / 2:.0f}" '
                     f'stroke="#59636e" stroke-width="1.2" marker-end="url(#arrow-{e(idx)})"/>')
    for n, attrs in g.nodes(data=True):
        x, y, w = box(n)
        fill = "#ffebe9" if attrs.get("enosys") else ("#ddf4ff" if attrs.get("kind") == "site" else
                                                       "#dafbe1" if attrs.get("kind") == "handler" else "#f6f8fa")
        label = str(n) if len(str(n)) <= 48 else str(n)[:47] + "…"
        parts.append(f'<g><title>{e(n)}</title><rect x="{x:.0f}" y="{y:.0f}" width="{w}" height="{box_h}" rx="4" '
                     f'fill="{fill}" stroke="#8c959f"/><text x="{x + 8:.0f}" y="{y + 16:.0f}">{e(label)}</text></g>')
    parts.append("</svg>")
    return "".join(parts)


def _detail(f) -> str:
    """The message without the rule name it starts with (the rule column shows it)."""
    return f.message[len(f.name) + 2:] if f.message.startswith(f.name + ": ") else f.message


def _findings_table(findings, sites_by_addr) -> str:
    if not findings:
        return '<p class="empty">No findings.</p>'
    rows = ['<table class="findings"><thead><tr><th>severity</th><th>rule</th><th>where</th><th>syscall</th>'
            '<th>message</th></tr></thead><tbody>']
    for f in findings:
        where = "binary" if f.site is None else (f'<code>{e(f.function or "?")}</code> '
                                                 f'<a href="#site-{f.site:x}"><code>{f.site:#x}</code></a>')
        src = sites_by_addr[f.site].source if f.site in sites_by_addr else None
        if src:
            where += f'<div class="muted"><code>{e(src)}</code></div>'
        refs = f'<div class="muted">{e(", ".join(f.references))}</div>' if f.references else ""
        rows.append(f'<tr class="finding sev-{e(f.severity)}" data-rule="{e(f.rule)}">'
                    f'<td><span class="badge {e(f.severity)}">{e(f.severity)}</span></td>'
                    f'<td>{e(f.name)}<br><code class="muted">{e(f.rule)}</code>{refs}</td><td>{where}</td>'
                    f'<td><code>{e(f.syscall or "-")}</code></td><td>{e(_detail(f))}</td></tr>')
    rows.append("</tbody></table>")
    return "".join(rows)


def _report(report: Report, n: int, opts: dict) -> str:
    b = report.binary
    fs = sorted_findings(report.findings)
    live = [f for f in fs if gating(f)]
    counts = severity_counts(fs)
    s = report.summary
    out = [f'<section class="report" id="report-{n}"><h2>{e(b.name)}</h2><dl class="meta">']
    meta = [("file", b.path), ("format", binary_line(report)), ("sha256", b.sha256)]
    if b.build_id:
        meta.append(("build-id", b.build_id))
    if b.debug_file:
        meta.append(("symbols", f"from {b.debug_file}"))
    meta.append(("syscall table", f"{report.table.source} (kernel {report.table.kernel_version})"))
    if report.kernel:
        meta.append(("kernel", str(report.kernel.get("version") or report.kernel.get("path", ""))))
    meta.append(("sites", summary_line(report)))
    for k, v in meta:
        out.append(f"<dt>{e(k)}</dt><dd>{e(v)}</dd>")
    out.append("</dl><div class=\"cards\">")
    for label, val in (("sites", s.sites), ("resolved", s.resolved), ("partial", s.partial),
                       ("unresolved", s.unresolved), ("syscalls", s.syscalls), ("findings", len(live))):
        out.append(f'<div class="card"><b>{val}</b>{e(label)}</div>')
    for sev in SEVERITIES:
        if counts[sev]:
            out.append(f'<div class="card"><b>{counts[sev]}</b><span class="badge {sev}">{sev}</span></div>')
    out.append("</div>")

    sites_by_addr = {x.address: x for x in report.sites}
    out.append(f"<h3>Findings ({len(live)})</h3>")
    out.append(_findings_table(live, sites_by_addr))
    suppressed = [f for f in fs if not gating(f)]
    if suppressed:
        out.append(f"<details><summary>{len(suppressed)} finding(s) in the baseline or accepted by the allowlist"
                   "</summary>")
        out.append(_findings_table(suppressed, sites_by_addr).replace("<tbody>", "<tbody class=\"suppressed\">"))
        for f in suppressed:
            if f.justification:
                out.append(f"<p><code>{e(f.rule)}</code> {e(f.function or '')}: {e(f.justification)}</p>")
        out.append("</details>")

    out.append(f"<h3>Sites ({len(report.sites)})</h3>")
    if not report.sites:
        out.append('<p class="empty">No syscall sites.</p>')
    else:
        out.append('<table class="sites"><thead><tr><th>address</th><th>function</th><th>instruction</th>'
                   '<th>syscall</th><th>arguments</th><th>kernel path</th></tr></thead><tbody>')
        native = "x86_64" if b.bits == 64 else "i386"
        for i, x in enumerate(report.sites):
            instr = x.instruction + (f" ({x.abi})" if x.abi != native else "")
            handlers = ", ".join(dict.fromkeys(k.handler or "-ENOSYS" for k in x.kernel))
            kcell = (f'<a href="#kpath-{n}-{x.address:x}"><code>{e(handlers)}</code></a>'
                     if x.kernel else '<span class="muted">-</span>')
            reasons = "; ".join(x.number.reasons[:2])
            out.append(f'<tr id="site-{x.address:x}"><td class="addr"><code>{x.address:#x}</code></td>'
                       f'<td><code>{e(x.function or "?")}</code>'
                       + (f'<div class="muted"><code>{e(x.source)}</code></div>' if x.source else "") +
                       f'</td><td>{e(instr)}</td>'
                       f'<td class="st-{e(x.number.status)}"><code>{e(syscall_text(x))}</code>'
                       + (f'<div class="muted">{e(reasons)}</div>' if reasons else "") +
                       f'</td><td><code>{e(args_text(x))}</code></td><td>{kcell}</td></tr>')
        out.append("</tbody></table>")

    linked = [x for x in report.sites if x.kernel]
    if linked:
        out.append(f"<h3>Kernel paths ({len(linked)} sites)</h3>")
        for i, x in enumerate(linked):
            caption = " | ".join(" → ".join(k.path) for k in x.kernel[:4]) + (" | …" if len(x.kernel) > 4 else "")
            out.append(f'<figure class="kpath" id="kpath-{n}-{x.address:x}">{_svg(x, f"{n}-{i}")}'
                       f'<figcaption><code>{x.address:#x}</code> {e(x.function)}: {e(caption)}</figcaption>'
                       "</figure>")
    elif report.sites:
        out.append('<p class="muted">Kernel paths: not linked (scan with --vmlinux to draw each site\'s path '
                   "into the kernel).</p>")

    if report.syscalls:
        out.append("<h3>Syscall set</h3><p>" + ", ".join(
            f"<code>{e(u.name or u.nr)}</code>" + (f'<span class="muted">/{e(u.abi)}</span>' if u.abi != "x86_64"
                                                     else "") for u in report.syscalls) + "</p>")
    if report.surface is not None:
        sf = report.surface
        out.append(f"<h3>Program surface: {len(sf.syscalls)} syscalls reachable through {len(sf.objects)} "
                   "objects</h3>")
        out.append('<table class="sites"><thead><tr><th>object</th><th>kind</th><th>functions reached</th>'
                   "<th>sites reached</th></tr></thead><tbody>" + "".join(
                       f"<tr><td><code>{e(o.name)}</code></td><td>{e(o.kind)}</td><td>{o.reachable_functions}/"
                       f"{o.functions}</td><td>{o.reachable_sites}/{o.sites}</td></tr>" for o in sf.objects) +
                   "</tbody></table>")
        out.append("<details><summary>Syscalls and one path to each</summary><ul>" + "".join(
            f"<li><code>{e(u.name or u.nr)}</code>" + (f'<span class="muted">/{e(u.abi)}</span>'
                                                       if u.abi != "x86_64" else "") +
            (f" ⇒ <code>{e(u.handler)}</code>" if u.handler else "") +
            f'<div class="muted">{e(" → ".join(u.path))}</div></li>' for u in sf.syscalls) + "</ul></details>")
        if sf.open_ends:
            out.append(f"<details><summary>Open ends ({len(sf.open_ends)})</summary><ul>" + "".join(
                f"<li>{e(o.kind)}: <code>{e(o.object)}</code> {e(o.detail)}</li>" for o in sf.open_ends) +
                "</ul></details>")
    if report.incomplete:
        out.append(f"<details><summary>Incomplete analysis ({len(report.incomplete)})</summary><ul>" +
                   "".join(f"<li>{e(m)}</li>" for m in report.incomplete) + "</ul></details>")
    out.append("</section>")
    return "\n".join(out)


def render_many(reports: list[Report], opts: dict) -> str:
    title = reports[0].binary.name if len(reports) == 1 else f"{len(reports)} binaries"
    total = sum(1 for r in reports for f in r.findings if gating(f))
    head = (
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n"
        "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'; "
        "img-src data:\">\n"
        "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
        f"<meta name=\"generator\" content=\"sysscan {e(__version__)}\">\n"
        "<link rel=\"icon\" href=\"data:,\">\n"
        f"<title>sysscan report: {e(title)}</title>\n<style>{CSS}</style></head>\n<body>\n"
        f"<header><h1>sysscan report: {e(title)}</h1>"
        f"<p class=\"muted\">sysscan {e(__version__)} · {len(reports)} binar{'y' if len(reports) == 1 else 'ies'}"
        f" · {total} finding{'s' * (total != 1)}</p></header>\n<main>\n"
    )
    body = []
    if len(reports) > 1:
        body.append("<nav><ul>" + "".join(f'<li><a href="#report-{i}">{e(r.binary.name)}</a> '
                                          f'({sum(1 for f in r.findings if gating(f))} findings)</li>'
                                          for i, r in enumerate(reports)) + "</ul></nav>")
    body += [_report(r, i, opts) for i, r in enumerate(reports)]
    foot = (f"</main>\n<footer>Generated by sysscan {e(__version__)} (static analysis; the binary was never "
            "executed). Self-contained: no scripts, no network.</footer>\n</body></html>\n")
    return head + "\n".join(body) + foot


def render(report: Report, opts: dict) -> str:
    return render_many([report], opts)
