"""The program surface (issue 11): the loader's closure checked against the loader's own tools (ldconfig -p, ldd),
soundness against strace on real Debian programs (benchmarks/surface_recall.py), the per-object cache, a sysroot
that never leaks to the host, and what the report says about what it cannot see."""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys

import pytest

from analyzer.program.load import load
from analyzer.run.pipeline import ScanOptions, scan_file
from analyzer.surface import ldcache
from analyzer.surface.closure import closure
from conftest import CORPUS, ROOT

sys.path.insert(0, str(ROOT / "benchmarks"))
import surface_recall  # noqa: E402

LS = "/usr/bin/ls"


def test_ld_so_cache_is_read_as_ldconfig_prints_it():
    if shutil.which("ldconfig") is None and not os.path.exists("/sbin/ldconfig"):
        pytest.fail("ldconfig is part of Debian's libc-bin: it should be here")
    out = subprocess.run([shutil.which("ldconfig") or "/sbin/ldconfig", "-p"], capture_output=True, text=True,
                         check=True).stdout
    want: dict = {}
    for line in out.splitlines()[1:]:
        m = re.match(r"\s*(\S+) \((.*)\) => (.*)$", line)
        if m:
            name, flags, path = m.groups()
            if "x32" not in flags:
                want.setdefault((name, 64 if "x86-64" in flags else 32), path)
    got = ldcache.read("/etc/ld.so.cache")
    assert len(got) > 50 and got == want


def test_not_a_cache_is_an_empty_one(tmp_path):
    (tmp_path / "c").write_bytes(b"glibc-ld.so.cache1.1" + b"\xff" * 40)
    assert ldcache.read(str(tmp_path / "c")) == {}
    assert ldcache.read(str(tmp_path / "missing")) == {}


def test_closure_is_what_ldd_loads():
    out = subprocess.run(["ldd", LS], capture_output=True, text=True, check=True).stdout
    want = {os.path.realpath(LS)}  # ldd lists what the program loads, not the program
    for line in out.splitlines():
        m = re.search(r"(/\S+) \(0x", line)
        if m:
            want.add(os.path.realpath(m.group(1)))
    cl = closure(load(LS), load)
    got = {os.path.realpath(o.path) for o in cl.objects}
    assert got == want
    assert [o.kind for o in cl.objects][0] == "program" and "interpreter" in [o.kind for o in cl.objects]
    assert not cl.missing


def test_sysroot_resolves_inside_the_root_only(tmp_path):
    """A container-like root with the program, its own ld.so and libc: every object comes from inside the root,
    and a library the root lacks is named, never taken from the host."""
    root = tmp_path / "root"
    lb = load(str(CORPUS / "bin/idioms_pie"))
    (root / "usr/bin").mkdir(parents=True)
    shutil.copy(CORPUS / "bin/idioms_pie", root / "usr/bin/prog")
    for lib in (lb.interpreter, "/lib/x86_64-linux-gnu/libc.so.6"):
        dst = root / os.path.realpath(lib).lstrip("/")
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(os.path.realpath(lib), dst)
        link = root / lib.lstrip("/")
        if not link.exists():
            link.parent.mkdir(parents=True, exist_ok=True)
            link.symlink_to("/" + os.path.realpath(lib).lstrip("/"))  # absolute inside the root, as in an image
    r = scan_file(str(root / "usr/bin/prog"), ScanOptions(sysroot=str(root)))
    paths = [o.path for o in r.surface.objects]
    assert len(paths) == 3 and all(os.path.realpath(p).startswith(str(root)) for p in paths), paths
    for p in root.rglob("libc.so.6"):
        p.unlink()
    r = scan_file(str(root / "usr/bin/prog"), ScanOptions(sysroot=str(root)))
    missing = [o for o in r.surface.open_ends if o.kind == "missing-library"]
    assert missing and "libc.so.6" in missing[0].detail
    assert all(os.path.realpath(o.path).startswith(str(root)) for o in r.surface.objects)


def _debian_like_root(root) -> None:
    """usr/bin/prog (a corpus program), its loader and libc in usr/lib, merged /usr (lib -> usr/lib), the loader
    reached through an absolute link, an os-release; and two links a host would resolve differently."""
    libdir = root / "usr/lib/x86_64-linux-gnu"
    libdir.mkdir(parents=True)
    (root / "usr/bin").mkdir(parents=True)
    (root / "etc").mkdir()
    (root / "etc/os-release").write_text('ID=debian\nVERSION_ID="12"\n')
    (root / "lib").symlink_to("usr/lib")
    (root / "lib64").mkdir()
    shutil.copy(CORPUS / "bin/idioms_pie", root / "usr/bin/prog")
    for name in ("ld-linux-x86-64.so.2", "libc.so.6"):
        shutil.copy(os.path.realpath(f"/lib/x86_64-linux-gnu/{name}"), libdir / name)
    (root / "lib64/ld-linux-x86-64.so.2").symlink_to("/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2")
    (root / "usr/bin/alias").symlink_to("/usr/bin/prog")  # inside the root: the same program
    (root / "usr/bin/sh").symlink_to("/bin/sh")  # missing in the root, present on the host


