"""Behaviour kept byte for byte: each case of tests/golden_cases.py gives exactly the JSON stored in tests/golden/.

This is how a refactor proves it changed nothing (issue 17), and how any later change of output shows itself: the
diff of a golden file is the change a reviewer reads. Inputs from outside the repository (Debian's busybox and gofmt,
the host's libc.so.6, the real kernels) are compared only when the file on this machine is the one the golden was
made from (its sha256 is in the report); the corpus is in the repository and always compared.
"""
from __future__ import annotations

import hashlib
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE / "golden")]
from golden_cases import GOLDEN, ROOT, cases  # noqa: E402
from regen import run_case  # noqa: E402

CASES = cases()


def test_every_corpus_binary_has_a_case():
    names = {c.name for c in CASES}
    assert len(names) == len(CASES)
    for c in CASES:
        if c.input and c.input.startswith(str(ROOT)):
            assert (GOLDEN / f"{c.name}.json").exists(), f"no golden for {c.name}: python tests/golden/regen.py {c.name}"


@pytest.mark.slow
@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_report_is_byte_identical(case):
    if case.input is None:
        pytest.skip(f"input not on this machine: {case.where}")
    golden = GOLDEN / f"{case.name}.json"
    assert golden.exists(), f"no golden for {case.name}: python tests/golden/regen.py {case.name}"
    want = golden.read_bytes()
    if not case.input.startswith(str(ROOT)):
        if case.kind == "kernel":  # its "sha256" hashes the loaded segments; the file's name and size identify it
            mark = f'"file_size": {Path(case.input).stat().st_size},'
        else:
            mark = hashlib.sha256(Path(case.input).read_bytes()).hexdigest()
        if mark.encode() not in want:
            pytest.skip(f"{case.input} ({mark}) is not the file tests/golden/{golden.name} was made from: "
                        "regenerate it with tests/golden/regen.py on the code before your change")
    got = run_case(case)
    if got != want:
        a, b = want.decode().splitlines(), got.decode().splitlines()
        first = next((i for i, (x, y) in enumerate(zip(a, b)) if x != y), min(len(a), len(b)))
        pytest.fail(f"{case.name}: report differs from tests/golden/{golden.name} at line {first + 1}:\n"
                    f"  golden: {a[first] if first < len(a) else '<end>'}\n"
                    f"  now:    {b[first] if first < len(b) else '<end>'}")
