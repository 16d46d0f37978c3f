"""Container images as inputs (issue 15): real files (busybox-static, gofmt, a dynamic corpus program with this
machine's loader and libc, /bin/ls without its libselinux) put into layers with a whiteout and an opaque directory,
written as an OCI layout, an OCI archive and a docker-save archive, then scanned as a user would."""
from __future__ import annotations

import gzip
import hashlib
import json
import os
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from imagebuild import Layer, docker_archive, oci_archive, oci_layout

ROOT = Path(__file__).resolve().parents[1]
CORPUS = ROOT / "corpus"
LIB = "/lib/x86_64-linux-gnu/"
BUSYBOX = os.environ.get("SYSSCAN_BUSYBOX", "")
GOFMT = os.environ.get("SYSSCAN_GOFMT", "")
needs_inputs = pytest.mark.skipif(not (os.path.isfile(BUSYBOX) and os.path.isfile(GOFMT)),
                                  reason="SYSSCAN_BUSYBOX and SYSSCAN_GOFMT (benchmarks/fetch_inputs.sh, .ci/run)")
EXPECTED = ["/opt/old/new", "/usr/bin/busybox", "/usr/bin/ls", "/usr/bin/prog",
            "/usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2", "/usr/lib/x86_64-linux-gnu/libc.so.6",
            "/usr/local/bin/gofmt"]


def base_layer(busybox: str = BUSYBOX) -> Layer:
    """A Debian-like base: merged /usr through relative links, the loader reached through an absolute link."""
    return (Layer().dir("etc").file("etc/os-release", b'ID=debian\nVERSION_ID="12"\n', 0o644)
            .dir("usr").dir("usr/bin").dir("usr/lib").dir("usr/lib/x86_64-linux-gnu")
            .symlink("bin", "usr/bin").symlink("lib", "usr/lib").dir("lib64")
            .file("usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2", LIB + "ld-linux-x86-64.so.2")
            .file("usr/lib/x86_64-linux-gnu/libc.so.6", LIB + "libc.so.6")
            .symlink("lib64/ld-linux-x86-64.so.2", "/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2")
            .file("usr/bin/busybox", busybox)
            .file("usr/bin/prog", str(CORPUS / "bin/idioms_pie")).hardlink("usr/bin/prog-again", "usr/bin/prog")
            .file("usr/bin/extra", str(CORPUS / "bin/idioms_nopie"))
            .dir("opt").dir("opt/old").file("opt/old/gone", str(CORPUS / "bin/idioms_nopie"))
            .file("etc/passwd", b"root:x:0:0:root:/root:/bin/sh\n", 0o644))


def top_layer() -> Layer:
    """Removes usr/bin/extra (a whiteout) and what opt/old held (opaque), adds a Go program and /bin/ls without
    the libselinux it needs (this machine has it: a scan that used the host's libraries would find it)."""
    return (Layer().whiteout("usr/bin/extra").opaque("opt/old").file("opt/old/new", str(CORPUS / "bin/idioms_pie"))
            .dir("usr/local").dir("usr/local/bin").file("usr/local/bin/gofmt", GOFMT)
            .file("usr/bin/ls", "/bin/ls"))


def _scan(path, *extra: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "analyzer.cli", str(path), *extra], capture_output=True, text=True,
                          timeout=900, cwd=ROOT, env={**os.environ, **(env or {})})


def test_an_images_nsswitch_conf_is_kept_and_keys_its_results(tmp_path):
    """The surface follows the NSS modules the root's nsswitch.conf names: the file is written into the root, and
    two images that differ only in it do not share results."""
    from analyzer.inputs.image import ImageStore, libraries_digest, merged_view, open_images

    store = ImageStore(str(tmp_path / "store"))

    def view(conf: bytes, name: str):
        layer = base_layer(busybox=str(CORPUS / "bin/idioms_nopie")).file("etc/nsswitch.conf", conf, 0o644)
        return merged_view(open_images(oci_layout(tmp_path / name, [layer], f"{name}:1"))[0], store, 1 << 30)

    files, systemd = view(b"passwd: files\n", "a"), view(b"passwd: files systemd\n", "b")
    assert files["etc/nsswitch.conf"].kind == "config"
    assert libraries_digest(files) != libraries_digest(systemd)
    assert libraries_digest(files) == libraries_digest(view(b"passwd: files\n", "c"))
    with open(os.path.join(store.materialize(systemd), "etc/nsswitch.conf")) as f:
        assert f.read() == "passwd: files systemd\n"


