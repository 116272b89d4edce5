"""The sans-I/O wire layer: requests built and responses classified and parsed with no HTTP at all."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

from _clientkit._redact import Secret
from _clientkit._transport import ResponseParts, Retry
from recuro_async import (
    FilterInfo,
    Media,
    MediaNotFoundError,
    OutputFormatInfo,
    Progress,
    RateLimitedError,
    RecuroAPIError,
    RecuroHTTPError,
    ResponseFormatError,
    ServerError,
    State,
)
from recuro_async._protocol import (
    Action,
    Credentials,
    build_request,
    classify,
    parse_response,
    structure_as,
)

SAMPLES = Path(__file__).resolve().parents[2] / "samples" / "recuro"
BASE = "https://www.recuromedia.com/api/1.0/"


def sample(action: str, status: int) -> ResponseParts:
    """A recorded wire example: `<action>/<status>.json` (status, headers) beside `<status>.body`."""
    meta = json.loads((SAMPLES / action / f"{status}.json").read_text())
    body = (SAMPLES / action / f"{status}.body").read_bytes()
    return ResponseParts(meta["status_code"], httpx.Headers(meta["headers"]), body)


def parts(
    status: int, body: object = None, *, raw: bytes | None = None, **headers: str
) -> ResponseParts:
    content = raw if raw is not None else (b"" if body is None else json.dumps(body).encode())
    return ResponseParts(
        status, httpx.Headers({k.replace("_", "-"): v for k, v in headers.items()}), content
    )


def test_request_is_a_json_post_with_authorization():
    """Every call is a POST of JSON naming the action, with `Authorization: KEY:SECRET`."""
    request = build_request(
        BASE, Credentials("K34", Secret("s3cr3t")), Action.GET_PROGRESS, {"file_id": "ids-1.mov"}
    )
    assert request.method == "POST"
    assert str(request.url) == BASE
    assert request.headers["authorization"] == "K34:s3cr3t"
    assert request.headers["content-type"] == "application/json"
    assert json.loads(request.content) == {"action": "GetProgress", "file_id": "ids-1.mov"}


def test_optional_properties_left_out_when_none():
    """Optional properties given as None are not sent at all."""
    request = build_request(
        BASE,
        Credentials("k", Secret("s")),
        Action.UPLOAD_MEDIA,
        {"original_file_url": "https://x/a.mov", "username": None, "notify_url": None},
    )
    assert json.loads(request.content) == {
        "action": "UploadMedia",
        "original_file_url": "https://x/a.mov",
    }


def test_credentials_repr_hides_the_secret():
    """The credentials' repr shows the key only."""
    assert "s3cr3t" not in repr(Credentials("k", Secret("s3cr3t")))


def test_seed_list_media_parses():
    """The document's ListMedia example parses; its empty restored_file_url becomes None."""
    data = parse_response(Action.LIST_MEDIA, sample("ListMedia", 200))
    media = structure_as(data, list[Media], Action.LIST_MEDIA)
    assert media == [
        Media(
            "ids-345643.mov",
            "https://www.recuromedia.com/download.php?guid=1c8d4737-a0d4-42fb-8276-271426eb9128",
        ),
        Media("ids-542452.mov", None),
    ]


def test_seed_list_filters_and_formats_parse():
    """The document's ListFilters and ListOutputFormats examples parse."""
    filters = structure_as(
        parse_response(Action.LIST_FILTERS, sample("ListFilters", 200)),
        list[FilterInfo],
        Action.LIST_FILTERS,
    )
    formats = structure_as(
        parse_response(Action.LIST_OUTPUT_FORMATS, sample("ListOutputFormats", 200)),
        list[OutputFormatInfo],
        Action.LIST_OUTPUT_FORMATS,
    )
    assert [f.name for f in filters] == ["MediumDustAndScratches", "ColorBalance"]
    assert formats[1] == OutputFormatInfo("Mp4H264", "MP4 (H.264)")


def test_seed_get_progress_string_progress():
    """The document's GetProgress example sends progress as the string "100"."""
    data = parse_response(Action.GET_PROGRESS, sample("GetProgress", 200))
    progress = structure_as(data, Progress, Action.GET_PROGRESS)
    assert progress.state is State.JOB_COMPLETED
    assert progress.progress == 100.0
    assert progress.restored_file_url is not None


@pytest.mark.parametrize("action", ["StartJob", "DeleteMedia"])
def test_empty_200_is_success_for_start_and_delete(action):
    """StartJob and DeleteMedia answer 200 with an empty body."""
    assert parse_response(Action(action), sample(action, 200)) is None


def test_empty_200_is_an_error_where_a_body_is_due():
    """An empty 200 to GetProgress is a format error, not None."""
    with pytest.raises(ResponseFormatError):
        parse_response(Action.GET_PROGRESS, parts(200))


@pytest.mark.parametrize(
    "body",
    [
        {"STATE": "MediaAnalyze", "PROGRESS": 42.5},
        {"State": "mediaanalyze", "Progress": "42.5", "Restored_File_Url": None},
        {"state": "MEDIAANALYZE", "progress": " 42.5 ", "restored_file_url": ""},
    ],
)
def test_keys_and_values_in_any_case(body):
    """Keys and state values parse in any case; progress as number or numeric string."""
    data = parse_response(Action.GET_PROGRESS, parts(200, body))
    progress = structure_as(data, Progress, Action.GET_PROGRESS)
    assert (progress.state, progress.progress, progress.restored_file_url) == (
        State.MEDIA_ANALYZE,
        42.5,
        None,
    )


