"""Kernels as users have them: /boot/vmlinuz (a compressed bzImage), a stripped vmlinux, kallsyms, `auto`.

Real images (benchmarks/fetch_vmlinuz.sh; CI exports them), each checked against what the kernel stage finds in
the matching -dbg vmlinux (benchmarks/fetch_kernel.sh) or in the kernel's own .tbl files:

    SYSSCAN_VMLINUZ_61          Debian 12 linux-image-6.1.0-*-cloud-amd64, LZ4 (legacy frame)  vs SYSSCAN_VMLINUX_61
    SYSSCAN_VMLINUZ_612         Debian 12 linux-image-6.12.*-cloud-amd64, zstd (no content size) vs SYSSCAN_VMLINUX_612
    SYSSCAN_VMLINUZ_61_GENERIC  Debian 12 linux-image-6.1.0-*-amd64, xz (BCJ x86)            vs SYSSCAN_TBL_61/TBL32_61

Synthetic images, for the compressors no distribution ships: the corpus's synthetic vmlinux compressed by each
compressor's own tool with the kernel build's flags (scripts/Makefile.lib), inside a minimal boot header; truncated
and corrupt payloads; decompression bombs.
"""
from __future__ import annotations

import json
import os
import shutil
import struct
import subprocess
import sys
from pathlib import Path

import pytest

from analyzer.errors import BadKernel
from analyzer.inputs import running_kernel
from analyzer.kernel import analyze_kernel, bzimage, kallsyms, load_kernel

ROOT = Path(__file__).resolve().parent.parent
SWITCH = ROOT / "corpus" / "kernel" / "bin" / "vmlinux-switch"
# (tool command reading stdin, as the kernel build runs it; Debian package)
COMPRESSORS = {
    "gzip": (["gzip", "-n", "-f", "-9", "-c"], "gzip"),
    "bzip2": (["bzip2", "-9", "-c"], "bzip2"),
    "lzma": (["lzma", "-9", "-c"], "xz-utils"),
    "xz": (["xz", "--check=crc32", "--x86", "--lzma2=dict=1MiB", "-c"], "xz-utils"),
    "lzo": (["lzop", "-9", "-c"], "lzop"),
    "lz4": (["lz4", "-l", "-9", "-c"], "lz4"),
    "zstd": (["zstd", "-22", "--ultra", "-c", "-q"], "zstd"),
}


def compress(fmt: str, data: bytes) -> bytes:
    cmd, pkg = COMPRESSORS[fmt]
    if shutil.which(cmd[0]) is None:
        pytest.skip(f"{cmd[0]} not installed (Debian package {pkg}; .ci/run installs it)")
    if fmt == "lzo":
        pytest.importorskip("lzo", reason="python-lzo not installed (pip install 'sysscan[lzo]'; .ci/run does)")
    return subprocess.run(cmd, input=data, capture_output=True, check=True).stdout


def make_bzimage(compressed: bytes, size: int, version: int = 0x020F, setup_sects: int = 2) -> bytes:
    """A boot sector + setup with the x86 boot protocol header, a stand-in for the decompressor, then the payload
    (compressed data + its uncompressed size, as the kernel's size_append writes it)."""
    setup = bytearray((setup_sects + 1) * 512)
    setup[0x1F1] = setup_sects
    setup[0x1FE:0x200] = b"\x55\xaa"
    setup[0x202:0x206] = b"HdrS"
    struct.pack_into("<H", setup, 0x206, version)
    stub = b"\x90" * 0x300
    payload = compressed + struct.pack("<I", size)
    if version >= 0x208:
        struct.pack_into("<II", setup, 0x248, len(stub), len(payload))
    return bytes(setup) + stub + payload + bytes(64)


def cli(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "analyzer.cli", *args], capture_output=True, text=True, cwd=ROOT,
                          env={**os.environ, **(env or {})}, timeout=600)


