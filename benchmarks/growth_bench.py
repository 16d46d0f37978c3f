#!/usr/bin/env python3
"""Growth benchmark: time and memory of a cold `sysscan FILE` against the binary's size, from ~2 MB to ≥ 40 MB,
on one kind of code (Go: the corpus program, the Go 1.19 toolchain's tools, and Debian's rclone / hugo), with the
time split into phases, to show how the cost grows and which stage grows with it.

    .venv/bin/python benchmarks/growth_bench.py [FILE ...] [--runs 1] [--json out.json]

Default files: corpus/bin/go_hello, /usr/lib/go-1.19/pkg/tool/linux_amd64/{asm,vet,pprof,compile},
/usr/lib/go-1.19/bin/go, and rclone / hugo from Debian 12 (`apt-get download rclone hugo`, then
`dpkg-deb -x`; looked for under $SYSSCAN_GO_BIG or /work/dl/gobig/x/usr/bin).

Per file: the whole command (`sysscan FILE -f json --no-cache`, a fresh process: wall, CPU, peak RSS), then the
same pipeline in a fresh process with a clock around each stage: import LIEF, load (LIEF parse, symbols,
.eh_frame, Go pclntab), sites (byte search + confirmation by decoding), values (data flow at every site, the
inter-procedural stage), rules.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from benchutil import ROOT, env_with_cache, header, load, measure, precompile, sysscan_cmd  # noqa: E402

TOOLS = "/usr/lib/go-1.19/pkg/tool/linux_amd64"
BIG = os.environ.get("SYSSCAN_GO_BIG", "/work/dl/gobig/x/usr/bin")
DEFAULT = [str(ROOT / "corpus/bin/go_hello"), f"{TOOLS}/asm", f"{TOOLS}/vet", f"{TOOLS}/pprof",
           "/usr/lib/go-1.19/bin/go", f"{TOOLS}/compile", f"{BIG}/rclone", f"{BIG}/hugo"]

PHASES = r"""
import json, resource, sys, time
T = time.perf_counter
rss = lambda: resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
path = sys.argv[1]
out = {}
t = T(); import lief; out["import"] = T() - t
from analyzer import scan
from analyzer.rules import apply_rules, shipped_rules
shipped_rules()
import gc; gc.disable()  # as scan_file does (analyzer.budget.gc_paused)
t = T(); lb = scan.load(path); out["load"] = T() - t; out["rss_load"] = rss()
t = T(); raws, rejected = scan.find_sites(lb, incomplete=[]); out["sites"] = T() - t
t = T()
engine = scan.ValueEngine(lb)
inc = []
sites = [scan.build_site_safely(lb, r, engine, inc) for r in raws]
out["values"] = T() - t
out["rss_values"] = rss()
from analyzer import model
rep = model.Report(binary=scan.binary_info(lb), table=model.TableInfo(source="embedded", kernel_version=""))
rep.sites = sites
t = T(); scan.summarize_report(rep); apply_rules(rep, shipped_rules()); out["rules"] = T() - t
out.update(functions=len(lb.functions), n_sites=len(sites), go=lb.go is not None,
           resolved=sum(1 for s in sites if s.number.status == "resolved"))
print(json.dumps(out))
"""


def main() -> None:
    precompile()
    ap = argparse.ArgumentParser()
    ap.add_argument("files", nargs="*")
    ap.add_argument("--runs", type=int, default=1)
    ap.add_argument("--json")
    a = ap.parse_args()
    files = [f for f in (a.files or DEFAULT) if os.path.exists(f)]
    print(header())
    env = env_with_cache(None, SYSSCAN_NO_CACHE="1")
    rows, raw = [], []
    for f in sorted(files, key=os.path.getsize):
        size = os.path.getsize(f) / 1e6
        whole = [measure(sysscan_cmd(f, "-f", "json", "-o", os.devnull, "--no-cache"), env=env)
                 for _ in range(a.runs)]
        best = min(whole, key=lambda r: r.wall)
        ph = measure([sys.executable, "-c", PHASES, f], env=env, capture=True)
        try:
            p = json.loads(ph.stdout.strip().splitlines()[-1])
        except (ValueError, IndexError):
            p = {}
            print(f"phases failed for {f}: {ph.stderr[-500:]}", file=sys.stderr)
        rows.append(f"| {os.path.basename(f)} | {size:.1f} | {p.get('functions', '?')} | {p.get('n_sites', '?')} "
                    f"({p.get('resolved', '?')} resolved) | {best.wall:.1f} | {best.cpu:.1f} | {best.rss_mb:.0f} | "
                    f"{p.get('load', 0):.2f} | {p.get('sites', 0):.2f} | {p.get('values', 0):.2f} | "
                    f"{p.get('rules', 0):.2f} | {best.cpu / size:.2f} |")
        raw.append({"file": f, "mb": size, "whole": [r.__dict__ for r in whole], "phases": p})
        print(rows[-1], flush=True)
    print(f"at end: {load()}\n")
    print("| binary | MB | functions | sites | wall s | CPU s | peak RSS MB | load s | sites s | values s | "
          "rules s | CPU s/MB |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(r)
    if a.json:
        Path(a.json).write_text(json.dumps(raw, indent=2))


if __name__ == "__main__":
    os.chdir(ROOT)
    main()
