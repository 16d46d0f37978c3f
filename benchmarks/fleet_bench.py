#!/usr/bin/env python3
"""Fleet scans (issue 15): `sysscan fleet` on a local Dask cluster with 1 and 2 workers against today's local pool
(`sysscan TREE -j 2`) on the same tree, in one run, as ratios; the scheduler's cost per job; the dedup rate over
images that share layers; the figures a 100-machine estimate needs.

    .venv/bin/python benchmarks/fleet_bench.py [--files 48] [--images 4] [--runs 2] [--json OUT]

The tree: every k-th ELF file of this machine's /usr/bin (sorted, so the same files each time), copied. Each run
is cold: a fresh result cache / store, bytecode precompiled. The images: one base layer of real files (24 programs
of /usr/bin and the libraries every program of the images needs, ld.so included, read from DT_NEEDED), and per
image one layer with 3 programs of its own, as docker-save archives.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "tests"))
sys.path.insert(0, str(HERE.parent))
from benchutil import env_with_cache, header, measure, precompile, sysscan_cmd  # noqa: E402


def elf_files(directory: str) -> list[str]:
    out = []
    for name in sorted(os.listdir(directory)):
        p = os.path.join(directory, name)
        if os.path.isfile(p) and not os.path.islink(p):
            with open(p, "rb") as fh:
                if fh.read(4) == b"\x7fELF":
                    out.append(p)
    return out


def make_tree(where: Path, n: int) -> list[str]:
    files = elf_files("/usr/bin")
    step = max(1, len(files) // n)
    chosen = files[::step][:n]
    where.mkdir()
    for p in chosen:
        shutil.copy(p, where / os.path.basename(p))
    return chosen


def needed_closure(programs: list[str], libdir: str = "/lib/x86_64-linux-gnu") -> dict[str, str]:
    """soname -> file of the libraries the programs need (DT_NEEDED, transitively, read with objdump -p: the
    programs are never run), found in this machine's multiarch directory, ld.so included."""
    import subprocess

    found: dict[str, str] = {"ld-linux-x86-64.so.2": os.path.realpath(os.path.join(libdir, "ld-linux-x86-64.so.2"))}
    todo = list(programs)
    while todo:
        p = todo.pop()
        text = subprocess.run(["objdump", "-p", p], capture_output=True, text=True).stdout
        for line in text.splitlines():
            parts = line.split()
            if len(parts) == 2 and parts[0] == "NEEDED" and parts[1] not in found:
                lib = os.path.join(libdir, parts[1])
                if os.path.exists(lib):
                    found[parts[1]] = os.path.realpath(lib)
                    todo.append(found[parts[1]])
    return found


def run_pool(tree: Path, cache: str, jobs: int = 2):
    return measure(sysscan_cmd(str(tree), "-j", str(jobs), "-f", "json", "-q"), env=env_with_cache(cache),
                   capture=True)


def run_fleet(paths: list[str], store: str, workers: int, cache: str):
    return measure(sysscan_cmd("fleet", *paths, "--workers", str(workers), "--store", store, "-f", "json"),
                   env=env_with_cache(cache), capture=True)


def scheduler_cost(tasks: int = 400) -> dict:
    """A LocalCluster of 2 worker processes: start-up, and the wall time per no-op task submitted as sysscan submits
    its jobs (one submit per task, results gathered with as_completed)."""
    import dask
    from dask.distributed import Client, LocalCluster, as_completed

    t0 = time.perf_counter()
    with dask.config.set({"distributed.worker.daemon": False, "logging.distributed": "error"}):
        cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None,
                               silence_logs=50)
        client = Client(cluster)
    started = time.perf_counter() - t0
    t1 = time.perf_counter()
    futs = [client.submit(len, "x" * i, pure=False) for i in range(tasks)]
    for f in as_completed(futs):
        f.result()
    per_task = (time.perf_counter() - t1) / tasks
    client.close()
    cluster.close()
    return {"cluster_start_s": started, "per_task_ms": per_task * 1000, "tasks": tasks}


