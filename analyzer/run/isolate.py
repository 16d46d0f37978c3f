"""One binary analysed in a forked child under rlimits: a child that runs out of memory, overruns its time or dies
from a signal yields a report for that binary marked incomplete (or an error for that file), and the run goes on.

The shape (path + options + limits in, `Report` or `SysscanError` out) is what the worker pool (run/pool.py) reuses.
"""
from __future__ import annotations

import contextlib
import os
import resource
import signal
import time

from ..errors import error_from_doc
from .. import budget  # budget.HARD_STOP_GRACE read at call time: one value for the pool and this child
from ..budget import BUDGET_REASON, MEMORY_REASON, BudgetExceeded, Limits


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


def run_isolated(path: str, options=None, limits: Limits | None = None):
    """Analyse `path` in a forked child under `limits`; return a `Report`, or the `SysscanError` for that file.

    Never raises for anything that happens in the child. What the parent knows when the child fails:
    - the child sent the loaded binary's header info → a Report with that info, no sites, and `incomplete`
      naming the limit (or the signal) that stopped it;
    - it died before that → `LimitExceeded` (exit code 10) naming the limit, for this file only.
    """
    import multiprocessing

    from ..errors import SysscanError

    limits = limits or Limits()
    import tempfile

    ctx = multiprocessing.get_context("fork")
    recv, send = ctx.Pipe(duplex=False)
    # The child's fd 2 goes to a file: a native library dying (C++ terminate, glibc abort) writes there, not on
    # the user's terminal, and its last line can explain the death.
    native_err = tempfile.TemporaryFile()
    proc = ctx.Process(target=_child, args=(send, path, options, limits, native_err.fileno(), os.getpid()),
                       daemon=True)
    proc.start()
    send.close()
    hard = None if limits.timeout is None else limits.timeout + budget.HARD_STOP_GRACE
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
        from ..model import Report

        return Report.from_dict(final[1])
    if final is not None and final[0] == "error":
        return error_from_doc(final[1].get("path"), final[1])
    if final is not None and final[0] == "dead":
        why = final[1]["why"] + (f" ({limits.max_memory_mb} MB, --max-memory)" if limits.max_memory_mb else "")
    else:
        why = _death_reason(proc.exitcode, killed_for_time, limits)
        last = [ln.strip() for ln in native.splitlines() if ln.strip()]
        if last:
            from ..textsafe import escape_controls

            why += f"; it said: {escape_controls(last[-1])[:200]}"
    info = next((m for m in messages if m[0] == "binary"), None)
    if info is None:
        from ..errors import LimitExceeded

        return LimitExceeded(path, f"analysis stopped before the ELF was loaded: {why}")
    from ..model import Report

    from .pipeline import rules_stage

    report = Report.from_dict(info[1])
    report.incomplete = sorted(set(report.incomplete) | {f"analysis stopped: {why}; no sites could be reported"})
    rules_stage(report, options)
    _ = SysscanError  # imported for the type in the docstring; keeps linters quiet
    return report


class InternalFailure(Exception):
    """A bug in sysscan inside the isolated child (not an input problem); the CLI reports it as exit 70."""

    def __init__(self, path: str, why: str) -> None:
        self.path = path
        super().__init__(f"{path}: {why}")


def _death_reason(exitcode: int | None, killed_for_time: bool, limits: Limits) -> str:
    if killed_for_time:
        return f"{BUDGET_REASON} (killed after {limits.timeout:g}s + {budget.HARD_STOP_GRACE:g}s grace)"
    if exitcode is not None and exitcode < 0:
        sig = -exitcode
        name = signal.Signals(sig).name if sig in signal.Signals._value2member_map_ else f"signal {sig}"
        if sig == signal.SIGXCPU or sig == signal.SIGKILL and limits.timeout is not None:
            return f"{BUDGET_REASON} (CPU limit, {name})"
        if limits.max_memory_mb is not None and sig in (signal.SIGABRT, signal.SIGSEGV, signal.SIGBUS):
            return f"{MEMORY_REASON} ({limits.max_memory_mb} MB) or a crash in a native library ({name})"
        return f"the analysing process died ({name})"
    return f"the analysing process exited with status {exitcode} without a result"


def die_with_parent() -> None:
    """Linux: SIGKILL this process when its parent dies (a killed `sysscan`, or a killed Dask worker, leaves no
    analysis running on, blocked on a pipe nobody reads)."""
    try:
        import ctypes
        import signal

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, int(signal.SIGKILL), 0, 0, 0)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError, TypeError):
        pass


def _child(send, path: str, options, limits: Limits, err_fd: int | None = None, parent: int | None = None) -> None:
    """The worker side: rlimits, then the ordinary pipeline; the result goes back as plain dicts."""
    try:
        die_with_parent()
        if parent is not None and os.getppid() != parent:
            return  # the parent died before PR_SET_PDEATHSIG was in place
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent handles ^C and kills us
        signal.signal(signal.SIGALRM, signal.SIG_DFL)  # an alarm armed by the parent is not ours
        signal.setitimer(signal.ITIMER_REAL, 0)
        if err_fd is not None:
            os.dup2(err_fd, 2)
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, 1)  # the parent owns stdout (the report)
            os.close(devnull)
        cpu = None if limits.timeout is None else limits.timeout + budget.HARD_STOP_GRACE
        apply_rlimits(limits.max_memory_mb, cpu)
        from ..errors import SysscanError
        from .pipeline import scan_file

        def progress(stage: str, payload: dict) -> None:
            send.send((stage, payload))

        try:
            report = scan_file(path, options, limits=limits, progress=progress)
        except SysscanError as e:
            send.send(("error", {"type": type(e).__name__, "path": e.path, "problem": e.problem,
                                "exit_code": e.exit_code}))
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
