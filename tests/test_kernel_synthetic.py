"""Kernel linking on the tiny synthetic vmlinux images in corpus/kernel/bin (fast; no compiler needed).

Each image is built from corpus/kernel/src by corpus/kernel/build.sh; corpus/kernel/expected.json (written by
gen.py from the same spec as the C source) is the ground truth: every number of every ABI, exactly.
"""
from __future__ import annotations

import json
import os
import shutil
import struct
from types import SimpleNamespace

import networkx as nx
import pytest

from analyzer.errors import BadKernel, CorruptELF, InputNotFound, NotAnELF
from analyzer.kernel.graph import build_graph, kernel_paths, path_line, write_graph
from analyzer.kernel import KernelAnalysis, analyze_kernel, cache, load_kernel

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
KDIR = os.path.join(ROOT, "corpus", "kernel")
BIN = os.path.join(KDIR, "bin")
with open(os.path.join(KDIR, "expected.json")) as _f:
    EXPECTED = json.load(_f)
VARIANTS = sorted(EXPECTED["variants"])


@pytest.fixture(autouse=True)
def _private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))


@pytest.fixture(scope="module")
def analyses():
    return {v: analyze_kernel(os.path.join(BIN, v), use_cache=False) for v in VARIANTS}


# ---- tables: exact ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("variant", VARIANTS)
def test_every_number_exact(analyses, variant):
    a = analyses[variant]
    spec = EXPECTED["variants"][variant]
    assert set(a.tables) == set(spec["dispatch"]), a.warnings
    for abi, kind in spec["dispatch"].items():
        d = a.dispatchers[abi]
        assert d.kind == kind
        assert d.found_by == "data flow"
        assert d.nr_syscalls == EXPECTED["nr_syscalls"][abi]
        assert d.bound_method.startswith("cmp/sbb")
        want = EXPECTED["tables"][abi]
        wrong = []
        for nr in range(d.nr_syscalls):
            h = a.resolve(abi, nr)
            if want[str(nr)] != h.symbol and want[str(nr)] not in h.aliases:
                wrong.append((nr, want[str(nr)], h.symbol))
        assert wrong == []
        enosys = sorted(nr for nr, h in a.tables[abi].items() if h.enosys)
        assert enosys == EXPECTED["enosys"][abi]
    assert not [w for w in a.warnings if "not resolved" in w or "two handlers" in w]


@pytest.mark.parametrize("variant", VARIANTS)
def test_entries_found_by_data_flow(analyses, variant):
    a = analyses[variant]
    by = {e.instruction: e for e in a.entries}
    lstar = by["syscall"]
    assert (lstar.symbol, lstar.method, lstar.msr, lstar.writer) == ("entry_SYSCALL_64", "wrmsr", 0xC0000082,
                                                                     "syscall_init")
    for instr, msr, slot in (("syscall (compat)", 0xC0000083, "pv_ops+0xc0"),
                             ("sysenter", 0x176, "pv_ops+0xd0")):
        e = by[instr]
        assert e.method == "paravirt" and e.msr == msr and e.via.startswith(slot), e
    assert by["syscall (compat)"].symbol == "entry_SYSCALL_compat"
    assert by["sysenter"].symbol == "entry_SYSENTER_compat"
    assert by["int 0x80"].symbol == "entry_INT80_compat" and by["int 0x80"].method == "idt"
    assert not [e for e in a.entries if e.method == "symbol-fallback"]
    # the decoy (LSTAR restored from writable memory) and SPEC_CTRL (0x48) in the entry code are not entries
    assert len([e for e in a.entries if e.msr == 0xC0000082]) == 1
    assert a.do_syscall_64_symbol == "do_syscall_64"
    assert [s.symbol for s in lstar.path] == ["entry_SYSCALL_64", "do_syscall_64"]
    assert by["sysenter"].dispatcher == "i386" and by["int 0x80"].dispatcher == "i386"
    for e in a.entries:
        assert e.dispatcher, e


