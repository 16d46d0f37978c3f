#!/usr/bin/env python3
"""sysscan vs a whole-program angr CFGFast on the same file (issue: "≥ 30× faster, ≤ 300 MB").

    .venv/bin/python benchmarks/cfgfast_bench.py [FILE] [--runs 3] [--angr-runs 1] [--json out.json]

Default FILE: corpus/bin/idioms_glibc_static (the static glibc corpus binary). Each measurement is a fresh
process (imports included), peak RSS from wait4:

* sysscan cold: `sysscan FILE -f json --no-cache` (everything: load, sites, values, rules, output);
* sysscan, a new binary: its result not cached, but sysscan has run on this machine before (parsed rules cached);
* sysscan warm: the same with the result cache populated;
* angr: `angr.Project(FILE, auto_load_libs=False).analyses.CFGFast()` — what a tool built on angr pays before it
  can even look for syscall sites (angr's own import included, as sysscan's LIEF/Capstone imports are).

Also prints how many syscall sites angr's CFG has (blocks ending in a syscall jumpkind) next to sysscan's count.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from benchutil import ROOT, env_with_cache, header, load, measure, precompile, sysscan_cmd  # noqa: E402

ANGR = r"""
import json, sys, time
t = time.perf_counter()
import angr
t_imp = time.perf_counter() - t
p = angr.Project(sys.argv[1], auto_load_libs=False)
cfg = p.analyses.CFGFast()
total = time.perf_counter() - t
sites = set()
for f in cfg.kb.functions.values():
    for b in f.blocks:
        try:
            insns = b.capstone.insns
        except Exception:
            continue
        sites.update(i.address for i in insns if i.mnemonic in ("syscall", "sysenter") or
                     (i.mnemonic == "int" and i.op_str == "0x80"))
print(json.dumps({"import": t_imp, "total": total, "nodes": len(cfg.graph),
                  "functions": len(cfg.kb.functions), "sites": sorted(sites)}))
"""


def main() -> None:
    precompile()
    ap = argparse.ArgumentParser()
    ap.add_argument("file", nargs="?", default=str(ROOT / "corpus/bin/idioms_glibc_static"))
    ap.add_argument("--runs", type=int, default=3, help="sysscan runs (best is reported)")
    ap.add_argument("--angr-runs", type=int, default=1, help="CFGFast runs (~1 min each)")
    ap.add_argument("--json")
    a = ap.parse_args()
    print(header())
    cold_env = env_with_cache(None, SYSSCAN_NO_CACHE="1")
    with tempfile.TemporaryDirectory() as out_dir:
        out = os.path.join(out_dir, "r.json")
        cold = [measure(sysscan_cmd(a.file, "-f", "json", "-o", out, "--no-cache"), env=cold_env)
                for _ in range(a.runs)]
        with open(out) as fh:
            ours = {int(s["address"], 16) for s in json.load(fh)["sites"]}
        sites = len(ours)
        with tempfile.TemporaryDirectory() as cache:
            env = env_with_cache(cache)
            measure(sysscan_cmd(str(ROOT / "corpus/bin/i386_raw"), "-f", "json", "-o", out), env=env)
            new = []  # a binary never seen, on a machine where sysscan has run (parsed rules cached)
            for _ in range(a.runs):
                shutil.rmtree(os.path.join(cache, "sysscan", "reports"), ignore_errors=True)
                new.append(measure(sysscan_cmd(a.file, "-f", "json", "-o", out), env=env))
            warm = [measure(sysscan_cmd(a.file, "-f", "json", "-o", out), env=env) for _ in range(3)]
    angr = [measure([sys.executable, "-c", ANGR, a.file], env=cold_env, capture=True) for _ in range(a.angr_runs)]
    info = {}
    try:
        info = json.loads(angr[0].stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        print(f"angr run failed: {angr[0].stderr[-1000:]}", file=sys.stderr)
    c, w, g = min(cold, key=lambda r: r.wall), min(warm, key=lambda r: r.wall), min(angr, key=lambda r: r.wall)
    n = min(new, key=lambda r: r.wall)
    print(f"at end: {load()}\n")
    name = os.path.basename(a.file)
    size = os.path.getsize(a.file) / 1e6
    print("| tool | wall s | CPU s | peak RSS MB | syscall sites found |")
    print("|---|---|---|---|---|")
    print(f"| sysscan cold (`{name}`, {size:.1f} MB) | {c.wall:.2f} | {c.cpu:.2f} | {c.rss_mb:.0f} | {sites} |")
    print(f"| sysscan, a new binary (its result not cached; rules parsed before) | {n.wall:.2f} | {n.cpu:.2f} | "
          f"{n.rss_mb:.0f} | {sites} |")
    print(f"| sysscan warm (cache hit) | {w.wall:.2f} | {w.cpu:.2f} | {w.rss_mb:.0f} | {sites} |")
    print(f"| angr 9.2 CFGFast (whole program; import {info.get('import', 0):.1f} s) | {g.wall:.2f} | "
          f"{g.cpu:.2f} | {g.rss_mb:.0f} | {len(info.get('sites', []))} in the CFG's blocks "
          f"({info.get('functions', '?')} functions) |")
    theirs = set(info.get("sites", []))
    if theirs:
        print(f"\nsite addresses: both {len(ours & theirs)}, only sysscan {sorted(map(hex, ours - theirs))}, "
              f"only angr's CFG {sorted(map(hex, theirs - ours))}")
    print(f"\nspeed-up cold: {g.wall / c.wall:.1f}x wall, {g.cpu / c.cpu:.1f}x CPU; new binary: "
          f"{g.wall / n.wall:.1f}x wall, {g.cpu / n.cpu:.1f}x CPU; warm: {g.wall / w.wall:.0f}x; "
          f"memory: {g.rss_mb / c.rss_mb:.1f}x less")
    if a.json:
        Path(a.json).write_text(json.dumps({"file": a.file, "sysscan_cold": [r.__dict__ for r in cold],
                                            "sysscan_warm": [r.__dict__ for r in warm],
                                            "sysscan_new": [r.__dict__ for r in new],
                                            "angr": [{**r.__dict__, "stdout": "", "stderr": ""} for r in angr],
                                            "angr_info": info}, indent=2, default=str))


if __name__ == "__main__":
    os.chdir(ROOT)
    main()
