#!/usr/bin/env python3
"""Scale benchmark: a directory of N files from /usr/bin (cold and warm), and one file (Debian's busybox) cold and
warm, each a fresh `sysscan` process as a user or CI pays it.

    .venv/bin/python benchmarks/scale_bench.py [--files 400] [--jobs 2] [--runs 3] [--file /usr/bin/busybox]
                                               [--vmlinux VMLINUX] [--json out.json]

* the directory: the first N regular ELF files of /usr/bin by name (symbolic links to them in a temporary
  directory, so nothing is copied; sysscan follows a link to a file it has not seen);
* cold = an empty $XDG_CACHE_HOME (the first run on a machine, or after `sysscan cache clear`): discovery, hashing,
  the analyses on --jobs workers, then the cache is written; warm = the same command again (every file a hit);
* output `-f json -o FILE` (the table renderer's own cost is measured separately for the single file);
* --vmlinux adds `sysscan FILE --vmlinux V` cold (both caches empty) and warm (both hit).

Prints Markdown rows for benchmarks/BENCHMARKS.md, with the machine, the date and the load average.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from benchutil import ROOT, best_median, env_with_cache, header, load, measure, precompile, sysscan_cmd  # noqa: E402


def usr_bin_sample(n: int, into: Path) -> tuple[int, int]:
    """Links to the first n regular ELF files of /usr/bin; (count, total bytes)."""
    count = size = 0
    for name in sorted(os.listdir("/usr/bin")):
        p = os.path.join("/usr/bin", name)
        if os.path.islink(p) or not os.path.isfile(p):
            continue
        try:
            with open(p, "rb") as f:
                if f.read(4) != b"\x7fELF":
                    continue
        except OSError:
            continue
        os.symlink(p, into / name)
        count += 1
        size += os.path.getsize(p)
        if count == n:
            break
    return count, size


def cold_warm(args_: list[str], runs: int, warm_runs: int) -> tuple[list, list, dict | None]:
    """`runs` cold runs (each with a fresh empty cache), each followed by `warm_runs` warm ones."""
    colds, warms = [], []
    doc = None
    for _ in range(runs):
        with tempfile.TemporaryDirectory() as cache, tempfile.TemporaryDirectory() as outdir:
            out = os.path.join(outdir, "r.json")
            env = env_with_cache(cache)
            r = measure(sysscan_cmd(*args_, "-f", "json", "-o", out), env=env, capture=True)
            if r.rc not in (0, 1):
                raise SystemExit(f"sysscan exited {r.rc}: {r.stderr[-2000:]}")
            colds.append(r)
            with open(out) as f:
                doc = json.load(f)
            for _ in range(warm_runs):
                warms.append(measure(sysscan_cmd(*args_, "-f", "json", "-o", out), env=env))
    return colds, warms, doc


def main() -> None:
    precompile()
    ap = argparse.ArgumentParser()
    ap.add_argument("--files", type=int, default=400)
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--runs", type=int, default=2, help="cold runs (each followed by --warm-runs warm ones)")
    ap.add_argument("--warm-runs", type=int, default=3)
    ap.add_argument("--file", default="/usr/bin/busybox")
    ap.add_argument("--vmlinux", default=os.environ.get("SYSSCAN_VMLINUX_61"))
    ap.add_argument("--skip-dir", action="store_true")
    ap.add_argument("--json", help="write the raw figures here")
    a = ap.parse_args()
    print(header())
    results: dict = {"jobs": a.jobs}
    rows = []

    if a.file and os.path.exists(a.file):
        colds, warms, doc = cold_warm([a.file], a.runs, a.warm_runs)
        s = doc["summary"]
        size = os.path.getsize(a.file) / 1e6
        rows.append(f"| {os.path.basename(a.file)} ({size:.1f} MB, {s['sites']} sites) | json | "
                    f"{best_median([r.wall for r in colds])} (CPU {min(r.cpu for r in colds):.2f}) | "
                    f"{best_median([r.wall for r in warms])} (CPU {min(r.cpu for r in warms):.2f}) | "
                    f"{max(r.rss_mb for r in colds):.0f} / {max(r.rss_mb for r in warms):.0f} |")
        with tempfile.TemporaryDirectory() as cache:  # the table renderer on a warm cache
            env = env_with_cache(cache)
            measure(sysscan_cmd(a.file, "-f", "json", "-o", os.devnull), env=env)
            tw = [measure(sysscan_cmd(a.file, "--width", "160", "--color", "never"), env=env)
                  for _ in range(a.warm_runs)]
        rows.append(f"| {os.path.basename(a.file)} | table | | {best_median([r.wall for r in tw])} "
                    f"(CPU {min(r.cpu for r in tw):.2f}) | {max(r.rss_mb for r in tw):.0f} |")
        results["file"] = {"path": a.file, "cold": [r.__dict__ for r in colds], "warm": [r.__dict__ for r in warms],
                           "warm_table": [r.__dict__ for r in tw]}
        if a.vmlinux and os.path.exists(a.vmlinux):
            vc, vw, _ = cold_warm([a.file, "--vmlinux", a.vmlinux], 1, a.warm_runs)
            rows.append(f"| {os.path.basename(a.file)} --vmlinux {os.path.basename(a.vmlinux)} | json | "
                        f"{vc[0].wall:.2f} (CPU {vc[0].cpu:.2f}) | {best_median([r.wall for r in vw])} "
                        f"(CPU {min(r.cpu for r in vw):.2f}) | {vc[0].rss_mb:.0f} / {max(r.rss_mb for r in vw):.0f} |")
            results["vmlinux"] = {"cold": [r.__dict__ for r in vc], "warm": [r.__dict__ for r in vw]}

    if not a.skip_dir:
        with tempfile.TemporaryDirectory() as d:
            n, size = usr_bin_sample(a.files, Path(d))
            colds, warms, doc = cold_warm([d, "--jobs", str(a.jobs)], a.runs, a.warm_runs)
            agg = doc["aggregate"]["summary"]
            reports = len(doc["reports"])
            cold_best = min(r.wall for r in colds)
            warm_best = min(r.wall for r in warms)
            rows.append(f"| /usr/bin, first {n} ELF files ({size / 1e6:.0f} MB; {reports} reported, "
                        f"{agg['raw']} with raw syscalls, {agg['failed']} failed) | json, --jobs {a.jobs} | "
                        f"{best_median([r.wall for r in colds])} (CPU {min(r.cpu for r in colds):.1f}; "
                        f"{n / cold_best:.0f} files/s) | {best_median([r.wall for r in warms])} "
                        f"(CPU {min(r.cpu for r in warms):.2f}; **{n / warm_best:.0f} files/s**) | "
                        f"{max(r.rss_mb for r in colds):.0f} / {max(r.rss_mb for r in warms):.0f} |")
            results["dir"] = {"files": n, "bytes": size, "cold": [r.__dict__ for r in colds],
                              "warm": [r.__dict__ for r in warms], "aggregate": agg}

    print(f"at end: {load()}\n")
    print("| input | output | cold s, best / median | warm s, best / median | peak RSS MB, cold / warm |")
    print("|---|---|---|---|---|")
    for r in rows:
        print(r)
    if a.json:
        for v in results.values():
            if isinstance(v, dict):
                for k in ("cold", "warm", "warm_table"):
                    for r in v.get(k, []):
                        r.pop("stdout", None), r.pop("stderr", None)
        Path(a.json).write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    os.chdir(ROOT)
    main()
