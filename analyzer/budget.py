"""Budgets for analysing untrusted files: deadlines, hard stops, and the user's limits (time, input size, memory).

sysscan reads hostile inputs (malware, artifacts from forks, kernels of unknown origin). Whatever it is fed, it
must answer in bounded time and memory, and running out of either gives a partial report *marked* incomplete,
not a failed run. The pieces:

- `Deadline` — a wall-clock budget passed down the pipeline (`scan_file` → site finding → data flow) and checked
  at function / site / block granularity. `check()` raises `BudgetExceeded`; the per-site containment in
  `analyzer.values.report` turns that into "unresolved: time budget exhausted" for the sites left. Checks are cheap
  (one `time.monotonic()` call), so loops call them freely.
- `time_limit(seconds)` — a hard stop for code that does not check a deadline (a third-party call such as an
  angr analysis): `signal.setitimer` raises `BudgetExceeded` inside the block. Main thread only (elsewhere it
  degrades to a no-op and the caller's `Deadline` checks are what bounds the work). **For the angr stage**:
  wrap each per-function angr call as

      with budget.function_budget(deadline, budget.DEFAULT_FUNCTION_SECONDS):
          cfg = project.analyses.CFGFast(...)

  and catch `BudgetExceeded` to mark that function's values unresolved with reason `BUDGET_REASON`.
- `Limits` — the user's knobs (`--timeout`, `--max-size`, `--max-memory`) in one picklable object.

Enforcing the memory limit (rlimits in a forked child) is the runner's: run/isolate.py.
"""
from __future__ import annotations

import contextlib
import gc
import resource
import signal
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass

DEFAULT_TIMEOUT = 120.0
"""Seconds of wall-clock time per binary (`--timeout`)."""
DEFAULT_FUNCTION_SECONDS = 10.0
"""Seconds for one function in the expensive (angr) stages."""
DEFAULT_MAX_SIZE = 2 << 30
"""Largest input file read at all (`--max-size`), bytes."""
DEFAULT_MAX_SITES = 5000
"""Most sites analysed and reported per binary: a file flooded with syscall bytes would otherwise make a report
(and rules, and rendering) far past any time budget — writing the report of 5000 sites alone takes a few
seconds after the deadline. Real binaries have tens to a few hundred."""
HARD_STOP_GRACE = 10.0
"""Seconds past the budget after which a worker that stopped checking its deadline is killed."""

BUDGET_REASON = "time budget exhausted"
MEMORY_REASON = "memory limit exhausted"


@contextlib.contextmanager
def gc_paused() -> Iterator[None]:
    """Python's cyclic garbage collector off while one binary is analysed, back on afterwards (not run).

    The data flow allocates millions of small objects that stay alive until the end (states, atoms, decoded
    instructions), and every full collection walks all of them: busybox took 2.1 s with the collector and 1.6 s
    without. What the analysis leaves in reference cycles is freed when the caller drops it (scan_file breaks the
    engine's cycles itself) or by the next collection; batch workers collect between binaries."""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


class BudgetExceeded(Exception):
    """The time budget ran out. Not a `SysscanError`: it never reaches the user as an error, it is contained
    where the work is (a site, a function) and shows up in the report as `incomplete`."""

    def __init__(self, what: str = "") -> None:
        self.what = what
        super().__init__(f"{BUDGET_REASON}" + (f" ({what})" if what else ""))


class Deadline:
    """A point in time after which work stops. `Deadline(None)` never expires (and costs nothing to check)."""

    __slots__ = ("seconds", "_end", "_clock")

    def __init__(self, seconds: float | None, clock=time.monotonic) -> None:
        self.seconds = seconds
        self._clock = clock
        self._end = None if seconds is None else clock() + max(0.0, seconds)

    @classmethod
    def never(cls) -> "Deadline":
        return cls(None)

    def remaining(self) -> float | None:
        return None if self._end is None else max(0.0, self._end - self._clock())

    def expired(self) -> bool:
        return self._end is not None and self._clock() >= self._end

    def check(self, what: str = "") -> None:
        """Raise `BudgetExceeded` if the budget is spent. Call it once per unit of work (block, function, site)."""
        if self._end is not None and self._clock() >= self._end:
            raise BudgetExceeded(what)

    def sub(self, seconds: float | None) -> "Deadline":
        """A nested budget: at most `seconds` from now and never later than this one (per-function budgets)."""
        mine = self.remaining()
        if seconds is None:
            return Deadline(mine, self._clock)
        return Deadline(seconds if mine is None else min(seconds, mine), self._clock)


NEVER = Deadline(None)


@contextlib.contextmanager
def time_limit(seconds: float | None) -> Iterator[None]:
    """Raise `BudgetExceeded` inside the block once `seconds` of wall-clock time have passed.

    Uses ITIMER_REAL/SIGALRM, so it interrupts pure-Python loops and returns from C calls that release to the
    interpreter; it cannot interrupt one long C call (a process kill via `run_isolated` is the backstop for
    that). Nesting keeps the earlier of the two alarms. Outside the main thread it does nothing."""
    if seconds is None or threading.current_thread() is not threading.main_thread():
        yield
        return
    seconds = max(seconds, 0.001)
    old_handler = signal.getsignal(signal.SIGALRM)
    old_remaining, _ = signal.getitimer(signal.ITIMER_REAL)
    started = time.monotonic()
    if old_remaining and old_remaining < seconds:
        seconds = old_remaining  # an outer limit fires first; let it keep firing as its own

    def _alarm(signum, frame):  # noqa: ARG001 - signal handler signature
        raise BudgetExceeded(f"hard limit of {seconds:g}s")

    signal.signal(signal.SIGALRM, _alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old_handler)
        if old_remaining:
            left = old_remaining - (time.monotonic() - started)
            signal.setitimer(signal.ITIMER_REAL, max(left, 0.001))


def function_budget(deadline: Deadline | None, seconds: float | None = DEFAULT_FUNCTION_SECONDS):
    """Hard per-function limit for third-party analyses (angr): the smaller of `seconds` and what is left of the
    binary's deadline. Raises `BudgetExceeded` in the block when it runs out."""
    left = deadline.remaining() if deadline is not None else None
    if left is not None and left <= 0:
        raise BudgetExceeded("before the function started")
    limit = seconds if left is None else (left if seconds is None else min(seconds, left))
    return time_limit(limit)


@dataclass(frozen=True)
class Limits:
    """What the user allows one binary: wall-clock seconds, input bytes, worker memory (MB). None = no limit."""

    timeout: float | None = DEFAULT_TIMEOUT
    max_size: int = DEFAULT_MAX_SIZE
    max_memory_mb: int | None = None
    function_seconds: float | None = DEFAULT_FUNCTION_SECONDS
    max_sites: int | None = DEFAULT_MAX_SITES

    def deadline(self) -> Deadline:
        return Deadline(self.timeout)


def peak_rss_mb() -> float:
    """This process's peak resident set size so far, in MB (ru_maxrss is KiB on Linux)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# ---- isolation: one binary in a child process ---------------------------------------------------------------------


