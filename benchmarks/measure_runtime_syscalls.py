#!/usr/bin/env python3
"""Which syscalls runc's init makes after it installs a container's seccomp filter and before it execs the
container's program: those must be in every OCI profile, whatever the program (analyzer/seccomp/data/runc.json).

    python benchmarks/measure_runtime_syscalls.py BUNDLE [RUNS]

BUNDLE: an OCI bundle (config.json + rootfs) whose process is a program of the rootfs and whose linux.seccomp
allows everything (a filter is still installed). runc runs under `strace -f -Y` RUNS times (default 10); for each
run, the syscalls of every thread of the init process ("runc:[2:INIT]") from its `prctl(PR_SET_SECCOMP)` or
`seccomp(SECCOMP_SET_MODE_FILTER)` up to its execve of the program. Prints the union as JSON.
"""
from __future__ import annotations

import json
import re
import subprocess
import sys
import tempfile

LINE = re.compile(r"^(\d+)<([^>]*)>\s+(?:<\.\.\. (\w+) resumed>|(\w+)\()")
INIT = "runc:[2:INIT]"  # the comm of runc's init process, all its threads
LOAD = re.compile(r"PR_SET_SECCOMP, SECCOMP_MODE_FILTER, \{|seccomp\(SECCOMP_SET_MODE_FILTER, [^,]*, \{")


def one_run(bundle: str, k: int) -> set[str]:
    """The syscalls every thread of the init process makes from its filter's load to its execve of the program
    (threads that started before the load are not filtered, but a later Go runtime may do their work in the
    filtered thread: all are counted)."""
    with tempfile.NamedTemporaryFile("r", suffix=".strace") as out:
        subprocess.run(["strace", "-f", "-qq", "-Y", "-o", out.name, "runc", "run", f"sysscan-measure-{k}"],
                       cwd=bundle, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=120)
        lines = out.read().splitlines()
    loads = [i for i, ln in enumerate(lines) if INIT in ln.split(" ", 1)[0] and LOAD.search(ln) and "= -1" not in ln]
    load_i = loads[-1]
    init = lines[load_i].split("<", 1)[0]
    exec_i = next(i for i in range(load_i, len(lines)) if lines[i].startswith(init + "<") and "execve(" in lines[i])
    found: set[str] = set()
    for ln in lines[load_i + 1: exec_i + 1]:
        m = LINE.match(ln)
        if m and m.group(2) == INIT and not (m.group(3) in ("prctl", "seccomp") and m.group(1) == init):
            found.add(m.group(3) or m.group(4))  # (the load's own call resuming is not after it)
    found.add("execve")
    return found


def main(argv: list[str]) -> int:
    bundle = argv[1]
    runs = int(argv[2]) if len(argv) > 2 else 10
    union: set[str] = set()
    for k in range(runs):
        union |= one_run(bundle, k)
    version = subprocess.run(["runc", "--version"], capture_output=True, text=True).stdout.splitlines()[0]
    print(json.dumps({"runtime": version, "runs": runs, "syscalls": sorted(union)}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
