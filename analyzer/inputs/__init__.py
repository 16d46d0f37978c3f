"""One door for inputs: what a path is, decided by its content (never its name), and the backend that opens it,
imported only when that kind is met (LIEF for a program, the kernel stage for a vmlinux).

    kind = detect(path)                  # "directory", "elf", "vmlinux", "vmlinuz", "oci-layout", "tar", "other"
    lb = load_program(path, max_size)    # a user ELF: its program model (program/load.py)
    k = load_kernel(path, use_cache)     # a kernel (vmlinux, vmlinuz, or "auto"): its analysis, any failure exit 7
    found = discover(paths)              # directories walked for ELF files

A kernel is a vmlinux (symbols from its ELF symbol table), a stripped vmlinux or a compressed bzImage (/boot/vmlinuz-*;
symbols from its kallsyms), or `auto`: the running kernel's image (running_kernel). Container images (OCI layout,
docker/OCI archives) are scanned by the scan command (inputs/image.py, run/image.py) and refused as programs with a
sentence that says what they are.

Discovery (directories): recursive, by the ELF magic (not by name); symbolic links to directories are not followed,
a symbolic link or hard link to a file already found is skipped, files that are not ELF are skipped silently, an
unreadable file or directory is skipped with a warning. Paths given explicitly are always scanned (so a missing or
non-ELF explicit path is still an error, as for one file).
"""
from __future__ import annotations

import os
import stat
import struct
from collections.abc import Sequence
from dataclasses import dataclass, field

from ..errors import BadKernel, CorruptELF, NotAnELF, UnsupportedArch

ELF_MAGIC = b"\x7fELF"
KINDS = ("directory", "elf", "vmlinux", "vmlinuz", "oci-layout", "tar", "other")
KERNEL_SPACE = 0xFFFF800000000000
DESCRIPTIONS = {
    "vmlinuz": "a compressed kernel image (bzImage/vmlinuz): give it with --vmlinux, or to `sysscan kernel`",
    "oci-layout": "an OCI image layout (a container image)",
    "tar": "a tar archive that holds no container image (no manifest.json or index.json)",
}


def detect(path: str) -> str:
    """The kind of input at `path`, from its content: one of KINDS. Never raises for a readable path; a path that
    cannot be read at all is "other" (its loader then says why)."""
    try:
        st = os.stat(path)
    except OSError:
        return "other"
    if stat.S_ISDIR(st.st_mode):
        return "oci-layout" if os.path.isfile(os.path.join(path, "oci-layout")) else "directory"
    if not stat.S_ISREG(st.st_mode):
        return "other"  # a FIFO or a device is never opened here (a FIFO would block the read)
    try:
        with open(path, "rb") as fh:
            head = fh.read(4096)
    except OSError:
        return "other"
    if head[:4] == ELF_MAGIC:
        return "vmlinux" if _kernel_space_elf(path, head) else "elf"
    if len(head) >= 0x206 and head[0x1FE:0x200] == b"\x55\xaa" and head[0x202:0x206] == b"HdrS":
        return "vmlinuz"
    if len(head) >= 262 and head[257:262] == b"ustar":
        return "tar"
    return "other"


def _kernel_space_elf(path: str, head: bytes) -> bool:
    """A 64-bit ELF whose PT_LOAD segments lie in kernel space (a vmlinux, stripped or not)."""
    if len(head) < 64 or head[4] != 2 or head[5] != 1:
        return False
    e_phoff, = struct.unpack_from("<Q", head, 0x20)
    e_phentsize, e_phnum = struct.unpack_from("<HH", head, 0x36)
    if e_phentsize != 56 or not 0 < e_phnum <= 64:
        return False
    try:
        with open(path, "rb") as fh:
            fh.seek(e_phoff)
            ph = fh.read(56 * e_phnum)
    except (OSError, OverflowError, ValueError):
        return False
    for i in range(len(ph) // 56):
        p_type, _flags, _off, p_vaddr = struct.unpack_from("<IIQQ", ph, i * 56)
        if p_type == 1 and p_vaddr >= KERNEL_SPACE:
            return True
    return False


def load_program(path: str, max_size: int | None = None, debug_dirs: tuple[str, ...] | None = None):
    """A user-space ELF program or library: its program model (a stripped one's symbols from its debug file under
    `debug_dirs`, default /usr/lib/debug). An input that is not an ELF says what it is."""
    from ..program.load import DEFAULT_DEBUG_DIRS, load

    try:
        return load(path, max_size, DEFAULT_DEBUG_DIRS if debug_dirs is None else debug_dirs)
    except NotAnELF as e:
        what = DESCRIPTIONS.get(detect(path))
        if what is None:
            raise
        raise NotAnELF(e.path, f"{e.problem}: {what}, not a program") from None


AUTO = "auto"
KERNEL_PLACES = (  # where distributions put the running kernel's image, best first (symbols, then DWARF, first)
    "usr/lib/debug/boot/vmlinux-{r}",  # Debian/Ubuntu linux-image-*-dbg(sym)
    "usr/lib/debug/lib/modules/{r}/vmlinux",  # Fedora/RHEL kernel-debuginfo
    "boot/vmlinux-{r}",
    "boot/vmlinuz-{r}",  # every distribution's bootable image
    "lib/modules/{r}/vmlinuz",  # Fedora, Arch
    "usr/lib/modules/{r}/vmlinuz",
)


def running_kernel(release: str | None = None, root: str = "/") -> str:
    """The image of the running kernel (or of `release` under `root`): the first of KERNEL_PLACES that exists.
    Raises BadKernel (exit 7) naming the places looked at and what to install."""
    r = release or os.uname().release
    tried = [os.path.join(root, p.format(r=r)) for p in KERNEL_PLACES]
    for path in tried:
        if os.path.isfile(path):
            return path
    raise BadKernel(AUTO, f"no image of the running kernel {r} in {', '.join(tried[i] for i in (0, 3))} or the "
                          f"other usual places; install linux-image-{r} (or its -dbg package for source lines), or "
                          "pass --vmlinux PATH")


def load_kernel(path: str, use_cache: bool = True):
    """A kernel: its analysis (kernel/). `auto` is the running kernel's image. Whatever is wrong with the file is
    a bad kernel (exit 7)."""
    from ..kernel import analyze_kernel

    if path == AUTO:
        path = running_kernel()
    try:
        return analyze_kernel(path, use_cache=use_cache)
    except (NotAnELF, CorruptELF, UnsupportedArch) as e:
        raise BadKernel(e.path, e.problem) from None


@dataclass
class Skipped:
    path: str
    reason: str
    warn: bool = True  # unreadable: a warning line; a duplicate link: silent


@dataclass
class Discovery:
    files: list[str] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)
    directories: list[str] = field(default_factory=list)  # the directory arguments


