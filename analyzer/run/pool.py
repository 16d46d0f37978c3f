"""Many inputs: scan the ELF files found under the given paths (analyzer.inputs.discover) with a pool of worker
processes (results cached by content), and put the reports together.

    result = scan_paths(["/usr/bin", "build/app"], ScanOptions(), Limits(), jobs=2, cache=ResultCache())
    result.reports      # [Report], sorted by path, whatever order the workers finished in
    result.failures     # [Failure], sorted by path: one line each on stderr, and the exit code (the highest one)
    aggregate(result.reports, result.failures, result.skipped)   # per binary + the union (render/aggregate.py)

The per-binary job is `run.job.scan_job(path, options, limits) -> dict`: a pure function, a path and options in, a
JSON-able result document out (`{"path", "report": {...}}` or `{"path", "error": {"type", "exit_code",
"problem"}}`), so a distributed engine can run it as is. The pool here runs the same function in forked worker
processes that live for the whole run (imports and the shared --vmlinux analysis are inherited, not re-done); a
worker that dies or overruns its binary's budget is replaced, and that binary still gets a report marked
incomplete (or an error line), as `run.isolate.run_isolated` does for one file.

Warm runs: each file's sha256 is looked up in the result cache (analyzer/cache.py) first; a run whose files are all
cached never imports LIEF, Capstone or the analysis code. Identical files under several names are analysed once.
"""
from __future__ import annotations

import gc
import json
import os
import stat
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from ..errors import JobError, SysscanError, error_from_doc
from ..inputs import Discovery, Skipped, discover
from .job import _job, _lost_doc, _retarget, _store, options_key, preload

# ---- results ------------------------------------------------------------------------------------------------------


@dataclass
class Failure:
    path: str
    error: SysscanError

    @property
    def exit_code(self) -> int:
        return self.error.exit_code

    @property
    def line(self) -> str:
        return f"sysscan: error: {self.error}"


@dataclass
class BatchResult:
    reports: list = field(default_factory=list)  # [model.Report], sorted by path
    failures: list[Failure] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)
    many: bool = False  # several inputs or a directory: the output is the multi-report document
    directories: list[str] = field(default_factory=list)
    images: list[dict] = field(default_factory=list)  # container images scanned: name, digest, layers, files
    files: int = 0
    cached: int = 0
    scanned: int = 0
    seconds: float = 0.0

    @property
    def exit_code(self) -> int:
        """0 when every file was reported; else the highest exit code among the failed files."""
        return max((f.exit_code for f in self.failures), default=0)


# ---- discovery ----------------------------------------------------------------------------------------------------


# ---- the per-binary job -------------------------------------------------------------------------------------------


# ---- progress -----------------------------------------------------------------------------------------------------


# ---- the pool -----------------------------------------------------------------------------------------------------

def default_jobs() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


_PARENT_ENDS: set[int] = set()
"""File descriptors of the parent's ends of the live workers' pipes: a new worker closes its inherited copies,
or a worker would keep its own pipe open and never see EOF when the parent dies."""


def _worker_main(conn, options, limits, cache_dir, cache_max, cache_on, okey, relabel, err_fd, close_fds=(),
                 parent=None) -> None:
    """A worker process: jobs in (index, path, sha), documents out (as compact JSON text), until told to stop."""
    import signal

    try:
        from .isolate import die_with_parent

        die_with_parent()
        if parent is not None and os.getppid() != parent:
            return  # the parent died before PR_SET_PDEATHSIG was in place
        for fd in close_fds:
            try:
                os.close(fd)
            except OSError:
                pass
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent handles ^C and stops us
        signal.signal(signal.SIGALRM, signal.SIG_DFL)
        signal.setitimer(signal.ITIMER_REAL, 0)
        if err_fd is not None:
            os.dup2(err_fd, 2)  # a native library dying says why here, not on the user's terminal
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, 1)  # the parent owns stdout (the report)
            os.close(devnull)
        from ..cache import ResultCache

        cache = ResultCache(cache_dir, cache_max, cache_on)
        while True:
            try:
                msg = conn.recv()
            except (EOFError, OSError):
                break
            if msg is None:
                break
            idx, path, sha = msg

            def progress(stage: str, payload: dict, _idx=idx) -> None:
                conn.send((stage, _idx, payload))

            doc, _ = _job(path, options, limits, progress)
            _store(cache, okey, sha, doc, relabel, getattr(options, "debug_dirs", None))
            conn.send(("done", idx, json.dumps(doc, separators=(",", ":"), ensure_ascii=False)))
            del doc
            gc.collect()  # scan_file runs with the cyclic collector paused: what it left in cycles goes now
    except BaseException:  # noqa: BLE001 - the parent sees the pipe close and reports the binary in hand
        pass
    finally:
        os._exit(0)


