"""Libraries glibc loads by itself (analyzer/surface/libcloads.py), checked against real runs: a program that looks
up a user /etc/passwd lacks runs libnss_systemd (Debian's nsswitch.conf: "passwd: files systemd") and makes its
syscalls — prctl from libcap's constructor, readlinkat, socket/connect to systemd's user database — which were
missing from the surface before it followed NSS. Programs built here with gcc; libnss-systemd is Debian's
(.ci/run installs it). A root with its own nsswitch.conf decides which modules are followed."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest

from analyzer.run.pipeline import ScanOptions, scan_file
from conftest import ROOT

sys.path.insert(0, str(ROOT / "benchmarks"))
import surface_recall  # noqa: E402

NSS_SYSTEMD = "/lib/x86_64-linux-gnu/libnss_systemd.so.2"
LOOKUP = r"""
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
int main(int argc, char **argv) {
    struct passwd *p = getpwuid(argc > 1 ? atoi(argv[1]) : 0);
    puts(p ? p->pw_name : "none");
    return 0;
}
"""
NO_LOOKUP = "#include <stdio.h>\nint main(void) { puts(\"hi\"); return 0; }\n"


@pytest.fixture(scope="module", autouse=True)
def _module():
    if not os.path.exists(NSS_SYSTEMD):
        pytest.fail(f"{NSS_SYSTEMD} is missing: install libnss-systemd (.ci/run does)")


def _build(tmp_path, name: str, src: str) -> str:
    c = tmp_path / f"{name}.c"
    c.write_text(src)
    subprocess.run(["gcc", "-O1", "-o", str(tmp_path / name), str(c)], check=True)
    return str(tmp_path / name)


def _objects(surface) -> dict[str, str]:
    return {os.path.basename(o.name): o.kind for o in surface.objects}


def test_a_user_lookup_runs_the_nss_module_and_has_its_syscalls(tmp_path):
    prog = _build(tmp_path, "lookup", LOOKUP)
    seen = surface_recall.trace(prog, ["4242"], str(tmp_path))  # no such user in /etc/passwd: systemd is asked
    assert {"prctl", "readlinkat"} <= seen, seen  # libcap's constructor; libnss_systemd itself
    s = scan_file(prog).surface
    names = {x.name for x in s.syscalls}
    assert seen <= names, sorted(seen - names)
    assert _objects(s).get("libnss_systemd.so.2") == "dlopen" and "libcap.so.2" in _objects(s)
    prctl = next(x for x in s.syscalls if x.name == "prctl")
    assert any("libcap.so.2" in step for step in prctl.path), prctl.path
    readlinkat = next(x for x in s.syscalls if x.name == "readlinkat")
    assert "glibc's NSS loads the services nsswitch.conf names" in readlinkat.path[0], readlinkat.path


def test_a_program_that_never_looks_anything_up_loads_no_module(tmp_path):
    s = scan_file(_build(tmp_path, "hello", NO_LOOKUP)).surface
    assert "libnss_systemd.so.2" not in _objects(s)
    assert not any(n.startswith("/etc/nsswitch.conf") for n in s.notes)


def _root(tmp_path, prog: str, nsswitch: str | None):
    """A root laid out as Debian's (merged /usr) with the program, Debian's ld.so, libc and libnss_systemd with
    what it needs, and its own nsswitch.conf (None: none)."""
    root = tmp_path / "root"
    libdir = root / "usr/lib/x86_64-linux-gnu"
    libdir.mkdir(parents=True)
    for name in ("ld-linux-x86-64.so.2", "libc.so.6", "libnss_systemd.so.2", "libcap.so.2", "libm.so.6"):
        shutil.copy(os.path.realpath(f"/lib/x86_64-linux-gnu/{name}"), libdir / name)
    (root / "lib").symlink_to("usr/lib")
    (root / "lib64").mkdir()
    (root / "lib64/ld-linux-x86-64.so.2").symlink_to("/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2")
    (root / "usr/bin").mkdir(parents=True)
    shutil.copy(prog, root / "usr/bin/prog")
    if nsswitch is not None:
        (root / "etc").mkdir()
        (root / "etc/nsswitch.conf").write_text(nsswitch)
    return str(root / "usr/bin/prog"), ScanOptions(sysroot=str(root))


@pytest.mark.parametrize("conf, loaded, missing", [
    ("passwd: files systemd\ngroup: files systemd\nhosts: files dns\n", True, []),
    ("# systemd only for groups, with an action\ngroup: files [SUCCESS=return] systemd\n", True, []),
    ("passwd: files\ngroup: files\nhosts: files dns\n", False, []),
    ("passwd: files ldap\n", False, ["ldap"]),
    (None, False, ["nis"]),  # glibc's defaults: files, dns, nis
])
def test_the_roots_nsswitch_conf_decides_which_modules(tmp_path, conf, loaded, missing):
    prog, options = _root(tmp_path, _build(tmp_path, "lookup", LOOKUP), conf)
    s = scan_file(prog, options).surface
    assert ("libnss_systemd.so.2" in _objects(s)) is loaded
    notes = [n for n in s.notes if "NSS service" in n]
    assert [n.split("NSS service ")[1].split()[0] for n in notes] == missing, notes
    assert all("is not installed, so glibc skips it" in n for n in notes)
    # the root has no libgcc_s: glibc cannot load it to unwind, so none of it runs (a note, not a gap)
    assert any(n.startswith("libgcc_s.so.1 is not installed: when __libc_unwind_link_get loads it") for n in s.notes)
    assert not [o for o in s.open_ends if o.kind == "missing-library"]


def test_iconv_modules_are_an_open_end_with_their_number(tmp_path):
    prog = _build(tmp_path, "conv", "#include <iconv.h>\n#include <stdio.h>\nint main(int c, char **v) {\n"
                  "  iconv_t t = iconv_open(c > 1 ? v[1] : \"UTF-8\", \"UTF-8\");\n  return t == (iconv_t)-1;\n}\n")
    s = scan_file(prog).surface
    ends = [o for o in s.open_ends if o.kind == "dlopen" and o.function == "__gconv_find_shlib"]
    assert len(ends) == 1 and "modules in /usr/lib/x86_64-linux-gnu/gconv" in ends[0].detail, ends
    count = int(ends[0].detail.split(" modules in ")[0].rsplit("(", 1)[1])
    assert count > 100  # Debian's libc6 ships some 250 gconv modules
    assert ends[0].path and "iconv_open" in " ".join(ends[0].path)
