"""Objects loaded after start (analyzer/surface/dlopen.py), checked against real runs: a library a program dlopens
by a constant name is entered wherever dlsym can take the program — every export of it, whether the dlopen loads
it or finds it loaded already (a DT_NEEDED library: dlopen returns its handle) — while a library glibc loads by
itself is entered only through the names glibc looks up in it. Programs and the library built here with gcc."""
from __future__ import annotations

import subprocess
import sys

from analyzer.run.pipeline import scan_file
from analyzer.surface.libcloads import BY_FUNCTION
from conftest import ROOT

sys.path.insert(0, str(ROOT / "benchmarks"))
import surface_recall  # noqa: E402

LIBRARY = """
#include <unistd.h>
void syncer_sync(void) { sync(); }
void syncer_nothing(void) {}
"""
PROGRAM = """
#include <dlfcn.h>
void syncer_nothing(void);
int main(int argc, char **argv) {
#ifdef NEEDED
    syncer_nothing();
#endif
    void *h = dlopen("libsyncer.so", RTLD_NOW);
    void (*f)(void) = h && argc > 1 ? (void (*)(void))dlsym(h, argv[1]) : 0;
    if (f)
        f();
    return 0;
}
"""


def _build(tmp_path, needed: bool) -> str:
    (tmp_path / "libsyncer.c").write_text(LIBRARY)
    (tmp_path / "prog.c").write_text(PROGRAM)
    subprocess.run(["gcc", "-O1", "-shared", "-fPIC", "-o", str(tmp_path / "libsyncer.so"),
                    str(tmp_path / "libsyncer.c")], check=True)
    link = ["-DNEEDED", "-L", str(tmp_path), "-Wl,--no-as-needed", "-lsyncer"] if needed else []
    subprocess.run(["gcc", "-O1", "-o", str(tmp_path / "prog"), str(tmp_path / "prog.c"), *link,
                    "-Wl,-rpath,$ORIGIN", "-ldl"], check=True)
    return str(tmp_path / "prog")


def _check_sync_is_reached(tmp_path, prog: str, kind: str) -> None:
    seen = surface_recall.trace(prog, ["syncer_sync"], str(tmp_path))
    assert "sync" in seen, seen  # the run calls it through dlsym
    s = scan_file(prog).surface
    assert {o.name: o.kind for o in s.objects}.get("libsyncer.so") == kind
    names = {x.name for x in s.syscalls}
    assert seen <= names, sorted(seen - names)
    sync = next(x for x in s.syscalls if x.name == "sync")
    assert sync.path[0].startswith("syncer_sync (libsyncer.so) ["), sync.path


def test_a_library_dlopen_loads_is_entered_through_any_export(tmp_path):
    _check_sync_is_reached(tmp_path, _build(tmp_path, needed=False), "dlopen")


def test_a_library_dlopen_finds_loaded_already_is_entered_through_any_export(tmp_path):
    # the program needs libsyncer.so (DT_NEEDED) and calls none of what makes syscalls: the dlopen of the same name
    # returns the loaded library's handle, and dlsym reaches syncer_sync through it
    _check_sync_is_reached(tmp_path, _build(tmp_path, needed=True), "needed")


def test_a_library_glibc_loads_is_entered_only_where_glibc_looks_up(tmp_path):
    (tmp_path / "hello.c").write_text("#include <stdio.h>\nint main(void) { puts(\"hi\"); return 0; }\n")
    subprocess.run(["gcc", "-O1", "-o", str(tmp_path / "hello"), str(tmp_path / "hello.c")], check=True)
    s = scan_file(str(tmp_path / "hello")).surface
    gcc_s = next(o for o in s.objects if o.name == "libgcc_s.so.1")
    assert gcc_s.kind == "dlopen"
    alone = scan_file(gcc_s.path).surface.objects[0]  # scanned on its own: every export a root
    assert 0 < gcc_s.reachable_functions < alone.reachable_functions, (gcc_s, alone)
    looked_up = BY_FUNCTION["__libc_unwind_link_get"].symbols
    for x in s.syscalls + s.open_ends:
        if x.path and "(libgcc_s.so.1) [" in x.path[0]:
            assert x.path[0].split(" ")[0] in looked_up, x.path
