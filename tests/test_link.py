"""The kernel stage on a user binary: `sysscan FILE --vmlinux V` paths, names, -ENOSYS notes, --graph, and
`sysscan kernel V`. Fast on the synthetic kernel in corpus/kernel; exact on Debian's 6.1 kernel in CI."""
from __future__ import annotations

import json
import os

import networkx as nx
import pytest

from analyzer.kernel import analyze_kernel
from analyzer.run.pipeline import ScanOptions, scan_file
from conftest import CORPUS
from test_cli import run

SAMPLE = CORPUS / "bin" / "idioms_nopie"
SYNTH = CORPUS / "kernel" / "bin" / "vmlinux-switch"
EXPECTED = json.loads((CORPUS / "kernel" / "expected.json").read_text())


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))


def _site(report, function: str):
    return next(s for s in report.sites if s.function == function)


def test_sites_linked_to_synthetic_kernel():
    k = analyze_kernel(str(SYNTH), use_cache=False)
    r = scan_file(str(SAMPLE), ScanOptions(kernel=k))
    assert r.table.source == "vmlinux" and r.kernel["sha256"] == k.sha256
    write = _site(r, "site_mov_imm_write")
    (path,) = write.kernel
    assert path.handler == EXPECTED["tables"]["x86_64"]["1"] == "__x64_sys_write"
    assert path.entry == "entry_SYSCALL_64" and not path.enosys
    assert path.path[0].startswith("syscall @ ") and "__x64_sys_write" in path.path
    # int 0x80 in a 64-bit binary goes through the i386 table of *this* kernel
    i386 = _site(r, "site_int80_getpid")
    (p32,) = i386.kernel
    assert p32.abi == "i386" and p32.handler == EXPECTED["tables"]["i386"]["20"]
    # both arms of a branch are linked
    branch = _site(r, "site_branch_c")
    assert sorted(p.nr for p in branch.kernel) == [39, 102]


def test_enosys_on_this_kernel_is_noted():
    k = analyze_kernel(str(SYNTH), use_cache=False)
    r = scan_file(str(SAMPLE), ScanOptions(kernel=k))

    def expect_enosys(abi: str, nr: int) -> bool:  # a hole or configured out, or past NR_syscalls
        return nr in set(EXPECTED["enosys"][abi]) or nr >= EXPECTED["nr_syscalls"][abi]

    seen = False
    for site in r.sites:
        for p in site.kernel:
            assert p.enosys == expect_enosys(p.abi, p.nr), p
            if p.enosys:
                seen = True
                assert any("-ENOSYS" in n for n in site.notes)
    assert seen, "the synthetic kernel configures out some syscall the corpus makes"


def test_cli_vmlinux_json_and_graph(tmp_path):
    graph = tmp_path / "g.graphml"
    p = run(str(SAMPLE), "--vmlinux", str(SYNTH), "-f", "json", "--graph", str(graph),
            env={"XDG_CACHE_HOME": str(tmp_path / "c")})
    assert p.returncode == 0, p.stderr
    doc = json.loads(p.stdout)
    assert doc["table"]["source"] == "vmlinux"
    write = next(s for s in doc["sites"] if s["function"] == "site_mov_imm_write")
    assert write["kernel"][0]["handler"] == "__x64_sys_write"
    g = nx.read_graphml(graph)
    site = next(n for n, d in g.nodes(data=True) if d.get("kind") == "site" and d.get("address") == write["address"])
    handler = next(n for n, d in g.nodes(data=True) if d.get("kind") == "handler" and d.get("symbol") == "__x64_sys_write")
    path = nx.shortest_path(g, site, handler)
    labels = [g.nodes[n].get("label") for n in path]
    assert labels[1] == "entry_SYSCALL_64" and any(x.startswith("x64_sys_call") for x in labels), labels
    assert all(g.edges[a, b].get("how") for a, b in zip(path, path[1:]))


def test_cli_graph_needs_vmlinux(tmp_path):
    p = run(str(SAMPLE), "--graph", str(tmp_path / "g.dot"))
    assert p.returncode == 2 and "--graph needs --vmlinux" in p.stderr


def test_user_binary_as_vmlinux_is_refused():
    p = run(str(SAMPLE), "--vmlinux", str(SAMPLE))
    assert p.returncode == 7, p.stderr
    assert len(p.stderr.strip().splitlines()) == 1 and str(SAMPLE) in p.stderr


def test_kernel_subcommand(tmp_path):
    p = run("kernel", str(SYNTH), "--no-cache", "--width", "200")
    assert p.returncode == 0, p.stderr
    assert "entry_SYSCALL_64" in p.stdout and "__x64_sys_write" in p.stdout and "x64_sys_call" in p.stdout
    j = run("kernel", str(SYNTH), "-f", "json", env={"XDG_CACHE_HOME": str(tmp_path / "c")})
    doc = json.loads(j.stdout)
    assert doc["sha256"] and doc["dispatchers"]["x86_64"]["nr_syscalls"] == EXPECTED["nr_syscalls"]["x86_64"]


REAL = os.environ.get("SYSSCAN_VMLINUX_61")


@pytest.mark.skipif(not REAL, reason="SYSSCAN_VMLINUX_61 not set (.ci/run fetches Debian's 6.1 kernel)")
def test_real_kernel_paths_and_names():
    assert os.path.exists(REAL), f"SYSSCAN_VMLINUX_61={REAL} does not exist"
    k = analyze_kernel(REAL)
    r = scan_file(str(CORPUS / "bin" / "idioms_glibc_static"), ScanOptions(kernel=k))
    write = _site(r, "site_mov_imm_write")
    (p,) = write.kernel
    assert p.entry == "entry_SYSCALL_64" and p.handler == "__x64_sys_write"
    assert "do_syscall_64" in p.path and "x64_sys_call" in p.path
    assert [a.param for a in write.args] == ["fd", "buf", "count"]
    i386 = _site(r, "site_int80_getpid")
    assert i386.kernel[0].handler == "__ia32_sys_getpid"
    assert all(s.kernel for s in r.sites if s.number.status == "resolved")
