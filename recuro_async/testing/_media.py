"""Container sniffing, the deterministic "restoration", and storage of media in memory or on disk.

The restored file is ``header + original.translate(table)``: a one-line header naming the job settings and a
byte substitution keyed by those settings. It is a pure function of the input bytes and the settings (so a
test can compute the bytes it expects), costs one pass over the data (``bytes.translate`` runs at memory
speed, so a 1 GiB file takes about a second), and works chunk by chunk for media kept on disk.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import posixpath
import random
import re
import tempfile
import urllib.parse
from collections.abc import Iterable, Sequence
from pathlib import Path

import anyio
import anyio.to_thread
import attrs

from recuro_async.testing._catalog import (
    FILTERS,
    OUTPUT_FORMATS,
    SCALINGS,
    canonical_filter,
    output_format,
)

MIB = 1024 * 1024
CHUNK = 4 * MIB
SNIFF_BYTES = 64 * 1024

_EXTENSIONS = {
    ".mkv": "MKV",
    ".mov": "MOV",
    ".qt": "MOV",
    ".mp3": "MP3",
    ".mp4": "MP4",
    ".m4v": "MP4",
    ".mpg": "MPG",
    ".mpeg": "MPG",
    ".vob": "MPG",
    ".mxf": "MXF",
    ".wav": "WAV",
}
# Magic numbers of common formats that are certainly not one of the supported containers: a file that
# starts like this is refused whatever its name says (an HTML error page saved as "reel.mov", say).
_FOREIGN_MAGIC = (
    b"\x89PNG",
    b"\xff\xd8\xff",
    b"GIF8",
    b"%PDF",
    b"PK\x03\x04",
    b"\x1f\x8b",
    b"<!DOCTYPE",
    b"<!doctype",
    b"<html",
    b"<HTML",
    b"{",
    b"OggS",
    b"fLaC",
)
_QUICKTIME_ATOMS = (b"moov", b"mdat", b"wide", b"free", b"skip", b"pnot")
_MXF_KEY = bytes.fromhex("060E2B34")


def sniff_container(head: bytes, name: str = "") -> str | None:
    """Return the supported container ("MKV", "MOV", ...) of a file starting with `head`, or None.

    Magic numbers decide where they are cheap; the extension of `name` decides otherwise.
    """
    if head.startswith(bytes.fromhex("1A45DFA3")):
        return "MKV"
    if head[4:8] == b"ftyp":
        return "MOV" if head[8:12] == b"qt  " else "MP4"
    if head[4:8] in _QUICKTIME_ATOMS:
        return "MOV"
    if head[:4] == b"RIFF" and head[8:12] == b"WAVE":
        return "WAV"
    if head[:3] == b"ID3":
        return "MP3"
    if len(head) >= 2 and head[0] == 0xFF and head[1] & 0xE0 == 0xE0 and head[1] & 0x06 != 0:
        return "MP3"  # an MPEG audio frame sync with a layer set (layer 00 would be AAC ADTS)
    if head[:4] in (bytes.fromhex("000001BA"), bytes.fromhex("000001B3")):
        return "MPG"
    if _MXF_KEY in head[:SNIFF_BYTES]:
        return "MXF"  # the partition pack key, after an optional run-in
    if head.startswith(_FOREIGN_MAGIC):
        return None
    return _EXTENSIONS.get(posixpath.splitext(name.lower())[1])


def name_from_url(url: str) -> str:
    """Return the last path segment of `url`, percent-decoded and made safe for a file name."""
    path = urllib.parse.urlsplit(url).path
    name = urllib.parse.unquote(path.rsplit("/", 1)[-1])
    return safe_name(name)


def safe_name(name: str) -> str:
    """Strip directories, quotes, separators and control characters from a file name."""
    name = name.replace("\\", "/").rsplit("/", 1)[-1]
    name = re.sub(r'[\x00-\x1f\x7f"/\\;]', "", name).strip(" .")
    return name[:200]


def extension_of(url: str) -> str:
    """Return the lower-case media extension of the URL's file name ("" when it has none)."""
    ext = posixpath.splitext(name_from_url(url))[1].lower()
    return ext if ext in _EXTENSIONS else ""


