"""Value recovery does the work a site needs, and no more (issue 14).

A function above local.WHOLE_LIMIT instructions is solved only over the blocks that reach the instruction asked
about: exact there (every path from the entry runs through that cone), so forcing the limit down must change no
value anywhere. Past the bounds a site is unresolved with "analysis bound reached", never silently, and the time
budget is not what ends the scan. (Times are in benchmarks/BENCHMARKS.md and the --shift fuzz campaign, not here.)
"""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from analyzer.run.pipeline import ScanOptions, scan_file
from analyzer.values import local

ROOT = Path(__file__).resolve().parent.parent
BUSYBOX = os.environ.get("SYSSCAN_BUSYBOX")


def _values(report) -> list:
    return [(s.address, s.instruction, s.number.values, s.number.status, s.number.reasons,
             [(a.register, a.values, a.status, a.reasons) for a in s.args]) for s in report.sites]


@pytest.mark.parametrize("name", ["wrappers_glibc_static", "idioms_musl_static", "i386_glibc_static",
                                  "go_hello_stripped", "wrappers_musl_nofde_stripped"])
def test_solving_only_the_cone_gives_the_same_values(name, monkeypatch):
    """Every function analysed through its cone (WHOLE_LIMIT forced to 1): the same numbers, arguments, statuses
    and reasons at every site as solving each function whole. (The local data flow: the inter-procedural stage is
    off in both runs, since a callee solved through a cone has no clobber summary, so it would differ there.)"""
    from analyzer.values.engine import ValueEngine

    monkeypatch.setattr(ValueEngine, "interproc_enabled", False)
    path = str(ROOT / "corpus/bin" / name)
    whole = scan_file(path, ScanOptions(surface=False))
    monkeypatch.setattr(local, "WHOLE_LIMIT", 1)
    cones = scan_file(path, ScanOptions(surface=False))
    assert _values(cones) == _values(whole)
    assert any("solved only the" in m for m in cones.incomplete)  # it did take the cone path


def test_a_cone_above_the_bound_is_said_per_site(monkeypatch):
    monkeypatch.setattr(local, "WHOLE_LIMIT", 1)
    monkeypatch.setattr(local, "CONE_LIMIT", 1)
    r = scan_file(str(ROOT / "corpus/bin/hello_static"), ScanOptions(surface=False))
    bound = [s for s in r.sites if any(x.startswith("analysis bound reached") for x in s.number.reasons)]
    assert bound and all(s.number.status == "unresolved" for s in bound)
    assert len(r.sites) == 104  # no site dropped


def test_shifted_code_is_bounded_by_the_analysis_not_the_time_budget(tmp_path):
    """The fuzzer's case (--shift, seed 1, case 46): Debian's busybox with 4096 zero bytes inserted into .text and
    16 bytes deleted further on, so code, symbols and .eh_frame no longer line up. It used to run to the 120 s
    budget with 232 of 283 sites not analysed; now every site is answered, the oversized ones with the bound."""
    if not BUSYBOX:
        pytest.skip("SYSSCAN_BUSYBOX: benchmarks/fetch_inputs.sh (.ci/run sets it)")
    d = Path(BUSYBOX).read_bytes()
    d = d[:0xDD623] + bytes(4096) + d[0xDD623:]
    d = d[:0xEA78B] + d[0xEA78B + 16:]
    p = tmp_path / "busybox-shifted"
    p.write_bytes(d)
    r = scan_file(str(p), ScanOptions(surface=False))
    assert not any("time budget" in m for m in r.incomplete), r.incomplete[:5]
    assert not any("time budget" in x for s in r.sites for x in s.number.reasons)
    assert len(r.sites) > 200
    assert any(x.startswith("analysis bound reached") for s in r.sites for x in s.number.reasons)
    assert sum(1 for s in r.sites if s.resolved) >= 40