def test_msr_writes_include_star_and_mask(analyses):
    a = analyses["vmlinux-switch"]
    names = {w.msr_name for w in a.msr_writes}
    assert {"MSR_STAR", "MSR_LSTAR", "MSR_CSTAR", "MSR_IA32_SYSENTER_CS", "MSR_IA32_SYSENTER_EIP",
            "MSR_SYSCALL_MASK"} <= names
    decoy = [w for w in a.msr_writes if w.writer == "restore_lstar"]
    assert decoy and decoy[0].values == []


def test_hooked_table_disagreement(analyses):
    a = analyses["vmlinux-hooked"]
    assert [(d.abi, d.nr, d.table_symbol, d.switch_symbol) for d in a.disagreements] == [
        ("x86_64", EXPECTED["hooked_nr"], "evil_getpid", "__x64_sys_getpid")]
    assert analyses["vmlinux-switch"].disagreements == []
    assert analyses["vmlinux-switch"].table_reads == {"x86_64": "sys_call_table", "i386": "ia32_sys_call_table",
                                                      "x32": "x32_sys_call_table"}


def test_handlers_implementation_and_signature(analyses):
    a = analyses["vmlinux-switch"]
    w = a.resolve("x86_64", 1)
    assert (w.symbol, w.name, w.implementation, w.enosys) == ("__x64_sys_write", "write", "ksys_write", False)
    assert w.signature == EXPECTED["signatures"]["write"]
    assert a.resolve("x86_64", 101).arg_names == ["request", "pid", "addr", "data"]
    assert a.resolve("x86_64", 60).implementation == "do_exit"
    assert a.resolve("x86_64", 60).via == "call"  # noreturn: reached by call, not a tail jmp
    assert a.resolve("x86_64", 0).via == "jmp"
    assert a.resolve("i386", 4).symbol == "__ia32_sys_write" and a.resolve("i386", 4).implementation == "ksys_write"
    assert a.resolve("i386", 5).signature is None  # compat handlers have no ftrace metadata
    stub = a.resolve("x86_64", 212)  # COND_SYSCALL weak stub
    assert stub.symbol == "__x64_sys_lookup_dcookie" and stub.enosys


def test_resolve_out_of_range_and_x32(analyses):
    a = analyses["vmlinux-switch"]
    for abi, nr in (("x86_64", 240), ("x86_64", 100000), ("x86_64", -1), ("i386", 260)):
        h = a.resolve(abi, nr)
        assert h.enosys and h.symbol == ("__x64_sys_ni_syscall" if abi == "x86_64" else "__ia32_sys_ni_syscall")
        assert h.how.startswith("out of range")
    assert a.resolve("x86_64", 134).enosys  # a hole: the switch's default
    assert a.resolve("x32", 0x40000000 | 513).symbol == "__x32_compat_sys_rt_sigreturn"
    assert a.resolve("x32", 1).symbol == "__x64_sys_write"
    table = analyses["vmlinux-table"]
    assert "x32" not in table.tables and table.resolve("x32", 1).enosys


def test_counts(analyses):
    assert analyses["vmlinux-switch"].counts()["x86_64"] == {"nr_syscalls": 240, "implemented": 20, "enosys": 220}


def test_banner_build_id_hash():
    img = load_kernel(os.path.join(BIN, "vmlinux-switch"))
    assert img.version.startswith("Linux version 6.1.0-sysscan-synthetic")
    assert img.build_id and len(img.build_id) == 40
    assert len(img.sha256) == 64
    # aliases are kept by address
    assert {"__x64_sys_ni_syscall", "__ia32_sys_ni_syscall"} <= set(img.names_at(img.address_of("__x64_sys_ni_syscall")))


# ---- refusals: one line, distinct exit code -----------------------------------------------------------------------
def _elf64_header(machine: int = 62, etype: int = 2) -> bytes:
    return b"\x7fELF\x02\x01\x01" + bytes(9) + struct.pack("<HHIQQQIHHHHHH", etype, machine, 1, 0, 64, 0, 0, 64,
                                                          56, 0, 64, 0, 0)


