"""The vDSO images a kernel embeds, analysed as the programs they are.

x86 kernels link their vDSOs in as ELF blobs: `vdso_image_64` / `vdso_image_32` / `vdso_image_x32` are
`struct vdso_image { void *data; unsigned long size; ... }` (arch/x86/include/asm/vdso.h), `data` pointing at the
ELF the kernel maps into every process. Their syscall sites are part of what the kernel offers user space (the
clock_gettime / gettimeofday fallbacks), and the 32-bit image's `__kernel_vsyscall` is where i386 glibc's
`call *%gs:0x10` goes: `int $0x80`, with `sysenter` (Intel) or `syscall` (AMD) patched in over it at boot from the
image's .altinstr_replacement. Each image goes through the same stages as any user binary (sites, values).
"""
from __future__ import annotations

import hashlib
import struct

from ..budget import NEVER, Deadline
from ..syscalls.abi import KERNEL_VSYSCALL
from .image import KernelImage
from .model import VdsoImage, VdsoSite

IMAGES = ("vdso_image_64", "vdso_image_32", "vdso_image_x32")
MAX_IMAGE = 1 << 20  # a vDSO is a few pages; more is not one
ALTERNATIVES = ".altinstr_replacement"
# the trap __kernel_vsyscall ends up using, most common first: sysenter on Intel, syscall on AMD, else int $0x80
TRAP_PREFERENCE = ("sysenter", "syscall", "int 0x80")


def find_vdso_images(image: KernelImage, warnings: list[str], deadline: Deadline = NEVER) -> list[VdsoImage]:
    """Every vDSO image the kernel embeds (by the vdso_image_* symbols), with its sites; what cannot be read is
    said in `warnings`."""
    out = []
    for sym in IMAGES:
        at = image.address_of(sym)
        if at is None:
            continue
        head = image.memory.read(at, 16)
        if not head or len(head) < 16:
            warnings.append(f"{sym}: not readable at {at:#x}")
            continue
        data, size = struct.unpack("<QQ", head)
        blob = image.memory.read(data, size) if 0 < size <= MAX_IMAGE else None
        if not blob or blob[:4] != b"\x7fELF":
            warnings.append(f"{sym}: no ELF image at {data:#x} ({size} bytes)")
            continue
        try:
            out.append(_analyse(image, sym, data, blob, deadline))
        except Exception as e:  # noqa: BLE001 - a broken image costs its own analysis, not the kernel's
            warnings.append(f"{sym}: the vDSO image was not analysed: {type(e).__name__}: {str(e)[:160]}")
    return out


def _analyse(image: KernelImage, sym: str, data: int, blob: bytes, deadline: Deadline) -> VdsoImage:
    from ..program.load import load_bytes
    from ..surface.build import analyse_object

    lb = load_bytes(blob, f"{image.path}:{sym}")
    sites, _calls, _facts, incomplete = analyse_object(lb, deadline)
    v = VdsoImage(sym, lb.bits, data, len(blob), hashlib.sha256(blob).hexdigest(), notes=sorted(set(incomplete)))
    v.kernel_vsyscall = next((f.start for f in lb.functions if f.name == KERNEL_VSYSCALL), None)
    for s in sites:
        v.sites.append(VdsoSite(s.address, s.function, s.section, s.instruction, s.abi, s.number.status,
                                list(s.number.values), [x.name or f"#{x.nr}" for x in s.syscalls]))
    traps = {s.instruction for s in sites if s.function == KERNEL_VSYSCALL or s.section == ALTERNATIVES}
    if v.kernel_vsyscall is not None:
        v.entry_traps = [t for t in TRAP_PREFERENCE if t in traps]
    return v
