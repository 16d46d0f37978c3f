"""Many inputs: discovery under directories, the worker pool (order, containment of crashes and hangs), identical
files analysed once, the aggregate (union) document and its schema, exit codes when some files fail."""
from __future__ import annotations

import json
import os
import shutil
import signal
import struct
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import CORPUS, ROOT

from analyzer import inputs
from analyzer.run import job
from analyzer.run import pool as batch
from analyzer.cache import ResultCache
from analyzer.budget import Limits

BIN = CORPUS / "bin"


def run(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    env.pop("SYSSCAN_DEBUG", None)
    return subprocess.run([sys.executable, "-m", "analyzer.cli", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=300, env=env)


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    monkeypatch.delenv("SYSSCAN_NO_CACHE", raising=False)


@pytest.fixture
def tree(tmp_path) -> Path:
    """a/ with two ELF files (one in a subdirectory), text, empty, a FIFO, links of every kind."""
    a = tmp_path / "a"
    (a / "sub").mkdir(parents=True)
    shutil.copy(BIN / "idioms_nopie", a / "b_idioms")
    shutil.copy(BIN / "i386_raw", a / "sub" / "c_i386")
    (a / "notes.txt").write_text("not an ELF\n")
    (a / "empty").write_bytes(b"")
    (a / "short").write_bytes(b"\x7fEL")
    os.mkfifo(a / "fifo")
    os.symlink(a / "b_idioms", a / "z_link_same")  # to a file found already: skipped
    os.symlink(BIN / "decoys", a / "y_link_out")  # to a file outside the tree: scanned under the link's name
    os.link(a / "b_idioms", a / "x_hard")  # the same inode: skipped
    os.symlink(a / "nowhere", a / "dangling")
    os.symlink(a, a / "sub" / "loop")  # a directory link: not followed (no loop)
    return a


# ---- discovery ----------------------------------------------------------------------------------------------------

def test_discovery_by_magic_with_links_and_duplicates(tree):
    d = inputs.discover([str(tree)])
    rel = [os.path.relpath(p, tree) for p in d.files]
    assert rel == ["b_idioms", "sub/c_i386", "y_link_out"]
    assert d.directories == [str(tree)]
    skipped = {os.path.relpath(s.path, tree): s for s in d.skipped}
    assert set(skipped) == {"x_hard", "z_link_same"}
    assert not any(s.warn for s in skipped.values())  # duplicates are silent


def test_unreadable_files_are_skipped_with_a_warning(tree, monkeypatch):
    real = inputs._read_magic

    def denied(path, follow=False):
        if path.endswith("b_idioms"):
            raise PermissionError(13, "Permission denied")
        return real(path, follow)

    monkeypatch.setattr(inputs, "_read_magic", denied)
    d = inputs.discover([str(tree)])
    assert [os.path.basename(p) for p in d.files] == ["x_hard", "c_i386", "y_link_out"]  # walk order
    [w] = [s for s in d.skipped if s.warn]
    assert w.path.endswith("b_idioms") and "Permission denied" in w.reason


def test_explicit_paths_are_always_taken(tree):
    d = inputs.discover([str(tree / "notes.txt"), str(tree / "missing"), str(tree / "b_idioms"), str(tree)])
    names = [os.path.basename(p) for p in d.files]
    assert names[:3] == ["notes.txt", "missing", "b_idioms"]  # the scan reports what is wrong with them
    assert "b_idioms" not in names[3:]  # and the directory walk does not take it twice


# ---- the pool -----------------------------------------------------------------------------------------------------

def _dicts(result) -> dict[str, dict]:
    return {r.binary.path: r.to_dict() for r in result.reports}


def test_pool_order_and_results_equal_one_by_one(tree):
    from analyzer.run.pipeline import scan_file

    one = batch.scan_paths([str(tree)], jobs=1)
    two = batch.scan_paths([str(tree)], jobs=2)
    paths = [r.binary.path for r in two.reports]
    assert paths == sorted(paths) and len(paths) == 3
    assert _dicts(one) == _dicts(two)
    for p, d in _dicts(two).items():
        assert d == scan_file(p).to_dict()
    assert two.many and not two.failures and two.exit_code == 0


def test_identical_files_are_analysed_once(tmp_path):
    for name in ("one", "two", "three"):
        shutil.copy(BIN / "idioms_nopie", tmp_path / name)
    res = batch.scan_paths([str(tmp_path)], jobs=2, cache=ResultCache(str(tmp_path / "c")))
    assert res.scanned == 1 and len(res.reports) == 3
    assert [r.binary.name for r in res.reports] == ["one", "three", "two"]
    a, b = res.reports[0].to_dict(), res.reports[1].to_dict()
    assert a["binary"]["path"] != b["binary"]["path"]
    for d in (a, b):  # each copy's surface names the copy itself as its program
        program = next(o for o in d["surface"]["objects"] if o["kind"] == "program")
        assert program["path"] == d["binary"]["path"]
        d["binary"].update(path="", name="")
        program["path"] = ""
    assert a == b


def test_cache_answers_the_second_run(tree, tmp_path):
    c1 = ResultCache(str(tmp_path / "c"))
    first = batch.scan_paths([str(tree)], jobs=2, cache=c1)
    c2 = ResultCache(str(tmp_path / "c"))
    second = batch.scan_paths([str(tree)], jobs=2, cache=c2)
    assert second.cached == 3 and second.scanned == 0 and c2.stats.hits == 3
    assert _dicts(first) == _dicts(second)


def test_scan_job_is_a_pure_document(tmp_path):
    ok = job.scan_job(str(BIN / "i386_raw"))
    assert set(ok) == {"path", "report"} and ok["report"]["binary"]["name"] == "i386_raw"
    json.dumps(ok)  # JSON-able as is: what a distributed engine ships
    f = tmp_path / "t"
    f.write_text("text")
    bad = job.scan_job(str(f))
    assert bad == {"path": str(f), "error": {"type": "NotAnELF", "exit_code": 4,
                                             "problem": "not an ELF file (no \\x7fELF magic)"}}
    assert job.scan_job(str(tmp_path / "missing"))["error"]["exit_code"] == 3


def _victims(tmp_path: Path, n: int = 3) -> Path:
    for i in range(n):
        shutil.copy(BIN / "idioms_pie", tmp_path / f"ok{i}")
    shutil.copy(BIN / "idioms_nopie", tmp_path / "victim")
    return tmp_path


def test_a_worker_that_dies_costs_only_its_binary(tmp_path, monkeypatch):
    import analyzer.run.pipeline as scan

    real = scan.find_sites

    def die(lb, **kw):
        if lb.path.endswith("victim"):
            os.kill(os.getpid(), signal.SIGKILL)
        return real(lb, **kw)

    monkeypatch.setattr(scan, "find_sites", die)  # inherited by the forked workers
    res = batch.scan_paths([str(_victims(tmp_path))], jobs=2)
    by = {r.binary.name: r for r in res.reports}
    assert set(by) == {"ok0", "ok1", "ok2", "victim"} and not res.failures
    assert not by["victim"].sites and by["victim"].binary.sha256
    assert any("SIGKILL" in m for m in by["victim"].incomplete), by["victim"].incomplete
    assert all(by[f"ok{i}"].sites for i in range(3))


def test_a_hung_worker_is_killed_after_its_budget(tmp_path, monkeypatch):
    import analyzer.budget as limits
    import analyzer.run.pipeline as scan

    real = scan.find_sites

    def hang(lb, **kw):
        if lb.path.endswith("victim"):
            signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGALRM})  # deaf to its own alarm: a stuck C call
            while True:
                time.sleep(1)
        return real(lb, **kw)

    monkeypatch.setattr(scan, "find_sites", hang)
    monkeypatch.setattr(limits, "HARD_STOP_GRACE", 0.5)
    t0 = time.monotonic()
    res = batch.scan_paths([str(_victims(tmp_path))], None, Limits(timeout=1.0), jobs=2)
    assert time.monotonic() - t0 < 60
    by = {r.binary.name: r for r in res.reports}
    assert any("time budget exhausted" in m for m in by["victim"].incomplete), by["victim"].incomplete
    assert all(by[f"ok{i}"].sites for i in range(3))


