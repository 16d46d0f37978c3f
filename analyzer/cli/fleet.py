"""`sysscan fleet PATH...`: many inputs (container images, root filesystems, directories) on a Dask cluster, one
fleet report; `sysscan who SYSCALL REPORT.json`: who in a saved fleet (or multi-report) document can make a syscall.
Only wiring: the run is run/fleet.py, the data aggregate.build_fleet, the drawing render/fleet.py."""
from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from ..errors import UsageError
from .args import add_limit_args, jobs


def _parser() -> argparse.ArgumentParser:
    from ..render.fleet import FORMATS

    p = argparse.ArgumentParser(
        prog="sysscan fleet",
        description="Scan many inputs (container images: OCI layouts, OCI or docker-save archives; root filesystems; "
                    "directories of ELF files) with a Dask cluster (pip install 'sysscan[fleet]'), deduplicated by "
                    "content, results kept in a shared store so a re-run skips what is done.")
    p.add_argument("paths", nargs="+", metavar="PATH")
    p.add_argument("--scheduler", metavar="ADDRESS",
                   help="a running Dask scheduler (tcp://host:8786) whose workers see the paths and the store; "
                        "default: a local cluster")
    p.add_argument("--workers", type=jobs, default=2, metavar="N", help="local cluster: worker processes (default 2)")
    p.add_argument("--store", metavar="DIR",
                   help="the shared result store (every worker must see it); default $XDG_CACHE_HOME/sysscan/fleet")
    p.add_argument("--retry-failed", action="store_true",
                   help="analyse again the files whose recorded result is a failure (a limit hit, a lost worker)")
    p.add_argument("--vmlinux", metavar="VMLINUX", help="name syscalls as this kernel does (as for the scan)")
    p.add_argument("--no-surface", action="store_true", help="raw sites only")
    add_limit_args(p)
    p.add_argument("-f", "--format", choices=FORMATS, default="table")
    p.add_argument("-o", "--output", metavar="FILE", help="write the report to FILE instead of stdout")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress or summary on stderr")
    p.add_argument("--color", choices=("auto", "always", "never"), default="auto")
    p.add_argument("--width", type=int, default=None)
    return p


def fleet_document(result) -> dict:
    """The fleet view and, per input, the document `sysscan INPUT -f json` writes (the same reports and aggregate)."""
    from .. import __version__
    from ..aggregate import build_aggregate, build_fleet

    inputs, rows = [], []
    for inp in result.inputs:
        res = inp.result
        agg = build_aggregate(res.reports, res.failures, res.skipped, res.images or None)
        inputs.append({"input": inp.label, "reports": [r.to_dict() for r in res.reports], "aggregate": agg})
        rows.append((inp.label, res.reports, agg))
    return {"tool": {"name": "sysscan", "version": __version__}, "fleet": build_fleet(rows), "inputs": inputs}


def cmd_fleet(argv: Sequence[str]) -> int:
    import os

    from ..render.fleet import render_fleet
    from ..render.output import write_text
    from ..run.fleet import FleetConfig, run_fleet
    from ..run.pipeline import ScanOptions
    from ..textsafe import escape_controls
    from .progress import RichProgress
    from .scan import limits_from_cli

    args = _parser().parse_args(argv)
    kernel = None
    if args.vmlinux:
        from ..inputs import load_kernel

        kernel = load_kernel(args.vmlinux)
    options = ScanOptions(kernel=kernel, surface=not args.no_surface)
    config = FleetConfig(scheduler=args.scheduler, workers=args.workers, store=args.store,
                         retry_failed=args.retry_failed)
    progress = RichProgress() if not args.quiet and sys.stderr.isatty() else None
    result = run_fleet(args.paths, options, limits_from_cli(args), config, progress)
    doc = fleet_document(result)
    if not args.quiet:
        for inp in result.inputs:
            for f in inp.result.failures:
                print(escape_controls(f"{f.line} (in {inp.label})"), file=sys.stderr)
        print(f"sysscan: fleet: {result.files} files, {result.keys} distinct, {result.stored} from the store, "
              f"{result.submitted} analysed on {result.workers} Dask workers, {result.failed} recorded failures, "
              f"{result.seconds:.1f} s", file=sys.stderr)
    to_terminal = args.output is None and sys.stdout.isatty()
    color = args.color == "always" or (args.color == "auto" and to_terminal and not os.environ.get("NO_COLOR"))
    text = render_fleet(doc, args.format, {"color": color, "width": args.width})
    if args.output:
        write_text(args.output, text)
    else:
        sys.stdout.write(text)
    return result.exit_code


def cmd_who(argv: Sequence[str]) -> int:
    """`sysscan who SYSCALL REPORT.json...`: one line per binary that can make it (`raw` when it has its own site).
    Exit 0 when someone can, 1 when nobody can."""
    from ..aggregate import who
    from ..textsafe import escape_controls
    from .render import document_from_cli

    p = argparse.ArgumentParser(prog="sysscan who", description="Who in saved fleet or multi-report JSON documents "
                                "can make a syscall (through its surface, or a raw site of its own).")
    p.add_argument("syscall", metavar="SYSCALL", help="a syscall name, e.g. ptrace")
    p.add_argument("reports", nargs="+", metavar="REPORT.json")
    args = p.parse_args(argv)
    found = 0
    for path in args.reports:
        data = document_from_cli(path)
        if not isinstance(data, dict) or not ("fleet" in data or "aggregate" in data):
            raise UsageError(path, "not a fleet or multi-report JSON document (sysscan fleet / sysscan DIR -f json)")
        for e in who(data, args.syscall):
            where = f"{e['input']}:{e['path']}" if e["input"] else e["path"]
            print(f"{escape_controls(where)}\t{'raw' if e['raw'] else 'surface'}")
            found += 1
    return 0 if found else 1
