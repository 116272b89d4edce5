"""The files of one download on disk: the `.part`, its JSON sidecar, and their blocking operations.

Everything here is blocking (it runs in a worker thread, or on the loop where measured to be cheaper);
`_download` decides when. See `_download`'s docstring for the on-disk layout and why it is safe to resume.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import pathlib
import threading
from collections.abc import Sequence
from typing import Any, Final

import attrs

__all__ = [
    "Layout",
    "PartState",
    "Segment",
    "commit_part",
    "file_size",
    "fsync_directory",
    "open_part",
    "part_layout",
    "pwrite_all",
    "read_sidecar",
    "resumable_state",
    "unlink",
    "write_sidecar",
]

SIDECAR_VERSION: Final = 1
MAX_IOV: Final = 512
# flags that exist on some platforms only (0 elsewhere): binary mode (Windows), never through a symlink
_BINARY: Final = getattr(os, "O_BINARY", 0)
_NO_FOLLOW: Final = getattr(os, "O_NOFOLLOW", 0)
# what ends a path that names a directory
_SEPARATORS: Final = tuple({"/", os.sep})
_seek_lock = threading.Lock()  # only for platforms without os.pwrite (positional writes)


@attrs.define
class Segment:
    """One range of a segmented download: `[start, end)`, of which `done` bytes are on disk."""

    start: int
    end: int  # exclusive
    done: int = 0

    @property
    def position(self) -> int:
        return self.start + self.done

    @property
    def complete(self) -> bool:
        return self.start + self.done >= self.end


@attrs.define
class PartState:
    """What the sidecar holds: enough to resume safely in a later process."""

    url: str
    name: str
    validator: str | None = None
    total: int | None = None
    segments: list[Segment] | None = None

    def to_json(self) -> bytes:
        data: dict[str, Any] = {
            "version": SIDECAR_VERSION,
            "url": self.url,
            "name": self.name,
            "validator": self.validator,
            "total": self.total,
            "segments": None
            if self.segments is None
            else [[s.start, s.end, s.done] for s in self.segments],
        }
        return json.dumps(data, separators=(",", ":")).encode()

    @classmethod
    def from_json(cls, raw: bytes, url: str) -> PartState | None:
        """The state in `raw` for a download of `url`, or None: the `.part` is then not resumed.

        None for another URL (see `resumable_state` for a re-issued link), another sidecar version, a
        malformed sidecar (an empty validator included), or segments that do not tile `[0, total)`.
        """
        try:
            data = json.loads(raw)
            if not isinstance(data, dict) or type(data.get("version")) is not int:
                return None
            if data["version"] != SIDECAR_VERSION:
                return None
            name, validator, total = data["name"], data["validator"], data["total"]
            if not isinstance(name, str) or not name:
                return None
            if validator is not None and (not isinstance(validator, str) or not validator):
                return None
            if data["url"] != url:
                return None
            if total is not None and (type(total) is not int or total < 0):
                return None
            segments = None
            if data["segments"] is not None:
                if total is None:
                    return None
                segments = [_segment(item) for item in data["segments"]]
                if not tiles(segments, total):
                    return None
        except (ValueError, KeyError, TypeError, RecursionError):
            return None
        return cls(url=url, name=name, validator=validator, total=total, segments=segments)


def _segment(item: object) -> Segment:
    """`[start, end, done]` as a Segment; TypeError for anything but three JSON integers."""
    if not isinstance(item, list) or len(item) != 3 or any(type(v) is not int for v in item):
        raise TypeError  # caught by from_json: the sidecar is not resumed
    return Segment(*item)


def resumable_state(raw: bytes, url: str, *, reissue_of: str | None = None) -> PartState | None:
    """The sidecar's state if its `.part` may be resumed for `url`, else None (the `.part` is discarded).

    A sidecar recorded for `url` is resumed. One recorded for another URL is resumed only when the caller
    says `url` is a re-issue of that URL (`reissue_of`, e.g. a fresh signed link of the same file) AND the
    sidecar holds a strong validator, so every range request carries If-Range and a changed file can never
    be spliced; the state is then re-keyed to `url`.
    """
    state = PartState.from_json(raw, url)
    if state is not None or reissue_of is None or reissue_of == url:
        return state
    state = PartState.from_json(raw, reissue_of)
    if state is None or state.validator is None:
        return None
    state.url = url
    return state


def tiles(segments: Sequence[Segment], total: int) -> bool:
    """True when `segments` are non-empty, in order, and cover `[0, total)` exactly, each `done` in range."""
    at = 0
    for s in segments:
        if s.start != at or s.end <= s.start or not 0 <= s.done <= s.end - s.start:
            return False
        at = s.end
    return at == total and bool(segments)


@attrs.frozen
class Layout:
    """Where the files of one download live; `fixed_name` is None when the server names the file."""

    directory: pathlib.Path
    fixed_name: str | None
    sidecar: pathlib.Path

    def part(self, name: str) -> pathlib.Path:
        return self.directory / f"{name}.part"

    def final(self, name: str) -> pathlib.Path:
        return self.directory / name


def part_layout(dest: str | os.PathLike[str], url: str) -> Layout:
    """Blocking: decide directory or file mode for `dest` (runs in a worker thread).

    `dest` is taken as given: `pathlib.Path` drops a trailing slash, which says "a directory".
    """
    text = os.fspath(dest)
    dest = pathlib.Path(text)
    if dest.is_dir():
        directory = dest.resolve()
        key = hashlib.sha256(url.encode()).hexdigest()[:32]
        return Layout(directory, None, directory / f".{key}.part.json")
    if text.endswith(_SEPARATORS):
        raise ValueError(f"dest: directory {str(dest)!r} does not exist")
    directory = dest.parent.resolve()
    if not directory.is_dir():
        raise ValueError(f"dest: the parent directory {str(dest.parent)!r} does not exist")
    return Layout(directory, dest.name, directory / f"{dest.name}.part.json")


def _progress(written: int) -> int:
    if written <= 0:  # a regular file never does this; looping on it would never end
        raise OSError(errno.EIO, "a write to the .part made no progress")
    return written


def pwrite_all(fd: int, buffers: Sequence[bytes], offset: int) -> None:
    """Write every buffer at `offset` onwards (positional; partial writes are continued)."""
    views = [memoryview(b) for b in buffers if b]
    if hasattr(os, "pwritev"):
        while views:
            batch = views[:MAX_IOV]
            written = _progress(os.pwritev(fd, batch, offset))
            offset += written
            while views and written >= len(views[0]):
                written -= len(views[0])
                views.pop(0)
            if written:
                views[0] = views[0][written:]
        return
    for view in views:
        rest = view
        while rest:
            if hasattr(os, "pwrite"):
                written = _progress(os.pwrite(fd, rest, offset))
            else:  # Windows: no positional write; serialise seek+write
                with _seek_lock:
                    os.lseek(fd, offset, os.SEEK_SET)
                    written = _progress(os.write(fd, rest))
            offset += written
            rest = rest[written:]


def open_part(path: pathlib.Path, *, truncate: bool) -> int:
    """Open (create) the `.part` for positional writes; never through a symlink (O_NOFOLLOW)."""
    flags = os.O_RDWR | os.O_CREAT | _BINARY | _NO_FOLLOW
    if truncate:
        flags |= os.O_TRUNC
    return os.open(path, flags, 0o644)


def write_sidecar(path: pathlib.Path, data: bytes, fsync: bool) -> None:
    """Replace the sidecar atomically: a new file beside it, fsynced if asked, renamed over it.

    A crash leaves the old sidecar or the new one, never a torn one. The temporary file is created
    afresh (O_EXCL, O_NOFOLLOW: a symlink planted under its name is not followed) and removed on failure.
    """
    tmp = path.with_name(f"{path.name}.tmp")
    tmp.unlink(missing_ok=True)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _BINARY | _NO_FOLLOW, 0o644)
    try:
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            if fsync:
                os.fsync(fd)
        finally:
            os.close(fd)
        tmp.replace(path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def read_sidecar(path: pathlib.Path) -> bytes | None:
    try:
        return path.read_bytes()
    except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
        return None


def file_size(path: pathlib.Path) -> int:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0


def fsync_directory(directory: pathlib.Path) -> None:
    if os.name != "posix":
        return
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def unlink(path: pathlib.Path) -> None:
    path.unlink(missing_ok=True)


def commit_part(
    fd: int, part: pathlib.Path, final: pathlib.Path, sidecar: pathlib.Path, fsync: bool
) -> None:
    """Make a verified `.part` the final file: fsync, close, atomic rename, fsync the directory."""
    try:
        if fsync:
            os.fsync(fd)
    finally:
        os.close(fd)
    part.replace(final)
    if fsync:
        fsync_directory(final.parent)
    unlink(sidecar)
