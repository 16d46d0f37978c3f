"""angr must import with the pinned dependencies: a resolver change (bitstring 5, pycparser 3.12) breaks it."""
import subprocess
import sys

from conftest import ROOT


def test_import_angr_in_a_fresh_interpreter():
    p = subprocess.run([sys.executable, "-c", "import angr, sys; print(angr.__version__)"],
                       capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr[-2000:]
    assert p.stdout.strip()


def test_sysscan_does_not_import_angr_for_a_local_scan():
    code = ("import sys; from analyzer.run.pipeline import scan_file; scan_file('corpus/bin/idioms_nopie'); "
            "print('angr' in sys.modules)")
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert p.returncode == 0, p.stderr
    assert p.stdout.strip() == "False"
