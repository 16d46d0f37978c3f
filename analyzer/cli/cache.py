"""`sysscan cache info|clear`."""
from __future__ import annotations

import json

from ..cache import clear, info


def cmd_cache(argv) -> int:
    """`sysscan cache info|clear [reports|kernel|all]`."""
    import argparse
    import sys

    p = argparse.ArgumentParser(prog="sysscan cache",
                                description="The result and kernel-analysis caches under $XDG_CACHE_HOME/sysscan.")
    sub = p.add_subparsers(dest="action", required=True)
    i = sub.add_parser("info", help="where the caches are and how big")
    i.add_argument("-f", "--format", choices=("text", "json"), default="text")
    c = sub.add_parser("clear", help="delete cached results (default: both caches)")
    c.add_argument("which", nargs="?", choices=("all", "reports", "kernel"), default="all")
    args = p.parse_args(list(argv))
    if args.action == "clear":
        n = clear(args.which)
        print(f"removed {n} cached file(s) ({args.which})")
        return 0
    d = info()
    if args.format == "json":
        sys.stdout.write(json.dumps(d, indent=2, sort_keys=True) + "\n")
        return 0
    r, k = d["reports"], d["kernel"]
    print(f"cache directory  {d['directory']}")
    print(f"reports          {r['entries']} entries, {r['bytes'] / 1e6:.1f} MB (bound {r['max_bytes'] / 1e6:.0f} MB, "
          "SYSSCAN_CACHE_MAX_MB)")
    print(f"kernel analyses  {k['entries']} entries, {k['bytes'] / 1e6:.1f} MB")
    print(f"code fingerprint {d['code']} (sysscan {d['tool_version']})")
    return 0
