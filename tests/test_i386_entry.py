"""Calls that enter the kernel through code the kernel maps (issue 16): the 32-bit vDSO's `__kernel_vsyscall`
(`call *%gs:0x10`, `call *_dl_sysinfo`, a direct call) and the x86-64 legacy vsyscall page.

Site counts are compared with an independent count (objdump), on Debian's own i386 busybox and libc.so.6 when
$SYSSCAN_I386_ROOT is set (benchmarks/fetch_i386.sh; .ci/run sets it) and on the corpus; the corpus programs run
to show that what they do is what the report says."""
from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path

import pytest

from analyzer.run.pipeline import scan_file
from analyzer.syscalls.abi import KINDS

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT / "corpus"
I386_ROOT = os.environ.get("SYSSCAN_I386_ROOT")
LIBC32 = "/lib/i386-linux-gnu/libc.so.6"


def objdump_sites(path: str) -> dict[int, str]:
    """Address -> kind of every `call *%gs:0x10` and `int $0x80` objdump's linear sweep shows."""
    out = subprocess.run(["objdump", "-d", "-w", path], capture_output=True, text=True, check=True).stdout
    found = {}
    for line in out.splitlines():
        m = re.match(r"^\s*([0-9a-f]+):\t[0-9a-f ]+\t(call +\*%gs:0x10|int +\$0x80)\s*$", line)
        if m:
            found[int(m.group(1), 16)] = "int 0x80" if m.group(2).startswith("int") else "call *%gs:0x10"
    return found


def i386_inputs() -> list[str]:
    paths = [str(CORPUS / "bin/i386_glibc_static"), str(CORPUS / "bin/i386_musl_static")]
    if I386_ROOT:
        paths.append(f"{I386_ROOT}/bin/busybox")
    if os.path.exists(LIBC32):
        paths.append(LIBC32)
    return paths


@pytest.mark.parametrize("path", i386_inputs(), ids=os.path.basename)
def test_every_vdso_call_and_int80_is_a_site(path):
    """The sites are exactly objdump's `call *%gs:0x10` and `int $0x80` instructions: Debian's i386 busybox has
    278 + 17, its libc.so.6 577 + 5 (bookworm); before issue 16 only the int $0x80 ones were seen."""
    want = objdump_sites(path)
    r = scan_file(path)
    got = {s.address: s.instruction for s in r.sites}
    assert got == want, (sorted(set(want) - set(got))[:10], sorted(set(got) - set(want))[:10])
    vdso = [s for s in r.sites if s.instruction == "call *%gs:0x10"]
    assert vdso and all(s.abi == "i386" and s.number.register == "eax" for s in vdso)
    assert all(any("__kernel_vsyscall" in n for n in s.notes) for s in vdso)
    # the data flow is the one int $0x80 sites get: nearly every number is a constant in its function
    resolved = sum(1 for s in vdso if s.resolved)
    assert resolved >= 0.97 * len(vdso), (resolved, len(vdso))


def test_a_vdso_call_keeps_the_registers_the_next_site_needs():
    """`_exit` makes exit_group then exit, with the numbers in ecx and edx across the first call: the vDSO entry
    returns with only eax changed, so the second site is still resolved."""
    r = scan_file(str(CORPUS / "bin/i386_glibc_static"))
    exits = {s.address: s for s in r.sites if s.function in ("_exit", "_Exit")}
    assert sorted(s.syscalls[0].name for s in exits.values()) == ["exit", "exit_group"]
    assert all(s.resolved for s in exits.values())


def test_the_other_vdso_entry_forms():
    """`call *_dl_sysinfo` and a direct `call __kernel_vsyscall` (corpus/src/i386_vdso_forms.S), and the program's
    own `__kernel_vsyscall`, whose int $0x80 takes its number from those callers: getpid from the direct call,
    the others unknown (they call through the pointer)."""
    path = str(CORPUS / "bin/i386_vdso_forms")
    run = subprocess.run([path], capture_output=True)
    assert run.returncode == 0 and run.stdout == b"sysscan corpus: i386 vdso forms\n"
    r = scan_file(path)
    by = [(s.instruction, [x.name for x in s.syscalls], s.number.status) for s in r.sites]
    assert by == [("call *_dl_sysinfo", ["write"], "resolved"), ("call __kernel_vsyscall", ["getpid"], "resolved"),
                  ("call *_dl_sysinfo", ["exit_group"], "resolved"), ("int 0x80", ["getpid"], "partial")]
    nm = subprocess.run(["nm", path], capture_output=True, text=True, check=True).stdout
    pointer = int(re.search(r"^([0-9a-f]+) D _dl_sysinfo$", nm, re.M).group(1), 16)
    assert r.sites[0].bytes == "ff15" + pointer.to_bytes(4, "little").hex()  # the whole instruction


