"""`sysscan PATH...`: the scan command as a sequence of steps, each raising one exit error (errors.py):

    formats_from_cli   -f                       UsageError (2)
    ruleset_from_cli   --rules/--select/…       BadRules (8)      (cli/rules.py)
    kernel_from_cli    --vmlinux                BadKernel (7)     (cli/kernel.py)
    surface_from_cli   --no-surface/--sysroot   UsageError (2)
    debug_dirs_from_cli --debug-dir/--no-debug-files UsageError (2)
    limits_from_cli    --timeout/--max-*        (argparse types: 2)
    results_from_cli   the paths: discovery, the pool, the cache; a failed explicit file raises its own error
    finish             baseline/allowlist, output, the --fail-on gate (cli/rules.py)

The rules run once, in each binary's pipeline, with the user's selection.
"""
from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING

from ..errors import InputNotFound, UsageError
from .args import add_batch_args, add_kernel_args, add_limit_args, add_output_args, emit_reports, formats_from_cli

if TYPE_CHECKING:
    from ..budget import Limits
    from ..run.pool import BatchResult


def _parser() -> argparse.ArgumentParser:
    from .rules import add_rule_args  # --rules --select --ignore --fail-on --baseline --allowlist

    p = argparse.ArgumentParser(
        prog="sysscan",
        description="Find where a Linux ELF enters the kernel: syscall/sysenter/int 0x80 sites, the syscall number "
                    "and arguments at each, and (with --vmlinux) the kernel function that handles it.",
        epilog="Other commands: 'sysscan kernel VMLINUX' prints a kernel's recovered syscall tables; "
               "'sysscan render REPORT.json' re-renders a saved JSON report; "
               "'sysscan rules lint|list' checks and lists the YAML rules. "
               "Exit codes: 0 ok, 1 findings at/above --fail-on, 2 usage, 3 missing/unreadable input, 4 not an ELF, "
               "5 corrupt ELF, 6 unsupported architecture, 7 bad vmlinux, 8 bad rules, 9 bad report, 10 limit hit "
               "before any report, 11 bad container image, 70 internal.",
    )
    p.add_argument("paths", nargs="+", metavar="PATH",
                   help="ELF file(s) to analyse (x86-64 or i386), directories (every ELF file under them), a root "
                        "filesystem, or a container image (an OCI layout directory, an OCI or docker-save archive)")
    add_kernel_args(p)
    add_rule_args(p)
    add_output_args(p)
    add_limit_args(p)
    add_batch_args(p)
    g = p.add_argument_group("program surface")
    g.add_argument("--no-surface", action="store_true",
                   help="raw sites only: do not follow the program into ld.so and its shared libraries")
    g.add_argument("--sysroot", metavar="DIR", default="/",
                   help="resolve the program's interpreter and libraries under DIR (a container root, a cross "
                        "tree), with DIR/etc/ld.so.cache; default /, or the PATH itself when it is a root "
                        "filesystem (it has etc/os-release and usr/)")
    g.add_argument("--debug-dir", metavar="DIR", action="append", default=[],
                   help="look for stripped objects' separate debug files (DIR/.build-id/ab/cdef….debug, as gdb does) "
                        "in DIR before /usr/lib/debug; repeatable. Their symbol tables give the data objects' "
                        "extents and the local functions' names: a tighter surface")
    g.add_argument("--no-debug-files", action="store_true",
                   help="do not read separate debug files (the surface from the files' own symbols only)")
    return p


def debug_dirs_from_cli(args: argparse.Namespace) -> tuple[str, ...]:
    """`--debug-dir DIR` (UsageError, exit 2, when DIR is not a directory) before /usr/lib/debug; () with
    `--no-debug-files`."""
    from ..elf.debugfile import DEFAULT_DIRS

    if args.no_debug_files:
        if args.debug_dir:
            raise UsageError(args.debug_dir[0], "--debug-dir and --no-debug-files contradict each other")
        return ()
    for d in args.debug_dir:
        if not os.path.isdir(d):
            raise UsageError(d, "--debug-dir: not a directory")
    return tuple(dict.fromkeys([os.path.abspath(d) for d in args.debug_dir] + list(DEFAULT_DIRS)))


