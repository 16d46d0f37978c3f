"""Embedded Linux x86 syscall tables (number -> name, entry point, arguments).

The tables are generated offline from real kernel sources by
``python -m analyzer.syscalls.generate`` and shipped as JSON package data, so
naming a syscall never depends on the host's kernel headers.

ABIs:
  * ``x86_64`` - 64-bit ``syscall`` ABI (syscall_64.tbl, abi common+64).
  * ``i386``   - 32-bit ``int 0x80`` / ``sysenter`` ABI (syscall_32.tbl).
  * ``x32``    - x32 ABI (syscall_64.tbl, abi common+x32).  Binaries put
    ``nr | 0x40000000`` in eax; the table stores the plain number and
    :meth:`SyscallTable.get` accepts either form.
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from importlib import resources
from typing import Iterator

__all__ = [
    "ABIS",
    "X32_SYSCALL_BIT",
    "SyscallArg",
    "SyscallEntry",
    "SyscallTable",
    "load_table",
]

ABIS: tuple[str, ...] = ("x86_64", "i386", "x32")

#: Bit the x32 ABI ORs into the syscall number (__X32_SYSCALL_BIT).
X32_SYSCALL_BIT = 0x40000000


@dataclass(frozen=True)
class SyscallArg:
    """One parameter of a syscall's kernel entry point, as the kernel spells it."""

    type: str
    name: str


@dataclass(frozen=True)
class SyscallEntry:
    """One syscall: its number in the ABI's table and its kernel entry point.

    ``compat_entry`` is only set for i386 syscalls that a 64-bit kernel routes
    to a different (compat_sys_*) function.
    """

    nr: int
    name: str
    entry: str
    args: tuple[SyscallArg, ...]
    compat_entry: str | None = None

    @property
    def nargs(self) -> int:
        """Number of register arguments the syscall consumes."""
        return len(self.args)


class SyscallTable:
    """All syscalls of one ABI, indexed by number and by name."""

    def __init__(
        self,
        abi: str,
        kernel_version: str,
        source: str,
        entries: tuple[SyscallEntry, ...] | list[SyscallEntry],
        nr_offset: int = 0,
    ) -> None:
        self.abi = abi
        self.kernel_version = kernel_version
        self.source = source
        #: Added to table numbers by this ABI's callers (0x40000000 for x32).
        self.nr_offset = nr_offset
        self._entries = tuple(sorted(entries, key=lambda e: e.nr))
        self._by_nr = {e.nr: e for e in self._entries}
        if len(self._by_nr) != len(self._entries):
            raise ValueError(f"{abi}: duplicate syscall numbers in table")
        self._by_name: dict[str, SyscallEntry] = {}
        for e in self._entries:
            # First (lowest number) wins, should a name ever repeat.
            self._by_name.setdefault(e.name, e)

    def get(self, nr: int) -> SyscallEntry | None:
        """Entry for a syscall number, or None for holes / out-of-range values.

        For x32 the number may include the 0x40000000 ABI bit.
        """
        if self.nr_offset and nr >= self.nr_offset:
            nr -= self.nr_offset
        return self._by_nr.get(nr)

    def name(self, nr: int) -> str | None:
        """Syscall name for a number, or None if the number is not a syscall."""
        e = self.get(nr)
        return e.name if e is not None else None

    def by_name(self, name: str) -> SyscallEntry | None:
        """Entry for a syscall name (as in the .tbl, e.g. 'openat')."""
        return self._by_name.get(name)

    @property
    def max_nr(self) -> int:
        """Highest syscall number in the table (without any ABI bit)."""
        return self._entries[-1].nr if self._entries else -1

    def __iter__(self) -> Iterator[SyscallEntry]:
        return iter(self._entries)

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, nr: object) -> bool:
        return isinstance(nr, int) and self.get(nr) is not None

    def __repr__(self) -> str:
        return f"SyscallTable(abi={self.abi!r}, entries={len(self)}, kernel={self.kernel_version!r})"


def _entry_from_json(raw: dict) -> SyscallEntry:
    args = tuple(SyscallArg(a["type"], a["name"]) for a in (raw.get("args") or ()))
    return SyscallEntry(
        nr=int(raw["nr"]),
        name=raw["name"],
        entry=raw["entry"],
        args=args,
        compat_entry=raw.get("compat_entry"),
    )


@functools.lru_cache(maxsize=None)
def load_table(abi: str) -> SyscallTable:
    """Load the embedded table for ``abi`` (one of :data:`ABIS`); cached.

    Uses importlib.resources so it also works from a wheel or zip import.
    """
    if abi not in ABIS:
        raise ValueError(f"unknown syscall ABI {abi!r}; expected one of {', '.join(ABIS)}")
    text = resources.files(__name__).joinpath("data", f"{abi}.json").read_text(encoding="utf-8")
    doc = json.loads(text)
    return SyscallTable(
        abi=doc["abi"],
        kernel_version=doc["kernel_version"],
        source=doc["source"],
        entries=[_entry_from_json(e) for e in doc["entries"]],
        nr_offset=int(doc.get("nr_offset", 0)),
    )
