"""Media knowledge of the emulator: file ids, type sniffing, processors, metadata.

What each detected type produces follows MEDIACRUSH.md section 6 (`processing/processors.py` of the
server); the bytes of each derived file are `_derived`'s.
"""

from __future__ import annotations

import base64
import hashlib
import re
from typing import Any

import attrs

#: The server's `mimeinfo.py` EXTENSIONS: the only extensions whose derived entries get a `type`.
ENTRY_TYPES: dict[str, str] = {
    "mp3": "audio/mpeg",
    "ogg": "audio/ogg",
    "gif": "image/gif",
    "jpg": "image/jpeg",
    "png": "image/png",
    "svg": "image/svg+xml",
    "mp4": "video/mp4",
    "ogv": "video/ogg",
    "webm": "video/webm",
}

#: Content types of served files (nginx `mime.types`, the part that matters here).
SERVED_TYPES: dict[str, str] = {
    **ENTRY_TYPES,
    "jpe": "image/jpeg",
    "jpeg": "image/jpeg",
    "bmp": "image/bmp",
    "tif": "image/tiff",
    "tiff": "image/tiff",
    "webp": "image/webp",
    "wav": "audio/x-wav",
    "flac": "audio/flac",
    "m4a": "audio/mp4",
    "mkv": "video/x-matroska",
    "mov": "video/quicktime",
    "avi": "video/x-msvideo",
    "flv": "video/x-flv",
    "mpg": "video/mpeg",
    "txt": "text/plain",
    "html": "text/html",
    "json": "application/json",
    "zip": "application/zip",
}

#: Python 2's `mimetypes.guess_extension` for the types that matter (note `.jpe` for JPEG: MEDIACRUSH.md
#: section 5); a type missing here gets no extension from its Content-Type.
PY2_EXTENSIONS: dict[str, str] = {
    "image/jpeg": "jpe",
    "image/png": "png",
    "image/gif": "gif",
    "image/svg+xml": "svg",
    "image/bmp": "bmp",
    "image/tiff": "tif",
    "video/mp4": "mp4",
    "video/quicktime": "mov",
    "video/x-msvideo": "avi",
    "video/mpeg": "mpg",
    "audio/mpeg": "mp3",
    "audio/x-wav": "wav",
    "text/plain": "txt",
    "text/html": "html",
    "application/json": "json",
    "application/pdf": "pdf",
    "application/zip": "zip",
    "application/octet-stream": "bin",
}


def content_hash_of(data: bytes) -> str:
    """Return the server's file id for `data`: base64 of its MD5, first 12 characters, `+`->`-`, `/`->`_`."""
    return hash_from_digest(hashlib.md5(data, usedforsecurity=False).digest())


def hash_from_digest(digest: bytes) -> str:
    """Turn a raw 16-byte MD5 digest into a file id (`files.py: to_id`)."""
    return base64.b64encode(digest).decode("ascii")[:12].replace("+", "-").replace("/", "_")


@attrs.frozen
class Processor:
    """What the server did with one detected type (MEDIACRUSH.md section 6).

    Attributes:
        name: The server's processor name.
        blob_type: `video`, `audio` or `image`.
        outputs: Extensions listed in `files` after the original, in order.
        sync_outputs: The outputs made by the browser-ready step (exist from `ready`).
        async_outputs: The outputs made by the async step (exist from `done`).
        thumbnail: Whether a thumbnail goes into `extras`.
        flags: Flag names, in the server's bit order.
        factor: Duration factor against a video.
        has_async_step: Whether there is work between `ready` and `done`.
    """

    name: str
    blob_type: str
    outputs: tuple[str, ...]
    sync_outputs: tuple[str, ...]
    async_outputs: tuple[str, ...]
    thumbnail: bool
    flags: tuple[str, ...]
    factor: float
    has_async_step: bool


_VIDEO_FLAGS = ("autoplay", "loop", "mute", "nsfw")


def _proc(
    name: str,
    blob_type: str,
    outputs: tuple[str, ...],
    *,
    sync: tuple[str, ...] = (),
    later: tuple[str, ...] = (),
    thumbnail: bool = False,
    flags: tuple[str, ...] = ("nsfw",),
    factor: float = 0.25,
    has_async_step: bool = True,
) -> Processor:
    return Processor(
        name, blob_type, outputs, sync, later, thumbnail, flags, factor, has_async_step
    )


