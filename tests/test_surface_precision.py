"""What keeps the surface tight without losing a syscall a run makes (issue 11): symbols from separate debug files
(Debian's libc6-dbg), byte patterns confirmed as instructions, immediates that cannot be addresses, labels that run
on into each other, and glibc's priority-protect mutex code held back until something can create such a mutex.
Each is checked on the real C library; tests/test_surface.py and benchmarks/surface_recall.py hold the surfaces to
strace."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest

from analyzer.elf import debugfile
from analyzer.program.load import load
from analyzer.run.pipeline import ScanOptions, scan_file
from analyzer.surface.build import object_summary
from conftest import ROOT

sys.path.insert(0, str(ROOT / "benchmarks"))
import surface_recall  # noqa: E402

LIBC = "/lib/x86_64-linux-gnu/libc.so.6"
LD32 = "/lib/ld-linux.so.2"
PP_MUTEX = {"sched_getparam", "sched_setscheduler", "sched_getscheduler", "sched_get_priority_max",
            "sched_get_priority_min"}


def _debug_path(path: str) -> str:
    """Where the object's debug file is, by its build-id; the test fails (not skips) when it is not installed."""
    lb = load(path, None, ())
    want = os.path.join("/usr/lib/debug/.build-id", lb.build_id[:2], lb.build_id[2:] + ".debug")
    if not os.path.exists(want):
        pytest.fail(f"{want} is not installed (.ci/run installs libc6-dbg, benchmarks/fetch_i386.sh libc6-dbg:i386)")
    return want


def _symtab(path: str) -> list[tuple[int, int, str, str]]:
    """(value, size, type, name) of every .symtab symbol, as readelf prints them."""
    out = subprocess.run(["readelf", "-sW", path], capture_output=True, text=True, check=True).stdout
    rows = []
    for line in out.splitlines():
        f = line.split()
        if len(f) >= 8 and f[0].endswith(":") and f[1] != "Value":
            rows.append((int(f[1], 16), int(f[2], 0), f[3], f[7]))
    return rows


def _names(lb) -> dict[str, int]:
    return {f.name: f.start for f in lb.functions}


def test_a_stripped_library_gets_its_symbols_from_its_debug_file():
    dbg = _debug_path(LIBC)
    bare, full = load(LIBC, None, ()), load(LIBC)
    assert bare.stripped and bare.debug_file is None and full.debug_file == dbg and full.stripped
    symtab = _symtab(dbg)
    # every sized data object of the debug file's table is a variable, at its address and with its size
    objects: dict[int, int] = {}  # start -> the furthest end of the objects there (aliases of several sizes)
    for v, size, t, _n in symtab:
        if t == "OBJECT" and size and v:
            objects[v] = max(objects.get(v, 0), v + size)
    assert set(objects.items()) <= set(full.variables) and not set(objects.items()) <= set(bare.variables)
    locobj = next((v, v + s) for v, s, t, n in symtab if n == "_nl_C_locobj")
    assert locobj in full.variables
    # local functions get their names (a path says `__alloc_dir`, not `sub_cfcf0`)
    local = {n: v for v, _s, t, n in symtab if t == "FUNC" and v}
    assert _names(full)["__alloc_dir"] == local["__alloc_dir"] and "__alloc_dir" not in _names(bare)
    # the object's identity for caches changes with it: a summary without it is not served for one with it
    assert full.sha256 == bare.sha256 and full.key != bare.key


def test_a_debug_file_of_another_build_is_never_used(tmp_path):
    lb = load(LIBC, None, ())
    other = _debug_path(LD32)
    fake = tmp_path / ".build-id" / lb.build_id[:2] / (lb.build_id[2:] + ".debug")
    fake.parent.mkdir(parents=True)
    shutil.copy(other, fake)  # the right place, the wrong build
    assert load(LIBC, None, (str(tmp_path),)).debug_file is None


def test_a_debug_link_is_followed_when_its_crc_matches(tmp_path):
    """`objcopy --only-keep-debug` and `--add-gnu-debuglink`, as packagers split a file: the stripped file finds
    its symbols beside it; a debug file whose bytes changed (its CRC) is refused."""
    src = ROOT / "corpus" / "bin" / "idioms_pie"
    prog, dbg = tmp_path / "prog", tmp_path / "prog.debug"
    subprocess.run(["objcopy", "--only-keep-debug", str(src), str(dbg)], check=True)
    subprocess.run(["objcopy", "--strip-all", f"--add-gnu-debuglink={dbg}", str(src), str(prog)], check=True)
    none = str(tmp_path / "no-such-dir")
    assert load(str(prog), None, ()).debug_file is None
    got = load(str(prog), None, (none,))
    assert got.debug_file == str(dbg) and got.stripped
    assert _names(got).keys() >= {"main"} and "main" not in _names(load(str(prog), None, ()))
    data = bytearray(dbg.read_bytes())
    data[-1] ^= 0xFF
    dbg.write_bytes(bytes(data))
    assert load(str(prog), None, (none,)).debug_file is None
    assert debugfile.candidates(str(prog), None, "prog.debug", (none,))[0] == (str(tmp_path / "prog.debug"), "crc")