def same_analysis(a, b) -> list[str]:
    """What differs between two analyses of the same kernel, apart from the file's identity and the source lines
    (DWARF) a bzImage cannot have."""
    da, db = a.to_dict(), b.to_dict()
    out = []
    for key in sorted(set(da) | set(db)):
        if key in ("path", "sha256", "file_size", "timings", "cached", "symbols", "compression"):
            continue
        x, y = da.get(key), db.get(key)
        if key == "tables":
            x = {abi: [{k: v for k, v in h.items() if k != "source"} for h in rows] for abi, rows in x.items()}
            y = {abi: [{k: v for k, v in h.items() if k != "source"} for h in rows] for abi, rows in y.items()}
            for abi in sorted(set(x) | set(y)):
                rx, ry = x.get(abi, []), y.get(abi, [])
                bad = [r["nr"] for r, s in zip(rx, ry) if r != s]
                if bad or len(rx) != len(ry):
                    out.append(f"{abi}: {len(bad)} of {len(rx)} entries differ, e.g. {bad[:5]}; "
                               f"sizes {len(rx)}/{len(ry)}")
        elif x != y:
            out.append(f"{key}: {str(x)[:200]} | {str(y)[:200]}")
    return out


# ---- synthetic images: every compressor ---------------------------------------------------------------------------
@pytest.fixture(scope="module")
def switch_analysis():
    return analyze_kernel(str(SWITCH), use_cache=False)


@pytest.mark.parametrize("fmt", sorted(COMPRESSORS))
def test_each_compressor_gives_the_analysis_of_the_vmlinux_inside(tmp_path, fmt, switch_analysis):
    raw = SWITCH.read_bytes()
    img = tmp_path / f"vmlinuz-{fmt}"
    img.write_bytes(make_bzimage(compress(fmt, raw), len(raw)))
    a = analyze_kernel(str(img), use_cache=False)
    assert a.compression == fmt
    assert a.symbols == "symtab"  # this payload kept its symbol table
    assert same_analysis(switch_analysis, a) == []
    assert load_kernel(str(img)).memory.read(a.do_syscall_64, 16) == load_kernel(str(SWITCH)).memory.read(
        a.do_syscall_64, 16)


def test_an_old_header_without_payload_fields_is_searched_for_the_magic(tmp_path, switch_analysis):
    raw = SWITCH.read_bytes()
    img = tmp_path / "vmlinuz-2.06"
    img.write_bytes(make_bzimage(compress("gzip", raw), len(raw), version=0x0206))
    a = analyze_kernel(str(img), use_cache=False)
    assert a.compression == "gzip" and same_analysis(switch_analysis, a) == []


