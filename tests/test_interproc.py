"""Inter-procedural values: wrappers resolved at their callers, clobber summaries, discovery, angr.

Expectations come from corpus/manifest.json (written from the sources and objdump) and from corpus/src/wrappers.c.
"""
from __future__ import annotations

import json
import subprocess
import sys

import jsonschema
import pytest

from conftest import CORPUS, ROOT, manifest_entries, scanned


def site(report, function):
    found = [s for s in report.sites if s.function == function]
    assert found, f"no site in {function}: {[s.function for s in report.sites]}"
    return found[0]


def entry(file):
    return next(e for e in manifest_entries() if e["file"] == file)


WRAPPER_BINARIES = ["bin/wrappers_glibc_static", "bin/wrappers_musl_static", "bin/wrappers_musl_nofde",
                    "bin/wrappers_musl_nofde_stripped"]


@pytest.mark.parametrize("file", WRAPPER_BINARIES)
def test_wrapper_sites_match_the_manifest(file):
    r = scanned(file)
    by_addr = {s.address: s for s in r.sites}
    for exp in entry(file)["sites"]:
        got = by_addr[int(exp["address"], 16)]
        if exp["number"] is not None:
            assert got.number.status == "resolved", (exp, got.number)
            assert got.number.values == exp["number"], exp


def test_raw1_union_and_per_caller_detail():
    """raw1's number is its parameter: four callers, one through two tail-jumping wrappers, one a value set."""
    s = site(scanned("bin/wrappers_glibc_static"), "raw1")
    n = s.number
    assert n.values == [39, 102, 104, 110] and n.status == "resolved"
    by_fn = {}
    for c in n.callers:
        by_fn.setdefault(c.function, []).append(c)
    assert sorted(v for c in by_fn["main"] for v in c.values) == [39, 104, 110]
    chain = [c for c in n.callers if c.via]
    assert len(chain) == 1 and chain[0].values == [110]
    assert [v.split(" in ")[1] for v in chain[0].via] == ["w2", "w1"]
    pick = by_fn["pick"][0]
    assert pick.values == [102, 104] and pick.status == "resolved" and not pick.via
    assert any(p.startswith("caller ") and "w2" in p and "w1" in p for p in n.provenance)
    assert [r.name for r in s.syscalls] == ["getpid", "getuid", "getgid", "getppid"]


def test_stack_argument_is_the_callers_stack_slot():
    s = site(scanned("bin/wrappers_glibc_static"), "stack7")
    assert s.number.values == [186] and s.number.callers[0].function == "main"


@pytest.mark.parametrize("file", ["bin/wrappers_glibc_static", "bin/wrappers_musl_static"])
def test_libc_syscall_wrapper(file):
    """libc's own syscall(): the number (rdi) and the arguments (shifted by one register) at each caller."""
    s = site(scanned(file), "syscall")
    assert s.number.values == [1, 39, 102, 186]
    assert len(s.number.callers) == 4 and all(c.function == "main" for c in s.number.callers)
    # syscall(SYS_write, 1, msg2, 16): the write's buffer is the string, known at that caller
    buf = next(a for a in s.args if a.register == "rsi")
    assert "syscall() write\n" in buf.strings.values()
    write_caller = next(c for c in buf.callers if c.values and c.values[0] in buf.strings)
    assert write_caller.function == "main"


def test_musl_cancellation_point_chain():
    """musl: read/write/close -> __syscall_cp (jmp) -> sccp: the site in sccp has each caller's number."""
    s = site(scanned("bin/wrappers_musl_static"), "sccp")
    assert s.number.values == [0, 1, 3]
    assert sorted(c.function for c in s.number.callers) == ["close", "read", "write"]
    assert all(len(c.via) == 1 and "__syscall_cp" in c.via[0] for c in s.number.callers)


def test_stripped_without_fdes_finds_callers_by_disassembly():
    r = scanned("bin/wrappers_musl_nofde_stripped")
    s = next(x for x in r.sites if x.address == int(next(e for e in entry("bin/wrappers_musl_nofde_stripped")["sites"]
                                                          if e["number"] == [39, 102, 104, 110])["address"], 16))
    assert s.number.values == [39, 102, 104, 110] and s.number.status == "resolved"
    assert all(c.function.startswith("sub_") for c in s.number.callers)


