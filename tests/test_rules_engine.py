"""The rule engine on hand-built reports: predicates, logic, scopes, kernel facts, locations, fingerprints.

The engine is pure (a Report in, Findings out), so these tests need no binary. The shipped rules' own examples run
on real corpus binaries in test_rules_examples.py.
"""
from __future__ import annotations

import pytest

from analyzer.model import BinaryInfo, KernelPath, RegisterValue, Report, Site, SyscallRef, TableInfo
from analyzer.rules import RuleSet, evaluate
from analyzer.rules.loader import RuleError, compile_rule, parse_rule_text
from analyzer.rules.location import site_location

X64_ARGS = ("rdi", "rsi", "rdx", "r10", "r8", "r9")
I386_ARGS = ("ebx", "ecx", "edx", "esi", "edi", "ebp")


def rv(reg, role, values=(), status=None, reasons=()):
    values = list(values)
    if status is None:
        status = "resolved" if values else "unresolved"
    return RegisterValue(register=reg, role=role, values=values, status=status, reasons=list(reasons))


def site(addr, name, nr=None, args=(), *, abi="x86_64", instruction="syscall", function=None, params=(),
         kernel=(), extra=(), status=None):
    regs = X64_ARGS if abi == "x86_64" else I386_ARGS
    nums = [] if nr is None else (list(nr) if isinstance(nr, (list, tuple)) else [nr])
    refs = [SyscallRef(nr=n, abi=abi, name=name if len(nums) == 1 else f"{name}{n}", params=list(params))
            for n in nums]
    a = []
    for i, v in enumerate(args):
        if isinstance(v, RegisterValue):
            a.append(v)
        else:
            a.append(rv(regs[i], f"arg{i}", [] if v is None else [v]))
    return Site(address=addr, offset=addr - 0x400000, section=".text", function=function or f"fn_{addr:x}",
                function_address=addr - 0x10, instruction=instruction, abi=abi, bytes="0f05",
                number=rv("rax" if abi == "x86_64" else "eax", "number", nums, status), args=a, syscalls=refs,
                kernel=list(kernel), extra_registers=list(extra))


def report(sites, *, static=False, stripped=False, bits=64, name="prog", kernel=None):
    b = BinaryInfo(path=f"bin/{name}", name=name, size=1, sha256="0" * 64, arch="x86_64" if bits == 64 else "i386",
                   bits=bits, elf_type="executable", pie=False, static=static, stripped=stripped)
    return Report(binary=b, table=TableInfo(source="embedded", kernel_version="6.1"), sites=list(sites),
                  kernel=kernel)


def rule(match: str, scope: str = "site", rid: str = "t-rule", severity: str = "high", message: str | None = None):
    text = f"""
rule:
  meta:
    id: {rid}
    name: test rule
    severity: {severity}
    scope: {scope}
    description: a rule made by a test
    {'message: "' + message + '"' if message else ''}
    examples:
      positive: []
      no-positive-because: unit test only
      negative: [{{file: bin/x}}]
  match:
{match}
"""
    return compile_rule(parse_rule_text(text, "<test>"), "<test>")


def hits(r, rep):
    return [(f.site, f.function) for f in evaluate(rep, RuleSet([r]))]


def test_syscall_name_number_and_set():
    rep = report([site(0x401000, "ptrace", 101), site(0x401010, "getpid", 39), site(0x401020, "x", [39, 101])])
    assert [a for a, _ in hits(rule("    syscall: ptrace"), rep)] == [0x401000]
    assert [a for a, _ in hits(rule("    syscall: 39"), rep)] == [0x401010, 0x401020]
    assert [a for a, _ in hits(rule("    syscall: [ptrace, getpid, x101]"), rep)] == [0x401000, 0x401010, 0x401020]


