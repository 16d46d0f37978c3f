"""Container images as inputs: an OCI image layout (a directory), an OCI archive or a `docker save` archive (an
uncompressed tar). No daemon, no registry: the files are read as they are.

    images = open_images(path)                 # [Image]: one per manifest (per tag; an index's x86 platforms)
    store = ImageStore(directory)              # content-addressed: blobs/<sha256>, layers/<digest>.json, roots/
    view = merged_view(image, store)           # path -> Node after every layer, whiteouts applied (in memory)
    root = store.materialize(view)             # a directory with only what the analysis reads

Why a directory at all: LIEF, the loader model and the library search read files by path. Only what the analysis
can read is written: the ELF files (hard links into the content store: a file shared by layers or images is one file
on disk), the symbolic links as they are, the directories, ld.so.cache, nsswitch.conf and os-release. A root's name
is the digest of what it holds, so a result cached for a program under it stays right, and two images with the same
files share it.

Layers are read as streams (gzip, zstd, bzip2, xz or plain tar) and each one only once per digest: what a layer
holds is kept in the store (layers/), so a layer shared between images is never read again. A layer's bytes are
checked against its digest. Member names are kept inside the image: a leading `/` is dropped and a name with `..` is
left out; a link is created as it is and never followed out of the root (program.libraries.in_root resolves it as a
chroot would). Whiteouts follow the OCI image spec: `.wh.NAME` removes NAME of the lower layers, `.wh..wh..opq`
empties its directory of the lower layers' entries.
"""
from __future__ import annotations

import hashlib
import io
import json
import os
import posixpath
import re
import shutil
import tarfile
import tempfile
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import BinaryIO

from ..errors import BadImage

ELF_MAGIC = b"\x7fELF"
FORMAT = 3  # of the layer records and roots in the store (3: nsswitch.conf kept)
CONFIG_FILES = ("etc/ld.so.cache", "etc/nsswitch.conf", "etc/os-release", "usr/lib/os-release")
"""Regular files kept besides the ELF files: the loader's cache (library search), NSS's services and the OS's
name."""
RESULT_CONFIG = ("etc/ld.so.cache", "etc/nsswitch.conf")  # read by the surface: the loader's cache, NSS's services
INDEX_TYPES = ("application/vnd.oci.image.index.v1+json", "application/vnd.docker.distribution.manifest.list.v2+json")
PLATFORMS = ("linux/amd64", "linux/386")  # what sysscan analyses; an index's other platforms are left out
_DIGEST = re.compile(r"^(sha256|sha512):([0-9a-f]{64}|[0-9a-f]{128})$")
_WH = ".wh."
_OPAQUE = ".wh..wh..opq"


@dataclass
class Layer:
    digest: str  # "sha256:<hex>" of the bytes open() gives (checked while reading)
    media_type: str
    open: Callable[[], BinaryIO] = field(repr=False)


@dataclass
class Image:
    source: str  # the path given
    name: str  # the tag or reference name, else the short digest
    digest: str  # of the manifest (OCI) or of the config (docker save)
    platform: str  # "linux/amd64", or "" when the image does not say
    layers: list[Layer]

    def info(self) -> dict:
        return {"source": self.source, "name": self.name, "digest": self.digest, "platform": self.platform,
                "layers": [ly.digest for ly in self.layers]}


@dataclass(frozen=True)
class Node:
    kind: str  # "dir", "elf", "config", "symlink", "other" (a file not kept), "toolarge"
    sha256: str = ""  # elf, config: the content in the store
    link: str = ""  # symlink: its target as written; a file that is a hard link: the image path it names
    size: int = 0
    lib: bool = False  # an ELF file the loader may load (a shared object without PT_INTERP: a library, ld.so)


# ---- reading the image's index -----------------------------------------------------------------------------------

def _blob_name(digest: str) -> str:
    m = _DIGEST.match(digest or "")
    if not m:
        raise ValueError(f"not a digest: {str(digest)[:80]!r}")
    return f"blobs/{m.group(1)}/{m.group(2)}"


