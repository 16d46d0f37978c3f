"""inputs"""
from __future__ import annotations

import os
import stat
from collections.abc import Sequence
from dataclasses import dataclass, field



ELF_MAGIC = b"\x7fELF"


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


def discover(paths: Sequence[str]) -> Discovery:
    """The files to scan, in argument order then sorted within each directory, each real file once."""
    d = Discovery()
    seen: dict[tuple[int, int], str] = {}
    links: list[str] = []

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
                    links.append(full)
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
    for link in links:  # after every real file, so that a link to a file found anywhere is a duplicate
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
