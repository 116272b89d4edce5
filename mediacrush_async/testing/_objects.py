"""The JSON objects of Files and Albums (`_file_object`, `_album_object` of the server's api.py)."""

from __future__ import annotations

from typing import Any

from ._config import EmulatorConfig
from ._store import AlbumRecord, FileRecord, Store

__all__ = ["BROKEN_OBJECT", "album_object", "file_object"]

#: The object embedded in a 409 for a file that could not be read (issue #356).
BROKEN_OBJECT: list[Any] = [{"error": 404}, 404]


def _path(config: EmulatorConfig, name: str) -> str:
    return f"/{name[0]}/{name}" if config.sharding else f"/{name}"


def _entry(config: EmulatorConfig, name: str, mimetype: str | None, origin: str) -> dict[str, Any]:
    path = _path(config, name)
    return {
        "file": path,
        "type": mimetype,
        "url": (config.cdn_url or origin).rstrip("/") + path,
    }


def file_object(config: EmulatorConfig, record: FileRecord, origin: str) -> dict[str, Any]:
    """`_file_object`: the JSON object of a File in its current state."""
    files = [_entry(config, record.original_name, record.mimetype, origin)]
    extras = []
    for out in record.outputs:
        if out.role == "file":
            files.append(_entry(config, f"{record.hash}.{out.ext}", out.entry_type, origin))
        elif out.role == "extra":
            extras.append(_entry(config, f"{record.hash}.{out.ext}", out.entry_type, origin))
    metadata = record.metadata
    return {
        "blob_type": record.kind.proc.blob_type if record.kind is not None else None,
        "compression": float(record.compression),
        "description": record.description,
        "extras": extras,
        "files": files,
        "flags": dict(record.flags),
        "hash": record.hash,
        "metadata": dict(metadata) if metadata is not None else None,
        "original": _path(config, record.original_name),
        "title": record.title,
        "type": record.mimetype,
    }


def album_object(
    config: EmulatorConfig, store: Store, album: AlbumRecord, origin: str
) -> dict[str, Any] | None:
    """`_album_object`, or None when none of its files is left (the server answered 404)."""
    files = store.album_files(album)
    if not files:
        return None
    return {
        "blob_type": "album",
        "description": album.description,
        "files": [file_object(config, f, origin) for f in files],
        "hash": album.hash,
        "metadata": {"has_zip": album.zip_state == "done"},
        "title": album.title,
        "type": "application/album",
    }
