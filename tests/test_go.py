"""Go binaries: function names from the pclntab (kept when stripped), runtime sites, register- and stack-ABI
wrappers resolved at their callers. Expectations: corpus/manifest.json (Go source + objdump)."""
from __future__ import annotations

import struct

import pytest

from conftest import CORPUS, manifest_entries, scanned

GO = ["bin/go_hello", "bin/go_hello_stripped"]


def entry(file):
    return next(e for e in manifest_entries() if e["file"] == file)


def test_pclntab_names_match_the_symbol_table():
    """Every function the unstripped twin's symbol table knows, the stripped binary's pclntab names the same
    (ABI0 assembly functions carry `.abi0` in the symbol table only)."""
    from analyzer.program.load import load

    full = load(str(CORPUS / "bin/go_hello"))
    stripped = load(str(CORPUS / "bin/go_hello_stripped"))
    assert stripped.go is not None and stripped.go.version == "1.18"  # Go 1.18/1.19 layout, magic 0xfffffff0
    names = {f.start: f.name for f in stripped.functions}
    same = differ = 0
    for f in full.functions:
        if f.source == "symbol" and f.start in names:
            if names[f.start] == f.name.removesuffix(".abi0"):
                same += 1
            else:  # another label at the same address (runtime.text at the first function)
                differ += 1
    assert same > 1000 and differ <= 3, (same, differ)
    assert len(stripped.functions) == len(stripped.go.functions) >= 1000


def test_pclntab_found_without_section_headers():
    """With the section header table gone, the table is found by searching read-only memory for its header."""
    from analyzer.elf.golang import find_pclntab
    from analyzer.program.load import load

    lb = load(str(CORPUS / "bin/go_hello_stripped"))
    regions = [(r.start, r.data, r.writable) for r in lb.memory.regions]
    info = find_pclntab({}, regions, lambda a: any(x.start <= a < x.end for x in lb.exec_ranges))
    assert info is not None and len(info.functions) == len(lb.go.functions)


def test_corrupt_pclntab_is_ignored():
    from analyzer.elf.golang import parse_pclntab

    header = struct.pack("<IBBBBQ", 0xFFFFFFF0, 0, 0, 1, 8, 5) + b"\xff" * 64
    assert parse_pclntab(header, 0x1000, lambda a: True) is None
    assert parse_pclntab(b"\xf0\xff\xff\xff", 0, lambda a: True) is None


@pytest.mark.parametrize("file", GO)
def test_every_runtime_site_resolved(file):
    r = scanned(file)
    by_addr = {s.address: s for s in r.sites}
    for exp in entry(file)["sites"]:
        s = by_addr[int(exp["address"], 16)]
        assert s.number.status == "resolved" and s.number.values == exp["number"], exp


@pytest.mark.parametrize("file", GO)
def test_register_abi_wrapper_resolved_at_callers(file):
    """runtime/internal/syscall.Syscall6 takes the number in AX: every number the program passes is there."""
    r = scanned(file)
    for w in entry(file)["wrapper_sites"]:
        s = next(x for x in r.sites if x.address == int(w["address"], 16))
        assert set(w["number_includes"]) <= set(s.number.values), (w, s.number.values)
        assert s.number.callers
        assert s.number.status in ("resolved", "partial")
        # main.main -> syscall.Syscall -> syscall.RawSyscall6 -> Syscall6: a chain the provenance shows
        getpid = [c for c in s.number.callers if 39 in c.values and c.function == "main.main"]
        assert getpid and any("syscall.Syscall" in v for v in getpid[0].via)
        # the unresolved callers say why (a package variable in writable memory, a per-thread request)
        for c in s.number.callers:
            assert c.status == "resolved" or c.reasons


@pytest.mark.parametrize("file", GO)
def test_stack_abi_wrapper(file):
    """syscall.rawSyscallNoError is ABI0 assembly: the number is trap+0(FP), the caller's stack slot."""
    r = scanned(file)
    exp = next(e for e in entry(file)["sites"] if e["number"] == [102])
    s = next(x for x in r.sites if x.address == int(exp["address"], 16))
    assert s.number.values == [102] and s.number.callers[0].function == "main.main"
