"""The result cache: content-keyed, verified on read (a corrupt entry is ignored and rebuilt), atomic under
concurrent writers, bounded, and a warm CLI run that never imports LIEF or Capstone."""
from __future__ import annotations

import json
import multiprocessing
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import CORPUS, ROOT

from analyzer import cache as C

SMALL = ["idioms_nopie", "i386_raw", "decoys"]


def run(*args: str, env: dict | None = None, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    e = dict(os.environ, **(env or {}))
    e.pop("SYSSCAN_DEBUG", None)
    e.pop("SYSSCAN_NO_CACHE", None)
    return subprocess.run([sys.executable, "-m", "analyzer.cli", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=300, env=e)


@pytest.fixture(autouse=True)
def xdg(tmp_path, monkeypatch):
    d = tmp_path / "xdg"
    monkeypatch.setenv("XDG_CACHE_HOME", str(d))
    monkeypatch.delenv("SYSSCAN_NO_CACHE", raising=False)
    return d


def doc(n: int = 1) -> dict:
    return {"report": {"binary": {"path": "/x", "sha256": "ab" * 32}, "sites": list(range(n))}}


def entry_files(d: Path) -> list[Path]:
    return sorted(p for p in (d / "sysscan" / "reports").rglob("*.json"))


# ---- the store ----------------------------------------------------------------------------------------------------

def test_round_trip_and_key_parts(xdg):
    c = C.ResultCache()
    sha = "ab" * 32
    assert c.get(sha, "opts") is None
    assert c.put(sha, "opts", doc(3))
    assert c.get(sha, "opts") == doc(3)
    assert c.get(sha, "other options") is None  # options are part of the key
    assert c.get("cd" * 32, "opts") is None  # so is the content
    assert c.stats.hits == 1 and c.stats.stores == 1
    [f] = entry_files(xdg)
    assert f.parent.parent == xdg / "sysscan" / "reports" and len(f.parent.name) == 2


def test_disabled_cache_is_a_no_op(xdg):
    c = C.ResultCache(enabled=False)
    assert not c.put("ab" * 32, "o", doc())
    assert c.get("ab" * 32, "o") is None
    assert not (xdg / "sysscan").exists()


def test_volatile_results_are_not_cached(xdg):
    c = C.ResultCache()
    d = doc()
    d["report"]["incomplete"] = ["time budget exhausted (1s, --timeout): 3 of 9 sites not analysed"]
    assert not c.put("ab" * 32, "o", d)
    assert c.get("ab" * 32, "o") is None


@pytest.mark.parametrize("damage", ["truncate", "flip", "header", "empty", "no-newline", "wrong-version",
                                    "not-a-report", "error-not-cacheable"])
def test_corrupt_entries_are_ignored_and_rebuilt(xdg, damage):
    c = C.ResultCache()
    sha = "ab" * 32
    c.put(sha, "o", doc(50))
    [f] = entry_files(xdg)
    data = f.read_bytes()
    head, _, payload = data.partition(b"\n")
    h = json.loads(head)
    if damage == "truncate":
        f.write_bytes(data[: len(data) - 7])
    elif damage == "flip":
        i = len(head) + 1 + len(payload) // 2
        f.write_bytes(data[:i] + bytes([data[i] ^ 0x01]) + data[i + 1:])
    elif damage == "header":
        f.write_bytes(b"{not json\n" + payload)
    elif damage == "empty":
        f.write_bytes(b"")
    elif damage == "no-newline":
        f.write_bytes(head)
    elif damage == "wrong-version":
        h["tool_version"] = "0.0.0-other"
        f.write_bytes(json.dumps(h).encode() + b"\n" + payload)
    else:  # a well-formed entry whose payload is not something we store: forged, never trusted
        bad = {"not": "a result"} if damage == "not-a-report" else {"error": {"type": "InputNotFound",
                                                                                "problem": "x"}}
        p = json.dumps(bad).encode()
        h.update(payload_bytes=len(p), payload_sha256=__import__("hashlib").sha256(p).hexdigest())
        f.write_bytes(json.dumps(h).encode() + b"\n" + p)
    assert c.get(sha, "o") is None
    assert c.stats.corrupt == 1
    assert not f.exists()  # dropped, so the next store rebuilds it
    assert c.put(sha, "o", doc(50)) and c.get(sha, "o") == doc(50)


def test_deterministic_errors_are_cached_others_not(xdg):
    c = C.ResultCache()
    assert c.put("ab" * 32, "o", {"error": {"type": "CorruptELF", "problem": "truncated"}})
    assert c.get("ab" * 32, "o") == {"error": {"type": "CorruptELF", "problem": "truncated"}}


def _writer(args):
    directory, i = args
    c = C.ResultCache(directory)
    for k in range(30):
        c.put(f"{k % 5:02x}" * 32, "o", doc(i * 1000 + k))  # 5 shared keys, every writer racing on each
        c.put(f"{i + 16:02x}{k + 16:02x}" * 16, "o", doc(k))  # and its own keys
    return True


def test_concurrent_writers_leave_only_whole_entries(tmp_path):
    d = str(tmp_path / "reports")
    with multiprocessing.get_context("fork").Pool(6) as pool:
        assert all(pool.map(_writer, [(d, i) for i in range(6)]))
    c = C.ResultCache(d)
    for k in range(5):
        got = c.get(f"{k:02x}" * 32, "o")
        assert got is not None and got["report"]["sites"][-1] % 1000 in range(30)  # one writer's whole entry
    for i in range(6):
        for k in range(30):
            assert c.get(f"{i + 16:02x}{k + 16:02x}" * 16, "o") == doc(k)
    assert c.stats.corrupt == 0
    assert not [p for p in Path(d).rglob("*") if p.name.startswith(C.TMP_PREFIX)]


def test_prune_keeps_the_bound_and_the_recent_entries(tmp_path):
    c = C.ResultCache(str(tmp_path / "r"), max_bytes=10_000)
    now = time.time()
    for i in range(20):
        c.put(f"{i:02x}" * 32, "o", doc(200))  # ~1 KB each
        p = c.path_for(c.key(f"{i:02x}" * 32, "o"))
        os.utime(p, (now - 1000 + i, now - 1000 + i))  # older first
    stray = Path(c.directory) / "00" / (C.TMP_PREFIX + "dead.json")
    stray.parent.mkdir(parents=True, exist_ok=True)
    stray.write_text("half")
    os.utime(stray, (now - 2 * C.STALE_TMP_SECONDS, now - 2 * C.STALE_TMP_SECONDS))
    c.prune(now=now)
    total = sum(size for _, size, _ in c.entries())
    assert total <= 10_000 * 0.8
    assert not stray.exists()
    assert c.get(f"{19:02x}" * 32, "o") is not None  # the newest survive
    assert c.get(f"{0:02x}" * 32, "o") is None  # the oldest went


def test_size_bound_from_environment(monkeypatch):
    monkeypatch.setenv("SYSSCAN_CACHE_MAX_MB", "2")
    assert C.ResultCache().max_bytes == 2 << 20
    monkeypatch.setenv("SYSSCAN_CACHE_MAX_MB", "lots")
    assert C.ResultCache().max_bytes == C.DEFAULT_MAX_MB << 20


def test_derived_cache_round_trip_and_corruption(xdg):
    assert C.derived_get("rule", "text") is None
    C.derived_put("rule", "text", {"a": [1, 2]})
    assert C.derived_get("rule", "text") == {"a": [1, 2]}
    assert C.derived_get("rule", "other text") is None
    [f] = list((xdg / "sysscan" / "derived" / "rule").rglob("*.json"))
    f.write_bytes(f.read_bytes()[:-2])
    assert C.derived_get("rule", "text") is None


def test_derived_cache_keeps_only_recent_code_versions(xdg, monkeypatch):
    for i in range(C.DERIVED_VERSIONS_KEPT + 3):
        monkeypatch.setattr(C, "_CODE_FP", f"fp{i:02d}")  # as if the code had changed between runs
        C.derived_put("rule", "text", {"i": i})
        d = xdg / "sysscan" / "derived" / "rule" / f"fp{i:02d}"
        os.utime(d, (1000 + i, 1000 + i))
    kept = sorted(p.name for p in (xdg / "sysscan" / "derived" / "rule").iterdir())
    assert len(kept) <= C.DERIVED_VERSIONS_KEPT + 1 and kept[-1] == f"fp{C.DERIVED_VERSIONS_KEPT + 2:02d}"
    assert C.derived_get("rule", "text") == {"i": C.DERIVED_VERSIONS_KEPT + 2}


# ---- through the command line -------------------------------------------------------------------------------------

def test_warm_run_is_identical_and_needs_no_lief_or_capstone(xdg, tmp_path):
    paths = [str(CORPUS / "bin" / n) for n in SMALL]
    cold = run(*paths, "-f", "json")
    assert cold.returncode == 0, cold.stderr
    assert len(entry_files(xdg)) == len(SMALL)
    probe = tmp_path / "probe.py"
    out = tmp_path / "warm.json"
    probe.write_text(
        "import sys\nfrom analyzer.cli import main\n"
        f"rc = main({[*paths, '-f', 'json', '-o', str(out)]!r})\n"
        "print(rc, sorted(m for m in ('lief', 'capstone', 'angr', 'analyzer.values.local') if m in sys.modules))\n")
    warm = subprocess.run([sys.executable, str(probe)], cwd=ROOT, capture_output=True, text=True, timeout=120,
                          env=dict(os.environ, XDG_CACHE_HOME=str(xdg)))
    assert warm.stdout.split("\n")[0] == "0 []", (warm.stdout, warm.stderr)
    assert out.read_text() == cold.stdout


def test_no_cache_neither_reads_nor_writes(xdg):
    p = run(str(CORPUS / "bin" / "idioms_nopie"), "-f", "json", "--no-cache")
    assert p.returncode == 0, p.stderr
    assert not (xdg / "sysscan" / "reports").exists()


def test_a_corrupt_entry_on_disk_is_rebuilt_by_the_cli(xdg):
    target = str(CORPUS / "bin" / "idioms_nopie")
    first = run(target, "-f", "json")
    [f] = entry_files(xdg)
    data = bytearray(f.read_bytes())
    data[-20] ^= 0x20  # flip a bit in the payload (a value in the report)
    f.write_bytes(bytes(data))
    again = run(target, "-f", "json")
    assert again.returncode == 0 and again.stdout == first.stdout
    [g] = entry_files(xdg)
    assert g.read_bytes() != bytes(data)  # rewritten


def test_cache_info_and_clear(xdg):
    run(str(CORPUS / "bin" / "i386_raw"), "-f", "json")
    info = run("cache", "info", "-f", "json")
    assert info.returncode == 0, info.stderr
    d = json.loads(info.stdout)
    assert d["reports"]["entries"] == 1 and d["reports"]["bytes"] > 0
    assert d["directory"] == str(xdg / "sysscan")
    text = run("cache", "info")
    assert "reports" in text.stdout and "kernel" in text.stdout
    cleared = run("cache", "clear")
    assert cleared.returncode == 0 and "removed" in cleared.stdout
    assert json.loads(run("cache", "info", "-f", "json").stdout)["reports"]["entries"] == 0
    assert run("cache", "frobnicate").returncode == 2


def test_limits_apply_to_cached_results_too(xdg):
    target = str(CORPUS / "bin" / "idioms_nopie")
    assert run(target, "-f", "json").returncode == 0  # cached now
    p = run(target, "--max-size", "1K")
    assert p.returncode == 10 and "too large" in p.stderr
    fast = run(target, "-f", "json", "--timeout", "0.000001")  # another budget: another key, a real (partial) run
    assert any("time budget exhausted" in m for m in json.loads(fast.stdout)["incomplete"])


def test_entries_are_private_to_their_owner(xdg):
    """A cached report says what a scan found in someone's binaries: new entries are 0600 whatever the umask."""
    import stat

    c = C.ResultCache()
    sha = "cd" * 32
    old = os.umask(0o022)
    try:
        assert c.put(sha, "o", doc(1))
    finally:
        os.umask(old)
    path = c.path_for(c.key(sha, "o"))
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
