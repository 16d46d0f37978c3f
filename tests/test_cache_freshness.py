"""A cached result is served only while what its surface read is unchanged (run/freshness.py): the libraries the
program loads (rebuilt with another syscall: the new one is in the next result) and the debug files of stripped
objects (installed after the first scan: used by the next one). Real programs, built here with gcc."""
from __future__ import annotations

import os
import subprocess

import pytest

from analyzer.cache import ResultCache
from analyzer.run.pipeline import ScanOptions
from analyzer.run.pool import scan_paths

LIB_V1 = "#include <unistd.h>\nlong f(void) { return getpid(); }\n"
LIB_V2 = "#include <unistd.h>\nlong f(void) { sync(); return getpid(); }\n"
MAIN = "long f(void);\nint main(void) { return (int)f(); }\n"


@pytest.fixture(autouse=True)
def caching(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))  # the per-object summaries too, out of the way
    monkeypatch.delenv("SYSSCAN_NO_CACHE", raising=False)


def _gcc(*args: str) -> None:
    subprocess.run(["gcc", "-O1", "-Wl,--build-id", *args], check=True)


def _names(result) -> set[str]:
    (report,) = result.reports
    return {s.name for s in report.surface.syscalls}


def test_a_rebuilt_library_is_a_new_answer(tmp_path):
    (tmp_path / "lib.c").write_text(LIB_V1)
    (tmp_path / "main.c").write_text(MAIN)
    lib, prog = tmp_path / "libx.so", tmp_path / "prog"
    _gcc("-shared", "-fPIC", "-o", str(lib), str(tmp_path / "lib.c"))
    _gcc("-o", str(prog), str(tmp_path / "main.c"), "-L", str(tmp_path), "-lx", "-Wl,-rpath,$ORIGIN")
    cache = ResultCache(str(tmp_path / "cache"))
    first = scan_paths([str(prog)], ScanOptions(), cache=cache)
    assert first.cached == 0 and "getpid" in _names(first) and "sync" not in _names(first)
    assert scan_paths([str(prog)], ScanOptions(), cache=cache).cached == 1
    os.utime(lib, ns=(os.stat(lib).st_atime_ns, os.stat(lib).st_mtime_ns + 10**9))  # same bytes, a new time
    assert scan_paths([str(prog)], ScanOptions(), cache=cache).cached == 1
    (tmp_path / "lib.c").write_text(LIB_V2)
    _gcc("-shared", "-fPIC", "-o", str(lib), str(tmp_path / "lib.c"))
    after = scan_paths([str(prog)], ScanOptions(), cache=cache)
    assert after.cached == 0 and "sync" in _names(after)


def test_a_debug_file_installed_later_is_used(tmp_path):
    (tmp_path / "main.c").write_text("#include <unistd.h>\nint main(void) { return getpid() == 0; }\n")
    full, prog = tmp_path / "full", tmp_path / "prog"
    _gcc("-g", "-o", str(full), str(tmp_path / "main.c"))
    subprocess.run(["objcopy", "--strip-all", str(full), str(prog)], check=True)
    build_id = subprocess.run(["readelf", "-n", str(prog)], capture_output=True, text=True,
                              check=True).stdout.split("Build ID:")[1].split()[0]
    debug_dir = tmp_path / "debug"
    options = ScanOptions(debug_dirs=(str(debug_dir),))
    cache = ResultCache(str(tmp_path / "cache"))
    first = scan_paths([str(prog)], options, cache=cache)
    assert first.reports[0].binary.debug_file is None
    assert scan_paths([str(prog)], options, cache=cache).cached == 1
    where = debug_dir / ".build-id" / build_id[:2] / (build_id[2:] + ".debug")
    where.parent.mkdir(parents=True)
    subprocess.run(["objcopy", "--only-keep-debug", str(full), str(where)], check=True)
    after = scan_paths([str(prog)], options, cache=cache)
    assert after.cached == 0 and after.reports[0].binary.debug_file == str(where)
    assert after.reports[0].binary.stripped


def test_a_changed_nsswitch_conf_is_a_new_answer(tmp_path, monkeypatch):
    """The surface follows the NSS modules /etc/nsswitch.conf names: a result records that file (its bytes, or its
    absence) and is served only while it is unchanged. The file is a stand-in here: the machine's is left alone."""
    import analyzer.run.freshness as freshness

    conf = tmp_path / "nsswitch.conf"
    conf.write_text("passwd: files systemd\n")
    monkeypatch.setattr(freshness, "CONFIG_FILES", (str(conf),))
    (tmp_path / "main.c").write_text("#include <unistd.h>\nint main(void) { return getpid() == 0; }\n")
    prog = tmp_path / "prog"
    _gcc("-o", str(prog), str(tmp_path / "main.c"))
    cache = ResultCache(str(tmp_path / "cache"))
    assert scan_paths([str(prog)], ScanOptions(), cache=cache).cached == 0
    assert scan_paths([str(prog)], ScanOptions(), cache=cache).cached == 1
    conf.write_text("passwd: files ldap\n")
    assert scan_paths([str(prog)], ScanOptions(), cache=cache).cached == 0
    assert scan_paths([str(prog)], ScanOptions(), cache=cache).cached == 1
    conf.unlink()
    assert scan_paths([str(prog)], ScanOptions(), cache=cache).cached == 0
    assert scan_paths([str(prog)], ScanOptions(), cache=cache).cached == 1
    conf.write_text("passwd: files\n")
    assert scan_paths([str(prog)], ScanOptions(), cache=cache).cached == 0