def surface_from_cli(args: argparse.Namespace) -> tuple[bool, str]:
    """`--no-surface`, `--sysroot DIR` (UsageError, exit 2, when DIR is not a directory). A directory argument that
    is a root filesystem (an unpacked image) is its own sysroot when --sysroot is not given; one at a time."""
    from ..inputs import is_rootfs

    if not os.path.isdir(args.sysroot):
        raise UsageError(args.sysroot, "--sysroot: not a directory")
    roots = [p for p in args.paths if is_rootfs(p)]
    if roots and args.sysroot == "/" and os.path.realpath(roots[0]) != "/":
        if len(args.paths) > 1:
            raise UsageError(roots[0], "a root filesystem is scanned on its own (its programs use its libraries): "
                                       "give it alone, or pass --sysroot")
        return not args.no_surface, roots[0]
    return not args.no_surface, args.sysroot


def limits_from_cli(args: argparse.Namespace) -> Limits:
    from ..budget import DEFAULT_MAX_SIZE, Limits

    return Limits(timeout=getattr(args, "timeout", None), max_size=getattr(args, "max_size", None) or
                  DEFAULT_MAX_SIZE, max_memory_mb=getattr(args, "max_memory", None))


def image_from_cli(args: argparse.Namespace) -> str | None:
    """The container image given (an OCI layout, an OCI or docker-save archive), if one is: alone, and without
    --sysroot (the image is its own root). UsageError (exit 2) otherwise."""
    from ..inputs.image import is_image

    images = [p for p in args.paths if is_image(p)]
    if not images:
        return None
    if len(args.paths) > 1:
        raise UsageError(images[0], "a container image is scanned on its own (its programs use its libraries): "
                                    "give it alone")
    if getattr(args, "sysroot", "/") != "/":
        raise UsageError(images[0], "--sysroot: a container image is its own root")
    return images[0]


def results_from_cli(args: argparse.Namespace, options, limits: Limits) -> BatchResult:
    """Scan the paths; print a warning per unreadable file and an error line per failed file on stderr (sorted by
    path), and return the result. One explicit file that fails raises its error, as it always did."""
    from ..cache import ResultCache
    from ..run.pool import scan_paths
    from ..textsafe import escape_controls
    from .progress import RichProgress

    quiet = getattr(args, "quiet", False)
    if getattr(args, "no_cache", False):
        os.environ["SYSSCAN_NO_CACHE"] = "1"  # the rule-file cache too, and every worker process
    cache = ResultCache()
    progress = RichProgress() if not quiet and sys.stderr.isatty() else None
    image = image_from_cli(args)
    if image is not None:
        from ..run.image import scan_image

        result = scan_image(image, options, limits, jobs=getattr(args, "jobs", 0), cache=cache, progress=progress)
    else:
        result = scan_paths(args.paths, options, limits, jobs=getattr(args, "jobs", 0), cache=cache,
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


def cmd_scan(argv: Sequence[str]) -> int:
    from ..run.pipeline import ScanOptions
    from .kernel import graph_from_cli, kernel_from_cli
    from .rules import finish, rules_asked, ruleset_from_cli

    args = _parser().parse_args(argv)
    formats_from_cli(args)
    if args.graph and not args.vmlinux:
        raise UsageError(args.graph, "--graph needs --vmlinux (the graph runs from each site into the kernel)")
    ruleset = ruleset_from_cli(args)
    kernel = kernel_from_cli(args.vmlinux, args) if args.vmlinux else None
    # None when no rule option is given: the shipped rules, under the result cache's "shipped" key
    surface, sysroot = surface_from_cli(args)
    options = ScanOptions(kernel=kernel, rules=ruleset if rules_asked(args) else None, surface=surface,
                          sysroot=sysroot, debug_dirs=debug_dirs_from_cli(args))
    batch = results_from_cli(args, options, limits_from_cli(args))
    reports = batch.reports
    if args.graph:
        graph_from_cli(kernel, [s for r in reports for s in r.sites], args.graph)
    rc = finish(reports, args, lambda reps, rs: emit_reports(reps, args, rs, batch if batch.many else None),
                ruleset=ruleset)
    return max(rc, batch.exit_code)  # a file that failed: the highest exit code among them (README)
