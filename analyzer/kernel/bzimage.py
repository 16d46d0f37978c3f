"""The vmlinux inside a bzImage (/boot/vmlinuz-*): the x86 boot header, then the compressed payload, decompressed
with the library for its format, under a size cap.

The boot protocol (Documentation/arch/x86/boot.rst) puts `setup_sects` at 0x1f1, "HdrS" at 0x202, the protocol
version at 0x206 and, from 2.08 on, `payload_offset`/`payload_length` at 0x248, relative to the protected-mode
code that starts after the (setup_sects + 1) real-mode sectors. The payload is the kernel's vmlinux.bin (an ELF
stripped of symbols, section headers kept) followed by its relocations, compressed, then the uncompressed size
as 4 bytes (the kernel's `size_append`). Older or damaged headers: the first known compressor magic is used.

Formats, each by its magic: gzip, bzip2, lzma (alone), xz (with the x86 BCJ filter: the xz container names it),
LZO (lzop), LZ4 in the legacy frame the kernel uses (`lz4 -l`: Debian's 6.1 images) and zstd without a content
size (Debian's 6.12 images). The Python standard library covers gzip/bzip2/lzma/xz; `lz4` and `zstandard` come
from PyPI; LZO needs the optional `python-lzo` (`pip install sysscan[lzo]`): no distribution kernel uses it.
"""
from __future__ import annotations

import struct
from dataclasses import dataclass

from ..errors import BadKernel

MAX_OUTPUT = 512 << 20
"""Cap on the decompressed kernel: real ones are 30-80 MB (a debug/KASAN build a few times that). Beyond, the
payload is refused as a decompression bomb, without ever holding more than the cap."""
CHUNK = 1 << 20
BOOT_MAGIC_OFFSET = 0x202
MAGICS = (  # (format, magic); xz before lzma: both are LZMA, but the lzma "alone" magic is a weak one
    ("zstd", b"\x28\xb5\x2f\xfd"),
    ("lz4", b"\x02\x21\x4c\x18"),
    ("xz", b"\xfd7zXZ\x00"),
    ("gzip", b"\x1f\x8b\x08"),
    ("bzip2", b"BZh"),
    ("lzo", b"\x89LZO\x00\r\n\x1a\n"),
    ("lzma", b"\x5d\x00\x00"),
)
LZ4_LEGACY_BLOCK = 8 << 20  # the legacy frame's fixed block size (uncompressed)


@dataclass
class Payload:
    """The decompressed kernel ELF and where it came from."""
    elf: bytes
    compression: str
    payload_offset: int
    payload_length: int
    protocol: str  # boot protocol version, "2.15"


def is_bzimage(head: bytes) -> bool:
    return len(head) >= 0x206 and head[BOOT_MAGIC_OFFSET:BOOT_MAGIC_OFFSET + 4] == b"HdrS"


def extract(path: str, data: bytes, cap: int = MAX_OUTPUT) -> Payload:
    """The ELF inside the bzImage `data`. Raises BadKernel (exit 7) with one line: not a bzImage, an unknown or
    unavailable compressor, a truncated or corrupt payload, an output over `cap`, a payload that is not an ELF."""
    if not is_bzimage(data):
        raise BadKernel(path, "not a bzImage (no 'HdrS' boot header at 0x202)")
    version = struct.unpack_from("<H", data, 0x206)[0]
    protocol = f"{version >> 8}.{version & 0xFF:02d}"
    setup_sects = data[0x1F1] or 4
    start = (setup_sects + 1) * 512
    fmt = None
    off = length = 0
    if version >= 0x208 and len(data) >= 0x250:
        off, length = struct.unpack_from("<II", data, 0x248)
        pos = start + off
        if length and pos + length <= len(data):
            fmt = _format(data, pos)
            off = pos
    if fmt is None:  # no usable payload fields: the first compressor magic after the setup code
        found = [(i, f) for f, magic in MAGICS if (i := data.find(magic, start)) >= 0]
        if not found:
            raise BadKernel(path, "bzImage: no compressed payload found (unknown compressor)")
        off, fmt = min(found)
        length = len(data) - off
    blob = memoryview(data)[off:off + length]
    declared = int.from_bytes(blob[-4:], "little") if length >= 8 else None  # size_append
    if declared is not None and declared > cap:
        raise BadKernel(path, f"bzImage: the {fmt} payload declares {declared >> 20} MiB decompressed, over the "
                              f"{cap >> 20} MiB cap (a decompression bomb?)")
    try:
        out = _DECODERS[fmt](path, blob, cap)
    except BadKernel:
        raise
    except (EOFError, OSError, ValueError, RuntimeError, MemoryError) as e:  # each library's "corrupt input"
        raise BadKernel(path, f"bzImage: the {fmt} payload is truncated or corrupt ({_short(e)})") from None
    except Exception as e:  # noqa: BLE001 - lz4/zstandard raise their own error types (LZ4BlockError, ZstdError)
        raise BadKernel(path, f"bzImage: the {fmt} payload is truncated or corrupt ({_short(e)})") from None
    if out[:4] != b"\x7fELF":
        raise BadKernel(path, f"bzImage: the decompressed {fmt} payload is not an ELF vmlinux")
    return Payload(elf=out, compression=fmt, payload_offset=off, payload_length=length, protocol=protocol)