def test_sysroot_links_are_followed_inside_the_root(tmp_path):
    """A root laid out as Debian's images are: merged /usr (lib -> usr/lib, relative) and the loader reached
    through an absolute link (/lib64/ld-linux-x86-64.so.2 -> /lib/x86_64-linux-gnu/ld-linux-x86-64.so.2). The
    absolute target is the root's file, not the host's."""
    root = tmp_path / "root"
    _debian_like_root(root)
    r = scan_file(str(root / "usr/bin/prog"), ScanOptions(sysroot=str(root)))
    paths = {o.kind: o.path for o in r.surface.objects}
    assert set(paths) == {"program", "interpreter", "needed"}
    assert all(os.path.realpath(p).startswith(str(root) + "/") for p in paths.values()), paths
    assert not [o for o in r.surface.open_ends if o.kind == "missing-library"]


def test_a_root_filesystem_is_its_own_sysroot(tmp_path):
    """`sysscan ROOT` on an unpacked image: every ELF file in it, each program's libraries from the root, links
    never followed to the host (usr/bin/sh -> /bin/sh is not the host's shell)."""
    root = tmp_path / "rootfs"
    _debian_like_root(root)
    p = subprocess.run([sys.executable, "-m", "analyzer.cli", str(root), "-f", "json", "--no-cache"],
                       capture_output=True, text=True, timeout=600)
    assert p.returncode == 0, p.stderr
    reports = {os.path.relpath(r["binary"]["path"], root): r for r in json.loads(p.stdout)["reports"]}
    assert set(reports) == {"usr/bin/prog", "usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2",
                            "usr/lib/x86_64-linux-gnu/libc.so.6"}
    objects = reports["usr/bin/prog"]["surface"]["objects"]
    assert {o["kind"] for o in objects} == {"program", "interpreter", "needed"}
    assert all(os.path.realpath(o["path"]).startswith(str(root) + "/") for o in objects), objects
    other = subprocess.run([sys.executable, "-m", "analyzer.cli", str(root), str(CORPUS / "bin/idioms_pie")],
                           capture_output=True, text=True, timeout=600)
    assert other.returncode == 2 and "root filesystem" in other.stderr and other.stderr.count("\n") == 1


def test_in_root_is_a_chroot_walk(tmp_path):
    from analyzer.program.libraries import in_root

    root = tmp_path / "r"
    (root / "a/b").mkdir(parents=True)
    (root / "a/b/f").write_text("x")
    (root / "abs").symlink_to("/a/b")
    (root / "up").symlink_to("../../../../a")  # .. stops at the root
    (root / "loop").symlink_to("/loop")
    real = os.path.realpath(root)
    assert in_root(str(root), "/abs/f") == os.path.join(real, "a/b/f")
    assert in_root(str(root), "/up/b/f") == os.path.join(real, "a/b/f")
    assert in_root(str(root), "/a/b/../../abs/./f") == os.path.join(real, "a/b/f")
    assert not os.path.exists(in_root(str(root), "/loop/x"))
    assert in_root("/", "/etc/passwd") == "/etc/passwd" and in_root(str(root), "rel/x") == "rel/x"


def test_a_program_without_raw_sites_gets_its_surface_with_paths():
    r = scan_file(LS)
    assert r.sites == [] and r.surface is not None
    names = {s.name for s in r.surface.syscalls}
    assert {"openat", "getdents64", "write", "mmap", "rseq", "set_robust_list", "arch_prctl"} <= names
    getdents = next(s for s in r.surface.syscalls if s.name == "getdents64")
    assert getdents.path[-1].startswith("syscall 217 getdents64") and "libc.so.6" in getdents.path[-1]
    assert "[the entry point]" in getdents.path[0] or "[" in getdents.path[0]
    kinds = {o.kind for o in r.surface.objects}
    assert {"program", "interpreter", "needed"} <= kinds


def test_no_surface_leaves_the_raw_sites_as_they_were():
    on = scan_file(str(CORPUS / "bin/idioms_nopie"))
    off = scan_file(str(CORPUS / "bin/idioms_nopie"), ScanOptions(surface=False))
    assert off.surface is None and on.surface is not None
    assert [s.to_dict() if hasattr(s, "to_dict") else s for s in off.sites] == on.sites
    assert off.syscalls == on.syscalls


