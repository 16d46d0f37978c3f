"""Command line: arguments → pipeline → renderer; errors → one line and an exit code. No analysis here.

Exit codes (README, "Exit codes"): 0 clean, 1 findings at or above --fail-on, 2 usage, 3 input missing/unreadable,
4 not an ELF, 5 corrupt/truncated ELF, 6 unsupported architecture, 7 bad vmlinux, 8 bad rules, 9 bad saved report,
10 a limit (--max-size, --max-memory, --timeout) stopped a file before anything could be reported, 70 internal error,
130 interrupted.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence

from .. import __version__
from ..errors import INTERNAL_ERROR_EXIT, BadReport, SysscanError, UsageError
from ..model import Report
from ..textsafe import terminal_safe

FORMATS = ("table", "json", "sarif", "markdown", "html")
SUBCOMMANDS = ("scan", "render", "rules", "kernel", "cache")


def _parser_scan() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="sysscan",
        description="Find where a Linux ELF enters the kernel: syscall/sysenter/int 0x80 sites, the syscall number "
                    "and arguments at each, and (with --vmlinux) the kernel function that handles it.",
        epilog="Other commands: 'sysscan kernel VMLINUX' prints a kernel's recovered syscall tables; "
               "'sysscan render REPORT.json' re-renders a saved JSON report; "
               "'sysscan rules lint|list' checks and lists the YAML rules. "
               "Exit codes: 0 ok, 1 findings at/above --fail-on, 2 usage, 3 missing/unreadable input, 4 not an ELF, "
               "5 corrupt ELF, 6 unsupported architecture, 7 bad vmlinux, 8 bad rules, 9 bad report, 10 limit hit "
               "before any report, 70 internal.",
    )
    p.add_argument("paths", nargs="+", metavar="PATH",
                   help="ELF file(s) to analyse (x86-64 or i386), or directories: every ELF file under them")
    _kernel_args(p)
    from .rules import add_rule_args  # --rules --select --ignore --fail-on --baseline --allowlist

    add_rule_args(p)
    _output_args(p)
    _limit_args(p)
    from .scan import add_batch_args  # --jobs

    add_batch_args(p)
    return p


def _kernel_args(p: argparse.ArgumentParser, scan: bool = True) -> None:
    g = p.add_argument_group("kernel")
    if scan:
        g.add_argument("--vmlinux", metavar="VMLINUX",
                       help="an uncompressed kernel image with symbols (e.g. Debian's linux-image-*-dbg): name "
                            "syscalls as this kernel does and show each site's path to its handler")
    g.add_argument("--graph", metavar="FILE",
                   help="write the site → entry → dispatcher → handler graph (.graphml, .dot or .json)")
    g.add_argument("--no-cache", action="store_true",
                   help="do not read or write the caches of results and kernel analyses ($XDG_CACHE_HOME/sysscan; "
                        "'sysscan cache clear' empties them)")


def _kernel_analysis(path: str, args: argparse.Namespace):
    from ..errors import BadKernel, CorruptELF, NotAnELF, UnsupportedArch
    from ..kernel import analyze_kernel

    try:
        return analyze_kernel(path, use_cache=not args.no_cache)
    except (NotAnELF, CorruptELF, UnsupportedArch) as e:  # a bad kernel is exit 7 whatever is wrong with it
        raise BadKernel(e.path, e.problem) from None


def _limit_args(p: argparse.ArgumentParser) -> None:
    """Resource limits for untrusted input (README, "Limits and hostile input")."""
    from ..budget import DEFAULT_TIMEOUT

    g = p.add_argument_group("limits (untrusted input)")
    g.add_argument("--timeout", type=_seconds, default=DEFAULT_TIMEOUT, metavar="SECONDS",
                   help=f"wall-clock budget per binary (default {DEFAULT_TIMEOUT:g}; 0 = none); sites left when it "
                        "runs out are reported unresolved and the report is marked incomplete")
    g.add_argument("--max-size", type=_size, default=None, metavar="BYTES",
                   help="refuse inputs larger than this (suffixes K, M, G; default 2G): exit code 10")
    g.add_argument("--max-memory", type=_megabytes, default=None, metavar="MB",
                   help="analyse each binary in a child process that may map at most MB more memory than the "
                        "interpreter already does (RLIMIT_AS); a binary that exceeds it gets a report marked "
                        "incomplete (exit 10 if it could not even be loaded), the run goes on")


def _seconds(text: str) -> float | None:
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if v < 0 or v != v:
        raise argparse.ArgumentTypeError(f"must be >= 0: {text!r}")
    return v or None


def _size(text: str) -> int:
    units = {"k": 1 << 10, "m": 1 << 20, "g": 1 << 30}
    t = text.strip().lower().removesuffix("b")
    mult = units.get(t[-1:], 1)
    try:
        v = int(float(t[:-1] if t[-1:] in units else t) * mult)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a size: {text!r} (e.g. 500M)") from None
    if v <= 0:
        raise argparse.ArgumentTypeError(f"must be > 0: {text!r}")
    return v


def _megabytes(text: str) -> int:
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of MB: {text!r}") from None
    if v < 64:
        raise argparse.ArgumentTypeError(f"at least 64 MB: {text!r}")
    return v


def _scan_limited(path: str, args: argparse.Namespace, options=None) -> Report:
    """One binary under the user's limits: in a child process when --max-memory is given, else in-process with
    the per-binary deadline (checked per block/site) and a SIGALRM backstop a little after it."""
    from ..errors import LimitExceeded
    from ..budget import DEFAULT_MAX_SIZE, HARD_STOP_GRACE, BudgetExceeded, Limits, time_limit
    from ..run.isolate import run_isolated
    from ..run.pipeline import scan_file

    limits = Limits(timeout=getattr(args, "timeout", None), max_size=getattr(args, "max_size", None) or
                    DEFAULT_MAX_SIZE, max_memory_mb=getattr(args, "max_memory", None))
    if limits.max_memory_mb is not None:
        result = run_isolated(path, options, limits)
        if isinstance(result, Exception):  # the file's SysscanError, or limits.InternalFailure (exit 70)
            raise result
        return result
    hard = None if limits.timeout is None else limits.timeout + HARD_STOP_GRACE
    try:
        with time_limit(hard):
            return scan_file(path, options, limits=limits)
    except BudgetExceeded:
        raise LimitExceeded(path, f"time budget exhausted ({limits.timeout:g}s, --timeout) before anything could "
                                  "be reported") from None


def _output_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("-f", "--format", default="table",
                   help=f"output format(s), comma separated: {', '.join(FORMATS)} (default: table)")
    p.add_argument("-o", "--output", metavar="FILE", action="append",
                   help="write to FILE instead of stdout; with several formats a directory (DIR/NAME.EXT), or "
                        "FORMAT=FILE once per format (repeatable)")
    p.add_argument("-v", "--verbose", action="count", default=0, help="more detail: sections, offsets, reasons")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress or notes on stderr")
    p.add_argument("--color", choices=("auto", "always", "never"), default="auto", help="terminal colours")
    p.add_argument("--width", type=int, default=None, help="terminal width for the table format")
    p.add_argument("--version", action="version", version=f"sysscan {__version__}")


def _parser_render() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="sysscan render", description="Render a saved JSON report again.")
    p.add_argument("report", metavar="REPORT.json")
    from .rules import add_rule_args  # saved findings are kept unless rule options are given

    add_rule_args(p, render=True)
    _output_args(p)
    return p


def _render_opts(args: argparse.Namespace, to_terminal: bool) -> dict:
    color = args.color == "always" or (args.color == "auto" and to_terminal and not os.environ.get("NO_COLOR"))
    return {"verbose": args.verbose, "color": color, "width": args.width}


def _check_format(fmt: str) -> str:
    from ..render.output import parse_formats

    parse_formats(fmt)  # comma separated, each one known
    return fmt


def _emit(reports: list[Report], args: argparse.Namespace, ruleset=None, many=None) -> None:
    from ..render.output import emit

    extra = {}
    if many is not None:  # several inputs or a directory: the union across binaries goes with the reports
        from ..aggregate import build_aggregate

        extra["aggregate"] = build_aggregate(reports, many.failures, many.skipped)

    def opts(to_terminal: bool) -> dict:
        return {**_render_opts(args, to_terminal), "rules": ruleset, **extra}

    emit(reports, args.format, args.output, opts)


def cmd_scan(argv: Sequence[str]) -> int:
    args = _parser_scan().parse_args(argv)
    _check_format(args.format)
    from ..run.pipeline import ScanOptions

    if args.graph and not args.vmlinux:
        raise UsageError(args.graph, "--graph needs --vmlinux (the graph runs from each site into the kernel)")
    kernel = _kernel_analysis(args.vmlinux, args) if args.vmlinux else None
    options = ScanOptions(kernel=kernel)
    from .scan import scan_for_cli  # directories, the worker pool, the result cache; failures on stderr

    batch = scan_for_cli(args, options)
    reports = batch.reports
    if args.graph:
        _write_graph(kernel, [s for r in reports for s in r.sites], args.graph)
    from .rules import finish  # rules stage, baseline/allowlist, output, then the --fail-on exit code

    rc = finish(reports, args, lambda reps, ruleset: _emit(reps, args, ruleset, batch if batch.many else None))
    return max(rc, batch.exit_code)  # a file that failed: the highest exit code among them (README)


def _check_saved_report(doc) -> None:
    """Validate one saved report against analyzer/schemas/report.schema.json; ValueError naming the first problem."""
    import importlib.resources

    import jsonschema

    global _REPORT_SCHEMA
    if _REPORT_SCHEMA is None:
        text = importlib.resources.files("analyzer").joinpath("schemas/report.schema.json").read_text("utf-8")
        _REPORT_SCHEMA = jsonschema.Draft7Validator(json.loads(text))
    err = jsonschema.exceptions.best_match(_REPORT_SCHEMA.iter_errors(doc))
    if err is not None:
        where = "/".join(str(p) for p in err.absolute_path) or "top level"
        raise ValueError(f"does not match the report schema at {where}: {err.message[:200]}")


_REPORT_SCHEMA = None


def cmd_render(argv: Sequence[str]) -> int:
    args = _parser_render().parse_args(argv)
    try:
        with open(args.report, encoding="utf-8") as fh:
            data = json.load(fh)
    except FileNotFoundError:
        raise BadReport(args.report, "no such file") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, RecursionError) as e:
        raise BadReport(args.report, f"not a JSON report: {type(e).__name__}: {str(e)[:200]}") from None
    try:
        items = data["reports"] if isinstance(data, dict) and "reports" in data else [data]
        if not isinstance(items, list):
            raise TypeError("'reports' is not a list")
        for d in items:  # a saved report is untrusted input too (an artifact from a fork): the schema first
            _check_saved_report(d)
        # strings in a saved report reach terminals and files: no control or bidi characters (names from the
        # binary were escaped when it was scanned; this holds for reports sysscan did not write)
        reports = [terminal_safe(Report.from_dict(d), keep_whitespace=True) for d in items]
    except (ValueError, KeyError, TypeError, AttributeError, RecursionError) as e:
        raise BadReport(args.report, f"not a sysscan report: {str(e)[:300]}") from None
    from .rules import finish  # rules stage, baseline/allowlist, output, then the --fail-on exit code

    many = None
    if isinstance(data, dict) and "reports" in data:  # a multi-report document: its union is recomputed
        from ..aggregate import saved_lists

        many = saved_lists(data)
    return finish(reports, args, lambda reps, ruleset: _emit(reps, args, ruleset, many))


def _write_graph(kernel, sites, path: str) -> None:
    from ..kernel.graph import build_graph, write_graph

    try:
        write_graph(build_graph(kernel, sites), path)
    except ValueError as e:  # an extension we cannot write
        raise UsageError(path, str(e)) from None
    except OSError as e:
        raise UsageError(path, f"cannot write the graph: {e.strerror or e}") from None


def cmd_kernel(argv: Sequence[str]) -> int:
    """`sysscan kernel VMLINUX`: the kernel's recovered entries, dispatchers and syscall tables."""
    p = argparse.ArgumentParser(prog="sysscan kernel",
                                description="Recover a vmlinux's syscall entry points, dispatchers and tables.")
    p.add_argument("vmlinux", metavar="VMLINUX")
    p.add_argument("-f", "--format", choices=("table", "json"), default="table")
    p.add_argument("-o", "--output", metavar="FILE", help="write to FILE instead of stdout")
    p.add_argument("--all", action="store_true", help="list -ENOSYS numbers too")
    p.add_argument("--width", type=int, default=None, help="terminal width for the table format")
    p.add_argument("--sources", action="store_true",
                   help="add each handler's SYSCALL_DEFINE file:line from DWARF (needs addr2line; ~1 s once)")
    _kernel_args(p, scan=False)
    args = p.parse_args(argv)
    k = _kernel_analysis(args.vmlinux, args)
    if args.sources:
        from ..kernel.sources import fill_sources

        fill_sources(k)
    if args.graph:
        _write_graph(k, None, args.graph)
    from ..render.kernel import render_kernel

    text = render_kernel(k, args.format, {"all": args.all, "width": args.width})
    if args.output:
        try:
            with open(args.output, "w", encoding="utf-8") as fh:
                fh.write(text)
        except OSError as e:
            raise UsageError(args.output, f"cannot write: {e.strerror or e}") from None
    else:
        sys.stdout.write(text)
    return 0


