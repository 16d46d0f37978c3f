"""Seccomp profiles from the surface (issue 12), proven by running real programs under them.

Each program's profile comes from sysscan's own scan; libseccomp (Debian's python3-seccomp, through
tests/seccomp_exec.py) loads it and execs the program; every workload's exit code, stdout and stderr must equal an
unconfined run's. A profile that makes a program fail is a bug in the surface or in the profile, never a test to
relax. Then the other side: what a profile leaves out is denied (EPERM, ENOSYS, SIGSYS), and the outputs parse as
the OCI runtime-spec schema, systemd and the security-profiles-operator read them.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from analyzer.render import seccomp as render
from analyzer.run.pipeline import ScanOptions, scan_file
from analyzer.seccomp import build_profile
from conftest import ROOT

sys.path.insert(0, str(ROOT / "benchmarks"))
import surface_recall  # noqa: E402

LOADER = ROOT / "tests/seccomp_exec.py"
SYSTEM_PY = "/usr/bin/python3"
SPEC = ROOT / "tests/data/runtime-spec"


def _have_libseccomp_python() -> bool:
    return subprocess.run([SYSTEM_PY, "-c", "import seccomp"], capture_output=True).returncode == 0


_LIBSECCOMP: list[bool] = []


def _need_libseccomp() -> None:
    if not _LIBSECCOMP:
        _LIBSECCOMP.append(_have_libseccomp_python())
    if not _LIBSECCOMP[0]:
        pytest.fail("python3-seccomp (Debian) is needed to load the profiles: .ci/run installs it")


_REPORTS: dict[str, object] = {}


def report(path: str):
    if path not in _REPORTS:
        _REPORTS[path] = scan_file(path, ScanOptions())
    return _REPORTS[path]


def profile_file(tmp: Path, paths: list[str], default: str = "errno") -> Path:
    p = build_profile([report(x) for x in paths], default)
    out = tmp / f"profile-{len(list(tmp.glob('profile-*')))}.json"
    out.write_text(render.render_oci(p))
    return out


def run(argv: list[str], cwd: str, profile: Path | None = None, stdin: bytes = b"") -> subprocess.CompletedProcess:
    if profile:
        _need_libseccomp()
    cmd = ([SYSTEM_PY, str(LOADER), str(profile)] if profile else []) + argv
    env = {"PATH": "/usr/bin:/bin", "LC_ALL": "C", "TZ": "UTC", "HOME": cwd}
    return subprocess.run(cmd, cwd=cwd, env=env, input=stdin, capture_output=True, timeout=120)


# program -> workloads (argv after the program). Outputs must be deterministic: no clock, no randomness.
def workloads(tmp: str) -> dict[str, tuple[str, list[list[str]]]]:
    f = f"{tmp}/input.txt"
    big = f"{tmp}/big.txt"
    progs = {
        "ls": ("/usr/bin/ls", [["-la", "/etc/apt"], ["-R", tmp], ["--color=always", "-l", "/usr/bin/ls"],
                               ["/nonexistent"]]),
        "cat": ("/usr/bin/cat", [[f], ["-n", f, f], ["/nonexistent"]]),
        "cp": ("/usr/bin/cp", [[f, f"{tmp}/copy.txt"], ["-a", f, f"{tmp}/copy2.txt"], ["-r", tmp + "/d", f"{tmp}/d2"]]),
        "date": ("/usr/bin/date", [["-u", "-d", "@0"], ["-d", "2020-01-01", "+%s"]]),
        "sort": ("/usr/bin/sort", [[f], ["-r", "-n", f], ["--parallel=2", "-S", "10M", big]]),
        "wc": ("/usr/bin/wc", [[f], ["-l", f, f]]),
        "tar": ("/usr/bin/tar", [["-cf", f"{tmp}/a.tar", "--mtime=@0", "-C", tmp, "input.txt"], ["-tf", f"{tmp}/a.tar"],
                                 ["-xf", f"{tmp}/a.tar", "-C", tmp + "/d"]]),
        "gzip": ("/usr/bin/gzip", [["-kfn", f], ["-dc", f + ".gz"], ["-l", f + ".gz"]]),
        "grep": ("/usr/bin/grep", [["-r", "line", tmp + "/d"], ["-c", "x", f], ["-P", "l.ne 1", f], ["-E", "(a|b)+", f]]),
        "sed": ("/usr/bin/sed", [["s/line/LINE/", f], ["-i.bak", "s/a/b/", f"{tmp}/copy.txt"], ["-n", "2p", f]]),
        "find": ("/usr/bin/find", [[tmp, "-name", "*.txt"], [tmp + "/d", "-type", "f"], [tmp, "-size", "+0"]]),
        "sqlite3": ("/usr/bin/sqlite3", [[f"{tmp}/db.sqlite", "create table t(a); insert into t values(1);"],
                                         [f"{tmp}/db.sqlite", "select * from t;"]]),
        "jq": ("/usr/bin/jq", [[".", f"{tmp}/in.json"], ["-c", ".a[] | . * 2", f"{tmp}/in.json"]]),
        "openssl": ("/usr/bin/openssl", [["sha256", f], ["enc", "-aes-256-cbc", "-pbkdf2", "-pass", "pass:x", "-S",
                                                          "0102030405060708", "-in", f, "-out", f"{tmp}/enc"]]),
        "diff": ("/usr/bin/diff", [[f, f"{tmp}/copy.txt"], ["-u", f, f]]),
        "xz": ("/usr/bin/xz", [["-kf", f"{tmp}/copy.txt"], ["-T2", "-kf", big]]),
        "dash": ("/usr/bin/dash", [["-c", "echo hi; x=$((1+2)); echo $x; read y < " + f + "; echo $y; cd /; pwd"]]),
        # static programs
        "busybox": (os.environ.get("SYSSCAN_BUSYBOX") or "", [["sh", "-c", "echo hi; echo $((6*7))"],
                                                               ["ls", tmp + "/d"], ["cp", f, f"{tmp}/bb.txt"],
                                                               ["sort", f], ["sha256sum", f]]),
        "gofmt": (os.environ.get("SYSSCAN_GOFMT") or "", [["-l", tmp], ["-d", f"{tmp}/x.go"]]),
        "hello_static": (str(ROOT / "corpus/bin/hello_static"), [[], ["a", "b"]]),
        "go_hello": (str(ROOT / "corpus/bin/go_hello"), [[]]),
    }
    root = os.environ.get("SYSSCAN_I386_ROOT")
    if root:  # Debian's 32-bit programs: the profile admits the x86 architecture
        progs.update({
            "busybox32": (f"{root}/bin/busybox", [["sh", "-c", "echo hi; echo $((6*7))"], ["ls", tmp + "/d"],
                                                  ["sort", f]]),
            "cat32": (f"{root}/bin/cat", [[f], ["-n", f, f], ["/nonexistent"]]),
            "sort32": (f"{root}/usr/bin/sort", [[f], ["--parallel=2", "-S", "10M", big]]),
            "dash32": (f"{root}/bin/dash", [["-c", "echo hi; x=$((1+2)); echo $x > " + tmp + "/dash.out"]]),
        })
    return progs


def prepare(tmp: str) -> None:
    surface_recall.prepare(tmp)
    Path(tmp, "big.txt").write_text("".join(f"{(i * 7919) % 100003}\n" for i in range(150000)))


PROGRAMS = sorted(workloads("/t"))


@pytest.mark.parametrize("name", PROGRAMS)
def test_program_runs_under_its_profile_as_unconfined(name, tmp_path):
    path, runs = workloads("/t")[name]
    if not path or not os.path.exists(path):
        pytest.skip(f"{name}: not on this machine ({path or 'its variable is not set'}; .ci/run provides it)")
    profile = profile_file(tmp_path, [path])
    free, jail = tmp_path / "free", tmp_path / "jail"
    outcomes = []
    for where, prof in ((free, None), (jail, profile)):
        where.mkdir()
        prepare(str(where))
        outcomes.append([run([path, *argv], str(where), prof) for argv in workloads(str(where))[name][1]])
    for argv, a, b in zip(runs, *outcomes):
        norm = (lambda s, d: s.replace(str(d).encode(), b"/T"))
        assert b.returncode == a.returncode, (name, argv, a.returncode, b.returncode, b.stderr[-400:])
        assert norm(b.stdout, jail) == norm(a.stdout, free), (name, argv)
        assert norm(b.stderr, jail) == norm(a.stderr, free), (name, argv, b.stderr[-400:])


def test_union_profile_runs_each_program(tmp_path):
    """One profile for several programs (a container's): each runs under it as unconfined."""
    progs = ["/usr/bin/ls", "/usr/bin/cat", "/usr/bin/wc"]
    profile = profile_file(tmp_path, progs)
    prepare(str(tmp_path))
    for argv in (["/usr/bin/ls", "-la", str(tmp_path)], ["/usr/bin/cat", f"{tmp_path}/input.txt"],
                 ["/usr/bin/wc", "-l", f"{tmp_path}/input.txt"]):
        a, b = run(argv, str(tmp_path)), run(argv, str(tmp_path), profile)
        assert (b.returncode, b.stdout, b.stderr) == (a.returncode, a.stdout, a.stderr), argv


def _names(doc: dict, action: str = "SCMP_ACT_ALLOW") -> set[str]:
    return {n for e in doc["syscalls"] if e["action"] == action for n in e["names"]}


def test_a_syscall_outside_the_surface_is_denied(tmp_path):
    """`ln -s` under ls's profile: ls never makes symlink/symlinkat, so the profile denies them — EPERM by default,
    SIGSYS with --seccomp-default kill — and the link is not made."""
    ls = "/usr/bin/ls"
    doc = json.loads(render.render_oci(build_profile([report(ls)])))
    assert not _names(doc) & {"symlink", "symlinkat"}
    target = tmp_path / "link"
    r = run(["/usr/bin/ln", "-s", "x", str(target)], str(tmp_path), profile_file(tmp_path, [ls]))
    assert r.returncode == 1 and not os.path.lexists(target)
    assert b"failed to create symbolic link" in r.stderr and b"Operation not permitted" in r.stderr, r.stderr
    r = run(["/usr/bin/ln", "-s", "x", str(target)], str(tmp_path), profile_file(tmp_path, [ls], default="kill"))
    assert r.returncode == -signal.SIGSYS and not os.path.lexists(target)
    r = run(["/usr/bin/ls", str(tmp_path)], str(tmp_path), profile_file(tmp_path, [ls], default="kill"))
    assert r.returncode == 0  # and ls itself still runs under the killing profile
    assert run(["/usr/bin/ln", "-s", "x", str(target)], str(tmp_path)).returncode == 0  # unconfined it works


@pytest.mark.skipif(shutil.which("strace") is None, reason="strace is installed by .ci/run")
def test_clone3_gets_enosys_and_glibc_falls_back_to_clone(tmp_path):
    sort = "/usr/bin/sort"
    p = build_profile([report(sort)])
    rules = {r.name: r for r in p.rules}
    assert rules["clone"].action == "allow" and rules["clone3"].action == "errno" and rules["clone3"].errno == 38
    assert rules["clone3"].binaries == [sort]  # it is in sort's surface: answered, not silently dropped
    prepare(str(tmp_path))
    prof = profile_file(tmp_path, [sort])
    out = subprocess.run(["strace", "-f", "-e", "trace=clone,clone3", SYSTEM_PY, str(LOADER), str(prof), sort,
                          "--parallel=2", "-S", "10M", f"{tmp_path}/big.txt"], capture_output=True, timeout=120)
    assert out.returncode == 0
    trace = out.stderr.decode()
    assert re.search(r"clone3\(.*= -1 ENOSYS", trace) and re.search(r"\bclone\(.*CLONE_THREAD", trace), trace[-800:]


def test_profile_shape_and_details():
    ls = build_profile([report("/usr/bin/ls")])
    doc = render.oci(ls)
    assert doc["defaultAction"] == "SCMP_ACT_ERRNO" and doc["defaultErrnoRet"] == 1
    assert doc["architectures"] == ["SCMP_ARCH_X86_64"]  # no x86, no x32: ls makes no 32-bit syscall
    allowed = _names(doc)
    # the loader's and libc's startup syscalls come from the analysis of ld.so, not from a list
    assert {"execve", "brk", "mmap", "mprotect", "arch_prctl", "set_tid_address", "set_robust_list", "rseq",
            "prlimit64", "newfstatat", "openat", "read", "close", "exit_group"} <= allowed
    assert len(allowed) < 120  # Docker's default allows ~300
    enosys = {n for e in doc["syscalls"] if e.get("errnoRet") == 38 for n in e["names"]}
    top = max(r.nr for r in ls.allowed())
    assert enosys and all(r.nr > top for r in ls.rules if r.action == "errno" and r.name != "clone3")
    for e in doc["syscalls"]:
        assert len(e["names"]) == 1 and e["comment"]
    text = render.render_oci(ls)
    assert text == render.render_oci(build_profile([report("/usr/bin/ls")]))  # deterministic
    assert report("/usr/bin/ls").binary.sha256 in text


def test_i386_program_gets_the_x86_architecture():
    root = os.environ.get("SYSSCAN_I386_ROOT")
    if not root:
        pytest.skip("SYSSCAN_I386_ROOT: benchmarks/fetch_i386.sh (.ci/run sets it)")
    doc = render.oci(build_profile([report(f"{root}/bin/cat")]))
    assert doc["architectures"] == ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86"]
    assert "execve" in _names(doc)


def test_a_report_without_surface_is_refused():
    r = scan_file("/usr/bin/ls", ScanOptions(surface=False))
    with pytest.raises(ValueError, match="no surface"):
        build_profile([r])


def _systemd_known() -> set[str]:
    out = subprocess.run(["systemd-analyze", "syscall-filter", "@known"], capture_output=True, text=True, check=True)
    return {line.strip() for line in out.stdout.splitlines() if line.startswith("    ") and not
            line.strip().startswith(("#", "@"))}


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze is installed by .ci/run")
def test_systemd_fragment_is_read_by_systemd(tmp_path):
    """systemd's own parser loads the fragment in a unit (`systemd-analyze verify`), and every syscall name it
    lists is one systemd knows (its @known set): an unknown one would be dropped with a warning, not denied."""
    for paths in (["/usr/bin/ls"], ["/usr/bin/ls", "/usr/bin/sort"]):
        text = render.render_systemd(build_profile([report(p) for p in paths]))
        unit = tmp_path / "sysscan-check.service"
        unit.write_text("[Unit]\nDescription=sysscan profile check\n" +
                        text.replace("[Service]\n", f"[Service]\nExecStart={paths[0]}\n"))
        r = subprocess.run(["systemd-analyze", "verify", "--man=no", str(unit)], capture_output=True, text=True,
                           env={**os.environ, "SYSTEMD_LOG_LEVEL": "debug"})
        assert r.returncode == 0, r.stderr[-1000:]
        named = {n for line in text.splitlines() if line.startswith("SystemCallFilter=")
                 for n in line.split("=", 1)[1].split()}
        assert "clone3" in named or "sort" not in paths[-1]  # systemd cannot answer ENOSYS in an allow-list
        assert named and named <= _systemd_known(), named - _systemd_known()
        for n in named:
            assert f"Failed to parse system call, ignoring: {n}\n" not in r.stderr
        assert "SystemCallArchitectures=native" in text and "SystemCallErrorNumber=EPERM" in text


def test_k8s_resource():
    import yaml

    text = render.render_k8s(build_profile([report("/usr/bin/ls")]), "ls")
    doc = yaml.safe_load(text)
    assert doc["apiVersion"] == "security-profiles-operator.x-k8s.io/v1beta1" and doc["kind"] == "SeccompProfile"
    assert re.fullmatch(r"[a-z0-9]([-a-z0-9.]*[a-z0-9])?", doc["metadata"]["name"])
    assert doc["metadata"]["annotations"]["sysscan/inputs"].startswith("/usr/bin/ls sha256:")
    spec = doc["spec"]
    assert spec["defaultAction"] == "SCMP_ACT_ERRNO" and spec["architectures"] == ["SCMP_ARCH_X86_64"]
    assert set(spec) <= {"defaultAction", "architectures", "syscalls", "baseProfileName", "flags"}  # the CRD's
    assert all(set(e) <= {"names", "action", "errnoRet", "args"} for e in spec["syscalls"])  # fields only
    assert _names(spec) == _names(render.oci(build_profile([report("/usr/bin/ls")])))
    assert render.k8s_name("My_Prog.v2!") == "my-prog.v2"


def cli(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "SYSSCAN_DEBUG"}
    return subprocess.run([sys.executable, "-m", "analyzer.cli", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=600, env=env)


def test_cli_many_inputs_give_the_union_and_each_binary_its_own(tmp_path):
    out = tmp_path / "profiles"
    r = cli("/usr/bin/ls", "/usr/bin/cat", "-f", "seccomp,systemd,k8s", "-o", f"{out}/", "-q")
    assert r.returncode == 0, r.stderr
    assert sorted(p.name for p in out.iterdir()) == sorted(f"{n}.seccomp.{x}" for n in ("cat", "ls", "sysscan")
                                                           for x in ("json", "conf", "yaml"))
    union, ls, cat = (json.loads((out / f"{n}.seccomp.json").read_text()) for n in ("sysscan", "ls", "cat"))
    assert _names(union) == _names(ls) | _names(cat) and _names(cat) < _names(union)
    assert [line for line in union["comment"] if line.startswith("input ")] == [
        f"input /usr/bin/{n} sha256 {report(f'/usr/bin/{n}').binary.sha256}" for n in ("cat", "ls")]


def test_cli_default_action_and_saved_report(tmp_path):
    saved = tmp_path / "ls.json"
    assert cli("/usr/bin/ls", "-f", "json", "-o", str(saved), "-q").returncode == 0
    r = cli("render", str(saved), "-f", "seccomp", "--seccomp-default", "log")
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert doc["defaultAction"] == "SCMP_ACT_LOG" and "defaultErrnoRet" not in doc
    assert _names(doc) == _names(render.oci(build_profile([report("/usr/bin/ls")])))


def test_cli_refuses_a_profile_without_the_surface():
    r = cli("/usr/bin/ls", "--no-surface", "-f", "seccomp")
    assert r.returncode == 2 and r.stdout == "" and len(r.stderr.strip().splitlines()) == 1
    assert "no surface" in r.stderr and "Traceback" not in r.stderr


def _spec_validator():
    """The OCI runtime-spec's `linux.seccomp` schema (tests/data/runtime-spec, with its source and licence), its
    references to defs.json and defs-linux.json resolved locally."""
    import jsonschema
    from referencing import Registry, Resource
    from referencing.jsonschema import DRAFT4

    docs = {n: json.loads((SPEC / n).read_text()) for n in ("config-linux.json", "defs-linux.json", "defs.json")}
    registry = Registry().with_resources((n, Resource.from_contents(d, default_specification=DRAFT4))
                                         for n, d in docs.items())
    schema = {"$ref": "config-linux.json#/linux/properties/seccomp"}
    return jsonschema.Draft4Validator(schema, registry=registry)


def test_oci_profile_validates_against_the_runtime_spec_schema():
    v = _spec_validator()
    assert list(v.iter_errors({"defaultAction": "SCMP_ACT_BOGUS"}))  # the schema does check
    assert list(v.iter_errors({"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{"names": [], "action": "x"}]}))
    root = os.environ.get("SYSSCAN_I386_ROOT")
    inputs = [["/usr/bin/ls"], ["/usr/bin/sort", "/usr/bin/cat"], [str(ROOT / "corpus/bin/hello_static")]]
    inputs += [[f"{root}/bin/cat"]] if root else []
    for paths in inputs:
        for default in ("errno", "kill", "log"):
            doc = json.loads(render.render_oci(build_profile([report(p) for p in paths], default)))
            errors = [e.message for e in v.iter_errors(doc)]
            assert not errors, (paths, default, errors[:3])
    filtered = json.loads(render.render_oci(build_profile([report(str(ROOT / "corpus/bin/hello_static"))])))
    assert any("args" in e for e in filtered["syscalls"])  # the argument filters are in what was validated


def test_systemd_comments_cannot_become_directives():
    """A saved report is anyone's input: a name with a line break stays inside its comment line."""
    import copy

    rep = copy.deepcopy(report("/usr/bin/ls"))
    rep.surface.syscalls[0].path[0] = "evil\nExecStartPre=/bin/sh -c id\n[Service]"
    text = render.render_systemd(build_profile([rep]))
    assert not any(line.startswith("ExecStartPre") for line in text.splitlines())
    assert text.count("[Service]\n") == 1


SOCKET_C = r"""
#include <stdio.h>
#include <sys/socket.h>
#include <errno.h>
#include <string.h>
int main(void) {
    int fd = socket(FAMILY, SOCK_STREAM, 0);
    if (fd < 0) { printf("socket: %s\n", strerror(errno)); return 3; }
    printf("socket ok\n");
    return 0;
}
"""


@pytest.mark.skipif(shutil.which("gcc") is None, reason="gcc builds the two twins")
def test_an_argument_filter_denies_another_value(tmp_path):
    """Twins that differ only in socket's family: the AF_UNIX one's profile pins the family (known at the site in
    its own code; socket() is inlined into no library here: a static program), runs it, and denies the AF_INET
    twin's socket with EPERM — the rest of the twin's run is the same code, allowed alike."""
    src = tmp_path / "s.c"
    src.write_text(SOCKET_C)
    for fam in ("AF_UNIX", "AF_INET"):
        subprocess.run(["gcc", "-O1", "-static", f"-DFAMILY={fam}", "-o", str(tmp_path / fam), str(src)], check=True)
    p = build_profile([report(str(tmp_path / "AF_UNIX"))])
    sock = next(r for r in p.rules if r.name == "socket")
    assert [[(c.index, c.op, c.value, c.value_two) for c in alt] for alt in sock.alternatives] == [
        [(0, "masked_eq", 0xFFFFFFFF, 1)]], sock.args_note
    prof = profile_file(tmp_path, [str(tmp_path / "AF_UNIX")])
    ok = run([str(tmp_path / "AF_UNIX")], str(tmp_path), prof)
    assert (ok.returncode, ok.stdout) == (0, b"socket ok\n")
    denied = run([str(tmp_path / "AF_INET")], str(tmp_path), prof)
    assert (denied.returncode, denied.stdout) == (3, b"socket: Operation not permitted\n")
    assert run([str(tmp_path / "AF_INET")], str(tmp_path)).returncode == 0  # unconfined it works


def test_dynamic_programs_get_argument_filters_from_calls_into_libc():
    """cp's ioctl is made in libc.so.6, from cp's own calls of ioctl() (FICLONE, 0x40049409, is a request only cp
    passes: objdump shows it at cp's calls) and libc's own (TCGETS): pinned across the two objects. curl's
    libraries look functions up with dlsym, so nothing exported is pinned there, and the reason says so; so does
    tar, whose user lookups load libnss_systemd, which calls dlsym too."""
    cp = report("/usr/bin/cp")
    ioctl = next(s for s in cp.surface.syscalls if s.name == "ioctl")
    assert ioctl.objects == ["libc.so.6"] and ioctl.args[0].status == "resolved"
    assert {0x40049409, 0x5401} <= set(ioctl.args[0].values)
    tar = report("/usr/bin/tar")
    ioctl = next(s for s in tar.surface.syscalls if s.name == "ioctl")
    assert ioctl.args[0].status == "unresolved" and "libnss_systemd.so.2 looks functions up by name (dlsym)" in \
        ioctl.args[0].reason
    curl = report("/usr/bin/curl")
    sp = next(s for s in curl.surface.syscalls if s.name == "socketpair")
    assert sp.args[0].status == "unresolved" and "dlsym" in sp.args[0].reason


def test_openssl_subcommand_reached_through_its_command_table(tmp_path):
    """openssl finds `s_client` by walking its table of commands from the start; the surface once cut that table
    where code took the address of its first name field, and the profile then denied bind/setsockopt. Under the
    profile the client now fails exactly as unconfined: connection refused, not a denied syscall."""
    argv = ["/usr/bin/openssl", "s_client", "-connect", "127.0.0.1:9"]
    a, b = run(argv, str(tmp_path)), run(argv, str(tmp_path), profile_file(tmp_path, ["/usr/bin/openssl"]))
    assert b.returncode == a.returncode != 0
    assert b"Connection refused" in a.stderr and b"Connection refused" in b.stderr, b.stderr[-600:]
    assert b"Operation not permitted" not in b.stderr


POINTER_C = r"""
#include <stdio.h>
#include <sys/socket.h>
int (*volatile make)(int, int, int) = socket;
int main(int argc, char **argv) {
    int a = socket(AF_UNIX, SOCK_STREAM, 0);
    int b = argc > 1 ? make(AF_INET, SOCK_STREAM, 0) : -1;
    printf("%d %d\n", a >= 0, b >= 0);
    return 0;
}
"""


@pytest.mark.skipif(shutil.which("gcc") is None, reason="gcc builds the program")
def test_a_function_called_through_a_pointer_is_not_pinned(tmp_path):
    """socket(AF_UNIX) called directly and socket(AF_INET) through a pointer: the family is not pinned (the
    pointer call's value is not read), so the profile allows socket whole, and both calls work under it."""
    src = tmp_path / "p.c"
    src.write_text(POINTER_C)
    exe = tmp_path / "pointer"
    subprocess.run(["gcc", "-O1", "-o", str(exe), str(src)], check=True)
    rep = report(str(exe))
    sock = next(s for s in rep.surface.syscalls if s.name == "socket")
    assert sock.args[0].status == "unresolved" and sock.args[0].reason
    r = run([str(exe), "x"], str(tmp_path), profile_file(tmp_path, [str(exe)]))
    assert (r.returncode, r.stdout) == (0, b"1 1\n"), r.stderr


def test_log_default_answers_nothing_with_an_errno():
    doc = render.oci(build_profile([report("/usr/bin/sort")], "log"))
    assert doc["defaultAction"] == "SCMP_ACT_LOG"
    assert all(e["action"] == "SCMP_ACT_ALLOW" for e in doc["syscalls"])  # clone3 and newer ones are logged too
    assert "clone3" in _names(doc)


def _bundle(tmp: Path, programs: list[str]) -> Path:
    """An OCI bundle: the programs and the libraries ldd names, copied into a rootfs, and runc's default spec."""
    root = tmp / "rootfs"
    for prog in programs:
        libs = subprocess.run(["ldd", prog], capture_output=True, text=True).stdout
        for f in [prog, *re.findall(r"(/\S+) \(0x", libs), *re.findall(r"^\s*(/\S+) \(0x", libs, re.M)]:
            dst = root / f.lstrip("/")
            dst.parent.mkdir(parents=True, exist_ok=True)
            if not dst.exists():
                shutil.copy(os.path.realpath(f), dst)
    for d in ("proc", "dev", "sys", "data"):
        (root / d).mkdir(parents=True, exist_ok=True)
    prepare(str(root / "data"))
    subprocess.run(["runc", "spec"], cwd=tmp, check=True)
    return tmp


def runc(bundle: Path, argv: list[str], profile: dict | None) -> subprocess.CompletedProcess:
    cfg = json.loads((bundle / "config.json").read_text())
    cfg["process"]["terminal"] = False
    cfg["process"]["args"] = argv
    cfg["linux"].pop("seccomp", None)
    if profile is not None:
        cfg["linux"]["seccomp"] = profile
    (bundle / "config.json").write_text(json.dumps(cfg))
    name = f"sysscan-test-{os.getpid()}-{len(list(bundle.glob('run-*')))}"
    (bundle / f"run-{name}").touch()
    return subprocess.run(["runc", "run", name], cwd=bundle, capture_output=True, timeout=120)


@pytest.mark.skipif(os.geteuid() != 0, reason="runc creates containers as root (CI runs as root)")
def test_programs_run_in_runc_under_their_profiles(tmp_path):
    """The profile as Docker and Kubernetes hand it over: runc loads it into a real container, its init runs under
    it until it execs the program. Each run equals the same container without the profile; outside the surface,
    `ln -s` still gets EPERM, and `sort --parallel` gets ENOSYS for clone3 and falls back to clone."""
    if shutil.which("runc") is None:
        pytest.fail("runc is installed by .ci/run")
    progs = ["/usr/bin/ls", "/usr/bin/cat", "/usr/bin/sort", "/usr/bin/ln"]
    bundle = _bundle(tmp_path, progs + ([os.environ["SYSSCAN_BUSYBOX"]] if os.environ.get("SYSSCAN_BUSYBOX") else []))
    runs = [["/usr/bin/ls", "-la", "/data"], ["/usr/bin/cat", "-n", "/data/input.txt"],
            ["/usr/bin/sort", "--parallel=2", "-S", "10M", "/data/big.txt"]]
    if os.environ.get("SYSSCAN_BUSYBOX"):
        runs.append([os.environ["SYSSCAN_BUSYBOX"], "sh", "-c", "echo hi; ls /data; echo $((6*7))"])
    for argv in runs:
        prof = render.oci(build_profile([report(argv[0])]))
        a, b = runc(bundle, argv, None), runc(bundle, argv, prof)
        assert (b.returncode, b.stdout, b.stderr) == (a.returncode, a.stdout, a.stderr), (argv, b.stderr[-500:])
        assert a.returncode == 0 and a.stdout
    ls_profile = render.oci(build_profile([report("/usr/bin/ls")]))
    denied = runc(bundle, ["/usr/bin/ln", "-s", "x", "/dev/shm/link"], ls_profile)
    assert denied.returncode == 1 and b"Operation not permitted" in denied.stderr, denied.stderr
    free = runc(bundle, ["/usr/bin/ln", "-s", "x", "/dev/shm/link"], None)
    assert free.returncode == 0, free.stderr
    bare = render.oci(build_profile([report("/usr/bin/ls")], runtime=None))
    assert runc(bundle, ["/usr/bin/ls", "/data"], bare).returncode != 0  # runc's own syscalls are needed