def test_unknown_state_kept_raw():
    """A state the document does not list becomes UNKNOWN, with the raw string kept."""
    data = parse_response(Action.GET_PROGRESS, parts(200, {"state": "JobArchiving", "progress": 3}))
    progress = structure_as(data, Progress, Action.GET_PROGRESS)
    assert progress.state is State.UNKNOWN
    assert progress.raw_state == "JobArchiving"


@pytest.mark.parametrize(
    ("body", "path"),
    [
        ({"state": None, "progress": 1}, "$.state"),
        ({"state": "JobQueued", "progress": True}, "$.progress"),
        ({"state": "JobQueued", "progress": "lots"}, "$.progress"),
        ({"state": "JobQueued", "progress": 1, "restored_file_url": 5}, "$.restored_file_url"),
    ],
)
def test_format_errors_name_the_field(body, path):
    """A wrong type is a ResponseFormatError whose path names the field."""
    data = parse_response(Action.GET_PROGRESS, parts(200, body))
    with pytest.raises(ResponseFormatError) as info:
        structure_as(data, Progress, Action.GET_PROGRESS)
    assert any(path in p for p in info.value.path_errors)


def test_seed_error_body():
    """The document's FileIdMissing example is an API error with its code and message."""
    with pytest.raises(RecuroAPIError) as info:
        parse_response(Action.GET_PROGRESS, sample("GetProgress", 400))
    assert info.value.error_code == "FileIdMissing"
    assert info.value.status_code == 400
    assert "file_id" in info.value.error_message
    assert type(info.value) is RecuroAPIError


@pytest.mark.parametrize(
    ("status", "body", "headers", "cls"),
    [
        (400, {"error_code": "RateLimitExceeded", "error_message": "slow"}, {}, RateLimitedError),
        (400, {"ERROR_CODE": "ratelimit", "Error_Message": "slow"}, {}, RateLimitedError),
        (
            429,
            {"error_code": "TooMany", "error_message": "x"},
            {"retry-after": "7"},
            RateLimitedError,
        ),
        (400, {"error_code": "MediaNotFound", "error_message": "gone"}, {}, MediaNotFoundError),
        (404, {"error_code": "Whatever", "error_message": "gone"}, {}, MediaNotFoundError),
        (500, {"error_code": "InternalError", "error_message": "boom"}, {}, ServerError),
        (400, {"error_code": "InvalidFilter", "error_message": "no"}, {}, RecuroAPIError),
    ],
)
def test_error_bodies_map_to_classes(status, body, headers, cls):
    """API error bodies map to the error class their status and code call for."""
    with pytest.raises(RecuroAPIError) as info:
        parse_response(Action.START_JOB, parts(status, body, **headers))
    assert type(info.value) is cls


def test_429_without_body_is_rate_limited_with_retry_after():
    """A bare 429 (from a proxy) is still a rate-limit refusal and keeps Retry-After."""
    with pytest.raises(RateLimitedError) as info:
        parse_response(Action.LIST_MEDIA, parts(429, raw=b"Too Many Requests", retry_after="12"))
    assert info.value.retry_after == 12.0


@pytest.mark.parametrize("status", [400, 403, 500, 502, 503])
def test_non_json_error_page_is_a_web_server_error(status):
    """An error status without the API's error body came from a web server: RecuroHTTPError."""
    page = b"<html><body><h1>502 Bad Gateway</h1>nginx</body></html>"
    with pytest.raises(RecuroHTTPError) as info:
        parse_response(Action.LIST_MEDIA, parts(status, raw=page))
    assert info.value.status_code == status
    assert "Bad Gateway" in info.value.body_excerpt


def test_error_excerpt_redacts_the_secret():
    """A proxy page that echoes the secret has it masked in the error."""
    with pytest.raises(RecuroHTTPError) as info:
        parse_response(
            Action.LIST_MEDIA, parts(403, raw=b"denied for k:hunter2"), secrets=["hunter2"]
        )
    assert "hunter2" not in str(info.value)


def test_non_json_200_is_a_format_error():
    """A 200 whose body is not JSON is a ResponseFormatError."""
    with pytest.raises(ResponseFormatError):
        parse_response(Action.LIST_MEDIA, parts(200, raw=b"<html>maintenance</html>"))


@pytest.mark.parametrize(
    ("response", "expected"),
    [
        (parts(200, {"a": 1}), None),
        (parts(400, {"error_code": "FileIdMissing", "error_message": ""}), None),
        (parts(500, {"error_code": "x", "error_message": ""}), Retry(after=None)),
        (parts(503, raw=b"<html>", retry_after="3"), Retry(after=3.0)),
        (parts(400, {"error_code": "RateLimitExceeded", "error_message": ""}), Retry(refusal=True)),
        (parts(429, raw=b"", retry_after="5"), Retry(after=5.0, refusal=True)),
    ],
)
def test_classify_marks_what_may_be_retried(response, expected):
    """5xx may be retried; rate-limit refusals pause the limiter; other errors are final."""
    assert classify(response) == expected


def test_absurdly_deep_json_is_a_format_error():
    """JSON nested deeper than the parser can follow is a ResponseFormatError, under any status."""
    deep = b"[" * 100_000 + b"]" * 100_000
    with pytest.raises(ResponseFormatError):
        parse_response(Action.LIST_MEDIA, parts(200, raw=deep))
    assert classify(parts(500, raw=deep)) == Retry()
    with pytest.raises(RecuroHTTPError):
        parse_response(Action.LIST_MEDIA, parts(400, raw=deep))