def _short(e: Exception) -> str:
    text = str(e).strip().splitlines()
    return (text[0] if text else type(e).__name__)[:160]


def _format(data: bytes, pos: int) -> str | None:
    for fmt, magic in MAGICS:
        if data.startswith(magic, pos):
            return fmt
    return None


def _too_big(path: str, fmt: str, cap: int) -> BadKernel:
    return BadKernel(path, f"bzImage: the {fmt} payload decompresses to more than {cap >> 20} MiB "
                           "(a decompression bomb?)")


def _gather(path: str, fmt: str, cap: int, chunks) -> bytes:
    """The decompressed pieces joined, refused as soon as they pass the cap; no piece at all is a stream without
    any frame or block."""
    parts: list[bytes] = []
    total = 0
    for chunk in chunks:
        parts.append(chunk)
        total += len(chunk)
        if total > cap:
            raise _too_big(path, fmt, cap)
    if not parts:
        raise EOFError(f"no {fmt} data")
    return b"".join(parts)


def _stream(path: str, fmt: str, dec, blob: memoryview, cap: int) -> bytes:
    """Drive a zlib-, bz2- or lzma-style decompressor (decompress(data, max_length), eof) to the end of its
    stream, never producing more than cap + 1 bytes. zlib hands back unused input (unconsumed_tail); bz2 and lzma
    keep it and say needs_input when they have used it all."""
    parts: list[bytes] = []
    total = 0
    data = bytes(blob)
    zlib_style = hasattr(dec, "unconsumed_tail")
    while not dec.eof:
        chunk = dec.decompress(data, min(CHUNK, cap + 1 - total))
        parts.append(chunk)
        total += len(chunk)
        if total > cap:
            raise _too_big(path, fmt, cap)
        if zlib_style:
            data = dec.unconsumed_tail
            if not chunk and not data and not dec.eof:
                raise EOFError("the compressed stream ends before its end marker")
        else:
            data = b""
            if dec.needs_input and not dec.eof:
                raise EOFError("the compressed stream ends before its end marker")
    return b"".join(parts)


def _gzip(path: str, blob: memoryview, cap: int) -> bytes:
    import zlib

    return _stream(path, "gzip", zlib.decompressobj(wbits=31), blob, cap)


def _bzip2(path: str, blob: memoryview, cap: int) -> bytes:
    import bz2

    return _stream(path, "bzip2", bz2.BZ2Decompressor(), blob, cap)


def _xz(path: str, blob: memoryview, cap: int) -> bytes:
    import lzma

    return _stream(path, "xz", lzma.LZMADecompressor(format=lzma.FORMAT_XZ), blob, cap)


def _lzma(path: str, blob: memoryview, cap: int) -> bytes:
    import lzma

    return _stream(path, "lzma", lzma.LZMADecompressor(format=lzma.FORMAT_ALONE), blob, cap)


