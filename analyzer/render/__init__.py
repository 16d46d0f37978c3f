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


RENDERERS: dict[str, Renderer] = {"table": _table, "json": _json}
"""Format name -> renderer. Imported lazily so `--format json` never pays for rich."""


def render(report: Report, fmt: str, opts: dict | None = None) -> str:
    return RENDERERS[fmt](report, opts or {})
