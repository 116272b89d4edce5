"""Derived files of an upload: which the server lists (`plan_outputs`) and their exact bytes.

No real transcoding happens: each derived file is a deterministic transform of the original, so a
test can compute the exact bytes it will download (`expected_derived_bytes`). A JPEG original loses
its metadata segments and a PNG its text chunks, as `jhead` and `optipng` did on the server.
"""

from __future__ import annotations

import io
from typing import BinaryIO, Protocol

import attrs

from ._blobs import CHUNK
from ._media import ENTRY_TYPES, MediaKind, content_hash_of, sniff


class Writable(Protocol):
    """Where derived bytes go (a binary file, a `BytesIO` or a `SpoolWriter`)."""

    def write(self, data: bytes, /) -> object:
        """Append bytes."""


#: Leading bytes of each generated format, so a derived file sniffs as what its name says.
_MAGIC: dict[str, bytes] = {
    "mp4": b"\x00\x00\x00\x18ftypmp42\x00\x00\x00\x00mp42isom",
    "webm": b"\x1a\x45\xdf\xa3\x9f\x42\x86\x81\x01\x42\x82\x84webm",
    "ogv": b"OggS\x00\x02" + bytes(20) + b"\x2a\x80theora",
    "ogg": b"OggS\x00\x02" + bytes(20) + b"\x1e\x01vorbis",
    "mp3": b"ID3\x03\x00\x00\x00\x00\x00\x00",
    "jpg": b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00",
    "png": b"\x89PNG\r\n\x1a\n",
}

#: (keep every n-th byte, multiplier, offset) of the byte map applied per output extension.
_SAMPLING: dict[str, tuple[int, int, int]] = {
    "mp4": (8, 5, 17),
    "webm": (10, 7, 29),
    "ogv": (9, 11, 3),
    "mp3": (4, 13, 101),
    "ogg": (5, 3, 71),
    "png": (1, 9, 45),
    "jpg": (2, 15, 7),
}

#: Thumbnails take this many leading bytes of the original.
THUMBNAIL_SOURCE_BYTES = 4096

_JPEG_DROPPED = frozenset(range(0xE1, 0xF0)) | {0xFE}
_PNG_DROPPED = frozenset({b"tEXt", b"zTXt", b"iTXt", b"tIME"})


def _table(mult: int, offset: int) -> bytes:
    return bytes(((i * mult) + offset) & 0xFF for i in range(256))


_TABLES = {ext: _table(m, o) for ext, (_, m, o) in _SAMPLING.items()}


def _header(ext: str, role: str, file_hash: str) -> bytes:
    return _MAGIC[ext] + f"\n[mediacrush-emulator {role} of {file_hash}]\n".encode("ascii")


def _write_sampled(src: BinaryIO, dst: Writable, ext: str, limit: int | None) -> None:
    step = _SAMPLING[ext][0]
    table = _TABLES[ext]
    pos = 0
    while limit is None or pos < limit:
        data = src.read(CHUNK if limit is None else min(CHUNK, limit - pos))
        if not data:
            break
        dst.write(data[(-pos) % step :: step].translate(table))
        pos += len(data)


def _copy_ranges(src: BinaryIO, dst: Writable, ranges: list[tuple[int, int]]) -> None:
    for start, length in ranges:
        src.seek(start)
        left = length
        while left > 0:
            data = src.read(min(CHUNK, left))
            if not data:
                break
            dst.write(data)
            left -= len(data)


def _size_of(src: BinaryIO) -> int:
    src.seek(0, io.SEEK_END)
    size = src.tell()
    src.seek(0)
    return size


def _jpeg_keep(src: BinaryIO, size: int) -> list[tuple[int, int]]:
    """`jhead -purejpg`: drop APP1..APP15 and COM segments before the scan; keep the rest."""
    whole = [(0, size)]
    src.seek(0)
    if src.read(2) != b"\xff\xd8":
        return whole
    keep = [(0, 2)]
    pos = 2
    while pos < size:
        src.seek(pos)
        b = src.read(4)
        if len(b) < 2 or b[0] != 0xFF:
            return whole
        marker = b[1]
        if marker == 0xFF:
            pos += 1
            continue
        if marker in (0xDA, 0xD9):
            keep.append((pos, size - pos))
            break
        if 0xD0 <= marker <= 0xD7 or marker == 0x01:
            keep.append((pos, 2))
            pos += 2
            continue
        if len(b) < 4:
            return whole
        length = int.from_bytes(b[2:4], "big")
        if length < 2 or pos + 2 + length > size:
            return whole
        if marker not in _JPEG_DROPPED:
            keep.append((pos, 2 + length))
        pos += 2 + length
    return keep