PROCESSORS: dict[str, Processor] = {
    p.name: p
    for p in (
        _proc(
            "video",
            "video",
            ("mp4", "webm", "ogv"),
            sync=("mp4", "webm"),
            later=("ogv",),
            thumbnail=True,
            flags=_VIDEO_FLAGS,
            factor=1.0,
        ),
        _proc("audio", "audio", ("mp3", "ogg"), sync=("mp3",), later=("ogg",), factor=0.5),
        _proc("image", "image", ("png",), sync=("png",)),
        # PNG and JPEG list their own extension; when the original has another one, that entry is
        # listed but never created (the `.jpe` + `.jpg` case of node-mediacrush's fixtures).
        _proc("image/png", "image", ("png",)),
        _proc("image/jpeg", "image", ("jpg",), factor=0.1, has_async_step=False),
        _proc("image/svg+xml", "image", (), factor=0.1),
        _proc("image/x-gimp-xcf", "image", ("png",), sync=("png",)),
    )
}


@attrs.frozen
class MediaKind:
    """A sniffed container type.

    Attributes:
        name: Short name (`gif`, `mp4`, `wav`...).
        processor: Key into `PROCESSORS`.
        ext: The extension such a file normally has.
    """

    name: str
    processor: str
    ext: str

    @property
    def proc(self) -> Processor:
        """The processor the server would pick."""
        return PROCESSORS[self.processor]


def _kind(name: str, processor: str, ext: str | None = None) -> MediaKind:
    return MediaKind(name, processor, ext or name)


GIF = _kind("gif", "video")
PNG = _kind("png", "image/png")
JPEG = _kind("jpeg", "image/jpeg", "jpg")
SVG = _kind("svg", "image/svg+xml")

_SVG_RE = re.compile(rb"<svg[\s>]", re.IGNORECASE)


def _is_mp3_frame(head: bytes) -> bool:
    if len(head) < 4 or head[0] != 0xFF or (head[1] & 0xE0) != 0xE0:
        return False
    version = (head[1] >> 3) & 3
    layer = (head[1] >> 1) & 3
    bitrate = head[2] >> 4
    rate = (head[2] >> 2) & 3
    return version != 1 and layer != 0 and bitrate not in (0, 15) and rate != 3


def sniff(head: bytes) -> MediaKind | None:
    """Detect the media type from the first bytes (at least 4 KiB), or None for non-media."""
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return GIF
    if head[:8] == b"\x89PNG\r\n\x1a\n":
        return PNG
    if head[:3] == b"\xff\xd8\xff":
        return JPEG
    if head[4:8] == b"ftyp":
        brand = head[8:12]
        if brand.startswith((b"M4A", b"M4B")):
            return _kind("m4a", "audio")
        if brand == b"qt  ":
            return _kind("mov", "video")
        return _kind("mp4", "video")
    if head[:4] == b"\x1a\x45\xdf\xa3":
        return _kind("webm", "video") if b"webm" in head[:64] else _kind("mkv", "video")
    if head[:4] == b"OggS":
        return _kind("ogv", "video") if b"\x80theora" in head else _kind("ogg", "audio")
    if head[:4] == b"RIFF":
        form = head[8:12]
        if form == b"WAVE":
            return _kind("wav", "audio")
        if form == b"AVI ":
            return _kind("avi", "video")
        if form == b"WEBP":
            return _kind("webp", "image")
        return None
    if head[:4] == b"fLaC":
        return _kind("flac", "audio")
    if head[:3] == b"ID3" or _is_mp3_frame(head):
        return _kind("mp3", "audio")
    if head[:3] == b"FLV":
        return _kind("flv", "video")
    if head[:4] in (b"\x00\x00\x01\xba", b"\x00\x00\x01\xb3"):
        return _kind("mpg", "video")
    if (
        head[:2] == b"BM"
        and len(head) >= 18
        and int.from_bytes(head[14:18], "little") in (12, 40, 52, 56, 108, 124)
    ):
        return _kind("bmp", "image")
    if head[:4] in (b"II*\x00", b"MM\x00*"):
        return _kind("tiff", "image", "tif")
    if head[:9] == b"gimp xcf ":
        return _kind("xcf", "image/x-gimp-xcf")
    text = head[:1024].lstrip(b"\xef\xbb\xbf \t\r\n")
    if text.startswith(b"<") and _SVG_RE.search(head):
        return SVG
    return None


# ---------------------------------------------------------------------------------------- metadata


def _dims(width: int, height: int) -> dict[str, int]:
    return {"height": height, "width": width}


def _jpeg_dimensions(head: bytes) -> dict[str, int] | None:
    pos = 2
    while pos + 9 < len(head):
        if head[pos] != 0xFF:
            return None
        marker = head[pos + 1]
        if marker == 0xFF:
            pos += 1
            continue
        if 0xD0 <= marker <= 0xD9 or marker == 0x01:
            pos += 2
            continue
        length = int.from_bytes(head[pos + 2 : pos + 4], "big")
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
            height = int.from_bytes(head[pos + 5 : pos + 7], "big")
            width = int.from_bytes(head[pos + 7 : pos + 9], "big")
            return _dims(width, height)
        if marker == 0xDA:
            return None
        pos += 2 + length
    return None


