"""The one cattrs converter that turns MediaCrush JSON into models.

Policy (MEDIACRUSH.md 6, STYLE 4):
- `str` and `bool` are strict (cattrs' defaults turn null into "None" and "false" into True); a bool may
  also arrive as the string "true"/"false". Numbers are lenient: a number or a numeric string, never a bool.
- A blob object is normalised *before* the `File | Album` union looks at its `type` tag: field names are
  matched case-insensitively, a missing `type` with `blob_type: "album"` becomes `application/album`, and a
  missing `hash` is read from `original` (album items in the document have none).
- Optional keys may be missing or null (`metadata: null`, `blob_type: null` or "None" while pending,
  `files: null`); `flags` and `metadata` are open mappings; unknown keys are ignored.
- Every failure leaves `structure()` as a `ResponseFormatError` whose `path_errors` name the fields.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any, Final, TypeVar

import attrs
import cattrs
from cattrs.errors import BaseValidationError
from cattrs.gen import make_dict_structure_fn, override
from cattrs.strategies import configure_tagged_union

from _clientkit._hooks import lenient_float, strict_str

from ._constants import ALBUM_TYPE
from ._enums import ProcessingStatus
from ._errors import ResponseFormatError
from ._models import Album, Dimensions, File, FileEntry, Metadata

__all__ = ["BlobObject", "converter", "normalise_blob", "structure"]

_T = TypeVar("_T")

BlobObject = File | Album
"""What `GET /api/<hash>` returns, chosen by the `type` tag."""

_BLOB_KEYS: Final = frozenset(
    {
        "hash",
        "type",
        "blob_type",
        "original",
        "files",
        "extras",
        "flags",
        "metadata",
        "title",
        "description",
        "compression",
    }
)
_NO_BLOB_TYPE: Final = frozenset({"", "none", "null"})
_HASH_IN_PATH: Final = re.compile(r"(?:^|/)([A-Za-z0-9_-]+)(?:\.[^/]*)?$")


def _hash_from_original(original: object) -> str | None:
    if not isinstance(original, str):
        return None
    match = _HASH_IN_PATH.search(original)
    return match.group(1) if match else None


def normalise_blob(value: Any) -> Any:
    """Normalise one file or album object so that the union sees the real tag (non-dicts pass through)."""
    if not isinstance(value, dict):
        return value
    data: dict[str, Any] = {}
    for key, item in value.items():
        lowered = key.lower() if isinstance(key, str) else key
        if lowered in _BLOB_KEYS:
            data.setdefault(lowered, item)
    blob_type = data.get("blob_type")
    tag = data.get("type")
    tagged_album = isinstance(tag, str) and tag.strip().lower() == ALBUM_TYPE
    untagged_album = (
        tag is None and isinstance(blob_type, str) and blob_type.strip().lower() == "album"
    )
    if tagged_album or untagged_album:
        data["type"] = ALBUM_TYPE
    if data.get("hash") is None:
        derived = _hash_from_original(data.get("original"))
        if derived is not None:
            data["hash"] = derived
    return data


def _strict_bool(value: Any, _: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    raise TypeError(f"expected a boolean, got {type(value).__name__}")


def _lenient_int(value: Any, _: Any) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    number = lenient_float(value, float)
    if not number.is_integer():
        raise ValueError(f"expected a whole number, got {value!r}")
    return int(number)


def _optional_str(value: Any, _: Any) -> str | None:
    return None if value is None else strict_str(value, str)


def _optional_bool(value: Any, _: Any) -> bool | None:
    return None if value is None else _strict_bool(value, bool)


def _optional_float(value: Any, _: Any) -> float | None:
    return None if value is None or value == "" else lenient_float(value, float)


def _blob_type(value: Any, _: Any) -> str | None:
    # Issue #569 shows "blob_type": "None" (a string) for a file whose type was never detected.
    if value is None:
        return None
    text = strict_str(value, str).strip().lower()
    return None if text in _NO_BLOB_TYPE else text


def _status(value: Any, _: Any) -> ProcessingStatus:
    return ProcessingStatus(strict_str(value, str))  # an unlisted value becomes UNKNOWN


def _tag_of(cls: type) -> str:
    # Only Album needs a tag; File is the default for every other `type` (a mimetype).
    return ALBUM_TYPE if cls is Album else f"<{cls.__name__}>"


def _require_dict(value: Any, what: str) -> dict[Any, Any]:
    if not isinstance(value, dict):
        raise TypeError(f"expected {what} object, got {type(value).__name__}")
    return value


def _make_converter() -> cattrs.Converter:
    conv = cattrs.Converter(detailed_validation=True)
    # Simple types first: generated hooks capture the hooks that exist when they are built (STYLE 4.4).
    conv.register_structure_hook(str, strict_str)
    conv.register_structure_hook(bool, _strict_bool)
    conv.register_structure_hook(float, lenient_float)
    conv.register_structure_hook(int, _lenient_int)
    conv.register_structure_hook(str | None, _optional_str)
    conv.register_structure_hook(bool | None, _optional_bool)
    conv.register_structure_hook(float | None, _optional_float)
    conv.register_structure_hook(ProcessingStatus, _status)

    def _flags(value: Any, _: Any) -> dict[str, bool]:
        if value is None:
            return {}
        flags = _require_dict(value, "a flags")
        return {strict_str(k, str): _strict_bool(v, bool) for k, v in flags.items()}

    dimensions_fn = make_dict_structure_fn(Dimensions, conv)
    conv.register_structure_hook(
        Dimensions, lambda v, t: dimensions_fn(_require_dict(v, "a dimensions"), t)
    )

    def _optional_dimensions(value: Any, _: Any) -> Dimensions | None:
        return None if value is None else conv.structure(value, Dimensions)

    entry_fn = make_dict_structure_fn(FileEntry, conv)

    def _entry(value: Any, cls: type[FileEntry]) -> FileEntry:
        data = _require_dict(value, "a file entry")
        if "file" not in data and isinstance(data.get("url"), str):
            data = {**data, "file": httpx_path(data["url"])}
        return entry_fn(data, cls)

    conv.register_structure_hook(FileEntry, _entry)

    def _tuple_of(item: type[_T], what: str) -> Callable[[Any, Any], tuple[_T, ...]]:
        """A hook for a list that may be null (then empty), structured item by item."""

        def hook(value: Any, _: Any) -> tuple[_T, ...]:
            if value is None:
                return ()
            if not isinstance(value, list):
                raise TypeError(f"expected a list of {what}, got {type(value).__name__}")
            return tuple(conv.structure(value, list[item]))  # type: ignore[valid-type]

        return hook

    _entries = _tuple_of(FileEntry, "file entries")

    metadata_fn = make_dict_structure_fn(
        Metadata,
        conv,
        extra=override(omit=True),
        dimensions=override(struct_hook=_optional_dimensions),
    )

    def _metadata(value: Any, cls: type[Metadata]) -> Metadata:
        data = _require_dict(value, "a metadata")
        return attrs.evolve(metadata_fn(data, cls), extra=dict(data))

    conv.register_structure_hook(Metadata, _metadata)

    def _optional_metadata(value: Any, _: Any) -> Metadata | None:
        # `metadata` is `{}` until ready and can be null (MEDIACRUSH.md 6); a list is not metadata.
        return None if value is None else conv.structure(value, Metadata)

    file_fn = make_dict_structure_fn(
        File,
        conv,
        blob_type=override(struct_hook=_blob_type),
        files=override(struct_hook=_entries),
        extras=override(struct_hook=_entries),
        flags=override(struct_hook=_flags),
        metadata=override(struct_hook=_optional_metadata),
    )
    conv.register_structure_hook(
        File, lambda v, t: file_fn(_require_dict(normalise_blob(v), "a file"), t)
    )

    _album_files = _tuple_of(File, "file objects")

    album_fn = make_dict_structure_fn(
        Album,
        conv,
        files=override(struct_hook=_album_files),
        blob_type=override(struct_hook=_blob_type),
        metadata=override(struct_hook=_optional_metadata),
    )
    conv.register_structure_hook(
        Album, lambda v, t: album_fn(_require_dict(normalise_blob(v), "an album"), t)
    )

    configure_tagged_union(
        BlobObject,
        conv,
        tag_name="type",
        tag_generator=_tag_of,
        default=File,
    )
    # Trap 2 of STYLE 4: the union reads the raw `type` key, so normalise before it dispatches.
    union_hook: Callable[[Any, Any], Any] = conv.get_structure_hook(BlobObject)
    conv.register_structure_hook(
        BlobObject,
        lambda v, t: union_hook(_require_dict(normalise_blob(v), "a file or album"), t),
    )
    return conv


def httpx_path(url: str) -> str:
    """The path of `url` ("https://cdn/x.mp4" -> "/x.mp4"), for entries that carry only a URL."""
    without_query = url.split("?", 1)[0].split("#", 1)[0]
    _, _, rest = without_query.partition("://")
    slash = rest.find("/")
    return rest[slash:] if slash >= 0 else "/"


converter: Final = _make_converter()


def _path_errors(exc: Exception) -> list[str]:
    if isinstance(exc, BaseValidationError):
        return list(cattrs.transform_error(exc))
    return [f"{exc} @ $"]


def structure(data: Any, cls: Any, *, route: str | None = None) -> Any:
    """Structure decoded JSON into `cls`; any failure becomes a `ResponseFormatError` naming the fields."""
    try:
        return converter.structure(data, cls)
    except (BaseValidationError, TypeError, ValueError, KeyError, AttributeError) as exc:
        raise ResponseFormatError(
            f"unexpected reply shape for {cls.__name__ if isinstance(cls, type) else 'a file or album'}",
            path_errors=_path_errors(exc),
            route=route,
        ) from exc
    except RecursionError as exc:
        raise ResponseFormatError("reply nested too deeply", route=route) from exc


def structure_as(data: Any, cls: type[_T], *, route: str | None = None) -> _T:
    """Typed `structure()` for a single class."""
    result: _T = structure(data, cls, route=route)
    return result
