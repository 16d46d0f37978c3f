"""The program model: every address names its object, exports match binutils, and a model saved with
program/freeze.py loads back as the same interface (and through the per-object cache)."""
from __future__ import annotations

import os
import shutil
import subprocess

import pytest

from analyzer.program.freeze import dumps, load_cached, loads, cached
from analyzer.program.load import load
from analyzer.program.model import Address
from conftest import CORPUS

LIBC = "/lib/x86_64-linux-gnu/libc.so.6"
OBJECTS = ["bin/libraw.so", "bin/idioms_pie_stripped", "bin/go_hello", "bin/i386_glibc_static", "bin/wrappers_pie"]


@pytest.mark.parametrize("rel", OBJECTS)
def test_frozen_model_answers_as_the_loaded_one(rel):
    lb = load(str(CORPUS / rel))
    back = loads(dumps(lb), lb.memory)
    assert back.functions == lb.functions and back.functions
    assert (back.symbols, back.imports, back.exports, back.needed) == (lb.symbols, lb.imports, lb.exports, lb.needed)
    assert (back.sha256, back.entry, back.elf_type, back.bits, back.stripped) == \
        (lb.sha256, lb.entry, lb.elf_type, lb.bits, lb.stripped)
    probes = sorted({f.start for f in lb.functions} | {f.end - 1 for f in lb.functions} |
                    {r.start + (r.end - r.start) // 2 for r in lb.exec_ranges})
    for a in probes:
        assert back.function_at(a) == lb.function_at(a)
        assert back.anchor_before(a) == lb.anchor_before(a)
        assert back.symbolize(a) == lb.symbolize(a)
    from analyzer.program.calls import call_index

    taken = call_index(lb).address_taken_all()
    assert call_index(back).address_taken_all() == taken
    for f in lb.functions[:50]:
        assert call_index(back).address_taken(f.start) == call_index(lb).address_taken(f.start)
    assert dumps(back) == dumps(lb), "saving the loaded-back model gives the same bytes"


def test_every_function_names_its_object():
    lb = load(str(CORPUS / "bin/idioms_pie_stripped"))
    assert {f.obj for f in lb.functions} == {lb.sha256}
    f = lb.functions[0]
    assert f.address == Address(lb.sha256, f.start) == lb.address(f.start)
    assert str(f.address).startswith(lb.sha256[:12] + ":0x")


@pytest.mark.skipif(not os.path.exists(LIBC) or shutil.which("nm") is None, reason="needs libc.so.6 and nm")
def test_exports_are_the_defined_dynamic_functions_nm_lists():
    lb = load(LIBC)
    out = subprocess.run(["nm", "-D", "--defined-only", LIBC], capture_output=True, text=True, check=True).stdout
    nm, versioned = {}, set()
    for line in out.splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[1] in ("T", "W", "i"):
            nm.setdefault(parts[2].split("@")[0], int(parts[0], 16))
            if "@" in parts[2]:
                versioned.add(parts[2].replace("@@", "@"))
    assert len(nm) > 1500
    assert {n for n in lb.exports if "@" not in n} == set(nm)
    assert {n for n in lb.exports if "@" in n} == versioned  # name@VERSION: every version, for versioned imports
    assert all(lb.exports[n] == nm[n] for n in ("write", "syscall", "read", "clone"))


def test_the_model_is_cached_per_object(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    monkeypatch.delenv("SYSSCAN_NO_CACHE", raising=False)
    lb = load(str(CORPUS / "bin/libraw.so"))
    assert load_cached(lb.key) is None
    cached(lb)
    back = load_cached(lb.key)
    assert back is not None and back.functions == lb.functions and back.exports == lb.exports
    assert back.memory.regions == [], "the bytes are not cached: a stage that decodes passes the memory back in"
    monkeypatch.setenv("SYSSCAN_NO_CACHE", "1")
    assert load_cached(lb.key) is None
