"""Libraries glibc loads by itself, through its internal dlopen (`__libc_dlopen_mode`), while the program runs.

A program never names them, so neither DT_NEEDED nor a dlopen call of its own shows them; each is loaded by one
glibc function, and which libraries it loads is fixed by glibc's sources (2.34 and later) or by a configuration
file in the root the program runs in:

- NSS (`module_load`, nss/nss_module.c): `libnss_<service>.so.2` for every service the root's /etc/nsswitch.conf
  names, but `files` and `dns`, which are built into libc.so.6. A lookup (getpwnam, getgrgid, gethostbyname…)
  goes on to the next service when one does not answer: `ls -l` on a file whose owner /etc/passwd lacks runs
  libnss_systemd.
- iconv (`__gconv_find_shlib`, iconv/gconv_dl.c): a module named in gconv-modules, picked by the character sets
  asked for at run time (the locale's, a translation's): an open end, with the number of modules it can pick from.
- unwinding (`__libc_unwind_link_get`, misc/unwind-link.c): libgcc_s.so.1, for thread cancellation and backtrace;
  i386's `__frame_state_for` too.
- IDNA (`functions_allocate`, inet/idna.c): libidn2.so.0, for getaddrinfo/getnameinfo with AI_IDN/NI_IDN.

Any other caller of glibc's internal dlopen that is reached is an open end: a load nobody modelled is said.
The handle is local (RTLD_LOCAL): only what glibc looks up with dlsym in a loaded library is entered from outside
it (`symbols`), besides its initialisers.
"""
from __future__ import annotations

import glob
import os
import re
from dataclasses import dataclass

from ..program.libraries import in_root

DLOPEN = ("__libc_dlopen_mode", "__GI___libc_dlopen_mode")
BUILTIN_SERVICES = ("files", "dns")  # in libc.so.6 itself since glibc 2.34
NSS_REVISION = ".2"
DEFAULT_SERVICES = ("files", "dns", "nis")
"""With no nsswitch.conf glibc uses its compiled-in defaults ("files", "dns [!UNAVAIL=return] files" for hosts and
networks, "nis" for netgroup): every service those name."""
NSS_CONF = "/etc/nsswitch.conf"
CONFIG_FILES = (NSS_CONF,)  # what the surface reads in the root besides objects (a cached result depends on it)


@dataclass(frozen=True)
class LibcLoad:
    function: str  # the glibc function whose call of __libc_dlopen_mode loads
    what: str  # what the load is for, in the report's words
    names: tuple[str, ...] = ()  # the constant library names it loads
    kind: str = "constant"  # "constant" | "nss" | "gconv"
    symbols: frozenset[str] = frozenset()
    """What it looks up in the library with dlsym (the handle is local: nothing else there is bound to), the names
    in glibc's own strings; NSS looks up `_nss_<service>_*` (nss_lookups)"""


LOADS = (
    LibcLoad("module_load", "glibc's NSS loads the services nsswitch.conf names", kind="nss"),
    LibcLoad("__gconv_find_shlib", "iconv loads the gconv module of a character set", kind="gconv"),
    LibcLoad("__libc_unwind_link_get", "glibc loads libgcc_s.so.1 to unwind (cancellation, backtrace)",
             names=("libgcc_s.so.1",),
             symbols=frozenset({"_Unwind_Backtrace", "_Unwind_ForcedUnwind", "_Unwind_GetCFA", "_Unwind_GetIP",
                                "_Unwind_Resume", "__gcc_personality_v0",
                                "_Unwind_GetGR", "__frame_state_for"})),  # the last two: i386
    LibcLoad("__frame_state_for", "i386 glibc's old unwinder interface loads libgcc_s.so.1",
             names=("libgcc_s.so.1",), symbols=frozenset({"__frame_state_for"})),
    LibcLoad("functions_allocate", "glibc loads libidn2.so.0 for internationalised domain names",
             names=("libidn2.so.0",), symbols=frozenset({"idn2_lookup_ul", "idn2_to_unicode_lzlz"})),
)
BY_FUNCTION = {x.function: x for x in LOADS}


def nss_services(sysroot: str) -> tuple[dict[str, list[str]], str]:
    """service -> the databases that name it, from the root's nsswitch.conf (`files` and `dns` left out: they are
    built in), and where the list came from."""
    path = in_root(sysroot, NSS_CONF)
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            text = f.read()
    except OSError:
        return {s: ["(glibc's defaults)"] for s in DEFAULT_SERVICES if s not in BUILTIN_SERVICES}, \
            f"no {NSS_CONF}: glibc's defaults"
    out: dict[str, list[str]] = {}
    for line in text.splitlines():
        line = line.split("#", 1)[0]
        db, sep, rest = line.partition(":")
        if not sep or not db.strip():
            continue
        for svc in re.sub(r"\[[^\]]*\]", " ", rest).split():
            if svc not in BUILTIN_SERVICES:
                out.setdefault(svc, []).append(db.strip())
    return out, NSS_CONF


def nss_soname(service: str) -> str:
    return f"libnss_{service}.so{NSS_REVISION}"


def nss_lookups(service: str):
    """Which exports of a service's module glibc may look up: `_nss_<service>_*` (module_load asks for every
    function of its table at once, whatever database the lookup was for). Other exports are bound to nothing: the
    module is loaded with a local scope."""
    prefix = f"_nss_{service}_"
    return lambda name: name.startswith(prefix)


def gconv_modules(sysroot: str, memory) -> tuple[str | None, int]:
    """The gconv directory libc.so.6 was built with (a string in its read-only data, read from the loaded image
    `memory`) and how many modules its gconv-modules configuration names there."""
    m = next((x for r in memory.regions if not (r.executable or r.writable)
              for x in [re.search(rb"\x00(/[\x21-\x7e]*/gconv)\x00", r.data)] if x), None)
    if not m:
        return None, 0
    d = m.group(1).decode()
    root = in_root(sysroot, d)
    files: set[str] = set()
    for conf in [os.path.join(root, "gconv-modules"), *sorted(glob.glob(os.path.join(root, "gconv-modules.d",
                                                                                       "*.conf")))]:
        try:
            with open(conf, encoding="utf-8", errors="replace") as f:
                for line in f:
                    parts = line.split("#", 1)[0].split()
                    if len(parts) >= 4 and parts[0] == "module":
                        files.add(parts[3])
        except OSError:
            continue
    return d, len(files)