def _zstd(path: str, blob: memoryview, cap: int) -> bytes:
    """The kernel's zstd frame has no content size: read the stream, cap + 1 bytes at most. The window may be as
    large as the kernel's own decompressor allows (2^27 at -22 --ultra). The reader takes the 4-byte size trailer
    for the start of another frame and fails on it, so the frame is read without it first."""
    import zstandard

    try:
        return _zstd_frame(path, blob[:-4] if len(blob) > 8 else blob, cap)
    except zstandard.ZstdError:
        return _zstd_frame(path, blob, cap)


def _zstd_frame(path: str, blob: memoryview, cap: int) -> bytes:
    import zstandard

    reader = zstandard.ZstdDecompressor(max_window_size=1 << 28).stream_reader(bytes(blob))
    return _gather(path, "zstd", cap, iter(lambda: reader.read(CHUNK), b""))


def _lz4(path: str, blob: memoryview, cap: int) -> bytes:
    """LZ4's legacy frame: the magic, then blocks of (u32 compressed size, data), each at most 8 MiB decompressed,
    up to the size_append trailer. lz4.frame does not read this frame; lz4.block decodes each block."""
    return _gather(path, "lz4", cap, _lz4_blocks(blob))


def _lz4_blocks(blob: memoryview):
    import lz4.block

    end = len(blob) - 4  # the trailer: the uncompressed size
    pos = 4
    while pos + 4 <= end:
        n = int.from_bytes(blob[pos:pos + 4], "little")
        pos += 4
        if n == 0x184C2102:  # a concatenated legacy stream starts again
            continue
        if n == 0 or pos + n > end + 4:
            raise EOFError(f"an LZ4 block of {n} bytes runs past the payload")
        yield lz4.block.decompress(bytes(blob[pos:pos + n]), uncompressed_size=LZ4_LEGACY_BLOCK)
        pos += n


def _lzo(path: str, blob: memoryview, cap: int) -> bytes:
    """lzop's container (what the kernel's `lzop -9` writes), read as the kernel's unlzo.c does: the header
    (version, flags, mode, mtime, name, checksum), then blocks of (u32 BE uncompressed size, u32 BE compressed
    size, optional checksums, LZO1X data; stored raw when the sizes are equal), a zero size ending the stream."""
    try:
        import lzo  # type: ignore[import-not-found]
    except ImportError:
        raise BadKernel(path, "bzImage: an LZO-compressed kernel needs python-lzo (pip install 'sysscan[lzo]'; "
                              "it builds against Debian's liblzo2-dev)") from None
    b = bytes(blob)
    pos = 9
    version, = struct.unpack_from(">H", b, pos)
    pos += 2 + 2  # version, library version
    if version >= 0x0940:
        pos += 2  # version needed to extract
    pos += 1  # method
    if version >= 0x0940:
        pos += 1  # level
    flags, = struct.unpack_from(">I", b, pos)
    pos += 4
    if flags & 0x800:  # F_H_FILTER
        pos += 4
    pos += 4 + 4  # mode, mtime low
    if version >= 0x0940:
        pos += 4  # mtime high
    pos += 1 + b[pos] + 4  # name, header checksum
    return _gather(path, "lzo", cap, _lzo_blocks(lzo, b, pos, flags))


def _lzo_blocks(lzo, b: bytes, pos: int, flags: int):
    while True:
        dst, = struct.unpack_from(">I", b, pos)
        pos += 4
        if dst == 0:
            return
        if dst > 64 << 20:
            raise ValueError(f"an LZO block claims {dst} bytes")
        src, = struct.unpack_from(">I", b, pos)
        pos += 4
        pos += 4 if flags & 0x1 else 0  # F_ADLER32_D
        pos += 4 if flags & 0x100 else 0  # F_CRC32_D
        if src < dst:
            pos += 4 if flags & 0x2 else 0  # F_ADLER32_C
            pos += 4 if flags & 0x200 else 0  # F_CRC32_C
        data = b[pos:pos + src]
        if len(data) != src:
            raise EOFError("an LZO block runs past the payload")
        pos += src
        yield data if src == dst else lzo.decompress(data, False, dst)


_DECODERS = {"gzip": _gzip, "bzip2": _bzip2, "xz": _xz, "lzma": _lzma, "zstd": _zstd, "lz4": _lz4, "lzo": _lzo}
