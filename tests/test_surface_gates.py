"""The gates (analyzer/surface/gates.py) checked both ways against real runs: code a gate holds back is absent from
a program that cannot reach it, and a program that opens the gate makes those syscalls under strace and has them
in its surface. The programs are built here with gcc against the machine's glibc; ld.so is Debian's own."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest

from analyzer.run.pipeline import scan_file
from conftest import ROOT

sys.path.insert(0, str(ROOT / "benchmarks"))
import surface_recall  # noqa: E402

LD = "/lib64/ld-linux-x86-64.so.2"
DEBUG = "/usr/lib/debug/.build-id"


@pytest.fixture(scope="module", autouse=True)
def _debug_files():
    """glibc's local functions are named only by its debug file (.ci/run installs libc6-dbg): without it the gates
    hold nothing back, and these tests would check nothing."""
    if not os.path.isdir(DEBUG):
        pytest.fail(f"{DEBUG} is missing: install libc6-dbg (.ci/run does)")


def _build(tmp_path, name: str, src: str):
    c = tmp_path / f"{name}.c"
    c.write_text(src)
    prog = tmp_path / name
    subprocess.run(["gcc", "-O1", "-pthread", "-o", str(prog), str(c)], check=True)
    return str(prog)


def _surface(path: str):
    s = scan_file(path).surface
    return {x.name for x in s.syscalls}, s.notes


def _note(notes: list[str], gate: str) -> str | None:
    return next((n for n in notes if n.startswith(gate + ":")), None)


def test_ld_so_run_as_a_program_and_as_an_interpreter(tmp_path):
    """ld.so run as a program (--list-diagnostics: uname; a static program given to it: execve) has those syscalls;
    as the interpreter of cat it never takes that branch."""
    seen = surface_recall.trace(LD, ["--list-diagnostics"], str(tmp_path))
    seen |= surface_recall.trace(LD, [str(ROOT / "corpus/bin/hello_static")], str(tmp_path))
    assert {"uname", "execve"} <= seen
    names, notes = _surface(LD)
    assert seen <= names, seen - names
    assert _note(notes, "ld.so run as a program") is None

    cat, notes = _surface("/usr/bin/cat")
    assert not {"uname", "execve"} & cat
    note = _note(notes, "ld.so run as a program")
    assert note and "_dl_print_diagnostics" in note and "syscall execve in dl_main" in note


def test_the_main_threads_exit_syscall_needs_pthread_exit(tmp_path):
    """A main that leaves by pthread_exit while another thread runs ends only itself: an exit syscall. cat never
    does, and its _exit's exit after exit_group is dead code."""
    prog = _build(tmp_path, "mainexit", """#include <pthread.h>
#include <unistd.h>
static void *run(void *a) { usleep(50000); return a; }
int main(void) {
    pthread_t t;
    if (pthread_create(&t, 0, run, 0)) return 1;
    pthread_exit(0);
}
""")
    seen = surface_recall.trace(prog, [], str(tmp_path))
    assert "exit" in seen
    names, notes = _surface(prog)
    assert seen <= names, seen - names
    assert _note(notes, "the main thread's own exit") is None

    cat, notes = _surface("/usr/bin/cat")
    assert "exit" not in cat and "exit_group" in cat
    assert "syscall exit in __libc_start_call_main" in _note(notes, "the main thread's own exit")
    assert "syscall exit in _Exit" in _note(notes, "exit after exit_group")


SPAWN = """#define _GNU_SOURCE
#include <spawn.h>
#include <sys/wait.h>
#include <fcntl.h>
extern char **environ;
int main(void) {
    pid_t pid; int st;
    char *argv[] = {"true", 0};
    posix_spawnattr_t *ap = 0;
    posix_spawn_file_actions_t *fp = 0;
#ifdef ATTRS
    posix_spawnattr_t a; posix_spawnattr_init(&a);
    posix_spawnattr_setflags(&a, POSIX_SPAWN_SETSID | POSIX_SPAWN_RESETIDS | POSIX_SPAWN_SETSCHEDPARAM);
    struct sched_param sp = {0}; posix_spawnattr_setschedparam(&a, &sp);
    ap = &a;
#endif
#ifdef ACTIONS
    posix_spawn_file_actions_t f; posix_spawn_file_actions_init(&f);
    posix_spawn_file_actions_addchdir_np(&f, "/");
    int d = open("/", O_RDONLY | O_DIRECTORY);
    posix_spawn_file_actions_addfchdir_np(&f, d);
    posix_spawn_file_actions_adddup2(&f, 1, 7);
    posix_spawn_file_actions_addclose(&f, 7);
    posix_spawn_file_actions_addclosefrom_np(&f, 3);
    fp = &f;
#endif
    if (posix_spawn(&pid, "/bin/true", fp, ap, argv, environ)) return 1;
    return waitpid(pid, &st, 0) == pid ? 0 : 2;
}
"""
ATTR_CALLS = {"setsid", "setresuid", "setresgid", "sched_setparam", "sched_setscheduler", "setpgid"}
ACTION_CALLS = {"chdir", "fchdir", "dup2", "close_range"}


