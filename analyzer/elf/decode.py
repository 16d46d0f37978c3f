"""x86 decoders without instruction details, one per word size and thread: what every stage that walks
instruction bounds, mnemonics and operand text needs. Creating a Capstone handle costs more than decoding a small
function, and a handle is not shared across threads (Capstone keeps per-handle state while it decodes)."""
from __future__ import annotations

import threading

_local = threading.local()


def decoder(bits: int):
    """The shared `capstone.Cs` for 64- or 32-bit code (details off: never switch them on; use your own handle)."""
    decoders = getattr(_local, "decoders", None)
    if decoders is None:
        decoders = _local.decoders = {}
    md = decoders.get(bits)
    if md is None:
        import capstone

        md = decoders[bits] = capstone.Cs(capstone.CS_ARCH_X86, capstone.CS_MODE_64 if bits == 64
                                          else capstone.CS_MODE_32)
    return md