def test_library_summaries_are_cached_per_object(tmp_path, monkeypatch):
    from analyzer.surface import build

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    monkeypatch.delenv("SYSSCAN_NO_CACHE", raising=False)
    monkeypatch.setattr(build, "_MEMO", {})  # this process's summaries: what a new process has
    first = scan_file(str(CORPUS / "bin/idioms_pie"))
    entries = list((tmp_path / "sysscan" / "derived" / "surface-summary").rglob("*.json"))
    assert len(entries) == 4  # the program, libc.so.6, ld.so and libgcc_s.so.1 (glibc loads it to unwind)
    build._MEMO.clear()
    second = scan_file(str(CORPUS / "bin/idioms_pie"))  # from the disk cache
    assert second.surface == first.surface


def test_a_static_binary_gets_its_reachable_set():
    r = scan_file(str(CORPUS / "bin/wrappers_musl_nofde_stripped"))
    assert [o.kind for o in r.surface.objects] == ["program"]
    assert {s.name for s in r.surface.syscalls} <= {u.name for u in r.syscalls} | {"clock_gettime", "time",
                                                                                       "gettimeofday", "getcpu",
                                                                                       "clock_getres"}


def test_surface_json_is_in_the_schema(tmp_path):
    import jsonschema

    p = subprocess.run([sys.executable, "-m", "analyzer.cli", LS, "-f", "json", "--no-cache"], capture_output=True,
                       text=True, timeout=600)
    assert p.returncode == 0, p.stderr
    doc = json.loads(p.stdout)
    schema = json.loads((ROOT / "analyzer/schemas/report.schema.json").read_text())
    jsonschema.validate(doc, schema)
    assert doc["surface"]["syscalls"] and doc["surface"]["objects"][0]["kind"] == "program"


