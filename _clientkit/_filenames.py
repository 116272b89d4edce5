"""Safe local file names from hostile remote input (Content-Disposition, URL paths, Content-Type).

A remote server decides what a download is called, so every name it offers is treated as hostile: only
the last path component is kept; NUL, control, format (bidi) and surrogate characters are removed;
characters that Windows forbids are replaced; leading dots, leading/trailing spaces and trailing dots are
stripped; Windows device names (`CON`, `nul.txt`, ...) get a `_` prefix; the name is cut to
`MAX_NAME_BYTES` of UTF-8 (keeping a short extension) so that `<name>.part.json` still fits in a
255-byte file-name limit. An empty result becomes the fallback. `safe_join` then resolves the path and
refuses anything whose parent is not the destination directory (a symlink planted in `dest` included).
"""

from __future__ import annotations

import mimetypes
import re
import unicodedata
from pathlib import Path
from typing import Final
from urllib.parse import parse_qsl, unquote, unquote_to_bytes, urlsplit

__all__ = [
    "MAX_NAME_BYTES",
    "choose_filename",
    "extension_for_content_type",
    "filename_from_content_disposition",
    "filename_from_url",
    "safe_join",
    "sanitize_filename",
]

MAX_NAME_BYTES: Final = 200
"""Longest sanitised name in UTF-8 bytes; leaves room for `.part.json` and a temp suffix in 255."""

_DEFAULT_FALLBACK: Final = "download"
_REPLACED: Final = frozenset('<>:"|?*')
_DROPPED_CATEGORIES: Final = frozenset({"Cc", "Cf", "Cs", "Co", "Cn"})
_WINDOWS_DEVICES: Final = frozenset(
    {"CON", "PRN", "AUX", "NUL", "CONIN$", "CONOUT$"}
    | {f"{dev}{n}" for dev in ("COM", "LPT") for n in [*"0123456789", "¹", "²", "³"]}
)
_MAX_EXTENSION_BYTES: Final = 16
# Path endings that name the server-side script, not the file it serves (`download.php?guid=...`).
_SCRIPT_EXTENSIONS: Final = frozenset(
    {".php", ".asp", ".aspx", ".jsp", ".cgi", ".pl", ".py", ".do", ".action", ".ashx", ".cfm"}
)
# Query keys whose value is a file name, then keys whose value identifies the file; never tokens or
# signatures, which would put a credential into a file name.
_NAME_KEYS: Final = ("filename", "file_name", "file", "name")
_ID_KEYS: Final = ("guid", "uuid", "id", "file_id", "fileid", "media_id", "mediaid")
_PREFERRED_EXTENSIONS: Final = {
    "video/mp4": ".mp4",
    "video/quicktime": ".mov",
    "video/x-matroska": ".mkv",
    "video/webm": ".webm",
    "video/x-msvideo": ".avi",
    "video/mpeg": ".mpg",
    "audio/mpeg": ".mp3",
    "audio/mp4": ".m4a",
    "audio/wav": ".wav",
    "image/jpeg": ".jpg",
    "image/png": ".png",
    "image/gif": ".gif",
    "image/webp": ".webp",
    "application/zip": ".zip",
    "application/json": ".json",
    "application/pdf": ".pdf",
    "text/plain": ".txt",
}
_TOKEN_RE: Final = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")


def sanitize_filename(name: str, *, fallback: str = _DEFAULT_FALLBACK) -> str:
    """A single safe path component made from `name`; never empty, never `.`/`..`, no separators."""
    text = unicodedata.normalize("NFC", name).replace("\\", "/")
    components = [c for c in text.split("/") if c.strip(" .")]
    text = components[-1] if components else ""
    chars: list[str] = []
    for char in text:
        if unicodedata.category(char) in _DROPPED_CATEGORIES:
            continue
        if char in _REPLACED:
            chars.append("_")
        elif char.isspace():
            chars.append(" ")
        else:
            chars.append(char)
    text = "".join(chars).strip(" ").lstrip(".").rstrip(". ")
    if text.split(".", 1)[0].rstrip(" ").upper() in _WINDOWS_DEVICES:
        text = f"_{text}"
    text = _truncate(text)
    if text:
        return text
    if fallback == _DEFAULT_FALLBACK:
        return _DEFAULT_FALLBACK
    return sanitize_filename(fallback)


def _truncate(name: str) -> str:
    """`name` cut to `MAX_NAME_BYTES` of UTF-8 at a character boundary, keeping a short extension."""
    if len(name.encode("utf-8")) <= MAX_NAME_BYTES:
        return name
    stem, dot, ext = name.rpartition(".")
    suffix = f"{dot}{ext}" if stem and len(ext.encode("utf-8")) < _MAX_EXTENSION_BYTES else ""
    base = stem if suffix else name
    budget = MAX_NAME_BYTES - len(suffix.encode("utf-8"))
    cut = base.encode("utf-8")[:budget].decode("utf-8", errors="ignore").rstrip(". ")
    return f"{cut}{suffix}" if cut else ""


