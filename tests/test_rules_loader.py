"""Rule files are data: a safe YAML loader (no Python objects, no aliases, no duplicate keys), size and depth
limits, schema validation; --rules adds or replaces, --select/--ignore pick; errors are exit code 8."""
from __future__ import annotations

import textwrap

import pytest

from analyzer.rules import load_rules, shipped_rules
from analyzer.rules.loader import MAX_RULE_BYTES, RuleError, load_rule_file, parse_rule_text

GOOD = textwrap.dedent("""\
    rule:
      meta:
        id: my-ptrace
        name: my ptrace rule
        severity: low
        scope: site
        description: a local rule for a test
        examples:
          positive: [{file: rules/bin/rules_risky, functions: [ptrace_attach]}]
          negative: [{file: rules/bin/rules_clean}]
      match:
        syscall: ptrace
    """)


def write(tmp_path, name, text):
    p = tmp_path / name
    p.write_text(text)
    return p


@pytest.mark.parametrize("text, words", [
    ("rule: !!python/object/apply:os.system ['true']\n", "not valid YAML"),
    ("a: &x [1]\nrule: *x\n", "anchors and aliases"),
    (GOOD + "  match:\n    syscall: getpid\n", "duplicate key"),
    (GOOD.replace("severity: low", "severity: urgent"), "rule schema"),
    (GOOD.replace("syscall: ptrace", "syscal: ptrace"), "rule schema"),
    (GOOD.replace("id: my-ptrace", "id: My Ptrace"), "rule schema"),
    (GOOD.replace("syscall: ptrace", "arg: {index: 0, equals: NOT_A_CONSTANT}"), "unknown constant"),
    (GOOD.replace("syscall: ptrace", "site: {syscall: ptrace}"), "scope: binary"),
    ("[1, 2", "not valid YAML"),
    ("", "rule schema"),
])
def test_bad_rule_files_are_refused(tmp_path, text, words):
    p = write(tmp_path, "r.yml", text)
    with pytest.raises(RuleError, match=words) as e:
        load_rule_file(str(p))
    assert e.value.exit_code == 8
    assert str(p) in str(e.value)


def test_deep_nesting_and_size_limits(tmp_path):
    deep = "rule:\n  meta: {}\n  match: " + "{not: " * 200 + "{syscall: ptrace}" + "}" * 200 + "\n"
    with pytest.raises(RuleError, match="nested deeper"):
        load_rule_file(str(write(tmp_path, "deep.yml", deep)))
    big = write(tmp_path, "big.yml", "#" * (MAX_RULE_BYTES + 10))
    with pytest.raises(RuleError, match="limit"):
        load_rule_file(str(big))


def test_python_tags_never_execute(tmp_path):
    marker = tmp_path / "pwned"
    text = f"rule: !!python/object/apply:os.system ['touch {marker}']\n"
    with pytest.raises(RuleError):
        parse_rule_text(text)
    assert not marker.exists()


def test_rules_dir_adds_and_replaces(tmp_path):
    d = tmp_path / "extra"
    d.mkdir()
    write(d, "my-ptrace.yml", GOOD)
    write(d, "ptrace.yml", GOOD.replace("id: my-ptrace", "id: ptrace").replace("severity: low", "severity: info"))
    rs = load_rules([str(d)])
    assert rs.by_id("my-ptrace") is not None
    assert rs.by_id("ptrace").severity == "info" and rs.by_id("ptrace").source == str(d)
    assert len(rs) == len(shipped_rules()) + 1
    only = load_rules([str(d)], default=False)
    assert sorted(r.id for r in only) == ["my-ptrace", "ptrace"]


def test_duplicate_ids_in_one_source(tmp_path):
    d = tmp_path / "dup"
    d.mkdir()
    write(d, "a.yml", GOOD)
    write(d, "b.yml", GOOD)
    with pytest.raises(RuleError, match="duplicate rule id"):
        load_rules([str(d)])


def test_select_and_ignore():
    rs = shipped_rules()
    assert [r.id for r in rs.select(["ptrace"])] == ["ptrace"]
    assert {r.id for r in rs.select(["ptrace*"])} == {"ptrace", "ptracer-any"}
    assert {r.id for r in rs.select(["tag:privilege"])} >= {"setuid-root", "namespaces"}
    crit = rs.select(["severity:critical"])
    assert {r.severity for r in crit} == {"critical"} and len(crit) >= 2
    high_up = rs.select(["severity:high+"])
    assert {r.severity for r in high_up} == {"high", "critical"}
    assert "raw-syscall-in-application" not in {r.id for r in rs.select(None, ["raw-*"])}
    with pytest.raises(RuleError, match="no rule matches"):
        rs.select(["no-such-rule"])


def test_shipped_rules_load_and_cover_the_reviewers_list():
    ids = {r.id for r in shipped_rules()}
    expected = {"raw-syscall-in-application", "i386-abi-in-64-bit", "unresolved-syscall-number",
                "enosys-on-target-kernel", "wx-memory", "ptrace", "process-vm-access", "kernel-module", "kexec",
                "bpf", "perf-event-open", "userfaultfd", "io-uring", "keyring", "namespaces", "mount-and-root",
                "reboot", "io-privilege", "fileless-exec", "personality", "setuid-root", "rcx-instead-of-r10"}
    assert expected <= ids
    for r in shipped_rules():
        assert r.description and r.severity and r.examples["negative"]
        assert r.examples["positive"] or r.examples.get("no-positive-because")
