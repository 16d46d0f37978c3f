"""A container image as one input: its layers merged (inputs/image.py), every ELF file in it scanned with the image
as the sysroot (its own ld.so, libc and library paths, never this machine's), and the reports named by their paths
inside the image.

    result = scan_image("app.tar", options, limits, jobs=2, cache=ResultCache())
    result.reports        # one per ELF file, binary.path "/usr/bin/ls" (or "NAME:/usr/bin/ls" with several images)
    result.images         # [{"name", "digest", "platform", "layers", "root", "files"}]

The store (ImageStore) lives under the cache directory, or in a temporary directory removed at the end with
--no-cache. A root's name is its content's digest, so the result cache keyed by (file, sysroot) stays right.
"""
from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass, replace

from ..inputs import Discovery, Skipped
from ..inputs.image import (ImageStore, default_store_dir, elf_files, libraries_digest, merged_view, open_images,
                            skipped_files)
from .pool import BatchResult, scan_paths


@dataclass
class Prepared:
    """An image ready to scan: its merged root on disk and its ELF files (image paths)."""

    info: dict
    root: str
    files: list[str]
    skipped: list[Skipped]
    libraries: str  # libraries_digest: the result cache's key for the root, shared by images with the same

    @property
    def unroot(self) -> Unroot:
        return Unroot(tuple(dict.fromkeys((self.root, os.path.realpath(self.root)))))

    def options(self, options):
        return replace(options, sysroot=self.root, root_key=f"image-libraries:{self.libraries}")


@dataclass(frozen=True)
class Unroot:
    """A result document's paths under an image's root written as the image's paths (picklable, for a worker)."""

    roots: tuple[str, ...]

    def __call__(self, doc: dict) -> dict:
        return unroot(doc, self.roots)


def prepare_images(path: str, store: ImageStore, max_size: int) -> list[Prepared]:
    out = []
    for image in open_images(path):
        view = merged_view(image, store, max_size)
        root = store.materialize(view)
        files = elf_files(view)
        skipped = [Skipped(f"/{p}", why) for p, why in skipped_files(view, max_size)]
        info = {**image.info(), "root": os.path.basename(root), "files": len(files)}
        out.append(Prepared(info, root, files, skipped, libraries_digest(view)))
    return out


def unroot(value, roots: tuple[str, ...]):
    """`value` (a result document) with every path under the image's root written as the image path."""
    if isinstance(value, str):
        for r in roots:
            if r in value:
                value = value.replace(r + "/", "/")
        return value
    if isinstance(value, dict):
        return {k: unroot(v, roots) for k, v in value.items()}
    if isinstance(value, list):
        return [unroot(v, roots) for v in value]
    return value


def scan_prepared(images: list[Prepared], options, limits, *, jobs, cache, progress=None) -> BatchResult:
    """Each image scanned under its own root; one result, the images' reports side by side."""
    from ..run.pipeline import ScanOptions

    options = options or ScanOptions()
    out = BatchResult(many=True)
    for im in images:
        prefix = f"{im.info['name']}:" if len(images) > 1 else ""  # several images in one archive: which one
        found = Discovery(files=[os.path.join(im.root, p) for p in im.files])
        res = scan_paths([im.root], im.options(options), limits, jobs=jobs, cache=cache, progress=progress,
                         found=found, relabel=im.unroot)
        for r in res.reports:
            r.binary.path = prefix + r.binary.path
        for f in res.failures:
            f.path = prefix + f.path
        out.reports += res.reports
        out.failures += res.failures
        out.skipped += [Skipped(prefix + s.path, s.reason) for s in im.skipped] + res.skipped
        out.images.append(im.info)
        out.files += res.files
        out.cached += res.cached
        out.scanned += res.scanned
        out.seconds += res.seconds
    out.reports.sort(key=lambda r: r.binary.path)
    out.failures.sort(key=lambda f: f.path)
    return out


def scan_image(path: str, options=None, limits=None, *, jobs: int | None = None, cache=None,
               progress=None) -> BatchResult:
    """Scan every ELF file of the image(s) at `path` (BadImage, exit 11, when it cannot be read)."""
    from ..budget import Limits

    limits = limits or Limits()
    use_store = cache is not None and cache.enabled
    directory = default_store_dir() if use_store else tempfile.mkdtemp(prefix="sysscan-image-")
    try:
        images = prepare_images(path, ImageStore(directory), limits.max_size)
        return scan_prepared(images, options, limits, jobs=jobs, cache=cache, progress=progress)
    finally:
        if not use_store:
            shutil.rmtree(directory, ignore_errors=True)
