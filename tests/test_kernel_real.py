"""Kernel linking on real Debian kernels, checked number by number against the kernel's own syscall tables.

The vmlinux and the matching arch/x86/entry/syscalls/*.tbl come from benchmarks/fetch_kernel.sh (CI runs it and
exports the paths):

    SYSSCAN_VMLINUX_61 / SYSSCAN_TBL_61 / SYSSCAN_TBL32_61      Debian 12, linux-image-6.1.0-*-cloud-amd64-dbg
    SYSSCAN_VMLINUX_612 / SYSSCAN_TBL_612 / SYSSCAN_TBL32_612   Debian 12, linux-image-6.12.*+deb12-cloud-amd64-dbg

A kernel whose variables are unset is skipped (say so with -rs); a variable that is set but names a missing file
fails: CI must not skip silently. Exact, no tolerance: every number 0..NR_syscalls-1 maps to __x64_<entry point>
(i386: __ia32_<compat entry point, else entry point>) when that symbol exists in the image, else to the ni stub.
"""
from __future__ import annotations

import os
import time

import pytest

from analyzer.kernel import analyze_kernel, load_kernel

KERNELS = ("61", "612")


def _paths(tag: str) -> tuple[str, str, str | None]:
    vm = os.environ.get(f"SYSSCAN_VMLINUX_{tag}")
    tbl = os.environ.get(f"SYSSCAN_TBL_{tag}")
    tbl32 = os.environ.get(f"SYSSCAN_TBL32_{tag}")
    if not vm and not tbl:
        pytest.skip(f"SYSSCAN_VMLINUX_{tag} not set (run benchmarks/fetch_kernel.sh)")
    for var, p in ((f"SYSSCAN_VMLINUX_{tag}", vm), (f"SYSSCAN_TBL_{tag}", tbl), (f"SYSSCAN_TBL32_{tag}", tbl32)):
        if p is not None and not os.path.isfile(p):
            pytest.fail(f"{var}={p} is set but the file does not exist")
    if not vm or not tbl:
        pytest.fail(f"SYSSCAN_VMLINUX_{tag} and SYSSCAN_TBL_{tag} must be set together")
    return vm, tbl, tbl32


def parse_tbl(path: str, abis: tuple[str, ...]) -> dict[int, tuple[str, str | None, str | None]]:
    """nr -> (name, entry point or None, compat entry point or None) for rows of the given ABIs."""
    out = {}
    with open(path) as f:
        for line in f:
            line = line.split("#", 1)[0].strip()
            if not line:
                continue
            cols = line.split()
            if cols[1] not in abis:
                continue
            entry = cols[3] if len(cols) > 3 else None
            compat = cols[4] if len(cols) > 4 and cols[4] != "-" else None
            if compat in ("noreturn",):
                compat = None
            out[int(cols[0])] = (cols[2], entry, compat)
    return out


@pytest.fixture(scope="module", params=KERNELS)
def kernel(request, tmp_path_factory):
    vm, tbl, tbl32 = _paths(request.param)
    saved = os.environ.get("XDG_CACHE_HOME")
    os.environ["XDG_CACHE_HOME"] = str(tmp_path_factory.mktemp("cache"))  # a private, empty analysis cache
    try:
        t = time.perf_counter()
        analysis = analyze_kernel(vm, use_cache=True)
        cold = time.perf_counter() - t
        image = load_kernel(vm)
        yield request.param, analysis, image, tbl, tbl32, cold, vm
    finally:
        if saved is None:
            os.environ.pop("XDG_CACHE_HOME", None)
        else:
            os.environ["XDG_CACHE_HOME"] = saved


def _expected(image, prefix: str, entry: str | None) -> str | None:
    if not entry:
        return None
    sym = prefix + entry
    return sym if image.address_of(sym) is not None or bool(image.symbols_named(sym)) else None


def _check(analysis, image, abi: str, rows: dict, prefix: str, use_compat: bool) -> tuple[int, list]:
    d = analysis.dispatchers[abi]
    ni = analysis.ni[abi]
    wrong = []
    for nr in range(d.nr_syscalls):
        h = analysis.resolve(abi, nr)
        row = rows.get(nr)
        entry = None
        if row is not None:
            entry = row[2] if use_compat and row[2] else row[1]
        want = _expected(image, prefix, entry)
        if want is None:
            if not (h.address == ni and h.enosys):
                wrong.append((nr, "ni", h.symbol))
        else:
            names = {h.symbol, *h.aliases}
            if want not in names:
                wrong.append((nr, want, h.symbol))
    return d.nr_syscalls, wrong


