"""Write tests/golden/NAME.json for every case of tests/golden_cases.py whose input is on this machine.

    python tests/golden/regen.py [--out DIR] [NAME...]
Only after an intended change of output; the commit says why.
"""
from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE.parent), str(HERE.parent.parent)]  # golden_cases, and the analyzer of this tree
from golden_cases import GOLDEN, cases  # noqa: E402


def run_case(case) -> bytes:
    """The CLI's JSON (or exit code and error line) for one case, run in the input's directory (the report names the file as given)."""
    from analyzer.cli import main

    os.environ["SYSSCAN_NO_CACHE"] = "1"
    old = os.getcwd()
    out, err = io.StringIO(), io.StringIO()
    try:
        os.chdir(os.path.dirname(case.input))
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            rc = main(case.argv() + ["-q"] if case.kind == "scan" else case.argv())
    finally:
        os.chdir(old)
    if rc not in (0, 1):  # an input sysscan refuses: its one-line error and exit code are behaviour too
        return f"exit {rc}\n{err.getvalue()}".encode()
    text = out.getvalue()
    if case.kind == "kernel":  # the stage times it measured are the one thing that differs between two runs
        doc = json.loads(text)
        doc["timings"] = {k: "-" for k in doc.get("timings", {})}
        text = json.dumps(doc, indent=1, sort_keys=True) + "\n"
    return text.encode()


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=str(GOLDEN))
    ap.add_argument("names", nargs="*")
    a = ap.parse_args()
    os.makedirs(a.out, exist_ok=True)
    for case in cases():
        if a.names and case.name not in a.names:
            continue
        if case.input is None:
            print(f"skip {case.name}: needs {case.where}", file=sys.stderr)
            continue
        Path(a.out, f"{case.name}.json").write_bytes(run_case(case))
        print(case.name, file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