class _Worker:
    def __init__(self, ctx, args: tuple) -> None:
        import tempfile

        self.conn, child = ctx.Pipe(duplex=True)
        self.err = tempfile.TemporaryFile()
        self._fd = self.conn.fileno()
        _PARENT_ENDS.add(self._fd)
        # not daemonic: with --max-memory a worker forks a capped child per binary (limits.run_isolated), which
        # multiprocessing forbids to daemons. A worker whose parent is gone is killed (PR_SET_PDEATHSIG) or reads
        # EOF on its pipe and exits.
        self.proc = ctx.Process(target=_worker_main, args=(child, *args, self.err.fileno()),
                                kwargs={"close_fds": sorted(_PARENT_ENDS), "parent": os.getpid()}, daemon=False)
        self.proc.start()
        child.close()
        self.job: tuple[int, str, str | None] | None = None
        self.started = 0.0
        self.binary: dict | None = None

    def give(self, job: tuple[int, str, str | None]) -> None:
        self.job, self.started, self.binary = job, time.monotonic(), None
        self.conn.send(job)

    def native_last_line(self) -> str:
        try:
            self.err.seek(0)
            text = self.err.read()[-4096:].decode("utf-8", "replace")
        except OSError:
            return ""
        lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
        return lines[-1] if lines else ""

    def close(self, kill: bool = False) -> None:
        if kill and self.proc.is_alive():
            self.proc.kill()
        else:
            try:
                self.conn.send(None)
            except OSError:
                pass
        self.proc.join(5)
        if self.proc.is_alive():
            self.proc.kill()
            self.proc.join(5)
        _PARENT_ENDS.discard(self._fd)
        self.conn.close()
        self.err.close()


def run_pool(jobs: list[tuple[int, str, str | None]], options, limits, workers: int, cache, okey: str,
             on_done: Callable[[int, dict], None], progress: Progress,
             relabel: Callable[[dict], dict] | None = None) -> None:
    """Run `jobs` on `workers` forked processes; `on_done(index, document)` for each, in completion order."""
    import multiprocessing
    from multiprocessing.connection import wait

    from ..budget import HARD_STOP_GRACE
    from .isolate import _death_reason

    ctx = multiprocessing.get_context("fork")
    cache_args = (cache.directory, cache.max_bytes, cache.enabled) if cache is not None else (None, 0, False)
    args = (options, limits, *cache_args, okey, relabel)
    pending = list(reversed(jobs))
    grace = HARD_STOP_GRACE * (2 if limits.max_memory_mb is not None else 1)  # run_isolated has its own grace
    budget = None if limits.timeout is None else limits.timeout + grace + 1.0
    pool: list[_Worker] = []
    try:
        for _ in range(min(workers, len(jobs))):
            w = _Worker(ctx, args)
            pool.append(w)
            w.give(pending.pop())
        while any(w.job is not None for w in pool):
            busy = [w for w in pool if w.job is not None]
            timeout = 0.25
            if budget is not None:
                nearest = min(w.started + budget for w in busy) - time.monotonic()
                timeout = max(0.0, min(timeout, nearest))
            ready = set(wait([w.conn for w in busy] + [w.proc.sentinel for w in busy], timeout))
            progress.tick()
            for w in busy:
                lost_why = None
                if w.conn in ready or w.proc.sentinel in ready:
                    try:
                        while w.job is not None and w.conn.poll():
                            kind, idx, payload = w.conn.recv()
                            if kind == "binary":
                                w.binary = payload
                            elif kind == "done":
                                w.job = None
                                on_done(idx, json.loads(payload))
                    except (EOFError, OSError):
                        lost_why = "pipe"
                    if w.job is not None and (lost_why or not w.proc.is_alive()):
                        w.proc.join(1)
                        lost_why = _death_reason(w.proc.exitcode, False, limits)
                elif budget is not None and w.job is not None and time.monotonic() - w.started > budget:
                    lost_why = _death_reason(None, True, limits)
                if lost_why is not None:
                    idx, path, _sha = w.job
                    last = w.native_last_line()
                    if last and "budget" not in lost_why:
                        from ..textsafe import escape_controls

                        lost_why += f"; it said: {escape_controls(last)[:200]}"
                    binary = w.binary
                    w.job = None
                    w.close(kill=True)
                    pool.remove(w)
                    on_done(idx, _lost_doc(path, binary, lost_why, limits, options))
                    if pending:
                        w = _Worker(ctx, args)
                        pool.append(w)
                if w.job is None and pending and w in pool:
                    w.give(pending.pop())
            for w in pool:  # a replacement worker started above may still be idle
                if w.job is None and pending:
                    w.give(pending.pop())
    finally:
        for w in pool:
            w.close(kill=w.job is not None)


# ---- the whole run ------------------------------------------------------------------------------------------------

def _size(path: str) -> int:
    try:
        return os.stat(path).st_size
    except OSError:
        return 0


def _hash_all(paths: list[str], threads: int, max_size: int) -> dict[str, str]:
    """sha256 per path (hashlib releases the GIL: threads overlap the reads and the hashing). Files that are not
    regular or are over --max-size get none: never looked up, the scan gives their error."""
    from concurrent.futures import ThreadPoolExecutor

    from ..cache import file_sha256

    def one(p: str) -> tuple[str, str | None]:
        try:
            st = os.stat(p)
            if not stat.S_ISREG(st.st_mode) or st.st_size > max_size:
                return p, None  # a FIFO would block the read; the scan says "not a regular file" / "too large"
            return p, file_sha256(p)
        except OSError:
            return p, None  # the scan reports it

    if len(paths) <= 1:
        return {p: s for p, s in map(one, paths) if s}
    with ThreadPoolExecutor(max_workers=max(1, threads)) as ex:
        return {p: s for p, s in ex.map(one, paths) if s}


