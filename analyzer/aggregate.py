"""The view across many binaries (a directory or several files), as data: per binary one line, and the union — which
syscalls the whole tree can make and which binaries make raw ones. Drawn by render/aggregate.py.

`build_aggregate(reports, failures, skipped)` gives the JSON object written under "aggregate" next to "reports"
(`{"reports": [...], "aggregate": {...}}`; schema analyzer/schemas/reports.schema.json). It is derived data: a
saved multi-report JSON re-rendered with `sysscan render` gets it recomputed from its reports (its failed/skipped
lists are carried over).

Deterministic: binaries sorted by path, syscalls by (abi, number); no timings, no cache statistics.
"""
from __future__ import annotations



def build_aggregate(reports: list, failures: list | None = None, skipped: list | None = None,
                    images: list | None = None) -> dict:
    """Reports (model.Report) plus failed files (batch.Failure, or saved {"path","exit_code","error"} dicts) and
    skipped ones (batch.Skipped or dicts; only those that warranted a warning are listed). `images`: the container
    images the reports come from (run/image.py), listed as they are when given."""
    reports = sorted(reports, key=lambda r: r.binary.path)
    failed = []
    for f in failures or []:
        if isinstance(f, dict):
            code = f.get("exit_code", 0)
            failed.append({"path": str(f.get("path", "")), "exit_code": code if isinstance(code, int) else 0,
                           "error": str(f.get("error", ""))})
        else:
            failed.append({"path": f.path, "exit_code": f.exit_code, "error": f.error.problem})
    skip = []
    for s in skipped or []:
        if isinstance(s, dict):
            skip.append({"path": str(s.get("path", "")), "reason": str(s.get("reason", ""))})
        elif s.warn:
            skip.append({"path": s.path, "reason": s.reason})
    union: dict[tuple[str, int], dict] = {}
    binaries = []
    totals = {"sites": 0, "resolved": 0, "partial": 0, "unresolved": 0, "findings": 0}
    by_sev: dict[str, int] = {}
    for r in reports:
        s = r.summary
        for k in ("sites", "resolved", "partial", "unresolved", "findings"):
            totals[k] += getattr(s, k)
        for sev, n in s.by_severity.items():
            by_sev[sev] = by_sev.get(sev, 0) + n
        for u in r.syscalls:
            e = union.setdefault((u.abi, u.nr), {"abi": u.abi, "nr": u.nr, "name": u.name, "binaries": [],
                                                 "sites": 0})
            if e["name"] is None and u.name:
                e["name"] = u.name
            e["binaries"].append(r.binary.path)
            e["sites"] += len(u.sites)
        binaries.append({
            "path": r.binary.path, "sha256": r.binary.sha256, "arch": r.binary.arch, "static": r.binary.static,
            "sites": s.sites, "resolved": s.resolved, "partial": s.partial, "unresolved": s.unresolved,
            "syscalls": s.syscalls, "findings": s.findings, "incomplete": bool(r.incomplete),
        })
    syscalls = [union[k] for k in sorted(union)]
    surface: dict[tuple[str, int], dict] = {}  # the union of the programs' surfaces
    for r in reports:
        for u in (r.surface.syscalls if r.surface is not None else ()):
            e = surface.setdefault((u.abi, u.nr), {"abi": u.abi, "nr": u.nr, "name": u.name, "binaries": []})
            e["binaries"].append(r.binary.path)
    out = {"images": [dict(i) for i in images]} if images else {}
    return {
        **out,
        "surface": [surface[k] for k in sorted(surface)],
        "binaries": binaries,
        "raw": [b["path"] for b in binaries if b["sites"]],
        "unknown_numbers": [b["path"] for b in binaries if b["partial"] or b["unresolved"]],
        "incomplete": [b["path"] for b in binaries if b["incomplete"]],
        "syscalls": syscalls,
        "failed": sorted(failed, key=lambda f: f["path"]),
        "skipped": sorted(skip, key=lambda s: s["path"]),
        "summary": {
            "binaries": len(binaries), "failed": len(failed), "raw": sum(1 for b in binaries if b["sites"]),
            "syscalls": len(syscalls), **totals,
            "by_severity": {k: by_sev[k] for k in sorted(by_sev)},
        },
    }


def saved_lists(data: dict):
    """The failed/skipped lists of a saved multi-report document (anything malformed in them is dropped)."""
    from types import SimpleNamespace

    agg = data.get("aggregate") if isinstance(data.get("aggregate"), dict) else {}

    def dicts(key: str) -> list[dict]:
        v = agg.get(key)
        return [x for x in v if isinstance(x, dict)] if isinstance(v, list) else []

    return SimpleNamespace(failures=dicts("failed"), skipped=dicts("skipped"), images=dicts("images"))


def _syscall_name(abi: str, nr: int, name: str | None) -> str:
    return name or f"{abi}:{nr}"


def build_fleet(inputs: list[tuple[str, list, dict]]) -> dict:
    """The view across a fleet: per input (label, its reports, its aggregate) one row, and an index of who can make
    each syscall (through its surface, or a raw site of its own: `raw`), the binaries with raw sites, the failures.
    Deterministic: inputs in the order given, everything else sorted."""
    index: dict[str, list[dict]] = {}
    raw: list[dict] = []
    failed: list[dict] = []
    rows: list[dict] = []
    for label, reports, agg in inputs:
        names_here: set[str] = set()
        for r in reports:
            own = {_syscall_name(u.abi, u.nr, u.name) for u in r.syscalls}
            reach = {_syscall_name(s.abi, s.nr, s.name) for s in (r.surface.syscalls if r.surface else ())}
            for n in own | reach:
                index.setdefault(n, []).append({"input": label, "path": r.binary.path, "raw": n in own})
            names_here |= own | reach
            if r.sites:
                raw.append({"input": label, "path": r.binary.path, "syscalls": sorted(own)})
        failed += [{"input": label, **f} for f in agg.get("failed", [])]
        s = agg.get("summary", {})
        rows.append({"input": label, "images": [i.get("name", "") for i in agg.get("images", [])],
                     "binaries": s.get("binaries", 0), "failed": s.get("failed", 0), "raw": s.get("raw", 0),
                     "syscalls": len(names_here), "incomplete": len(agg.get("incomplete", []))})
    order = lambda e: (e["input"], e["path"])  # noqa: E731
    return {
        "inputs": rows,
        "index": {n: sorted(index[n], key=order) for n in sorted(index)},
        "raw": sorted(raw, key=order),
        "failed": sorted(failed, key=order),
        "summary": {"inputs": len(rows), "binaries": sum(r["binaries"] for r in rows),
                    "failed": len(failed), "raw": len(raw), "syscalls": len(index)},
    }


def who(doc: dict, syscall: str) -> list[dict]:
    """Who can make `syscall`, from a saved fleet document or a multi-report one: [{"input", "path", "raw"}]."""
    if isinstance(doc.get("fleet"), dict):
        entries = doc["fleet"].get("index", {}).get(syscall, [])
        return [e for e in entries if isinstance(e, dict)]
    out = []
    agg = doc.get("aggregate") if isinstance(doc.get("aggregate"), dict) else {}
    raw = {p for e in agg.get("syscalls", []) if isinstance(e, dict) and e.get("name") == syscall
           for p in e.get("binaries", [])}
    reach = {p for e in agg.get("surface", []) if isinstance(e, dict) and e.get("name") == syscall
             for p in e.get("binaries", [])}
    for p in sorted(raw | reach):
        out.append({"input": "", "path": p, "raw": p in raw})
    return out
