"""Renderers: each turns a finished Report into text. They never analyse; they only read the model."""
from __future__ import annotations

from collections.abc import Callable

from ..model import Report

Renderer = Callable[[Report, dict], str]


def _table(report: Report, opts: dict) -> str:
    from .table import render

    return render(report, opts)


def _json(report: Report, opts: dict) -> str:
    from .json import render

    return render(report, opts)


def _sarif(report: Report, opts: dict) -> str:
    from .sarif import render

    return render(report, opts)


def _markdown(report: Report, opts: dict) -> str:
    from .markdown import render

    return render(report, opts)


def _html(report: Report, opts: dict) -> str:
    from .html import render

    return render(report, opts)


def _profile(fmt: str) -> Renderer:
    def render_(report: Report, opts: dict) -> str:
        return render_all([report], fmt, opts)
    return render_


RENDERERS: dict[str, Renderer] = {"table": _table, "json": _json, "sarif": _sarif, "markdown": _markdown,
                                  "html": _html, "seccomp": _profile("seccomp"), "systemd": _profile("systemd"),
                                  "k8s": _profile("k8s")}
"""Format name -> renderer. Imported lazily so `--format json` never pays for rich."""

PROFILE_FORMATS = ("seccomp", "systemd", "k8s")
"""Formats that write a seccomp profile (analyzer/seccomp): the caller puts the profile in `opts["profile"]`, and
with several inputs and `-o DIR` each binary's own in `opts["profiles"]` (render/output.py)."""

EXTENSIONS = {"table": "txt", "json": "json", "sarif": "sarif", "markdown": "md", "html": "html",
              "seccomp": "seccomp.json", "systemd": "seccomp.conf", "k8s": "seccomp.yaml"}
"""File extension per format, for `--format a,b -o DIR`."""


def render_profile(fmt: str, profile, name: str) -> str:
    """A profile in one of PROFILE_FORMATS; `name` names the Kubernetes resource."""
    from . import seccomp

    if fmt == "seccomp":
        return seccomp.render_oci(profile)
    if fmt == "systemd":
        return seccomp.render_systemd(profile)
    return seccomp.render_k8s(profile, name)


def render(report: Report, fmt: str, opts: dict | None = None) -> str:
    return RENDERERS[fmt](report, opts or {})


def render_all(reports: list[Report], fmt: str, opts: dict | None = None) -> str:
    """Several reports as one document: one JSON object {"reports": [...]}, one SARIF run, one Markdown comment,
    one HTML page; the table format concatenates. With `opts["aggregate"]` (a directory or several inputs,
    render/aggregate.py) JSON adds {"aggregate": {...}} (even for one report) and the table shows the union view."""
    import importlib
    import json as _json_mod

    opts = opts or {}
    if fmt in PROFILE_FORMATS:  # one profile for all the inputs: their union (none when every input failed)
        if not reports:
            return ""
        profile = opts.get("profile")
        if profile is None:  # rendered without the CLI's options: the reports' own profile, derived from them
            from ..seccomp import build_profile

            profile = build_profile(reports)
        return render_profile(fmt, profile, reports[0].binary.name if len(reports) == 1 else "sysscan")
    agg = opts.get("aggregate")
    if fmt == "json" and (len(reports) > 1 or agg is not None):
        doc = {"reports": [r.to_dict() for r in reports]}
        if agg is not None:
            doc["aggregate"] = agg
        return _json_mod.dumps(doc, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
    if fmt == "table" and agg is not None:
        from .aggregate import render_many_table

        return render_many_table(reports, agg, opts)
    if fmt in ("sarif", "markdown", "html"):
        return importlib.import_module(f"{__name__}.{fmt}").render_many(reports, opts)
    return "".join(render(r, fmt, opts) for r in reports)