@pytest.mark.parametrize("name,content,exc,needle", [
    ("bz", b"MZ" + bytes(0x200) + b"HdrS" + bytes(64), BadKernel, "bzImage"),
    ("gz", b"\x1f\x8b\x08\x00" + bytes(60), BadKernel, "compressed"),
    ("arm64", _elf64_header(machine=183), BadKernel, "AArch64"),
    ("elf32", b"\x7fELF\x01\x01\x01" + bytes(9) + struct.pack("<HH", 2, 3) + bytes(40), BadKernel, "32-bit i386"),
    ("text", b"hello world\n" * 10, NotAnELF, "not an ELF"),
    ("empty", b"", NotAnELF, "empty"),
    ("trunc", b"\x7fELF\x02\x01\x01" + bytes(20), CorruptELF, "truncated"),
])
def test_refusals(tmp_path, name, content, exc, needle):
    p = tmp_path / name
    p.write_bytes(content)
    with pytest.raises(exc) as ei:
        analyze_kernel(str(p))
    assert needle in str(ei.value) and "\n" not in str(ei.value)
    assert ei.value.exit_code == exc.exit_code


def test_refuse_stripped_user_missing(tmp_path):
    with pytest.raises(BadKernel, match="stripped") as ei:
        analyze_kernel(os.path.join(BIN, "vmlinux-stripped"))
    assert ei.value.exit_code == 7
    user = os.path.join(ROOT, "corpus", "bin", "idioms_pie")
    if os.path.exists(user):
        with pytest.raises(BadKernel, match="user-space"):
            analyze_kernel(user)
    with pytest.raises(BadKernel, match="user-space"):
        analyze_kernel(shutil.which("true") or "/bin/true")
    with pytest.raises(InputNotFound):
        analyze_kernel(str(tmp_path / "nope"))
    with pytest.raises(InputNotFound):
        analyze_kernel(str(tmp_path))


# ---- cache ---------------------------------------------------------------------------------------------------------
def test_cache_roundtrip_and_corruption(tmp_path):
    path = os.path.join(BIN, "vmlinux-switch")
    first = analyze_kernel(path)
    assert not first.cached
    files = os.listdir(cache.cache_dir())
    assert len(files) == 1 and files[0].endswith(".json")
    second = analyze_kernel(path)
    assert second.cached
    assert second.to_dict()["tables"] == first.to_dict()["tables"]
    assert second.resolve("x86_64", 1).signature == first.resolve("x86_64", 1).signature
    with open(os.path.join(cache.cache_dir(), files[0]), "w") as f:
        f.write("{not json")
    third = analyze_kernel(path)
    assert not third.cached and third.to_dict()["tables"] == first.to_dict()["tables"]
    assert analyze_kernel(path).cached  # rebuilt


def test_no_cache_bypasses(tmp_path):
    analyze_kernel(os.path.join(BIN, "vmlinux-table"), use_cache=False)
    assert not os.path.exists(cache.cache_dir()) or not os.listdir(cache.cache_dir())


def test_same_content_other_path_hits_cache(tmp_path):
    src = os.path.join(BIN, "vmlinux-table")
    analyze_kernel(src)
    copy = tmp_path / "vmlinux"
    shutil.copy(src, copy)
    a = analyze_kernel(str(copy))
    assert a.cached and a.path == str(copy)


def test_json_roundtrip(analyses):
    a = analyses["vmlinux-jumptable"]
    b = KernelAnalysis.from_dict(json.loads(json.dumps(a.to_dict())))
    assert b.to_dict() == a.to_dict()
    assert b.resolve("i386", 4).symbol == "__ia32_sys_write"


