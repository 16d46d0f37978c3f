"""Code that runs only after something else the program must do first: reached only once that is reachable too.

A call graph says what *can* follow what; some C library paths need a state that only one function can create, or
a way of starting the process that the program at hand never has. Each gate holds some code back until it opens:

- whole functions (`held`), wherever they are called from;
- calls from one function to another (`calls`: the branch of the caller that makes the call is taken only in that
  state, while the callee stays reachable from elsewhere);
- syscall sites of one function (`sites`: a syscall the function makes inline, in such a branch).

A gate opens when a function among its `openers` is reached (a node of that name or export, in any object), when
reached code of an object that is not glibc calls one of its `imports` (glibc's private interfaces, which another
object can use to do what the openers do), or from the start when the program scanned is `program` (a soname
prefix); one with none of these holds dead code for good.
What stays held is said in the notes.

Names are symbols: glibc's are local, so they are there only where the symbol table or the debug file is (without
names nothing is held back: the surface is then only looser). Every gate is read off glibc's sources (2.36 and
later), and each is checked both ways against strace in tests/test_surface_gates.py.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Gate:
    name: str
    why: str
    openers: frozenset[str] = frozenset()  # reaching any of these opens it
    imports: frozenset[str] = frozenset()  # a call of one of these from an object that is not glibc opens it
    held: frozenset[str] = frozenset()  # functions entered only once the gate is open
    calls: frozenset[tuple[str, str]] = frozenset()  # (caller, callee): that call made only once it is open
    sites: frozenset[tuple[str, str]] = frozenset()  # (function, syscall name): that syscall made only once open
    program: str | None = None  # open from the start when the program is this (soname prefix)
    anywhere: bool = False
    """False: it holds code only in glibc's own objects (`glibc`), never in a program's function that happens to
    share a name with one of glibc's"""
    beside: str | None = None
    """`sites` are held only in a function that also makes this syscall (kernel tools' nolibc has an `_exit` that
    makes exit alone: there it is the way out, not a fallback)"""


def _f(*names: str) -> frozenset[str]:
    return frozenset(names)


def _calls(caller: str, *callees: str) -> frozenset[tuple[str, str]]:
    return frozenset((caller, c) for c in callees)


def _sites(function: str, *syscalls: str) -> frozenset[tuple[str, str]]:
    return frozenset((function, s) for s in syscalls)


CHILD = "__spawni_child"  # posix_spawn's child, before it execs: its syscalls are the process's own
NSS_INTERNALS = frozenset({"__nss_database_get", "__nss_database_lookup2", "__nss_lookup_function", "__nss_lookup",
                           "__nss_next2", "__nss_module_get_function", "__nss_module_load"})
"""glibc's private NSS interfaces: an object that calls them can pick any database and look any function up"""