def _mp4_dimensions(head: bytes) -> dict[str, int] | None:
    start = 0
    while (i := head.find(b"tkhd", start)) >= 0:
        start = i + 4
        version = head[i + 4] if i + 4 < len(head) else 0
        off = i + 4 + (88 if version == 1 else 76)
        if off + 8 > len(head):
            return None
        width = int.from_bytes(head[off : off + 4], "big") >> 16
        height = int.from_bytes(head[off + 4 : off + 8], "big") >> 16
        if width and height:
            return _dims(width, height)
    return None


def _mp4_duration(head: bytes) -> float | None:
    i = head.find(b"mvhd")
    if i < 0 or i + 24 > len(head):
        return None
    if head[i + 4] == 1:
        if i + 36 > len(head):
            return None
        scale = int.from_bytes(head[i + 24 : i + 28], "big")
        length = int.from_bytes(head[i + 28 : i + 36], "big")
    else:
        scale = int.from_bytes(head[i + 16 : i + 20], "big")
        length = int.from_bytes(head[i + 20 : i + 24], "big")
    return round(length / scale, 2) if scale else None


def _ebml_dimensions(head: bytes) -> dict[str, int] | None:
    w = head.find(b"\xb0\x82")
    h = head.find(b"\xba\x82")
    if w < 0 or h < 0:
        return None
    width = int.from_bytes(head[w + 2 : w + 4], "big")
    height = int.from_bytes(head[h + 2 : h + 4], "big")
    return _dims(width, height) if width and height else None


def _wav_duration(head: bytes, size: int) -> float | None:
    if len(head) < 32:
        return None
    byte_rate = int.from_bytes(head[28:32], "little")
    data = head.find(b"data")
    payload = size - (data + 8) if data >= 0 else size - 44
    return round(payload / byte_rate, 2) if byte_rate and payload >= 0 else None


def image_dimensions(kind: MediaKind, head: bytes) -> dict[str, int] | None:
    """Width and height from the header of an image or a GIF, or None if unreadable."""
    if kind.name == "gif" and len(head) >= 10:
        return _dims(int.from_bytes(head[6:8], "little"), int.from_bytes(head[8:10], "little"))
    if kind.name == "png" and len(head) >= 24:
        return _dims(int.from_bytes(head[16:20], "big"), int.from_bytes(head[20:24], "big"))
    if kind.name == "jpeg":
        return _jpeg_dimensions(head)
    if kind.name == "bmp" and len(head) >= 26:
        return _dims(
            int.from_bytes(head[18:22], "little", signed=True),
            abs(int.from_bytes(head[22:26], "little", signed=True)),
        )
    if kind.name == "xcf" and len(head) >= 22:
        return _dims(int.from_bytes(head[14:18], "big"), int.from_bytes(head[18:22], "big"))
    return None


def metadata_for(kind: MediaKind, head: bytes, size: int) -> dict[str, Any] | None:
    """The `metadata` the server stored once processing reached `ready` (`detect.py`)."""
    blob_type = kind.proc.blob_type
    if blob_type == "image":
        dims = image_dimensions(kind, head)
        return {"dimensions": dims} if dims is not None else None
    if blob_type == "audio":
        if kind.name == "wav":
            duration = _wav_duration(head, size)
        elif kind.name == "m4a":
            duration = _mp4_duration(head)
        else:
            duration = round(size * 8 / 128_000, 2)
        return {"duration": duration, "has_audio": True, "has_video": False}
    if kind.name == "gif":
        dims = image_dimensions(kind, head)
        return {"dimensions": dims, "has_audio": False, "has_subtitles": False, "has_video": True}
    if kind.name in ("mp4", "mov"):
        dims = _mp4_dimensions(head)
        has_audio = b"soun" in head
    elif kind.name in ("webm", "mkv"):
        dims = _ebml_dimensions(head)
        has_audio = b"A_VORBIS" in head or b"A_OPUS" in head
    else:
        dims = None
        has_audio = b"vorbis" in head
    meta: dict[str, Any] = {
        "dimensions": dims or _dims(640, 360),
        "has_audio": has_audio,
        "has_subtitles": False,
        "has_video": True,
    }
    if has_audio:
        meta["duration"] = _mp4_duration(head) if kind.name in ("mp4", "mov") else None
    return meta


def default_flags(kind: MediaKind, *, with_nsfw: bool = True) -> dict[str, bool]:
    """The flags a detected file starts with: GIFs autoplay, loop and mute; all else false."""
    names = kind.proc.flags if with_nsfw else tuple(n for n in kind.proc.flags if n != "nsfw")
    gif = kind.name == "gif"
    return {name: gif and name in ("autoplay", "loop", "mute") for name in names}