def test_in_process_hard_stop_still_reports_the_binary(tmp_path, monkeypatch):
    import analyzer.budget as limits
    import analyzer.run.pipeline as scan

    def hang(lb, **kw):
        while True:
            time.sleep(0.05)

    monkeypatch.setattr(scan, "find_sites", hang)
    monkeypatch.setattr(limits, "HARD_STOP_GRACE", 0.2)
    shutil.copy(BIN / "i386_raw", tmp_path / "only")
    res = batch.scan_paths([str(tmp_path / "only")], None, Limits(timeout=0.2), jobs=1)
    [r] = res.reports
    assert r.binary.name == "only" and not r.sites
    assert any("time budget exhausted" in m for m in r.incomplete)


def test_an_internal_error_is_contained_per_file(tmp_path, monkeypatch):
    import analyzer.run.pipeline as scan

    real = scan.find_sites

    def bug(lb, **kw):
        if lb.path.endswith("victim"):
            raise ZeroDivisionError("a bug")
        return real(lb, **kw)

    monkeypatch.setattr(scan, "find_sites", bug)
    res = batch.scan_paths([str(_victims(tmp_path, 1))], jobs=2)
    [f] = res.failures
    assert f.path.endswith("victim") and f.exit_code == 70 and "ZeroDivisionError: a bug" in f.line
    assert [r.binary.name for r in res.reports] == ["ok0"]