def test_posix_spawn_child_makes_only_what_its_attributes_and_actions_ask(tmp_path):
    """With neither attributes nor file actions the child's setsid, setresuid, sched_*, chdir, fchdir, dup2 and
    close_range are left out; a program that sets them makes them in its child (strace -f) and has them."""
    plain = _build(tmp_path, "spawn", SPAWN)
    names, notes = _surface(plain)
    assert "clone3" in names or "clone" in names  # posix_spawn itself is reachable
    assert not (ATTR_CALLS | ACTION_CALLS) & names, (ATTR_CALLS | ACTION_CALLS) & names
    for gate in ("posix_spawn attribute flags", "posix_spawn chdir actions", "posix_spawn fchdir actions",
                 "posix_spawn closefrom actions", "posix_spawn dup2 and open actions"):
        assert _note(notes, gate), gate

    full = _build(tmp_path, "spawn_full", SPAWN.replace("#include <spawn.h>",
                                                        "#define ATTRS\n#define ACTIONS\n#include <spawn.h>"))
    seen = surface_recall.trace(full, [], str(tmp_path))
    assert {"setsid", "setresuid", "sched_setparam", "chdir", "fchdir", "dup2", "close_range"} <= seen, seen
    names, notes = _surface(full)
    assert seen <= names, seen - names
    opened = ("posix_spawn attribute flags", "posix_spawn chdir actions", "posix_spawn fchdir actions",
              "posix_spawn closefrom actions", "posix_spawn dup2 and open actions", "posix_spawn close actions")
    assert not [g for g in opened if _note(notes, g)]
    assert _note(notes, "posix_spawn tcsetpgrp actions")  # the one it does not use


def test_popen_keeps_what_popen_does(tmp_path):
    """popen's child duplicates the pipe (dup2) but has no attributes: sed, which reaches popen, keeps dup2 and
    loses setsid."""
    names, notes = _surface("/usr/bin/sed")
    assert {"dup2", "clone3", "execve", "wait4"} <= names
    assert not {"setsid", "setresuid", "sched_setscheduler"} & names
    assert _note(notes, "posix_spawn attribute flags")


THREAD = """#define _GNU_SOURCE
#include <pthread.h>
#include <sched.h>
static void *run(void *a) { return a; }
int main(void) {
    pthread_t t;
    pthread_attr_t *ap = 0;
#ifdef ATTRS
    pthread_attr_t a; pthread_attr_init(&a);
    pthread_attr_setinheritsched(&a, PTHREAD_EXPLICIT_SCHED);
    pthread_attr_setschedpolicy(&a, SCHED_OTHER);
    cpu_set_t cpus; CPU_ZERO(&cpus); CPU_SET(0, &cpus);
    pthread_attr_setaffinity_np(&a, sizeof cpus, &cpus);
    ap = &a;
#endif
    if (pthread_create(&t, ap, run, 0)) return 1;
    return pthread_join(t, 0);
}
"""
THREAD_SCHED = {"sched_setscheduler", "sched_setaffinity", "sched_getparam", "sched_getscheduler"}


def test_a_threads_scheduling_and_affinity_come_from_its_attribute(tmp_path):
    """pthread_create sets a thread's policy and affinity only from an attribute that asks for them: a program
    that never sets one does not have those syscalls; one that does makes them (strace) and has them."""
    plain = _build(tmp_path, "thread", THREAD)
    names, notes = _surface(plain)
    assert "clone3" in names and not THREAD_SCHED & names, THREAD_SCHED & names
    assert _note(notes, "explicit thread scheduling") and _note(notes, "thread affinity")

    full = _build(tmp_path, "thread_attrs", THREAD.replace("#include <sched.h>", "#include <sched.h>\n#define ATTRS"))
    seen = surface_recall.trace(full, [], str(tmp_path))
    assert {"sched_setscheduler", "sched_setaffinity"} <= seen, seen
    names, notes = _surface(full)
    assert seen <= names, seen - names
    assert not _note(notes, "explicit thread scheduling") and not _note(notes, "thread affinity")


