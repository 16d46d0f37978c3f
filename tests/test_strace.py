"""Proof against reality: run the corpus programs under strace and check that every system call they really make
is in sysscan's static syscall set for that binary (100 % recall).

Only **static** binaries are compared: in them every system call comes from a site in the file. Left out, and why:

* dynamic binaries (`idioms_pie`, `idioms_nopie`, `decoys`, `i386_pie`, …): almost all of their system calls are
  made by the dynamic loader and libc.so, whose sites are not in the file (sysscan reports the file it is given);
* `i386_glibc_static`: glibc i386 enters the kernel through `call *%gs:0x10`, the vDSO's `__kernel_vsyscall`,
  whose `sysenter` is in the kernel-provided vDSO, not in the file;
* the first `execve` of each run: strace's child makes it, before the program exists.

The numbers come from strace (`-n`), so the ABI is checked too: an `int 0x80` made by a 64-bit program shows as an
i386 number (20 getpid), and must match an i386-table use in the report, not x86-64 39.

strace is required: `.ci/run` installs Debian's strace; without it these tests fail, they do not skip.
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from conftest import CORPUS, scanned

# (corpus file, the argument vectors of the workload): every variant runs, the observed sets are united
STATIC_PROGRAMS = {
    "bin/hello_static": [[], ["a", "b"]],
    "bin/hello_static_stripped": [[]],
    "bin/idioms_glibc_static": [[], ["x"]],
    "bin/idioms_musl_static": [[], ["x"]],
    "bin/wrappers_glibc_static": [[], ["x"], ["x", "y", "z"]],
    "bin/wrappers_musl_static": [[], ["x"], ["x", "y", "z"]],
    "bin/wrappers_musl_nofde": [[], ["x"]],
    "bin/wrappers_musl_nofde_stripped": [[], ["x"]],
    "bin/i386_raw": [[]],
    "bin/go_hello": [[]],
    "bin/go_hello_stripped": [[]],
}
LINE = re.compile(r"^(?:\[pid\s+)?(\d+)\]?\s+\[\s*(\d+)\]\s+([a-z_0-9]+)\(")


def strace_path() -> str:
    path = shutil.which("strace")
    if path is None:
        pytest.fail("strace is not installed: these tests need Debian's strace (.ci/run installs it)")
    return path


def run_traced(argv: list[str], stdin: bytes = b"", timeout: float = 120.0) -> list[tuple[int, str]]:
    """[(number, name)] of every system call the program and its threads made, in order (execve of the
    program itself excluded)."""
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "trace")
        p = subprocess.run([strace_path(), "-f", "-qq", "-n", "-e", "trace=all", "-o", out, "--", *argv],
                           input=stdin, capture_output=True, timeout=timeout, cwd=tmp)
        text = Path(out).read_text(errors="replace") if os.path.exists(out) else ""
        if not text:
            pytest.fail(f"strace produced nothing for {argv} (exit {p.returncode}): {p.stderr[-500:]!r} — "
                        "ptrace may be forbidden here")
    calls = []
    for line in text.splitlines():
        m = LINE.match(line)
        if m:
            calls.append((int(m.group(2)), m.group(3)))
    if calls and calls[0][1] == "execve":
        calls = calls[1:]
    return calls


def abi_of(nr: int, name: str, bits: int) -> str:
    """Which table a traced call used: strace names it after the process's personality."""
    if bits == 32:
        return "i386"
    from analyzer.syscalls import load_table

    def same(table: str) -> bool:
        e = load_table(table).get(nr)
        return e is not None and e.name.lstrip("_") == name.lstrip("_")

    if same("x86_64"):
        return "x86_64"
    if same("i386"):
        return "i386"
    return "x86_64"


def observed(file: str) -> set[tuple[str, int, str]]:
    path = str(CORPUS / file)
    bits = scanned(file).binary.bits
    seen = set()
    for args in STATIC_PROGRAMS[file]:
        for nr, name in run_traced([path, *args]):
            seen.add((abi_of(nr, name, bits), nr, name))
    return seen


@pytest.mark.parametrize("file", sorted(STATIC_PROGRAMS))
def test_every_observed_syscall_is_in_the_static_set(file):
    report = scanned(file)
    assert report.binary.static
    static = {(u.abi, u.nr) for u in report.syscalls}
    seen = observed(file)
    assert len(seen) >= 3, seen
    missing = sorted(x for x in seen if (x[0], x[1]) not in static)
    assert not missing, f"{file}: strace saw {missing}, not in sysscan's set"


def test_workload_reaches_the_wrappers():
    """The comparison means something only if the wrappers' numbers are really used: they are in the trace."""
    seen = {(a, n) for a, n, _ in observed("bin/wrappers_musl_static")}
    for nr in (39, 102, 104, 110, 186, 0, 1, 3, 32):  # raw1's, stack7's, syscall()'s, sccp's numbers
        assert ("x86_64", nr) in seen, nr
    go = {(a, n) for a, n, _ in observed("bin/go_hello_stripped")}
    for nr in (39, 110, 102, 140, 257):  # Syscall6 (register ABI) and rawSyscallNoError (stack ABI)
        assert ("x86_64", nr) in go, nr


def test_int80_in_a_64bit_program_is_traced_as_i386():
    seen = observed("bin/idioms_musl_static")
    assert ("i386", 20, "getpid") in seen and ("i386", 96, "getpriority") in seen


def test_recall_summary_is_reportable():
    """The numbers benchmarks/values_bench.py prints: observed, covered, per binary."""
    rows = []
    for file in ("bin/wrappers_glibc_static", "bin/go_hello"):
        static = {(u.abi, u.nr) for u in scanned(file).syscalls}
        seen = {(a, n) for a, n, _ in observed(file)}
        rows.append((file, len(seen), len(seen & static)))
    assert all(covered == total for _, total, covered in rows), rows
