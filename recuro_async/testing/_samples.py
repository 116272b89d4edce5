"""Sample media for the Recuro emulator, made from scratch for tests and demos (no fixture files).

Each file starts with the magic bytes the emulator sniffs for its container; the rest is seeded noise, so a
seed gives the same files every time.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Final

__all__ = ["make_samples"]

# the first bytes of each supported container, as the emulator sniffs them
_MAGIC: Final = {
    ".mkv": bytes.fromhex("1A45DFA3") + b"\x93\x42\x82\x88matroska",
    ".mp4": b"\x00\x00\x00\x18ftypisom\x00\x00\x02\x00isomiso2",
    ".mov": b"\x00\x00\x00\x14ftypqt  \x00\x00\x02\x00qt  ",
    ".wav": b"RIFF\x24\x00\x10\x00WAVEfmt ",
    ".mp3": b"ID3\x04\x00\x00\x00\x00\x00\x00",
    ".mpg": bytes.fromhex("000001BA") + b"\x44\x00\x04\x00\x04\x01",
    ".mxf": bytes.fromhex("060E2B34020501010D01020101020400"),
}


def make_samples(directory: Path, count: int, seed: int = 7) -> list[Path]:
    """Write `count` sample media files of varied sizes (4 KiB to ~3 MiB) and containers (blocking)."""
    rng = random.Random(seed)
    directory.mkdir(parents=True, exist_ok=True)
    extensions = list(_MAGIC)
    paths = []
    for n in range(count):
        ext = extensions[n % len(extensions)]
        size = int(4096 * 2 ** rng.uniform(0, 9.6))  # log-uniform: many small, a few large
        magic = _MAGIC[ext]
        path = directory / f"reel-{n + 1:03d}{ext}"
        path.write_bytes(magic + rng.randbytes(max(size - len(magic), 0)))
        paths.append(path)
    return paths
