"""Scan benchmark (issue 2): wall time and peak memory of a cold `sysscan FILE -f json`, sites vs objdump.

Each run is a fresh process (imports included), as a user or CI pays it. Peak RSS comes from wait4's rusage of
that child. The independent site count is objdump's linear sweep (`objdump -d -w`, all executable sections),
which also counts decoys; for these binaries it has none.

    .venv/bin/python benchmarks/scan_bench.py [FILE ...] [--runs 3]
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT = [ROOT / "corpus/bin/hello_static", ROOT / "corpus/bin/idioms_glibc_static", Path("/usr/bin/busybox")]
SITE_RE = re.compile(r"\t(syscall|sysenter|int\s+\$0x80)\s*$")


def objdump_sites(path: Path) -> int | None:
    if not shutil.which("objdump"):
        return None
    out = subprocess.run(["objdump", "-d", "-w", str(path)], capture_output=True, text=True).stdout
    return sum(1 for line in out.splitlines() if SITE_RE.search(line))


def run_once(path: Path, cold: bool = True) -> tuple[float, int, dict]:
    """Wall seconds, peak RSS in KiB, and the parsed report of one run: cold = no result cache."""
    with tempfile.NamedTemporaryFile(suffix=".json") as out:
        cmd = [sys.executable, "-m", "analyzer.cli", str(path), "-f", "json", "-o", out.name]
        cmd += ["--no-cache"] if cold else []
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, cwd=ROOT)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - t0
        if os.waitstatus_to_exitcode(status) != 0:
            raise SystemExit(f"{path}: sysscan exited {status}")
        return wall, usage.ru_maxrss, json.loads(Path(out.name).read_text())


def main() -> None:
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from benchutil import precompile

    precompile()
    ap = argparse.ArgumentParser()
    ap.add_argument("files", nargs="*", type=Path)
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    files = args.files or [p for p in DEFAULT if p.exists()]
    print(f"machine: {platform.node()} {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}")
    print(f"date: {time.strftime('%Y-%m-%d')}, runs per file: {args.runs} (median)\n")
    print("| binary | size | sites (sysscan / objdump) | resolved | partial | unresolved | cold wall s | "
          "cold peak RSS MB | warm wall s |")
    print("|---|---|---|---|---|---|---|---|---|")
    for f in files:
        runs = [run_once(f) for _ in range(args.runs)]
        wall = statistics.median(r[0] for r in runs)
        rss = max(r[1] for r in runs) / 1024
        run_once(f, cold=False)  # fill the result cache
        warm = statistics.median(run_once(f, cold=False)[0] for _ in range(args.runs))
        s = runs[0][2]["summary"]
        pct = 100.0 * s["resolved"] / s["sites"] if s["sites"] else 100.0
        print(f"| {f.name} | {f.stat().st_size // 1024} KB | {s['sites']} / {objdump_sites(f)} | "
              f"{s['resolved']} ({pct:.1f} %) | {s['partial']} | {s['unresolved']} | {wall:.2f} | {rss:.0f} | "
              f"{warm:.2f} |")


if __name__ == "__main__":
    main()
