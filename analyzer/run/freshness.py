"""Is a cached result still the answer? Its key is the program's bytes and the options; its surface also went
through other files — the libraries (a libc upgrade changes what the program can call) and the debug files of
stripped objects (installed or removed since). A result kept for a scan of the host records what it read:

    {"depends": [[path, size, mtime_ns, sha256], ...], "debug": [[debug or configuration file, present], ...]}

and is served only while those are unchanged: a stat per file, and a hash only when a file's size or time moved
(the same bytes under a new time are still the same answer). The configuration the surface reads on the host
(/etc/nsswitch.conf: which NSS modules glibc loads) is recorded the same way, or as absent. An image's results are
keyed by its libraries already (ScanOptions.root_key) and carry no record.
"""
from __future__ import annotations

import os

from ..elf.debugfile import DEFAULT_DIRS, candidates
from ..surface.libcloads import CONFIG_FILES

_SHA: dict[tuple[str, int, int], str] = {}  # (path, size, mtime_ns) -> sha256, for this process


def record(report: dict, debug_dirs=DEFAULT_DIRS) -> dict:
    """What the result in `report` (a Report dict) read besides the program."""
    depends, debug = [], []
    surface = report.get("surface") or {}
    objects = [o for o in surface.get("objects") or [] if isinstance(o, dict)]
    for o in objects:
        if o.get("kind") in ("interpreter", "needed", "dlopen") and o.get("sha256"):
            try:
                st = os.stat(o["path"])
            except OSError:
                continue
            depends.append([o["path"], st.st_size, st.st_mtime_ns, o["sha256"]])
    for path in CONFIG_FILES if report.get("surface") else ():
        try:
            st = os.stat(path)
        except OSError:
            debug.append([path, False])
            continue
        depends.append([path, st.st_size, st.st_mtime_ns, _sha(path, st)])
    binary = report.get("binary") or {}
    for o in [binary, *objects]:
        if o.get("kind") == "vdso":
            continue
        debug += [[p, os.path.exists(p)] for p, _how in candidates(o.get("path", ""), o.get("build_id"), None,
                                                                  debug_dirs)]
        if o.get("debug_file"):
            debug.append([o["debug_file"], True])
    return {"depends": sorted(depends), "debug": sorted(set(map(tuple, debug)))}


def current(doc: dict) -> bool:
    """Are the files `doc` (a cached result with a record) depends on as they were?"""
    for path, present in doc.get("debug") or ():
        if os.path.exists(path) != present:
            return False
    for path, size, mtime, sha in doc.get("depends") or ():
        try:
            st = os.stat(path)
        except OSError:
            return False
        if (st.st_size, st.st_mtime_ns) == (size, mtime):
            continue
        if st.st_size != size or _sha(path, st) != sha:
            return False
    return True


def _sha(path: str, st) -> str | None:
    from ..cache import file_sha256

    key = (path, st.st_size, st.st_mtime_ns)
    if key not in _SHA:
        try:
            _SHA[key] = file_sha256(path)
        except OSError:
            return None
    return _SHA[key]
