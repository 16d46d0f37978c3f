"""`sysscan kernel VMLINUX|auto`, and the `--vmlinux` / `--graph` steps the scan command shares with it."""
from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from ..errors import UsageError
from .args import add_kernel_args


def kernel_from_cli(path: str, args: argparse.Namespace):
    """The kernel analysis of `path` (the inputs door: any problem with the file is a bad kernel, exit 7)."""
    from ..inputs import load_kernel

    return load_kernel(path, use_cache=not args.no_cache)


def graph_from_cli(kernel, sites, path: str) -> None:
    """`--graph FILE`: the site → entry → dispatcher → handler graph (UsageError, exit 2, when it cannot be written)."""
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
                                description="Recover a kernel's syscall entry points, dispatchers and tables.")
    p.add_argument("vmlinux", metavar="VMLINUX",
                   help="/boot/vmlinuz-* (compressed; symbols from kallsyms), a vmlinux (stripped or not), or 'auto' "
                        "for the running kernel's image (the -dbg vmlinux if installed, else /boot/vmlinuz)")
    p.add_argument("-f", "--format", choices=("table", "json"), default="table")
    p.add_argument("-o", "--output", metavar="FILE", help="write to FILE instead of stdout")
    p.add_argument("--all", action="store_true", help="list -ENOSYS numbers too")
    p.add_argument("--width", type=int, default=None, help="terminal width for the table format")
    p.add_argument("--sources", action="store_true",
                   help="add each handler's SYSCALL_DEFINE file:line from DWARF (needs addr2line; ~1 s once)")
    add_kernel_args(p, scan=False)
    args = p.parse_args(argv)
    k = kernel_from_cli(args.vmlinux, args)
    if args.sources:
        from ..kernel.sources import fill_sources

        fill_sources(k)
    if args.graph:
        graph_from_cli(k, None, args.graph)
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
