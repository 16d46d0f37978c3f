"""The shipped rules live in the top-level rules/ directory and are packaged as analyzer.rules_data: the wheel
must contain them (and every analyzer subpackage, since pyproject lists packages explicitly)."""
from __future__ import annotations

import subprocess
import sys
import tomllib
import zipfile

import pytest

from conftest import ROOT


def test_every_subpackage_is_listed_in_pyproject():
    conf = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    listed = set(conf["packages"])
    found = {".".join(p.parent.relative_to(ROOT).parts) for p in (ROOT / "analyzer").rglob("__init__.py")}
    assert found <= listed, f"add to [tool.setuptools] packages: {sorted(found - listed)}"
    assert conf["package-dir"]["analyzer.rules_data"] == "rules"


def test_rules_data_resolves_to_the_rules_directory():
    from analyzer.rules import default_rules_dir

    assert sorted(p.name for p in (ROOT / "rules").glob("*.yml")) == sorted(
        p for p in __import__("os").listdir(default_rules_dir()) if p.endswith(".yml"))


@pytest.mark.slow
def test_wheel_ships_rules_and_libc_names(tmp_path):
    p = subprocess.run([sys.executable, "-m", "pip", "wheel", str(ROOT), "-w", str(tmp_path), "--no-deps", "-q",
                        "--no-build-isolation"], capture_output=True, text=True, timeout=600)
    if p.returncode != 0:  # no setuptools in the venv for --no-build-isolation: let pip isolate
        p = subprocess.run([sys.executable, "-m", "pip", "wheel", str(ROOT), "-w", str(tmp_path), "--no-deps",
                            "-q"], capture_output=True, text=True, timeout=600)
    assert p.returncode == 0, p.stderr[-2000:]
    (whl,) = tmp_path.glob("sysscan-*.whl")
    names = set(zipfile.ZipFile(whl).namelist())
    rules = {n for n in names if n.startswith("analyzer/rules_data/") and n.endswith(".yml")}
    assert len(rules) == len(list((ROOT / "rules").glob("*.yml")))
    assert "analyzer/rules/libc_functions.txt" in names
    assert "analyzer/schemas/report.schema.json" in names
    assert any(n.startswith("analyzer/syscalls/data/") for n in names)
