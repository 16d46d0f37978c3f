"""Function ranges from .eh_frame FDEs (which survive stripping), also without section headers: through
PT_GNU_EH_FRAME and .eh_frame_hdr."""
from __future__ import annotations

import struct

from .memory import Memory


def _eh_frame_functions(binary, memory: Memory) -> list[tuple[int, int]]:
    """Function ranges from .eh_frame FDEs: they survive stripping, so stripped binaries still have functions.

    Hostile input: bounded by the section size (every record advances), and never raises — garbage gives the
    FDEs that could be read before it."""
    out: list[tuple[int, int]] = []
    try:
        _eh_frame_walk(binary, out, memory)
    except Exception:  # noqa: BLE001 - a corrupt .eh_frame costs us function starts, never the scan
        pass
    return out


def _eh_frame_walk(binary, out: list[tuple[int, int]], memory: Memory | None = None) -> None:
    sec = binary.get_section(".eh_frame")
    stop_at_zero = False
    if sec is None or not sec.size:
        # No section headers (sstrip) or no .eh_frame section: PT_GNU_EH_FRAME still points at .eh_frame_hdr,
        # whose eh_frame_ptr gives where .eh_frame starts; its end is the zero terminator.
        found = _eh_frame_via_hdr(binary, memory) if memory is not None else None
        if found is None:
            return
        base, data = found
        stop_at_zero = True
    else:
        data = bytes(sec.content)
        base = sec.virtual_address
    cie_enc: dict[int, int] = {}
    off = 0
    n = len(data)
    while off + 4 <= n:
        (length,) = struct.unpack_from("<I", data, off)
        if length == 0:
            if stop_at_zero:
                break
            off += 4
            continue
        hdr = 4
        if length == 0xFFFFFFFF:
            if off + 12 > n:
                break
            (length,) = struct.unpack_from("<Q", data, off + 4)
            hdr = 12
        rec = off + hdr
        end = rec + length
        if end > n or length < 4:
            break
        (cie_id,) = struct.unpack_from("<I", data, rec)
        if cie_id == 0:
            try:
                cie_enc[off] = _cie_fde_encoding(data, rec + 4, end)
            except (IndexError, UnicodeDecodeError):  # a CIE cut short: its FDEs get the common encoding
                cie_enc[off] = 0x1B
        else:
            cie_off = rec - cie_id
            enc = cie_enc.get(cie_off, 0x1B)
            p = rec + 4
            start = _read_encoded(data, p, enc, base + p)
            size = _read_encoded(data, p + _enc_size(enc), enc & 0x0F, 0)
            if start is not None and size is not None and 0 < size < (1 << 24):
                out.append((start & ((1 << 64) - 1), (start + size) & ((1 << 64) - 1)))
        off = end


def _eh_frame_via_hdr(binary, memory: Memory) -> tuple[int, bytes] | None:
    """(address, bytes from there to the end of its segment) of .eh_frame, found through PT_GNU_EH_FRAME."""
    import lief

    for seg in binary.segments:
        if seg.type != lief.ELF.Segment.TYPE.GNU_EH_FRAME:
            continue
        hdr = seg.virtual_address
        raw = memory.read(hdr, 12)
        if raw is None or raw[0] != 1:  # version 1
            return None
        enc = raw[1]
        ptr = _read_encoded(raw, 4, enc, hdr + 4)
        if ptr is None:
            return None
        if enc & 0x70 == 0x30:  # datarel: relative to the start of .eh_frame_hdr
            ptr = hdr + (ptr - (hdr + 4) if enc & 0x70 == 0x10 else ptr)
        ptr &= (1 << 64) - 1
        region = memory.region_of(ptr)
        if region is None:
            return None
        return ptr, memory.read(ptr, region.end - ptr) or b""
    return None


def _uleb(data: bytes, p: int) -> tuple[int, int]:
    v = shift = 0
    while p < len(data):
        b = data[p]
        p += 1
        v |= (b & 0x7F) << shift
        shift += 7
        if not b & 0x80:
            break
    return v, p


def _cie_fde_encoding(data: bytes, p: int, end: int) -> int:
    """Parse a CIE just far enough to learn how its FDEs encode pc_begin (augmentation 'R')."""
    if p >= end:
        return 0x1B
    version = data[p]
    p += 1
    z = data.find(b"\0", p, end)
    if z < 0:
        return 0x1B
    aug = data[p:z].decode("latin-1")
    p = z + 1
    if "eh" in aug:
        p += 8
    _, p = _uleb(data, p)  # code alignment
    _, p = _uleb(data, p)  # data alignment (sleb, same length)
    if version == 1:
        p += 1
    else:
        _, p = _uleb(data, p)
    if not aug.startswith("z"):
        return 0x00
    _, p = _uleb(data, p)
    for ch in aug[1:]:
        if ch == "R":
            return data[p] if p < end else 0x1B
        if ch == "P":
            penc = data[p]
            p += 1 + _enc_size(penc)
        elif ch == "L":
            p += 1
        else:
            break
    return 0x00


def _enc_size(enc: int) -> int:
    return {0x00: 8, 0x02: 2, 0x03: 4, 0x04: 8, 0x0A: 2, 0x0B: 4, 0x0C: 8}.get(enc & 0x0F, 4)


def _read_encoded(data: bytes, p: int, enc: int, pc: int) -> int | None:
    fmt = {0x00: "<Q", 0x02: "<H", 0x03: "<I", 0x04: "<Q", 0x0A: "<h", 0x0B: "<i", 0x0C: "<q"}.get(enc & 0x0F)
    if fmt is None or p + struct.calcsize(fmt) > len(data):
        return None
    (v,) = struct.unpack_from(fmt, data, p)
    if enc & 0x70 == 0x10:
        v += pc
    return v
