"""Hostile input: names that attack the reader, limits, containment of analysis failures, never executing input.

corpus/hostile/hostile_names.elf (built by corpus/hostile/build.sh) has functions named with rich markup, ANSI and
OSC escape sequences, HTML, Markdown, newlines, bytes that are not UTF-8, a bidi override; a section named with
markup and an escape; a path argument with markup and HTML. Every renderer in RENDERERS is checked, so renderers
added later are covered too.
"""
from __future__ import annotations

import ast
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import CORPUS, ROOT

HOSTILE = CORPUS / "hostile" / "hostile_names.elf"
SAMPLE = CORPUS / "bin" / "idioms_nopie"
SGR = re.compile(r"\x1b\[[0-9;]*m")  # the only escape sequence a renderer may emit itself (colours)


def run(*args: str, cwd: Path = ROOT, timeout: float = 300) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    env.pop("SYSSCAN_DEBUG", None)
    return subprocess.run([sys.executable, "-m", "analyzer.cli", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=timeout, env=env)


@pytest.fixture(scope="module")
def hostile_report():
    from analyzer.run.pipeline import scan_file

    return scan_file(str(HOSTILE))


# ---- safe output --------------------------------------------------------------------------------------------------

def test_hostile_names_are_escaped_at_load(hostile_report):
    names = {s.function for s in hostile_report.sites}
    assert "[bold red]markup[/bold red]" in names  # markup-looking text is kept verbatim (renderers escape it)
    assert "<script>alert(1)</script>" in names
    assert "\\x1b[2J\\x1b[31mansi_clear" in names  # control characters become visible escapes
    assert "line1\\nline2\\r\\x08\\x07bell" in names
    assert "\\xff\\xfe not utf8 \\xc3" in names  # bytes that are not UTF-8 stay visible
    assert "\\u202e rtl override gnp.exe" in names  # a bidi override cannot reorder the line
    for s in hostile_report.sites:
        assert not re.search("[\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]", s.function + s.section), s.function
    assert any(s.section == ".[red]<b>|sect\\x1b[5m" for s in hostile_report.sites)


def test_hostile_table_plain_has_no_escape_and_markup_is_literal():
    p = run(str(HOSTILE), "--color", "never", "--width", "250", "-v")
    assert p.returncode == 0, p.stderr
    assert "\x1b" not in p.stdout and "\r" not in p.stdout and "\u202e" not in p.stdout
    assert "[bold red]markup[/bold red]" in p.stdout  # printed, not interpreted as a style
    assert "[link=http://evil.example/]click" in p.stdout
    assert "\\x1b[2J" in p.stdout


def test_hostile_table_colour_emits_only_its_own_sgr():
    p = run(str(HOSTILE), "--color", "always", "--width", "250", "-v")
    assert p.returncode == 0, p.stderr
    rest = SGR.sub("", p.stdout)
    assert "\x1b" not in rest, repr(rest[rest.index("\x1b") - 40: rest.index("\x1b") + 40])
    assert "\x1b]8;" not in p.stdout  # no OSC 8 hyperlink from the binary (nor from a [link=...] markup)
    assert "evil.example" in rest  # the text is there, inert


def test_every_renderer_escapes_hostile_names(hostile_report):
    from analyzer.render import RENDERERS, render

    assert {"table", "json"} <= set(RENDERERS)
    for fmt in RENDERERS:
        for opts in ({"verbose": 1, "color": False, "width": 200}, {"verbose": 0, "color": True, "width": 120}):
            out = render(hostile_report, fmt, dict(opts))
            text = out if isinstance(out, str) else out.decode("utf-8", "replace")
            rest = SGR.sub("", text) if fmt == "table" and opts["color"] else text
            assert "\x1b" not in rest, (fmt, opts)
            assert "\u202e" not in text, fmt
            assert "\r" not in text.replace("\r\n", "\n"), fmt
            if fmt in ("html", "htm"):
                low = text.lower()
                assert "<script>alert(1)" not in low and "<img src=x" not in low, fmt
                assert "&lt;script&gt;" in low or "&#60;script" in low or "\\u003cscript" in low, fmt
            if fmt in ("markdown", "md"):
                _check_markdown(text)
            if fmt in ("json", "sarif"):
                doc = json.loads(text)
                blob = json.dumps(doc)
                assert "\\u001b" not in blob, fmt  # names were escaped before they reached the model


def _outside_code_spans(md: str) -> str:
    """The Markdown text with inline code spans (CommonMark: a run of n backticks up to the next run of exactly n)
    and fenced blocks removed: what a Markdown renderer would interpret."""
    md = re.sub(r"(?ms)^(```+|~~~+).*?^\1\s*$", "", md)
    out, i = [], 0
    while i < len(md):
        if md[i] == "`":
            j = i
            while j < len(md) and md[j] == "`":
                j += 1
            run = md[i:j]
            m = re.compile(r"(?<!`)" + run + r"(?!`)").search(md, j)
            if m:
                i = m.end()
                continue
            out.append(run)
            i = j
            continue
        out.append(md[i])
        i += 1
    return "".join(out)


def _check_markdown(text: str) -> None:
    live = _outside_code_spans(text)
    live_unescaped = re.sub(r"\\.", "", live)
    assert "<script" not in live_unescaped.lower() and "<img" not in live_unescaped.lower()
    assert "](http://evil.example/)" not in live_unescaped, "a binary name became a Markdown link"
    assert "[link=" not in live_unescaped or "\\[link=" in live
    # GFM splits table cells on every unescaped pipe, inside code spans too: all rows of a table keep their width
    table: list[int] = []
    for line in text.splitlines() + [""]:
        if line.startswith("|"):
            table.append(len(re.findall(r"(?<!\\)\|", line)))
        elif table:
            assert len(set(table)) == 1, f"a name changed the number of table cells: {table}"
            table = []


def test_json_report_keeps_names_exact_and_valid(hostile_report):
    import jsonschema

    from analyzer.render import render

    doc = json.loads(render(hostile_report, "json", {}))
    schema = json.loads((ROOT / "analyzer" / "schemas" / "report.schema.json").read_text())
    jsonschema.Draft7Validator(schema).validate(doc)
    assert "{{7*7}}${jndi:ldap://evil}%s%n" in {s["function"] for s in doc["sites"]}
    opened = [s for s in doc["sites"] if any(c["name"] == "openat" for c in s["syscalls"])]
    assert opened and "/tmp/[bold red]x[/bold red]<script>alert(1)</script>|`md`" in \
        opened[0]["args"][1]["strings"].values()


def test_output_path_is_only_what_the_user_gave(tmp_path):
    out = tmp_path / "out" / "r.json"
    out.parent.mkdir()
    work = tmp_path / "cwd"
    work.mkdir()
    p = run(str(HOSTILE), "-f", "json", "-o", str(out), cwd=work)
    assert p.returncode == 0, p.stderr
    assert sorted(x.name for x in out.parent.iterdir()) == ["r.json"]
    assert list(work.iterdir()) == []


def _tree(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*"))


@pytest.mark.parametrize("name", ["../../escaped", "..", "/tmp/abs", "a/../../b", "\x1b[2Jx", ".hidden"])
def test_output_dir_names_never_come_from_report_contents(tmp_path, name):
    """A saved report is untrusted input too (`sysscan render` of an artifact from a fork): its binary name must
    not steer where `-o DIR` writes."""
    from analyzer.render import RENDERERS

    saved = tmp_path / "in" / "r.json"
    saved.parent.mkdir()
    p = run(str(SAMPLE), "-f", "json", "-o", str(saved))
    assert p.returncode == 0, p.stderr
    doc = json.loads(saved.read_text())
    doc["binary"]["name"] = name
    doc["binary"]["path"] = name
    saved.write_text(json.dumps(doc))
    out = tmp_path / "a" / "b" / "out"
    out.mkdir(parents=True)
    fmts = ",".join(f for f in RENDERERS if f != "table") or "json"
    r = run("render", str(saved), "-f", fmts, "-o", str(out) + "/")
    assert "Traceback" not in r.stderr
    before = {"in", "in/r.json", "a", "a/b", "a/b/out"}
    written = set(_tree(tmp_path)) - before
    assert written and all(w.startswith("a/b/out/") and w.count("/") == 3 for w in written), written
    assert not any("\x1b" in w for w in written)


def test_the_binary_is_never_executed(monkeypatch):
    """Nothing in the pipeline starts a process: every way to exec is booby-trapped during a scan."""
    import analyzer.run.pipeline

    def trap(*a, **k):
        raise AssertionError(f"sysscan tried to execute something: {a[:2]}")

    for name in ("execv", "execve", "execvp", "execvpe", "execl", "execle", "execlp", "spawnv", "spawnve",
                 "posix_spawn", "posix_spawnp", "system", "popen", "fork", "forkpty"):
        if hasattr(os, name):
            monkeypatch.setattr(os, name, trap)
    monkeypatch.setattr(subprocess, "Popen", trap)
    for f in (HOSTILE, SAMPLE, CORPUS / "bin" / "i386_raw"):
        rep = analyzer.run.pipeline.scan_file(str(f))
        assert rep.sites


def test_yaml_is_only_loaded_safely():
    """No yaml.load with a full/unsafe loader anywhere in the package."""
    bad = []
    for path in (ROOT / "analyzer").rglob("*.py"):
        tree = ast.parse(path.read_text(), str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and \
                    isinstance(node.func.value, ast.Name) and node.func.value.id == "yaml":
                fn = node.func.attr
                if fn in ("unsafe_load", "full_load", "unsafe_load_all", "full_load_all"):
                    bad.append(f"{path}:{node.lineno} yaml.{fn}")
                if fn in ("load", "load_all"):
                    loader = [k.value for k in node.keywords if k.arg == "Loader"] or node.args[1:2]
                    names = [ast.unparse(x) for x in loader]
                    if not names or not all("Safe" in n or "Strict" in n or "_Loader" in n for n in names):
                        bad.append(f"{path}:{node.lineno} yaml.{fn}({', '.join(names) or 'no Loader'})")
    assert not bad, bad


# ---- containment --------------------------------------------------------------------------------------------------

def test_an_exception_in_one_function_is_contained(monkeypatch):
    """A failure while analysing one function: its sites unresolved with the reason, the rest analysed."""
    import analyzer.run.pipeline as scan
    from analyzer.values.local import FunctionDataflow

    real = FunctionDataflow.__init__

    def boom(self, memory, start, end, bits=64, name="", **kw):
        if name == "site_xor_read":
            raise RuntimeError("boom from a library")
        real(self, memory, start, end, bits, name, **kw)

    monkeypatch.setattr(FunctionDataflow, "__init__", boom)
    rep = scan.scan_file(str(SAMPLE))
    bad = [s for s in rep.sites if s.function == "site_xor_read"]
    assert bad and all(s.number.status == "unresolved" for s in bad)
    assert bad[0].number.reasons == ["analysis failed: RuntimeError: boom from a library"]
    assert any("site_xor_read" in m and "RuntimeError" in m for m in rep.incomplete)
    good = [s for s in rep.sites if s.function == "site_mov_imm_write"]
    assert good and good[0].number.status == "resolved" and good[0].number.values == [1]


def test_an_exception_confirming_one_candidate_is_contained(monkeypatch):
    import analyzer.sites as sites
    from analyzer.run.pipeline import scan_file

    real = sites._decode_region

    def flaky(md, lb, start, end, name, source):
        if name == "site_xor_read":
            raise ValueError("capstone went sideways")
        return real(md, lb, start, end, name, source)

    monkeypatch.setattr(sites, "_decode_region", flaky)
    rep = scan_file(str(SAMPLE))
    assert any("not examined: analysis failed: ValueError" in m for m in rep.incomplete)
    assert any(s.function == "site_mov_imm_write" for s in rep.sites)


# ---- limits -------------------------------------------------------------------------------------------------------

def test_timeout_gives_a_marked_partial_report():
    p = run(str(SAMPLE), "-f", "json", "--timeout", "0.000001")
    assert p.returncode == 0, p.stderr
    doc = json.loads(p.stdout)
    assert any("time budget exhausted" in m for m in doc["incomplete"]), doc["incomplete"]
    for s in doc["sites"]:
        assert s["number"]["status"] == "unresolved" and s["number"]["reasons"] == ["time budget exhausted"]


def test_deadline_is_checked_inside_the_data_flow():
    from analyzer.budget import BudgetExceeded, Deadline
    from analyzer.program.load import load
    from analyzer.values.local import FunctionDataflow

    lb = load(str(CORPUS / "bin" / "hello_static_stripped"))
    big = max(lb.functions, key=lambda f: f.end - f.start)
    with pytest.raises(BudgetExceeded):
        FunctionDataflow(lb.memory, big.start, big.end, lb.bits, big.name, deadline=Deadline(0))


def test_max_size_refuses_with_its_own_exit_code():
    p = run(str(SAMPLE), "--max-size", "1K")
    assert p.returncode == 10, (p.returncode, p.stderr)
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1 and str(SAMPLE) in lines[0] and "too large" in lines[0] and "Traceback" not in p.stderr
    ok = run(str(SAMPLE), "--max-size", "1M", "-f", "json")
    assert ok.returncode == 0, ok.stderr


@pytest.mark.parametrize("bad", [["--timeout", "-1"], ["--max-size", "lots"], ["--max-memory", "12"]])
def test_limit_options_are_validated(bad):
    p = run(str(SAMPLE), *bad)
    assert p.returncode == 2 and "Traceback" not in p.stderr


def test_max_memory_runs_isolated_and_matches_in_process():
    a = run(str(SAMPLE), "-f", "json")
    b = run(str(SAMPLE), "-f", "json", "--max-memory", "4096")
    assert a.returncode == 0 and b.returncode == 0, b.stderr
    assert a.stdout == b.stdout


def test_memory_hog_in_the_worker_gives_a_marked_report(monkeypatch):
    """The analysis of one binary outgrows --max-memory: that binary gets a report marked incomplete, the
    process that asked is unharmed."""
    import analyzer.run.pipeline as scan
    from analyzer.budget import Limits
    from analyzer.run.isolate import run_isolated
    from analyzer.model import Report

    def hog(*a, **k):
        chunks = []
        while True:
            chunks.append(bytearray(16 << 20))

    monkeypatch.setattr(scan, "find_sites", hog)
    res = run_isolated(str(SAMPLE), None, Limits(timeout=60, max_memory_mb=128))
    assert isinstance(res, Report), res
    assert res.binary.name == SAMPLE.name and not res.sites
    assert any("memory limit exhausted" in m for m in res.incomplete), res.incomplete


def test_max_memory_cli_small_cap_is_still_one_line_or_a_report():
    p = run(str(CORPUS / "bin" / "hello_static_stripped"), "-f", "json", "--max-memory", "64")
    assert "Traceback" not in p.stderr
    if p.returncode == 0:
        json.loads(p.stdout)
    else:
        assert p.returncode == 10, (p.returncode, p.stderr)
        assert len(p.stderr.strip().splitlines()) == 1


def test_run_isolated_survives_a_killed_worker(monkeypatch):
    """The child dies from a signal after loading: the parent still reports that binary, marked incomplete."""
    import analyzer.run.pipeline as scan
    from analyzer.budget import Limits
    from analyzer.run.isolate import run_isolated
    from analyzer.model import Report

    real = scan.find_sites

    def die(*a, **k):
        os.kill(os.getpid(), signal.SIGKILL)
        return real(*a, **k)

    monkeypatch.setattr(scan, "find_sites", die)  # inherited by the forked child
    res = run_isolated(str(SAMPLE), None, Limits(timeout=30, max_memory_mb=4096))
    assert isinstance(res, Report), res
    assert res.binary.sha256 and not res.sites
    assert any("SIGKILL" in m for m in res.incomplete), res.incomplete


def test_run_isolated_kills_a_hung_worker(monkeypatch):
    import analyzer.budget as limits
    import analyzer.run.isolate as isolate
    import analyzer.run.pipeline as scan
    from analyzer.model import Report

    def hang(*a, **k):
        while True:
            time.sleep(1)

    monkeypatch.setattr(scan, "find_sites", hang)
    monkeypatch.setattr(limits, "HARD_STOP_GRACE", 0.5)
    t0 = time.monotonic()
    res = isolate.run_isolated(str(SAMPLE), None, limits.Limits(timeout=0.5, max_memory_mb=4096))
    assert time.monotonic() - t0 < 20
    assert isinstance(res, Report)
    assert any("time budget exhausted" in m for m in res.incomplete), res.incomplete


def test_run_isolated_returns_input_errors():
    from analyzer.errors import NotAnELF
    from analyzer.budget import Limits
    from analyzer.run.isolate import run_isolated

    res = run_isolated(str(ROOT / "README.md"), None, Limits(max_memory_mb=4096))
    assert isinstance(res, NotAnELF) and res.exit_code == 4


def test_time_limit_interrupts_python_code():
    from analyzer.budget import BudgetExceeded, function_budget, time_limit

    t0 = time.monotonic()
    with pytest.raises(BudgetExceeded):
        with time_limit(0.2):
            while True:
                pass
    assert time.monotonic() - t0 < 5
    assert signal.getitimer(signal.ITIMER_REAL)[0] == 0
    with function_budget(None, 5):
        pass  # no alarm left behind
    assert signal.getitimer(signal.ITIMER_REAL)[0] == 0


def test_nested_time_limits_keep_the_outer_one():
    from analyzer.budget import BudgetExceeded, time_limit

    with pytest.raises(BudgetExceeded):
        with time_limit(0.3):
            with time_limit(10):
                pass
            while True:
                pass


def test_deadline_basics():
    from analyzer.budget import BudgetExceeded, Deadline

    t = [0.0]
    d = Deadline(10, clock=lambda: t[0])
    assert not d.expired() and d.remaining() == 10
    sub = d.sub(3)
    t[0] = 4
    assert sub.expired() and not d.expired()
    with pytest.raises(BudgetExceeded):
        sub.check("f")
    t[0] = 11
    assert d.expired() and d.remaining() == 0
    assert Deadline(None).remaining() is None and not Deadline(None).expired()


# ---- loader robustness, property-based ----------------------------------------------------------------------------

def test_eh_frame_walk_never_raises_on_garbage():
    from hypothesis import given, settings
    from hypothesis import strategies as st

    from analyzer.elf.ehframe import _eh_frame_functions

    class Sec:
        def __init__(self, data: bytes) -> None:
            self.content = data
            self.size = len(data)
            self.virtual_address = 0x401000

    class Bin:
        def __init__(self, data: bytes) -> None:
            self.sec = Sec(data)

        def get_section(self, name: str):
            return self.sec

    real = (CORPUS / "bin" / "idioms_nopie").read_bytes()

    @settings(max_examples=300, deadline=None, derandomize=True)
    @given(st.binary(max_size=512), st.integers(0, 0x400), st.binary(max_size=16))
    def check(junk, cut, patch):
        for data in (junk, real[0x2138:0x2138 + cut] + patch + junk):
            out = _eh_frame_functions(Bin(data), None)
            assert isinstance(out, list)

    check()


def test_header_check_answers_every_prefix_with_a_documented_error():
    """Every truncation of a real ELF header either passes the header check or raises one SysscanError."""
    from analyzer.errors import SysscanError
    from analyzer.elf.header import check_header

    data = SAMPLE.read_bytes()
    for n in range(0, 0x400):
        try:
            check_header("x", data[:n])
        except SysscanError as e:
            assert e.exit_code in (3, 4, 5, 6) and "\n" not in str(e)


# ---- saved reports are untrusted input too ------------------------------------------------------------------------

def _crafted_reports(good: dict) -> dict[str, str]:
    site = good["sites"][0]
    num = site["number"]
    return {
        "deep nesting": "[" * 100000 + "]" * 100000,
        "sites not a list": json.dumps({**good, "sites": "abc"}),
        "bad hex": json.dumps({**good, "sites": [{**site, "address": "zz"}]}),
        "huge int": json.dumps({**good, "sites": [{**site, "number": {**num, "values": [10 ** 400]}}]}),
        "null binary": json.dumps({**good, "binary": None}),
        "unknown status": json.dumps({**good, "sites": [{**site, "number": {**num, "status": "pwned"}}]}),
        "string not a string": json.dumps({**good, "sites": [{**site, "number": {**num, "strings": {"0x1": 5}}}]}),
        "a list": json.dumps([good]),
        "reports not a list": json.dumps({"reports": 5}),
        "control characters": json.dumps({**good, "binary": {**good["binary"], "path": "\x1b[2J\x1b]8;;x\x07",
                                                             "name": "<script>\u202e"}}),
    }


def test_render_of_crafted_saved_reports_is_an_error_or_safe(tmp_path):
    """`sysscan render` of a report from anywhere: exit 0 with safe output, or exit 9 and one line — in every
    format, never a traceback or an internal error."""
    from analyzer.render import RENDERERS

    good = run(str(SAMPLE), "-f", "json")
    assert good.returncode == 0
    crafted = _crafted_reports(json.loads(good.stdout))
    for name, text in crafted.items():
        path = tmp_path / "r.json"
        path.write_text(text)
        for fmt in RENDERERS:
            p = run("render", str(path), "-f", fmt)
            assert p.returncode in (0, 9), (name, fmt, p.returncode, p.stderr)
            assert "Traceback" not in p.stderr, (name, fmt)
            if p.returncode:
                assert len(p.stderr.strip().splitlines()) == 1 and str(path) in p.stderr, (name, fmt, p.stderr)
            rest = SGR.sub("", p.stdout) if fmt == "table" else p.stdout
            assert "\x1b" not in rest and "\u202e" not in rest and "\x07" not in rest, (name, fmt)