# ---- the aggregate ------------------------------------------------------------------------------------------------

def test_union_is_exactly_the_binaries_syscall_sets(tree):
    from analyzer.aggregate import build_aggregate

    res = batch.scan_paths([str(tree)], jobs=2)
    agg = build_aggregate(res.reports, res.failures, res.skipped)
    want: dict[tuple[str, int], set[str]] = {}
    for r in res.reports:
        for u in r.syscalls:
            want.setdefault((u.abi, u.nr), set()).add(r.binary.path)
    got = {(e["abi"], e["nr"]): set(e["binaries"]) for e in agg["syscalls"]}
    assert got == want
    assert [(e["abi"], e["nr"]) for e in agg["syscalls"]] == sorted(want)
    assert agg["raw"] == sorted(r.binary.path for r in res.reports if r.sites)
    assert agg["summary"]["sites"] == sum(r.summary.sites for r in res.reports)
    assert agg["summary"]["binaries"] == 3 and agg["failed"] == [] and agg["skipped"] == []


def multi_validator():
    jsonschema = pytest.importorskip("jsonschema")
    from referencing import Registry, Resource

    one = json.loads((ROOT / "analyzer/schemas/report.schema.json").read_text())
    many = json.loads((ROOT / "analyzer/schemas/reports.schema.json").read_text())
    reg = Registry().with_resources([(s["$id"], Resource.from_contents(s)) for s in (one, many)])
    return jsonschema.Draft7Validator(many, registry=reg)


def _broken_tree(tmp_path: Path) -> Path:
    d = tmp_path / "mixed"
    d.mkdir()
    shutil.copy(BIN / "idioms_nopie", d / "good")
    (d / "truncated").write_bytes((BIN / "idioms_nopie").read_bytes()[:200])  # exit 5
    arm = bytearray((BIN / "idioms_nopie").read_bytes())
    struct.pack_into("<H", arm, 18, 183)  # e_machine = AArch64: exit 6
    (d / "arm64").write_bytes(bytes(arm))
    (d / "README").write_text("not an ELF: silently left out\n")
    return d


def test_cli_directory_with_failures(tmp_path):
    d = _broken_tree(tmp_path)
    p = run(str(d), "-f", "json", "-q")
    assert p.returncode == 6, (p.returncode, p.stderr)  # the highest exit code among the failed files
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 2 and "Traceback" not in p.stderr
    assert str(d / "arm64") in lines[0] and "AArch64" in lines[0]  # sorted by path
    assert str(d / "truncated") in lines[1] and "truncated" in lines[1]
    doc = json.loads(p.stdout)
    multi_validator().validate(doc)
    assert [r["binary"]["name"] for r in doc["reports"]] == ["good"]
    assert [(f["path"], f["exit_code"]) for f in doc["aggregate"]["failed"]] == [(str(d / "arm64"), 6),
                                                                                 (str(d / "truncated"), 5)]
    table = run(str(d), "--width", "160", "--no-cache")
    assert table.returncode == 6
    assert "Failed" in table.stdout and "Syscalls the whole set can make" in table.stdout


def test_cli_json_is_the_multi_document_for_one_directory_and_deterministic(tmp_path, tree):
    a = run(str(tree), "-f", "json", "-j", "1", "--no-cache")
    b = run(str(tree), "-f", "json", "-j", "2")
    c = run(str(tree), "-f", "json", "-j", "2")  # from the cache
    assert a.returncode == b.returncode == c.returncode == 0, (a.stderr, b.stderr)
    assert a.stdout == b.stdout == c.stdout
    doc = json.loads(a.stdout)
    multi_validator().validate(doc)
    assert len(doc["reports"]) == 3 and doc["aggregate"]["summary"]["binaries"] == 3
    saved = tmp_path / "many.json"
    saved.write_text(a.stdout)
    again = run("render", str(saved), "-f", "json")
    assert again.returncode == 0 and again.stdout == a.stdout