def test_layers_merge_with_whiteouts_opaque_directories_and_links(tmp_path):
    from analyzer.inputs.image import ImageStore, elf_files, merged_view, open_images

    layers = [base_layer(busybox=str(CORPUS / "bin/idioms_nopie")),
              top_layer() if GOFMT else Layer().whiteout("usr/bin/extra").opaque("opt/old")]
    images = open_images(oci_layout(tmp_path / "oci", layers, "ex:1"))
    assert [(i.name, i.platform, len(i.layers)) for i in images] == [("ex:1", "linux/amd64", 2)]
    store = ImageStore(str(tmp_path / "store"))
    view = merged_view(images[0], store, 1 << 30)
    assert "usr/bin/extra" not in view and "opt/old/gone" not in view and "opt/old" in view
    assert view["etc/passwd"].kind == "other" and view["etc/os-release"].kind == "config"
    assert view["lib64/ld-linux-x86-64.so.2"].link == "/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2"
    assert view["usr/bin/prog-again"].sha256 == view["usr/bin/prog"].sha256  # a hard link: the same content
    files = elf_files(view)
    assert "usr/bin/prog" in files and "usr/bin/prog-again" not in files  # listed once, as on disk
    root = store.materialize(view)
    assert os.readlink(os.path.join(root, "lib64/ld-linux-x86-64.so.2")).startswith("/lib/")  # kept as it is
    assert not os.path.exists(os.path.join(root, "etc/passwd"))  # only what the analysis reads is written
    assert os.path.samefile(os.path.join(root, "usr/bin/prog"), store.blob(view["usr/bin/prog"].sha256))
    assert store.materialize(view) == root  # built once, by its content's digest


def test_a_shared_layer_is_read_once(tmp_path):
    from analyzer.inputs.image import ImageStore, merged_view, open_images

    base = base_layer(busybox=str(CORPUS / "bin/idioms_nopie"))
    a = open_images(oci_layout(tmp_path / "a", [base, Layer().whiteout("usr/bin/extra")], "a:1"))[0]
    b = open_images(oci_layout(tmp_path / "b", [base, Layer().whiteout("usr/bin/prog")], "b:1"))[0]
    assert a.layers[0].digest == b.layers[0].digest
    store = ImageStore(str(tmp_path / "store"))
    merged_view(a, store, 1 << 30)
    opened = []
    for ly in b.layers:
        ly.open = (lambda f, d: lambda: (opened.append(d), f())[1])(ly.open, ly.digest)
    view = merged_view(b, store, 1 << 30)
    assert opened == [b.layers[1].digest]  # the base layer came from the store
    assert "usr/bin/prog" not in view and "usr/bin/extra" in view


def test_a_member_never_lands_outside_the_root(tmp_path):
    """`..` members are left out; a file under an absolute link to a directory goes where the link points inside
    the root, never to this machine's directory of that name."""
    from analyzer.inputs.image import ImageStore, merged_view, open_images

    outside = tmp_path / "outside"
    outside.mkdir()
    elf = (CORPUS / "bin/idioms_nopie").read_bytes()
    evil = (Layer().dir("inside").symlink("link", str(outside)).file("link/planted", elf)
            .file("../../escaped", elf).file("inside/ok", elf))
    image = open_images(oci_layout(tmp_path / "oci", [evil], "evil:1"))[0]
    store = ImageStore(str(tmp_path / "store"))
    view = merged_view(image, store, 1 << 30)
    root = store.materialize(view)
    assert list(outside.iterdir()) == [] and not (tmp_path / "escaped").exists()
    assert os.path.isfile(os.path.join(root, "inside/ok"))


def _corrupt_layer(layout: Path) -> None:
    index = json.loads((layout / "index.json").read_text())
    manifest = json.loads((layout / "blobs/sha256" / index["manifests"][0]["digest"][7:]).read_text())
    blob = layout / "blobs/sha256" / manifest["layers"][0]["digest"][7:]
    data = bytearray(gzip.decompress(blob.read_bytes()))
    data[600] ^= 1
    blob.chmod(0o644)
    blob.write_bytes(gzip.compress(bytes(data), mtime=0))


