#!/usr/bin/env python3
"""Soundness of the program surface against reality: real Debian programs run under strace with several workloads
each; every syscall the process itself makes (its threads and forks, not the programs it execs) must be in its
surface. Tightness beside it: the surface size per program and the mean.

    .venv/bin/python benchmarks/surface_recall.py [--only NAME ...] [--json OUT] [--no-debug-files]

tests/test_surface_strace.py runs the same harness in CI. Each program is analysed with `scan_file` (the surface
on, the per-object cache in a private directory shared across programs, as on a user's machine).
"""
from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

PY = "/usr/bin/python3" if os.path.exists("/usr/bin/python3") else "python3"


def workloads(tmp: str) -> dict[str, tuple[str, list[list[str]]]]:
    """program name -> (path, [argv after the program]) — each argv one run; files under `tmp`."""
    f = f"{tmp}/input.txt"
    return {
        "ls": ("/usr/bin/ls", [["-la", "/etc"], ["-R", tmp], ["--color=always", "-l", "/usr/bin/ls"], ["/nonexistent"],
                               # a file whose owner /etc/passwd lacks: NSS asks the next service (libnss_systemd)
                               ["-l", f"{tmp}/d"]]),
        "cat": ("/usr/bin/cat", [[f], ["-n", f, f], ["/nonexistent"]]),
        "cp": ("/usr/bin/cp", [[f, f"{tmp}/copy.txt"], ["-a", f, f"{tmp}/copy2.txt"], ["-r", tmp + "/d", f"{tmp}/d2"]]),
        "date": ("/usr/bin/date", [[], ["-u", "+%s"], ["-d", "2020-01-01"]]),
        "sort": ("/usr/bin/sort", [[f], ["-r", "-n", f], ["--parallel=2", "-S", "1M", f]]),
        "wc": ("/usr/bin/wc", [[f], ["-l", f, f]]),
        "tar": ("/usr/bin/tar", [["-cf", f"{tmp}/a.tar", "-C", tmp, "input.txt"], ["-tvf", f"{tmp}/a.tar"],
                                 ["-xf", f"{tmp}/a.tar", "-C", tmp + "/d"]]),
        "gzip": ("/usr/bin/gzip", [["-kf", f], ["-dc", f + ".gz"], ["-l", f + ".gz"]]),
        "grep": ("/usr/bin/grep", [["-r", "line", tmp], ["-c", "x", f], ["-P", "l.ne", f], ["-E", "(a|b)+", f]]),
        "sed": ("/usr/bin/sed", [["s/line/LINE/", f], ["-i.bak", "s/a/b/", f"{tmp}/copy.txt"], ["-n", "2p", f]]),
        "find": ("/usr/bin/find", [[tmp, "-name", "*.txt"], [tmp, "-type", "f", "-newer", f], [tmp, "-size", "+0"]]),
        "curl": ("/usr/bin/curl", [["-s", f"file://{f}"], ["-s", "-o", f"{tmp}/curl.out", f"file://{f}"]]),
        "openssl": ("/usr/bin/openssl", [["sha256", f], ["rand", "-hex", "16"], ["enc", "-aes-256-cbc", "-pbkdf2",
                                                                                  "-pass", "pass:x", "-in", f,
                                                                                  "-out", f"{tmp}/enc"],
                                         # a command reached through the program's table of commands, walked
                                         # from its start (issue 12: the table's second chunk was cut off)
                                         ["s_client", "-connect", "127.0.0.1:9"]]),
        "ssh-keygen": ("/usr/bin/ssh-keygen", [["-q", "-t", "ed25519", "-N", "", "-f", f"{tmp}/key{os.getpid()}"],
                                               ["-l", "-f", f"{tmp}/key{os.getpid()}.pub"]]),
        "sqlite3": ("/usr/bin/sqlite3", [[f"{tmp}/db.sqlite", "create table t(a); insert into t values(1);"],
                                         [f"{tmp}/db.sqlite", "select * from t;"]]),
        "jq": ("/usr/bin/jq", [[".", f"{tmp}/in.json"], ["-c", ".a[] | . * 2", f"{tmp}/in.json"]]),
        "perl": ("/usr/bin/perl", [["-e", "print 1+1"], ["-ne", "print if /line/", f]]),
        "python3": (os.path.realpath(PY), [["-c", "print(1)"], ["-c", "import json, os; print(os.listdir('.'))"]]),
        "git": ("/usr/bin/git", [["--version"], ["init", "-q", f"{tmp}/repo"], ["-C", f"{tmp}/repo", "status"]]),
        "xz": ("/usr/bin/xz", [["-kf", f"{tmp}/copy.txt"], ["-T2", "-kf", f]]),
        "diff": ("/usr/bin/diff", [[f, f"{tmp}/copy.txt"], ["-u", f, f]]),
        # more of Debian's own (third session of issue 11): a shell, an awk, /proc readers, netlink, a downloader,
        # crypto, a pager, libmagic, make, compressors, NSS lookups; a program not installed is left out
        "bash": ("/usr/bin/bash", [["-c", f"echo hi; x=$((1+2)); echo $x > {tmp}/b.out; read y < {f}"],
                                   ["-c", "cd /; pwd; ulimit -n; umask; trap 'echo t' EXIT; (echo sub); wait"],
                                   ["--norc", "-c", "for i in 1 2; do echo $i; done | cat > /dev/null"]]),
        "mawk": ("/usr/bin/mawk", [["{ s += NF } END { print s }", f], ["/line 1/ { print $2 }", f]]),
        "ps": ("/usr/bin/ps", [["aux"], ["-ef"], ["-o", "pid,user,comm", "-p", "1"]]),
        "ip": ("/usr/sbin/ip", [["addr"], ["route"], ["-j", "link"]]),
        "ss": ("/usr/bin/ss", [["-tan"], ["-xl"]]),
        "wget": ("/usr/bin/wget", [["-q", "-O", "-", "http://127.0.0.1:9/"], ["--version"]]),
        "gpg": ("/usr/bin/gpg", [["--homedir", f"{tmp}/gnupg", "--batch", "--list-keys"],
                                 ["--homedir", f"{tmp}/gnupg", "--print-md", "SHA256", f]]),
        "less": ("/usr/bin/less", [["-F", f], [f]]),
        "file": ("/usr/bin/file", [[f], ["-i", "/usr/bin/ls"], ["-z", f]]),
        "make": ("/usr/bin/make", [["-C", tmp, "-n"], ["-C", tmp, "-f", "Makefile", "out.txt"]]),
        "zstd": ("/usr/bin/zstd", [["-qf", f], ["-qdc", f + ".zst"], ["-T2", "-qf", "-o", f"{tmp}/t.zst", f]]),
        "bzip2": ("/usr/bin/bzip2", [["-kf", f], ["-tv", f + ".bz2"]]),
        "stat": ("/usr/bin/stat", [[f], ["-f", "/"], ["-c", "%U %G", f"{tmp}/d/x"]]),
        "id": ("/usr/bin/id", [[], ["4242"], ["-Gn", "root"]]),
        "getent": ("/usr/bin/getent", [["passwd", "root"], ["passwd", "4242"], ["group", "0"],
                                       ["hosts", "localhost"], ["services", "ssh"]]),
        "du": ("/usr/bin/du", [["-sh", tmp], ["-a", tmp]]),
        "df": ("/usr/bin/df", [[], ["-h", "/"]]),
        "xargs": ("/usr/bin/xargs", [["-a", f"{tmp}/copy.txt", "echo"]]),
        # static programs: the reachable set, not every site in the file
        "busybox": (os.environ.get("SYSSCAN_BUSYBOX", "/bin/busybox"),
                    [["sh", "-c", "echo hi; ls / >/dev/null; cat " + f + " | wc -l"], ["ls", "-l", tmp],
                     ["cp", f, f"{tmp}/bb.txt"], ["sort", f], ["date"]]),
        "gofmt": (os.environ.get("SYSSCAN_GOFMT", "/usr/lib/go-1.19/bin/gofmt"), [["-l", tmp], ["-d", f"{tmp}/x.go"]]),
        "hello_static": (str(ROOT / "corpus/bin/hello_static"), [[], ["a", "b"]]),
        "wrappers_glibc_static": (str(ROOT / "corpus/bin/wrappers_glibc_static"), [[], ["x"], ["x", "y", "z"]]),
        "wrappers_musl_nofde_stripped": (str(ROOT / "corpus/bin/wrappers_musl_nofde_stripped"), [[], ["x"]]),
        "go_hello": (str(ROOT / "corpus/bin/go_hello"), [[]]),
        "i386_glibc_static": (str(ROOT / "corpus/bin/i386_glibc_static"), [[]]),
        "idioms_pie": (str(ROOT / "corpus/bin/idioms_pie"), [[], ["x"]]),
        **i386_workloads(tmp),
    }