def test_cli_single_directory_with_one_elf_still_has_the_aggregate(tmp_path):
    shutil.copy(BIN / "i386_raw", tmp_path / "only")
    p = run(str(tmp_path), "-f", "json")
    assert p.returncode == 0, p.stderr
    doc = json.loads(p.stdout)
    assert len(doc["reports"]) == 1 and "aggregate" in doc


def test_cli_several_files_continue_past_a_missing_one(tmp_path):
    p = run(str(BIN / "i386_raw"), str(tmp_path / "missing"), "-f", "json")
    assert p.returncode == 3
    assert len(p.stderr.strip().splitlines()) == 1 and "no such file" in p.stderr
    assert [r["binary"]["name"] for r in json.loads(p.stdout)["reports"]] == ["i386_raw"]


@pytest.mark.parametrize("bad", [["-j", "-1"], ["--jobs", "many"]])
def test_jobs_is_validated(bad):
    p = run(str(BIN / "i386_raw"), *bad)
    assert p.returncode == 2 and "Traceback" not in p.stderr


def test_cli_directory_with_a_kernel_pool_and_cache(tree, tmp_path):
    """--vmlinux with many files: the kernel is analysed once and shared by the workers; the kernel's hash is part
    of the result cache key (another kernel: another entry), and warm output equals cold."""
    synth = CORPUS / "kernel" / "bin"
    args = [str(tree), "-f", "json", "-j", "2"]
    cold = run(*args, "--vmlinux", str(synth / "vmlinux-switch"))
    warm = run(*args, "--vmlinux", str(synth / "vmlinux-switch"))
    assert cold.returncode == warm.returncode == 0, cold.stderr
    assert cold.stdout == warm.stdout
    doc = json.loads(cold.stdout)
    assert {r["table"]["source"] for r in doc["reports"]} == {"vmlinux"}
    assert any(s["kernel"] for r in doc["reports"] for s in r["sites"])
    other = run(*args, "--vmlinux", str(synth / "vmlinux-table"))
    assert other.returncode == 0
    assert {r["kernel"]["sha256"] for r in json.loads(other.stdout)["reports"]} != \
        {r["kernel"]["sha256"] for r in doc["reports"]}
    entries = list((tmp_path / "xdg" / "sysscan" / "reports").rglob("*.json"))
    assert len(entries) == 6  # 3 files x 2 kernels


def test_cli_directory_with_max_memory_matches_plain(tree):
    """--max-memory with a pool: each binary in its own capped child of a worker; same reports."""
    plain = run(str(tree), "-f", "json", "-j", "2", "--no-cache")
    capped = run(str(tree), "-f", "json", "-j", "2", "--no-cache", "--max-memory", "4096")
    assert plain.returncode == capped.returncode == 0, capped.stderr
    assert plain.stdout == capped.stdout


def _children(pid: int) -> list[int]:
    out = []
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                fields = Path(f"/proc/{d}/stat").read_text().rsplit(")", 1)[1].split()
            except (OSError, IndexError):
                continue
            if int(fields[1]) == pid:
                out.append(int(d))
    return out


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state not in ("Z", "X")  # a zombie nobody reaped has stopped running


def _run_and_hang(path: str) -> None:
    import analyzer.run.pipeline as scan

    def hang(lb, **kw):
        while True:
            time.sleep(1)

    scan.find_sites = hang
    batch.scan_paths([path], jobs=2)


def test_no_worker_outlives_a_killed_parent(tmp_path):
    import multiprocessing

    parent = multiprocessing.get_context("fork").Process(target=_run_and_hang, args=(str(_victims(tmp_path)),))
    parent.start()
    deadline = time.monotonic() + 60
    while len(_children(parent.pid)) < 2 and time.monotonic() < deadline:
        time.sleep(0.2)
    workers = _children(parent.pid)
    assert len(workers) == 2
    os.kill(parent.pid, signal.SIGKILL)
    parent.join(10)
    deadline = time.monotonic() + 20
    while any(map(_alive, workers)) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not any(map(_alive, workers))