# ---------------------------------------------------------------- restoration


@attrs.frozen
class JobSettings:
    """Canonical job settings: the format's name, the sorted distinct filters, the scaling or None."""

    output_format: str
    filters: tuple[str, ...]
    output_scaling: str | None

    @classmethod
    def of(
        cls, output_format_name: str, filters: Iterable[str], output_scaling: str | int | None
    ) -> JobSettings:
        """Canonicalise settings (names case-insensitive); raise ValueError naming an unknown value."""
        fmt = output_format(output_format_name)
        if fmt is None:
            allowed = ", ".join(f.name for f in OUTPUT_FORMATS)
            raise ValueError(f"unknown output_format {output_format_name!r}; allowed: {allowed}")
        names = set()
        for raw in filters:
            name = canonical_filter(raw)
            if name is None:
                raise ValueError(f"unknown filter {raw!r}; allowed: {', '.join(FILTERS)}")
            names.add(name)
        scaling = None if output_scaling in (None, "") else str(output_scaling)
        if scaling is not None and scaling not in SCALINGS:
            raise ValueError(f"unknown output_scaling {output_scaling!r}; allowed: 1080, 2160")
        return cls(fmt.name, tuple(sorted(names)), scaling)

    @property
    def colorize(self) -> bool:
        """Whether the job colorizes (it then passes through the colorization states)."""
        return "Colorize" in self.filters

    def header(self) -> bytes:
        """The first line of every restored file made with these settings."""
        filters = "+".join(self.filters) or "-"
        scaling = self.output_scaling or "source"
        return (
            f"RECURO-RESTORED/1 format={self.output_format} scaling={scaling} filters={filters}\n"
        ).encode("ascii")

    def table(self) -> bytes:
        """The keyed byte substitution applied to the original's bytes (a permutation of 0..255)."""
        key = int.from_bytes(hashlib.sha256(self.header()).digest(), "big")
        perm = list(range(256))
        random.Random(key).shuffle(perm)
        return bytes(perm)


def expected_restored_bytes(
    original: bytes,
    *,
    output_format: str,
    filters: Sequence[str],
    output_scaling: str | int | None,
) -> bytes:
    """Return the bytes the emulator serves for `original` restored with these settings.

    Names match case-insensitively, filters are a set (order and repeats do not matter), and an unknown
    format, filter or scaling raises ValueError.
    """
    settings = JobSettings.of(output_format, filters, output_scaling)
    return settings.header() + original.translate(settings.table())


def restored_size(
    original_size: int,
    *,
    output_format: str,
    filters: Sequence[str],
    output_scaling: str | int | None,
) -> int:
    """Return the size of the restored file for an original of `original_size` bytes."""
    settings = JobSettings.of(output_format, filters, output_scaling)
    return len(settings.header()) + original_size


def expected_restored_file(
    original: str | os.PathLike[str],
    dest: str | os.PathLike[str],
    *,
    output_format: str,
    filters: Sequence[str],
    output_scaling: str | int | None,
) -> int:
    """Write the restored form of the file `original` to `dest` in constant memory; return its size.

    Blocking (for tests and for large media); the emulator runs the same steps chunk by chunk in a thread.
    """
    settings = JobSettings.of(output_format, filters, output_scaling)
    table = settings.table()
    header = settings.header()
    written = len(header)
    with Path(original).open("rb") as src, Path(dest).open("wb") as dst:
        dst.write(header)
        while chunk := src.read(CHUNK):
            dst.write(chunk.translate(table))
            written += len(chunk)
    return written


# ---------------------------------------------------------------- storage


@attrs.define
class Blob:
    """Stored bytes: in memory (`data`) or in a file (`path`) for media above the disk threshold.

    Attributes:
        size: the length in bytes.
        data: the bytes, when kept in memory.
        path: the file holding the bytes, when kept on disk.
    """

    size: int
    data: bytes | None = None
    path: Path | None = None

    def read_range_sync(self, start: int, length: int) -> bytes:
        """Read `length` bytes from `start` (blocking when on disk: call it in a thread)."""
        if self.data is not None:
            return self.data[start : start + length]
        if self.path is None:
            raise FileNotFoundError("the blob was removed")
        with self.path.open("rb") as fh:
            fh.seek(start)
            return fh.read(length)

    async def remove(self) -> None:
        """Forget the bytes and delete the file, if any."""
        self.data = None
        path, self.path = self.path, None
        if path is not None:
            await anyio.to_thread.run_sync(_unlink, path)


