"""The per-binary job as a pure function: a path, options and limits in, a JSON-able result document out
(`{"path", "report": {...}}` or `{"path", "error": {"type", "exit_code", "problem"}}`), so any runner (the pool
here, a distributed engine) can run it as is."""
from __future__ import annotations

import os

from .. import errors
from ..errors import JobError, SysscanError


INTERNAL = "InternalError"


def options_key(options=None, limits=None) -> str:
    """Everything besides the input's bytes that can change a result document (part of the cache key)."""
    from ..budget import Limits

    limits = limits or Limits()
    okey = options.key() if options is not None else "t=None;rules=shipped;kernel=None"
    return f"{okey};timeout={limits.timeout};max_sites={limits.max_sites};fn={limits.function_seconds}"


def _error_doc(path: str, e: SysscanError) -> dict:
    return {"path": path, "error": {"type": type(e).__name__, "exit_code": e.exit_code, "problem": e.problem}}


def scan_job(path: str, options=None, limits=None, progress=None) -> dict:
    """Analyse one binary: a path and options in, a JSON-able result document out. Never raises for anything
    about the input or the analysis (KeyboardInterrupt aside):

        {"path": P, "report": Report.to_dict()}                              # a report (maybe `incomplete`)
        {"path": P, "error": {"type": "CorruptELF", "exit_code": 5, "problem": "..."}}

    With `limits.max_memory_mb` the analysis runs in a forked child under RLIMIT_AS (`limits.run_isolated`),
    else in this process with the wall-clock budget and a SIGALRM backstop (as the CLI does for one file)."""
    return _job(path, options, limits, progress)[0]


def _job(path: str, options, limits, progress=None):
    """(document, Report or None): the Report object too, so that an in-process caller can skip a round trip."""
    from ..budget import HARD_STOP_GRACE, BudgetExceeded, Limits, time_limit
    from .isolate import InternalFailure, run_isolated

    limits = limits or Limits()
    loaded: list[dict] = []  # the site-less report sent once the ELF is loaded: what a hard stop still reports

    def seen(stage: str, payload: dict) -> None:
        if stage == "binary":
            loaded[:] = [payload]
        if progress is not None:
            progress(stage, payload)

    try:
        if limits.max_memory_mb is not None:
            preload()  # libraries are mapped before the child's RLIMIT_AS: the cap is for the analysis itself
            res = run_isolated(path, options, limits)
            if isinstance(res, InternalFailure):
                raise JobError(path, f"internal error: {res}".replace(f"{path}: ", "", 1))
            if isinstance(res, Exception):
                raise res
            report = res
        else:
            from .pipeline import scan_file

            hard = None if limits.timeout is None else limits.timeout + HARD_STOP_GRACE
            try:
                with time_limit(hard):
                    report = scan_file(path, options, limits=limits, progress=seen)
            except BudgetExceeded:
                why = f"time budget exhausted ({limits.timeout:g}s, --timeout, stopped {HARD_STOP_GRACE:g}s later)"
                if loaded:
                    return _lost_doc(path, loaded[0], why, limits, options), None
                raise errors.LimitExceeded(path, f"{why} before anything could be reported") from None
    except SysscanError as e:
        return _error_doc(path, e), None
    except MemoryError:
        return _error_doc(path, JobError(path, "internal error: out of memory")), None
    except RecursionError as e:
        return _error_doc(path, JobError(path, f"internal error: RecursionError: {e}")), None
    except Exception as e:  # noqa: BLE001 - a bug in sysscan on this file: reported for this file, the run goes on
        if os.environ.get("SYSSCAN_DEBUG"):
            import traceback

            traceback.print_exc()
        return _error_doc(path, JobError(path, f"internal error: {type(e).__name__}: {str(e)[:300]}")), None
    return {"path": path, "report": report.to_dict()}, report


def _cache_payload(doc: dict) -> dict | None:
    """What of a job's document goes into the cache: the report, or a deterministic input error."""
    from ..cache import CACHEABLE_ERRORS

    if "report" in doc:
        return {"report": doc["report"]}
    if doc.get("error", {}).get("type") in CACHEABLE_ERRORS:
        return {"error": {"type": doc["error"]["type"], "problem": doc["error"]["problem"]}}
    return None


def _store(cache, okey: str, sha: str | None, doc: dict, relabel=None, debug_dirs=None) -> None:
    """Keep a result document in the cache. `relabel`: the document as it is kept (an image's files by their paths
    inside the image, so that another image with the same libraries can use it). A host scan's result records the
    libraries and debug files it read (run/freshness.py)."""
    from ..elf.debugfile import DEFAULT_DIRS
    from .freshness import record

    if cache is None or not cache.enabled:
        return
    payload = _cache_payload(relabel(doc) if relabel is not None else doc)
    if payload is None:
        return
    if relabel is None and "report" in payload:
        payload.update(record(payload["report"], DEFAULT_DIRS if debug_dirs is None else debug_dirs))
    key_sha = doc["report"]["binary"].get("sha256") if "report" in doc else sha  # what was actually analysed
    if key_sha:
        cache.put(key_sha, okey, payload)


def _retarget(doc: dict, path: str) -> dict:
    """A result document (from the cache, or another file with the same bytes) for `path`."""
    if "report" in doc:
        rep = dict(doc["report"])
        binary = dict(rep.get("binary") or {})
        old = binary.get("path")
        binary["path"] = path
        binary["name"] = os.path.basename(path)
        rep["binary"] = binary
        surface = rep.get("surface")
        if isinstance(surface, dict) and isinstance(surface.get("objects"), list):
            surface = dict(surface)  # the program itself is the file under its new name too
            surface["objects"] = [{**o, "path": path} if isinstance(o, dict) and o.get("kind") == "program" and
                                  o.get("path") == old else o for o in surface["objects"]]
            rep["surface"] = surface
        return {"path": path, "report": rep}
    return {"path": path, "error": dict(doc.get("error") or {})}


def preload() -> None:
    """Import what an analysis needs (LIEF ~1 s, Capstone, the data-flow engine) in this process, before forking
    workers or isolated children: paid once instead of per process, shared copy-on-write, and outside any
    RLIMIT_AS a child applies. A warm run (everything cached) never calls this."""
    from .. import sites  # noqa: F401 - Capstone
    from ..values import local  # noqa: F401

    try:
        import lief  # noqa: F401
    except ImportError:  # the child reports it as it always did
        pass


def _lost_doc(path: str, binary: dict | None, why: str, limits, options=None) -> dict:
    """The document for a binary whose worker died or was killed: its header, marked incomplete, through the rules
    stage, if it had been loaded; else an error for that file."""
    if binary is None:
        if limits.max_memory_mb is None and "time budget" not in why:
            return _error_doc(path, JobError(path, f"internal error: the analysing process died ({why})"))
        return _error_doc(path, errors.LimitExceeded(path, f"analysis stopped before the ELF was loaded: {why}"))
    from ..model import Report
    from .pipeline import rules_stage

    rep = Report.from_dict(binary)
    rep.incomplete = sorted(set(rep.incomplete) | {f"analysis stopped: {why}; no sites could be reported"})
    rules_stage(rep, options)
    return {"path": path, "report": rep.to_dict()}