def fleet_stats(stderr: str) -> str:
    return next((ln for ln in stderr.splitlines() if "sysscan: fleet:" in ln), "").replace("sysscan: fleet: ", "")


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--files", type=int, default=48)
    ap.add_argument("--images", type=int, default=4)
    ap.add_argument("--runs", type=int, default=2)
    ap.add_argument("--json", default=None)
    a = ap.parse_args()
    precompile()
    work = Path(tempfile.mkdtemp(prefix="fleet-bench-"))
    print(header())
    out: dict = {"header": header()}
    try:
        tree = work / "tree"
        chosen = make_tree(tree, a.files)
        size = sum(os.path.getsize(p) for p in chosen)
        print(f"tree: {len(chosen)} ELF files of /usr/bin, {size / 1e6:.1f} MB")
        rows: dict[str, list] = {"pool -j 2": [], "fleet 1 worker": [], "fleet 2 workers": [],
                                 "fleet 2 workers, store warm": []}
        same = None
        for i in range(a.runs):  # interleaved, so that each sees the same machine
            pool = run_pool(tree, str(work / f"c-pool-{i}"))
            rows["pool -j 2"].append(pool)
            one = run_fleet([str(tree)], str(work / f"s1-{i}"), 1, str(work / f"c1-{i}"))
            rows["fleet 1 worker"].append(one)
            two = run_fleet([str(tree)], str(work / f"s2-{i}"), 2, str(work / f"c2-{i}"))
            rows["fleet 2 workers"].append(two)
            warm = run_fleet([str(tree)], str(work / f"s2-{i}"), 2, str(work / f"c2-{i}"))
            rows["fleet 2 workers, store warm"].append(warm)
            for r in (pool, one, two, warm):
                if r.rc != 0:
                    raise SystemExit(f"a run failed ({r.rc}): {r.stderr[-400:]}")
            fleet_doc = json.loads(two.stdout)["inputs"][0]
            fleet_doc.pop("input")
            same = json.dumps(fleet_doc, sort_keys=True) == json.dumps(json.loads(pool.stdout), sort_keys=True)
        base = statistics.median(r.wall for r in rows["pool -j 2"])
        print(f"{'runner':30} {'wall best/median s':>20} {'files/s':>8} {'vs pool':>8} {'CPU s':>7} {'MB':>6}")
        out["tree"] = {"files": len(chosen), "bytes": size, "identical_to_pool": same, "rows": {}}
        for name, rs in rows.items():
            med = statistics.median(r.wall for r in rs)
            fps = len(chosen) / med
            print(f"{name:30} {min(r.wall for r in rs):9.2f} / {med:7.2f} {fps:8.2f} {med / base:7.2f}x "
                  f"{statistics.median(r.cpu for r in rs):7.1f} {max(r.rss_mb for r in rs):6.0f}")
            out["tree"]["rows"][name] = {"wall": [r.wall for r in rs], "cpu": [r.cpu for r in rs],
                                         "rss_mb": max(r.rss_mb for r in rs), "files_per_s": fps}
        print(f"fleet JSON of the tree identical to the pool's: {same}")
        kept = [f for f in (work / f"s2-{a.runs - 1}" / "results").rglob("*") if f.is_file()]
        out["store"] = {"results": len(kept), "bytes": sum(f.stat().st_size for f in kept)}
        print(f"store: {len(kept)} results, {out['store']['bytes'] / max(1, len(kept)) / 1e3:.1f} kB each on average")
        print("fleet says:", fleet_stats(rows["fleet 2 workers"][-1].stderr))
        print("warm store:", fleet_stats(rows["fleet 2 workers, store warm"][-1].stderr))
        sc = scheduler_cost()
        out["scheduler"] = sc
        print(f"Dask: LocalCluster(2 workers) start {sc['cluster_start_s']:.2f} s; {sc['per_task_ms']:.2f} ms per "
              f"no-op task ({sc['tasks']} tasks, submit + as_completed)")
        out["images"] = images_bench(work, chosen, a.images)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    if a.json:
        Path(a.json).write_text(json.dumps(out, indent=2, default=str) + "\n")
    return 0


def images_bench(work: Path, chosen: list[str], count: int) -> dict:
    """Images on one shared base: files, distinct keys, layers read, and time, first image alone vs all."""
    from imagebuild import Layer, docker_archive


    progs = [p for p in elf_files("/usr/bin") if p not in chosen]
    step = max(1, len(progs) // (24 + 3 * count))
    pool = progs[::step]
    base_progs, extra = pool[:24], pool[24:24 + 3 * count]
    libs = needed_closure(base_progs + extra)
    base = Layer().dir("usr").dir("usr/bin").dir("usr/lib").dir("usr/lib/x86_64-linux-gnu").dir("lib64")
    base.symlink("bin", "usr/bin").symlink("lib", "usr/lib")
    base.symlink("lib64/ld-linux-x86-64.so.2", "/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2")
    taken = set()
    for soname, p in sorted(libs.items()):  # each library under its file name, its soname a link, as shipped
        name = os.path.basename(p)
        if name not in taken:
            taken.add(name)
            base.file(f"usr/lib/x86_64-linux-gnu/{name}", p)
        if soname != name:
            base.symlink(f"usr/lib/x86_64-linux-gnu/{soname}", name)
    for p in base_progs:
        base.file(f"usr/bin/{os.path.basename(p)}", p)
    images = []
    for i in range(count):
        top = Layer()
        for p in extra[3 * i:3 * i + 3]:
            top.file(f"usr/local/bin/{os.path.basename(p)}", p)
        images.append(docker_archive(work / f"img{i}.tar", [base, top], f"img{i}:1"))
    first = run_fleet(images[:1], str(work / "si"), 2, str(work / "ci"))
    rest = run_fleet(images, str(work / "si"), 2, str(work / "ci"))
    cold_all = run_fleet(images, str(work / "sj"), 2, str(work / "cj"))
    res = {"images": count, "base_files": len(taken) + len(base_progs), "per_image_files": 3,
           "first_image": {"wall": first.wall, "says": fleet_stats(first.stderr)},
           "then_all": {"wall": rest.wall, "says": fleet_stats(rest.stderr)},
           "all_cold": {"wall": cold_all.wall, "says": fleet_stats(cold_all.stderr)}}
    layers_read = len(os.listdir(work / "sj" / "images" / "layers"))
    res["layers_referenced"], res["layers_read"] = 2 * count, layers_read
    print(f"images: {count} on one base ({res['base_files']} ELF files in the base, 3 programs each on top)")
    print(f"  first image alone:        {first.wall:7.1f} s  {res['first_image']['says']}")
    print(f"  then all {count} (store warm): {rest.wall:7.1f} s  {res['then_all']['says']}")
    print(f"  all {count}, cold:            {cold_all.wall:7.1f} s  {res['all_cold']['says']}")
    print(f"  layers: {2 * count} referenced, {layers_read} read")
    return res


if __name__ == "__main__":
    sys.exit(main())
