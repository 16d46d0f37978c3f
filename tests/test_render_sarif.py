"""SARIF 2.1.0: valid against the official OASIS schema, with what GitHub code scanning needs, fingerprints that
survive a rebuild, and hostile names carried as plain JSON strings."""
from __future__ import annotations

import json
import os
from pathlib import Path

import jsonschema
import pytest

from conftest import CORPUS, ROOT

from analyzer.render import render_all
from analyzer.rules import apply_rules, shipped_rules
from analyzer.run.pipeline import scan_file

SCHEMA = json.loads((ROOT / "tests" / "data" / "sarif-schema-2.1.0.json").read_text())
VALIDATOR = jsonschema.Draft7Validator(SCHEMA)
BINARIES = ["rules/bin/rules_risky", "rules/bin/rules_risky_i386", "rules/bin/rules_clean", "bin/idioms_nopie",
            "bin/hello_static_stripped", "bin/libraw.so", "bin/idioms_musl_static"]


def scan_rel(rel: str):
    cwd = os.getcwd()
    os.chdir(ROOT)
    try:
        return scan_file(os.path.join("corpus", rel))
    finally:
        os.chdir(cwd)


@pytest.fixture(scope="module")
def reports():
    return {b: scan_rel(b) for b in BINARIES}


def sarif(reps, **opts):
    return json.loads(render_all(list(reps), "sarif", {"rules": shipped_rules(), **opts}))


def test_vendored_schema_is_the_official_one():
    """tests/data holds a copy of the OASIS schema (../shared/schemas when this checkout has it) so that the
    tests run in any checkout."""
    shared = ROOT.parent / "shared" / "schemas" / "sarif-schema-2.1.0.json"
    if shared.exists():
        assert json.loads(shared.read_text()) == SCHEMA
    assert SCHEMA["title"].startswith("Static Analysis Results Format (SARIF) Version 2.1.0")


def test_valid_against_the_official_schema(reports):
    for name, rep in reports.items():
        doc = sarif([rep])
        errors = sorted(VALIDATOR.iter_errors(doc), key=str)
        assert not errors, (name, [e.message for e in errors[:5]])
    doc = sarif(reports.values())
    assert not list(VALIDATOR.iter_errors(doc))
    assert len(doc["runs"]) == 1 and len(doc["runs"][0]["artifacts"]) == len(BINARIES)


def test_github_code_scanning_requirements(reports):
    doc = sarif(reports.values())
    run = doc["runs"][0]
    rules = run["tool"]["driver"]["rules"]
    assert {r["id"] for r in rules} == {r.id for r in shipped_rules()}
    for r in rules:
        assert float(r["properties"]["security-severity"]) > 0
        assert "security" in r["properties"]["tags"]
        assert r["shortDescription"]["text"] and r["fullDescription"]["text"] and r["help"]["text"]
        assert r["defaultConfiguration"]["level"] in ("error", "warning", "note")
    assert any("external/cwe/cwe-628" in r["properties"]["tags"] for r in rules)
    assert run["results"], "expected findings"
    for res in run["results"]:
        assert res["ruleId"] and res["level"] in ("error", "warning", "note") and res["message"]["text"]
        assert rules[res["ruleIndex"]]["id"] == res["ruleId"]
        (loc,) = res["locations"]
        phys = loc["physicalLocation"]
        uri = phys["artifactLocation"]["uri"]
        assert uri.startswith("corpus/") and not uri.startswith("/"), uri
        assert phys["artifactLocation"]["uriBaseId"] == "%SRCROOT%"
        assert phys["region"]["startLine"] == 1
        assert phys["address"]["kind"] == "instruction" and phys["address"]["absoluteAddress"] > 0
        assert loc["logicalLocations"][0]["kind"] == "function"
        fp = res["partialFingerprints"]
        assert fp["primaryLocationLineHash"] == fp["sysscanFinding/v1"] and len(fp["sysscanFinding/v1"]) == 32
    fps = [(r["locations"][0]["physicalLocation"]["artifactLocation"]["index"],
            r["partialFingerprints"]["sysscanFinding/v1"]) for r in run["results"]]
    assert len(fps) == len(set(fps)), "fingerprints must be unique within a binary"


def test_fingerprints_survive_a_rebuild():
    """idioms_pie and idioms_nopie are the same program linked differently: every address differs, every
    fingerprint must be the same."""
    a = sarif([scan_rel("bin/idioms_pie")])["runs"][0]["results"]
    b = sarif([scan_rel("bin/idioms_nopie")])["runs"][0]["results"]
    assert {r["locations"][0]["physicalLocation"]["address"]["absoluteAddress"] for r in a}.isdisjoint(
        {r["locations"][0]["physicalLocation"]["address"]["absoluteAddress"] for r in b})
    assert sorted(r["partialFingerprints"]["sysscanFinding/v1"] for r in a) == sorted(
        r["partialFingerprints"]["sysscanFinding/v1"] for r in b)


def test_deterministic_bytes(reports):
    rep = reports["rules/bin/rules_risky"]
    one = render_all([rep], "sarif", {"rules": shipped_rules()})
    again = render_all([scan_rel("rules/bin/rules_risky")], "sarif", {"rules": shipped_rules()})
    assert one == again
    assert '"sha-256": "' + rep.binary.sha256 in one and '"version": "' in one


