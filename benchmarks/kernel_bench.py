#!/usr/bin/env python3
"""Kernel-side benchmark: sysscan's kernel analysis vs systrack, side by side in one run.

    .venv/bin/python benchmarks/kernel_bench.py [--vmlinux V ...] [--runs 5] [--systrack PATH] [--evict]

For each vmlinux (default: $SYSSCAN_VMLINUX_61 and $SYSSCAN_VMLINUX_612) and each run, interleaved:
  * sysscan cold   `python -m analyzer.kernel V --json` with an empty $XDG_CACHE_HOME (full analysis; it then
                   writes the cache, as a first real run does)
  * sysscan warm   the same command again (cache hit)
  * systrack       `systrack -a x86-64 -f json V`
Each is a fresh process; wall time and that process's peak RSS (wait4) are recorded; the best and the median
of the runs are reported. With --evict, the vmlinux's pages are dropped from the page cache
(posix_fadvise DONTNEED) before every cold run of either tool, i.e. a first run after boot/download.

Exactness: both tools' x86-64 tables are compared with the kernel's own syscall_64.tbl when
$SYSSCAN_TBL_61 / $SYSSCAN_TBL_612 are set (number -> __x64_<entry point> when that symbol exists and is not
an -ENOSYS stub), and with each other.

Writes benchmarks/kernel_bench.json and prints a Markdown table (for benchmarks/BENCHMARKS.md).
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, ROOT)


def run(cmd: list[str], env: dict | None = None, stdout=None) -> tuple[float, int, int, float]:
    """(wall seconds, peak RSS in KB, exit status, CPU seconds user+sys) of one child process (and its own
    children, e.g. systrack's addr2line, which wait4 does not see: those are added from RUSAGE_CHILDREN)."""
    import resource

    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, stdout=stdout or subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _pid, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    proc.returncode = os.waitstatus_to_exitcode(status)
    return wall, usage.ru_maxrss, proc.returncode, max(cpu, usage.ru_utime + usage.ru_stime)


def evict(path: str) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)


def warm_page_cache(path: str) -> None:
    with open(path, "rb") as f:
        while f.read(1 << 24):
            pass


def find_systrack(explicit: str | None) -> str | None:
    for cand in (explicit, shutil.which("systrack"), "/work/dl/systrack-venv/bin/systrack",
                 os.path.join(os.path.dirname(sys.executable), "systrack")):
        if cand and os.path.exists(cand):
            return cand
    return None


def parse_tbl(path: str) -> dict[int, str | None]:
    out = {}
    with open(path) as f:
        for line in f:
            cols = line.split("#", 1)[0].split()
            if len(cols) >= 3 and cols[1] in ("common", "64"):
                out[int(cols[0])] = cols[3] if len(cols) > 3 else None
    return out