@pytest.mark.parametrize("damage", ["digest", "no-index", "arm64", "not-a-tar"])
def test_a_bad_image_is_one_line_exit_11(tmp_path, damage):
    layout = tmp_path / "oci"
    oci_layout(layout, [Layer().dir("usr").file("usr/x", (CORPUS / "bin/idioms_nopie").read_bytes())], "x:1")
    path = layout
    if damage == "digest":
        _corrupt_layer(layout)
        want = "does not match its digest"
    elif damage == "no-index":
        (layout / "index.json").unlink()
        path = tmp_path / "a.tar"
        with tarfile.open(path, "w") as tf:
            tf.add(layout, arcname=".")
        want = "neither index.json"
    elif damage == "arm64":
        index = json.loads((layout / "index.json").read_text())
        index["manifests"][0]["platform"]["architecture"] = "arm64"
        (layout / "index.json").write_text(json.dumps(index))
        want = "it has linux/arm64"
    else:
        path = tmp_path / "b.tar"
        path.write_bytes(b"\0" * 257 + b"ustar" + b"\0" * 1000 + b"\1" * 5000)
        want = "tar"
    p = _scan(path, "--no-cache")
    assert p.returncode == (11 if damage != "not-a-tar" else 4), p.stderr
    assert want in p.stderr and p.stderr.count("\n") == 1 and "Traceback" not in p.stderr, p.stderr


@needs_inputs
def test_an_image_is_scanned_with_its_own_libraries_in_every_form(tmp_path):
    """The three forms give the same reports; every program's libraries are the image's (ls misses libselinux
    although this machine has it); paths are the image's; nothing names the store."""
    layers = [base_layer(), top_layer()]
    forms = {"oci": oci_layout(tmp_path / "oci", layers, "ex:1"),
             "oci-archive": oci_archive(tmp_path / "oci.tar", layers, "ex:1"),
             "docker": docker_archive(tmp_path / "docker.tar", layers, "ex:1")}
    env = {"XDG_CACHE_HOME": str(tmp_path / "cache")}
    docs = {}
    for form, path in forms.items():
        p = _scan(path, "-f", "json", env=env)
        assert p.returncode == 0, p.stderr
        docs[form] = json.loads(p.stdout)
    reports = {f: json.dumps(d["reports"], sort_keys=True) for f, d in docs.items()}
    assert reports["oci"] == reports["oci-archive"] == reports["docker"]
    doc = docs["docker"]
    assert [r["binary"]["path"] for r in doc["reports"]] == EXPECTED
    assert doc["aggregate"]["images"][0]["name"] == "ex:1" and doc["aggregate"]["images"][0]["files"] == 7
    assert str(tmp_path) not in reports["docker"]
    by = {r["binary"]["path"]: r for r in doc["reports"]}
    ls = by["/usr/bin/ls"]["surface"]
    assert os.path.exists(LIB + "libselinux.so.1")
    assert any(o["kind"] == "missing-library" and "libselinux.so.1" in o["detail"] for o in ls["open_ends"]), \
        ls["open_ends"]
    objects = {o["kind"]: o for o in by["/usr/bin/prog"]["surface"]["objects"]}
    assert objects["interpreter"]["path"] == "/usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2"
    libc = hashlib.sha256(open(LIB + "libc.so.6", "rb").read()).hexdigest()
    assert objects["needed"]["path"] == "/usr/lib/x86_64-linux-gnu/libc.so.6" and objects["needed"]["sha256"] == libc
    assert by["/usr/bin/busybox"]["binary"]["static"] and by["/usr/local/bin/gofmt"]["surface"]["syscalls"]
    # a second run comes from the caches (layers, root, results) and is the same
    again = _scan(forms["oci"], "-f", "json", env=env)
    assert json.dumps(json.loads(again.stdout)["reports"], sort_keys=True) == reports["oci"]
    # the image's seccomp profile: the union of its programs' surfaces
    prof = _scan(forms["oci"], "-f", "seccomp", env=env)
    assert prof.returncode == 0, prof.stderr
    allowed = {n for s in json.loads(prof.stdout)["syscalls"] for n in s["names"]}
    union = {s["name"] for s in doc["aggregate"]["surface"]}
    assert union <= allowed and "getdents64" in allowed
    both = _scan(forms["oci"], str(CORPUS / "bin/idioms_pie"))
    assert both.returncode == 2 and "on its own" in both.stderr
