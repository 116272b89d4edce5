"""Reading an API request's JSON parameters: the document's names, types and error codes, no I/O."""

from __future__ import annotations

import hmac
import json
import urllib.parse
from collections.abc import Mapping
from typing import Any

from recuro_async.testing._catalog import (
    FILTERS,
    OUTPUT_FORMATS,
    SCALINGS,
    ApiError,
    canonical_action,
    canonical_filter,
    output_format,
)
from recuro_async.testing._media import JobSettings


def checked_params(params: dict[str, Any] | None, too_large: bool, limit: int) -> dict[str, Any]:
    if too_large:
        raise ApiError("RequestTooLarge", f"The request body is larger than {limit} bytes.")
    if params is None:
        raise ApiError("RequestInvalid", "The request body must be a JSON object.")
    return params


def parse_params(body: bytes) -> dict[str, Any] | None:
    """Decode a JSON object body with its keys lower-cased (requests are case-insensitive), or None."""
    try:
        value = json.loads(body.decode("utf-8-sig"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        return None
    if not isinstance(value, dict):
        return None
    return {str(k).lower(): v for k, v in value.items()}


def labels(params: Mapping[str, Any] | None) -> tuple[str, str | None]:
    """The action and file_id to log for a request, as far as its body tells."""
    if params is None:
        return "", None
    raw = params.get("action")
    action = (canonical_action(raw) or raw[:100]) if isinstance(raw, str) else ""
    file_id = params.get("file_id")
    return action, file_id[:200] if isinstance(file_id, str) and file_id else None


def authenticate(headers: Mapping[str, str], credentials: Mapping[str, str]) -> str:
    """Return the API key of a valid `Authorization: KEY:SECRET` header, else raise."""
    raw = headers.get("authorization", "").strip()
    if not raw:
        raise ApiError(
            "AuthorizationMissing",
            "You need to send an Authorization header with your API key and secret in 'ApiKey:ApiSecret' format.",
        )
    key, sep, secret = raw.partition(":")
    expected = credentials.get(key.strip())
    if (
        not sep
        or expected is None
        or not hmac.compare_digest(expected.encode(), secret.strip().encode())
    ):
        raise ApiError(
            "AuthorizationInvalid",
            "The API key and secret in the Authorization header are not valid.",
        )
    return key.strip()


def file_id(params: Mapping[str, Any]) -> str:
    value = params.get("file_id")
    if value is None or value == "":
        raise ApiError("FileIdMissing", "You need to specify a 'file_id' in your request.")
    if not isinstance(value, str):
        raise ApiError("FileIdInvalid", "'file_id' must be a string.")
    return value


def optional_str(params: Mapping[str, Any], key: str) -> str | None:
    value = params.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise ApiError(f"{_camel(key)}Invalid", f"'{key}' must be a string.")
    return value


def required_url(params: Mapping[str, Any], key: str) -> str:
    value = url_param(params, key, required=True)
    if value is None:
        raise ApiError(f"{_camel(key)}Missing", f"You need to specify a '{key}' in your request.")
    return value


def url_param(params: Mapping[str, Any], key: str, *, required: bool) -> str | None:
    value = params.get(key)
    if value is None or value == "":
        if required:
            raise ApiError(
                f"{_camel(key)}Missing", f"You need to specify a '{key}' in your request."
            )
        return None
    if not isinstance(value, str):
        raise ApiError(f"{_camel(key)}Invalid", f"'{key}' must be a string.")
    parts = urllib.parse.urlsplit(value)
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname or len(value) > 8192:
        raise ApiError(f"{_camel(key)}Invalid", f"'{key}' must be an http or https URL.")
    return value


def job_settings(params: Mapping[str, Any]) -> JobSettings:
    fmt_value = params.get("output_format")
    allowed_formats = ", ".join(f.name for f in OUTPUT_FORMATS)
    if fmt_value is None or fmt_value == "":
        raise ApiError(
            "OutputFormatMissing", f"You need to specify an 'output_format' ({allowed_formats})."
        )
    if not isinstance(fmt_value, str) or output_format(fmt_value) is None:
        raise ApiError(
            "OutputFormatInvalid",
            f"Unknown output_format {str(fmt_value)[:100]!r}; valid: {allowed_formats}.",
        )
    filters = params.get("filters")
    if filters is None:
        raise ApiError(
            "FiltersMissing", "You need to specify 'filters' (an array of filter names)."
        )
    if not isinstance(filters, list) or not all(isinstance(f, str) for f in filters):
        raise ApiError("FiltersInvalid", "'filters' must be an array of strings.")
    for name in filters:
        if canonical_filter(name) is None:
            raise ApiError(
                "FiltersInvalid",
                f"Unknown filter {name[:100]!r}; valid filters: {', '.join(FILTERS)}.",
            )
    scaling = params.get("output_scaling")
    if scaling is not None and scaling != "":
        valid = (isinstance(scaling, str) and scaling.strip() in SCALINGS) or (
            isinstance(scaling, int) and not isinstance(scaling, bool) and str(scaling) in SCALINGS
        )
        if not valid:
            raise ApiError(
                "OutputScalingInvalid", "'output_scaling' must be '1080' (HD) or '2160' (4K)."
            )
        scaling = str(scaling).strip()
    return JobSettings.of(fmt_value, filters, scaling or None)


def _camel(key: str) -> str:
    return "".join(part.capitalize() for part in key.split("_"))
