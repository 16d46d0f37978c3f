"""file:line of each handler's SYSCALL_DEFINE, from the vmlinux's DWARF line table (opt-in).

The __x64_sys_<name> wrapper is emitted by the SYSCALL_DEFINEn macro, so the line of its first instruction is
the line of the SYSCALL_DEFINE itself (fs/read_write.c:646 for write on Debian's 6.1). We ask binutils'
addr2line in one batch: ~1.1 s for all ~750 handlers of a 590 MB vmlinux, ~0.3 s for a handful, which is why
this is not part of the default analysis; results are stored in the cache entry, so each handler is resolved
once per kernel.
"""
from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Iterable

from . import cache
from .model import Handler, KernelAnalysis

KERNEL_TOP_DIRS = ("arch", "block", "certs", "crypto", "drivers", "fs", "include", "init", "io_uring", "ipc",
                   "kernel", "lib", "mm", "net", "samples", "security", "sound", "virt", "usr")
_TOP = re.compile(r"(?:^|/)((?:%s)/.*)$" % "|".join(KERNEL_TOP_DIRS))
TIMEOUT = 120
NO_DWARF = ("source lines: no DWARF in this image (symbols from kallsyms); the -dbg package's vmlinux has them "
            "(/usr/lib/debug/boot/vmlinux-*)")


def tree_relative(path: str) -> str:
    """'debian/build/build_amd64_none_cloud-amd64/fs/read_write.c' -> 'fs/read_write.c'."""
    m = _TOP.search(path)
    return m.group(1) if m else path


def addr2line(vmlinux: str, addresses: list[int]) -> dict[int, str | None]:
    """address -> 'file:line' (None when the line table does not cover it). Raises FileNotFoundError when
    addr2line is not installed."""
    tool = shutil.which("addr2line") or shutil.which("llvm-addr2line")
    if tool is None:
        raise FileNotFoundError("addr2line (binutils) is needed for source lines")
    if not addresses:
        return {}
    proc = subprocess.run([tool, "-e", vmlinux], input="\n".join(f"{a:#x}" for a in addresses) + "\n",
                          capture_output=True, text=True, timeout=TIMEOUT, check=False)
    lines = proc.stdout.splitlines()
    out: dict[int, str | None] = {}
    for a, line in zip(addresses, lines):
        line = line.split(" (discriminator")[0].strip()
        if not line or line.startswith("??") or line.endswith(":0") or line.endswith(":?"):
            out[a] = None
        else:
            out[a] = tree_relative(line)
    for a in addresses[len(lines):]:
        out[a] = None
    return out


def fill_sources(analysis: KernelAnalysis, handlers: Iterable[Handler] | None = None,
                 use_cache: bool = True) -> int:
    """Set Handler.source for the given handlers (default: every implemented handler of every ABI) and update
    the cache entry. Returns how many handlers got a source. Handlers share addresses across ABIs; each address
    is asked once."""
    if analysis.symbols != "symtab":
        note = NO_DWARF
        if note not in analysis.warnings:
            analysis.warnings.append(note)
        return 0
    todo = list(handlers) if handlers is not None else [h for t in analysis.tables.values() for h in t.values()]
    todo = [h for h in todo if h.address and not h.enosys and h.source is None]
    if not todo:
        return 0
    lines = addr2line(analysis.path, sorted({h.address for h in todo}))
    done = 0
    by_addr: dict[int, str | None] = dict(lines)
    for table in analysis.tables.values():  # the same handler object may be referenced from other ABIs
        for h in table.values():
            if h.source is None and h.address in by_addr and by_addr[h.address]:
                h.source = by_addr[h.address]
    for h in todo:
        if by_addr.get(h.address):
            h.source = by_addr[h.address]
            done += 1
    if use_cache and done:
        cache.store(analysis)
    return done