def test_baseline_state_and_suppressions(reports):
    rep = scan_rel("rules/bin/rules_risky")
    rep.findings[0].baseline = "unchanged"
    rep.findings[1].baseline, rep.findings[1].justification = "accepted", "reviewed: needed by the test"
    for f in rep.findings[2:]:
        f.baseline = "new"
    doc = sarif([rep])
    assert not list(VALIDATOR.iter_errors(doc))
    res = doc["runs"][0]["results"]
    states = {r["partialFingerprints"]["sysscanFinding/v1"]: r for r in res}
    assert states[rep.findings[0].fingerprint]["baselineState"] == "unchanged"
    sup = states[rep.findings[1].fingerprint]["suppressions"][0]
    assert sup == {"kind": "external", "status": "accepted", "justification": "reviewed: needed by the test"}


def test_hostile_names_stay_plain_strings():
    path = ROOT / "corpus" / "hostile" / "hostile_names.elf"
    if not path.exists():
        pytest.fail("corpus/hostile/hostile_names.elf is missing")
    rep = scan_file(str(path.relative_to(ROOT)) if Path.cwd() == ROOT else str(path))
    apply_rules(rep)
    doc = sarif([rep])
    assert not list(VALIDATOR.iter_errors(doc))
    names = {r["locations"][0]["logicalLocations"][0]["name"] for r in doc["runs"][0]["results"]}
    assert "<script>alert(1)</script>" in names
    for r in doc["runs"][0]["results"]:
        assert "markdown" not in r["message"]
    assert all(r.get("helpUri", "").startswith("http") or "helpUri" not in r for r in
               doc["runs"][0]["tool"]["driver"]["rules"])


def test_source_lines_from_dwarf():
    """rules_risky_debug is rules_risky built with -g (paths mapped relative to the repository): each site has
    its file:line, and SARIF puts the alert on that line, the binary location becoming a related location."""
    rep = scan_rel("rules/bin/rules_risky_debug")
    src = (ROOT / "corpus" / "rules" / "src" / "risky.c").read_text().splitlines()
    by_fn = {s.function: s for s in rep.sites}
    for fn in ("wx_mprotect", "ptrace_attach", "do_reboot"):
        file, _, line = by_fn[fn].source.rpartition(":")
        assert file == "corpus/rules/src/risky.c"
        assert fn in src[int(line) - 1], (fn, line, src[int(line) - 1])
    assert scan_rel("rules/bin/rules_risky").sites[0].source is None  # no DWARF: no source
    doc = sarif([rep])
    assert not list(VALIDATOR.iter_errors(doc))
    for res in doc["runs"][0]["results"]:
        if res["ruleId"] == "ptrace":
            loc = res["locations"][0]["physicalLocation"]
            assert loc["artifactLocation"]["uri"] == "corpus/rules/src/risky.c"
            assert "ptrace_attach" in src[loc["region"]["startLine"] - 1]
            rel = res["relatedLocations"][0]["physicalLocation"]
            assert rel["artifactLocation"]["uri"] == "corpus/rules/bin/rules_risky_debug"
            assert rel["address"]["absoluteAddress"] == by_fn["ptrace_attach"].address
            break
    else:
        raise AssertionError("no ptrace finding")


def test_microsoft_sarif_multitool_finds_nothing_to_mend(reports, tmp_path):
    """Microsoft's SARIF multitool (benchmarks/fetch_sarif_multitool.sh; .ci/run sets SYSSCAN_SARIF_MULTITOOL) with
    its SARIF and GitHub rule sets: no error and no warning, on one report and on several in one log. Notes (help
    URIs, embedded file contents) are advice, not defects."""
    import subprocess

    tool = os.environ.get("SYSSCAN_SARIF_MULTITOOL")
    if not tool or not os.access(tool, os.X_OK):
        pytest.fail("SYSSCAN_SARIF_MULTITOOL is not set: run benchmarks/fetch_sarif_multitool.sh (.ci/run does)")
    logs = {"one": sarif([reports["rules/bin/rules_risky"]]), "all": sarif(reports.values())}
    for name, doc in logs.items():
        src, out = tmp_path / f"{name}.sarif", tmp_path / f"{name}.validation.sarif"
        src.write_text(json.dumps(doc))
        r = subprocess.run([tool, "validate", "--rule-kind", "Sarif;Gh", "--level", "Error;Warning", str(src),
                            "-o", str(out)], capture_output=True, text=True, timeout=300)
        assert out.exists(), (r.returncode, r.stdout[-2000:])
        found = [(x["ruleId"], x["message"].get("text", "")[:200]) for run in json.loads(out.read_text())["runs"]
                 for x in run.get("results", []) if x.get("level", "warning") in ("error", "warning")]
        assert not found, found


def test_rule_names_differ_from_their_ids_and_the_driver_says_where_it_lives(reports):
    doc = sarif(reports.values())
    driver = doc["runs"][0]["tool"]["driver"]
    import tomllib

    home = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["urls"]["Homepage"]
    assert driver["informationUri"] == home
    assert all(r["name"].lower() != r["id"].lower() for r in driver["rules"])
    assert {r["id"]: r["name"] for r in driver["rules"]}["bpf"] == "UsesBpf"