def _png_keep(src: BinaryIO, size: int) -> list[tuple[int, int]]:
    """`optipng` as far as bytes go: drop text and time chunks and anything after IEND."""
    whole = [(0, size)]
    src.seek(0)
    if src.read(8) != b"\x89PNG\r\n\x1a\n":
        return whole
    keep = [(0, 8)]
    pos = 8
    while pos < size:
        src.seek(pos)
        hdr = src.read(8)
        if len(hdr) < 8:
            return whole
        total = 12 + int.from_bytes(hdr[:4], "big")
        if pos + total > size:
            return whole
        if hdr[4:8] not in _PNG_DROPPED:
            keep.append((pos, total))
        pos += total
        if hdr[4:8] == b"IEND":
            break
    return keep


@attrs.frozen
class Output:
    """One file the server lists for an upload.

    Attributes:
        ext: Extension of the stored name `<hash>.<ext>`.
        role: `original`, `file` or `extra`.
        stage: When it exists: `processing` (the original's copy), `ready`, `done` or `never`.
        entry_type: The `type` in its `files`/`extras` entry (None = unknown extension).
    """

    ext: str
    role: str
    stage: str
    entry_type: str | None


def plan_outputs(
    kind: MediaKind, original_ext: str, *, png_thumbnails: bool = False
) -> list[Output]:
    """The `files` (original first) and `extras` the server lists for a detected upload."""
    proc = kind.proc
    plan = [Output(original_ext, "original", "processing", None)]
    for ext in proc.outputs:
        if ext == original_ext:
            continue
        if ext in proc.sync_outputs:
            stage = "ready"
        elif ext in proc.async_outputs:
            stage = "done"
        else:
            stage = "never"
        plan.append(Output(ext, "file", stage, ENTRY_TYPES.get(ext)))
    if proc.thumbnail:
        thumb = "png" if png_thumbnails else "jpg"
        plan.append(Output(thumb, "extra", "ready", ENTRY_TYPES[thumb]))
    return plan


def write_derived(
    kind: MediaKind,
    file_hash: str,
    ext: str,
    *,
    original_ext: str,
    src: BinaryIO,
    dst: Writable,
    final: bool = True,
) -> None:
    """Write the derived file `<file_hash>.<ext>` of the original in `src` to `dst` (blocking).

    `final` selects the served original after the async step (PNG optimised) rather than before.
    Raises ValueError for a name the server never creates for this type.
    """
    proc = kind.proc
    if ext == original_ext:
        size = _size_of(src)
        if kind.name == "jpeg":
            _copy_ranges(src, dst, _jpeg_keep(src, size))
        elif kind.name == "png" and final:
            _copy_ranges(src, dst, _png_keep(src, size))
        else:
            _copy_ranges(src, dst, [(0, size)])
        return
    if ext in proc.sync_outputs or ext in proc.async_outputs:
        dst.write(_header(ext, ext, file_hash))
        _write_sampled(src, dst, ext, None)
        return
    if proc.thumbnail and ext in ("jpg", "png"):
        dst.write(_header(ext, "thumbnail", file_hash))
        src.seek(0)
        _write_sampled(src, dst, ext, THUMBNAIL_SOURCE_BYTES)
        return
    raise ValueError(
        f"the server never creates a .{ext} file for a {kind.name} uploaded as .{original_ext}"
    )


def expected_derived_bytes(
    original: bytes, derived_name: str, *, original_ext: str | None = None
) -> bytes:
    """Return the exact bytes the emulator serves as `derived_name` for an upload of `original`.

    `derived_name` is `<hash>.<ext>` (a leading path such as `/<hash>.mp4` or a sharded
    `/<c>/<hash>.mp4` is accepted). `original_ext` is the extension the original was uploaded with
    (default: the usual one for its sniffed type), which decides which name is the original's copy.
    The original of a JPEG has its metadata segments removed and a PNG its text chunks (as `jhead`
    and `optipng` did), so its served copy can differ from the upload. Raises ValueError for bytes
    that are not media, a name of another hash, or a name the server never creates.
    """
    name = derived_name.rsplit("/", 1)[-1]
    stem, dot, ext = name.rpartition(".")
    if not dot or not stem:
        raise ValueError(f"derived_name must look like '<hash>.<ext>', got {derived_name!r}")
    file_hash = content_hash_of(original)
    if stem != file_hash:
        raise ValueError(
            f"{derived_name!r} is not a file of these bytes (their hash is {file_hash})"
        )
    kind = sniff(original[:65536])
    if kind is None:
        raise ValueError("these bytes are not media: processing fails and no derived file exists")
    out = io.BytesIO()
    orig_ext = (original_ext or kind.ext).lower().lstrip(".")
    write_derived(kind, file_hash, ext, original_ext=orig_ext, src=io.BytesIO(original), dst=out)
    return out.getvalue()