def test_bits_set_clear_any_and_unknown():
    wx = site(0x1000, "mprotect", 10, [0x7000, 4096, 7], params=["unsigned long start", "size_t len",
                                                                 "unsigned long prot"])
    rx = site(0x1010, "mprotect", 10, [0x7000, 4096, 5], params=["unsigned long start", "size_t len",
                                                                 "unsigned long prot"])
    unk = site(0x1020, "mprotect", 10, [0x7000, 4096, None], params=["unsigned long start", "size_t len",
                                                                     "unsigned long prot"])
    part = site(0x1030, "mprotect", 10, [0x7000, 4096, rv("rdx", "arg2", [1], "partial")],
                params=["unsigned long start", "size_t len", "unsigned long prot"])
    rep = report([wx, rx, unk, part])
    m = """    and:
      - syscall: mprotect
      - arg: {name: prot, bits-set: [PROT_WRITE, PROT_EXEC]}"""
    assert [a for a, _ in hits(rule(m), rep)] == [0x1000]
    m_unknown = """    and:
      - syscall: mprotect
      - arg: {index: 2, bits-set: [PROT_WRITE, PROT_EXEC], unknown: true}"""
    assert [a for a, _ in hits(rule(m_unknown), rep)] == [0x1000, 0x1020, 0x1030]
    assert [a for a, _ in hits(rule("    arg: {index: 2, bits-clear: PROT_WRITE}"), rep)] == [0x1010, 0x1030]
    assert [a for a, _ in hits(rule("    arg: {index: 2, any-bits: [PROT_EXEC]}"), rep)] == [0x1000, 0x1010]
    assert [a for a, _ in hits(rule("    arg: {index: 2, status: [partial]}"), rep)] == [0x1030]


def test_equals_masks_to_the_abi_width():
    # -1 in an i386 register is 0xffffffff; in an x86-64 register 0xffffffffffffffff
    a = site(0x1000, "setreuid32", 203, [0xFFFFFFFF, 0], abi="i386", instruction="int 0x80")
    b = site(0x1010, "setreuid", 113, [0xFFFFFFFFFFFFFFFF, 0])
    rep = report([a, b])
    assert [x for x, _ in hits(rule("    arg: {index: 0, equals: -1}"), rep)] == [0x1000, 0x1010]
    assert [x for x, _ in hits(rule("    arg: {index: 0, equals: 0xffffffff}"), rep)] == [0x1000]


def test_logic_not_and_n_or_more():
    rep = report([site(0x10, "setresuid", 117, [0, 5, 0]), site(0x20, "setresuid", 117, [5, 5, 0]),
                  site(0x30, "setresuid", 117, [5, 5, 5])])
    two = """    2 or more:
      - arg: {index: 0, equals: 0}
      - arg: {index: 1, equals: 0}
      - arg: {index: 2, equals: 0}"""
    assert [a for a, _ in hits(rule(two), rep)] == [0x10]
    none = """    not:
      or:
        - arg: {index: 0, equals: 0}
        - arg: {index: 2, equals: 0}"""
    assert [a for a, _ in hits(rule(none), rep)] == [0x30]


def test_binary_scope_site_and_count():
    rep = report([site(0x10, "memfd_create", 319), site(0x20, "execveat", 322), site(0x30, "getpid", 39)])
    both = """    and:
      - site: {syscall: memfd_create}
      - site: {syscall: execveat}"""
    fs = evaluate(rep, RuleSet([rule(both, "binary", message="{binary}: {syscall} ({count} sites)")]))
    assert len(fs) == 1 and fs[0].site == 0x10 and fs[0].syscall == "execveat,memfd_create"
    assert fs[0].message == "prog: execveat,memfd_create (2 sites)"
    # one site must have both: no site does
    same = """    site:
      and:
        - syscall: memfd_create
        - syscall: execveat"""
    assert evaluate(rep, RuleSet([rule(same, "binary")])) == []
    count = """    count:
      min: 3
      match: {instruction: syscall}"""
    assert len(evaluate(rep, RuleSet([rule(count, "binary")]))) == 1
    assert evaluate(report(rep.sites[:2]), RuleSet([rule(count, "binary")])) == []


def test_site_only_expressions_are_rejected_in_site_scope():
    with pytest.raises(RuleError, match="scope: binary"):
        rule("    site: {syscall: ptrace}")
    with pytest.raises(RuleError, match="unknown constant"):
        rule("    arg: {index: 0, equals: PROT_TYPO}")


def test_kernel_enosys_and_in_table():
    ok = KernelPath(nr=39, abi="x86_64", handler="__x64_sys_getpid", enosys=False, path=["s", "h"])
    ni = KernelPath(nr=335, abi="x86_64", handler="__x64_sys_ni_syscall", enosys=True, path=["s", "ni"])
    rep = report([site(0x10, "getpid", 39, kernel=[ok]), site(0x20, None, 335, kernel=[ni]),
                  site(0x30, None, 400)])
    rep.sites[1].syscalls[0].name = None
    rep.sites[2].syscalls[0].name = None
    assert [a for a, _ in hits(rule("    kernel: {enosys: true}"), rep)] == [0x20]
    assert [a for a, _ in hits(rule("    number: {in-table: false}"), rep)] == [0x20, 0x30]
    assert [a for a, _ in hits(rule("    kernel: {handler: __x64_sys_getpid}"), rep)] == [0x10]


