"""Fleet scans on a Dask LocalCluster with 2 worker processes (issue 15): the same results as the local pool, a
worker killed mid-run, a hostile file recorded as a result and not retried, a re-run that comes from the store."""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from imagebuild import Layer, docker_archive

pytest.importorskip("distributed", reason="the fleet extra: pip install -e '.[test]' brings Dask")

ROOT = Path(__file__).resolve().parents[1]
CORPUS = ROOT / "corpus"
TREE = ["idioms_nopie", "idioms_pie", "hello_static_stripped", "go_hello", "i386_raw", "wrappers_pie",
        "idioms_musl_static", "wrappers_glibc_static"]


def _tree(where: Path) -> Path:
    where.mkdir()
    for name in TREE:
        shutil.copy(CORPUS / "bin" / name, where / name)
    shutil.copy(CORPUS / "bin/idioms_nopie", where / "same_bytes")  # one key for two paths
    return where


def _image(where: Path) -> str:
    lib = "/lib/x86_64-linux-gnu/"
    base = (Layer().dir("usr").dir("usr/bin").dir("usr/lib").dir("usr/lib/x86_64-linux-gnu").dir("lib64")
            .file("usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2", lib + "ld-linux-x86-64.so.2")
            .file("usr/lib/x86_64-linux-gnu/libc.so.6", lib + "libc.so.6")
            .symlink("lib64/ld-linux-x86-64.so.2", "/usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2")
            .file("usr/bin/prog", str(CORPUS / "bin/idioms_pie")).file("usr/bin/old", str(CORPUS / "bin/i386_raw")))
    return docker_archive(where, [base, Layer().whiteout("usr/bin/old")], "fleet:1")


def _local(paths, cache_home: Path, monkeypatch):
    """The single-machine path, as `sysscan PATH -f json` runs it (with its result cache)."""
    from analyzer.aggregate import build_aggregate
    from analyzer.cache import ResultCache
    from analyzer.run.image import scan_image
    from analyzer.run.pool import scan_paths

    monkeypatch.setenv("XDG_CACHE_HOME", str(cache_home))
    monkeypatch.delenv("SYSSCAN_NO_CACHE", raising=False)
    try:
        out = []
        for p in paths:
            cache = ResultCache()
            res = (scan_image(str(p), None, None, jobs=2, cache=cache) if str(p).endswith(".tar") else
                   scan_paths([str(p)], None, None, jobs=2, cache=cache))
            out.append({"reports": [r.to_dict() for r in res.reports],
                        "aggregate": build_aggregate(res.reports, res.failures, res.skipped, res.images or None)})
        return out
    finally:
        monkeypatch.undo()


class KillOneWorker:
    """Progress that kills a Dask worker process (SIGKILL) when the first result comes in."""

    def __init__(self) -> None:
        self.pids: list[int] = []
        self.killed: int | None = None

    def on_client(self, client) -> None:
        self.pids = sorted(client.run(os.getpid).values())

    def start(self, total, cached) -> None: ...

    def tick(self) -> None: ...

    def stop(self) -> None: ...

    def advance(self, path, how) -> None:
        if self.killed is None and self.pids:
            self.killed = self.pids[0]
            os.kill(self.killed, signal.SIGKILL)


def test_fleet_equals_the_local_pool_with_a_worker_killed_mid_run(tmp_path, monkeypatch):
    from analyzer.cli.fleet import fleet_document
    from analyzer.run.fleet import FleetConfig, run_fleet

    tree, image = _tree(tmp_path / "tree"), _image(tmp_path / "img.tar")
    killer = KillOneWorker()
    res = run_fleet([str(tree), image], config=FleetConfig(workers=2, store=str(tmp_path / "store")),
                    progress=killer, on_client=killer.on_client)
    assert killer.killed is not None and len(killer.pids) == 2
    with pytest.raises(ProcessLookupError):
        os.kill(killer.killed, 0)
    assert (res.files, res.keys, res.submitted, res.failed) == (len(TREE) + 1 + 3, len(TREE) + 3, len(TREE) + 3, 0)
    doc = fleet_document(res)
    local = _local([tree, image], tmp_path / "cache", monkeypatch)
    for mine, theirs in zip(doc["inputs"], local):
        mine = {k: v for k, v in mine.items() if k != "input"}
        assert json.dumps(mine, indent=2, sort_keys=True) == json.dumps(theirs, indent=2, sort_keys=True)
    assert not [f for i in res.inputs for f in i.result.failures]
    paths = {r["binary"]["path"] for r in doc["inputs"][1]["reports"]}
    assert paths == {"/usr/bin/prog", "/usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2",
                     "/usr/lib/x86_64-linux-gnu/libc.so.6"}
    getpid = {(e["input"], e["path"]) for e in doc["fleet"]["index"]["getpid"]}
    assert (str(tree), str(tree / "idioms_nopie")) in getpid and (image, "/usr/bin/prog") in getpid
    # a second run: everything from the store, nothing sent, the same document
    again = run_fleet([str(tree), image], config=FleetConfig(workers=2, store=str(tmp_path / "store")))
    assert (again.stored, again.submitted, again.workers) == (res.keys, 0, 0)
    assert fleet_document(again) == doc


