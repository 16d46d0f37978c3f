"""Where a site's code comes from: the application, the C library, or a language runtime (Go).

Reviewers care about raw syscalls in *application* code: every libc makes raw syscalls, and a dynamic binary's
libc is a separate file. The decision uses only what the report holds, so it works on saved reports too:

1. The binary is itself a C library or dynamic loader (`libc.so.6`, `ld-linux-x86-64.so.2`, `libc.musl-*.so.1`,
   `ld-musl-*.so.1`): every site is `libc`.
2. The function is Go runtime / syscall-package code (`runtime.*`, `syscall.*`, `internal/runtime/...`,
   `golang.org/x/sys/unix.*`): `runtime`.
3. A dynamic (not static) binary: its libc is elsewhere, so every other site is `application`.
4. A static binary: the function name decides. A name starting with `_` is reserved for the implementation in C
   (C11 7.1.3: every file-scope identifier beginning with an underscore), so it is libc/crt code; a name that
   glibc or musl defines (libc_functions.txt, generated from their static archives by gen_libc_names.py) is
   `libc`; `sub_<addr>` (no symbol: stripped) is `unknown`; anything else is `application`.

Weak spots, on purpose visible: a static binary's own function that happens to share a libc name (say it defines
`write`) is classified libc; a static binary without any libc (its own `_start`) has that `_start` called libc.
"""
from __future__ import annotations

import functools
import re
from importlib import resources

from ..model import Report, Site

LIBC_FILE = re.compile(r"^(libc([.-].*)?\.so(\..*)?|ld-linux.*\.so(\..*)?|ld-musl-.*\.so(\..*)?|"
                       r"libc\.musl-.*\.so(\..*)?|ld\.so(\..*)?|libpthread\.so(\..*)?|librt\.so(\..*)?)$")
GO_RUNTIME = re.compile(r"^(runtime[./]|syscall\.|internal/runtime/|internal/syscall/|runtime/internal/|"
                        r"golang\.org/x/sys/unix\.|vendor/golang\.org/x/sys/)")
STRIPPED = re.compile(r"^(sub_[0-9a-f]+)?$")
SUFFIX = re.compile(r"(\.(constprop|isra|part|cold|lto_priv|localalias)(\.\d+)?)+$|@.*$")


@functools.lru_cache(maxsize=1)
def libc_names() -> frozenset[str]:
    text = resources.files(__package__).joinpath("libc_functions.txt").read_text(encoding="utf-8")
    return frozenset(line.strip() for line in text.splitlines() if line.strip() and not line.startswith("#"))


def base_name(function: str) -> str:
    """`__pthread_kill_implementation.constprop.0` -> `__pthread_kill_implementation`; `write@GLIBC_2.2.5` -> `write`."""
    return SUFFIX.sub("", function)


def binary_is_libc(report: Report) -> bool:
    return bool(LIBC_FILE.match(report.binary.name or ""))


def site_location(report: Report, site: Site) -> str:
    """`application` | `libc` | `runtime` | `unknown` (see the module docstring)."""
    name = base_name(site.function or "")
    if binary_is_libc(report):
        return "libc"
    if GO_RUNTIME.match(name):
        return "runtime"
    if not report.binary.static:
        return "application"
    if STRIPPED.match(name):
        return "unknown"
    if name.startswith("_") or name in libc_names():
        return "libc"
    return "application"
