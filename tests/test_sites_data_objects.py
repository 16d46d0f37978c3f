"""Data objects in executable sections are data, not sites.

Hand-written assembly keeps tables in .text with a sized STT_OBJECT symbol (OpenSSL's ecp_nistz256_precomputed:
148 KB of precomputed curve points in /usr/bin/node). Bytes `0f 05` / `cd 80` inside such a table decoded as
instructions from the end of the previous function looked like three syscall sites in node, and their data flow
over ~45k "instructions" of garbage cost 25 s. A real binary built here has the same shape: one table declared
`@object` in .text whose bytes decode as `mov $39,%rax; syscall`, and the same bytes declared `@function`.
"""
from __future__ import annotations

import shutil
import subprocess

import pytest

SOURCE = r"""
/* the same 9 bytes twice: mov $39,%rax ; syscall */
__asm__(".text\n"
        ".globl table_in_text\n.type table_in_text, @object\n"
        "table_in_text:\n .byte 0x48,0xc7,0xc0,0x27,0,0,0, 0x0f,0x05, 0xcd,0x80, 0,0,0,0,0\n"
        ".size table_in_text, .-table_in_text\n"
        ".globl code_in_text\n.type code_in_text, @function\n"
        "code_in_text:\n .byte 0x48,0xc7,0xc0,0x27,0,0,0, 0x0f,0x05\n ret\n"
        ".size code_in_text, .-code_in_text\n");
extern const unsigned char table_in_text[];
long code_in_text(void);
int main(void) { return table_in_text[3] == 0x27 ? 0 : (int)code_in_text(); }
"""


@pytest.fixture(scope="module")
def binary(tmp_path_factory):
    gcc = shutil.which("gcc")
    if gcc is None:
        pytest.fail("gcc is needed to build the test binary (apt-get install gcc)")
    d = tmp_path_factory.mktemp("dataobj")
    (d / "t.c").write_text(SOURCE)
    subprocess.run([gcc, "-O1", "-o", str(d / "t"), str(d / "t.c")], check=True, capture_output=True)
    return str(d / "t")


def symbol(path: str, name: str) -> tuple[int, str]:
    out = subprocess.run(["readelf", "-sW", path], check=True, capture_output=True, text=True).stdout
    for line in out.splitlines():
        f = line.split()
        if len(f) >= 8 and f[7] == name:
            return int(f[1], 16), f[3]
    raise AssertionError(f"{name} not in {path}'s symbol table")


def test_the_binary_has_the_shape(binary):
    assert symbol(binary, "table_in_text")[1] == "OBJECT"
    assert symbol(binary, "code_in_text")[1] == "FUNC"


def test_bytes_inside_a_data_object_in_text_are_rejected(binary):
    from analyzer.run.pipeline import scan_file

    table = symbol(binary, "table_in_text")[0]
    code = symbol(binary, "code_in_text")[0]
    r = scan_file(binary)
    assert [s.address for s in r.sites] == [code + 7], "the @function copy is a site, the @object one is not"
    assert r.sites[0].number.values == [39]
    rej = {x.address: x for x in r.rejected}
    for off in (7, 9):  # the syscall and the int 0x80 inside the table
        assert table + off in rej
        assert "data object table_in_text" in rej[table + off].reason