def test_unresolved_caller_keeps_the_parameter_reason():
    """my_syscall(g_nr, 0): the caller loads a writable global, so the number stays unresolved, saying both."""
    s = site(scanned("bin/idioms_nopie"), "my_syscall")
    assert s.number.status == "unresolved"
    assert any("parameter" in r and "writable" in r and "main" in r for r in s.number.reasons)
    assert s.number.callers and s.number.callers[0].status == "unresolved"


def test_exported_function_of_a_shared_object_stays_open():
    s = site(scanned("bin/libraw.so"), "raw_syscall1")
    assert s.number.status == "unresolved"
    assert any("outside this shared object" in r for r in s.number.reasons)


def test_i386_helper_resolved_at_its_only_caller():
    s = site(scanned("bin/i386_glibc_static"), "__libc_do_syscall_int80")
    assert s.number.values == [192] and s.number.callers[0].function == "_dl_early_allocate"


def test_callers_in_json_validate_against_the_schema():
    schema = json.loads((ROOT / "analyzer" / "schemas" / "report.schema.json").read_text())
    data = scanned("bin/wrappers_musl_static").to_dict()
    jsonschema.validate(data, schema)
    raw1 = next(s for s in data["sites"] if s["function"] == "raw1")
    c = raw1["number"]["callers"][0]
    assert c["call_site"].startswith("0x") and all(v.startswith("0x") for v in c["values"])


def test_report_round_trips_with_callers():
    from analyzer.model import Report

    r = scanned("bin/wrappers_musl_static")
    again = Report.from_dict(json.loads(json.dumps(r.to_dict())))
    assert again.to_dict() == r.to_dict()


def test_verbose_table_shows_callers():
    p = subprocess.run([sys.executable, "-m", "analyzer.cli", str(CORPUS / "bin/wrappers_musl_static"), "-v",
                        "--color", "never"], capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert p.returncode == 0, p.stderr
    assert "caller 0x" in p.stdout and "w2" in p.stdout


# ---- call clobber summaries ------------------------------------------------------------------------------------
def test_clobber_summary_of_a_leaf_and_of_a_saver():
    from analyzer.program.load import load
    from analyzer.values.engine import ValueEngine
    from analyzer.values.interproc import ClobberSummaries

    lb = load(str(CORPUS / "bin/wrappers_glibc_static"))
    engine = ValueEngine(lb)
    summaries = ClobberSummaries(lb, engine)
    raw1 = next(f.start for f in lb.functions if f.name == "raw1")
    # raw1: mov %rdi,%rax; mov %rsi,%rdi; syscall; ret -> rax, rdi, and rcx/r11 (syscall) change; rsi, rdx survive
    clob = set(summaries(raw1))
    assert {"rax", "rdi", "rcx", "r11"} <= clob
    assert not {"rsi", "rdx", "r8", "r9", "r10", "rbx"} & clob
    assert summaries(None) == summaries.default  # indirect call: the ABI


# ---- angr ------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("function,values", [("table_pick", [39, 102, 104]), ("stack_pick", [39, 110]),
                                             ("loop_number", [39])])
def test_angr_resolves_what_data_flow_cannot(function, values):
    s = site(scanned("bin/wrappers_musl_static"), function)
    assert s.number.values == values and s.number.status == "resolved"
    assert s.number.provenance == ["angr"]


def test_angr_failure_is_contained_to_the_site(monkeypatch):
    from analyzer.values import angr_fallback

    def boom(self, proj, fstart, site, reg):
        raise RuntimeError("synthetic angr crash")

    monkeypatch.setattr(angr_fallback.AngrFallback, "_explore", boom)
    from analyzer.run.pipeline import scan_file

    r = scan_file(str(CORPUS / "bin/wrappers_musl_static"))
    s = site(r, "table_pick")
    assert s.number.status == "unresolved"
    assert any("angr failed: RuntimeError: synthetic angr crash" in x for x in s.number.reasons)
    assert site(r, "raw1").number.status == "resolved"  # the rest of the scan goes on


