"""reports/ holds sample reports of every format; they must be what this version of sysscan prints."""
from __future__ import annotations

import importlib.util
import json

import jsonschema

from conftest import ROOT


def _generator():
    spec = importlib.util.spec_from_file_location("reports_generate", ROOT / "reports" / "generate.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_sample_reports_are_current():
    gen = _generator()
    files = gen.build(checking=True)
    bad = gen.stale(files)
    assert not bad, f"reports/ is not current: {bad}; run: python reports/generate.py"
    assert {n.rsplit(".", 1)[1] for n in files} == {"txt", "json", "sarif", "md", "html", "conf", "yaml"}
    assert {n for n in files if ".seccomp." in n} == {f"hello_static.seccomp.{x}" for x in ("json", "conf", "yaml")}


def test_sample_sarif_is_valid():
    schema = json.loads((ROOT / "tests" / "data" / "sarif-schema-2.1.0.json").read_text())
    v = jsonschema.Draft7Validator(schema)
    for p in sorted((ROOT / "reports").glob("*.sarif")):
        errors = list(v.iter_errors(json.loads(p.read_text())))
        assert not errors, (p.name, [e.message for e in errors[:3]])
