"""Code that runs only after something else the program must do first: reached only once that is reachable too.

A call graph says what *can* follow what; some C library paths need a state that only one function can create.
glibc's priority-protect mutex code (`__pthread_tpp_change_priority`, `__pthread_current_priority`: sched_getparam,
sched_setscheduler, sched_getscheduler, sched_get_priority_min/max) runs only for a mutex of the
PTHREAD_PRIO_PROTECT protocol, and a mutex gets that protocol only from an attribute set by
`pthread_mutexattr_setprotocol` (there is no static initializer for it). Every pthread_mutex_lock reaches that code
in the graph; a program that never sets the protocol never runs it.

Each gate names the functions it holds back (by symbol: glibc's are local, so they are named only where the symbol
table or the debug file is there; without names nothing is held back) and the functions that open it (a reached
node of that name or export, in any object).
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Gate:
    name: str
    held: frozenset[str]  # functions entered only once the gate is open
    openers: frozenset[str]  # reaching any of these opens it
    why: str


GATES = (
    Gate("priority-protect mutexes", frozenset({"__pthread_tpp_change_priority", "__pthread_current_priority"}),
         frozenset({"pthread_mutexattr_setprotocol", "__pthread_mutexattr_setprotocol"}),
         "glibc's priority-protect mutex code runs only for a mutex whose attribute was given "
         "PTHREAD_PRIO_PROTECT, and nothing reachable calls pthread_mutexattr_setprotocol"),
)