def test_x86_64_table_exact(kernel):
    tag, analysis, image, tbl, _tbl32, _cold, _vm = kernel
    rows = parse_tbl(tbl, ("common", "64"))
    d = analysis.dispatchers["x86_64"]
    assert d.found_by == "data flow"
    assert d.nr_syscalls == max(rows) + 1, "NR_syscalls from the cmp/sbb bound must match the .tbl"
    n, wrong = _check(analysis, image, "x86_64", rows, "__x64_", False)
    assert wrong == [], f"{len(wrong)}/{n} wrong on {tag}: {wrong[:20]}"
    assert analysis.disagreements == []
    assert analysis.table_reads.get("x86_64") == "sys_call_table"


def test_i386_table_exact(kernel):
    tag, analysis, image, _tbl, tbl32, _cold, _vm = kernel
    if tbl32 is None:
        pytest.skip("no syscall_32.tbl given")
    rows = parse_tbl(tbl32, ("i386",))
    d = analysis.dispatchers["i386"]
    assert d.nr_syscalls == max(rows) + 1
    n, wrong = _check(analysis, image, "i386", rows, "__ia32_", True)
    assert wrong == [], f"{len(wrong)}/{n} wrong on {tag}: {wrong[:20]}"


def test_entries_by_data_flow(kernel):
    _tag, analysis, _image, _tbl, _tbl32, _cold, _vm = kernel
    lstar = analysis.entry_for("syscall", "x86_64")
    assert lstar.symbol == "entry_SYSCALL_64" and lstar.msr == 0xC0000082
    assert lstar.method in ("paravirt", "wrmsr")
    assert analysis.do_syscall_64_symbol == "do_syscall_64"
    assert [e for e in analysis.entries if e.method == "symbol-fallback"] == []
    sysenter = analysis.entry_for("sysenter", "i386")
    assert sysenter.symbol == "entry_SYSENTER_compat" and sysenter.dispatcher == "i386"
    int80 = analysis.entry_for("int 0x80", "i386")
    assert int80.method == "idt" and int80.dispatcher == "i386"
    w = analysis.resolve("x86_64", 1)
    assert (w.symbol, w.implementation) == ("__x64_sys_write", "ksys_write")
    assert [a["name"] for a in w.signature] == ["fd", "buf", "count"]
    assert analysis.resolve("x86_64", 101).arg_names == ["request", "pid", "addr", "data"]


def test_cache_serves_the_same_analysis(kernel):
    """The repeat run is served from the cache and gives the same tables (its speed is a benchmark figure,
    benchmarks/BENCHMARKS.md, not a timed test)."""
    _tag, analysis, _image, _tbl, _tbl32, _cold, vm = kernel
    again = analyze_kernel(vm, use_cache=True)
    assert again.cached
    for abi, table in analysis.tables.items():
        assert {nr: (h.symbol, h.enosys) for nr, h in table.items()} == \
            {nr: (h.symbol, h.enosys) for nr, h in again.tables[abi].items()}, abi


def test_sources_from_dwarf(kernel):
    """file:line of the SYSCALL_DEFINE (via addr2line on the -dbg vmlinux's line table), opt-in."""
    import shutil

    from analyzer.kernel.sources import fill_sources

    if shutil.which("addr2line") is None:
        pytest.skip("addr2line (binutils) not installed")
    _tag, analysis, _image, _tbl, _tbl32, _cold, _vm = kernel
    hs = [analysis.resolve("x86_64", 1), analysis.resolve("x86_64", 101), analysis.resolve("i386", 5)]
    assert fill_sources(analysis, hs, use_cache=False) == 3
    assert hs[0].source.startswith("fs/read_write.c:")
    assert hs[1].source.startswith("kernel/ptrace.c:")
    assert hs[2].source.startswith("fs/open.c:")  # COMPAT_SYSCALL_DEFINE3(open, ...)
