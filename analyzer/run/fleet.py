"""Many machines: the per-binary jobs of many inputs (directories, root filesystems, container images) sent to a
Dask cluster (`pip install sysscan[fleet]`), given by its scheduler's address, or to a local cluster.

    result = run_fleet(["app.tar", "/srv/rootfs", "/usr/bin"], options, limits, FleetConfig(store="/shared/sysscan"))
    result.inputs         # [FleetInput]: per input (per image) a BatchResult, as `sysscan INPUT` would give it

How a run goes:
- The client opens every input (an image's layers are merged into the store's content-addressed roots), hashes
  every ELF file and keys it as the result cache does: (sha256, everything else that changes the result, the
  sysroot included). What the store already holds is not sent again: a re-run, or a second fleet that shares
  files (a layer, a base image), skips it; an interrupted run resumes where it stopped.
- Each key is one Dask task (`fleet_task`), sent once however many paths share it. A worker analyses the file in
  an isolated child (the --timeout / --max-memory child of run/isolate.py), so a hostile file costs that child,
  never the worker; it writes the document into the store itself and returns one line of status, so results never
  funnel through the client. A document that is not a pure function of the input (a time or memory limit hit, an
  internal error) goes to `failed/`, and a re-run does not retry it unless asked (--retry-failed).
- A worker that dies anyway (killed, lost machine) has its task run again on another worker by Dask, up to the
  scheduler's `allowed-failures`; after that the client records the failure for that file.
- The client then reads the documents back from the store and puts each input's reports together with the same
  code as the local pool (pool.collect), so the outputs are the same bytes.

Isolation needs workers that may start processes: a Dask worker started by a nanny is a daemon process unless
`distributed.worker.daemon` is False (DASK_DISTRIBUTED__WORKER__DAEMON=False). The local cluster is started so;
a daemonic worker analyses in its own process instead (and a crash costs that worker one retry).
"""
from __future__ import annotations

import hashlib
import json
import os
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace

from ..errors import JobError, UsageError
from ..inputs import Discovery, detect, discover, is_rootfs
from .job import _error_doc, _retarget, options_key
from .pool import BatchResult, Progress, collect

NO_PRUNE = 1 << 62  # the store is the fleet's record: never pruned by size
DEFAULT_ISOLATION_MB = 16384  # the child's address-space cap when --max-memory is not given
MAX_LOST = 3  # a task lost with its worker is run again this many times


@dataclass
class FleetConfig:
    scheduler: str | None = None  # tcp://host:8786; None: a local cluster
    workers: int = 2  # local cluster only
    store: str | None = None  # the shared result store; None: under the cache directory
    retry_failed: bool = False


@dataclass
class FleetInput:
    """One input as `sysscan INPUT` sees it: its files, the root they run under, and (after the run) its result."""

    label: str
    sysroot: str
    found: Discovery
    relabel: Callable[[dict], dict] | None = None  # picklable: the workers keep documents relabelled
    images: list[dict] = field(default_factory=list)
    scan_options: Callable | None = None  # the scan's options for this input (an image: its root and its key)
    result: BatchResult | None = None


@dataclass
class FleetResult:
    inputs: list[FleetInput]
    files: int = 0  # ELF files in all inputs
    keys: int = 0  # distinct (content, root) keys among them
    stored: int = 0  # keys already in the store
    submitted: int = 0  # keys sent to the cluster
    failed: int = 0  # keys whose result is a recorded failure
    workers: int = 0
    seconds: float = 0.0

    @property
    def exit_code(self) -> int:
        return max((i.result.exit_code for i in self.inputs if i.result is not None), default=0)


def store_dir(config: FleetConfig) -> str:
    from ..cache import base_dir

    return config.store or os.path.join(base_dir(), "fleet")


# ---- the inputs ---------------------------------------------------------------------------------------------------

def open_inputs(paths: Sequence[str], store: str, max_size: int) -> list[FleetInput]:
    """Each path as the scan command would take it: an image (each of its images), a root filesystem (its own
    sysroot, links not followed), or files and directories under this machine's root."""
    from ..inputs.image import ImageStore, is_image
    from .image import prepare_images

    out: list[FleetInput] = []
    for p in paths:
        if is_image(p):
            prepared = prepare_images(p, ImageStore(os.path.join(store, "images")), max_size)
            for im in prepared:
                found = Discovery(files=[os.path.join(im.root, f) for f in im.files], skipped=im.skipped)
                label = p if len(prepared) == 1 else f"{p} ({im.info['name']})"
                out.append(FleetInput(label, im.root, found, im.unroot, [im.info], im.options))
        elif is_rootfs(p) and os.path.realpath(p) != "/":
            out.append(FleetInput(p, p, discover([p], links=False)))
        elif detect(p) == "other" and not os.path.exists(p):
            raise UsageError(p, "no such file or directory")
        else:
            out.append(FleetInput(p, "/", discover([p])))
    return out