@pytest.mark.parametrize("fmt", sorted(COMPRESSORS))
def test_a_truncated_payload_is_one_line_exit_7(tmp_path, fmt):
    raw = SWITCH.read_bytes()
    packed = compress(fmt, raw)
    img = tmp_path / f"trunc-{fmt}"
    img.write_bytes(make_bzimage(packed[:len(packed) // 2], len(raw)))
    p = cli("kernel", str(img))
    assert p.returncode == 7, p.stderr
    assert p.stderr.count("\n") == 1 and "Traceback" not in p.stderr
    assert str(img) in p.stderr and fmt in p.stderr and "truncated or corrupt" in p.stderr, p.stderr


@pytest.mark.parametrize("fmt", sorted(COMPRESSORS))
def test_a_corrupt_payload_is_one_line_never_a_traceback(tmp_path, fmt):
    raw = SWITCH.read_bytes()
    packed = bytearray(compress(fmt, raw))
    for i in range(len(packed) // 3, len(packed) // 3 + 64):  # a run of bytes in the compressed stream
        packed[i] ^= 0xA5
    img = tmp_path / f"corrupt-{fmt}"
    img.write_bytes(make_bzimage(bytes(packed), len(raw)))
    p = cli("kernel", str(img))
    # a checksummed format refuses the stream; LZ4/LZO blocks without checksums may decode to a damaged ELF
    assert p.returncode in (0, 5, 7), p.stderr
    assert "Traceback" not in p.stderr
    if p.returncode:
        assert p.stderr.count("\n") == 1 and str(img) in p.stderr


def test_no_known_compressor_is_named(tmp_path):
    img = tmp_path / "vmlinuz-unknown"
    img.write_bytes(make_bzimage(b"\x42" * 4096, 4096))
    p = cli("kernel", str(img))
    assert p.returncode == 7 and "no compressed payload found" in p.stderr, p.stderr


@pytest.mark.parametrize("fmt", ["gzip", "bzip2", "xz", "zstd", "lz4"])
def test_a_bomb_stops_at_the_cap(fmt):
    zeros = bytes(8 << 20)
    packed = compress(fmt, zeros)
    data = make_bzimage(packed, 1 << 20)  # the trailer lies: it claims 1 MiB
    with pytest.raises(BadKernel, match="decompression bomb") as ei:
        bzimage.extract("bomb", data, cap=4 << 20)
    assert ei.value.exit_code == 7


def test_a_bomb_through_the_cli_is_refused_within_the_real_cap(tmp_path):
    """600 MiB of zeros in a 20 KB zstd frame (the trailer claims 1 MiB): refused at the 512 MiB cap."""
    zstandard = pytest.importorskip("zstandard")
    cobj = zstandard.ZstdCompressor(level=1, write_content_size=False).compressobj()
    chunk = bytes(1 << 20)
    packed = b"".join(cobj.compress(chunk) for _ in range(600)) + cobj.flush()
    img = tmp_path / "bomb"
    img.write_bytes(make_bzimage(packed, 1 << 20))
    p = cli("kernel", str(img))
    assert p.returncode == 7 and "decompression bomb" in p.stderr and "512 MiB" in p.stderr, p.stderr
    assert p.stderr.count("\n") == 1


def test_a_declared_size_over_the_cap_is_refused_before_decompressing():
    raw = SWITCH.read_bytes()
    data = make_bzimage(compress("gzip", raw), 3 << 30)
    with pytest.raises(BadKernel, match="declares 3072 MiB"):
        bzimage.extract("declared", data)


def test_lzo_without_python_lzo_names_the_extra(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "lzo", None)  # import lzo raises ImportError
    data = make_bzimage(b"\x89LZO\x00\r\n\x1a\n" + bytes(64), 4096)
    with pytest.raises(BadKernel, match=r"python-lzo \(pip install 'sysscan\[lzo\]'"):
        bzimage.extract("lzo", data)


# ---- --vmlinux auto ------------------------------------------------------------------------------------------------
def test_auto_prefers_the_dbg_vmlinux_then_the_vmlinuz(tmp_path):
    rel = "6.1.0-99-test-amd64"
    with pytest.raises(BadKernel) as ei:
        running_kernel(rel, str(tmp_path))
    msg = str(ei.value)
    assert f"linux-image-{rel}" in msg and f"/boot/vmlinuz-{rel}" in msg and "\n" not in msg
    (tmp_path / "boot").mkdir()
    z = tmp_path / "boot" / f"vmlinuz-{rel}"
    z.write_bytes(b"z")
    assert running_kernel(rel, str(tmp_path)) == str(z)
    d = tmp_path / "usr" / "lib" / "debug" / "boot"
    d.mkdir(parents=True)
    (d / f"vmlinux-{rel}").write_bytes(b"v")
    assert running_kernel(rel, str(tmp_path)) == str(d / f"vmlinux-{rel}")


def test_auto_on_this_machine_is_the_running_kernel_or_says_what_to_install():
    try:
        want = running_kernel()
    except BadKernel:
        want = None
    p = cli("kernel", "auto", "-f", "json")
    if want is None:
        assert p.returncode == 7 and "no image of the running kernel" in p.stderr and os.uname().release in p.stderr
        assert p.stderr.count("\n") == 1
    else:
        assert p.returncode == 0, p.stderr


# ---- real Debian images --------------------------------------------------------------------------------------------
def _env(var: str) -> str:
    p = os.environ.get(var)
    if not p:
        pytest.skip(f"{var} not set (benchmarks/fetch_vmlinuz.sh / fetch_kernel.sh; .ci/run sets it)")
    if not os.path.isfile(p):
        pytest.fail(f"{var}={p} is set but the file does not exist")
    return p


REAL = {"61": "lz4", "612": "zstd"}


_ANALYSES: dict = {}


def _real(tag: str):
    """(tag, vmlinuz, vmlinux, analysis of the vmlinuz, analysis of the vmlinux), once per module."""
    z, vm = _env(f"SYSSCAN_VMLINUZ_{tag}"), _env(f"SYSSCAN_VMLINUX_{tag}")
    if tag not in _ANALYSES:
        _ANALYSES[tag] = (tag, z, vm, analyze_kernel(z, use_cache=False), analyze_kernel(vm, use_cache=False))
    return _ANALYSES[tag]


@pytest.fixture(scope="module", params=sorted(REAL))
def real(request):
    return _real(request.param)


@pytest.mark.kernel
def test_the_vmlinuz_gives_what_the_dbg_vmlinux_gives(real):
    """Entry by entry for every ABI, and the entries, dispatchers, ni stubs, vDSO images and warnings."""
    tag, _z, _vm, az, av = real
    assert az.compression == REAL[tag] and az.symbols == "kallsyms" and av.symbols == "symtab"
    assert az.build_id == av.build_id and az.version == av.version
    assert set(az.tables) == set(av.tables) and {"x86_64", "i386"} <= set(az.tables)
    assert same_analysis(av, az) == []
    assert sum(1 for h in az.tables["x86_64"].values() if not h.enosys) > 300
    assert any(h.signature for h in az.tables["x86_64"].values())  # from the ftrace metadata, no DWARF


@pytest.mark.kernel
def test_kallsyms_names_and_addresses_are_the_symbol_tables(real):
    """Every recovered kernel-space symbol is in the -dbg vmlinux's ELF symbol table at the same address; the
    layout is the one of the kernel's version (6.4 moved the addresses after the token index)."""
    tag, z, vm, _az, _av = real
    payload = bzimage.extract(z, Path(z).read_bytes())
    image = load_kernel(z)
    syms = kallsyms.recover([(r.start, r.data) for r in image.memory.regions], image.address_of("_text"))
    assert syms.layout == ("offsets-first" if tag == "61" else "offsets-last")
    assert syms.encoding == "absolute-percpu"
    assert len(syms) > 80_000
    dbg = load_kernel(vm)
    wrong = [(n, hex(a)) for n, a, t in zip(syms.names, syms.addresses, syms.types)
             if a >= 0xFFFF800000000000 and n.decode("latin-1") not in dbg.names_at(a)]
    assert wrong == [], f"{len(wrong)} recovered symbols not in the symbol table: {wrong[:10]}"
    assert payload.compression == REAL[tag]


@pytest.mark.kernel
def test_a_stripped_vmlinux_gives_the_same(tmp_path):
    _tag, z, _vm, _az, av = _real("61")
    elf = tmp_path / "vmlinux.stripped"
    elf.write_bytes(bzimage.extract(z, Path(z).read_bytes()).elf)  # what extract-vmlinux writes
    a = analyze_kernel(str(elf), use_cache=False)
    assert a.symbols == "kallsyms" and a.compression is None
    assert same_analysis(av, a) == []


@pytest.mark.kernel
def test_the_cache_serves_a_vmlinuz_by_its_hash(tmp_path, monkeypatch):
    _tag, z, _vm, az, _av = _real("612")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    cold = analyze_kernel(z, use_cache=True)
    warm = analyze_kernel(z, use_cache=True)
    assert not cold.cached and warm.cached
    assert warm.compression == "zstd" and warm.symbols == "kallsyms"
    assert same_analysis(cold, warm) == [] and same_analysis(az, warm) == []


@pytest.mark.kernel
def test_a_scan_with_the_vmlinuz_links_like_the_dbg_vmlinux():
    _tag, z, vm, _az, _av = _real("61")
    prog = str(ROOT / "corpus" / "bin" / "idioms_nopie")
    out = {}
    for name, k in (("z", z), ("vm", vm)):
        p = cli(prog, "--vmlinux", k, "-f", "json", "--no-cache")
        assert p.returncode == 0, p.stderr
        out[name] = json.loads(p.stdout)
    assert out["z"]["sites"] == out["vm"]["sites"]
    assert out["z"]["surface"] == out["vm"]["surface"]
    assert out["z"]["kernel"]["symbols"] == "kallsyms" and out["z"]["kernel"]["compression"] == "lz4"
    assert out["vm"]["kernel"]["symbols"] == "symtab"
    p = cli("kernel", z, "--sources")
    assert p.returncode == 0 and "no DWARF" in p.stdout


@pytest.mark.kernel
def test_the_generic_xz_image_is_exact_against_the_tbl_files():
    z = _env("SYSSCAN_VMLINUZ_61_GENERIC")
    tbl, tbl32 = _env("SYSSCAN_TBL_61"), _env("SYSSCAN_TBL32_61")
    sys.path.insert(0, str(Path(__file__).parent))
    from test_kernel_real import _check, parse_tbl

    a = analyze_kernel(z, use_cache=False)
    image = load_kernel(z)
    assert a.compression == "xz" and a.symbols == "kallsyms"
    for abi, path, cols, prefix, compat in (("x86_64", tbl, ("common", "64"), "__x64_", False),
                                            ("i386", tbl32, ("i386",), "__ia32_", True)):
        rows = parse_tbl(path, cols)
        assert a.dispatchers[abi].nr_syscalls == max(rows) + 1
        n, wrong = _check(a, image, abi, rows, prefix, compat)
        assert wrong == [], f"{abi}: {len(wrong)}/{n} wrong: {wrong[:10]}"


@pytest.mark.kernel
def test_without_data_symbols_what_is_needed_comes_from_the_code(monkeypatch):
    """CONFIG_KALLSYMS_ALL off (kallsyms has only text symbols): simulated on the 6.12 image by dropping every data
    symbol. The tables come from the dispatcher's code as before; the signatures from the ftrace metadata found by
    its shape, the vDSO images by their ELF headers, the stored table by its content (and it still agrees)."""
    _tag, z, _vm, az, _av = _real("612")
    real_recover = kallsyms.recover

    def text_only(segments, text):
        k = real_recover(segments, text)
        keep = [i for i, t in enumerate(k.types) if chr(t) in "TtWwAa"]
        return kallsyms.Kallsyms([k.names[i] for i in keep], bytes(k.types[i] for i in keep),
                                 [k.addresses[i] for i in keep], k.layout, k.encoding, k.table_address)

    monkeypatch.setattr(kallsyms, "recover", text_only)
    a = analyze_kernel(z, use_cache=False)
    assert load_kernel(z).address_of("sys_call_table") is None  # the simulation holds
    for abi, table in az.tables.items():
        for nr, h in table.items():
            g = a.tables[abi][nr]
            assert (g.symbol, g.address, g.enosys, g.implementation, g.signature) == \
                   (h.symbol, h.address, h.enosys, h.implementation, h.signature), (abi, nr)
    assert sum(1 for h in a.tables["x86_64"].values() if h.signature) > 300
    assert [(e.instruction, e.symbol, e.address, e.dispatcher) for e in a.entries] == \
           [(e.instruction, e.symbol, e.address, e.dispatcher) for e in az.entries]
    assert a.table_reads["x86_64"].startswith("sys_call_table (found by its content")
    assert a.disagreements == [] and a.version == az.version
    strip = [{k: v for k, v in x.to_dict().items() if k != "notes"} for x in az.vdso]
    assert [{k: v for k, v in x.to_dict().items() if k != "notes"} for x in a.vdso] == strip
    assert all(any("ELF header" in n for n in x.notes) for x in a.vdso) and len(a.vdso) == 2


def _nm_type(s) -> str:
    t = "T" if s.kind in ("func", "notype") and s.code else "D" if s.kind == "object" else "R"
    return t.lower() if s.local else t


def _with_kallsyms_only(src: Path, layout: str, encoding: str) -> bytes:
    """The ELF at `src` without its section headers (so without .symtab), and with its symbols as kallsyms tables in
    a new read-only segment, written as scripts/kallsyms.c writes them (tests/test_kallsyms_layouts.py)."""
    sys.path.insert(0, str(Path(__file__).parent))
    from test_kallsyms_layouts import SEGMENT, tables

    image = load_kernel(str(src))
    text = min(r.start for r in image.memory.regions if r.executable)
    syms = {(s.name.encode(), _nm_type(s), s.address) for s in image.symbols}
    # a real kernel's names use every digit (the token table is found by "0".."9"); this small one gets one that
    # does, and the _text a real kallsyms always has
    syms |= {(b"_text", "T", text), (b"digits_0123456789", "r", text + 0x1000)}
    blob = tables(sorted(syms, key=lambda s: (s[2], s[0])), layout, encoding)
    raw = bytearray(src.read_bytes())
    e_phoff, = struct.unpack_from("<Q", raw, 0x20)
    e_phnum, = struct.unpack_from("<H", raw, 0x38)
    phdrs = bytes(raw[e_phoff:e_phoff + 56 * e_phnum])
    raw += bytes(-len(raw) % 0x1000)
    blob_off = len(raw)
    raw += blob
    raw += bytes(-len(raw) % 8)
    ph_off = len(raw)
    raw += phdrs + struct.pack("<IIQQQQQQ", 1, 4, blob_off, SEGMENT, SEGMENT, len(blob), len(blob), 0x1000)
    struct.pack_into("<Q", raw, 0x20, ph_off)
    struct.pack_into("<Q", raw, 0x28, 0)  # e_shoff: no section headers
    struct.pack_into("<HHHH", raw, 0x38, e_phnum + 1, 64, 0, 0)  # e_phnum, e_shentsize, e_shnum, e_shstrndx
    return bytes(raw)


@pytest.mark.parametrize("name", ["vmlinux-table", "vmlinux-switch", "vmlinux-jumptable"])
def test_both_dispatcher_forms_through_kallsyms(tmp_path, name):
    """Debian's kernels all dispatch through the x64_sys_call switch; the table form (and a jump table) through
    kallsyms is checked on the corpus's synthetic kernels, their symbol tables replaced by kallsyms tables."""
    src = ROOT / "corpus" / "kernel" / "bin" / name
    want = analyze_kernel(str(src), use_cache=False)
    img = tmp_path / f"{name}.kallsyms"
    img.write_bytes(_with_kallsyms_only(src, "offsets-last", "relative"))
    got = analyze_kernel(str(img), use_cache=False)
    assert got.symbols == "kallsyms" and load_kernel(str(img)).sections == []
    assert {abi: d.kind for abi, d in got.dispatchers.items()} == {abi: d.kind for abi, d in want.dispatchers.items()}
    for abi, table in want.tables.items():
        for nr, h in table.items():
            g = got.tables[abi][nr]
            assert (g.symbol, g.address, g.enosys, g.implementation, g.signature) == \
                   (h.symbol, h.address, h.enosys, h.implementation, h.signature), (abi, nr)
    assert [(e.instruction, e.symbol, e.address, e.dispatcher) for e in got.entries] == \
           [(e.instruction, e.symbol, e.address, e.dispatcher) for e in want.entries]
    assert got.disagreements == want.disagreements