def i386_workloads(tmp: str) -> dict[str, tuple[str, list[list[str]]]]:
    """Debian's 32-bit programs (benchmarks/fetch_i386.sh puts them under $SYSSCAN_I386_ROOT): static busybox and
    dynamic coreutils and dash on the i386 libc.so.6. They enter the kernel through `call *%gs:0x10` (issue 16)."""
    root = os.environ.get("SYSSCAN_I386_ROOT")
    if not root:
        return {}
    f = f"{tmp}/input.txt"
    progs = {
        "busybox32": ("bin/busybox", [["sh", "-c", "echo hi; ls / >/dev/null; cat " + f + " | wc -l"],
                                      ["ls", "-l", tmp], ["cp", f, f"{tmp}/bb32.txt"], ["sort", f], ["date"],
                                      ["find", tmp, "-name", "*.txt"], ["sleep", "0.01"]]),
        "cat32": ("bin/cat", [[f], ["-n", f, f], ["/nonexistent"]]),
        "dash32": ("bin/dash", [["-c", "echo hi; x=$((1+2)); echo $x > " + tmp + "/dash.out; read y < " + f],
                                ["-c", "cd /; pwd; ulimit -n; umask; trap 'echo t' EXIT; (echo sub); wait"]]),
        "date32": ("bin/date", [[], ["-u", "+%s"], ["-d", "2020-01-01"]]),
        "sort32": ("usr/bin/sort", [[f], ["-r", "-n", f], ["--parallel=2", "-S", "1M", f]]),
        "sha256sum32": ("usr/bin/sha256sum", [[f], ["-c", "/nonexistent"]]),
        "seq32": ("usr/bin/seq", [["3"], ["-s,", "1", "0.5", "3"]]),
        "env32": ("usr/bin/env", [[], ["-i", "A=1"]]),
        "sleep32": ("bin/sleep", [["0.01"]]),
    }
    return {name: (f"{root}/{rel}", runs) for name, (rel, runs) in progs.items()}