# ---- the task (runs on a worker) --------------------------------------------------------------------------------

def _failed_path(store: str, key: str) -> str:
    return os.path.join(store, "failed", key[:2], key + ".json")


def _write_failed(store: str, key: str, doc: dict) -> None:
    path = _failed_path(store, key)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=os.path.dirname(path))
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        json.dump(doc, fh, separators=(",", ":"), ensure_ascii=False)
    os.replace(tmp, path)


def _read_failed(store: str, key: str) -> dict | None:
    try:
        with open(_failed_path(store, key), encoding="utf-8") as fh:
            doc = json.load(fh)
    except (OSError, ValueError):
        return None
    return doc if isinstance(doc, dict) and ("report" in doc or "error" in doc) else None


def _results(store: str):
    from ..cache import ResultCache

    cache = ResultCache(os.path.join(store, "results"), NO_PRUNE, True)
    cache.enabled = True  # the fleet's record, not a cache: --no-cache (SYSSCAN_NO_CACHE) is not about it
    return cache


def fleet_task(key: str, path: str, sha: str | None, options, limits, store: str, relabel=None) -> str:
    """On a worker: analyse one file in an isolated child, write its document into the store (relabelled: an
    image's paths), return one line. Never raises for anything about the file."""
    import multiprocessing

    from .job import _job, _store, preload

    okey = options_key(options, limits)
    if multiprocessing.current_process().daemon:  # a daemon may not start the isolating child
        isolated = replace(limits, max_memory_mb=None)
    else:
        isolated = replace(limits, max_memory_mb=limits.max_memory_mb or DEFAULT_ISOLATION_MB)
        preload()  # once per worker: the isolated children inherit it
    doc, _ = _job(path, options, isolated)
    cache = _results(store)
    before = cache.stats.stores
    _store(cache, okey, sha, doc, relabel)
    if cache.stats.stores == before:  # not a pure function of the input: recorded, not retried
        _write_failed(store, key, relabel(doc) if relabel is not None else doc)
        return "failed"
    return "error" if "error" in doc else "report"


def _key(sha: str, okey: str) -> str:
    from ..cache import ResultCache

    return ResultCache.key(sha, okey)


# ---- the client -----------------------------------------------------------------------------------------------

def _client(config: FleetConfig):
    try:
        import dask
        from dask.distributed import Client, LocalCluster
    except ImportError:
        raise UsageError(None, "sysscan fleet needs Dask: pip install 'sysscan[fleet]'") from None
    if config.scheduler:
        try:
            return Client(config.scheduler, timeout="30s"), None
        except (OSError, TimeoutError) as e:
            raise UsageError(config.scheduler, f"cannot reach the Dask scheduler: {e}") from None
    with dask.config.set({"distributed.worker.daemon": False, "distributed.scheduler.allowed-failures": 2,
                          "logging.distributed": "error"}):
        cluster = LocalCluster(n_workers=config.workers, threads_per_worker=1, processes=True,
                               dashboard_address=None, silence_logs=50)
        return Client(cluster), cluster