def test_disagreement():
    """The shipped kernel-dispatch-disagreement rule on a report whose kernel table and switch disagree (its
    positive example: no real kernel in the corpus is patched)."""
    from analyzer.rules import shipped_rules

    r = shipped_rules().by_id("kernel-dispatch-disagreement")
    kernel = {"version": "6.1 (hooked)", "disagreements": [{"abi": "x86_64", "nr": 101, "table_address": 1,
                                                           "table_symbol": "evil_ptrace", "switch_address": 2,
                                                           "switch_symbol": "__x64_sys_ptrace"}]}
    rep = report([site(0x10, "ptrace", 101), site(0x20, "getpid", 39)], kernel=kernel)
    assert [a for a, _ in hits(r, rep)] == [0x10]
    assert hits(r, report(rep.sites)) == []
    binary = rule("    kernel: {disagreement: true}", "binary")
    assert len(evaluate(rep, RuleSet([binary]))) == 1


def test_location():
    dyn = report([site(0x10, "x", 1, function="main"), site(0x20, "x", 1, function="sub_401000")])
    assert [site_location(dyn, s) for s in dyn.sites] == ["application", "application"]
    st = report([site(0x10, "x", 1, function="main"), site(0x20, "x", 1, function="__libc_write"),
                 site(0x30, "x", 1, function="write"), site(0x40, "x", 1, function="sub_401000"),
                 site(0x50, "x", 1, function="runtime.rawsyscall"),
                 site(0x60, "x", 1, function="__pthread_kill_implementation.constprop.0"),
                 site(0x70, "x", 1, function="do_sym")], static=True)
    assert [site_location(st, s) for s in st.sites] == ["application", "libc", "libc", "unknown", "runtime", "libc",
                                                         "libc"]
    libc = report([site(0x10, "x", 1, function="main")], name="libc.so.6")
    assert site_location(libc, libc.sites[0]) == "libc"


def test_register_predicate_and_reason():
    s = site(0x10, "mmap", 9, [0, 4096, 3, rv("r10", "arg3", [], "unresolved",
                                               ["from register r10 at entry of f"]), -1, 0],
             extra=[rv("rcx", "extra", [0x22])])
    m = """    and:
      - register: {name: rcx, status: resolved}
      - arg: {index: 3, status: unresolved, reason: "from register r10 at entry"}"""
    assert [a for a, _ in hits(rule(m), report([s]))] == [0x10]
    s.args[3].reasons = ["part of from parameter rcx of mmap"]
    assert hits(rule(m), report([s])) == []


def test_fingerprints_ignore_addresses_and_keep_order():
    r = rule("    syscall: ptrace")
    a = report([site(0x1000, "ptrace", 101, function="attach"), site(0x1100, "ptrace", 101, function="attach")])
    b = report([site(0x2000, "ptrace", 101, function="attach"), site(0x2400, "ptrace", 101, function="attach")])
    fa = [f.fingerprint for f in evaluate(a, RuleSet([r]))]
    fb = [f.fingerprint for f in evaluate(b, RuleSet([r]))]
    assert fa == fb and len(set(fa)) == 2
    # stripped names carry the address: they are collapsed so that a rebuild keeps the fingerprint
    c = report([site(0x1000, "ptrace", 101, function="sub_1000")])
    d = report([site(0x3000, "ptrace", 101, function="sub_3000")])
    assert evaluate(c, RuleSet([r]))[0].fingerprint == evaluate(d, RuleSet([r]))[0].fingerprint


def test_message_template_is_data_not_code():
    r = rule("    syscall: ptrace", message="{function} {site.__class__} {0} %s {args}")
    rep = report([site(0x10, "ptrace", 101, [16], function="f{x}")])
    (f,) = evaluate(rep, RuleSet([r]))
    assert f.message == "f{x} {site.__class__} {0} %s "


def test_findings_sorted_by_severity_then_rule_then_address():
    lo = rule("    syscall: getpid", rid="a-low", severity="low")
    hi = rule("    syscall: ptrace", rid="z-high", severity="high")
    rep = report([site(0x30, "getpid", 39), site(0x20, "ptrace", 101), site(0x10, "getpid", 39)])
    fs = evaluate(rep, RuleSet([lo, hi]))
    assert [(f.rule, f.site) for f in fs] == [("z-high", 0x20), ("a-low", 0x10), ("a-low", 0x30)]
