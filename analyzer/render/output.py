"""Where each requested format goes: `--format sarif,html -o DIR`, `-o FORMAT=FILE` per format, `-o FILE` for one
format, stdout when there is one format and no -o. Writes are atomic (temp file + rename).

    -f json                      -> stdout
    -f json -o r.json            -> r.json
    -f sarif,html -o out/        -> out/NAME.sarif, out/NAME.html   (NAME: the binary's name, or "sysscan")
    -f sarif,html -o sarif=a.sarif -o html=-   -> a.sarif, and the HTML on stdout
"""
from __future__ import annotations

import os
import sys

from .. import outfile
from ..errors import UsageError
from ..model import Report
from . import EXTENSIONS, RENDERERS, render_all


def parse_formats(spec: str) -> list[str]:
    fmts = [f.strip() for f in str(spec).split(",") if f.strip()]
    if not fmts:
        raise UsageError(None, "no output format given")
    for f in fmts:
        if f not in RENDERERS:
            raise UsageError(None, f"unknown format {f!r}; choose from {', '.join(RENDERERS)}")
    return list(dict.fromkeys(fmts))


def plan(fmts: list[str], outputs: list[str] | str | None, reports: list[Report]) -> list[tuple[str, str | None]]:
    """(format, path or None for stdout) per format."""
    if isinstance(outputs, str):
        outputs = [outputs]
    outputs = list(outputs or [])
    stem = _safe_stem(reports[0].binary.name) if len(reports) == 1 else "sysscan"
    mapped: dict[str, str] = {}
    plain: list[str] = []
    for o in outputs:
        head, sep, tail = o.partition("=")
        if sep and head in RENDERERS:
            if head not in fmts:
                raise UsageError(None, f"-o {o}: format {head!r} was not requested with --format")
            if head in mapped:
                raise UsageError(None, f"-o given twice for format {head!r}")
            mapped[head] = tail
        else:
            plain.append(o)
    if len(plain) > 1:
        raise UsageError(None, f"-o given {len(plain)} times; use -o DIR or -o FORMAT=FILE per format")
    directory = None
    if plain:
        p = plain[0]
        if len(fmts) - len(mapped) > 1 or os.path.isdir(p) or p.endswith(("/", os.sep)):
            directory = p
    out: list[tuple[str, str | None]] = []
    for f in fmts:
        if f in mapped:
            path = mapped[f]
            out.append((f, None if path in ("", "-") else path))
        elif directory is not None:
            out.append((f, os.path.join(directory, f"{stem}.{EXTENSIONS.get(f, f)}")))
        elif plain:
            out.append((f, None if plain[0] == "-" else plain[0]))
        elif len(fmts) == 1:
            out.append((f, None))
        else:
            raise UsageError(None, f"several formats ({', '.join(fmts)}) need -o DIR or -o FORMAT=FILE for each "
                                   "(at most one of them may go to stdout: FORMAT=-)")
    if sum(1 for _, p in out if p is None) > 1:
        raise UsageError(None, "only one format can go to stdout")
    return out


def _safe_stem(name: str | None) -> str:
    """A file name for `-o DIR` from the report's binary name — which a saved report (`sysscan render`) may have
    been given by anyone: never a path (no separators, no leading dots, no control characters), else "sysscan"."""
    import re

    stem = re.sub(r"[\x00-\x1f\x7f/\\]", "_", str(name or "")).lstrip(".").strip()[:200]
    return stem or "sysscan"


def write_text(path: str, text: str) -> None:
    try:
        outfile.write_text(path, text)
    except OSError as e:
        raise UsageError(path, f"cannot write the report: {e.strerror or e}") from None


def emit(reports: list[Report], fmt_spec: str, outputs, opts_for) -> None:
    """Render every requested format and write it. `opts_for(to_terminal)` gives the renderer options."""
    targets = plan(parse_formats(fmt_spec), outputs, reports)
    for fmt, path in targets:
        to_terminal = path is None and sys.stdout.isatty()
        text = render_all(reports, fmt, opts_for(to_terminal))
        if path is None:
            sys.stdout.write(text)
            sys.stdout.flush()
        else:
            write_text(path, text)
