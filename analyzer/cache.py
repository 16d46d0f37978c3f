"""On-disk cache of per-binary results: $XDG_CACHE_HOME/sysscan/reports/ (default ~/.cache/sysscan/reports/).

The kernel analyses live next door in .../sysscan/kernel/ (analyzer/kernel/cache.py); `sysscan cache info|clear`
covers both.

Key: sha256 over (entry format, sysscan's version, the code fingerprint, the options that change results, the
input's content sha256). The content hash is recomputed on every lookup (~1 ms per MB with SHA-NI): a file's
(size, mtime) is never trusted. The code fingerprint hashes the (path, size, mtime) of every file of the installed
`analyzer` package, so an edited checkout (editable install) never reads results from older code; a wheel install
has fixed mtimes and keeps its cache.

An entry is one file, `reports/KK/KEY.json`: a header line (JSON: format, tool version, code fingerprint, options
key, content sha256, payload size and sha256) then the payload (compact JSON: `{"report": {...}}` or
`{"error": {"type", "problem"}}` for deterministic input errors). A read checks every header field and the
payload's own hash: a truncated, edited or bit-flipped entry is ignored (and rebuilt by the next store), never
trusted. Writes are atomic (analyzer.outfile: a temp file in the same directory, then os.replace), so concurrent
workers and concurrent runs only ever see whole entries; two writers of one key both write the same result.

Bounded: after a run that wrote entries, `prune()` removes the least recently used ones (a hit refreshes an
entry's mtime) until the directory is under 80 % of the bound. The bound is `SYSSCAN_CACHE_MAX_MB` (default
1024 MB). The cache is an optimisation: a read-only or full disk makes it a no-op, never an error.
`SYSSCAN_NO_CACHE=1` in the environment turns this cache and the derived one (parsed rule files) off, as
`--no-cache` does (which sets it, so that worker processes see it too).
"""
from __future__ import annotations

import hashlib
import json
import os
import time
from dataclasses import dataclass

from . import __version__, outfile

FORMAT = 1
DEFAULT_MAX_MB = 1024
TMP_PREFIX = ".tmp-"
"""Temporary files of entries being written (outfile.write_text's tmp_prefix): prune() removes stale ones."""
STALE_TMP_SECONDS = 3600.0
CACHEABLE_ERRORS = ("NotAnELF", "CorruptELF", "UnsupportedArch")
"""Input errors that depend only on the file's bytes (and so may be cached with them). Missing files, size limits
and internal errors are not."""
VOLATILE_MARKERS = ("time budget exhausted", "memory limit exhausted", "analysis stopped")
"""A report mentioning any of these depends on the machine's load or limits, not only on the input: never cached."""


def base_dir() -> str:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "sysscan")


def reports_dir() -> str:
    return os.path.join(base_dir(), "reports")


def kernel_dir() -> str:
    return os.path.join(base_dir(), "kernel")


def max_bytes_from_env() -> int:
    raw = os.environ.get("SYSSCAN_CACHE_MAX_MB", "")
    try:
        mb = float(raw) if raw.strip() else DEFAULT_MAX_MB
    except ValueError:
        mb = DEFAULT_MAX_MB
    return max(0, int(mb * (1 << 20)))


_CODE_FP: str | None = None