def exactness(vmlinux: str, tbl: str | None, ours: dict, theirs: dict | None) -> dict:
    """Implemented x86-64 syscalls (number -> handler symbol) per the .tbl, ours and systrack's."""
    from analyzer.kernel import analyze_kernel, load_kernel

    a = analyze_kernel(vmlinux, use_cache=True)
    ours_impl = {h["nr"]: h["symbol"] for h in ours["tables"]["x86_64"] if not h["enosys"]}
    res: dict = {"sysscan_implemented": len(ours_impl), "nr_syscalls": a.dispatchers["x86_64"].nr_syscalls}
    if theirs is not None:
        theirs_impl = {s["number"]: s["symbol"] for s in theirs["syscalls"]}
        res["systrack_implemented"] = len(theirs_impl)
        res["only_sysscan"] = sorted(f"{n}:{ours_impl[n]}" for n in set(ours_impl) - set(theirs_impl))
        res["only_systrack"] = sorted(f"{n}:{theirs_impl[n]}" for n in set(theirs_impl) - set(ours_impl))
        res["different_symbol"] = sorted(f"{n}:{ours_impl[n]}/{theirs_impl[n]}"
                                         for n in set(ours_impl) & set(theirs_impl) if ours_impl[n] != theirs_impl[n])
    if tbl:
        img = load_kernel(vmlinux)
        rows = parse_tbl(tbl)
        truth = {}
        for nr, entry in rows.items():
            sym = f"__x64_{entry}" if entry else None
            if sym and image_has(img, sym):
                h = a.resolve("x86_64", nr)
                if sym in {h.symbol, *h.aliases} and not h.enosys:
                    truth[nr] = sym
                elif sym not in {h.symbol, *h.aliases}:
                    truth[nr] = sym  # ours is wrong here: count it as a miss below
        # every number of the table, exact: ours vs .tbl over 0..NR-1
        wrong = 0
        for nr in range(a.dispatchers["x86_64"].nr_syscalls):
            entry = rows.get(nr)
            sym = f"__x64_{entry}" if entry else None
            h = a.resolve("x86_64", nr)
            if sym and image_has(img, sym):
                wrong += sym not in {h.symbol, *h.aliases}
            else:
                wrong += not h.enosys
        res["sysscan_exact"] = f"{a.dispatchers['x86_64'].nr_syscalls - wrong}/{a.dispatchers['x86_64'].nr_syscalls}"
        res["tbl_implemented"] = len(truth)
        if theirs is not None:
            theirs_impl = {s["number"]: s["symbol"] for s in theirs["syscalls"]}
            res["systrack_missing_vs_tbl"] = sorted(f"{n}:{s}" for n, s in truth.items() if theirs_impl.get(n) != s)
            res["systrack_extra_vs_tbl"] = sorted(f"{n}:{s}" for n, s in theirs_impl.items() if n not in truth)
    return res


def image_has(img, sym: str) -> bool:
    return bool(img.symbols_named(sym))


def summarize(xs: list[float]) -> dict:
    return {"best": min(xs), "median": statistics.median(xs), "runs": xs}


def main() -> int:
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from benchutil import precompile

    precompile()
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--vmlinux", action="append", help="vmlinux to measure (repeatable)")
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--systrack", help="path to the systrack executable")
    ap.add_argument("--evict", action="store_true", help="drop the vmlinux from the page cache before cold runs")
    ap.add_argument("--out", default=os.path.join(HERE, "kernel_bench.json"))
    args = ap.parse_args()

    kernels = []
    for v in args.vmlinux or []:
        kernels.append((os.path.basename(v), v, None))
    if not kernels:
        for tag in ("61", "612"):
            v = os.environ.get(f"SYSSCAN_VMLINUX_{tag}")
            if v:
                kernels.append((tag, v, os.environ.get(f"SYSSCAN_TBL_{tag}")))
    if not kernels:
        print("no vmlinux: pass --vmlinux or set SYSSCAN_VMLINUX_61/612 (benchmarks/fetch_kernel.sh)",
              file=sys.stderr)
        return 2
    systrack = find_systrack(args.systrack)
    py = sys.executable
    results = {"runs": args.runs, "evict": args.evict, "systrack": systrack, "kernels": {}}
    for tag, vm, tbl in kernels:
        rec = {"path": vm, "size": os.path.getsize(vm), "sysscan_cold": [], "sysscan_warm": [], "systrack": []}
        ours_json = theirs_json = None
        warm_page_cache(vm)
        for _ in range(args.runs):
            cache = tempfile.mkdtemp(prefix="sysscan-bench-")
            env = dict(os.environ, XDG_CACHE_HOME=cache, PYTHONPATH=ROOT)
            try:
                if args.evict:
                    evict(vm)
                with tempfile.TemporaryFile() as out:
                    wall, rss, _rc, cpu = run([py, "-m", "analyzer.kernel", vm, "--json"], env, out)
                    rec["sysscan_cold"].append((wall, rss, cpu))
                    out.seek(0)
                    ours_json = json.load(out)
                wall, rss, _rc, cpu = run([py, "-m", "analyzer.kernel", vm, "--json"], env)
                rec["sysscan_warm"].append((wall, rss, cpu))
            finally:
                shutil.rmtree(cache, ignore_errors=True)
            if systrack:
                if args.evict:
                    evict(vm)
                with tempfile.TemporaryFile() as out:
                    wall, rss, rc, cpu = run([systrack, "-a", "x86-64", "-f", "json", vm], None, out)
                    out.seek(0)
                    if rc == 0:
                        theirs_json = json.load(out)
                rec["systrack"].append((wall, rss, cpu))
        for k in ("sysscan_cold", "sysscan_warm", "systrack"):
            if rec[k]:
                rec[k] = {"seconds": summarize([w for w, _, _ in rec[k]]),
                          "cpu_seconds": summarize([c for _, _, c in rec[k]]),
                          "peak_rss_mb": max(r for _, r, _ in rec[k]) / 1024}
            else:
                rec[k] = None
        rec["exactness"] = exactness(vm, tbl, ours_json, theirs_json)
        if rec["systrack"]:
            rec["speedup_cold_best"] = rec["systrack"]["seconds"]["best"] / rec["sysscan_cold"]["seconds"]["best"]
            rec["speedup_cold_median"] = (rec["systrack"]["seconds"]["median"]
                                          / rec["sysscan_cold"]["seconds"]["median"])
            rec["speedup_cold_cpu_best"] = (rec["systrack"]["cpu_seconds"]["best"]
                                            / rec["sysscan_cold"]["cpu_seconds"]["best"])
        results["kernels"][tag] = rec
    with open(args.out, "w") as f:
        json.dump(results, f, indent=1)
    print(markdown(results))
    return 0