def filename_from_content_disposition(value: str | None) -> str | None:
    """The raw (unsanitised) file name in a Content-Disposition value: `filename*` first, then `filename`.

    `filename*` is RFC 8187/5987 `charset'language'percent-encoded` (UTF-8 or ISO-8859-1); a value that
    cannot be decoded is skipped in favour of `filename`.
    """
    if not value:
        return None
    params = _parse_parameters(value)
    extended = params.get("filename*")
    if extended is not None:
        decoded = _decode_extended(extended)
        if decoded:
            return decoded
    plain = params.get("filename")
    return plain or None


def _parse_parameters(value: str) -> dict[str, str]:
    """`name=value` parameters after the disposition type; quoted strings unescaped; first one wins."""
    params: dict[str, str] = {}
    i, n = 0, len(value)
    # Skip the disposition type ("attachment", "inline", or garbage).
    while i < n and value[i] != ";":
        i += 1
    while i < n:
        i += 1  # the ';'
        while i < n and value[i] in " \t":
            i += 1
        start = i
        while i < n and value[i] not in "=;":
            i += 1
        key = value[start:i].strip().lower()
        if i >= n or value[i] == ";":
            continue
        i += 1  # the '='
        while i < n and value[i] in " \t":
            i += 1
        if i < n and value[i] == '"':
            i += 1
            chars: list[str] = []
            while i < n and value[i] != '"':
                if value[i] == "\\" and i + 1 < n:
                    i += 1
                chars.append(value[i])
                i += 1
            parsed = "".join(chars)
            while i < n and value[i] != ";":
                i += 1
        else:
            start = i
            while i < n and value[i] != ";":
                i += 1
            parsed = value[start:i].strip()
        if key and key not in params:
            params[key] = parsed
    return params


def _decode_extended(value: str) -> str | None:
    """Decode an RFC 8187 ext-value (`UTF-8''na%C3%AFve.txt`); None if malformed or of another charset."""
    charset, sep, rest = value.strip().strip('"').partition("'")
    _language, sep2, encoded = rest.partition("'")
    if not sep or not sep2:
        return None
    codec = {"utf-8": "utf-8", "iso-8859-1": "latin-1"}.get(charset.strip().lower())
    if codec is None:
        return None
    return unquote_to_bytes(encoded).decode(codec, errors="replace")


def extension_for_content_type(content_type: str | None) -> str:
    """A file extension (with the dot) for a Content-Type, or "" when unknown or generic."""
    if not content_type:
        return ""
    mime = content_type.split(";", 1)[0].strip().lower()
    if not mime or mime == "application/octet-stream":
        return ""
    ext = _PREFERRED_EXTENSIONS.get(mime) or mimetypes.guess_extension(mime, strict=True) or ""
    return ext if _TOKEN_RE.fullmatch(ext.lstrip(".")) else ""


def filename_from_url(url: str, content_type: str | None = None) -> str:
    """A raw file name from a URL's last path segment, or its query for script URLs, plus a type extension.

    `https://h/v/movie.mp4` gives `movie.mp4`; `https://h/download.php?guid=abc` with `video/mp4` gives
    `abc.mp4`; a bare host gives `download` (plus the extension, if the type is known).
    """
    parts = urlsplit(url)
    segment = unquote(parts.path.rstrip("/").rpartition("/")[2], errors="replace")
    stem, dot, ext = segment.rpartition(".")
    is_script = bool(dot) and f".{ext.lower()}" in _SCRIPT_EXTENSIONS
    name = segment
    if is_script or not segment:
        query = {k.lower(): v for k, v in parse_qsl(parts.query) if v}
        from_query = next((query[k] for k in _NAME_KEYS if k in query), None)
        identifier = next((query[k] for k in _ID_KEYS if k in query), None)
        name = from_query or identifier or (stem if is_script else "") or _DEFAULT_FALLBACK
    if "." not in name.lstrip("."):
        name += extension_for_content_type(content_type)
    return name


def choose_filename(
    *, content_disposition: str | None, url: str, content_type: str | None = None
) -> str:
    """The sanitised name for a download: Content-Disposition if it yields one, else from the URL."""
    from_url = sanitize_filename(filename_from_url(url, content_type))
    offered = filename_from_content_disposition(content_disposition)
    if offered is not None:
        return sanitize_filename(offered, fallback=from_url)
    return from_url


def safe_join(directory: str | Path, name: str) -> Path:
    """`directory / name`, resolved; raises ValueError unless it lies directly inside `directory`."""
    base = Path(directory).resolve()
    if not name or name in {".", ".."} or "/" in name or "\\" in name or "\x00" in name:
        raise ValueError(f"file name {name!r} is not a single path component")
    candidate = (base / name).resolve()
    if candidate.parent != base:
        raise ValueError(f"file name {name!r} would be written outside {str(base)!r}")
    return base / name