class CancelTheRest(KillOneWorker):
    """Progress that, at the first result, cancels every task still pending on the scheduler: what Dask does to a
    task it forgets when its worker dies ("cancelled for reason: already forgotten", seen once in CI)."""

    def on_client(self, client) -> None:
        self.client = client

    def advance(self, path, how) -> None:
        from dask.distributed import Future

        if self.killed is None:
            rest = [Future(k, self.client) for k in list(self.client.futures) if str(k).startswith("sysscan-")]
            self.killed = len(rest)
            self.client.cancel(rest)


def test_tasks_cancelled_under_the_fleet_are_run_again(tmp_path):
    from analyzer.run.fleet import FleetConfig, run_fleet

    tree = _tree(tmp_path / "tree")
    cancel = CancelTheRest()
    res = run_fleet([str(tree)], config=FleetConfig(workers=2, store=str(tmp_path / "store")), progress=cancel,
                    on_client=cancel.on_client)
    assert cancel.killed, "nothing was pending to cancel"
    assert (res.submitted, res.failed) == (len(TREE), 0)
    reports = res.inputs[0].result.reports
    assert sorted(r.binary.path for r in reports) == sorted(str(tree / n) for n in TREE + ["same_bytes"])
    assert not res.inputs[0].result.failures


def test_a_hostile_file_is_a_recorded_result_and_not_retried(tmp_path):
    """libc.so.6 under a 0.5 s budget: its isolated child is stopped, the worker lives on, the file gets a report
    marked incomplete, recorded in failed/ (not a pure function of the input) and not sent again; a truncated ELF
    is an error result, kept as any deterministic result is."""
    from analyzer.budget import Limits
    from analyzer.run.fleet import FleetConfig, run_fleet

    tree = tmp_path / "t"
    tree.mkdir()
    shutil.copy("/lib/x86_64-linux-gnu/libc.so.6", tree / "libc.so.6")
    (tree / "truncated").write_bytes((CORPUS / "bin/idioms_nopie").read_bytes()[:100])
    shutil.copy(CORPUS / "bin/i386_raw", tree / "small")
    config = FleetConfig(workers=2, store=str(tmp_path / "store"))
    limits = Limits(timeout=0.5)
    first = run_fleet([str(tree)], limits=limits, config=config)
    res = first.inputs[0].result
    assert (first.submitted, first.failed) == (3, 1)
    libc = next(r for r in res.reports if r.binary.name == "libc.so.6")
    assert libc.incomplete and any("time budget" in x for x in libc.incomplete)
    assert [(os.path.basename(f.path), f.exit_code) for f in res.failures] == [("truncated", 5)]
    assert any(r.binary.name == "small" and not r.incomplete for r in res.reports)
    again = run_fleet([str(tree)], limits=limits, config=config)
    assert (again.stored, again.submitted, again.failed) == (3, 0, 1)
    retry = run_fleet([str(tree)], limits=limits, config=FleetConfig(workers=1, store=config.store,
                                                                     retry_failed=True))
    assert (retry.submitted, retry.failed) == (1, 1)