# ---- graph ---------------------------------------------------------------------------------------------------------
SITES = [
    SimpleNamespace(address=0x401000, abi="x86_64", instruction="syscall", numbers=[1]),
    SimpleNamespace(address=0x401010, abi="x86_64", instruction="syscall", numbers=[60, 134]),
    SimpleNamespace(address=0x401020, abi="i386", instruction="int 0x80", numbers=[4]),
    SimpleNamespace(address=0x401030, abi="i386", instruction="sysenter", numbers=[]),
    SimpleNamespace(address=0x401040, abi="x86_64", instruction="syscall", numbers=[0x40000000 | 1]),
    SimpleNamespace(address=0x401050, abi="x86_64", instruction="syscall",
                    number=SimpleNamespace(values=[0, 1, 2, 3, 4])),
]


def test_path_lines(analyses):
    a = analyses["vmlinux-switch"]
    lines = [path_line(a, s) for s in SITES]
    assert lines[0] == ("syscall -> entry_SYSCALL_64 [MSR_LSTAR, wrmsr] -> do_syscall_64 -> x64_sys_call [switch] "
                        "-> __x64_sys_write -> ksys_write")
    assert "__x64_sys_ni_syscall (-ENOSYS)" in lines[1] and "__x64_sys_exit -> do_exit" in lines[1]
    assert lines[2].startswith("int 0x80 -> entry_INT80_compat [IDT 0x80, idt] -> do_int80_syscall_32")
    assert lines[2].endswith("ia32_sys_call [switch] -> __ia32_sys_write -> ksys_write")
    assert lines[3].endswith("(number unknown)") and "MSR_IA32_SYSENTER_EIP, paravirt" in lines[3]
    assert lines[4].endswith("x32_sys_call [switch] -> __x64_sys_write -> ksys_write")
    assert lines[5].endswith("5 handlers")


def test_graph_export(analyses, tmp_path):
    a = analyses["vmlinux-switch"]
    g = build_graph(a, SITES)
    assert nx.has_path(g, "site:0x401000", f"handler:x86_64:{a.resolve('x86_64', 1).address:#x}")
    e = g.edges["site:0x401000", f"entry:{a.entries[0].address:#x}"]
    assert "MSR_LSTAR" in e["established"]
    for u, v, attrs in g.edges(data=True):
        assert attrs.get("established"), (u, v)
    for ext in ("graphml", "dot", "json"):
        out = tmp_path / f"g.{ext}"
        assert write_graph(g, str(out)) == ext
        assert out.stat().st_size > 100
    back = nx.read_graphml(str(tmp_path / "g.graphml"))
    assert back.number_of_nodes() == g.number_of_nodes()
    data = json.loads((tmp_path / "g.json").read_text())
    assert len(data["nodes"]) == g.number_of_nodes()
    assert (tmp_path / "g.dot").read_text().startswith("digraph sysscan {")
    with pytest.raises(ValueError):
        write_graph(g, str(tmp_path / "g.png"))
    full = build_graph(a)
    assert sum(1 for _, d in full.nodes(data=True) if d.get("kind") == "handler") >= 20


def test_kernel_paths_records(analyses):
    a = analyses["vmlinux-switch"]
    recs = kernel_paths(a, SITES[1])
    assert [(r["nr"], r["handler"], r["enosys"]) for r in recs] == [(60, "__x64_sys_exit", False),
                                                                    (134, "__x64_sys_ni_syscall", True)]
    assert recs[0]["path"][:3] == ["syscall @ 0x401010", "entry_SYSCALL_64", "do_syscall_64"]


def test_sources_without_dwarf(analyses):
    import shutil

    from analyzer.kernel.sources import fill_sources, tree_relative

    assert tree_relative("debian/build/build_amd64_none_cloud-amd64/fs/read_write.c:646") == "fs/read_write.c:646"
    if shutil.which("addr2line") is None:
        pytest.skip("addr2line not installed")
    a = KernelAnalysis.from_dict(analyses["vmlinux-switch"].to_dict())
    assert fill_sources(a, use_cache=False) == 0  # no DWARF in the synthetic images: nothing, no error
    assert a.resolve("x86_64", 1).source is None