def cmd_rules(argv: Sequence[str]) -> int:
    from .rules import cmd_rules as run

    return run(argv)


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not os.environ.get("SYSSCAN_DEBUG"):
        import warnings

        warnings.simplefilter("ignore")  # library warnings would break "errors are one line on stderr"
    from .cache import cmd_cache

    commands = {"scan": cmd_scan, "render": cmd_render, "rules": cmd_rules, "kernel": cmd_kernel,
                "cache": cmd_cache}
    if argv and argv[0] in commands:
        cmd, rest = commands[argv[0]], argv[1:]
    else:
        cmd, rest = cmd_scan, argv
    try:
        return cmd(rest)
    except SysscanError as e:
        print(f"sysscan: error: {e}", file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:
        print("sysscan: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        try:
            sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - silence the interpreter's flush at exit
        except OSError:
            pass
        return 0
    except MemoryError:
        print("sysscan: error: out of memory", file=sys.stderr)
        return INTERNAL_ERROR_EXIT
    except Exception as e:  # a bug in sysscan: one line, not a traceback; SYSSCAN_DEBUG=1 shows it
        if os.environ.get("SYSSCAN_DEBUG"):
            raise
        print(f"sysscan: internal error: {type(e).__name__}: {e} (set SYSSCAN_DEBUG=1 for a traceback)",
              file=sys.stderr)
        return INTERNAL_ERROR_EXIT


if __name__ == "__main__":
    sys.exit(main())