def test_angr_time_budget_is_a_reason(monkeypatch):
    from analyzer.budget import BudgetExceeded
    from analyzer.values import angr_fallback

    def slow(self, proj, fstart, site, reg):
        raise BudgetExceeded("test")

    monkeypatch.setattr(angr_fallback.AngrFallback, "_explore", slow)
    from analyzer.run.pipeline import scan_file

    s = site(scan_file(str(CORPUS / "bin/wrappers_musl_static")), "loop_number")
    assert s.number.status == "unresolved" and any("time budget" in x for x in s.number.reasons)


def test_angr_treats_writable_memory_as_unknown():
    """angr must not read a global's initial value as if it were a constant."""
    from analyzer.program.load import load
    from analyzer.values.angr_fallback import AngrFallback

    lb = load(str(CORPUS / "bin/idioms_nopie"))
    f = next(f for f in lb.functions if f.name == "site_writable_global")
    s = site(scanned("bin/idioms_nopie"), "site_writable_global")
    vals, complete, why = AngrFallback(lb).number_at(f.start, s.address, "rax")
    assert not complete and 39 not in vals


def test_local_scan_does_not_load_angr_even_with_unresolved_sites():
    code = ("import sys; from analyzer.run.pipeline import scan_file; r = scan_file('corpus/bin/wrappers_glibc_static'.replace("
            "'wrappers_glibc_static', 'idioms_glibc_static')); print('angr' in sys.modules)")
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert p.returncode == 0, p.stderr
    assert p.stdout.strip() == "False"


@pytest.mark.parametrize("file", ["bin/wrappers_glibc_static", "bin/wrappers_musl_static"])
def test_number_kept_across_a_call_uses_the_callees_real_clobbers(file):
    """gcc keeps the number in rdx over `call bump` because bump only writes rax: the ABI's worst case loses it,
    the callee's summary keeps it."""
    from analyzer.values.engine import ValueEngine

    s = site(scanned(file), "keep_across_call")
    assert s.number.values == [39, 110] and s.number.status == "resolved"
    assert "callee clobber summaries" in s.number.provenance
    # and the local engine alone (no inter-procedural stage) does lose it
    from analyzer.run.pipeline import scan_file

    ValueEngine.interproc_enabled = False
    try:
        local = site(scan_file(str(CORPUS / file)), "keep_across_call")
    finally:
        ValueEngine.interproc_enabled = True
    assert local.number.status != "resolved"
    assert any("clobbered by the call" in r for r in local.number.reasons)


def test_dynamic_binary_calls_to_libc_syscall():
    """wrappers_pie calls libc.so.6's syscall() through the PLT: the library is read (its syscall() takes the
    number in rdi, found by data flow, not by name) and each call's number is reported in wrapper_calls."""
    import os

    if not os.path.exists("/lib/x86_64-linux-gnu/libc.so.6"):
        pytest.skip("needs the system's libc.so.6 (Debian 12 / glibc 2.36)")
    r = scanned("bin/wrappers_pie")
    exp = entry("bin/wrappers_pie")["wrapper_calls"]
    got = {w.call_site: w for w in r.wrapper_calls}
    assert len(got) == len(exp)
    for e in exp:
        w = got[int(e["call_site"], 16)]
        assert w.callee == "syscall" and w.library == "libc.so.6" and w.function == e["function"]
        assert w.number.values == e["number"] and w.number.status == "resolved"
        assert [s.name for s in w.syscalls] == e["names"]
    # static binaries have no such calls (their syscall() is a site of their own)
    assert scanned("bin/wrappers_glibc_static").wrapper_calls == []


def test_library_wrapper_detection_is_by_data_flow():
    import os

    from analyzer.values.wrappers import library_wrappers

    path = "/lib/x86_64-linux-gnu/libc.so.6"
    if not os.path.exists(path):
        pytest.skip("needs the system's libc.so.6")
    lw = library_wrappers(path)
    from analyzer.values.atoms import EntryReg

    assert lw.wrapper_input("syscall") == EntryReg("rdi")
    for name in ("write", "getpid", "printf", "no_such_function"):
        assert lw.wrapper_input(name) is None