def code_fingerprint() -> str:
    """A short hash of the analyzer package's files (relative path, size, mtime_ns): changes whenever the code
    or its data (syscall tables, rules) change. ~1 ms; computed once per process."""
    global _CODE_FP
    if _CODE_FP is None:
        pkg = os.path.dirname(os.path.abspath(__file__))
        roots = [pkg]
        rules = os.path.join(os.path.dirname(pkg), "rules")  # editable install: shipped rules live beside it
        if os.path.isdir(rules):
            roots.append(rules)
        h = hashlib.sha256(__version__.encode())
        for root in roots:
            for dirpath, dirnames, filenames in os.walk(root):
                dirnames[:] = sorted(d for d in dirnames if d != "__pycache__" and not d.startswith("."))
                for name in sorted(filenames):
                    if name.endswith((".pyc", ".pyo")) or name.startswith("."):
                        continue
                    p = os.path.join(dirpath, name)
                    try:
                        st = os.stat(p)
                    except OSError:
                        continue
                    h.update(f"{os.path.relpath(p, root)}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
        _CODE_FP = h.hexdigest()[:16]
    return _CODE_FP


def file_sha256(path: str, chunk: int = 1 << 20) -> str:
    """The content hash a cache key uses (the same as the report's binary.sha256). Raises OSError."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while True:
            b = fh.read(chunk)
            if not b:
                break
            h.update(b)
    return h.hexdigest()


@dataclass
class CacheStats:
    hits: int = 0
    misses: int = 0
    stores: int = 0
    corrupt: int = 0
    evicted: int = 0


class ResultCache:
    """Per-binary results keyed by content. `enabled=False` (--no-cache) makes every call a no-op miss."""

    def __init__(self, directory: str | None = None, max_bytes: int | None = None, enabled: bool = True) -> None:
        self.directory = directory or reports_dir()
        self.max_bytes = max_bytes_from_env() if max_bytes is None else max_bytes
        self.enabled = enabled and self.max_bytes > 0 and not os.environ.get("SYSSCAN_NO_CACHE")
        self.stats = CacheStats()

    # ---- keys -------------------------------------------------------------------------------------------------
    @staticmethod
    def key(sha256: str, options_key: str) -> str:
        text = f"{FORMAT}\0{__version__}\0{code_fingerprint()}\0{options_key}\0{sha256}"
        return hashlib.sha256(text.encode()).hexdigest()

    def path_for(self, key: str) -> str:
        return os.path.join(self.directory, key[:2], key[2:] + ".json")

    def _header(self, sha256: str, options_key: str, payload: bytes) -> dict:
        return {"format": FORMAT, "tool_version": __version__, "code": code_fingerprint(), "options": options_key,
                "sha256": sha256, "payload_bytes": len(payload),
                "payload_sha256": hashlib.sha256(payload).hexdigest()}

    # ---- read / write -------------------------------------------------------------------------------------------
    def get(self, sha256: str, options_key: str) -> dict | None:
        """The stored result document, or None (miss, or an entry that fails any check)."""
        if not self.enabled:
            return None
        path = self.path_for(self.key(sha256, options_key))
        try:
            with open(path, "rb") as fh:
                data = fh.read()
        except OSError:
            self.stats.misses += 1
            return None
        doc = self._verify(data, sha256, options_key)
        if doc is None:
            self.stats.corrupt += 1
            self.stats.misses += 1
            self._unlink(path)
            return None
        self.stats.hits += 1
        try:
            if time.time() - os.stat(path).st_mtime > 60:
                os.utime(path)  # LRU-ish: a hit makes the entry young again
        except OSError:
            pass
        return doc

    def _verify(self, data: bytes, sha256: str, options_key: str) -> dict | None:
        head, sep, payload = data.partition(b"\n")
        if not sep:
            return None
        try:
            h = json.loads(head)
            if not isinstance(h, dict):
                return None
            want = {"format": FORMAT, "tool_version": __version__, "code": code_fingerprint(),
                    "options": options_key, "sha256": sha256, "payload_bytes": len(payload)}
            if any(h.get(k) != v for k, v in want.items()):
                return None
            if h.get("payload_sha256") != hashlib.sha256(payload).hexdigest():
                return None
            doc = json.loads(payload)
        except (ValueError, UnicodeDecodeError, RecursionError):
            return None
        if not isinstance(doc, dict):
            return None
        if isinstance(doc.get("report"), dict) and "error" not in doc:
            return doc
        err = doc.get("error")
        if isinstance(err, dict) and err.get("type") in CACHEABLE_ERRORS and isinstance(err.get("problem"), str):
            return doc
        return None

    def put(self, sha256: str, options_key: str, doc: dict | str) -> bool:
        """Store a result document (a dict, or its compact JSON text). Volatile results are refused."""
        if not self.enabled:
            return False
        text = doc if isinstance(doc, str) else json.dumps(doc, separators=(",", ":"), sort_keys=True,
                                                          ensure_ascii=False)
        if not cacheable_text(text):
            return False
        payload = text.encode("utf-8")
        header = json.dumps(self._header(sha256, options_key, payload), separators=(",", ":"))
        try:  # atomic; written as UTF-8, the bytes `payload` was hashed as
            outfile.write_text(self.path_for(self.key(sha256, options_key)), header + "\n" + text,
                               tmp_prefix=TMP_PREFIX, private=True)
        except OSError:
            return False
        self.stats.stores += 1
        return True

    @staticmethod
    def _unlink(path: str) -> None:
        try:
            os.unlink(path)
        except OSError:
            pass

    # ---- size bound -------------------------------------------------------------------------------------------
    def entries(self) -> list[tuple[float, int, str]]:
        """(mtime, size, path) of every entry and stray temp file."""
        out: list[tuple[float, int, str]] = []
        try:
            subdirs = list(os.scandir(self.directory))
        except OSError:
            return out
        for sub in subdirs:
            if not sub.is_dir(follow_symlinks=False):
                continue
            try:
                for e in os.scandir(sub.path):
                    try:
                        st = e.stat(follow_symlinks=False)
                    except OSError:
                        continue
                    out.append((st.st_mtime, st.st_size, e.path))
            except OSError:
                continue
        return out

    def prune(self, max_bytes: int | None = None, now: float | None = None) -> int:
        """Remove least recently used entries until the total is under 80 % of the bound (when it is over);
        always remove temp files abandoned by killed writers. Returns the number of files removed."""
        limit = self.max_bytes if max_bytes is None else max_bytes
        now = time.time() if now is None else now
        items = self.entries()
        removed = 0
        live = []
        for mtime, size, path in items:
            if os.path.basename(path).startswith(TMP_PREFIX):
                if now - mtime > STALE_TMP_SECONDS:
                    self._unlink(path)
                    removed += 1
                continue
            live.append((mtime, size, path))
        total = sum(s for _, s, _ in live)
        if total > limit:
            target = int(limit * 0.8)
            for mtime, size, path in sorted(live):
                if total <= target:
                    break
                self._unlink(path)
                total -= size
                removed += 1
        self.stats.evicted += removed
        return removed


def cacheable_text(text: str) -> bool:
    return not any(m in text for m in VOLATILE_MARKERS)


# ---- small derived data (parsed rule files) -------------------------------------------------------------------------

DERIVED_VERSIONS_KEPT = 4
"""Derived entries are grouped by code fingerprint (derived/KIND/FINGERPRINT/); only the most recently written
few fingerprints are kept, so an often edited checkout does not grow the directory without bound."""


def _derived_path(kind: str, source: str) -> tuple[str, str]:
    digest = hashlib.sha256(source.encode("utf-8", "surrogatepass")).hexdigest()
    key = hashlib.sha256(f"{FORMAT}\0{__version__}\0{code_fingerprint()}\0{kind}\0{digest}".encode()).hexdigest()
    return os.path.join(base_dir(), "derived", kind, code_fingerprint(), key + ".json"), digest


def _prune_derived_versions(kind_dir: str, keep: int = DERIVED_VERSIONS_KEPT) -> None:
    import shutil

    try:
        subdirs = [e for e in os.scandir(kind_dir) if e.is_dir(follow_symlinks=False)]
        subdirs.sort(key=lambda e: e.stat(follow_symlinks=False).st_mtime, reverse=True)
    except OSError:
        return
    for e in subdirs[keep:]:
        shutil.rmtree(e.path, ignore_errors=True)


def derived_get(kind: str, source: str):
    """A JSON value derived from `source` text by a deterministic, costly step (e.g. YAML parse + schema check of
    a rule file) and stored by `derived_put`; None when absent, disabled (SYSSCAN_NO_CACHE=1) or failing any
    check. Same integrity rules as the result cache."""
    if os.environ.get("SYSSCAN_NO_CACHE"):
        return None
    path, digest = _derived_path(kind, source)
    try:
        with open(path, "rb") as fh:
            data = fh.read()
        head, sep, payload = data.partition(b"\n")
        h = json.loads(head) if sep else None
        if not isinstance(h, dict) or h.get("source_sha256") != digest or h.get("code") != code_fingerprint() \
                or h.get("payload_sha256") != hashlib.sha256(payload).hexdigest():
            return None
        return json.loads(payload)
    except (OSError, ValueError, UnicodeDecodeError, RecursionError):
        return None


def derived_put(kind: str, source: str, value) -> None:
    if os.environ.get("SYSSCAN_NO_CACHE"):
        return
    path, digest = _derived_path(kind, source)
    try:
        payload = json.dumps(value, separators=(",", ":"), sort_keys=True)  # ASCII (ensure_ascii)
        head = json.dumps({"source_sha256": digest, "code": code_fingerprint(),
                           "payload_sha256": hashlib.sha256(payload.encode()).hexdigest()})
        d = os.path.dirname(path)
        new_version = not os.path.isdir(d)
        outfile.write_text(path, head + "\n" + payload, tmp_prefix=TMP_PREFIX, private=True)  # atomic, makes the directory
        if new_version:
            _prune_derived_versions(os.path.dirname(d))
    except (OSError, TypeError, ValueError):
        pass


# ---- sysscan cache info|clear -------------------------------------------------------------------------------------

def _dir_usage(path: str) -> tuple[int, int]:
    files = size = 0
    for dirpath, _dirs, names in os.walk(path):
        for n in names:
            try:
                size += os.lstat(os.path.join(dirpath, n)).st_size
                files += 1
            except OSError:
                pass
    return files, size


def info() -> dict:
    reports = ResultCache()
    r_files, r_size = _dir_usage(reports.directory)
    k_files, k_size = _dir_usage(kernel_dir())
    return {"directory": base_dir(), "reports": {"directory": reports.directory, "entries": r_files,
                                                 "bytes": r_size, "max_bytes": reports.max_bytes},
            "kernel": {"directory": kernel_dir(), "entries": k_files, "bytes": k_size},
            "tool_version": __version__, "code": code_fingerprint()}


def clear(which: str = "all") -> int:
    """Delete the report cache, the kernel cache, or both. Returns the number of files removed."""
    import shutil

    removed = 0
    derived = os.path.join(base_dir(), "derived")
    dirs = {"reports": [reports_dir()], "kernel": [kernel_dir()],
            "all": [reports_dir(), kernel_dir(), derived]}[which]
    for d in dirs:
        files, _ = _dir_usage(d)
        shutil.rmtree(d, ignore_errors=True)
        removed += files - _dir_usage(d)[0]
    return removed