def test_fleet_command_formats_and_who(tmp_path):
    tree = tmp_path / "tree"
    tree.mkdir()
    for name in ("idioms_nopie", "i386_raw"):
        shutil.copy(CORPUS / "bin" / name, tree / name)
    env = {**os.environ, "XDG_CACHE_HOME": str(tmp_path / "cache")}

    def run(*args):
        return subprocess.run([sys.executable, "-m", "analyzer.cli", *args], capture_output=True, text=True,
                              timeout=600, cwd=ROOT, env=env)

    out = tmp_path / "fleet.json"
    p = run("fleet", str(tree), "--workers", "1", "-f", "json", "-o", str(out))
    assert p.returncode == 0, p.stderr
    assert "2 files, 2 distinct, 0 from the store, 2 analysed on 1 Dask workers" in p.stderr
    doc = json.loads(out.read_text())
    assert doc["fleet"]["summary"]["binaries"] == 2 and doc["tool"]["name"] == "sysscan"
    for fmt, marker in (("markdown", "## Who can make which syscall"), ("html", "<h2>Who can make"),
                        ("table", "fleet: 1 inputs")):
        q = run("fleet", str(tree), "-f", fmt, "-q")
        assert q.returncode == 0 and marker in q.stdout and not q.stderr, (fmt, q.stderr)
    who = run("who", "getpid", str(out))
    assert who.returncode == 0 and f"{tree}:{tree}/i386_raw\traw" in who.stdout.splitlines()
    nobody = run("who", "kexec_load", str(out))
    assert nobody.returncode == 1 and nobody.stdout == ""
    missing = run("fleet", str(tmp_path / "nope"))
    assert missing.returncode == 2 and missing.stderr.count("\n") == 1


def test_images_that_share_their_libraries_share_the_analysis(tmp_path):
    """Two images on one base that add different programs: the base's files are analysed once for both (their
    libraries are the same). A third that adds a library gets its own analysis of every program (a program's
    surface may depend on it)."""
    from analyzer.run.fleet import FleetConfig, run_fleet

    lib = "/lib/x86_64-linux-gnu/"
    base = (Layer().dir("usr").dir("usr/bin").dir("usr/lib").dir("usr/lib/x86_64-linux-gnu")
            .file("usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2", lib + "ld-linux-x86-64.so.2")
            .file("usr/lib/x86_64-linux-gnu/libc.so.6", lib + "libc.so.6")
            .dir("lib64").symlink("lib64/ld-linux-x86-64.so.2", "/usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2")
            .file("usr/bin/prog", str(CORPUS / "bin/idioms_pie")))
    a = docker_archive(tmp_path / "a.tar", [base, Layer().file("usr/bin/a", str(CORPUS / "bin/idioms_nopie"))], "a:1")
    b = docker_archive(tmp_path / "b.tar", [base, Layer().file("usr/bin/b", str(CORPUS / "bin/i386_raw"))], "b:1")
    c = docker_archive(tmp_path / "c.tar", [base, Layer().file("usr/lib/x86_64-linux-gnu/libraw.so",
                                                               str(CORPUS / "bin/libraw.so"))], "c:1")
    config = FleetConfig(workers=2, store=str(tmp_path / "store"))
    res = run_fleet([a, b], config=config)
    assert (res.files, res.keys, res.submitted) == (8, 5, 5)
    docs = [{r.binary.path: r.to_dict() for r in i.result.reports} for i in res.inputs]
    assert docs[0]["/usr/bin/prog"] == docs[1]["/usr/bin/prog"]
    more = run_fleet([a, b, c], config=config)
    assert (more.files, more.keys, more.stored, more.submitted) == (12, 9, 5, 4)


class StopAfter(KillOneWorker):
    """Progress that interrupts the client (as ^C would) after `n` results."""

    def __init__(self, n: int) -> None:
        super().__init__()
        self.n, self.seen = n, 0

    def advance(self, path, how) -> None:
        self.seen += 1
        if self.seen == self.n:
            raise KeyboardInterrupt


def test_an_interrupted_fleet_resumes_where_it_stopped(tmp_path):
    from analyzer.run.fleet import FleetConfig, run_fleet

    tree = _tree(tmp_path / "tree")
    config = FleetConfig(workers=2, store=str(tmp_path / "store"))
    with pytest.raises(KeyboardInterrupt):
        run_fleet([str(tree)], config=config, progress=StopAfter(3))
    again = run_fleet([str(tree)], config=config)
    assert again.stored >= 3 and again.stored + again.submitted == again.keys == len(TREE)
    assert not again.inputs[0].result.failures and len(again.inputs[0].result.reports) == len(TREE) + 1
