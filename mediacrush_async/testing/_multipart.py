"""A small incremental `multipart/form-data` parser: parts stream into sinks, never whole into memory."""

from __future__ import annotations

from email.message import Message
from typing import Protocol

import attrs

MAX_HEADER_BYTES = 16 * 1024
MAX_PARTS = 10_000


class MultipartError(ValueError):
    """The body is not valid multipart/form-data."""


@attrs.frozen
class PartInfo:
    """What a part's headers say.

    Attributes:
        name: The form field name (`Content-Disposition` `name`).
        filename: The file name, or None when the part is a plain field (not a file).
        content_type: The part's `Content-Type`, if given.
    """

    name: str | None
    filename: str | None
    content_type: str | None


class PartSink(Protocol):
    """Receives one part's body."""

    def write(self, data: bytes, /) -> object:
        """Take the next bytes of the part."""

    def end(self) -> None:
        """The part is complete."""


def boundary_of(content_type: str) -> bytes | None:
    """Return the boundary of a `multipart/form-data` Content-Type, or None if it is not one."""
    msg = Message()
    msg["content-type"] = content_type
    if msg.get_content_type() != "multipart/form-data":
        return None
    boundary = msg.get_param("boundary")
    if not isinstance(boundary, str) or not boundary or len(boundary) > 200:
        return None
    return boundary.encode("latin-1", "replace")


def _parse_headers(block: bytes) -> PartInfo:
    msg = Message()
    for raw in block.split(b"\r\n"):
        if not raw:
            continue
        key, sep, value = raw.decode("utf-8", "replace").partition(":")
        if not sep:
            raise MultipartError("malformed part header")
        msg[key.strip()] = value.strip()
    name = msg.get_param("name", header="content-disposition")
    filename = msg.get_filename()
    if filename is None and msg.get_param("filename", header="content-disposition") is not None:
        filename = ""
    ctype = msg.get("content-type")
    return PartInfo(
        name=name if isinstance(name, str) else None,
        filename=filename,
        content_type=str(ctype) if ctype is not None else None,
    )


class MultipartParser:
    """Feed body chunks in; each part's headers go to `on_part`, which returns the sink for its body."""

    def __init__(self, boundary: bytes, on_part: _OnPart) -> None:
        self._delimiter = b"--" + boundary
        self._body_delimiter = b"\r\n" + self._delimiter
        self._on_part = on_part
        self._buf = bytearray()
        self._state = "preamble"
        self._sink: PartSink | None = None
        self._parts = 0

    @property
    def done(self) -> bool:
        """The closing delimiter has been seen."""
        return self._state == "epilogue"

    def feed(self, data: bytes) -> None:
        """Parse the next chunk of the body."""
        if self._state == "epilogue":
            return
        self._buf += data
        while self._step():
            pass

    def _step(self) -> bool:
        buf = self._buf
        if self._state == "preamble":
            at = buf.find(self._delimiter)
            if at < 0:
                del buf[: max(0, len(buf) - len(self._delimiter))]
                return False
            del buf[: at + len(self._delimiter)]
            self._state = "delimiter"
            return True
        if self._state == "delimiter":
            if len(buf) < 2:
                return False
            if buf[:2] == b"--":
                self._state = "epilogue"
                buf.clear()
                return False
            eol = buf.find(b"\r\n")
            if eol < 0:
                if len(buf) > MAX_HEADER_BYTES:
                    raise MultipartError("delimiter line too long")
                return False
            if buf[:eol].strip(b" \t"):
                raise MultipartError("garbage after the boundary")
            del buf[: eol + 2]
            self._state = "headers"
            return True
        if self._state == "headers":
            if buf[:2] == b"\r\n":
                block = b""
                del buf[:2]
            else:
                end = buf.find(b"\r\n\r\n")
                if end < 0:
                    if len(buf) > MAX_HEADER_BYTES:
                        raise MultipartError("part headers too long")
                    return False
                block = bytes(buf[:end])
                del buf[: end + 4]
            self._parts += 1
            if self._parts > MAX_PARTS:
                raise MultipartError("too many parts")
            self._sink = self._on_part(_parse_headers(block))
            self._state = "body"
            return True
        if self._state == "body" and self._sink is not None:
            at = buf.find(self._body_delimiter)
            if at < 0:
                keep = len(self._body_delimiter) - 1
                if len(buf) > keep:
                    self._sink.write(bytes(buf[: len(buf) - keep]))
                    del buf[: len(buf) - keep]
                return False
            self._sink.write(bytes(buf[:at]))
            self._sink.end()
            self._sink = None
            del buf[: at + len(self._body_delimiter)]
            self._state = "delimiter"
            return True
        return False

    def close(self) -> None:
        """The body has ended: check that the closing delimiter came."""
        if self._state != "epilogue":
            raise MultipartError("the body ended before the closing boundary")


class _OnPart(Protocol):
    def __call__(self, info: PartInfo, /) -> PartSink: ...
