"""Property: the reply parsers raise nothing but MediaCrushError subclasses, whatever the server sends."""

from __future__ import annotations

import json

from hypothesis import given
from hypothesis import strategies as st

from mediacrush_async import MediaCrushError
from mediacrush_async import _protocol as p

H = "LxqXxVPAvqqB"

_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**40), max_value=2**40)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=12)
    | st.sampled_from(
        [H, "status", "done", "files", "hash", "type", "application/album", "x-status"]
    )
)
_keys = st.sampled_from(
    [
        H,
        "hash",
        "type",
        "blob_type",
        "files",
        "extras",
        "flags",
        "metadata",
        "status",
        "file",
        "exists",
        "error",
        "x-status",
        "original",
        "compression",
        "dimensions",
        "width",
        "url",
    ]
) | st.text(max_size=8)
json_values = st.recursive(
    _scalars,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(_keys, children, max_size=6),
    max_leaves=25,
)
statuses = st.sampled_from([200, 201, 204, 302, 400, 401, 403, 404, 409, 413, 415, 420, 500, 502])

PARSERS = {
    "info": lambda s, b: p.parse_info(s, b, hash_=H),
    "info_many": lambda s, b: p.parse_info_many(s, b, hashes=[H, "6ecd2bbd34ec"]),
    "url_info": lambda s, b: p.parse_url_info(s, b, urls=["https://x.org/a", H]),
    "exists": p.parse_exists,
    "status": lambda s, b: p.parse_status(s, b, hash_=H),
    "status_many": lambda s, b: p.parse_status_many(s, b, hashes=[H, "hash"]),
    "flags": p.parse_flags,
    "delete": p.parse_delete,
    "album": p.parse_album_create,
    "upload": lambda s, b: p.parse_upload(s, b, route="upload_file", expected_hash=H),
}


def _check_all(status: int, body: bytes) -> None:
    for name, parse in PARSERS.items():
        try:
            parse(status, body)
        except MediaCrushError:
            pass
        except Exception as exc:  # pragma: no cover - the failure report
            raise AssertionError(f"{name} leaked {type(exc).__name__}: {exc}") from exc


@given(statuses, json_values)
def test_parsers_only_raise_package_errors_on_arbitrary_json(status, value):
    """Any JSON value with any status gives a result or a MediaCrushError, never another exception."""
    _check_all(status, json.dumps(value).encode())


@given(statuses, st.dictionaries(_keys, json_values, max_size=6), json_values)
def test_parsers_only_raise_package_errors_on_cors_wrapped_json(status, value, x_status):
    """X-CORS-Status replies (HTTP 200 with any `x-status`) give a result or a MediaCrushError."""
    _check_all(200, json.dumps({**value, "x-status": x_status}).encode())
    _check_all(200, json.dumps({**value, "x-status": status}).encode())


@given(statuses, st.binary(max_size=64))
def test_parsers_only_raise_package_errors_on_arbitrary_bytes(status, body):
    """Bodies that are not JSON (HTML pages, garbage, truncation) give a MediaCrushError or a result."""
    _check_all(status, body)


@given(json_values)
def test_blob_objects_with_file_shape_parse_or_fail_cleanly(value):
    """A file-object-shaped dict with arbitrary field values parses or raises ResponseFormatError."""
    obj = {"hash": H, "files": value, "flags": value, "metadata": value, "type": value}
    _check_all(200, json.dumps(obj).encode())
    _check_all(200, json.dumps({"status": "done", "hash": H, H: obj}).encode())