def prepare(tmp: str) -> None:
    Path(tmp, "input.txt").write_text("".join(f"line {i} a b\n" for i in range(200)))
    Path(tmp, "copy.txt").write_text("a copy\n")
    Path(tmp, "in.json").write_text('{"a": [1, 2, 3]}')
    Path(tmp, "x.go").write_text("package main\nfunc main(){println( 1)}\n")
    Path(tmp, "Makefile").write_text("all: out.txt\nout.txt: input.txt\n\tcp input.txt out.txt\n")
    os.makedirs(f"{tmp}/gnupg", mode=0o700, exist_ok=True)
    os.makedirs(f"{tmp}/d", exist_ok=True)
    Path(tmp, "d", "x").write_text("x")
    if os.geteuid() == 0:  # an owner no /etc/passwd names (a systemd DynamicUser's files, a container's)
        os.chown(f"{tmp}/d/x", 4242, 4242)


USERDBD = "/lib/systemd/systemd-userdbd"  # Debian's systemd-userdbd package
USERDB = "/run/systemd/userdb/io.systemd.Multiplexer"


@contextlib.contextmanager
def systemd_host():
    """User and group lookups as on a machine that runs systemd. For an owner /etc/passwd lacks, glibc goes on to
    libnss_systemd, which asks systemd's user database over varlink (a socket, an sd-event loop: epoll, timerfd,
    sendto, recvfrom); with nothing serving it, it finds no socket and gives up at once, and the runs see only that.
    systemd-userdbd serves the same interface as systemd on a booted machine: it is started for the duration when
    it is installed, as root, and not running yet. Yields what serves the lookups ("" when nothing does)."""
    if _answers(USERDB):
        yield f"{USERDB} (running already)"
        return
    if os.geteuid() != 0 or not os.path.exists(USERDBD):
        yield ""
        return
    p = subprocess.Popen([USERDBD], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                         start_new_session=True)
    try:
        for _ in range(100):
            if _answers(USERDB) or p.poll() is not None:
                break
            time.sleep(0.05)
        yield f"{USERDBD} ({USERDB})" if _answers(USERDB) else ""
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(p.pid, 15)
        with contextlib.suppress(subprocess.TimeoutExpired):
            p.wait(timeout=10)


