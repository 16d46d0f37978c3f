"""Container images built without a daemon, for the tests: layers as tar archives of real files, written as an OCI
image layout (a directory), an OCI archive (that layout in a tar), or a `docker save` archive (manifest.json, each
layer an uncompressed <id>/layer.tar, the config's rootfs.diff_ids) — the three forms the tools produce.

    layer = Layer().dir("usr/bin").file("usr/bin/prog", "/path/on/host").symlink("bin", "usr/bin").whiteout("opt/x")
    oci_layout(tmp / "img", [layer, ...], "example:1")
"""
from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import tarfile


class Layer:
    """One layer's entries, in order, as a tar archive."""

    def __init__(self) -> None:
        self.entries: list[tuple[str, str, object]] = []

    def dir(self, name: str) -> Layer:
        self.entries.append((name, "dir", None))
        return self

    def file(self, name: str, source: str | bytes, mode: int = 0o755) -> Layer:
        data = source if isinstance(source, bytes) else open(os.path.realpath(source), "rb").read()
        self.entries.append((name, "file", (data, mode)))
        return self

    def symlink(self, name: str, target: str) -> Layer:
        self.entries.append((name, "symlink", target))
        return self

    def hardlink(self, name: str, target: str) -> Layer:
        self.entries.append((name, "hardlink", target))
        return self

    def whiteout(self, name: str) -> Layer:
        d, b = os.path.split(name)
        self.entries.append((os.path.join(d, ".wh." + b), "file", (b"", 0o644)))
        return self

    def opaque(self, directory: str) -> Layer:
        self.entries.append((os.path.join(directory, ".wh..wh..opq"), "file", (b"", 0o644)))
        return self

    def tar(self) -> bytes:
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tf:
            for name, kind, arg in self.entries:
                ti = tarfile.TarInfo(name)
                ti.mtime = 0
                if kind == "dir":
                    ti.type, ti.mode = tarfile.DIRTYPE, 0o755
                    tf.addfile(ti)
                elif kind == "symlink":
                    ti.type, ti.linkname = tarfile.SYMTYPE, str(arg)
                    tf.addfile(ti)
                elif kind == "hardlink":
                    ti.type, ti.linkname = tarfile.LNKTYPE, str(arg)
                    tf.addfile(ti)
                else:
                    data, mode = arg  # type: ignore[misc]
                    ti.size, ti.mode = len(data), mode
                    tf.addfile(ti, io.BytesIO(data))
        return buf.getvalue()


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _config(diff_ids: list[str]) -> bytes:
    return json.dumps({"architecture": "amd64", "os": "linux", "config": {},
                       "rootfs": {"type": "layers", "diff_ids": diff_ids}}, sort_keys=True).encode()


def _layout_files(layers: list[Layer], name: str, compress: bool = True) -> dict[str, bytes]:
    files: dict[str, bytes] = {"oci-layout": b'{"imageLayoutVersion": "1.0.0"}'}
    descs, diff_ids = [], []
    for ly in layers:
        raw = ly.tar()
        diff_ids.append("sha256:" + _sha(raw))
        blob = gzip.compress(raw, mtime=0) if compress else raw
        files[f"blobs/sha256/{_sha(blob)}"] = blob
        descs.append({"mediaType": "application/vnd.oci.image.layer.v1.tar" + ("+gzip" if compress else ""),
                      "digest": "sha256:" + _sha(blob), "size": len(blob)})
    config = _config(diff_ids)
    files[f"blobs/sha256/{_sha(config)}"] = config
    manifest = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                           "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                                      "digest": "sha256:" + _sha(config), "size": len(config)},
                           "layers": descs}).encode()
    files[f"blobs/sha256/{_sha(manifest)}"] = manifest
    files["index.json"] = json.dumps({"schemaVersion": 2, "manifests": [
        {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": "sha256:" + _sha(manifest),
         "size": len(manifest), "platform": {"os": "linux", "architecture": "amd64"},
         "annotations": {"org.opencontainers.image.ref.name": name}}]}).encode()
    return files


def oci_layout(directory, layers: list[Layer], name: str = "test:1") -> str:
    for rel, data in _layout_files(layers, name).items():
        path = os.path.join(directory, rel)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as fh:
            fh.write(data)
    return str(directory)


def _write_tar(path, files: dict[str, bytes]) -> str:
    with tarfile.open(path, "w", format=tarfile.PAX_FORMAT) as tf:
        for rel in sorted(files):
            ti = tarfile.TarInfo(rel)
            ti.size, ti.mtime, ti.mode = len(files[rel]), 0, 0o644
            tf.addfile(ti, io.BytesIO(files[rel]))
    return str(path)


def oci_archive(path, layers: list[Layer], name: str = "test:1") -> str:
    return _write_tar(path, _layout_files(layers, name))


def docker_archive(path, layers: list[Layer], tag: str = "test:1") -> str:
    """The legacy `docker save` form: <id>/layer.tar (uncompressed), <config sha>.json, manifest.json."""
    files: dict[str, bytes] = {}
    names, diff_ids = [], []
    for i, ly in enumerate(layers):
        raw = ly.tar()
        diff_ids.append("sha256:" + _sha(raw))
        layer_id = _sha(f"{i}:{_sha(raw)}".encode())
        files[f"{layer_id}/layer.tar"] = raw
        files[f"{layer_id}/VERSION"] = b"1.0"
        names.append(f"{layer_id}/layer.tar")
    config = _config(diff_ids)
    files[f"{_sha(config)}.json"] = config
    files["manifest.json"] = json.dumps([{"Config": f"{_sha(config)}.json", "RepoTags": [tag],
                                          "Layers": names}]).encode()
    return _write_tar(path, files)
