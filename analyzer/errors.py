"""Error types, one per failure a user can cause, each with its own documented exit code.

The CLI maps these to one-line messages; analysis code raises them and never prints.
"""
from __future__ import annotations


class SysscanError(Exception):
    """Base: an input problem the user can fix. `exit_code` is documented in the README."""

    exit_code = 2

    def __init__(self, path: str | None, problem: str) -> None:
        self.path = path
        self.problem = problem
        super().__init__(f"{path}: {problem}" if path else problem)


class UsageError(SysscanError):
    """Bad command-line arguments (argparse uses 2 as well)."""

    exit_code = 2


class InputNotFound(SysscanError):
    """Missing file, a directory where a file was expected, or unreadable."""

    exit_code = 3


class NotAnELF(SysscanError):
    """The file does not start with the ELF magic."""

    exit_code = 4


class CorruptELF(SysscanError):
    """ELF magic present but headers are truncated or inconsistent."""

    exit_code = 5


class UnsupportedArch(SysscanError):
    """A valid ELF for an architecture sysscan does not analyse (only x86-64 and i386)."""

    exit_code = 6


class BadKernel(SysscanError):
    """--vmlinux is not a usable kernel (a user binary, no symbols nor kallsyms, a bad bzImage payload, other arch)."""

    exit_code = 7


class BadRules(SysscanError):
    """A rule file that does not parse or does not validate."""

    exit_code = 8


class BadReport(SysscanError):
    """A saved report or baseline that cannot be read back."""

    exit_code = 9


class LimitExceeded(SysscanError):
    """A resource limit stopped the analysis of one file before there was anything to report: the input is over
    --max-size, or --max-memory / --timeout killed the worker while the ELF was still being loaded. (A limit hit
    later gives a report marked `incomplete` instead.)"""

    exit_code = 10


class BadImage(SysscanError):
    """A container image (OCI layout, OCI or docker-save archive) that cannot be read: no index or manifest, a
    missing blob, a layer whose bytes do not match its digest, a damaged tar."""

    exit_code = 11


INTERNAL_ERROR_EXIT = 70
"""Exit code for a bug in sysscan itself (an exception that is not a SysscanError)."""


class JobError(SysscanError):
    """A failure rebuilt from a result document, with the exit code it carried (internal errors: 70)."""

    def __init__(self, path: str | None, problem: str, exit_code: int = INTERNAL_ERROR_EXIT) -> None:
        super().__init__(path, problem)
        self.exit_code = exit_code


def error_from_doc(path: str | None, err: dict) -> SysscanError:
    """The error a result document (a worker's, an isolated child's, a cached one) describes, as its own type."""
    cls = globals().get(str(err.get("type", "")))
    problem = str(err.get("problem", "error"))
    if isinstance(cls, type) and issubclass(cls, SysscanError) and cls is not SysscanError:
        return cls(path, problem)
    return JobError(path, problem, int(err.get("exit_code") or INTERNAL_ERROR_EXIT))
