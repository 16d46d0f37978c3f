"""The CLI as a user runs it: formats, exit codes, and one clear line for every kind of bad input."""
from __future__ import annotations

import json
import os
import shutil
import stat
import struct
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import CORPUS, ROOT

SAMPLE = CORPUS / "bin" / "idioms_nopie"


def run(*args: str, cwd: Path = ROOT, env: dict | None = None) -> subprocess.CompletedProcess:
    e = dict(os.environ, **(env or {}))
    e.pop("SYSSCAN_DEBUG", None)
    return subprocess.run([sys.executable, "-m", "analyzer.cli", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=300, env=e)


def assert_one_line_error(p: subprocess.CompletedProcess, code: int, path: str, words: str) -> None:
    assert p.returncode == code, (p.returncode, p.stderr)
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1, p.stderr
    assert "Traceback" not in p.stderr
    assert path in lines[0] and words in lines[0], lines[0]
    assert p.stdout == ""


def test_table_report_names_syscalls():
    p = run(str(SAMPLE), "--width", "200")
    assert p.returncode == 0, p.stderr
    out = p.stdout
    assert "sha256" in out and "x86_64" in out
    assert "1→write" in out
    assert "Unresolved syscall numbers" in out and "my_syscall" in out
    assert "int 0x80 (i386)" in out


def test_json_is_deterministic_and_round_trips(tmp_path):
    a = run(str(SAMPLE), "--format", "json")
    b = run(str(SAMPLE), "--format", "json")
    assert a.returncode == 0, a.stderr
    assert a.stdout == b.stdout
    doc = json.loads(a.stdout)
    assert doc["tool"]["name"] == "sysscan" and doc["tool"]["version"]
    assert len(doc["binary"]["sha256"]) == 64
    addrs = [int(s["address"], 16) for s in doc["sites"]]
    assert addrs == sorted(addrs)
    saved = tmp_path / "r.json"
    saved.write_text(a.stdout)
    again = run("render", str(saved), "--format", "json")
    assert again.returncode == 0, again.stderr
    assert again.stdout == a.stdout


def test_output_file(tmp_path):
    out = tmp_path / "report.json"
    p = run(str(SAMPLE), "-f", "json", "-o", str(out))
    assert p.returncode == 0 and p.stdout == ""
    assert json.loads(out.read_text())["summary"]["sites"] > 0


def test_json_matches_published_schema():
    jsonschema = pytest.importorskip("jsonschema")
    schema = json.loads((ROOT / "analyzer" / "schemas" / "report.schema.json").read_text())
    for name in ("idioms_nopie", "i386_raw", "hello_static_stripped"):
        p = run(str(CORPUS / "bin" / name), "-f", "json")
        assert p.returncode == 0, p.stderr
        jsonschema.validate(json.loads(p.stdout), schema)


def test_unknown_format_is_usage_error():
    p = run(str(SAMPLE), "--format", "yaml")
    assert p.returncode == 2 and "unknown format" in p.stderr


def test_missing_file(tmp_path):
    path = str(tmp_path / "nope")
    assert_one_line_error(run(path), 3, path, "no such file")


def test_directory(tmp_path):
    assert_one_line_error(run(str(tmp_path)), 3, str(tmp_path), "directory")


def test_text_file(tmp_path):
    f = tmp_path / "notes.txt"
    f.write_text("hello, I am not an ELF\n")
    assert_one_line_error(run(str(f)), 4, str(f), "not an ELF")


def test_empty_file(tmp_path):
    f = tmp_path / "empty"
    f.write_bytes(b"")
    assert_one_line_error(run(str(f)), 4, str(f), "empty")


@pytest.mark.parametrize("cut", [3, 10, 40, 200])
def test_truncated_elf(tmp_path, cut):
    f = tmp_path / f"trunc{cut}"
    f.write_bytes(SAMPLE.read_bytes()[:cut])
    p = run(str(f))
    expected = 4 if cut < 4 else 5
    assert_one_line_error(p, expected, str(f), "not an ELF" if cut < 4 else "truncated")


def test_corrupt_program_header_offset(tmp_path):
    data = bytearray(SAMPLE.read_bytes())
    struct.pack_into("<Q", data, 32, 0x7FFFFFFF0000)  # e_phoff far outside the file
    f = tmp_path / "badphoff"
    f.write_bytes(bytes(data))
    assert_one_line_error(run(str(f)), 5, str(f), "program headers")


def test_other_architecture(tmp_path):
    data = bytearray(SAMPLE.read_bytes())
    struct.pack_into("<H", data, 18, 183)  # e_machine = EM_AARCH64
    f = tmp_path / "arm64"
    f.write_bytes(bytes(data))
    assert_one_line_error(run(str(f)), 6, str(f), "AArch64")


def test_fifo_is_refused_without_blocking(tmp_path):
    f = tmp_path / "pipe"
    os.mkfifo(f)
    assert_one_line_error(run(str(f)), 3, str(f), "not a regular file")


def test_bad_saved_report(tmp_path):
    f = tmp_path / "r.json"
    f.write_text("{\"not\": \"a report\"}")
    p = run("render", str(f))
    assert p.returncode == 9 and len(p.stderr.strip().splitlines()) == 1


def test_console_script_installed():
    exe = shutil.which("sysscan", path=os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", ""))
    assert exe, "the sysscan console script is not installed (pip install -e .)"
    p = subprocess.run([exe, "--version"], capture_output=True, text=True, timeout=60)
    assert p.returncode == 0 and p.stdout.startswith("sysscan ")


def test_table_marks_baselined_findings(tmp_path):
    saved = tmp_path / "old.json"
    assert run(str(SAMPLE), "-f", "json", "-o", str(saved)).returncode == 0
    p = run(str(SAMPLE), "--baseline", str(saved), "--fail-on", "low", "--width", "220")
    assert p.returncode == 0, p.stderr  # every finding is in the baseline: nothing new gates the run
    assert "unchanged" in p.stdout and "Findings" in p.stdout


def test_output_to_a_fifo_keeps_the_fifo(tmp_path):
    """`-o /dev/null` (or any non-regular file) is written in place: an atomic rename would replace the device."""
    import threading

    fifo = tmp_path / "out.fifo"
    os.mkfifo(fifo)
    got: list[bytes] = []
    reader = threading.Thread(target=lambda: got.append(fifo.read_bytes()))
    reader.start()
    p = run(str(SAMPLE), "-f", "json", "-o", str(fifo))
    reader.join(timeout=60)
    assert p.returncode == 0, p.stderr
    assert stat.S_ISFIFO(os.stat(fifo).st_mode)
    assert json.loads(got[0])["summary"]["sites"] > 0


def test_new_output_file_is_not_private(tmp_path):
    out = tmp_path / "r.json"
    assert run(str(SAMPLE), "-f", "json", "-o", str(out)).returncode == 0
    assert stat.S_IMODE(os.stat(out).st_mode) & 0o044  # readable by group/others under the usual umask
