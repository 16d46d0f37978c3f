"""The CI side of the CLI: --fail-on exit codes, --baseline / --allowlist, several formats at once, rule options,
and one-line errors with their documented exit codes (8 bad rules or allowlist, 9 bad baseline, 2 usage)."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import ROOT

RISKY = "corpus/rules/bin/rules_risky"
CLEAN = "corpus/rules/bin/rules_clean"


def run(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    env.pop("SYSSCAN_DEBUG", None)
    return subprocess.run([sys.executable, "-m", "analyzer.cli", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=300, env=env)


def one_line_error(p, code, words):
    assert p.returncode == code, (p.returncode, p.stderr)
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1 and words in lines[0] and "Traceback" not in p.stderr, p.stderr


@pytest.mark.parametrize("fail_on, code", [("never", 0), ("critical", 1), ("high", 1), ("info", 1)])
def test_fail_on_risky(fail_on, code):
    p = run(RISKY, "-f", "json", "--fail-on", fail_on)
    assert p.returncode == code, p.stderr
    assert json.loads(p.stdout)["summary"]["findings"] > 0


def test_fail_on_thresholds_on_clean():
    # rules_clean only has low findings (raw syscalls in application code)
    assert run(CLEAN, "-f", "json", "--fail-on", "medium").returncode == 0
    assert run(CLEAN, "-f", "json", "--fail-on", "low").returncode == 1
    assert run(CLEAN, "-f", "json").returncode == 0  # default: never fail
    assert run(CLEAN, "-f", "json", "--fail-on", "low", "--ignore", "raw-syscall-in-application").returncode == 0


def test_select_and_custom_rules(tmp_path):
    p = run(RISKY, "-f", "json", "--select", "ptrace,wx-memory")
    rules = {f["rule"] for f in json.loads(p.stdout)["findings"]}
    assert rules == {"ptrace", "wx-memory"}
    d = tmp_path / "rules"
    d.mkdir()
    (d / "getpid.yml").write_text((ROOT / "rules" / "ptrace.yml").read_text()
                                  .replace("id: ptrace", "id: local-getpid").replace("syscall: ptrace",
                                                                                     "syscall: getpid"))
    p = run(CLEAN, "-f", "json", "--rules", str(d), "--no-default-rules")
    assert [f["rule"] for f in json.loads(p.stdout)["findings"]] == ["local-getpid"]
    one_line_error(run(CLEAN, "--select", "nope"), 8, "no rule matches")
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "x.yml").write_text("rule: [")
    one_line_error(run(CLEAN, "--rules", str(bad)), 8, "not valid YAML")
    one_line_error(run(CLEAN, "--rules", str(tmp_path / "missing")), 8, "no such rule file")


def test_baseline_gates_only_new_findings(tmp_path):
    old = tmp_path / "old.json"
    p = run(CLEAN, "-f", "json", "-o", str(old))
    assert p.returncode == 0
    # same binary against its own baseline: nothing new, the gate passes even at info
    p = run(CLEAN, "-f", "json", "--baseline", str(old), "--fail-on", "info")
    assert p.returncode == 0, p.stderr
    doc = json.loads(p.stdout)
    assert doc["summary"]["findings"] == 0 and {f["baseline"] for f in doc["findings"]} == {"unchanged"}
    # a build with more findings: only the new ones count (one report on each side: names need not match)
    p = run(RISKY, "-f", "json", "--baseline", str(old), "--fail-on", "high")
    assert p.returncode == 1
    doc = json.loads(p.stdout)
    new = [f for f in doc["findings"] if f["baseline"] == "new"]
    assert new and doc["summary"]["findings"] == len(new)
    # a SARIF baseline works too
    sar = tmp_path / "old.sarif"
    assert run(RISKY, "-f", "sarif", "-o", str(sar)).returncode == 0
    p = run(RISKY, "-f", "json", "--baseline", str(sar), "--fail-on", "info")
    assert p.returncode == 0 and json.loads(p.stdout)["summary"]["findings"] == 0


def test_allowlist(tmp_path):
    allow = tmp_path / "allow.yml"
    allow.write_text("accepted:\n"
                     "  - rule: raw-syscall-in-application\n    binary: rules_clean\n"
                     "    reason: this test program makes raw syscalls on purpose\n"
                     "  - rule: ptrace\n    reason: never matches here\n")
    p = run(CLEAN, "-f", "sarif", "--allowlist", str(allow), "--fail-on", "low")
    assert p.returncode == 0, p.stderr
    assert "allowlist entry for rule 'ptrace' matched no finding" in p.stderr
    res = json.loads(p.stdout)["runs"][0]["results"]
    assert res and all(r["suppressions"][0]["justification"].startswith("this test program") for r in res)
    bad = tmp_path / "bad.yml"
    bad.write_text("accepted:\n  - rule: x\n")
    one_line_error(run(CLEAN, "--allowlist", str(bad)), 8, "allowlist does not match")


def test_bad_baseline_is_exit_9(tmp_path):
    b = tmp_path / "b.json"
    b.write_text("{not json")
    one_line_error(run(CLEAN, "--baseline", str(b)), 9, "baseline is not JSON")
    b.write_text('{"x": 1}')
    one_line_error(run(CLEAN, "--baseline", str(b)), 9, "not a sysscan report")
    one_line_error(run(CLEAN, "--baseline", str(tmp_path / "none.json")), 9, "no such file")


def test_several_formats_into_a_directory(tmp_path):
    out = tmp_path / "out"
    p = run(RISKY, "-f", "sarif,html,markdown,json,table", "-o", str(out))
    assert p.returncode == 0 and p.stdout == "", p.stderr
    assert sorted(os.listdir(out)) == ["rules_risky.html", "rules_risky.json", "rules_risky.md",
                                       "rules_risky.sarif", "rules_risky.txt"]
    assert json.loads((out / "rules_risky.sarif").read_text())["version"] == "2.1.0"
    p = run(RISKY, CLEAN, "-f", "sarif,html", "-o", str(tmp_path / "two"))
    assert sorted(os.listdir(tmp_path / "two")) == ["sysscan.html", "sysscan.sarif"]
    sar = json.loads((tmp_path / "two" / "sysscan.sarif").read_text())
    assert len(sar["runs"]) == 1 and len(sar["runs"][0]["artifacts"]) == 2


def test_per_format_outputs(tmp_path):
    s, h = tmp_path / "a.sarif", tmp_path / "page.html"
    p = run(CLEAN, "-f", "sarif,html,markdown", "-o", f"sarif={s}", "-o", f"html={h}", "-o", "markdown=-")
    assert p.returncode == 0, p.stderr
    assert s.exists() and h.exists() and p.stdout.startswith("## sysscan: `rules_clean`")
    one_line_error(run(CLEAN, "-f", "sarif,html"), 2, "need -o DIR")
    one_line_error(run(CLEAN, "-f", "sarif,yaml", "-o", str(tmp_path)), 2, "unknown format 'yaml'")
    one_line_error(run(CLEAN, "-f", "sarif", "-o", "html=x.html"), 2, "was not requested")


def test_render_keeps_saved_findings_and_gates(tmp_path):
    saved = tmp_path / "r.json"
    assert run(RISKY, "-f", "json", "-o", str(saved)).returncode == 0
    p = run("render", str(saved), "-f", "markdown", "--fail-on", "critical")
    assert p.returncode == 1 and "kernel-module" in p.stdout
    p = run("render", str(saved), "-f", "json", "--select", "ptrace")
    assert {f["rule"] for f in json.loads(p.stdout)["findings"]} == {"ptrace"}


def test_json_report_with_findings_matches_the_schema():
    import jsonschema

    schema = json.loads((ROOT / "analyzer" / "schemas" / "report.schema.json").read_text())
    for b in (RISKY, CLEAN, "corpus/rules/bin/rules_risky_i386"):
        p = run(b, "-f", "json")
        jsonschema.validate(json.loads(p.stdout), schema)
