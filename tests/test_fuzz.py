"""Fuzzing in CI: mutated corpus ELFs and mutated synthetic kernels through the real entry points.

Deterministic (seed 1), bounded (a few hundred cases; stops starting new cases after FUZZ_SECONDS). Per case:
exit code in the documented set, a non-zero exit is one line on stderr naming the file, no traceback, no signal
death, within its budget, and a JSON report that validates against the schema. The harness is
benchmarks/fuzz.py; the larger local run is `python benchmarks/fuzz.py --cases 5000`.
Scale with SYSSCAN_FUZZ_CASES / SYSSCAN_FUZZ_SECONDS.
"""
from __future__ import annotations

import importlib.util
import os
import sys

import pytest

from conftest import ROOT

CASES = int(os.environ.get("SYSSCAN_FUZZ_CASES", "300"))
FUZZ_SECONDS = float(os.environ.get("SYSSCAN_FUZZ_SECONDS", "200"))


def _harness():
    spec = importlib.util.spec_from_file_location("sysscan_fuzz", ROOT / "benchmarks" / "fuzz.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules["sysscan_fuzz"] = mod
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="module")
def fuzz():
    return _harness()


def _assert_clean(summary) -> None:
    text = summary.text()
    print("\n" + text)
    assert summary.crashes == 0, text
    assert summary.hangs == 0, text
    assert summary.failures == 0, text


@pytest.mark.slow
def test_fuzz_user_elfs(fuzz):
    summary = fuzz.run_fuzz(cases=CASES, seed=1, time_limit=FUZZ_SECONDS, subprocess_cases=4, kernel=False)
    _assert_clean(summary)
    assert summary.cases >= min(CASES, 100), summary.text()  # the time limit must not hollow the test out
    assert summary.subprocess_cases >= 1
    # the mix reaches every stage: clean reports, and each kind of rejection
    codes = set(summary.exit_codes)
    assert {"0", "5"} <= codes, summary.exit_codes


def test_fuzz_kernels(fuzz):
    if not fuzz.seed_files(True)["kernel"]:
        pytest.skip("no synthetic vmlinux under corpus/kernel/bin")
    summary = fuzz.run_fuzz(cases=CASES, seed=1, time_limit=FUZZ_SECONDS / 2, subprocess_cases=0, user=False)
    _assert_clean(summary)
    assert summary.kernel_cases >= min(CASES, 100)
    assert "0" in summary.exit_codes and "7" in summary.exit_codes, summary.exit_codes


def test_mutations_are_deterministic(fuzz):
    seeds = fuzz.seed_files(True)
    a = [fuzz.make_case(1, i, seeds) for i in range(40)]
    b = [fuzz.make_case(1, i, seeds) for i in range(40)]
    assert [(c.base, c.mutation, c.data) for c in a] == [(c.base, c.mutation, c.data) for c in b]
    assert len({c.data for c in a}) > 30  # and actually different from one another


def test_harness_catches_a_traceback_and_a_wrong_exit_code(fuzz):
    """The checker itself: a crash-like result must fail the case."""
    case = fuzz.Case(1, 0, "bin/x", "user", "none", b"")
    bad = {"code": 70, "stdout": "", "stderr": "Traceback (most recent call last):\n  boom\n", "seconds": 0.1}
    problems = fuzz.check(case, "/tmp/x", bad, 10)
    assert any("exit code 70" in p for p in problems) and any("traceback" in p for p in problems)
    assert fuzz.check(case, "/tmp/x", {"hang": True, "seconds": 99}, 10)[0].startswith("hang")
    assert fuzz.check(case, "/tmp/x", {"crash": "signal SIGSEGV"}, 10)[0].startswith("crash")
    ok = {"code": 5, "stdout": "", "stderr": "sysscan: error: /tmp/x: corrupt\n", "seconds": 0.1}
    assert fuzz.check(case, "/tmp/x", ok, 10) == []
