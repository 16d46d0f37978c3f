"""Resource limits for analysing untrusted files: time budgets, an input-size cap, and memory caps for workers.

sysscan reads hostile inputs (malware, artifacts from forks, kernels of unknown origin). Whatever it is fed, it
must answer in bounded time and memory, and running out of either gives a partial report *marked* incomplete,
not a failed run. The pieces:

- `Deadline` — a wall-clock budget passed down the pipeline (`scan_file` → site finding → data flow) and checked
  at function / site / block granularity. `check()` raises `BudgetExceeded`; the per-site containment in
  `analyzer.scan` turns that into "unresolved: time budget exhausted" for the sites left. Checks are cheap
  (one `time.monotonic()` call), so loops call them freely.
- `time_limit(seconds)` — a hard stop for code that does not check a deadline (a third-party call such as an
  angr analysis): `signal.setitimer` raises `BudgetExceeded` inside the block. Main thread only (elsewhere it
  degrades to a no-op and the caller's `Deadline` checks are what bounds the work). **For the angr stage**:
  wrap each per-function angr call as

      with limits.function_budget(deadline, limits.function_seconds):
          cfg = project.analyses.CFGFast(...)

  and catch `BudgetExceeded` to mark that function's values unresolved with reason `BUDGET_REASON`.
- `Limits` — the user's knobs (`--timeout`, `--max-size`, `--max-memory`) in one picklable object.
- `apply_rlimits()` — RLIMIT_AS / RLIMIT_CPU for a worker process (call it in the child, never in the CLI's own
  process: an address-space cap there would take down the whole run).
- `run_isolated(path, options, limits)` — analyse one binary in a forked child under those rlimits. A child that
  runs out of memory, overruns its time, or dies from a signal yields a report for *that* binary marked
  incomplete (or, when it died before the ELF was even loaded, an error for that file); the run goes on. The
  shape (path + options + limits in, `Report` or `SysscanError` out) is what a worker pool reuses.
"""
from __future__ import annotations

import contextlib
import gc
import os
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


def apply_rlimits(max_memory_mb: int | None = None, cpu_seconds: float | None = None,
                  headroom: bool = True) -> None:
    """Cap this process's address space (RLIMIT_AS) and CPU time (RLIMIT_CPU). For worker processes only.

    With `headroom` (what --max-memory means), the cap is what the process already maps (the interpreter, LIEF,
    Capstone: some hundreds of MB of address space before any analysis) plus `max_memory_mb`, so the number is
    the memory the analysis itself may take, whatever the platform's baseline. Over RLIMIT_AS, allocations fail
    (Python raises MemoryError; C++ code may abort); over the soft RLIMIT_CPU the kernel sends SIGXCPU, then
    SIGKILL at the hard limit. Limits only ever go down."""
    if max_memory_mb is not None:
        want = int(max_memory_mb) * 1024 * 1024 + (address_space_bytes() if headroom else 0)
        _lower(resource.RLIMIT_AS, want, want)
    if cpu_seconds is not None:
        soft = max(1, int(cpu_seconds + 0.999))
        _lower(resource.RLIMIT_CPU, soft, soft + 5)


def _lower(which: int, soft: int, hard: int) -> None:
    cur_soft, cur_hard = resource.getrlimit(which)
    if cur_hard != resource.RLIM_INFINITY:
        hard = min(hard, cur_hard)
        soft = min(soft, hard)
    if cur_soft != resource.RLIM_INFINITY:
        soft = min(soft, cur_soft)
    resource.setrlimit(which, (soft, hard))


def address_space_bytes() -> int:
    """This process's current virtual address-space size (VmSize), 0 if unknown."""
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmSize:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return 0


