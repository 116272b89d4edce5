"""Byte storage for the emulator: small blobs in memory, large ones in a temporary directory."""

from __future__ import annotations

import hashlib
import io
import os
import tempfile
from pathlib import Path
from typing import BinaryIO

import attrs

#: Read and write size for copying between blobs.
CHUNK = 256 * 1024


@attrs.define(eq=False)
class Blob:
    """An immutable run of bytes, held in memory or in a file that this blob owns.

    Attributes:
        size: Length in bytes.
        data: The bytes, when held in memory.
        path: The file holding the bytes, when spilled to disk.
    """

    size: int
    data: bytes | None = None
    path: Path | None = None

    @classmethod
    def from_bytes(cls, data: bytes) -> Blob:
        """Wrap bytes held in memory."""
        return cls(size=len(data), data=data)

    def open(self) -> BinaryIO:
        """Open the bytes for reading (a new handle each call; the caller closes it)."""
        if self.data is not None:
            return io.BytesIO(self.data)
        return self._path().open("rb")

    def _path(self) -> Path:
        if self.path is None:
            raise RuntimeError("a blob holds either data or a path")
        return self.path

    def head(self, n: int) -> bytes:
        """Return the first `n` bytes (fewer if the blob is shorter)."""
        if self.data is not None:
            return self.data[:n]
        with self.open() as fh:
            return fh.read(n)

    def read_range(self, start: int, length: int) -> bytes:
        """Return `length` bytes from offset `start` (a small, blocking read)."""
        if self.data is not None:
            return self.data[start : start + length]
        with self.open() as fh:
            fh.seek(start)
            return fh.read(length)

    def discard(self) -> None:
        """Delete the backing file, if any (readers holding it open keep their handle)."""
        if self.path is not None:
            self.path.unlink(missing_ok=True)


class SpoolWriter:
    """Collect bytes in memory and move them to a file in `directory` once past `threshold`.

    It also computes the MD5 of everything written, which is the upload's file id.
    """

    def __init__(self, directory: Path | None, threshold: int) -> None:
        self._directory = directory
        self._threshold = threshold
        self._buffer: bytearray | None = bytearray()
        self._file: BinaryIO | None = None
        self._path: Path | None = None
        self.md5 = hashlib.md5(usedforsecurity=False)
        self.size = 0

    def write(self, data: bytes | bytearray | memoryview) -> None:
        """Append `data` (blocking on disk only once spilled; chunks are small)."""
        if not data:
            return
        self.md5.update(data)
        self.size += len(data)
        if self._buffer is not None:
            self._buffer += data
            if len(self._buffer) > self._threshold and self._directory is not None:
                self._spill()
        elif self._file is not None:
            self._file.write(data)

    def _spill(self) -> None:
        if self._buffer is None or self._directory is None:
            return
        fd, name = tempfile.mkstemp(dir=self._directory, prefix="blob-")
        self._file = os.fdopen(fd, "wb")
        self._path = Path(name)
        self._file.write(self._buffer)
        self._buffer = None

    def finish(self) -> Blob:
        """Return the collected bytes as a `Blob` (the writer is spent afterwards)."""
        if self._buffer is not None:
            blob = Blob.from_bytes(bytes(self._buffer))
            self._buffer = None
            return blob
        if self._file is None or self._path is None:
            raise RuntimeError("SpoolWriter.finish() called twice")
        self._file.close()
        return Blob(size=self.size, path=self._path)

    def abort(self) -> None:
        """Throw the bytes away."""
        self._buffer = None
        if self._file is not None:
            self._file.close()
        if self._path is not None:
            self._path.unlink(missing_ok=True)
