"""Arguments shared by the commands: value types (each a clear argparse error), option groups, render options."""
from __future__ import annotations

import argparse
import os

from .. import __version__

FORMATS = ("table", "json", "sarif", "markdown", "html", "seccomp", "systemd", "k8s")


def seconds(text: str) -> float | None:
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if v < 0 or v != v:
        raise argparse.ArgumentTypeError(f"must be >= 0: {text!r}")
    return v or None


def size(text: str) -> int:
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


def megabytes(text: str) -> int:
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of MB: {text!r}") from None
    if v < 64:
        raise argparse.ArgumentTypeError(f"at least 64 MB: {text!r}")
    return v


def jobs(text: str) -> int:
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of jobs: {text!r}") from None
    if v < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0 (0: one per core): {text!r}")
    return v


def add_kernel_args(p: argparse.ArgumentParser, scan: bool = True) -> None:
    g = p.add_argument_group("kernel")
    if scan:
        g.add_argument("--vmlinux", metavar="VMLINUX",
                       help="a kernel: /boot/vmlinuz-* (compressed; symbols from kallsyms), a vmlinux (e.g. "
                            "Debian's linux-image-*-dbg: source lines too), or 'auto' for the running kernel's: name "
                            "syscalls as this kernel does and show each site's path to its handler")
    g.add_argument("--graph", metavar="FILE",
                   help="write the site → entry → dispatcher → handler graph (.graphml, .dot or .json)")
    g.add_argument("--no-cache", action="store_true",
                   help="do not read or write the caches of results and kernel analyses ($XDG_CACHE_HOME/sysscan; "
                        "'sysscan cache clear' empties them)")


def add_limit_args(p: argparse.ArgumentParser) -> None:
    """Resource limits for untrusted input (README, "Limits and hostile input")."""
    from ..budget import DEFAULT_TIMEOUT

    g = p.add_argument_group("limits (untrusted input)")
    g.add_argument("--timeout", type=seconds, default=DEFAULT_TIMEOUT, metavar="SECONDS",
                   help=f"wall-clock budget per binary (default {DEFAULT_TIMEOUT:g}; 0 = none); sites left when it "
                        "runs out are reported unresolved and the report is marked incomplete")
    g.add_argument("--max-size", type=size, default=None, metavar="BYTES",
                   help="refuse inputs larger than this (suffixes K, M, G; default 2G): exit code 10")
    g.add_argument("--max-memory", type=megabytes, default=None, metavar="MB",
                   help="analyse each binary in a child process that may map at most MB more memory than the "
                        "interpreter already does (RLIMIT_AS); a binary that exceeds it gets a report marked "
                        "incomplete (exit 10 if it could not even be loaded), the run goes on")


def add_batch_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("many inputs")
    g.add_argument("-j", "--jobs", type=jobs, default=0, metavar="N",
                   help="worker processes when several files need analysing (default 0: one per core)")


def add_output_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("-f", "--format", default="table",
                   help=f"output format(s), comma separated: {', '.join(FORMATS)} (default: table)")
    p.add_argument("-o", "--output", metavar="FILE", action="append",
                   help="write to FILE instead of stdout; with several formats a directory (DIR/NAME.EXT), or "
                        "FORMAT=FILE once per format (repeatable)")
    p.add_argument("--seccomp-default", choices=("errno", "kill", "log"), default="errno",
                   help="seccomp, systemd and k8s formats: what a syscall outside the profile gets (errno: EPERM, "
                        "the default; kill: the process is killed; log: allowed and logged)")
    p.add_argument("--seccomp-runtime", choices=("runc", "none"), default="runc",
                   help="seccomp, systemd and k8s formats: also allow what this container runtime makes between "
                        "installing the filter and exec'ing the program (default runc, which Docker, containerd "
                        "and Kubernetes use; none: only the execve)")
    p.add_argument("-v", "--verbose", action="count", default=0, help="more detail: sections, offsets, reasons")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress or notes on stderr")
    p.add_argument("--color", choices=("auto", "always", "never"), default="auto", help="terminal colours")
    p.add_argument("--width", type=int, default=None, help="terminal width for the table format")
    p.add_argument("--version", action="version", version=f"sysscan {__version__}")


def render_opts(args: argparse.Namespace, to_terminal: bool) -> dict:
    color = args.color == "always" or (args.color == "auto" and to_terminal and not os.environ.get("NO_COLOR"))
    return {"verbose": args.verbose, "color": color, "width": args.width}


def formats_from_cli(args: argparse.Namespace) -> str:
    """`-f`: comma separated, each one known (UsageError, exit 2)."""
    from ..render.output import parse_formats

    parse_formats(args.format)
    return args.format


def emit_reports(reports: list, args: argparse.Namespace, ruleset=None, many=None) -> None:
    """Write the reports in the asked formats (render/output.py). `many` (anything with `failures` and `skipped`:
    a pool's result, a saved document's lists): several inputs, so the union across binaries goes with them,
    computed now, after the rules stage and the baseline have marked the findings."""
    from ..render.output import emit

    extra = {}
    if many is not None:
        from ..aggregate import build_aggregate

        extra["aggregate"] = build_aggregate(reports, many.failures, many.skipped, getattr(many, "images", None))
    extra.update(profiles_from_cli(reports, args))

    def opts(to_terminal: bool) -> dict:
        return {**render_opts(args, to_terminal), "rules": ruleset, **extra}

    emit(reports, args.format, args.output, opts)


def profiles_from_cli(reports: list, args: argparse.Namespace) -> dict:
    """The seccomp profiles the asked formats need: the union of all reports ("profile") and each report's own
    ("profiles", for `-o DIR`). UsageError (exit 2) when a report has no surface."""
    from ..errors import UsageError
    from ..render import PROFILE_FORMATS
    from ..render.output import parse_formats

    if not set(parse_formats(args.format)) & set(PROFILE_FORMATS) or not reports:
        return {}
    from ..seccomp import build_profile

    default = getattr(args, "seccomp_default", "errno")
    runtime = getattr(args, "seccomp_runtime", "runc")
    runtime = None if runtime == "none" else runtime
    try:
        out = {"profile": build_profile(reports, default, runtime)}
        out["profiles"] = ([build_profile([r], default, runtime) for r in reports] if len(reports) > 1 else
                           [out["profile"]])
    except ValueError as e:
        raise UsageError(None, f"--format {args.format}: {e}") from None
    warnings = out["profile"].warnings
    if warnings and not getattr(args, "quiet", False):
        import sys

        print(f"sysscan: warning: the seccomp profile may lack syscalls: {len(warnings)} place(s) the analysis "
              "cannot see into (a number not known statically, a dlopen of an unknown name, a missing library); "
              "each is listed in the profile", file=sys.stderr)
    return out
