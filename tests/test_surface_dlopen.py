"""Objects loaded after start (analyzer/surface/dlopen.py), checked against real runs: a library a program dlopens
by a constant name is entered wherever dlsym can take the program — the names its dlsym calls look up, every
export once one name is not known; functions and tables of them; whether the dlopen loads it or finds it loaded
already (a DT_NEEDED library: dlopen returns its handle) — while a library glibc loads by itself is entered only
through the names glibc looks up in it. Programs and the library built here with gcc."""
from __future__ import annotations

import subprocess
import sys

import pytest

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


def _build(tmp_path, needed: bool, *flags: str, src: str = PROGRAM, lib: str = LIBRARY, m32: bool = False) -> str:
    """The program (with `flags`) and libsyncer.so beside it; `m32`: both i386 (.ci/run installs gcc-multilib)."""
    (tmp_path / "libsyncer.c").write_text(lib)
    (tmp_path / "prog.c").write_text(src)
    if m32:
        flags = ("-m32", *flags)
    subprocess.run(["gcc", "-O1", *(["-m32"] if m32 else []), "-shared", "-fPIC", "-o", str(tmp_path / "libsyncer.so"),
                    str(tmp_path / "libsyncer.c")], check=True)
    link = ["-DNEEDED", "-L", str(tmp_path), "-Wl,--no-as-needed", "-lsyncer"] if needed else []
    subprocess.run(["gcc", "-O1", *flags, "-o", str(tmp_path / "prog"), str(tmp_path / "prog.c"), *link,
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


@pytest.mark.parametrize("flags", [(), ("-fno-plt",)])  # -fno-plt: dlopen called through its GOT slot, no stub
def test_a_library_dlopen_loads_is_entered_through_any_export(tmp_path, flags):
    _check_sync_is_reached(tmp_path, _build(tmp_path, False, *flags), "dlopen")


@pytest.mark.parametrize("flags", [(), ("-fno-plt",)])
def test_a_library_dlopen_finds_loaded_already_is_entered_through_any_export(tmp_path, flags):
    # the program needs libsyncer.so (DT_NEEDED) and calls none of what makes syscalls: the dlopen of the same name
    # returns the loaded library's handle, and dlsym reaches syncer_sync through it
    _check_sync_is_reached(tmp_path, _build(tmp_path, True, *flags), "needed")


def test_an_i386_dlopen_and_its_lookups_are_read_off_the_stack(tmp_path):
    """i386 code passes dlopen's and dlsym's names on the stack (main realigns it first: `and $-16,%esp`): a
    constant dlsym name enters only that function; one from argv enters every export, and a run reaches sync."""
    prog = _build(tmp_path, False, src=NAMED, m32=True)
    assert "sync" not in surface_recall.trace(prog, [], str(tmp_path))
    s = scan_file(prog).surface
    assert {o.name: o.kind for o in s.objects}.get("libsyncer.so") == "dlopen"
    assert "sync" not in {x.name for x in s.syscalls}
    assert not [o for o in s.open_ends if o.kind == "dlopen" and o.object == "prog"], s.open_ends
    _check_sync_is_reached(tmp_path, _build(tmp_path, False, m32=True), "dlopen")


NAMED = """
#include <dlfcn.h>
int main(void) {
    void *h = dlopen("libsyncer.so", RTLD_NOW);
    void (*f)(void) = h ? (void (*)(void))dlsym(h, "syncer_nothing") : 0;
    if (f)
        f();
    return 0;
}
"""


def test_a_library_dlopen_loads_is_entered_only_where_constant_lookups_say(tmp_path):
    # every dlsym call the program reaches asks for "syncer_nothing": syncer_sync is never entered
    prog = _build(tmp_path, False, src=NAMED)
    assert "sync" not in surface_recall.trace(prog, [], str(tmp_path))
    s = scan_file(prog).surface
    assert {o.name: o.kind for o in s.objects}.get("libsyncer.so") == "dlopen"
    assert "sync" not in {x.name for x in s.syscalls}
    lib = next(o for o in s.objects if o.name == "libsyncer.so")
    assert 0 < lib.reachable_functions < lib.functions


OPS_LIBRARY = """
#include <unistd.h>
static void syncer_sync(void) { sync(); }
struct ops { void (*fn)(void); };
const struct ops syncer_ops = { syncer_sync };
"""
OPS_PROGRAM = """
#include <dlfcn.h>
struct ops { void (*fn)(void); };
int main(void) {
    void *h = dlopen("libsyncer.so", RTLD_NOW);
    const struct ops *o = h ? (const struct ops *)dlsym(h, "syncer_ops") : 0;
    if (o)
        o->fn();
    return 0;
}
"""


def test_a_table_of_functions_looked_up_by_name_is_entered(tmp_path):
    # syncer_sync is static: only the exported data object syncer_ops, handed out by dlsym, leads to it
    prog = _build(tmp_path, False, src=OPS_PROGRAM, lib=OPS_LIBRARY)
    seen = surface_recall.trace(prog, [], str(tmp_path))
    assert "sync" in seen
    s = scan_file(prog).surface
    assert seen <= {x.name for x in s.syscalls}, sorted(seen - {x.name for x in s.syscalls})
    sync = next(x for x in s.syscalls if x.name == "sync")
    assert sync.path[0].startswith("data at") and "libsyncer.so" in sync.path[0], sync.path


UNREACHED = """
#include <dlfcn.h>
void never_called(void) {
    void *h = dlopen("libsyncer.so", RTLD_NOW);
    void (*f)(void) = h ? (void (*)(void))dlsym(h, "syncer_sync") : 0;
    if (f)
        f();
}
int main(void) { return 0; }
"""


def test_a_dlopen_no_path_reaches_loads_nothing(tmp_path):
    prog = _build(tmp_path, False, src=UNREACHED)
    assert "sync" not in surface_recall.trace(prog, [], str(tmp_path))
    s = scan_file(prog).surface
    assert "libsyncer.so" not in {o.name for o in s.objects}
    assert "sync" not in {x.name for x in s.syscalls}


ADDRESS_TAKEN = """
#include <dlfcn.h>
int main(int argc, char **argv) {
    void *(*volatile load)(const char *, int) = dlopen;
    return load(argc > 1 ? argv[1] : "libm.so.6", RTLD_NOW) == 0;
}
"""


def test_a_dlopen_whose_argument_is_not_read_is_an_open_end(tmp_path):
    prog = _build(tmp_path, False, src=ADDRESS_TAKEN)
    s = scan_file(prog).surface
    ends = [o for o in s.open_ends if o.kind == "dlopen" and o.object == "prog"]
    assert len(ends) == 1 and "its argument is not read" in ends[0].detail and ends[0].function == "main", ends


def test_syscall_called_through_its_got_slot_has_its_number(tmp_path):
    # -fno-plt: `call *syscall@GOTPCREL(%rip)`, a GLOB_DAT slot; the number is read at the call like a stub's
    (tmp_path / "sc.c").write_text("#include <unistd.h>\n#include <sys/syscall.h>\n"
                                   "int main(void) { return syscall(SYS_getppid) < 0; }\n")
    subprocess.run(["gcc", "-O1", "-fno-plt", "-o", str(tmp_path / "sc"), str(tmp_path / "sc.c")], check=True)
    assert "getppid" in surface_recall.trace(str(tmp_path / "sc"), [], str(tmp_path))
    r = scan_file(str(tmp_path / "sc"))
    assert [(w.callee, w.number.values, w.number.status) for w in r.wrapper_calls] == [("syscall", [110], "resolved")]
    getppid = next(x for x in r.surface.syscalls if x.name == "getppid")
    assert getppid.path[-1].startswith("syscall 110 getppid: syscall() called at"), getppid.path


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
