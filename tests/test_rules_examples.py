"""`sysscan rules lint` on the shipped rules: every rule validates and does what its examples say on the real
corpus binaries (positive: a finding in each listed function; negative: none)."""
from __future__ import annotations

import os
import subprocess
import sys

from conftest import CORPUS, ROOT, scanned

from analyzer.rules import shipped_rules
from analyzer.rules.lint import format_result, lint


def _scan(path: str):
    return scanned(os.path.relpath(path, CORPUS))


def test_every_shipped_rule_passes_its_examples():
    res = lint(corpus=str(CORPUS), scan=_scan)
    assert res.ok, format_result(res)
    assert len(res.rules) == len(shipped_rules()) >= 25
    checked = {(rid, kind) for rid, kind, _, _ in res.checked}
    for r in res.rules:
        assert (r.id, "negative") in checked, r.id
        assert (r.id, "positive") in checked or r.examples.get("no-positive-because"), r.id


def test_lint_catches_a_wrong_example(tmp_path):
    text = (ROOT / "rules" / "ptrace.yml").read_text()
    (tmp_path / "ptrace.yml").write_text(text.replace("functions: [ptrace_attach]", "functions: [vm_readv]"))
    (tmp_path / "bpf.yml").write_text((ROOT / "rules" / "bpf.yml").read_text()
                                      .replace("file: rules/bin/rules_clean", "file: rules/bin/rules_risky"))
    (tmp_path / "kexec.yml").write_text((ROOT / "rules" / "kexec.yml").read_text()
                                        .replace("syscall: [kexec_load, kexec_file_load]",
                                                 "syscall: [kexec_load, kexec_flie_load]"))
    res = lint([str(tmp_path)], corpus=str(CORPUS), scan=_scan)
    text = format_result(res)
    assert "expected a finding in vm_readv" in text
    assert "expected no finding, got one in bpf_raw" in text
    assert "'kexec_flie_load' is in no syscall table" in text
    assert not res.ok


def test_cli_rules_lint_and_list(tmp_path):
    env = dict(os.environ)
    env.pop("SYSSCAN_DEBUG", None)
    p = subprocess.run([sys.executable, "-m", "analyzer.cli", "rules", "lint", "--no-examples"], cwd=ROOT,
                       capture_output=True, text=True, timeout=120, env=env)
    assert p.returncode == 0, p.stderr
    assert f"{len(shipped_rules())} rules" in p.stdout and "0 problem(s)" in p.stdout
    bad = tmp_path / "bad.yml"
    bad.write_text("rule: {meta: {}, match: {}}\n")
    p = subprocess.run([sys.executable, "-m", "analyzer.cli", "rules", "lint", "--no-examples", str(bad)],
                       cwd=ROOT, capture_output=True, text=True, timeout=120, env=env)
    assert p.returncode == 8 and "problem" in p.stdout and "rules lint" in p.stderr
    p = subprocess.run([sys.executable, "-m", "analyzer.cli", "rules", "list", "--select", "tag:privilege"],
                       cwd=ROOT, capture_output=True, text=True, timeout=120, env=env)
    assert p.returncode == 0 and "setuid-root" in p.stdout and "ptrace " not in p.stdout
