#!/usr/bin/env python3
"""Seccomp profiles from the surface, on real Debian programs: each program's profile (`sysscan PROG -f
seccomp`), then every workload of benchmarks/surface_recall.py run twice — unconfined, and under the profile
loaded by libseccomp (tests/seccomp_exec.py) — in fresh, identical directories. A workload passes when the exit
code is the same and, for a deterministic workload, stdout and stderr are too (random keys, clocks: the exit code
and no "Operation not permitted"/"Bad system call"). Tightness beside it: the allowed-set size per program against
Docker's default profile and the prior work's numbers.

    .venv/bin/python benchmarks/seccomp_profiles.py [--only NAME ...] [--json OUT]

Needs Debian's python3-seccomp (the system /usr/bin/python3) and, for busybox/gofmt/the i386 programs, the
variables .ci/run sets. tests/test_seccomp.py runs a deterministic subset in CI.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

import surface_recall  # noqa: E402

LOADER = ROOT / "tests/seccomp_exec.py"
NONDETERMINISTIC = {"date", "date32", "openssl", "ssh-keygen", "python3", "git", "busybox", "busybox32",
                    "ps", "ss", "df", "stat"}
"""Programs with a workload whose output has a clock, randomness, PIDs, sockets, free space or inode numbers in it:
compared on the exit code."""


def run(argv: list[str], cwd: str, profile: str | None) -> subprocess.CompletedProcess:
    cmd = (["/usr/bin/python3", str(LOADER), profile] if profile else []) + argv
    env = {"PATH": "/usr/bin:/bin", "LC_ALL": "C", "TZ": "UTC", "HOME": cwd}
    return subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, timeout=300, stdin=subprocess.DEVNULL)


def main() -> int:
    from analyzer.render.seccomp import render_oci
    from analyzer.run.pipeline import ScanOptions, scan_file
    from analyzer.seccomp import build_profile

    ap = argparse.ArgumentParser()
    ap.add_argument("--only", nargs="*")
    ap.add_argument("--json")
    a = ap.parse_args()
    rows = []
    with tempfile.TemporaryDirectory(ignore_cleanup_errors=True) as tmp, surface_recall.systemd_host() as served:
        print(f"systemd's user database: {served or 'not served (lookups see the machine without systemd)'}")
        progs = surface_recall.workloads("/T")
        for name, (path, _runs) in sorted(progs.items()):
            if a.only and name not in a.only or not os.path.exists(path):
                continue
            t0 = time.perf_counter()
            report = scan_file(path, ScanOptions())
            prof = build_profile([report], runtime=None)  # our loader is not runc: the program's own profile
            secs = time.perf_counter() - t0
            pfile = f"{tmp}/{name}.json"
            Path(pfile).write_text(render_oci(prof))
            results = []
            dirs = []
            for label in ("free", "jail"):
                d = f"{tmp}/{name}-{label}"
                os.makedirs(d)
                surface_recall.prepare(d)
                dirs.append(d)
            runs_free = surface_recall.workloads(dirs[0])[name][1]
            runs_jail = surface_recall.workloads(dirs[1])[name][1]
            for argv_f, argv_j in zip(runs_free, runs_jail):
                f = run([path, *argv_f], dirs[0], None)
                j = run([path, *argv_j], dirs[1], pfile)
                same = f.returncode == j.returncode
                if name not in NONDETERMINISTIC:
                    same = same and (f.stdout.replace(dirs[0].encode(), b"D") == j.stdout.replace(dirs[1].encode(), b"D")
                                     and f.stderr.replace(dirs[0].encode(), b"D") ==
                                     j.stderr.replace(dirs[1].encode(), b"D"))
                denied = b"Operation not permitted" in j.stderr and b"Operation not permitted" not in f.stderr
                same = same and not denied
                results.append({"argv": argv_f, "ok": bool(same), "rc": [f.returncode, j.returncode],
                                "stderr": j.stderr[-300:].decode(errors="replace") if not same else ""})
            for d in dirs:
                surface_recall.stop_agents(d)
            allowed = prof.allowed()
            rows.append({
                "program": name, "allowed": len(allowed),
                "enosys": sum(1 for r in prof.rules if r.action == "errno"),
                "filters": sorted(f"{r.name}({', '.join(hex(c.value_two if c.op == 'masked_eq' else c.value) for alt in r.alternatives for c in alt)})"
                                  for r in allowed if r.alternatives),
                "warnings": len(prof.warnings), "abis": prof.abis, "seconds": round(secs, 2),
                "workloads": len(results), "passed": sum(r["ok"] for r in results),
                "failures": [r for r in results if not r["ok"]],
            })
            r = rows[-1]
            print(f"{name:28} allowed {r['allowed']:4}  enosys {r['enosys']:3}  warnings {r['warnings']:2}  "
                  f"workloads {r['passed']}/{r['workloads']}  {r['filters'] or ''}", flush=True)
            for fail in r["failures"]:
                print(f"    FAIL {fail['argv']} rc {fail['rc']}: {fail['stderr'][-200:]}", flush=True)
    sizes = [r["allowed"] for r in rows]
    total = sum(r["workloads"] for r in rows)
    passed = sum(r["passed"] for r in rows)
    print(f"\n{len(rows)} programs, {passed}/{total} workloads as unconfined; allowed syscalls mean "
          f"{statistics.mean(sizes):.1f}, median {statistics.median(sizes)}, min {min(sizes)}, max {max(sizes)}")
    if a.json:
        Path(a.json).write_text(json.dumps({"rows": rows}, indent=1))
    return 0 if passed == total else 1


if __name__ == "__main__":
    sys.exit(main())
