"""The loaded image as the CPU would see it: bytes by virtual address, with permissions.

Value recovery reads constants through this (rip-relative loads, strings) and must know whether the memory is
read-only: a value in writable memory may change at run time, so it is not a constant.
"""
from __future__ import annotations

import bisect
import struct
from dataclasses import dataclass, field


@dataclass
class Region:
    """One mapped range (an ELF PT_LOAD segment, zero-filled from filesz to memsz)."""

    start: int
    data: bytes
    readable: bool = True
    writable: bool = False
    executable: bool = False
    name: str = ""

    @property
    def end(self) -> int:
        return self.start + len(self.data)


@dataclass
class Memory:
    """Address-ordered regions; lookups are a bisect, so many small reads stay cheap."""

    regions: list[Region] = field(default_factory=list)
    readonly_ranges: list[tuple[int, int]] = field(default_factory=list)
    """Extra ranges that are read-only after start-up although their segment is writable (PT_GNU_RELRO)."""

    def __post_init__(self) -> None:
        self.regions = sorted((r for r in self.regions if r.data), key=lambda r: r.start)
        self._starts = [r.start for r in self.regions]

    @classmethod
    def from_lief(cls, binary, max_bss: int = 1 << 26) -> "Memory":
        """Build from a parsed `lief.ELF.Binary`. Huge memsz (corrupt headers) is capped so we never allocate GBs."""
        import lief

        regions: list[Region] = []
        relro: list[tuple[int, int]] = []
        for seg in binary.segments:
            if seg.type == lief.ELF.Segment.TYPE.GNU_RELRO:
                relro.append((seg.virtual_address, seg.virtual_address + seg.virtual_size))
            if seg.type != lief.ELF.Segment.TYPE.LOAD:
                continue
            content = bytes(seg.content)
            memsz = seg.virtual_size
            if memsz > len(content):
                content += b"\0" * min(memsz - len(content), max_bss)
            flags = seg.flags
            regions.append(
                Region(
                    start=seg.virtual_address,
                    data=content,
                    readable=bool(flags & lief.ELF.Segment.FLAGS.R),
                    writable=bool(flags & lief.ELF.Segment.FLAGS.W),
                    executable=bool(flags & lief.ELF.Segment.FLAGS.X),
                    name=f"LOAD@{seg.virtual_address:#x}",
                )
            )
        return cls(regions, relro)

    def region_of(self, addr: int) -> Region | None:
        i = bisect.bisect_right(self._starts, addr) - 1
        if i >= 0:
            r = self.regions[i]
            if r.start <= addr < r.end:
                return r
        return None

    def next_region_start(self, addr: int) -> int | None:
        """Start of the first region above addr (to skip an unmapped gap), else None."""
        i = bisect.bisect_right(self._starts, addr)
        return self._starts[i] if i < len(self._starts) else None

    def read(self, addr: int, size: int) -> bytes | None:
        """Bytes at [addr, addr+size) if they lie inside one region, else None."""
        r = self.region_of(addr)
        if r is None or addr + size > r.end or size < 0:
            return None
        off = addr - r.start
        return r.data[off : off + size]

    def is_readonly(self, addr: int) -> bool:
        r = self.region_of(addr)
        if r is None:
            return False
        if not r.writable:
            return True
        return any(lo <= addr < hi for lo, hi in self.readonly_ranges)

    def is_executable(self, addr: int) -> bool:
        r = self.region_of(addr)
        return bool(r and r.executable)

    def read_uint(self, addr: int, size: int) -> int | None:
        raw = self.read(addr, size)
        if raw is None:
            return None
        return int.from_bytes(raw, "little")

    def read_u32(self, addr: int) -> int | None:
        return self.read_uint(addr, 4)

    def read_u64(self, addr: int) -> int | None:
        return self.read_uint(addr, 8)

    def read_cstring(self, addr: int, limit: int = 256) -> str | None:
        """A printable NUL-terminated string at addr (what a path argument points to), else None."""
        r = self.region_of(addr)
        if r is None:
            return None
        off = addr - r.start
        chunk = r.data[off : off + limit + 1]
        end = chunk.find(b"\0")
        if end <= 0:
            return None
        raw = chunk[:end]
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            return None
        if not all(c.isprintable() or c in "\t\n\r" for c in text):
            return None
        return text


def unpack_le(fmt: str, data: bytes, offset: int = 0) -> tuple:
    """struct.unpack_from that answers None instead of raising on short data (corrupt inputs are normal here)."""
    try:
        return struct.unpack_from("<" + fmt, data, offset)
    except struct.error:
        return ()