class _Source:
    """Files of the image by their name inside it: a directory's files, or a tar archive's members."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.tar: tarfile.TarFile | None = None
        self.members: dict[str, tarfile.TarInfo] = {}
        if not os.path.isdir(path):
            try:
                self.tar = tarfile.open(path, "r:")
            except (tarfile.TarError, OSError) as e:
                raise BadImage(path, f"not a readable tar archive: {e}") from None
            try:
                for m in self.tar.getmembers():
                    name = posixpath.normpath(m.name.lstrip("/"))
                    if m.isreg() or m.issym() or m.islnk():
                        self.members[name] = m
            except (tarfile.TarError, OSError, EOFError) as e:
                raise BadImage(path, f"damaged tar archive: {e}") from None

    def exists(self, name: str) -> bool:
        if self.tar is None:
            return os.path.isfile(os.path.join(self.path, name))
        return name in self.members

    def open(self, name: str) -> BinaryIO:
        if self.tar is None:
            full = os.path.join(self.path, name)
            real = os.path.realpath(full)
            if os.path.commonpath([real, os.path.realpath(self.path)]) != os.path.realpath(self.path):
                raise BadImage(self.path, f"{name}: points out of the image")
            try:
                return open(real, "rb")
            except OSError as e:
                raise BadImage(self.path, f"{name}: cannot read: {e.strerror or e}") from None
        m = self.members.get(name)
        for _ in range(8):  # a member that is a link to another member (docker save links repeated layers)
            if m is None or m.isreg():
                break
            target = m.linkname if m.islnk() else posixpath.join(posixpath.dirname(m.name), m.linkname)
            m = self.members.get(posixpath.normpath(target.lstrip("/")))
        if m is None or not m.isreg():
            raise BadImage(self.path, f"{name or '(no name)'}: missing from the archive")
        fh = self.tar.extractfile(m)
        assert fh is not None
        return fh

    def json(self, name: str, limit: int = 64 << 20):
        with self.open(name) as fh:
            data = fh.read(limit + 1)
        if len(data) > limit:
            raise BadImage(self.path, f"{name}: larger than {limit >> 20} MiB")
        try:
            return json.loads(data)
        except (ValueError, UnicodeDecodeError) as e:
            raise BadImage(self.path, f"{name}: not JSON: {e}") from None


def is_image(path: str) -> bool:
    """An OCI layout directory, or a tar archive that holds an image (manifest.json or index.json)."""
    from . import detect

    kind = detect(path)
    if kind == "oci-layout":
        return True
    if kind != "tar":
        return False
    try:
        with tarfile.open(path, "r:") as tf:
            for m in tf:
                if posixpath.normpath(m.name.lstrip("/")) in ("manifest.json", "index.json", "oci-layout"):
                    return True
    except (tarfile.TarError, OSError, EOFError):
        return False
    return False


def open_images(path: str) -> list[Image]:
    """Every image the layout or archive holds (BadImage, exit 11, when it holds none sysscan can read)."""
    src = _Source(path)
    try:
        if src.exists("manifest.json"):
            images = _docker_images(src)
        elif src.exists("index.json"):
            images = _oci_images(src)
        else:
            raise BadImage(path, "neither index.json (OCI) nor manifest.json (docker save) in it")
    except ValueError as e:
        raise BadImage(path, str(e)) from None
    if not images:
        raise BadImage(path, "it lists no image")
    return images


def _opener(src: _Source, name: str) -> Callable[[], BinaryIO]:
    return lambda: src.open(name)


def _oci_images(src: _Source) -> list[Image]:
    out: list[Image] = []

    def walk(desc: dict, name: str, platform: str, depth: int) -> None:
        if depth > 4 or not isinstance(desc, dict):
            return
        ann = desc.get("annotations") or {}
        name = ann.get("org.opencontainers.image.ref.name") or ann.get("io.containerd.image.name") or name
        plat = desc.get("platform") or {}
        if plat:
            platform = f"{plat.get('os', '')}/{plat.get('architecture', '')}"
        doc = src.json(_blob_name(desc.get("digest", "")))
        if desc.get("mediaType") in INDEX_TYPES or doc.get("mediaType") in INDEX_TYPES or "manifests" in doc:
            for d in _x86(doc.get("manifests") or [], src.path):
                walk(d, name, platform, depth + 1)
            return
        layers = [Layer(ly["digest"], ly.get("mediaType", ""), _opener(src, _blob_name(ly["digest"])))
                  for ly in doc.get("layers") or []]
        out.append(Image(src.path, name or desc["digest"][7:19], desc["digest"], platform, layers))

    index = src.json("index.json")
    for d in _x86(index.get("manifests") or [], src.path):
        walk(d, "", "", 0)
    return out


def _x86(manifests: list, path: str) -> list[dict]:
    """The entries of an index for the platforms sysscan reads (all of them when none says its platform)."""
    with_platform = [d for d in manifests if isinstance(d, dict) and d.get("platform")]
    if not with_platform:
        return [d for d in manifests if isinstance(d, dict)]
    keep = [d for d in with_platform
            if f"{d['platform'].get('os')}/{d['platform'].get('architecture')}" in PLATFORMS]
    if not keep:
        seen = sorted({f"{d['platform'].get('os')}/{d['platform'].get('architecture')}" for d in with_platform})
        raise BadImage(path, f"no {' or '.join(PLATFORMS)} image in its index (it has {', '.join(seen)})")
    return keep


def _docker_images(src: _Source) -> list[Image]:
    out: list[Image] = []
    manifest = src.json("manifest.json")
    if not isinstance(manifest, list):
        raise ValueError("manifest.json: not a list of images")
    for entry in manifest:
        config_name = entry.get("Config") if isinstance(entry, dict) else None
        if not isinstance(config_name, str) or not config_name:
            raise ValueError("manifest.json: an image without its Config (the file that names its layers' digests)")
        with src.open(config_name) as fh:
            config_bytes = fh.read(64 << 20)
        digest = "sha256:" + hashlib.sha256(config_bytes).hexdigest()
        try:
            config = json.loads(config_bytes)
        except ValueError:
            config = {}
        diff_ids = ((config.get("rootfs") or {}).get("diff_ids") or []) if isinstance(config, dict) else []
        names = entry.get("Layers") or []
        layers = []
        for i, member in enumerate(names):
            m = re.match(r"^blobs/(sha256)/([0-9a-f]{64})$", member)
            d = f"sha256:{m.group(2)}" if m else (diff_ids[i] if len(diff_ids) == len(names) else "")
            if not _DIGEST.match(d):
                raise ValueError(f"layer {member}: no digest to check it against")
            layers.append(Layer(d, "application/vnd.docker.image.rootfs.diff.tar", _opener(src, member)))
        tags = entry.get("RepoTags") or []
        platform = f"{config.get('os', '')}/{config.get('architecture', '')}" if isinstance(config, dict) else ""
        out.append(Image(src.path, tags[0] if tags else digest[7:19], digest, platform.strip("/"), layers))
    return out


# ---- reading a layer -------------------------------------------------------------------------------------------

class _Hashing(io.RawIOBase):
    """A raw stream that hashes what passes through it (the layer's digest, checked at the end)."""

    def __init__(self, fh: BinaryIO, algorithm: str) -> None:
        self.fh, self.h = fh, hashlib.new(algorithm)

    def readable(self) -> bool:
        return True

    def readinto(self, b) -> int:
        data = self.fh.read(len(b))
        self.h.update(data)
        b[:len(data)] = data
        return len(data)


def _members(raw: BinaryIO) -> Iterator[tarfile.TarInfo | tuple]:
    """The layer's tar members, whatever compression it has (by magic, not by media type: some registries lie)."""
    head = raw.peek(6)[:6]  # type: ignore[attr-defined]
    if head[:4] == b"\x28\xb5\x2f\xfd":
        import zstandard

        stream = zstandard.ZstdDecompressor().stream_reader(raw, read_across_frames=True)
        tf = tarfile.open(fileobj=stream, mode="r|")
    elif head[:2] == b"\x1f\x8b":
        tf = tarfile.open(fileobj=raw, mode="r|gz")
    elif head[:3] == b"BZh":
        tf = tarfile.open(fileobj=raw, mode="r|bz2")
    elif head[:6] == b"\xfd7zXZ\x00":
        tf = tarfile.open(fileobj=raw, mode="r|xz")
    else:
        tf = tarfile.open(fileobj=raw, mode="r|")
    yield from ((m, tf) for m in tf)


def _clean(name: str) -> str | None:
    """An image path without its leading / or ./; None when it would leave the image (`..`)."""
    parts = [p for p in name.split("/") if p not in ("", ".")]
    if any(p == ".." for p in parts):
        return None
    return "/".join(parts)


def read_layer(layer: Layer, store: ImageStore, max_size: int) -> list:
    """What a layer holds, as records (["opaque", dir], ["whiteout", path], [path, Node fields...]), its ELF and
    config files put into the store. Kept in the store by digest: a layer seen before is not read again."""
    record = store.layer_record(layer.digest, max_size)
    if record is not None:
        return record
    alg = layer.digest.split(":", 1)[0]
    records: list = []
    try:
        with layer.open() as fh:
            hashing = _Hashing(fh, alg)
            raw = io.BufferedReader(hashing, 1 << 20)
            for m, tf in _members(raw):
                name = _clean(m.name)
                if not name:
                    continue
                parent, base = posixpath.split(name)
                if base == _OPAQUE:
                    records.append(["opaque", parent])
                elif base.startswith(_WH):
                    records.append(["whiteout", posixpath.join(parent, base[len(_WH):])])
                elif m.isdir():
                    records.append([name, "dir", "", "", 0])
                elif m.issym():
                    records.append([name, "symlink", "", m.linkname, 0])
                elif m.islnk():
                    target = _clean(m.linkname)
                    if target:
                        records.append([name, "hardlink", "", target, 0])
                elif m.isreg():
                    records.append(_regular(name, m, tf, store, max_size))
                # devices, fifos: not programs, left out
            while raw.read(1 << 20):  # the tar's end padding: the digest covers every byte
                pass
    except BadImage:
        raise
    except (tarfile.TarError, OSError, EOFError, ValueError, zlib.error, RuntimeError, MemoryError) as e:
        raise BadImage(None, f"layer {layer.digest[:19]}: damaged: {e}") from None
    got = f"{alg}:{hashing.h.hexdigest()}"
    if got != layer.digest:
        raise BadImage(None, f"layer {layer.digest[:19]}: its content does not match its digest ({got[:19]})")
    store.put_layer_record(layer.digest, max_size, records)
    return records


def _regular(name: str, m: tarfile.TarInfo, tf: tarfile.TarFile, store: ImageStore, max_size: int) -> list:
    fh = tf.extractfile(m)
    head = fh.read(4) if fh is not None else b""
    keep = head == ELF_MAGIC or name in CONFIG_FILES
    if not keep:
        return [name, "other", "", "", m.size]
    if m.size > max_size:
        return [name, "toolarge", "", "", m.size]
    sha = store.put_blob(head, fh)
    if head != ELF_MAGIC:
        return [name, "config", sha, "", m.size, False]
    return [name, "elf", sha, "", m.size, _loadable(store.blob(sha))]


def _loadable(path: str) -> bool:
    """Whether the loader may load this ELF file: a shared object (ET_DYN) without PT_INTERP — a library, ld.so
    itself. Programs (a PT_INTERP, or ET_EXEC) and unreadable headers are not: no search finds them."""
    import struct

    try:
        with open(path, "rb") as fh:
            head = fh.read(64)
            if len(head) < 52 or head[5] not in (1, 2):
                return False
            end = "<" if head[5] == 1 else ">"
            if struct.unpack_from(end + "H", head, 0x10)[0] != 3:  # ET_DYN
                return False
            if head[4] == 2:
                phoff, = struct.unpack_from(end + "Q", head, 0x20)
                phentsize, phnum = struct.unpack_from(end + "HH", head, 0x36)
            else:
                phoff, = struct.unpack_from(end + "I", head, 0x1C)
                phentsize, phnum = struct.unpack_from(end + "HH", head, 0x2A)
            if phentsize < 4 or phnum > 4096:
                return False
            fh.seek(phoff)
            table = fh.read(phentsize * phnum)
    except (OSError, struct.error, OverflowError, ValueError):
        return False
    return not any(struct.unpack_from(end + "I", table, i * phentsize)[0] == 3  # PT_INTERP
                   for i in range(len(table) // phentsize))


# ---- the merged view --------------------------------------------------------------------------------------------

def _drop(view: dict[str, Node], path: str, keep_self: bool = False) -> None:
    prefix = path + "/" if path else ""
    for k in [k for k in view if k.startswith(prefix) or (k == path and not keep_self)]:
        if k != path or not keep_self:
            del view[k]


def merged_view(image: Image, store: ImageStore, max_size: int) -> dict[str, Node]:
    """The image's files after its layers are applied in order: whiteouts hide the lower layers' entries; an entry
    replaces the one below it (a file replacing a directory takes its contents away). Hard links take their target's
    content (a link to a file of the same or a lower layer)."""
    view: dict[str, Node] = {}
    for layer in image.layers:
        records = read_layer(layer, store, max_size)
        for r in records:
            if r[0] == "opaque":
                _drop(view, r[1], keep_self=True)
            elif r[0] == "whiteout":
                _drop(view, r[1])
        for r in records:
            if r[0] in ("opaque", "whiteout"):
                continue
            path, kind = r[0], r[1]
            old = view.get(path)
            if old is not None and old.kind == "dir" and kind != "dir":
                _drop(view, path)
            if kind == "dir":
                view[path] = old if old is not None and old.kind == "dir" else Node("dir")
            elif kind == "hardlink":
                target = view.get(r[3])
                if target is not None and target.kind not in ("dir", "symlink"):
                    view[path] = Node(target.kind, target.sha256, r[3], target.size, target.lib)
            else:
                view[path] = Node(kind, r[2], r[3], r[4], bool(r[5]) if len(r) > 5 else False)
    return view


def view_digest(view: dict[str, Node]) -> str:
    """What a root built from the view holds (the files the analysis reads and the links), as one digest."""
    h = hashlib.sha256(f"sysscan-root-{FORMAT}\n".encode())
    for path in sorted(view):
        n = view[path]
        if n.kind in ("dir", "elf", "config", "symlink"):
            h.update(json.dumps([path, n.kind, n.sha256, n.link]).encode() + b"\n")
    return h.hexdigest()


def libraries_digest(view: dict[str, Node]) -> str:
    """What of the view a program's result can depend on besides its own bytes: the files the loader may load
    (shared objects without PT_INTERP), every symbolic link (they steer the search), ld.so.cache, and nsswitch.conf
    (which NSS modules glibc loads). Two images that differ only in their programs have the same one, so a program
    they share is analysed once (the result cache's key)."""
    h = hashlib.sha256(f"sysscan-libraries-{FORMAT}\n".encode())
    for path in sorted(view):
        n = view[path]
        if n.kind == "symlink" or (n.kind == "elf" and n.lib) or path in RESULT_CONFIG:
            h.update(json.dumps([path, n.kind, n.sha256, n.link]).encode() + b"\n")
    return h.hexdigest()


# ---- the store ----------------------------------------------------------------------------------------------------

def default_store_dir() -> str:
    from ..cache import base_dir

    return os.path.join(base_dir(), "images")


class ImageStore:
    """blobs/<sha256> (the kept files, read-only), layers/<digest>-<max_size>.json (what a layer holds),
    roots/<view digest>/ (a merged root). Every write goes to a temporary name first and is renamed into place, so a
    store shared by processes (or machines) never shows half a file."""

    def __init__(self, directory: str) -> None:
        self.directory = directory
        for sub in ("blobs", "layers", "roots"):
            os.makedirs(os.path.join(directory, sub), exist_ok=True)

    def blob(self, sha: str) -> str:
        return os.path.join(self.directory, "blobs", sha)

    def put_blob(self, head: bytes, fh: BinaryIO) -> str:
        fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=os.path.join(self.directory, "blobs"))
        h = hashlib.sha256(head)
        try:
            with os.fdopen(fd, "wb") as out:
                out.write(head)
                while chunk := fh.read(1 << 20):
                    h.update(chunk)
                    out.write(chunk)
            os.chmod(tmp, 0o444)
            sha = h.hexdigest()
            final = self.blob(sha)
            if os.path.exists(final):
                os.unlink(tmp)
            else:
                os.replace(tmp, final)
            return sha
        except BaseException:
            if os.path.exists(tmp):
                os.unlink(tmp)
            raise

    def _layer_path(self, digest: str, max_size: int) -> str:
        return os.path.join(self.directory, "layers", f"{digest.replace(':', '-')}-{max_size}.json")

    def layer_record(self, digest: str, max_size: int) -> list | None:
        try:
            with open(self._layer_path(digest, max_size), encoding="utf-8") as fh:
                doc = json.load(fh)
        except (OSError, ValueError):
            return None
        if not isinstance(doc, dict) or doc.get("format") != FORMAT:
            return None
        records = doc.get("records")
        if not isinstance(records, list) or not all(
                r[0] in ("opaque", "whiteout") or os.path.exists(self.blob(r[2])) or r[1] not in ("elf", "config")
                for r in records):
            return None  # a blob was removed since: read the layer again
        return records

    def put_layer_record(self, digest: str, max_size: int, records: list) -> None:
        path = self._layer_path(digest, max_size)
        fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=os.path.dirname(path))
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump({"format": FORMAT, "digest": digest, "records": records}, fh, separators=(",", ":"))
        os.replace(tmp, path)

    def materialize(self, view: dict[str, Node]) -> str:
        """The root directory for the view (built once, then reused: its name is its content's digest)."""
        final = os.path.join(self.directory, "roots", view_digest(view)[:32])
        if os.path.isdir(final):
            return final
        tmp = tempfile.mkdtemp(prefix=".tmp-", dir=os.path.join(self.directory, "roots"))
        try:
            _build_root(tmp, view, self)
            try:
                os.rename(tmp, final)
            except OSError:
                if not os.path.isdir(final):
                    raise
                shutil.rmtree(tmp, ignore_errors=True)  # another process built it meanwhile
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        return final


def _place(root: str, path: str) -> str | None:
    """Where `path` of the image goes under `root`: its directory resolved inside the root (a link met on the way is
    followed as in a chroot, never out). None when that directory is not one."""
    from ..program.libraries import in_root

    parent, base = posixpath.split(path)
    where = in_root(root, "/" + parent) if parent else os.path.realpath(root)
    real = os.path.realpath(root)
    if not os.path.isdir(where) or os.path.islink(where):
        return None
    if os.path.commonpath([os.path.realpath(where), real]) != real:
        return None
    return os.path.join(where, base)


def _build_root(root: str, view: dict[str, Node], store: ImageStore) -> None:
    """Directories first (sorted: parents before children), then files and links."""
    for path in sorted(view):
        n = view[path]
        if n.kind == "dir":
            where = _place(root, path)
            if where is not None and not os.path.lexists(where):
                os.mkdir(where, 0o755)
        elif n.kind in ("elf", "config") and n.sha256:
            parent = posixpath.dirname(path)
            if parent:
                _ensure_dirs(root, parent)
            where = _place(root, path)
            if where is None or os.path.lexists(where):
                continue
            try:
                os.link(store.blob(n.sha256), where)
            except OSError:
                shutil.copyfile(store.blob(n.sha256), where)
        elif n.kind == "symlink":
            parent = posixpath.dirname(path)
            if parent:
                _ensure_dirs(root, parent)
            where = _place(root, path)
            if where is not None and not os.path.lexists(where):
                os.symlink(n.link, where)


def _ensure_dirs(root: str, parent: str) -> None:
    """A file whose directory no layer listed (tar archives may omit them)."""
    done = ""
    for part in parent.split("/"):
        done = posixpath.join(done, part) if done else part
        where = _place(root, done)
        if where is not None and not os.path.lexists(where):
            os.mkdir(where, 0o755)


def elf_files(view: dict[str, Node]) -> list[str]:
    """The image paths of its ELF files, sorted. A hard link is the file it names (listed once, as discovery treats
    one on disk), unless that name was removed or replaced by a later layer."""
    out = []
    for p, n in view.items():
        if n.kind == "elf":
            if not n.link or getattr(view.get(n.link), "sha256", None) != n.sha256:
                out.append(p)
    return sorted(out)


def skipped_files(view: dict[str, Node], max_size: int) -> list[tuple[str, str]]:
    return sorted((p, f"larger than --max-size ({n.size} > {max_size} bytes): not analysed")
                  for p, n in view.items() if n.kind == "toolarge")


