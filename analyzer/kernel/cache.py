"""On-disk cache of kernel analyses: $XDG_CACHE_HOME/sysscan/kernel/ (default ~/.cache/sysscan/kernel/).

Key: the content hash (sha256 over the ELF header, program headers, every kernel PT_LOAD's bytes, .symtab and
.strtab: everything the analysis reads; a bzImage's or a stripped vmlinux's whole file), the build-id (none for a
bzImage: it is inside the compressed payload), and sysscan's version. Computing that hash costs ~50 ms on
Debian's 590 MB 6.1 vmlinux, so a warm lookup verifies the content every time instead of trusting (size, mtime).
A whole-file sha256 would cost 1.4 s (the file is mostly DWARF the analysis never reads).

Writes are atomic (tempfile + os.replace); an unreadable, corrupt or mismatching entry is ignored and rebuilt.
"""
from __future__ import annotations

import json
import os

from .. import __version__, outfile
from .model import KernelAnalysis

FORMAT = 1


def cache_dir() -> str:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "sysscan", "kernel")


def _file(sha256: str, build_id: str | None) -> str:
    return os.path.join(cache_dir(), sha256[:32] + _suffix(build_id))


def _suffix(build_id: str | None) -> str:
    return f"-{(build_id or 'nobuildid')[:16]}-v{__version__}-{_code()}.json"


def may_hold(build_id: str | None) -> bool:
    """Whether any entry was written for this build-id by this code: if not, a lookup is a sure miss, and the
    caller need not wait for the content hash before starting the analysis."""
    suffix = _suffix(build_id)
    try:
        return any(n.endswith(suffix) for n in os.listdir(cache_dir()))
    except OSError:
        return False


def _code() -> str:
    """The analyzer's code fingerprint: an edited checkout must not be served analyses its old code made."""
    from ..cache import code_fingerprint

    return code_fingerprint()


def load(sha256: str, build_id: str | None) -> KernelAnalysis | None:
    path = _file(sha256, build_id)
    try:
        with open(path, encoding="utf-8") as f:
            d = json.load(f)
    except (OSError, ValueError):
        return None
    try:
        if d.get("format") != FORMAT or d.get("tool_version") != __version__ or d.get("code") != _code():
            return None
        a = d["analysis"]
        if a.get("sha256") != sha256 or _key(a.get("build_id"), a.get("compression")) != build_id:
            return None
        return KernelAnalysis.from_dict(a)
    except (KeyError, TypeError, ValueError, AttributeError):
        return None


def _key(build_id: str | None, compression: str | None) -> str | None:
    """The build-id a lookup can know before analysing: none for a bzImage (it is in the compressed payload)."""
    return None if compression else build_id


def store(analysis: KernelAnalysis) -> str | None:
    """Write the entry; failures (read-only home, full disk) are not errors: the cache is an optimisation."""
    path = _file(analysis.sha256, _key(analysis.build_id, analysis.compression))
    text = json.dumps({"format": FORMAT, "tool_version": __version__, "code": _code(),
                       "analysis": analysis.to_dict()},
                      separators=(",", ":"))  # dumps, not dump: only dumps uses the C encoder
    try:
        outfile.write_text(path, text)  # atomic: concurrent runs never read half an entry
    except OSError:
        return None
    return path