def run_fleet(paths: Sequence[str], options=None, limits=None, config: FleetConfig | None = None,
              progress: Progress | None = None, on_client: Callable | None = None) -> FleetResult:
    """Open the inputs, send what the store lacks to the cluster, and put each input's result together.
    `on_client(client)` is called once the cluster is up (the tests kill a worker through it)."""
    from ..budget import Limits
    from .pipeline import ScanOptions
    from .pool import _hash_all

    t0 = time.perf_counter()
    config = config or FleetConfig()
    limits = limits or Limits()
    options = options or ScanOptions()
    progress = progress or Progress()
    store = store_dir(config)
    os.makedirs(store, exist_ok=True)
    inputs = open_inputs(paths, store, limits.max_size)
    everything = sorted({f for i in inputs for f in i.found.files})
    shas = _hash_all(everything, 4, limits.max_size)
    results = _results(store)

    # key -> (path analysed, sha, options); per input: path -> key
    plan: dict[str, tuple[str, str | None, object, Callable | None]] = {}
    keys_of: list[dict[str, str]] = []
    for inp in inputs:
        if inp.scan_options is not None:
            opts = inp.scan_options(options)
        else:
            opts = replace(options, sysroot=inp.sysroot) if inp.sysroot != "/" else options
        okey = options_key(opts, limits)
        mine = {}
        for f in inp.found.files:
            sha = shas.get(f)
            key = _key(sha, okey) if sha else "path-" + hashlib.sha256(f"{f}\n{okey}".encode()).hexdigest()
            mine[f] = key
            plan.setdefault(key, (f, sha, opts, inp.relabel))
        keys_of.append(mine)
    out = FleetResult(inputs, files=sum(len(m) for m in keys_of), keys=len(plan))

    failed: set[str] = set()

    def stored(key: str, retry: bool = False) -> dict | None:
        _path, sha, opts, _relabel = plan[key]
        if sha:
            hit = results.get(sha, options_key(opts, limits))
            if hit is not None:
                return hit
        doc = None if retry else _read_failed(store, key)
        if doc is not None:
            failed.add(key)
        return doc

    docs: dict[str, dict] = {}
    todo = []
    for key in sorted(plan):
        doc = stored(key, config.retry_failed)
        if doc is not None:
            docs[key] = doc
        else:
            todo.append(key)
    out.stored = len(docs)
    out.submitted = len(todo)
    progress.start(out.keys, out.stored)
    try:
        if todo:
            _submit(todo, plan, limits, store, config, progress, on_client, out)
    finally:
        progress.stop()
    for key in todo:
        if key not in docs:
            docs[key] = stored(key) or _error_doc(plan[key][0], JobError(
                plan[key][0], "internal error: the worker finished but its result is not in the store"))
    out.failed = len(failed)
    for inp, mine in zip(inputs, keys_of):
        res = BatchResult(skipped=list(inp.found.skipped), many=True, files=len(inp.found.files),
                          directories=inp.found.directories, images=inp.images)
        collect(res, {f: _retarget(docs[k], f) for f, k in mine.items()}, None, inp.relabel)
        inp.result = res
    out.seconds = time.perf_counter() - t0
    return out


def _submit(todo, plan, limits, store, config, progress, on_client, out) -> None:
    from dask.distributed import as_completed

    client, cluster = _client(config)
    try:
        out.workers = len(client.scheduler_info().get("workers", {}))
        if on_client is not None:
            on_client(client)
        shared: dict[int, object] = {}  # each distinct options object sent to the workers once
        futures = {}
        for key in sorted(todo, key=lambda k: (-_size(plan[k][0]), k)):  # largest first, as the local pool
            path, sha, opts, relabel = plan[key]
            if id(opts) not in shared:
                shared[id(opts)] = client.scatter(opts, broadcast=True)
            fut = client.submit(fleet_task, key, path, sha, shared[id(opts)], limits, store, relabel,
                                key=f"sysscan-{key}", pure=False, retries=0)
            futures[fut] = key
        lost: dict[str, int] = {}  # key -> times its task was lost
        pending = as_completed(list(futures))
        for fut in pending:
            key = futures.pop(fut)
            path = plan[key][0]
            if fut.cancelled() and lost.get(key, 0) < MAX_LOST:
                # a task whose worker died may come back cancelled ("already forgotten") instead of moved to
                # another worker: it is run again (a task is idempotent: its result is written atomically)
                lost[key] = lost.get(key, 0) + 1
                _, sha, opts, relabel = plan[key]
                again = client.submit(fleet_task, key, path, sha, client.scatter(opts, broadcast=True), limits,
                                      store, relabel, key=f"sysscan-{key}-{lost[key]}", pure=False, retries=0)
                futures[again] = key
                pending.add(again)
                continue
            if fut.status in ("error", "cancelled"):
                why = (f"{type(fut.exception()).__name__}: {str(fut.exception())[:200]}" if fut.status == "error"
                       else f"cancelled {lost.get(key, 0) + 1} times (its workers died)")
                doc = _error_doc(path, JobError(path, f"internal error: the Dask task failed: {why}"))
                _write_failed(store, key, doc)  # read back below, as a worker's would be
                progress.advance(path, "failed")
            else:
                progress.advance(path, "failed" if fut.result() != "report" else "scanned")
            fut.release()
    finally:
        client.close()
        if cluster is not None:
            cluster.close()


def _size(path: str) -> int:
    try:
        return os.stat(path).st_size
    except OSError:
        return 0