def scan_paths(paths: Sequence[str], options=None, limits=None, *, jobs: int | None = None, cache=None,
               progress: Progress | None = None, found: Discovery | None = None,
               relabel: Callable[[dict], dict] | None = None) -> BatchResult:
    """Discover, look up the cache, scan what is missing (in-process for one file, else a pool), sort by path.
    When the directories given hold no ELF file at all (and nothing else was given), `files` is 0.

    `found`: the files, already known (an image's ELF files), instead of discovering `paths`. `relabel(doc)`: each
    result document renamed before it is cached and before it becomes a report (an image's files by their path
    inside the image)."""
    from ..budget import Limits
    from .freshness import current

    t0 = time.perf_counter()
    limits = limits or Limits()
    progress = progress or Progress()
    jobs = default_jobs() if not jobs or jobs < 1 else jobs
    if found is None:
        found = discover(paths, links=options is None or getattr(options, "sysroot", "/") in ("", "/"))
    result = BatchResult(skipped=found.skipped, many=len(paths) > 1 or bool(found.directories),
                         files=len(found.files), directories=found.directories)
    if not found.files:
        return result
    okey = options_key(options, limits)
    use_cache = cache is not None and cache.enabled
    shas = _hash_all(found.files, max(2, jobs * 2), limits.max_size) if use_cache else {}
    docs: dict[str, dict] = {}
    objects: dict[str, object] = {}  # path -> Report from an in-process scan (no JSON round trip needed)
    todo: list[str] = []
    for p in found.files:
        sha = shas.get(p)
        hit = cache.get(sha, okey) if sha else None
        if hit is not None and relabel is None and not current(hit):  # a library or a debug file changed since
            hit = None
        if hit is not None:
            docs[p] = _retarget(hit, p)
            result.cached += 1
        else:
            todo.append(p)
    # identical bytes under several names: analyse one, give its result to all
    by_sha: dict[str, list[str]] = {}
    unique: list[str] = []
    for p in todo:
        sha = shas.get(p)
        if sha is None:
            unique.append(p)
        elif sha in by_sha:
            by_sha[sha].append(p)
        else:
            by_sha[sha] = [p]
            unique.append(p)
    result.scanned = len(unique)
    progress.start(len(found.files), result.cached + (len(todo) - len(unique)))

    def done(path: str, doc: dict) -> None:
        docs[path] = doc
        for other in by_sha.get(shas.get(path, ""), [])[1:]:
            docs[other] = _retarget(doc, other)
        progress.advance(path, "failed" if "error" in doc else "scanned")

    try:
        if len(unique) == 1 or (unique and jobs == 1):
            for p in unique:
                doc, report = _job(p, options, limits)
                _store(cache, okey, shas.get(p), doc, relabel, getattr(options, "debug_dirs", None))
                if report is not None:
                    objects[p] = report
                done(p, doc)
        elif unique:
            preload()
            # largest first (LPT): one big binary started last would otherwise finish alone, long after the rest
            unique.sort(key=lambda p: (-_size(p), p))
            indexed = [(i, p, shas.get(p)) for i, p in enumerate(unique)]
            run_pool(indexed, options, limits, min(jobs, len(unique)), cache, okey,
                     lambda i, doc: done(unique[i], doc), progress, relabel)
    finally:
        progress.stop()
    if use_cache and cache.stats.stores:
        cache.prune()
    collect(result, docs, objects, relabel)
    result.seconds = time.perf_counter() - t0
    return result


def collect(result: BatchResult, docs: dict[str, dict], objects: dict | None = None,
            relabel: Callable[[dict], dict] | None = None) -> None:
    """The result documents (path -> document) as reports and failures, sorted by path: the same for every runner
    (this pool, a Dask cluster), so that their outputs are the same bytes."""
    from ..model import Report

    objects = objects or {}
    if relabel is not None:
        docs = {d["path"]: d for d in map(relabel, docs.values())}
        objects = {}
    for p in sorted(docs):
        doc = docs[p]
        if "report" in doc:
            rep = objects.get(p)
            if rep is None:
                try:
                    rep = Report.from_dict(doc["report"])
                except (ValueError, KeyError, TypeError, AttributeError) as e:
                    result.failures.append(Failure(p, JobError(p, f"internal error: bad result document: {e}")))
                    continue
            result.reports.append(rep)
        else:
            result.failures.append(Failure(p, error_from_doc(p, doc.get("error") or {})))


# ---- command-line glue (cli.py only wires these in) ---------------------------------------------------------------


class Progress:
    """What the pool tells about its progress. The default does nothing."""

    def start(self, total: int, cached: int) -> None: ...

    def advance(self, path: str, how: str) -> None: ...  # how: "scanned" | "failed"

    def tick(self) -> None: ...

    def stop(self) -> None: ...