def markdown(results: dict) -> str:
    import platform

    lines = [f"runs: {results['runs']} per tool, interleaved; page cache "
             f"{'evicted before each cold run' if results['evict'] else 'warm'}; wall seconds best / median; "
             f"CPU = user+sys of the best run; peak RSS of the process; {os.cpu_count()} CPUs, load average "
             f"{os.getloadavg()[0]:.1f} at the end; Python {platform.python_version()}", "",
             "| kernel | sysscan cold | sysscan warm (cache) | systrack | speed-up cold wall best / median / CPU | "
             "RSS sysscan / systrack | exact (sysscan) | implemented sysscan / systrack / .tbl |",
             "|---|---|---|---|---|---|---|---|"]
    def secs(x):
        if not x:
            return "n/a"
        return (f"{x['seconds']['best']:.2f} / {x['seconds']['median']:.2f} s "
                f"(CPU {x['cpu_seconds']['best']:.2f})")

    for tag, r in results["kernels"].items():
        c, w, s = r["sysscan_cold"], r["sysscan_warm"], r["systrack"]
        ex = r["exactness"]
        speed = (f"{r['speedup_cold_best']:.1f}x / {r['speedup_cold_median']:.1f}x / "
                 f"{r['speedup_cold_cpu_best']:.1f}x") if s else "n/a"
        rss = f"{c['peak_rss_mb']:.0f} MB / " + (f"{s['peak_rss_mb']:.0f} MB" if s else "n/a")
        impl = (f"{ex.get('sysscan_implemented')} / {ex.get('systrack_implemented', 'n/a')} / "
                f"{ex.get('tbl_implemented', 'n/a')}")
        lines.append(f"| {tag} | {secs(c)} | {secs(w)} | {secs(s)} | {speed} | {rss} | "
                     f"{ex.get('sysscan_exact', 'n/a')} | {impl} |")
    for tag, r in results["kernels"].items():
        ex = r["exactness"]
        for k in ("only_sysscan", "only_systrack", "different_symbol", "systrack_missing_vs_tbl",
                  "systrack_extra_vs_tbl"):
            if ex.get(k):
                lines.append(f"- {tag}: {k}: {', '.join(ex[k])}")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