RPC = """#include <pthread.h>
typedef struct SVCXPRT SVCXPRT;
extern SVCXPRT *svcudp_create_old(int);
extern int svc_register_old(SVCXPRT *, unsigned long, unsigned long, void (*)(void *, SVCXPRT *), unsigned long);
__asm__(".symver svcudp_create_old,svcudp_create@GLIBC_2.2.5");
__asm__(".symver svc_register_old,svc_register@GLIBC_2.2.5");
static void dispatch(void *r, SVCXPRT *x) { (void)r; (void)x; }
static void *run(void *a) {
    SVCXPRT *x = svcudp_create_old(-1);
    if (x) svc_register_old(x, 0x20000099, 1, dispatch, 17);
    return a;
}
int main(void) { pthread_t t; pthread_create(&t, 0, run, 0); return pthread_join(t, 0); }
"""


def test_a_threads_exit_unregisters_only_the_rpc_services_it_registered(tmp_path):
    """Every thread's exit runs glibc's RPC cleanup, which calls the portmapper only for services the thread
    registered: a threaded program without svc_register (the earlier thread program) has none of that client's
    socket calls, one that registers a service (glibc's compat symbols, as an old binary has them) makes them and
    has them."""
    plain = _build(tmp_path, "thread", THREAD)
    names, notes = _surface(plain)
    assert not {"socket", "bind", "sendto", "recvfrom", "getsockname", "setsockopt"} & names
    assert "svc_unregister" in _note(notes, "RPC services of a thread")

    prog = _build(tmp_path, "rpc", RPC)
    seen = surface_recall.trace(prog, [], str(tmp_path))
    assert {"socket", "bind", "sendto"} <= seen, seen
    names, notes = _surface(prog)
    assert seen <= names, seen - names
    assert not _note(notes, "RPC services of a thread")


def test_system_sets_only_signal_flags(tmp_path):
    """system() spawns its shell with POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK: a program that calls it has
    the child's signal calls but not setsid, setpgid or setresuid; strace agrees."""
    prog = _build(tmp_path, "system", '#include <stdlib.h>\nint main(void) { return system("exit 0"); }\n')
    seen = surface_recall.trace(prog, [], str(tmp_path))
    assert {"clone3", "execve", "wait4", "rt_sigaction"} <= seen, seen
    names, notes = _surface(prog)
    assert seen <= names, seen - names
    assert not {"setsid", "setpgid", "setresuid", "sched_setscheduler"} & names
    assert "do_system -> posix_spawnattr_setflags" in _note(notes, "posix_spawn attribute flags")


LOCKED = """#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
static volatile int held;
static void *hold(void *a) { flockfile(stdout); held = 1; sleep(5); return a; }
int main(void) {
    pthread_t t;
    printf("x\\n");
    if (pthread_create(&t, 0, hold, 0)) return 1;
    while (!held) usleep(1000);
    exit(0);
}
"""


def test_exit_yields_only_to_another_thread_holding_a_stream(tmp_path):
    """exit's stdio cleanup yields while another thread holds a stream's lock: a program whose thread holds stdout
    makes sched_yield (strace) and has it; cat, which makes no thread, does not."""
    prog = _build(tmp_path, "locked", LOCKED)
    seen = surface_recall.trace(prog, [], str(tmp_path))
    assert "sched_yield" in seen, seen
    names, notes = _surface(prog)
    assert seen <= names, seen - names
    assert not _note(notes, "stdio streams held by another thread")

    cat, notes = _surface("/usr/bin/cat")
    assert "sched_yield" not in cat
    assert "_IO_cleanup -> sched_yield" in _note(notes, "stdio streams held by another thread")


NOLIBC_EXIT = """__attribute__((noinline)) void _exit(int code) {
    __asm__ volatile("syscall" :: "a"(60), "D"(code) : "rcx", "r11", "memory");
    for (;;) {}
}
void _start(void) { _exit(0); }
"""