def test_vsyscall_page_calls_are_x86_64_sites_numbered_by_address():
    """corpus/src/vsyscall.S: `call *%reg` after loading 0xffffffffff600400 / …000 / …800 is time / gettimeofday /
    getcpu; loading the address without calling through it is not a site (decoy_store). The program runs: the
    kernel emulates the calls (it would be killed by SIGSEGV under vsyscall=none)."""
    path = str(CORPUS / "bin/vsyscall")
    assert subprocess.run([path]).returncode == 0
    r = scan_file(path)
    calls = {s.function: s for s in r.sites if s.instruction == "vsyscall"}
    assert {f: [x.name for x in s.syscalls] for f, s in calls.items()} == {
        "site_time": ["time"], "site_gtod": ["gettimeofday"], "site_getcpu": ["getcpu"]}
    assert all(s.abi == "x86_64" and s.resolved and s.number.register == "call target" for s in calls.values())
    assert calls["site_time"].bytes == "ffd0" and calls["site_gtod"].bytes == "41ffd3"
    assert [a.values for a in calls["site_time"].args] == [[0]]  # time(NULL): rdi by the same data flow
    assert not any(s.function == "decoy_store" for s in r.sites)
    assert any(x.function == "decoy_store" and x.pattern == "vsyscall" for x in r.rejected)
    assert any(f.rule == "legacy-vsyscall" for f in r.findings)


def test_the_report_schema_and_the_rule_schema_list_every_site_kind():
    schema = json.loads((ROOT / "analyzer/schemas/report.schema.json").read_text())
    assert schema["definitions"]["site"]["properties"]["instruction"]["enum"] == list(KINDS)


def test_a_64_bit_program_has_no_vdso_call_sites():
    """`65 ff 15 10 00 00 00` in 64-bit code is `call *%gs:0x10` too, but no 64-bit libc enters the kernel that way:
    the vDSO forms are looked for in 32-bit code only."""
    r = scan_file(str(CORPUS / "bin/hello_static"))
    assert {s.instruction for s in r.sites} == {"syscall"}


def test_a_vsyscall_address_overwritten_before_the_call_is_not_a_site():
    """`mov $0xffffffffff600400,%rax; xor %eax,%eax; call *%rax` does not call the vsyscall page: a write to any
    part of the register (eax here) ends the search."""
    from analyzer.sites import _Region, _vsyscall_call

    insns = {0x10: (7, "mov", "rax, 0xffffffffff600400"), 0x17: (2, "xor", "eax, eax"), 0x19: (2, "call", "rax")}
    region = _Region(0x10, 0x1B, "f", "symbol", insns, {a: 0x10 for a in insns}, False)
    assert isinstance(_vsyscall_call(region, 0x10), str)
    insns[0x17] = (3, "mov", "rdi, rsp")
    insns[0x1A] = insns.pop(0x19)
    assert _vsyscall_call(region, 0x10) == (0x1A, 2, 201)


@pytest.mark.parametrize("name", ["i386_syscall_dyn", "i386_syscall_pie"])
def test_a_32bit_program_calling_syscall_through_the_plt(name):
    """syscall(SYS_getpid) and syscall(SYS_exit_group, 0) through libc's PLT, non-PIC (`jmp *ADDR`) and PIE
    (`jmp *disp(%ebx)`): the numbers are read at the calls from the stack, as in 64-bit programs from rdi. The
    program runs and makes exactly those."""
    if not os.path.exists(LIBC32):
        pytest.skip(f"{LIBC32}: libc6:i386 (benchmarks/fetch_i386.sh installs it; .ci/run runs it)")
    path = str(CORPUS / "bin" / name)
    assert subprocess.run([path]).returncode == 0
    r = scan_file(path)
    got = [(w.callee, [x.name for x in w.syscalls], w.number.status, w.number.register) for w in r.wrapper_calls]
    assert got == [("syscall", ["getpid"], "resolved", "[sp+0x4]"), ("syscall", ["exit_group"], "resolved",
                                                                         "[sp+0x4]")]
    assert {"getpid", "exit_group"} <= {s.name for s in r.surface.syscalls if s.abi == "i386"}
