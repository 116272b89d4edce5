"""`content_hash()`: the id the server will give a file, computed locally (MEDIACRUSH.md 1).

The id is the standard base64 of the file's MD5 digest, first 12 characters, with `+` -> `-` and
`/` -> `_` (`mediacrush/files.py`: `get_hash`, `to_id`). It covers the bytes as uploaded.
"""

from __future__ import annotations

import base64
import hashlib
import io
import os
from typing import IO, Final

from ._constants import CHUNK_SIZE
from ._errors import InvalidArgumentError

__all__ = ["FileInput", "content_hash", "hash_from_digest"]

FileInput = str | os.PathLike[str] | bytes | bytearray | memoryview | IO[bytes]
"""What `upload_file` and `content_hash` accept: a path, the bytes themselves, or a binary file object."""

_ALLOWED: Final = "a path (str or os.PathLike), bytes, or a binary file object opened with 'rb'"


def hash_from_digest(digest: bytes) -> str:
    """The MediaCrush id for a raw 16-byte MD5 digest."""
    return base64.b64encode(digest).decode("ascii")[:12].replace("+", "-").replace("/", "_")


def _check_binary(fileobj: object) -> IO[bytes]:
    if isinstance(fileobj, io.TextIOBase) or not callable(getattr(fileobj, "read", None)):
        raise InvalidArgumentError("file", f"must be {_ALLOWED}, got {type(fileobj).__name__}")
    return fileobj  # type: ignore[return-value]


def _digest_stream(stream: IO[bytes]) -> bytes:
    md5 = hashlib.md5(usedforsecurity=False)
    while True:
        chunk = stream.read(CHUNK_SIZE)
        if not chunk:
            return md5.digest()
        if not isinstance(chunk, bytes | bytearray | memoryview):
            raise InvalidArgumentError(
                "file", f"must be {_ALLOWED}; read() returned {type(chunk).__name__}"
            )
        md5.update(chunk)


def content_hash(file: FileInput) -> str:
    """The 12-character id MediaCrush gives these bytes, without uploading them.

    A path is read in chunks; a file object is read from its current position, which is restored
    afterwards when the object is seekable. This reads the disk: from async code, run it in a thread
    (`anyio.to_thread.run_sync`) for large files, as the client does.
    """
    if isinstance(file, bytes | bytearray | memoryview):
        return hash_from_digest(hashlib.md5(file, usedforsecurity=False).digest())
    if isinstance(file, str | os.PathLike):
        try:
            with open(file, "rb") as opened:  # noqa: PTH123 - accepts str and PathLike alike
                return hash_from_digest(_digest_stream(opened))
        except OSError as exc:
            raise InvalidArgumentError(
                "file", f"cannot read {os.fspath(file)!r}: {exc.strerror or exc}"
            ) from exc
    stream = _check_binary(file)
    start = stream.tell() if _seekable(stream) else None
    try:
        return hash_from_digest(_digest_stream(stream))
    except OSError as exc:
        raise InvalidArgumentError("file", f"cannot read the file object: {exc}") from exc
    finally:
        if start is not None:
            stream.seek(start)


def _seekable(stream: IO[bytes]) -> bool:
    try:
        return bool(stream.seekable())
    except (AttributeError, OSError, ValueError):
        return False
