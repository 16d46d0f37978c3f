"""Every expectation in corpus/manifest.json (written from the sources and objdump, not from sysscan)."""
from __future__ import annotations

import pytest

from conftest import manifest_entries, scanned

ENTRIES = manifest_entries()
IDS = [e["file"] for e in ENTRIES]


def _find(report, exp):
    """The reported site a manifest entry describes: by address when given, else by function + instruction."""
    if "address" in exp:
        want = int(exp["address"], 16)
        return [s for s in report.sites if s.address == want]
    names = {exp["function"], *exp.get("function_aliases", [])}
    return [s for s in report.sites if s.function in names and s.instruction == exp["instruction"]]


@pytest.mark.parametrize("entry", ENTRIES, ids=IDS)
def test_binary_properties(entry):
    r = scanned(entry["file"])
    props = entry["properties"]
    assert r.binary.arch == entry["arch"]
    assert r.binary.static == props["static"]
    assert r.binary.stripped == props["stripped"]
    assert r.binary.pie == props["pie"]
    if props.get("shared_object"):
        assert r.binary.elf_type == "shared-object"


@pytest.mark.parametrize("entry", ENTRIES, ids=IDS)
def test_site_count(entry):
    r = scanned(entry["file"])
    assert len(r.sites) == entry["site_count"], [hex(s.address) for s in r.sites]


@pytest.mark.parametrize("entry", ENTRIES, ids=IDS)
def test_expected_sites(entry):
    r = scanned(entry["file"])
    for exp in entry.get("sites", []):
        found = _find(r, exp)
        assert found, f"no site for {exp}"
        site = found[0]
        assert site.instruction == exp["instruction"]
        assert site.abi == exp["abi"], exp
        if "section" in exp:
            assert site.section == exp["section"]
        if exp.get("function") and "address" in exp and not entry["properties"]["stripped"]:
            assert site.function in {exp["function"], *exp.get("function_aliases", [])}, exp
        if exp["number"] is None:
            assert site.number.status == "unresolved", (exp, site.number)
            word = exp.get("unresolved_reason_contains")
            if word:
                assert any(word in reason for reason in site.number.reasons), (exp, site.number.reasons)
        else:
            assert site.number.status == "resolved", (exp, site.number)
            assert site.number.values == sorted(exp["number"]), exp
            if exp.get("names"):
                assert [s.name for s in site.syscalls] == exp["names"]
        regs = {a.register: a for a in site.args}
        if site.number.status == "resolved" and len(site.syscalls) == 1:
            # Arguments are reported up to the syscall's arity (getpid has none, write has three).
            assert len(site.args) == len(site.syscalls[0].params), (exp, site.args)
        for reg, values in exp.get("args", {}).items():
            if reg not in regs and site.number.status == "resolved":
                continue  # beyond this syscall's arity: the kernel ignores it, so the report does not show it
            assert reg in regs, (exp, list(regs))
            assert regs[reg].status == "resolved", (exp, reg, regs[reg])
            assert regs[reg].values == sorted(v & ((1 << 64) - 1) for v in values), (exp, reg)
        for reg, text in exp.get("strings", {}).items():
            assert text in regs[reg].strings.values(), (exp, reg, regs[reg].strings)


@pytest.mark.parametrize("entry", ENTRIES, ids=IDS)
def test_decoys_not_reported(entry):
    r = scanned(entry["file"])
    addrs = {s.address for s in r.sites}
    for d in entry.get("decoys", []):
        a = int(d["address"], 16)
        assert not any(a <= x < a + len(bytes.fromhex(d["bytes"])) for x in addrs), d


@pytest.mark.parametrize("entry", ENTRIES, ids=IDS)
def test_syscall_set(entry):
    r = scanned(entry["file"])
    names = {u.name for u in r.syscalls}
    missing = set(entry.get("syscalls_include", [])) - names
    assert not missing