def peak_rss_mb() -> float:
    """This process's peak resident set size so far, in MB (ru_maxrss is KiB on Linux)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# ---- isolation: one binary in a child process ---------------------------------------------------------------------

def run_isolated(path: str, options=None, limits: Limits | None = None):
    """Analyse `path` in a forked child under `limits`; return a `Report`, or the `SysscanError` for that file.

    Never raises for anything that happens in the child. What the parent knows when the child fails:
    - the child sent the loaded binary's header info → a Report with that info, no sites, and `incomplete`
      naming the limit (or the signal) that stopped it;
    - it died before that → `LimitExceeded` (exit code 10) naming the limit, for this file only.
    """
    import multiprocessing

    from .errors import SysscanError

    limits = limits or Limits()
    import tempfile

    ctx = multiprocessing.get_context("fork")
    recv, send = ctx.Pipe(duplex=False)
    # The child's fd 2 goes to a file: a native library dying (C++ terminate, glibc abort) writes there, not on
    # the user's terminal, and its last line can explain the death.
    native_err = tempfile.TemporaryFile()
    proc = ctx.Process(target=_child, args=(send, path, options, limits, native_err.fileno()), daemon=True)
    proc.start()
    send.close()
    hard = None if limits.timeout is None else limits.timeout + HARD_STOP_GRACE
    started = time.monotonic()
    messages: list[tuple] = []
    killed_for_time = False
    try:
        while True:
            wait = None if hard is None else max(0.0, hard - (time.monotonic() - started))
            if not recv.poll(wait):
                killed_for_time = True
                break
            try:
                msg = recv.recv()
            except (EOFError, OSError):
                break
            messages.append(msg)
            if msg[0] in ("report", "error", "dead", "internal"):
                break
    finally:
        if proc.is_alive():
            proc.kill()
        proc.join(5)
        recv.close()
        native_err.seek(0)
        native = native_err.read()[-4096:].decode("utf-8", "replace")
        native_err.close()

    final = messages[-1] if messages else None
    if final is not None and final[0] == "internal":
        return InternalFailure(path, final[1]["why"])
    if final is not None and final[0] == "report":
        from .model import Report

        return Report.from_dict(final[1])
    if final is not None and final[0] == "error":
        return _rebuild_error(final[1])
    if final is not None and final[0] == "dead":
        why = final[1]["why"] + (f" ({limits.max_memory_mb} MB, --max-memory)" if limits.max_memory_mb else "")
    else:
        why = _death_reason(proc.exitcode, killed_for_time, limits)
        last = [ln.strip() for ln in native.splitlines() if ln.strip()]
        if last:
            from .textsafe import escape_controls

            why += f"; it said: {escape_controls(last[-1])[:200]}"
    info = next((m for m in messages if m[0] == "binary"), None)
    if info is None:
        from .errors import LimitExceeded

        return LimitExceeded(path, f"analysis stopped before the ELF was loaded: {why}")
    from .model import Report

    report = Report.from_dict(info[1])
    report.incomplete = sorted(set(report.incomplete) | {f"analysis stopped: {why}; no sites could be reported"})
    _ = SysscanError  # imported for the type in the docstring; keeps linters quiet
    return report


class InternalFailure(Exception):
    """A bug in sysscan inside the isolated child (not an input problem); the CLI reports it as exit 70."""

    def __init__(self, path: str, why: str) -> None:
        self.path = path
        super().__init__(f"{path}: {why}")


def _death_reason(exitcode: int | None, killed_for_time: bool, limits: Limits) -> str:
    if killed_for_time:
        return f"{BUDGET_REASON} (killed after {limits.timeout:g}s + {HARD_STOP_GRACE:g}s grace)"
    if exitcode is not None and exitcode < 0:
        sig = -exitcode
        name = signal.Signals(sig).name if sig in signal.Signals._value2member_map_ else f"signal {sig}"
        if sig == signal.SIGXCPU or sig == signal.SIGKILL and limits.timeout is not None:
            return f"{BUDGET_REASON} (CPU limit, {name})"
        if limits.max_memory_mb is not None and sig in (signal.SIGABRT, signal.SIGSEGV, signal.SIGBUS):
            return f"{MEMORY_REASON} ({limits.max_memory_mb} MB) or a crash in a native library ({name})"
        return f"the analysing process died ({name})"
    return f"the analysing process exited with status {exitcode} without a result"


def _rebuild_error(payload: dict):
    from . import errors

    cls = getattr(errors, payload.get("type", ""), None)
    if not (isinstance(cls, type) and issubclass(cls, errors.SysscanError)):
        cls = errors.SysscanError
    return cls(payload.get("path"), payload.get("problem", "error"))


def _child(send, path: str, options, limits: Limits, err_fd: int | None = None) -> None:
    """The worker side: rlimits, then the ordinary pipeline; the result goes back as plain dicts."""
    try:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent handles ^C and kills us
        signal.signal(signal.SIGALRM, signal.SIG_DFL)  # an alarm armed by the parent is not ours
        signal.setitimer(signal.ITIMER_REAL, 0)
        if err_fd is not None:
            os.dup2(err_fd, 2)
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, 1)  # the parent owns stdout (the report)
            os.close(devnull)
        cpu = None if limits.timeout is None else limits.timeout + HARD_STOP_GRACE
        apply_rlimits(limits.max_memory_mb, cpu)
        from .errors import SysscanError
        from .scan import scan_file

        def progress(stage: str, payload: dict) -> None:
            send.send((stage, payload))

        try:
            report = scan_file(path, options, limits=limits, progress=progress)
        except SysscanError as e:
            send.send(("error", {"type": type(e).__name__, "path": e.path, "problem": e.problem}))
            return
        except MemoryError:
            send.send(("dead", {"why": MEMORY_REASON}))
            return
        except BudgetExceeded:
            send.send(("dead", {"why": f"{BUDGET_REASON} ({limits.timeout:g}s, --timeout)"}))
            return
        except Exception as e:  # a bug in sysscan: the parent turns it into the CLI's internal-error line
            send.send(("internal", {"why": f"{type(e).__name__}: {e}"}))
            return
        send.send(("report", report.to_dict()))
    except BaseException:  # noqa: BLE001 - anything else (a failed send after MemoryError): the parent reports it
        pass
    finally:
        with contextlib.suppress(Exception):
            send.close()
        os._exit(0)
