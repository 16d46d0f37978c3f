"""`sysscan PATH...`: the scan command's arguments, and the run they ask for."""
from __future__ import annotations

import os
from typing import TYPE_CHECKING

from ..errors import InputNotFound

if TYPE_CHECKING:
    from ..run.pool import BatchResult


def _jobs_arg(text: str) -> int:
    import argparse

    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of jobs: {text!r}") from None
    if v < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0 (0: one per core): {text!r}")
    return v


def add_batch_args(p) -> None:
    g = p.add_argument_group("many inputs")
    g.add_argument("-j", "--jobs", type=_jobs_arg, default=0, metavar="N",
                   help="worker processes when several files need analysing (default 0: one per core)")


def limits_from_args(args):
    from ..budget import DEFAULT_MAX_SIZE, Limits

    return Limits(timeout=getattr(args, "timeout", None), max_size=getattr(args, "max_size", None) or
                  DEFAULT_MAX_SIZE, max_memory_mb=getattr(args, "max_memory", None))


def scan_for_cli(args, options) -> BatchResult:
    """`sysscan PATH...`: scan, print a warning per unreadable file and an error line per failed file on stderr
    (sorted by path), and return the result. One explicit file that fails raises its error, as it always did."""
    import sys

    from ..cache import ResultCache
    from ..run.pool import scan_paths
    from ..textsafe import escape_controls
    from .progress import RichProgress

    quiet = getattr(args, "quiet", False)
    if getattr(args, "no_cache", False):
        os.environ["SYSSCAN_NO_CACHE"] = "1"  # the rule-file cache too, and every worker process
    cache = ResultCache()
    progress = RichProgress() if not quiet and sys.stderr.isatty() else None
    result = scan_paths(args.paths, options, limits_from_args(args), jobs=getattr(args, "jobs", 0), cache=cache,
                        progress=progress)
    if not result.many and result.failures:
        raise result.failures[0].error
    if not quiet:
        for s in result.skipped:
            if s.warn:
                print(f"sysscan: warning: {escape_controls(s.path)}: {escape_controls(s.reason)}", file=sys.stderr)
    if not result.files:
        where = ", ".join(result.directories) or ", ".join(args.paths)
        raise InputNotFound(where, "no ELF files found in this directory" if len(result.directories) == 1 else
                                   "no ELF files found in these directories")
    for f in result.failures:
        print(escape_controls(f.line), file=sys.stderr)
    return result
