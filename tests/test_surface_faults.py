"""Soundness on the paths plain runs never take (benchmarks/surface_faults.py): real programs run again with
syscalls failing (strace fault injection) and with the environment variables ld.so and libc read; every syscall
the process makes in any of those runs is in its surface. A subset of the benchmark's programs, to bound CI time:
a dynamic coreutils program with its libraries, static glibc, static musl without unwind tables, and Go."""
from __future__ import annotations

import shutil
import sys

import pytest

from conftest import ROOT

sys.path.insert(0, str(ROOT / "benchmarks"))
import surface_faults  # noqa: E402

PROGRAMS = ["ls", "wc", "hello_static", "wrappers_musl_nofde_stripped", "go_hello"]


def test_syscalls_of_failing_and_configured_runs_are_in_the_surface(tmp_path, monkeypatch):
    if shutil.which("strace") is None:
        pytest.fail("strace is not installed (.ci/run installs it)")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    monkeypatch.delenv("SYSSCAN_NO_CACHE", raising=False)
    results = surface_faults.run(PROGRAMS)
    assert sorted(r.name for r in results) == sorted(PROGRAMS)
    misses = {r.name: sorted(r.missing) for r in results if r.missing}
    assert not misses, f"syscalls made under faults or options but missing from the surface: {misses}"
    ls = next(r for r in results if r.name == "ls")
    # the runs reach past the plain ones: abort on a failed allocation (tgkill), ld.so's profiling (setitimer);
    # and a user lookup that falls through to libnss_systemd (prctl: libcap's constructor), in a plain run of
    # `ls -l` on a file of an unnamed owner (as root) or when reading /etc/passwd fails
    assert {"tgkill", "setitimer"} <= ls.witnessed - ls.plain, sorted(ls.witnessed - ls.plain)
    assert "prctl" in ls.witnessed
