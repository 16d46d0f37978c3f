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
    located = [(sym, image.address_of(sym)) for sym in IMAGES]
    if all(at is None for _sym, at in located):
        return [v for v in (_by_header(image, data, blob, warnings, deadline) for data, blob in _elf_blobs(image))
                if v is not None]
    for sym, at in located:
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


def _elf_blobs(image: KernelImage):
    """Without the vdso_image_* symbols (CONFIG_KALLSYMS_ALL off): the page-aligned ELF shared objects embedded in
    the kernel's data (vdso2c emits each image as a page-aligned array of whole pages), each up to the page after
    its section headers."""
    for r in image.memory.regions:
        p = r.data.find(b"\x7fELF")
        while p >= 0:
            if (r.start + p) % 4096 == 0 and len(r.data) >= p + 64 and r.data[p + 16] == 3:  # ET_DYN
                if r.data[p + 4] == 2:
                    shoff, = struct.unpack_from("<Q", r.data, p + 0x28)
                    shentsize, shnum = struct.unpack_from("<HH", r.data, p + 0x3A)
                else:
                    shoff, = struct.unpack_from("<I", r.data, p + 0x20)
                    shentsize, shnum = struct.unpack_from("<HH", r.data, p + 0x2E)
                size = -(-(shoff + shentsize * shnum) // 4096) * 4096  # whole pages, as vdso_image.size has it
                if 0 < size <= MAX_IMAGE and p + size <= len(r.data):
                    yield r.start + p, r.data[p:p + size]
            p = r.data.find(b"\x7fELF", p + 1)


def _by_header(image: KernelImage, data: int, blob: bytes, warnings: list[str], deadline: Deadline):
    """A vDSO found by its ELF header, named as the kernel names it: by class and machine."""
    machine, = struct.unpack_from("<H", blob, 18)
    sym = {(2, 62): "vdso_image_64", (1, 3): "vdso_image_32", (1, 62): "vdso_image_x32"}.get((blob[4], machine))
    if sym is None:
        return None
    try:
        v = _analyse(image, sym, data, blob, deadline)
    except Exception as e:  # noqa: BLE001 - as above
        warnings.append(f"{sym}: the vDSO image was not analysed: {type(e).__name__}: {str(e)[:160]}")
        return None
    v.notes = sorted(set(v.notes) | {"located by its ELF header: the image has no vdso_image_* symbol"})
    return v


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
