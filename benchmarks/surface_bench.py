#!/usr/bin/env python3
"""Speed of the program surface, each figure a fresh `sysscan` process as a user pays it:

    .venv/bin/python benchmarks/surface_bench.py [--runs 3]

* libc.so.6 cold: `sysscan /lib/x86_64-linux-gnu/libc.so.6` with an empty cache — its sites, values and its
  surface summary (a library scanned on its own: every export a root);
* a new program with the libraries already summarised: the cache primed by scanning /usr/bin/cat, then
  /usr/bin/date, /usr/bin/wc and /usr/bin/ls scanned for the first time (no result-cache hit: a new file);
  ls also needs libselinux and libpcre2, not primed;
* the same programs with --no-surface: what the surface costs on top of the raw sites.
"""
from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from benchutil import best_median, env_with_cache, header, measure, precompile, sysscan_cmd  # noqa: E402

LIBC = "/lib/x86_64-linux-gnu/libc.so.6"


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=3)
    a = ap.parse_args()
    precompile()
    rows: dict[str, list] = {}
    for _ in range(a.runs):
        with tempfile.TemporaryDirectory() as cache:
            env = env_with_cache(cache)
            rows.setdefault("libc.so.6 cold (sites, values, summary)", []).append(
                measure(sysscan_cmd(LIBC, "-f", "json", "-q"), env=env))
        with tempfile.TemporaryDirectory() as cache:
            env = env_with_cache(cache)
            rows.setdefault("prime: /usr/bin/cat, empty cache", []).append(
                measure(sysscan_cmd("/usr/bin/cat", "-f", "json", "-q"), env=env))
            for prog in ("/usr/bin/date", "/usr/bin/wc", "/usr/bin/ls"):
                tmp = tempfile.mkdtemp()
                try:  # a copy under a new name is still the same bytes: the result cache would answer; so
                    # the result cache is cleared between, the summaries (derived cache) kept
                    shutil.rmtree(os.path.join(cache, "sysscan", "reports"), ignore_errors=True)
                    rows.setdefault(f"{os.path.basename(prog)}, libraries summarised", []).append(
                        measure(sysscan_cmd(prog, "-f", "json", "-q"), env=env))
                    rows.setdefault(f"{os.path.basename(prog)}, --no-surface --no-cache", []).append(
                        measure(sysscan_cmd(prog, "-f", "json", "-q", "--no-surface", "--no-cache"), env=env))
                finally:
                    shutil.rmtree(tmp, ignore_errors=True)
    print(header())
    print("| case | wall s (best / median) | CPU s | peak MB |")
    print("|---|---|---|---|")
    for name, rs in rows.items():
        print(f"| {name} | {best_median([r.wall for r in rs])} | {min(r.cpu for r in rs):.2f} | "
              f"{max(r.rss_mb for r in rs):.0f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