def test_an_exit_alone_is_the_way_out_not_dead_code(tmp_path):
    """The exit after exit_group in glibc's _exit is dead code; an `_exit` that makes exit alone (the kernel's
    nolibc) is how its program ends, and stays."""
    c = tmp_path / "nolibc.c"
    c.write_text(NOLIBC_EXIT)
    prog = tmp_path / "nolibc"
    subprocess.run(["gcc", "-O1", "-static", "-nostdlib", "-fno-stack-protector", "-o", str(prog), str(c)],
                   check=True)
    seen = surface_recall.trace(str(prog), [], str(tmp_path))
    assert seen == {"exit"}, seen
    names, notes = _surface(str(prog))
    assert names == {"exit"} and not _note(notes, "exit after exit_group")


OWN_NAMES = """#define _GNU_SOURCE
#include <sched.h>
#include <unistd.h>
#include <sys/syscall.h>
__attribute__((noinline)) long create_thread(long pid) {
    unsigned long mask = 1;
    long r;
    __asm__ volatile("syscall" : "=a"(r) : "a"(SYS_sched_setaffinity), "D"(pid), "S"(sizeof mask), "d"(&mask)
                     : "rcx", "r11", "memory");
    return r;
}
int main(void) { return create_thread(0) < 0; }
"""


def test_a_programs_own_function_with_a_glibc_name_is_not_held(tmp_path):
    """The gates hold glibc's code only: a program's own `create_thread` that sets the affinity itself keeps its
    sched_setaffinity."""
    prog = _build(tmp_path, "own", OWN_NAMES)
    seen = surface_recall.trace(prog, [], str(tmp_path))
    assert "sched_setaffinity" in seen, seen
    names, _notes = _surface(prog)
    assert seen <= names, seen - names


PASSWD = '#include <pwd.h>\nint main(void) { return getpwnam("sysscan-nobody") != 0; }\n'
HOSTS = """#include <netdb.h>
#include <string.h>
int main(void) {
    struct addrinfo hints, *res;
    memset(&hints, 0, sizeof hints);
    hints.ai_socktype = SOCK_STREAM;
    return getaddrinfo("sysscan-test.invalid", "80", &hints, &res) == 0;
}
"""
PRIVATE = """#include <pwd.h>
extern int __nss_database_get(int db, void *actions);
int main(int argc, char **argv) {
    void *actions = 0;
    if (argc > 2) return __nss_database_get(argc, &actions);
    return getpwnam("sysscan-nobody") != 0;
}
"""
RESOLVER = ("sendmmsg", "getpeername")  # made only by the dns service's queries (send_dg, send_vc)


def test_the_dns_service_runs_only_for_host_and_network_lookups(tmp_path, monkeypatch):
    """A user lookup goes through NSS, but only a host or network lookup calls the built-in dns service: a
    program that looks up a user has none of the resolver's own syscalls; one that calls getaddrinfo queries (strace:
    sendmmsg, its A and AAAA queries at once) and has them."""
    monkeypatch.setenv("RES_OPTIONS", "timeout:1 attempts:1")  # no answer from the machine's resolver: no wait
    hosts = _build(tmp_path, "hosts", HOSTS)
    seen = surface_recall.trace(hosts, [], str(tmp_path))
    assert "sendmmsg" in seen, seen
    names, notes = _surface(hosts)
    assert seen <= names, seen - names
    assert set(RESOLVER) <= names and _note(notes, "the dns service") is None

    passwd = _build(tmp_path, "passwd", PASSWD)
    seen = surface_recall.trace(passwd, [], str(tmp_path))
    names, notes = _surface(passwd)
    assert seen <= names, seen - names
    assert not set(RESOLVER) & names, set(RESOLVER) & names
    assert "module_load -> __nss_dns_functions" in _note(notes, "the dns service")


def test_an_object_calling_glibcs_private_nss_interface_keeps_the_dns_service(tmp_path):
    """An object that is not glibc and calls __nss_database_get can ask for any database: the gate opens."""
    prog = _build(tmp_path, "private", PRIVATE)
    names, notes = _surface(prog)
    assert set(RESOLVER) <= names and _note(notes, "the dns service") is None
    names, notes = _surface(_build(tmp_path, "passwd", PASSWD))
    assert not set(RESOLVER) & names
