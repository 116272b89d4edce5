"""Small sample media made from scratch, for tests and demos (no fixture files needed).

The bytes have the headers that type sniffing and metadata reading look at (and valid chunk
structure for PNG, GIF and JPEG segments); the payload is seeded noise, so each `seed` gives
different bytes and so a different file id.
"""

from __future__ import annotations

import random
import struct
import zlib
from pathlib import Path
from typing import Final

SAMPLE_KINDS = ("gif", "png", "jpeg", "mp4", "webm", "ogg", "mp3", "wav", "svg", "bmp", "text")


def _noise(rng: random.Random, n: int) -> bytes:
    return rng.randbytes(max(n, 0))


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def _box(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", 8 + len(payload)) + kind + payload


def _gif(rng: random.Random, size: int) -> bytes:
    head = b"GIF89a" + struct.pack("<HHBBB", 48, 32, 0x80, 0, 0) + bytes([0, 0, 0, 255, 255, 255])
    body = b"\x21\xff\x0bNETSCAPE2.0\x03\x01\x00\x00\x00"  # loop forever
    image = b"\x2c" + struct.pack("<HHHHB", 0, 0, 48, 32, 0) + b"\x02\x02\x44\x01\x00"
    comment = b""
    left = size - len(head) - len(body) - len(image) - 1
    while left > 4:
        block = _noise(rng, min(255, left - 3))
        comment += bytes([len(block)]) + block
        left -= len(block) + 1
    if comment:
        comment = b"\x21\xfe" + comment + b"\x00"
    return head + body + comment + image + b"\x3b"


def _png(rng: random.Random, size: int) -> bytes:
    ihdr = _png_chunk(b"IHDR", struct.pack(">IIBBBBB", 64, 40, 8, 2, 0, 0, 0))
    text = _png_chunk(b"tEXt", b"Comment\x00made by the MediaCrush emulator")
    filler = _noise(rng, max(size - 100, 16))
    idat = _png_chunk(b"IDAT", zlib.compress(filler, 0))
    return b"\x89PNG\r\n\x1a\n" + ihdr + text + idat + _png_chunk(b"IEND", b"")


def _jpeg(rng: random.Random, size: int) -> bytes:
    def seg(marker: int, payload: bytes) -> bytes:
        return bytes([0xFF, marker]) + struct.pack(">H", len(payload) + 2) + payload

    app0 = seg(0xE0, b"JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00")
    exif = seg(0xE1, b"Exif\x00\x00" + b"MM\x00*" + _noise(rng, 64))
    com = seg(0xFE, b"shot with the MediaCrush emulator")
    dqt = seg(0xDB, b"\x00" + bytes(range(1, 65)))
    sof = seg(0xC0, struct.pack(">BHHB", 8, 30, 50, 1) + b"\x01\x11\x00")
    sos = seg(0xDA, b"\x01\x01\x00\x00\x3f\x00")
    scan = _noise(rng, max(size - 200, 32)).replace(b"\xff", b"\xfe")
    return b"\xff\xd8" + app0 + exif + com + dqt + sof + sos + scan + b"\xff\xd9"


def _mp4(rng: random.Random, size: int) -> bytes:
    ftyp = _box(b"ftyp", b"isom\x00\x00\x02\x00isomiso2avc1mp41")
    mvhd = _box(b"mvhd", b"\x00\x00\x00\x00" + struct.pack(">IIII", 0, 0, 1000, 2500) + bytes(80))
    tkhd_payload = (
        b"\x00\x00\x00\x03"
        + struct.pack(">IIIII", 0, 0, 1, 0, 2500)
        + bytes(8)
        + struct.pack(">HHHH", 0, 0, 0, 0)
        + bytes(36)
        + struct.pack(">II", 320 << 16, 240 << 16)
    )
    vtrak = _box(
        b"trak",
        _box(b"tkhd", tkhd_payload) + _box(b"mdia", _box(b"hdlr", bytes(8) + b"vide" + bytes(13))),
    )
    atrak = _box(b"trak", _box(b"mdia", _box(b"hdlr", bytes(8) + b"soun" + bytes(13))))
    moov = _box(b"moov", mvhd + vtrak + atrak)
    mdat = _box(b"mdat", _noise(rng, size - len(ftyp) - len(moov) - 8))
    return ftyp + moov + mdat


def _webm(rng: random.Random, size: int) -> bytes:
    ebml = b"\x1a\x45\xdf\xa3\x9f\x42\x86\x81\x01\x42\xf7\x81\x01\x42\x82\x84webm"
    tracks = b"\x16\x54\xae\x6b" + b"\x86V_VP8" + b"\xe0\x88\xb0\x82\x01\x40\xba\x82\x00\xb4"
    return ebml + tracks + _noise(rng, size - len(ebml) - len(tracks))


def _ogg(rng: random.Random, size: int) -> bytes:
    page = b"OggS\x00\x02" + bytes(20) + b"\x1e\x01vorbis" + bytes(23)
    return page + _noise(rng, size - len(page))


def _mp3(rng: random.Random, size: int) -> bytes:
    tag = b"ID3\x03\x00\x00\x00\x00\x00\x0a" + b"TIT2\x00\x00\x00\x00\x00\x00"
    frames = b""
    while len(tag) + len(frames) < size:
        frames += b"\xff\xfb\x90\x64" + _noise(rng, 413)
    return tag + frames[: max(size - len(tag), 4)]


def _wav(rng: random.Random, size: int) -> bytes:
    data = _noise(rng, max(size - 44, 4))
    fmt = struct.pack("<HHIIHH", 1, 1, 8000, 16000, 2, 16)
    riff = (
        b"WAVEfmt "
        + struct.pack("<I", len(fmt))
        + fmt
        + b"data"
        + struct.pack("<I", len(data))
        + data
    )
    return b"RIFF" + struct.pack("<I", len(riff)) + riff


def _svg(rng: random.Random, size: int) -> bytes:
    head = (
        b'<?xml version="1.0"?>\n<svg xmlns="http://www.w3.org/2000/svg" width="40" height="30">\n'
    )
    note = (
        b"<!-- "
        + _noise(rng, max(size - len(head) - 20, 8)).hex().encode()[: max(size - 40, 8)]
        + b" -->\n"
    )
    return head + note + b"</svg>\n"


def _bmp(rng: random.Random, size: int) -> bytes:
    pixels = _noise(rng, max(size - 54, 4))
    info = struct.pack("<IiiHHIIiiII", 40, 16, 8, 1, 24, 0, len(pixels), 2835, 2835, 0, 0)
    return b"BM" + struct.pack("<IHHI", 54 + len(pixels), 0, 0, 54) + info + pixels


def _text(rng: random.Random, size: int) -> bytes:
    line = f"# Not media (seed {rng.randrange(1 << 30)})\nJust some Markdown text.\n".encode()
    return (line * (size // len(line) + 1))[:size]


_MAKERS = {
    "gif": _gif,
    "png": _png,
    "jpeg": _jpeg,
    "mp4": _mp4,
    "webm": _webm,
    "ogg": _ogg,
    "mp3": _mp3,
    "wav": _wav,
    "svg": _svg,
    "bmp": _bmp,
    "text": _text,
}


def sample_media(kind: str, *, size: int = 4096, seed: int = 0) -> bytes:
    """Return about `size` bytes of sample media of `kind` (one of `SAMPLE_KINDS`), varied by `seed`.

    `text` is deliberately not media (its processing fails as `unrecognised`).
    """
    maker = _MAKERS.get(kind)
    if maker is None:
        raise ValueError(f"kind must be one of {', '.join(SAMPLE_KINDS)}; got {kind!r}")
    if size < 64:
        raise ValueError(f"size must be at least 64 bytes, got {size!r}")
    return maker(random.Random(f"{kind}/{seed}"), size)


# the demo's set, (file name, kind, size in bytes): each media kind twice, then a text file that fails
DEMO_SAMPLES: Final = (
    ("cat.gif", "gif", 48_000),
    ("loop.gif", "gif", 160_000),
    ("photo.png", "png", 64_000),
    ("diagram.png", "png", 12_000),
    ("song.mp3", "mp3", 420_000),
    ("jingle.mp3", "mp3", 60_000),
    ("clip.mp4", "mp4", 1_500_000),
    ("teaser.mp4", "mp4", 240_000),
    ("notes.txt", "text", 3_000),
)


def make_samples(directory: Path, *, seed: int = 7) -> list[Path]:
    """Write the demo's samples (`DEMO_SAMPLES`, varied by `seed`) into `directory` (blocking)."""
    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    for n, (name, kind, size) in enumerate(DEMO_SAMPLES):
        path = directory / name
        path.write_bytes(sample_media(kind, size=size, seed=seed + n))
        paths.append(path)
    return paths
