#!/usr/bin/env python3
"""Kernels as users have them: `sysscan kernel /boot/vmlinuz-*` beside vmlinux-to-elf, in one run.

    .venv/bin/python benchmarks/vmlinuz_bench.py [--runs 3] [--peer PATH] [--no-peer]

Images (benchmarks/fetch_vmlinuz.sh; fetched here when the variable is unset):
  SYSSCAN_VMLINUZ_61           Debian 12 6.1 cloud (LZ4)    reference: the -dbg vmlinux SYSSCAN_VMLINUX_61
  SYSSCAN_VMLINUZ_612          Debian 12 6.12 cloud (zstd)  reference: the -dbg vmlinux SYSSCAN_VMLINUX_612
  SYSSCAN_VMLINUZ_61_GENERIC   Debian 12 6.1 generic (xz)   reference: the kernel's .tbl files (SYSSCAN_TBL_61)

For each image and run, interleaved, each a fresh process (wall time, peak RSS by wait4):
  * sysscan cold     `python -m analyzer.cli kernel IMG -f json` with an empty $XDG_CACHE_HOME (decompress,
                     kallsyms, the whole kernel analysis; then it writes the cache, as a first real run does)
  * sysscan cached   the same command again
  * vmlinux-to-elf   `vmlinux-to-elf --e-machine 62 --bit-size 64 IMG OUT` (the peer: it decompresses and
                     rebuilds an ELF with the kallsyms symbols, the step before an analysis), once per
                     image: it is slow
Exactness: every ABI's table from the vmlinuz, entry by entry, against the -dbg vmlinux's analysis (all fields but
the source line), or against the .tbl files. The peer's result: its exit status, and the symbols its ELF has.

Writes benchmarks/vmlinuz_bench.json and prints a Markdown table (for benchmarks/BENCHMARKS.md).
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(HERE))

from benchutil import best_median, env_with_cache, header, measure, precompile, sysscan_cmd  # noqa: E402

IMAGES = [  # (label, variable, fetch args, reference: ("dbg", variable) | ("tbl", 64-bit, 32-bit variables))
    ("6.1 cloud", "SYSSCAN_VMLINUZ_61", ["6.1"], ("dbg", "SYSSCAN_VMLINUX_61")),
    ("6.12 cloud", "SYSSCAN_VMLINUZ_612", ["6.12"], ("dbg", "SYSSCAN_VMLINUX_612")),
    ("6.1 generic", "SYSSCAN_VMLINUZ_61_GENERIC", ["6.1", "amd64"], ("tbl", "SYSSCAN_TBL_61", "SYSSCAN_TBL32_61")),
]
PEER = Path.home() / ".cache" / "sysscan-tools" / "vmlinux-to-elf-1.4.0" / "bin" / "vmlinux-to-elf"


def image_path(var: str, fetch: list[str]) -> str:
    p = os.environ.get(var)
    if p:
        return p
    out = subprocess.run([str(HERE / "fetch_vmlinuz.sh"), *fetch], capture_output=True, text=True, check=True).stdout
    return out.strip().split("=", 1)[1]


def kernel_json(path: str, cache: str, out: str) -> tuple:
    run = measure(sysscan_cmd("kernel", path, "-f", "json", "-o", out), env=env_with_cache(cache), capture=True)
    if run.rc != 0:
        raise SystemExit(f"sysscan kernel {path}: exit {run.rc}: {run.stderr.strip()}")
    return run, json.loads(Path(out).read_text())


def exact_vs_dbg(z: dict, ref: dict) -> dict:
    out = {}
    for abi in sorted(set(z["tables"]) | set(ref["tables"])):
        a = {h["nr"]: {k: v for k, v in h.items() if k != "source"} for h in z["tables"].get(abi, [])}
        b = {h["nr"]: {k: v for k, v in h.items() if k != "source"} for h in ref["tables"].get(abi, [])}
        out[abi] = [sum(1 for n in b if a.get(n) == b[n]), len(b)]
    return out


def exact_vs_tbl(path: str, tbl: str, tbl32: str) -> dict:
    sys.path.insert(0, str(ROOT / "tests"))
    from test_kernel_real import _check, parse_tbl

    from analyzer.kernel import analyze_kernel, load_kernel

    a, image = analyze_kernel(path, use_cache=False), load_kernel(path)
    out = {}
    for abi, t, cols, prefix, compat in (("x86_64", tbl, ("common", "64"), "__x64_", False),
                                         ("i386", tbl32, ("i386",), "__ia32_", True)):
        n, wrong = _check(a, image, abi, parse_tbl(t, cols), prefix, compat)
        out[abi] = [n - len(wrong), n]
    return out


def peer_run(peer: Path, path: str) -> dict:
    with tempfile.TemporaryDirectory() as d:
        out = os.path.join(d, "vmlinux.elf")
        # the architecture given, as its own error message asks when it cannot guess it (Debian's 6.1 images)
        run = measure([str(peer), "--e-machine", "62", "--bit-size", "64", path, out], capture=True, cwd=d,
                      timeout=900)
        syms = None
        made = os.path.exists(out)
        if run.rc == 0 and made and shutil.which("nm"):
            nm = subprocess.run(["nm", out], capture_output=True, text=True)
            syms = len(nm.stdout.splitlines())
        last = (run.stderr.strip().splitlines() or run.stdout.strip().splitlines() or [""])[-1][:200]
        return {"wall": round(run.wall, 2), "rss_mb": round(run.rss_mb), "rc": run.rc, "symbols": syms,
                "ok": run.rc == 0 and made, "last_line": last}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--peer", type=Path, default=PEER)
    ap.add_argument("--no-peer", action="store_true")
    args = ap.parse_args()
    precompile()
    print(header())
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        # Phase 1, the timed runs, while this process is still small: a child's peak RSS (wait4) counts the pages
        # it shares with its parent between fork and exec, so nothing big may be loaded here before.
        timed = []
        for label, var, fetch, ref in IMAGES:
            path = image_path(var, fetch)
            cold, warm = [], []
            doc = None
            for i in range(args.runs):
                cache = os.path.join(tmp, f"cache-{var}-{i}")
                run, doc = kernel_json(path, cache, os.path.join(tmp, "k.json"))
                cold.append(run)
                warm.append(kernel_json(path, cache, os.path.join(tmp, "k2.json"))[0])
            refdoc = None
            if ref[0] == "dbg":
                vm = os.environ.get(ref[1])
                if not vm:
                    raise SystemExit(f"{ref[1]} not set (benchmarks/fetch_kernel.sh)")
                _, refdoc = kernel_json(vm, os.path.join(tmp, "ref"), os.path.join(tmp, "r.json"))
            peer = None if args.no_peer or not args.peer.exists() else peer_run(args.peer, path)
            timed.append((label, path, ref, cold, warm, doc, refdoc, peer))
        # Phase 2, in this process: the symbols recovered, and the tables against the reference.
        from analyzer.kernel import bzimage, kallsyms, load_kernel

        for label, path, ref, cold, warm, doc, refdoc, peer in timed:
            raw = Path(path).read_bytes()
            payload = bzimage.extract(path, raw)
            image = load_kernel(path)
            syms = kallsyms.recover([(r.start, r.data) for r in image.memory.regions], image.address_of("_text"))
            if refdoc is not None:
                exact, against = exact_vs_dbg(doc, refdoc), "-dbg vmlinux"
            else:
                exact, against = exact_vs_tbl(path, os.environ[ref[1]], os.environ[ref[2]]), ".tbl files"
            row = {
                "image": label, "file": os.path.basename(path), "size_mb": round(len(raw) / 2**20, 1),
                "compression": payload.compression, "elf_mb": round(len(payload.elf) / 2**20, 1),
                "symbols": len(syms), "layout": syms.layout, "encoding": syms.encoding,
                "exact": exact, "against": against,
                "cold_wall": [round(r.wall, 2) for r in cold], "cold_rss_mb": max(round(r.rss_mb) for r in cold),
                "cached_wall": [round(r.wall, 2) for r in warm], "cached_rss_mb": max(round(r.rss_mb) for r in warm),
                "in_process": doc["timings"], "peer": peer,
            }
            results.append(row)
            print(json.dumps({k: row[k] for k in ("image", "compression", "symbols", "exact")}), flush=True)
    (HERE / "vmlinuz_bench.json").write_text(json.dumps({"header": header(), "results": results}, indent=1) + "\n")
    print("\n| image | compressor | kallsyms symbols | tables exact / total | sysscan cold (best / median) | "
          "cached | peak RSS cold | vmlinux-to-elf 1.4.0 |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for r in results:
        ex = ", ".join(f"{abi} {a}/{b}" for abi, (a, b) in sorted(r["exact"].items()))
        p = r["peer"]
        if p is None:
            peer = "not run"
        elif p["ok"]:
            peer = f"{p['wall']:.1f} s, {p['rss_mb']} MB, {p['symbols']} symbols"
        else:
            peer = f"fails (exit {p['rc']}, no ELF written) after {p['wall']:.1f} s: {p['last_line']}"
        print(f"| {r['image']} ({r['size_mb']} MB) | {r['compression']} | {r['symbols']} ({r['layout']}, "
              f"{r['encoding']}) | {ex} (vs the {r['against']}) | {best_median(r['cold_wall'])} s | "
              f"{best_median(r['cached_wall'])} s | {r['cold_rss_mb']} MB | {peer} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
