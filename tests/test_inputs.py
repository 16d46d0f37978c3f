"""The one door for inputs: each kind recognised by its content, and an input of a kind sysscan cannot scan yet
refused with a sentence that says what it is (and the exit code it always had)."""
from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import tarfile

import pytest

from analyzer.inputs import detect
from conftest import CORPUS, ROOT


def _cli(*args, cwd=ROOT):
    return subprocess.run([sys.executable, "-m", "analyzer.cli", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=300)


def _docker_archive(path) -> None:
    """What `docker save` writes: a tar with manifest.json and one layer tar (here holding a real corpus binary)."""
    layer = io.BytesIO()
    with tarfile.open(fileobj=layer, mode="w") as t:
        t.add(CORPUS / "bin/hello_static", arcname="bin/hello")
    with tarfile.open(path, "w") as t:
        for name, data in (("manifest.json", json.dumps([{"Layers": ["l/layer.tar"]}]).encode()),
                           ("l/layer.tar", layer.getvalue())):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            t.addfile(info, io.BytesIO(data))


def _bzimage(path) -> None:
    """The x86 boot protocol header of a bzImage (boot sector signature, "HdrS"): a vmlinuz as far as detection
    goes. A real one is what issue 13's decompression needs; the door only has to name it."""
    head = bytearray(0x400)
    head[0:2] = b"MZ"
    head[0x1FE:0x200] = b"\x55\xaa"
    head[0x202:0x206] = b"HdrS"
    path.write_bytes(bytes(head) + os.urandom(4096))


def test_kinds_by_content(tmp_path):
    assert detect(str(CORPUS / "bin/idioms_nopie")) == "elf"
    assert detect(str(CORPUS / "bin/libraw.so")) == "elf"
    assert detect(str(CORPUS / "bin/i386_raw")) == "elf"
    for k in ("vmlinux-switch", "vmlinux-stripped"):
        assert detect(str(CORPUS / "kernel/bin" / k)) == "vmlinux", k
    assert detect(str(CORPUS)) == "directory"
    (tmp_path / "oci").mkdir()
    (tmp_path / "oci" / "oci-layout").write_text('{"imageLayoutVersion": "1.0.0"}')
    assert detect(str(tmp_path / "oci")) == "oci-layout"
    _docker_archive(tmp_path / "image.tar")
    assert detect(str(tmp_path / "image.tar")) == "tar"
    _bzimage(tmp_path / "vmlinuz")
    assert detect(str(tmp_path / "vmlinuz")) == "vmlinuz"
    assert detect(str(ROOT / "README.md")) == "other"
    assert detect(str(tmp_path / "missing")) == "other"
    renamed = tmp_path / "image.tar.elf"  # the name says nothing
    renamed.write_bytes((CORPUS / "bin/hello_static").read_bytes())
    assert detect(str(renamed)) == "elf"


@pytest.mark.kernel
def test_a_real_vmlinux_is_recognised():
    vm = os.environ.get("SYSSCAN_VMLINUX_61")
    if not vm:
        pytest.skip("SYSSCAN_VMLINUX_61 not set (.ci/run fetches Debian's 6.1 dbg vmlinux)")
    assert detect(vm) == "vmlinux"


def _plain_tar(path) -> None:
    with tarfile.open(path, "w") as t:
        t.add(CORPUS / "bin/hello_static", arcname="bin/hello")


@pytest.mark.parametrize("make,what", [(_plain_tar, "a tar archive"), (_bzimage, "a compressed kernel image")])
def test_a_kind_not_scanned_as_a_program_is_named_in_the_error(tmp_path, make, what):
    f = tmp_path / "input"
    make(f)
    p = _cli(str(f))
    assert p.returncode == 4, p.stderr
    assert p.stderr.count("\n") == 1 and "Traceback" not in p.stderr
    assert "not an ELF file" in p.stderr and what in p.stderr and str(f) in p.stderr


def test_a_docker_archive_without_its_config_is_a_bad_image(tmp_path):
    """A docker-save archive is scanned as an image (tests/test_images.py); one whose manifest names no config
    cannot be checked or named: exit 11, one line."""
    f = tmp_path / "input"
    _docker_archive(f)
    p = _cli(str(f))
    assert p.returncode == 11 and p.stderr.count("\n") == 1 and "Traceback" not in p.stderr, p.stderr
    assert "manifest.json" in p.stderr and "Config" in p.stderr and str(f) in p.stderr


def test_a_vmlinuz_given_as_vmlinux_is_a_bad_kernel(tmp_path):
    f = tmp_path / "vmlinuz"
    _bzimage(f)
    p = _cli(str(CORPUS / "bin/i386_raw"), "--vmlinux", str(f))
    assert p.returncode == 7 and "bzImage" in p.stderr, p.stderr