def _without_section_headers(src, dst):
    """What sstrip does to the section header table: the bytes stay, the ELF header no longer points at it."""
    import struct

    data = bytearray((CORPUS / src).read_bytes())
    struct.pack_into("<Q", data, 0x28, 0)
    struct.pack_into("<HHH", data, 0x3A, 0, 0, 0)
    dst.write_bytes(bytes(data))
    return str(dst)


def test_fdes_found_through_eh_frame_hdr_without_section_headers(tmp_path):
    from analyzer.program.load import load

    path = _without_section_headers("bin/idioms_pie_stripped", tmp_path / "pie_noshdr")
    full = {(f.start, f.end) for f in load(str(CORPUS / "bin/idioms_pie_stripped")).functions if f.source == "eh_frame"}
    bare = {(f.start, f.end) for f in load(path).functions if f.source == "eh_frame"}
    assert full and bare == full


def test_functions_discovered_by_disassembly_when_nothing_else_is_left(tmp_path):
    """A static glibc binary without section headers has no .eh_frame_hdr either: only the entry point is known.
    Function starts then come from a linear sweep (call targets, code pointers in data)."""
    from analyzer.program.load import load
    from analyzer.run.pipeline import scan_file

    path = _without_section_headers("bin/hello_static_stripped", tmp_path / "hello_noshdr")
    lb = load(path)
    assert sum(f.source == "discovered" for f in lb.functions) > 500
    r = scan_file(path)
    assert r.summary.sites == 104 and r.summary.resolved >= 100


# ---- caller search one target at a time ------------------------------------------------------------------------
@pytest.mark.parametrize("file", ["bin/wrappers_glibc_static", "bin/go_hello", "bin/i386_glibc_static",
                                  "bin/idioms_pie_stripped", "bin/libraw.so"])
def test_per_target_caller_search_finds_what_the_whole_index_finds(file):
    """`CallIndex._search` (a few byte searches per 64 KB for one target) must find exactly the candidates of
    the whole-binary index (`_build`, every call-like byte decoded), for function starts, PLT stubs and any
    target the index holds."""
    import random

    from analyzer.program.load import load
    from analyzer.program.calls import CallIndex

    lb = load(str(CORPUS / file))
    ci = CallIndex(lb)
    index = ci._build()
    targets = sorted({f.start for f in lb.functions} | set(lb.imports) | set(index))
    rnd = random.Random(7)
    sample = targets if len(targets) <= 150 else rnd.sample(targets, 150)
    assert any(index.get(t) for t in sample)
    for t in sample:
        assert ci._search(t) == sorted(set(index.get(t, []))), hex(t)


def test_callers_switch_to_the_whole_index_after_a_few_targets():
    from analyzer.program.load import load
    from analyzer.program.calls import CallIndex

    lb = load(str(CORPUS / "bin/wrappers_glibc_static"))
    ci = CallIndex(lb)
    starts = [f.start for f in lb.functions][: CallIndex.PER_TARGET_SEARCHES + 2]
    got = [ci.candidates(t) for t in starts]
    assert ci._cands is not None  # built once more targets were asked for than the per-target limit
    assert got == [sorted(set(ci._cands.get(t, []))) if i < CallIndex.PER_TARGET_SEARCHES else ci._cands.get(t, [])
                   for i, t in enumerate(starts)]


def test_a_caller_that_cannot_be_analysed_makes_the_union_partial(monkeypatch):
    """One caller whose data flow raises must not lose the others, nor silently shrink the union."""
    from analyzer.run import pipeline as scan

    real = scan.ValueEngine.flow

    def flow(self, start, end, name, focus=None):
        if name == "pick":
            raise RuntimeError("synthetic failure in pick")
        return real(self, start, end, name, focus)

    monkeypatch.setattr(scan.ValueEngine, "flow", flow)
    s = site(scan.scan_file(str(CORPUS / "bin/wrappers_glibc_static")), "raw1")
    n = s.number
    assert n.status == "partial"
    assert {39, 104, 110} <= set(n.values)  # main's calls and the w2 -> w1 chain are still there
    assert any("not analysed" in r and "pick" in r and "synthetic failure" in r for r in n.reasons)
