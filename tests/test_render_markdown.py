"""Markdown for a pull-request comment: summary, findings by severity, sites; binary-derived text only inside
code spans (no Markdown, HTML, mentions or autolinks from the binary), `|` escaped in tables."""
from __future__ import annotations

import os
import re

import pytest

from conftest import ROOT

from analyzer.render import render_all
from analyzer.render.markdown import code, text
from analyzer.run.pipeline import scan_file

HOSTILE = ROOT / "corpus" / "hostile" / "hostile_names.elf"


def scan_rel(rel: str):
    cwd = os.getcwd()
    os.chdir(ROOT)
    try:
        return scan_file(rel)
    finally:
        os.chdir(cwd)


def test_structure_and_determinism():
    rep = scan_rel("corpus/rules/bin/rules_risky")
    md = render_all([rep], "markdown", {})
    assert md == render_all([scan_rel("corpus/rules/bin/rules_risky")], "markdown", {})
    assert md.startswith("## sysscan: `rules_risky` — ")
    assert rep.binary.sha256 in md and "sysscan 0" in md
    heads = re.findall(r"^\*\*(CRITICAL|HIGH|MEDIUM|LOW|INFO)\*\* \((\d+)\)$", md, re.M)
    assert [h for h, _ in heads] == ["CRITICAL", "HIGH", "MEDIUM", "LOW"]
    assert sum(int(n) for _, n in heads) == len(rep.findings)
    assert f"<details><summary>Sites ({len(rep.sites)})</summary>" in md
    for line in md.splitlines():
        if line.startswith("| ") and not line.startswith("| ---"):
            cells = re.split(r"(?<!\\)\|", line)[1:-1]
            assert len(cells) in (4, 5, 8), line


def test_several_binaries_one_comment():
    md = render_all([scan_rel("corpus/rules/bin/rules_clean"), scan_rel("corpus/bin/idioms_nopie")], "markdown", {})
    assert md.startswith("## sysscan: 2 binaries")
    assert "### sysscan: `rules_clean`" in md and "### sysscan: `idioms_nopie`" in md


@pytest.mark.parametrize("raw", ["a|b", "x`y``z", "<script>alert(1)</script>", "@octocat #1 **b** [l](http://e/)",
                                 "`lead", "line\nbreak", "\x1b[31m"])
def test_code_spans_hold_anything(raw):
    c = code(raw)
    assert "\n" not in c and "\x1b" not in c
    fence = re.match(r"`+", c).group(0)
    inner = c[len(fence):-len(fence)]
    assert "`" * len(fence) not in inner
    assert "|" not in inner.replace("\\|", "")


def test_text_escapes_markup():
    t = text("a*b_c <b>x</b> @user #12 | [l](u)")
    assert "<b>" not in t and "@user" not in t and "\\*" in t and "\\|" in t and "\\[" in t


def test_hostile_binary():
    if not HOSTILE.exists():
        pytest.fail(f"{HOSTILE} is missing")
    md = render_all([scan_rel(str(HOSTILE.relative_to(ROOT)))], "markdown", {})
    for line in md.splitlines():
        if "script" in line or "onerror" in line or "evil" in line:
            # every occurrence is inside a code span
            stripped = re.sub(r"(`+)(?:(?!\1).)+?\1", "", line)
            assert "script" not in stripped and "onerror" not in stripped and "evil" not in stripped, line
    assert "\x1b" not in md and "\r" not in md