def _answers(path: str) -> bool:
    """Is a server listening on the Unix socket at path (not a socket file left behind)?"""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        try:
            s.connect(path)
            return True
        except OSError:
            return False


@contextlib.contextmanager
def workdir(prefix: str):
    """A prepared directory for the workloads, removed afterwards: gpg's workloads leave an agent running in its
    gnupg directory, which is stopped first (it can put a socket back while the directory is being removed)."""
    with tempfile.TemporaryDirectory(prefix=prefix, ignore_cleanup_errors=True) as tmp:
        prepare(tmp)
        try:
            yield tmp
        finally:
            stop_agents(tmp)


def stop_agents(tmp: str) -> None:
    if shutil.which("gpgconf"):
        subprocess.run(["gpgconf", "--homedir", f"{tmp}/gnupg", "--kill", "all"], stdin=subprocess.DEVNULL,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=60, check=False)


LINE = re.compile(r"^(\d+)\s+(?:<\.\.\. (\w+) resumed>|(\w+)\()")
EXEC_OK = re.compile(r"^(\d+)\s+(?:<\.\.\. execve resumed>.*|execve\(.*)\)\s+=\s+0\s*$")


def observed(trace: str) -> set[str]:
    """Syscall names made by the traced program itself: the root process after its own execve, and its forks and
    threads until they exec another program."""
    seen: set[str] = set()
    root = None
    started: set[str] = set()  # pids whose lines count
    done: set[str] = set()  # pids that exec'd another program
    for line in trace.splitlines():
        m = LINE.match(line)
        if not m:
            continue
        pid = m.group(1)
        name = m.group(2) or m.group(3)
        if root is None:
            root = pid
        if pid == root and root not in started:
            if EXEC_OK.match(line):
                started.add(root)  # strace's own execve of the program: what follows is the program
            continue
        if pid in done:
            continue
        if pid != root:
            started.add(pid)
        seen.add(name)
        if name in ("execve", "execveat") and line.rstrip().endswith("= 0"):
            done.add(pid)
    return seen


@dataclass
class Result:
    name: str
    path: str
    runs: int
    observed: set[str] = field(default_factory=set)
    surface: set[str] = field(default_factory=set)
    seconds: float = 0.0
    open_ends: list[str] = field(default_factory=list)

    @property
    def missing(self) -> set[str]:
        return self.observed - self.surface


