"""Where each requested format goes: `--format sarif,html -o DIR`, `-o FORMAT=FILE` per format, `-o FILE` for one
format, stdout when there is one format and no -o. Writes are atomic (temp file + rename).

    -f json                      -> stdout
    -f json -o r.json            -> r.json
    -f sarif,html -o out/        -> out/NAME.sarif, out/NAME.html   (NAME: the binary's name, or "sysscan")
    -f sarif,html -o sarif=a.sarif -o html=-   -> a.sarif, and the HTML on stdout
    -f seccomp -o out/ A B       -> out/sysscan.seccomp.json (the union), out/A.seccomp.json, out/B.seccomp.json
"""
from __future__ import annotations

import os
import sys

from .. import outfile
from ..errors import UsageError
from ..model import Report
from . import EXTENSIONS, PROFILE_FORMATS, RENDERERS, render_all, render_profile


def parse_formats(spec: str) -> list[str]:
    fmts = [f.strip() for f in str(spec).split(",") if f.strip()]
    if not fmts:
        raise UsageError(None, "no output format given")
    for f in fmts:
        if f not in RENDERERS:
            raise UsageError(None, f"unknown format {f!r}; choose from {', '.join(RENDERERS)}")
    return list(dict.fromkeys(fmts))


def plan(fmts: list[str], outputs: list[str] | str | None,
         reports: list[Report]) -> list[tuple[str, str | None, bool]]:
    """(format, path or None for stdout, whether the path is in a `-o DIR`) per format."""
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
    out: list[tuple[str, str | None, bool]] = []
    for f in fmts:
        if f in mapped:
            path = mapped[f]
            out.append((f, None if path in ("", "-") else path, False))
        elif directory is not None:
            out.append((f, os.path.join(directory, f"{stem}.{EXTENSIONS.get(f, f)}"), True))
        elif plain:
            out.append((f, None if plain[0] == "-" else plain[0], False))
        elif len(fmts) == 1:
            out.append((f, None, False))
        else:
            raise UsageError(None, f"several formats ({', '.join(fmts)}) need -o DIR or -o FORMAT=FILE for each "
                                   "(at most one of them may go to stdout: FORMAT=-)")
    if sum(1 for _, p, _d in out if p is None) > 1:
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
    for fmt, path, in_directory in targets:
        to_terminal = path is None and sys.stdout.isatty()
        opts = opts_for(to_terminal)
        text = render_all(reports, fmt, opts)
        if path is None:
            sys.stdout.write(text)
            sys.stdout.flush()
        else:
            write_text(path, text)
        if fmt in PROFILE_FORMATS and in_directory and len(reports) > 1:  # and each binary's own profile
            for stem, profile, name in per_binary(reports, opts["profiles"]):
                write_text(os.path.join(os.path.dirname(path), f"{stem}.{EXTENSIONS[fmt]}"),
                           render_profile(fmt, profile, name))


def per_binary(reports: list[Report], profiles: list) -> list[tuple[str, object, str]]:
    """(file stem, profile, name) per binary for `-o DIR`: the binary's name, with the start of its hash when two
    binaries share a name (or one is called "sysscan", the union's name)."""
    names = [_safe_stem(r.binary.name) for r in reports]
    out = []
    for r, stem, prof in zip(reports, names, profiles):
        if names.count(stem) > 1 or stem == "sysscan":
            stem = f"{stem}-{r.binary.sha256[:12]}"
        out.append((stem, prof, r.binary.name))
    return out