def _unlink(path: Path) -> None:
    path.unlink(missing_ok=True)


class Spool:
    """Collects a download in memory, spilling to a temporary file once it passes `threshold` bytes."""

    def __init__(self, directory: Path, threshold: int, *, suffix: str = "") -> None:
        self._directory = directory
        self._threshold = threshold
        self._suffix = suffix
        self._buffer = bytearray()
        self._fh: int | None = None
        self._path: Path | None = None
        self.size = 0
        self.head = b""

    async def write(self, data: bytes) -> None:
        """Append `data` (batched into large writes when on disk)."""
        if len(self.head) < SNIFF_BYTES:
            self.head += data[: SNIFF_BYTES - len(self.head)]
        self._buffer += data
        self.size += len(data)
        if self._fh is None and len(self._buffer) > self._threshold:
            self._fh, name = await anyio.to_thread.run_sync(self._mkstemp)
            self._path = Path(name)
        if self._fh is not None and len(self._buffer) >= CHUNK:
            await self._flush()

    def _mkstemp(self) -> tuple[int, str]:
        return tempfile.mkstemp(dir=self._directory, suffix=self._suffix)

    async def _flush(self) -> None:
        fd, data = self._fh, bytes(self._buffer)
        self._buffer.clear()
        if fd is None:
            return
        await anyio.to_thread.run_sync(_write_all, fd, data)

    async def finish(self) -> Blob:
        """Return the collected bytes as a Blob (the file is closed and kept)."""
        if self._fh is None:
            data = bytes(self._buffer)
            self._buffer.clear()
            return Blob(len(data), data=data)
        await self._flush()
        fd, self._fh = self._fh, None
        await anyio.to_thread.run_sync(os.close, fd)
        return Blob(self.size, path=self._path)

    async def discard(self) -> None:
        """Drop everything collected so far (after a failed fetch)."""
        self._buffer.clear()
        fd, self._fh = self._fh, None
        path, self._path = self._path, None
        if fd is not None:
            await anyio.to_thread.run_sync(os.close, fd)
        if path is not None:
            await anyio.to_thread.run_sync(_unlink, path)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


async def restore_blob(
    original: Blob, settings: JobSettings, directory: Path, threshold: int
) -> Blob:
    """Produce the restored form of `original`: in memory when small, else chunk by chunk on disk."""
    header = settings.header()
    table = settings.table()
    size = len(header) + original.size
    if original.data is not None and size <= threshold:
        data = original.data
        return Blob(size, data=await anyio.to_thread.run_sync(_restore_bytes, header, data, table))
    fd, name = await anyio.to_thread.run_sync(
        lambda: tempfile.mkstemp(dir=directory, suffix=".restored")
    )
    path = Path(name)
    try:
        await anyio.to_thread.run_sync(_write_all, fd, header)
        offset = 0
        while offset < original.size:
            step = min(CHUNK, original.size - offset)
            await anyio.to_thread.run_sync(_restore_chunk, original, offset, step, table, fd)
            offset += step
        await anyio.to_thread.run_sync(os.close, fd)
    except BaseException:
        with anyio.CancelScope(shield=True):
            await anyio.to_thread.run_sync(_close_and_unlink, fd, path)
        raise
    return Blob(size, path=path)


def _restore_bytes(header: bytes, data: bytes, table: bytes) -> bytes:
    return header + data.translate(table)


def _restore_chunk(original: Blob, offset: int, length: int, table: bytes, fd: int) -> None:
    _write_all(fd, original.read_range_sync(offset, length).translate(table))


def _close_and_unlink(fd: int, path: Path) -> None:
    with contextlib.suppress(OSError):
        os.close(fd)
    path.unlink(missing_ok=True)