def trace(path: str, argv: list[str], cwd: str) -> set[str]:
    with tempfile.NamedTemporaryFile("r", suffix=".strace") as out:
        subprocess.run(["strace", "-f", "-qq", "-o", out.name, path, *argv], cwd=cwd, stdin=subprocess.DEVNULL,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=120)
        return observed(Path(out.name).read_text(errors="replace"))


DEBUG_DIRS: tuple[str, ...] | None = None  # None: the default (/usr/lib/debug); (): --no-debug-files


def surface_of(path: str) -> tuple[set[str], float, list[str]]:
    from analyzer.rules import RuleSet
    from analyzer.run.pipeline import ScanOptions, scan_file

    t = time.perf_counter()
    opts = ScanOptions(rules=RuleSet([])) if DEBUG_DIRS is None else ScanOptions(rules=RuleSet([]),
                                                                                 debug_dirs=DEBUG_DIRS)
    r = scan_file(path, opts)
    dt = time.perf_counter() - t
    s = r.surface
    names = {x.name for x in s.syscalls if x.name}  # strace names the call in the process's own ABI
    return names, dt, [f"{o.kind}: {o.object}: {o.detail}" for o in s.open_ends]


def run(only: list[str] | None = None, extra: dict[str, tuple[str, list[list[str]]]] | None = None,
        skip: tuple[str, ...] = ()) -> list[Result]:
    results = []
    with workdir("sysscan-recall-") as tmp, systemd_host():
        progs = {**workloads(tmp), **(extra or {})}
        for name, (path, runs) in progs.items():
            if only and name not in only or name in skip:
                continue
            if not os.path.exists(path):
                continue
            res = Result(name, path, len(runs))
            for argv in runs:
                res.observed |= trace(path, argv, tmp)
            res.surface, res.seconds, res.open_ends = surface_of(path)
            results.append(res)
    return results


def benchmark_setup(prefix: str) -> None:
    """strace must be there; the per-object cache goes to a fresh directory (unless XDG_CACHE_HOME is set), shared
    across the programs as on a user's machine, and is on even where SYSSCAN_NO_CACHE says otherwise."""
    if shutil.which("strace") is None:
        raise SystemExit("strace is not installed")
    os.environ.setdefault("XDG_CACHE_HOME", tempfile.mkdtemp(prefix=prefix))
    os.environ.pop("SYSSCAN_NO_CACHE", None)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--only", nargs="*")
    ap.add_argument("--json")
    ap.add_argument("--no-debug-files", action="store_true", help="as on a machine without libc6-dbg")
    a = ap.parse_args()
    global DEBUG_DIRS
    if a.no_debug_files:
        DEBUG_DIRS = ()
    benchmark_setup("sysscan-recall-cache-")
    with systemd_host() as served:
        print(f"systemd's user database: {served or 'not served (lookups see the machine without systemd)'}")
        results = run(a.only)
    sizes = []
    print(f"{'program':12} {'runs':>4} {'seen':>5} {'surface':>7} {'missed':>6} {'s':>6}  missing")
    for r in results:
        sizes.append(len(r.surface))
        print(f"{r.name:12} {r.runs:4} {len(r.observed):5} {len(r.surface):7} {len(r.missing):6} {r.seconds:6.2f}  "
              f"{' '.join(sorted(r.missing))}")
    if sizes:
        print(f"mean surface {sum(sizes) / len(sizes):.1f} over {len(sizes)} programs; "
              f"recall {'100 %' if not any(r.missing for r in results) else 'NOT 100 %'}")
    if a.json:
        Path(a.json).write_text(json.dumps([{"name": r.name, "observed": sorted(r.observed),
                                             "surface": sorted(r.surface), "missing": sorted(r.missing),
                                             "seconds": r.seconds, "open_ends": r.open_ends} for r in results],
                                           indent=1))
    return 1 if any(r.missing for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
