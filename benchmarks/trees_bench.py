#!/usr/bin/env python3
"""Two checkouts side by side: the same commands, interleaved round by round, so that both see the same machine.

    .venv/bin/python benchmarks/trees_bench.py --before /tmp/before --after . [--runs 7] [--busybox PATH]
        [--vmlinux PATH]

A refactor that must not cost speed (issue 17, "the house") is measured this way: busybox cold (no result cache)
and warm (the result cache primed), and a kernel's cold analysis (no kernel cache). Each tree runs in a fresh
interpreter with the tree first on sys.path and its bytecode precompiled. Prints best and median wall time per tree
and the after/before ratios; results go in BENCHMARKS.md with the machine and the date.
"""
from __future__ import annotations

import argparse
import compileall
import os
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from benchutil import machine, measure  # noqa: E402


def cmd(tree: Path, *args: str) -> list[str]:
    boot = ("import sys; sys.path.insert(0, sys.argv.pop(1)); from analyzer.cli import main; "
            "sys.exit(main(sys.argv[1:]))")
    return [sys.executable, "-c", boot, str(tree), *args]


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--before", required=True)
    ap.add_argument("--after", default=".")
    ap.add_argument("--runs", type=int, default=7)
    ap.add_argument("--busybox", default=os.environ.get("SYSSCAN_BUSYBOX"))
    ap.add_argument("--vmlinux", default=os.environ.get("SYSSCAN_VMLINUX_61"))
    a = ap.parse_args()
    trees = {"before": Path(a.before).resolve(), "after": Path(a.after).resolve()}
    for t in trees.values():
        compileall.compile_dir(str(t / "analyzer"), quiet=1)
    caches = {k: tempfile.mkdtemp(prefix=f"trees-{k}-") for k in trees}
    cases = {}
    if a.busybox:
        cases["busybox cold"] = (["-f", "json", "-q", "--no-cache", a.busybox], False)
        cases["busybox warm"] = (["-f", "json", "-q", a.busybox], True)
    if a.vmlinux:
        cases["kernel cold"] = (["kernel", a.vmlinux, "-f", "json", "--no-cache"], False)
    base_env = {k: v for k, v in os.environ.items() if k != "SYSSCAN_NO_CACHE"}
    for name, tree in trees.items():  # prime the warm caches
        if a.busybox:
            measure(cmd(tree, *cases["busybox warm"][0]), env={**base_env, "XDG_CACHE_HOME": caches[name]})
    times: dict[tuple[str, str], list] = {}
    for _ in range(a.runs):
        for case, (args, _warm) in cases.items():
            for name, tree in trees.items():
                r = measure(cmd(tree, *args), env={**base_env, "XDG_CACHE_HOME": caches[name]})
                if r.rc not in (0, 1):
                    raise SystemExit(f"{name} {case}: exit {r.rc}")
                times.setdefault((case, name), []).append(r)
    print(f"# {machine()}")
    print(f"{'case':14} {'before best/median':>20} {'after best/median':>20} {'ratio best/median':>18} "
          f"{'MB before/after':>16}")
    for case in cases:
        b, f = times[(case, "before")], times[(case, "after")]
        bb, bm = min(r.wall for r in b), statistics.median(r.wall for r in b)
        fb, fm = min(r.wall for r in f), statistics.median(r.wall for r in f)
        print(f"{case:14} {bb:9.3f}/{bm:.3f} s {fb:9.3f}/{fm:.3f} s {fb / bb:9.2f}/{fm / bm:.2f}x "
              f"{max(r.rss_mb for r in b):7.0f}/{max(r.rss_mb for r in f):.0f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