def _read_magic(path: str, follow: bool = False) -> bytes:
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | (0 if follow else getattr(os, "O_NOFOLLOW", 0)))
    try:
        return os.read(fd, 4)
    finally:
        os.close(fd)


def is_rootfs(path: str) -> bool:
    """A directory that is a root filesystem (an unpacked container image, a chroot, a mounted disk): it has an
    os-release file (looked up inside it) and a usr directory. Its programs resolve their loader and libraries in
    it, not on this machine."""
    from ..program.libraries import in_root

    if not os.path.isdir(path) or not os.path.isdir(os.path.join(path, "usr")):
        return False
    return any(os.path.isfile(in_root(path, p)) for p in ("/etc/os-release", "/usr/lib/os-release"))


def discover(paths: Sequence[str], links: bool = True) -> Discovery:
    """The files to scan, in argument order then sorted within each directory, each real file once. With
    links=False (a scan under another root), symbolic links inside directories are left out: their targets mean
    paths in that root, not on this machine, and a target inside the tree is found by the walk itself."""
    d = Discovery()
    seen: dict[tuple[int, int], str] = {}
    found_links: list[str] = []

    def take_regular(path: str, st: os.stat_result, check_magic: bool, follow: bool = False) -> None:
        key = (st.st_dev, st.st_ino)
        if key in seen:
            d.skipped.append(Skipped(path, f"same file as {seen[key]}", warn=False))
            return
        if check_magic:
            if st.st_size < 4:
                return
            try:
                magic = _read_magic(path, follow)
            except OSError as e:
                d.skipped.append(Skipped(path, f"cannot read: {e.strerror or e}"))
                return
            if magic != ELF_MAGIC:
                return
        seen[key] = path
        d.files.append(path)

    def walk(root: str) -> None:
        def onerror(e: OSError) -> None:
            d.skipped.append(Skipped(e.filename or root, f"cannot list directory: {e.strerror or e}"))

        for dirpath, dirnames, filenames in os.walk(root, onerror=onerror):
            dirnames.sort()
            for name in sorted(filenames):
                full = os.path.join(dirpath, name)
                try:
                    st = os.lstat(full)
                except OSError as e:
                    d.skipped.append(Skipped(full, f"cannot read: {e.strerror or e}"))
                    continue
                if stat.S_ISLNK(st.st_mode):
                    if links:
                        found_links.append(full)
                elif stat.S_ISREG(st.st_mode):
                    take_regular(full, st, check_magic=True)
                # fifos, sockets, devices: never opened, silently left out

    for p in paths:
        try:
            st = os.stat(p)
        except OSError:
            d.files.append(p)  # the scan says what is wrong with it (missing, unreadable)
            continue
        if stat.S_ISDIR(st.st_mode):
            d.directories.append(p)
            walk(p)
        elif stat.S_ISREG(st.st_mode):
            take_regular(p, st, check_magic=False)
        else:
            d.files.append(p)  # "not a regular file": the scan's error
    for link in found_links:  # after every real file, so that a link to a file found anywhere is a duplicate
        try:
            st = os.stat(link)
        except OSError:
            continue  # dangling
        if stat.S_ISREG(st.st_mode):
            key = (st.st_dev, st.st_ino)
            if key in seen:
                d.skipped.append(Skipped(link, f"symbolic link to {seen[key]}", warn=False))
                continue
            take_regular(link, st, check_magic=True, follow=True)
    return d
