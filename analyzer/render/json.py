"""JSON: the report model as is. Sorted keys and fixed separators, so equal reports are equal bytes."""
from __future__ import annotations

import json

from ..model import Report


def render(report: Report, opts: dict) -> str:
    return json.dumps(report.to_dict(), indent=2, sort_keys=True, ensure_ascii=False) + "\n"