def _summary(path: str):
    return object_summary(load(path), use_cache=False)


def test_a_byte_pattern_inside_another_instruction_is_no_edge():
    """In libc's __clone_internal, `add 0x28(%r14),%rsi` (49 03 76 28) holds the bytes of `jbe .+0x28`, which
    lands on fanotify_mark's first byte: no edge (it put fanotify_mark in every program that creates a thread);
    its real call of __clone stays."""
    _debug_path(LIBC)
    s = _summary(LIBC)
    at = {n: a for a, n in s.names.items()}
    edges = s.edges.get(at["__clone_internal"], [])
    assert at["fanotify_mark"] not in edges and at["clone"] in edges


def test_immediates_of_position_independent_code_are_not_addresses():
    """`mov $0x100000,%esi` in libc's __alloc_dir is a flag, though 0x100000 lies inside futimesat: a shared
    object without text relocations forms no address from an immediate."""
    _debug_path(LIBC)
    lb = load(LIBC)
    assert not lb.textrel and lb.function_at(0x100000).name in ("futimesat", "__futimesat")
    s = object_summary(lb, use_cache=False)
    at = {n: a for a, n in s.names.items()}
    assert at["futimesat"] not in s.edges.get(at["__alloc_dir"], [])


def test_with_its_debug_file_ld_so_still_reaches_its_start_up():
    """i386 ld.so's debug file names the labels of _dl_start's switch (`.L249` … `.L244`, the call of
    _dl_sysdep_start in the last): they are not functions (taken as such, the start-up was cut off, and the site
    stage lost `call *%gs:0x10` sites in libc's `.L9`). The entry point reaches dl_main."""
    _debug_path(LD32)
    s = _summary(LD32)
    at = {n: a for a, n in s.names.items()}
    seen, todo = set(), [a for a, why in s.roots.items() if why == "the entry point"]
    while todo:
        a = todo.pop()
        if a not in seen:
            seen.add(a)
            todo += s.edges.get(a, [])
    assert not [n for n in at if n.startswith(".L")]
    assert at["_dl_sysdep_start"] in seen and at["dl_main"] in seen


def test_priority_protect_mutex_code_waits_for_pthread_mutexattr_setprotocol(tmp_path):
    """cat never makes a priority-protect mutex: the sched_* calls of glibc's code for them are not in its surface,
    and the report says why. A program that sets the protocol makes them (strace) and has them."""
    _debug_path(LIBC)
    cat = scan_file("/usr/bin/cat").surface
    assert not PP_MUTEX & {s.name for s in cat.syscalls}
    assert any(n.startswith("priority-protect mutexes:") and "pthread_mutexattr_setprotocol" in n for n in cat.notes)

    src = tmp_path / "pp.c"
    src.write_text("""#include <pthread.h>
int main(void) {
    pthread_mutexattr_t a; pthread_mutex_t m;
    pthread_mutexattr_init(&a);
    pthread_mutexattr_setprotocol(&a, PTHREAD_PRIO_PROTECT);
    pthread_mutexattr_setprioceiling(&a, 1);
    if (pthread_mutex_init(&m, &a)) return 1;
    if (pthread_mutex_lock(&m)) return 2;
    return pthread_mutex_unlock(&m) ? 3 : 0;
}
""")
    prog = tmp_path / "pp"
    subprocess.run(["gcc", "-O1", "-pthread", "-o", str(prog), str(src)], check=True)
    seen = surface_recall.trace(str(prog), [], str(tmp_path))
    got = scan_file(str(prog)).surface
    names = {s.name for s in got.syscalls}
    assert PP_MUTEX & seen, "the priority-protect mutex made none of its sched_* calls"
    assert seen <= names, seen - names
    assert not any(n.startswith("priority-protect mutexes:") for n in got.notes)


def test_debug_files_can_be_turned_off():
    _debug_path(LIBC)
    on = scan_file("/usr/bin/cat").surface
    off = scan_file("/usr/bin/cat", ScanOptions(debug_dirs=())).surface
    assert len(on.syscalls) < len(off.syscalls)
    assert {s.name for s in on.syscalls} < {s.name for s in off.syscalls}