def test_bad_sysroot_is_a_usage_error(tmp_path):
    p = subprocess.run([sys.executable, "-m", "analyzer.cli", LS, "--sysroot", str(tmp_path / "nope")],
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == 2 and "--sysroot" in p.stderr and "Traceback" not in p.stderr


@pytest.mark.slow
def test_every_syscall_real_programs_make_is_in_their_surface(tmp_path, monkeypatch):
    """Soundness: Debian's programs under strace, several workloads each; 100 %, no exceptions list. With
    $SYSSCAN_I386_ROOT (benchmarks/fetch_i386.sh; .ci/run sets it) Debian's 32-bit busybox, coreutils and dash too:
    they enter the kernel through `call *%gs:0x10` (issue 16). User lookups are served by systemd-userdbd, as on a
    machine that runs systemd."""
    if shutil.which("strace") is None:
        pytest.fail("strace is not installed (.ci/run installs it)")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    monkeypatch.delenv("SYSSCAN_NO_CACHE", raising=False)
    results = surface_recall.run()
    names = {r.name for r in results}
    assert {"ls", "cat", "tar", "grep", "sed", "find", "hello_static", "go_hello", "i386_glibc_static"} <= names
    assert {"bash", "ps", "ip", "wget", "gpg", "file", "make", "getent"} <= names  # .ci/run installs them
    if os.environ.get("SYSSCAN_I386_ROOT"):
        assert {"busybox32", "cat32", "dash32", "sort32"} <= names
    misses = {r.name: sorted(r.missing) for r in results if r.missing}
    assert not misses, f"syscalls made under strace but missing from the surface: {misses}"
    assert all(r.observed for r in results)
    # systemd's user database answered `ls -l` about uid 4242 through libnss_systemd's varlink client and sd-event
    # loop, as on a machine that runs systemd (surface_recall.systemd_host; .ci/run installs systemd-userdbd)
    ls = next(r for r in results if r.name == "ls")
    assert {"connect", "epoll_wait", "timerfd_create"} <= ls.observed, sorted(ls.observed)


def test_32bit_vdso_entries_are_sites_of_the_surface():
    """i386 glibc's `call *%gs:0x10` sites are in the surface: getpid, which glibc makes only that way."""
    r = scan_file(str(CORPUS / "bin/i386_glibc_static"))
    assert {o.kind for o in r.surface.open_ends
            if not (o.kind == "dlopen" and o.function == "__gconv_find_shlib")} <= {"unknown-number", "execve"}
    getpid = [s for s in r.surface.syscalls if s.name == "getpid" and s.abi == "i386"]
    assert getpid and "call *%gs:0x10 at" in getpid[0].path[-1], getpid
    # the reachable sites, not every site of the file (32-bit code has a call graph too)
    assert 0 < r.surface.objects[0].reachable_sites < len(r.sites) == 110


def test_a_spent_time_budget_leaves_a_partial_surface_that_says_so():
    from analyzer.budget import Limits

    r = scan_file(LS, ScanOptions(), limits=Limits(timeout=0.001))
    assert any("the surface is partial" in m for m in r.incomplete)
    said = [o for o in r.surface.open_ends if o.kind in ("not-analysed", "missing-library")]
    assert said, "what the budget cut is named, not dropped"


def test_a_corrupt_init_array_size_does_not_span_the_address_space(tmp_path):
    """Found by the fuzzer (seed 27, case 216): DT_FINI_ARRAYSZ of 2**56 made the surface walk every slot of it
    until the time budget ran out. The array is clipped to the memory it lies in."""
    import lief

    b = lief.ELF.parse(str(CORPUS / "bin/idioms_nopie"))
    b.get(lief.ELF.DynamicEntry.TAG.FINI_ARRAYSZ).value = 1 << 56
    out = tmp_path / "bad"
    b.write(str(out))
    lb = load(str(out))
    assert lb.init_arrays and all(hi - lo < 1 << 20 for lo, hi in lb.init_arrays)
    from analyzer.budget import Limits

    r = scan_file(str(out), ScanOptions(), limits=Limits(timeout=60))
    assert r.surface is not None and r.surface.syscalls
    assert not any("time budget" in m for m in r.incomplete)


LIBC32_PATH = "/lib/i386-linux-gnu/libc.so.6"


def _nm_versions(path: str) -> list[tuple[str, str, bool, int]]:
    """(name, version, hidden, address) of every defined function symbol, as binutils' nm prints them."""
    out = subprocess.run(["nm", "-D", "--defined-only", path], capture_output=True, text=True, check=True).stdout
    got = []
    for line in out.splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[1] in "TWi" and "@" in parts[2]:
            hidden = "@@" not in parts[2]
            name, version = parts[2].replace("@@", "@").split("@", 1)
            got.append((name, version, hidden, int(parts[0], 16)))
    return got


@pytest.mark.parametrize("path", ["/lib/x86_64-linux-gnu/libc.so.6", LIBC32_PATH])
def test_exports_carry_symbol_versions_as_the_loader_binds_them(path):
    """A plain name is the default version (`name@@V`); every version is also `name@V`. libc's compatibility
    symbols come first in .dynsym (i386's getrlimit64@GLIBC_2.1 before getrlimit64@@GLIBC_2.2): binding a plain
    name to the first one would miss the default's syscalls."""
    if not os.path.exists(path):
        pytest.fail(f"{path} is not installed (.ci/run installs libc6:i386 through benchmarks/fetch_i386.sh)")
    lb = load(path)
    syms = _nm_versions(path)
    hidden = [s for s in syms if s[2]]
    assert hidden, "libc has compatibility symbols"
    for name, version, is_hidden, addr in syms:
        assert lb.exports[f"{name}@{version}"] == addr, (name, version)
        if not is_hidden:
            assert lb.exports[name] == addr, name
    compat_first = [n for n, _v, h, a in hidden if lb.exports[n] != a]
    assert compat_first, "some compatibility symbol has a default version elsewhere (the case this guards)"


def test_imports_carry_the_version_they_ask_for():
    lb = load("/usr/bin/ls")
    out = subprocess.run(["nm", "-D", "--undefined-only", "/usr/bin/ls"], capture_output=True, text=True).stdout
    want = {p.split("@")[0]: p.split("@")[-1] for line in out.splitlines() for p in line.split()[-1:] if "@" in p}
    got = {n: v for n, v in lb.import_versions.items() if n in want}
    assert got and got == {n: want[n] for n in got}


def test_32bit_reachability_is_modelled():
    """A 32-bit program's surface is what its entry points reach (GOT-relative and absolute address fields are
    edges), not every function of libc: syscall(SYS_getpid) and exit_group, not ptrace or reboot."""
    if not os.path.exists(LIBC32_PATH):
        pytest.fail(f"{LIBC32_PATH} is not installed (.ci/run installs libc6:i386 through benchmarks/fetch_i386.sh)")
    r = scan_file(str(CORPUS / "bin" / "i386_syscall_dyn"))
    names = {s.name for s in r.surface.syscalls if s.abi == "i386"}
    assert {"getpid", "exit_group", "write", "mmap2", "set_thread_area"} <= names
    assert not {"ptrace", "reboot", "mount", "init_module", "kexec_load"} & names
    assert not [s.path for s in r.surface.syscalls if "every function counts" in s.path[0]]
    libc_sites = {ref.name for s in scan_file(LIBC32_PATH, ScanOptions(surface=False)).sites for ref in s.syscalls}
    assert len(names) < len(libc_sites) / 2


def test_a_function_symbol_inside_another_is_reached_from_it():
    """i386 glibc's static __libc_start_main holds a sized local symbol `.L413` whose code sets up TLS: reached by
    running on from __libc_start_main, not by a call. (Cutting it lost set_thread_area and the rest, which every
    run makes.)"""
    r = scan_file(str(CORPUS / "bin" / "i386_glibc_static"))
    names = {s.name for s in r.surface.syscalls}
    assert {"set_thread_area", "set_tid_address", "set_robust_list", "rseq"} <= names