GATES = (
    Gate("the dns service",
         "glibc's built-in dns service (the resolver's queries: sendmmsg, getpeername…) runs only for a lookup whose "
         "function it defines — hosts and networks: gethostbyname, getaddrinfo, getnetbyname… — and module_load "
         "sets its table up (__nss_dns_functions) only for such a lookup: nothing reachable looks up a host or a "
         "network",
         openers=_f("__nss_hosts_lookup2", "__nss_networks_lookup2", "getaddrinfo", "__nss_disable_nscd"),
         imports=NSS_INTERNALS, calls=_calls("module_load", "__nss_dns_functions")),
    Gate("priority-protect mutexes",
         "glibc's priority-protect mutex code runs only for a mutex whose attribute was given "
         "PTHREAD_PRIO_PROTECT, and nothing reachable calls pthread_mutexattr_setprotocol",
         openers=_f("pthread_mutexattr_setprotocol", "__pthread_mutexattr_setprotocol"),
         held=_f("__pthread_tpp_change_priority", "__pthread_current_priority"),
         calls=_calls("pthread_mutex_init", "__init_sched_fifo_prio") |
         _calls("__pthread_mutex_init", "__init_sched_fifo_prio")),
    Gate("explicit thread scheduling",
         "a new thread gets a scheduling policy of its own (sched_getscheduler, sched_getparam, sched_setscheduler "
         "in pthread_create) only from an attribute given PTHREAD_EXPLICIT_SCHED, and nothing reachable calls "
         "pthread_attr_setinheritsched or pthread_getattr_np",
         openers=_f("pthread_attr_setinheritsched", "__pthread_attr_setinheritsched", "pthread_getattr_np",
                    "__pthread_getattr_np"),
         sites=_sites("pthread_create", "sched_getscheduler", "sched_getparam") |
         _sites("__pthread_create_2_1", "sched_getscheduler", "sched_getparam") |
         _sites("create_thread", "sched_setscheduler")),
    Gate("thread affinity",
         "a new thread's CPU affinity is set (sched_setaffinity in pthread_create) only from an attribute that has "
         "one, and nothing reachable calls pthread_attr_setaffinity_np or pthread_getattr_np",
         openers=_f("pthread_attr_setaffinity_np", "__pthread_attr_setaffinity_np", "pthread_getattr_np",
                    "__pthread_getattr_np"),
         sites=_sites("create_thread", "sched_setaffinity"),
         # copying an attribute (the defaults, pthread_create's own copy) passes on an affinity some attribute
         # already has: that call opens nothing, it is held with the rest
         calls=_calls("__pthread_attr_copy", "pthread_attr_setaffinity_np", "__pthread_attr_setaffinity_np")),
    Gate("ld.so run as a program",
         "ld.so's --list-diagnostics, --help, --version and its chain-loading of a static program (execve) run only "
         "when ld.so is the program the kernel started, not when it is the interpreter of another one",
         held=_f("_dl_print_diagnostics", "_dl_help", "_dl_usage", "_dl_version", "rtld_chain_load",
                 "__tunables_print", "__GI___tunables_print"),
         sites=_sites("dl_main", "execve"), program="ld-linux"),
    Gate("the main thread's own exit",
         "__libc_start_call_main ends only the main thread (an exit syscall, not exit_group) when main is left by "
         "pthread_exit or cancellation, and nothing reachable calls pthread_exit, thrd_exit or pthread_cancel",
         openers=_f("pthread_exit", "__pthread_exit", "thrd_exit", "pthread_cancel", "__pthread_cancel"),
         calls=_calls("__libc_start_call_main", "__nptl_deallocate_tsd"),
         sites=_sites("__libc_start_call_main", "exit")),
    Gate("exit after exit_group",
         "the C library's _exit (glibc's, musl's) makes the exit syscall only if exit_group returns, and "
         "exit_group never returns",
         sites=_sites("_exit", "exit") | _sites("_Exit", "exit") | _sites("__GI__exit", "exit"),
         beside="exit_group", anywhere=True),
    Gate("stdio streams held by another thread",
         "at exit, _IO_cleanup yields (sched_yield) only while another thread holds a stream's lock (the owner may "
         "take its own lock again), and nothing reachable makes a thread (pthread_create, thrd_create, clone)",
         openers=_f("pthread_create", "__pthread_create_2_1", "thrd_create", "clone", "__clone"),
         calls=_calls("_IO_cleanup", "sched_yield", "__sched_yield") |
         _calls("_IO_unbuffer_all", "sched_yield", "__sched_yield")),
    Gate("RPC services of a thread",
         "a thread's exit unregisters the RPC services it registered (svc_unregister: a portmapper call over UDP "
         "and TCP), and nothing reachable calls svc_register",
         openers=_f("svc_register", "__svc_register"),
         calls=_calls("__rpc_thread_svc_cleanup", "svc_unregister", "__svc_unregister")),
    Gate("posix_spawn attribute flags",
         "posix_spawn's child sets the scheduler, the session, the process group or the ids only for flags set by "
         "posix_spawnattr_setflags, and nothing reachable calls it",
         openers=_f("posix_spawnattr_setflags", "__posix_spawnattr_setflags"),
         # system() sets only POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK (nothing held here): its own call of
         # posix_spawnattr_setflags opens nothing, it is held with the rest
         calls=_calls("do_system", "posix_spawnattr_setflags", "__posix_spawnattr_setflags") |
         _calls(CHILD, "sched_setparam", "__sched_setparam", "sched_setscheduler", "__sched_setscheduler", "setsid",
                "__setsid", "setpgid", "__setpgid", "getuid", "__getuid", "getgid", "__getgid", "setrlimit",
                "__setrlimit", "setrlimit64", "__setrlimit64"),
         sites=_sites(CHILD, "setresuid", "setresgid", "setresuid32", "setresgid32", "prlimit64")),
    Gate("posix_spawn close actions",
         "posix_spawn's child asks for the descriptor limit only when a close action fails, and nothing reachable "
         "calls posix_spawn_file_actions_addclose",
         openers=_f("posix_spawn_file_actions_addclose", "__posix_spawn_file_actions_addclose"),
         calls=_calls(CHILD, "getrlimit", "__getrlimit", "getrlimit64", "__getrlimit64")),
    Gate("posix_spawn dup2 and open actions",
         "posix_spawn's child duplicates descriptors only for dup2 and open actions, and nothing reachable calls "
         "posix_spawn_file_actions_adddup2 or _addopen",
         openers=_f("posix_spawn_file_actions_adddup2", "__posix_spawn_file_actions_adddup2",
                    "posix_spawn_file_actions_addopen", "__posix_spawn_file_actions_addopen"),
         calls=_calls(CHILD, "dup2", "__dup2", "fcntl", "__fcntl", "__libc_fcntl64", "fcntl64", "__fcntl64")),
    Gate("posix_spawn chdir actions",
         "posix_spawn's child changes directory only for chdir actions, and nothing reachable calls "
         "posix_spawn_file_actions_addchdir_np",
         openers=_f("posix_spawn_file_actions_addchdir_np", "__posix_spawn_file_actions_addchdir_np"),
         calls=_calls(CHILD, "chdir", "__chdir")),
    Gate("posix_spawn fchdir actions",
         "posix_spawn's child changes directory only for fchdir actions, and nothing reachable calls "
         "posix_spawn_file_actions_addfchdir_np",
         openers=_f("posix_spawn_file_actions_addfchdir_np", "__posix_spawn_file_actions_addfchdir_np"),
         calls=_calls(CHILD, "fchdir", "__fchdir")),
    Gate("posix_spawn closefrom actions",
         "posix_spawn's child closes a range of descriptors only for closefrom actions, and nothing reachable "
         "calls posix_spawn_file_actions_addclosefrom_np",
         openers=_f("posix_spawn_file_actions_addclosefrom_np", "__posix_spawn_file_actions_addclosefrom_np"),
         calls=_calls(CHILD, "__closefrom_fallback"), sites=_sites(CHILD, "close_range")),
    Gate("posix_spawn tcsetpgrp actions",
         "posix_spawn's child sets the terminal's process group only for tcsetpgrp actions, and nothing reachable "
         "calls posix_spawn_file_actions_addtcsetpgrp_np",
         openers=_f("posix_spawn_file_actions_addtcsetpgrp_np", "__posix_spawn_file_actions_addtcsetpgrp_np"),
         calls=_calls(CHILD, "tcsetpgrp", "__tcsetpgrp", "getpgid", "__getpgid")),
)


def named(names: dict[int, str], exports: dict[str, int]) -> dict[str, set[int]]:
    """Name -> the function starts of one object that carry it: its symbol, or any export (versions dropped)."""
    out: dict[str, set[int]] = {}
    for a, n in names.items():
        out.setdefault(n, set()).add(a)
    for n, a in exports.items():
        out.setdefault(n.split("@")[0], set()).add(a)
    return out


def glibc(names: dict[str, set[int]]) -> bool:
    """Is this glibc: libc.so.6 or a program linked with it statically (it has glibc's stdio clean-up and its
    start-up), or glibc's ld.so? `names`: `named()` of the object."""
    return "__libc_start_main" in names and "_IO_cleanup" in names or "dl_main" in names and "_dl_start" in names
