#!/usr/bin/env python3
"""Soundness of the surface on the paths plain runs never take: the workloads of surface_recall.py run again under
strace with the environment glibc reads and with syscalls made to fail, and every syscall the process itself makes
in any of those runs must be in its surface.

A plain run sees the happy path. A real one also meets a full disk, a kernel without a newer syscall, a seccomp
sandbox, an interrupted call, a user lookup that falls through to the next NSS service, or an environment that
turns on one of glibc's options. Each workload is run:

- once plainly (what surface_recall.py sees);
- under each of `environments()` (ld.so's profiling, tracing and ldd mode, $ORIGIN in the library path, malloc's
  huge-page tunables and checking, a French translation with a relative GCONV_PATH, a time zone);
- with each syscall the plain run made failing (strace `-e inject=NAME:error=E`): ENOSYS at every call (a kernel
  or sandbox without it), and EIO, ENOMEM, EINTR, EACCES at its first call. Never exit_group, exit, rt_sigreturn or
  execve: the kernel never fails the first three, and a failed execve of the program is not the program.

"witnessed" is the union over all those runs: syscalls some real run of the program makes, which any sound surface
must hold. It is also a floor for tightness: a surface can only shrink toward it.

    .venv/bin/python benchmarks/surface_faults.py [--only NAME ...] [--json OUT]

tests/test_surface_faults.py runs a few programs of it in CI.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import surface_recall  # noqa: E402

NEVER_FAIL = frozenset({"exit_group", "exit", "rt_sigreturn", "execve"})
ERRORS = ("ENOSYS", "EIO", "ENOMEM", "EINTR", "EACCES")
RUN_SECONDS = 20  # a run a fault sends into a retry loop is stopped; what it made until then counts


def environments(tmp: str) -> dict[str, dict[str, str]]:
    """name -> variables added to the environment: each turns on a path of ld.so or libc that a plain run skips."""
    return {
        "LD_PROFILE": {"LD_PROFILE": "libc.so.6", "LD_PROFILE_OUTPUT": tmp},  # ld.so profiles libc: setitimer
        "$ORIGIN": {"LD_LIBRARY_PATH": "$ORIGIN/none"},  # ld.so reads /proc/self/exe: readlink
        "hugetlb=1": {"GLIBC_TUNABLES": "glibc.malloc.hugetlb=1"},  # malloc reads the THP mode
        "hugetlb=2": {"GLIBC_TUNABLES": "glibc.malloc.hugetlb=2"},  # malloc lists the huge page sizes
        "MALLOC_CHECK_": {"MALLOC_CHECK_": "3"},
        "translated": {"LANGUAGE": "fr", "LC_ALL": "C.UTF-8", "GCONV_PATH": "relative/dir"},  # gettext, getcwd
        "LD_DEBUG": {"LD_DEBUG": "all", "LD_DEBUG_OUTPUT": f"{tmp}/ld-debug"},  # ld.so's tracing, to a file
        "ldd": {"LD_TRACE_LOADED_OBJECTS": "1"},  # ld.so lists the objects and stops: what ldd runs
        "TZ": {"TZ": "Europe/Paris"},  # a zone file read by localtime
    }


@dataclass
class Result:
    name: str
    path: str
    runs: int = 0
    plain: set[str] = field(default_factory=set)
    witnessed: set[str] = field(default_factory=set)
    surface: set[str] = field(default_factory=set)
    seconds: float = 0.0  # of the runs

    @property
    def missing(self) -> set[str]:
        return self.witnessed - self.surface


def trace(path: str, argv: list[str], cwd: str, options: list[str] = (), env: dict[str, str] | None = None) -> set[str]:
    with tempfile.NamedTemporaryFile("r", suffix=".strace") as out:
        try:
            subprocess.run(["strace", "-f", "-qq", *options, "-o", out.name, path, *argv], cwd=cwd,
                           stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                           timeout=RUN_SECONDS, env=None if env is None else {**os.environ, **env})
        except subprocess.TimeoutExpired:
            pass
        return {n for n in surface_recall.observed(Path(out.name).read_text(errors="replace")) if not _no_syscall(n)}


def _no_syscall(name: str) -> bool:
    """strace's `syscall_0xffffffffffffffda`: a negative number, which no kernel has (it returns ENOSYS without
    making a syscall). Seen once in the 11,867 runs of 2026-11-29 (go_hello with one syscall failing; a second sweep
    of its faults did not show it again)."""
    return name.startswith("syscall_0x") and int(name[len("syscall_0x"):], 16) >= 1 << 63


def faults(names: set[str]) -> list[list[str]]:
    """strace options, one run each: every syscall the plain run made, failing in each of the ways of ERRORS."""
    out = []
    for name in sorted(names - NEVER_FAIL):
        for err in ERRORS:
            out.append(["-e", f"inject={name}:error={err}" + ("" if err == "ENOSYS" else ":when=1")])
    return out


def run(only: list[str] | None = None) -> list[Result]:
    results = []
    with surface_recall.workdir("sysscan-faults-") as tmp, surface_recall.systemd_host():
        for name, (path, runs) in surface_recall.workloads(tmp).items():
            if only and name not in only or not os.path.exists(path):
                continue
            res = Result(name, path)
            t = time.perf_counter()
            for argv in runs:
                plain = trace(path, argv, tmp)
                res.plain |= plain
                res.witnessed |= plain
                for env in environments(tmp).values():
                    res.witnessed |= trace(path, argv, tmp, env=env)
                for options in faults(plain):
                    res.witnessed |= trace(path, argv, tmp, options)
                res.runs += 1 + len(environments(tmp)) + len(faults(plain))
            res.seconds = time.perf_counter() - t
            res.surface = surface_recall.surface_of(path)[0]
            results.append(res)
    return results


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--only", nargs="*")
    ap.add_argument("--json")
    a = ap.parse_args()
    surface_recall.benchmark_setup("sysscan-faults-cache-")
    with surface_recall.systemd_host() as served:
        print(f"systemd's user database: {served or 'not served (lookups see the machine without systemd)'}")
        results = run(a.only)
    print(f"{'program':28} {'runs':>5} {'plain':>5} {'witnessed':>9} {'surface':>7} {'missed':>6} {'s':>6}  missing")
    for r in results:
        print(f"{r.name:28} {r.runs:5} {len(r.plain):5} {len(r.witnessed):9} {len(r.surface):7} {len(r.missing):6} "
              f"{r.seconds:6.1f}  {' '.join(sorted(r.missing))}")
    if results:
        n = len(results)

        def mean(sets) -> str:
            return f"{sum(len(s) for s in sets) / n:.1f}"

        print(f"{n} programs, {sum(r.runs for r in results)} runs; mean plain {mean(r.plain for r in results)}, "
              f"witnessed {mean(r.witnessed for r in results)}, surface {mean(r.surface for r in results)}; recall "
              f"{'100 %' if not any(r.missing for r in results) else 'NOT 100 %'}")
    if a.json:
        Path(a.json).write_text(json.dumps([{"name": r.name, "runs": r.runs, "plain": sorted(r.plain),
                                             "witnessed": sorted(r.witnessed), "surface": sorted(r.surface),
                                             "missing": sorted(r.missing), "seconds": round(r.seconds, 1)}
                                            for r in results], indent=1))
    return 1 if any(r.missing for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
