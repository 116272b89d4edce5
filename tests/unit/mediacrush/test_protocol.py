"""The sans-I/O protocol: request builders and reply parsers over recorded wire samples, in both status modes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mediacrush_async import (
    Album,
    File,
    InvalidURLError,
    MediaCrushAPIError,
    NotFoundError,
    NotOwnerError,
    ProcessingStatus,
    RateLimitedError,
    ResponseFormatError,
    ServerError,
    TooLargeError,
    UnsupportedMediaError,
)
from mediacrush_async import _protocol as p

SAMPLES = Path(__file__).resolve().parents[2] / "samples" / "mediacrush"
GIF = "LxqXxVPAvqqB"


def sample(route: str, name: str) -> bytes:
    return (SAMPLES / route / name).read_bytes()


def status_of(name: str) -> int:
    return int(name.split("_", 1)[0].split(".", 1)[0])


def as_cors(status: int, body: bytes) -> tuple[int, bytes]:
    """What the server sends with X-CORS-Status: HTTP 200 and the real code in `x-status` (JSON bodies only)."""
    try:
        data = json.loads(body)
    except ValueError:
        return status, body
    if not isinstance(data, dict):
        return status, body
    return 200, json.dumps({**data, "x-status": status}, indent=2, sort_keys=True).encode()


@pytest.fixture(params=[False, True], ids=["plain", "cors"])
def reply(request):
    """A function giving (status, body) of a sample as the server sent it in the parametrised mode."""

    def make(route: str, name: str) -> tuple[int, bytes]:
        body = sample(route, name)
        status = status_of(name)
        return as_cors(status, body) if request.param else (status, body)

    return make


# ---------------------------------------------------------------- builders


def test_get_builders_use_documented_paths():
    """Each read route is a GET on the path the document names, with JSON accepted."""
    assert p.info_request(GIF, cors_status=False).path == f"/api/{GIF}"
    assert p.exists_request(GIF, cors_status=False).path == f"/api/{GIF}/exists"
    assert p.status_request(GIF, cors_status=False).path == f"/api/{GIF}/status"
    assert p.flags_request(GIF, cors_status=False).path == f"/api/{GIF}/flags"
    wire = p.info_request(GIF, cors_status=False)
    assert wire.method == "GET"
    assert ("Accept", "application/json") in wire.headers


def test_cors_mode_adds_the_header():
    """cors_status=True adds `X-CORS-Status: 1` to every request and nothing else changes."""
    plain = p.status_request(GIF, cors_status=False)
    cors = p.status_request(GIF, cors_status=True)
    assert ("X-CORS-Status", "1") in cors.headers
    assert ("X-CORS-Status", "1") not in plain.headers
    assert (plain.method, plain.path, plain.params) == (cors.method, cors.path, cors.params)


def test_set_flags_sends_exact_true_and_false():
    """Flag values go out as exactly "true"/"false", the only spelling the server reads as true."""
    wire = p.set_flags_request(GIF, {"autoplay": False, "nsfw": True}, cors_status=False)
    assert (wire.method, wire.path) == ("POST", f"/api/{GIF}/flags")
    assert wire.form == (("autoplay", "false"), ("nsfw", "true"))


def test_delete_uses_the_delete_method():
    """Delete is `DELETE /api/<hash>`, not the old GET `/api/<hash>/delete` that only redirects."""
    wire = p.delete_request(GIF, cors_status=False)
    assert (wire.method, wire.path) == ("DELETE", f"/api/{GIF}")


def test_album_and_url_builders_post_forms():
    """Album creation and URL routes post url-encoded forms with the documented field names."""
    assert p.album_create_request(["a" * 12, "b" * 12], cors_status=False).form == (
        ("list", f"{'a' * 12},{'b' * 12}"),
    )
    assert p.upload_url_request("https://x.org/c.gif", cors_status=False).form == (
        ("url", "https://x.org/c.gif"),
    )
    (wire,) = p.url_info_requests(["https://x.org/a", "https://x.org/b"], cors_status=False)
    assert (wire.path, wire.form) == (
        "/api/url/info",
        (("list", "https://x.org/a,https://x.org/b"),),
    )


def test_long_hash_lists_are_split_under_the_url_limit():
    """A long `list=` is split over several requests, each URL-encoded list under the limit, order kept."""
    hashes = [f"{i:012d}" for i in range(400)]
    wires = p.info_many_requests(hashes, cors_status=False)
    assert len(wires) > 1
    joined = [h for w in wires for h in dict(w.params)["list"].split(",")]
    assert joined == hashes
    for wire in wires:
        listed = dict(wire.params)["list"]
        assert len(listed.replace(",", "%2C")) <= p.MAX_LIST_CHARS
    assert len(p.status_many_requests(hashes, cors_status=False)) == len(wires)


def test_url_info_lists_are_split_by_count():
    """`url/info` posts at most MAX_URLS_PER_REQUEST URLs per request."""
    urls = [f"https://x.org/{i}" for i in range(p.MAX_URLS_PER_REQUEST * 2 + 1)]
    wires = p.url_info_requests(urls, cors_status=False)
    assert [len(dict(w.form)["list"].split(",")) for w in wires] == [100, 100, 1]


def test_multipart_frame_and_length():
    """The multipart head and tail frame one `file` part; quotes and newlines in the name are escaped."""
    head, tail = p.multipart_frame(
        boundary="B0UND", filename='a"b\r\n.gif', content_type="image/gif"
    )
    assert head == (
        b'--B0UND\r\nContent-Disposition: form-data; name="file"; filename="a%22b%0D%0A.gif"\r\n'
        b"Content-Type: image/gif\r\n\r\n"
    )
    assert tail == b"\r\n--B0UND--\r\n"
    wire = p.upload_file_request(boundary="B0UND", content_length=123, cors_status=True)
    headers = dict(wire.headers)
    assert headers["Content-Type"] == "multipart/form-data; boundary=B0UND"
    assert headers["Content-Length"] == "123"
    assert headers["X-CORS-Status"] == "1"
    assert (wire.method, wire.path) == ("POST", "/api/upload/file")


# ---------------------------------------------------------------- parsers


def test_info_parses_the_documents_gif(reply):
    """The document's GIF example parses into a File with its three files and flags."""
    blob = p.parse_info(*reply("info", "200_gif_document.json"), hash_="CPvuR5lRhmS0")
    assert isinstance(blob, File)
    assert blob.blob_type == "video"
    assert [f.type for f in blob.files] == ["video/mp4", "video/ogg", "image/gif"]
    assert blob.flags == {"autoplay": True, "loop": True, "mute": True}
    assert blob.metadata is not None
    assert blob.metadata.dimensions is not None
    assert (blob.metadata.dimensions.width, blob.metadata.dimensions.height) == (500, 281)
    assert blob.compression == 8.93


def test_info_parses_the_servers_gif_with_extras(reply):
    """The server's GIF reply has the original first, webm, the jpg thumbnail in extras and nsfw."""
    blob = p.parse_info(*reply("info", "200_gif_server.json"), hash_=GIF)
    assert isinstance(blob, File)
    assert blob.files[0].file == f"/{GIF}.gif"
    assert [e.file for e in blob.extras] == [f"/{GIF}.jpg"]
    assert blob.flags["nsfw"] is False
    assert blob.metadata is not None
    assert blob.metadata.has_subtitles is False
    assert blob.title is None


def test_info_parses_an_album_and_items_without_hash(reply):
    """The document's album (items lacking `hash` and `url`) is an Album whose items take their hash from `original`."""
    blob = p.parse_info(*reply("info", "200_album_document.json"), hash_="6ecd2bbd34ec")
    assert isinstance(blob, Album)
    assert [f.hash for f in blob.files] == ["yOEHB2vDiWS-", "vLGcgr9eXhsH", "uEKCcQyLVci7"]
    assert blob.files[0].files[0].url is None


def test_info_parses_the_servers_album(reply):
    """The server's album has `blob_type: album` and `metadata.has_zip`."""
    blob = p.parse_info(*reply("info", "200_album_server.json"), hash_="6ecd2bbd34ec")
    assert isinstance(blob, Album)
    assert blob.metadata is not None
    assert blob.metadata.has_zip is False
    assert blob.files[0].hash == GIF


def test_metadata_null_is_tolerated(reply):
    """`metadata: null` (seen for JPEGs) gives `metadata=None`."""
    blob = p.parse_info(*reply("info", "200_jpeg_metadata_null.json"), hash_="4Gt0YcGMPA7S")
    assert isinstance(blob, File)
    assert blob.metadata is None
    assert blob.original == "/4Gt0YcGMPA7S.jpe"


@pytest.mark.parametrize(
    ("route", "name", "error"),
    [
        ("info", "404.json", NotFoundError),
        ("info", "500.html", ServerError),
        ("status", "404.json", NotFoundError),
        ("status", "415.json", UnsupportedMediaError),
        ("flags", "401.json", NotOwnerError),
        ("flags", "415.json", UnsupportedMediaError),
        ("upload", "420.json", RateLimitedError),
        ("upload", "400.json", InvalidURLError),
        ("upload", "413_nginx.html", TooLargeError),
        ("album_create", "413.json", TooLargeError),
        ("album_create", "415.json", UnsupportedMediaError),
        ("url_info", "400.html", InvalidURLError),
        ("info_many", "400.json", InvalidURLError),
        ("delete", "401.json", NotOwnerError),
    ],
)
def test_error_replies_map_by_status(reply, route, name, error):
    """JSON errors and HTML pages alike map to the class of their status, with the same attributes in both modes."""
    status, body = reply(route, name)
    parse = {
        "info": lambda: p.parse_info(status, body, hash_=GIF),
        "status": lambda: p.parse_status(status, body, hash_=GIF),
        "flags": lambda: p.parse_flags(status, body),
        "upload": lambda: p.parse_upload(status, body, route="upload_file"),
        "album_create": lambda: p.parse_album_create(status, body),
        "url_info": lambda: p.parse_url_info(status, body, urls=["https://x.org/a"]),
        "info_many": lambda: p.parse_info_many(status, body, hashes=[GIF]),
        "delete": lambda: p.parse_delete(status, body),
    }[route]
    with pytest.raises(error) as caught:
        parse()
    assert caught.value.status_code == status_of(name)
    if name.endswith(".json"):
        assert caught.value.error == status_of(name)
    else:
        assert caught.value.error is None
        assert caught.value.body_excerpt


def test_html_413_excerpt_reads_as_text():
    """nginx's HTML 413 page becomes a readable excerpt without tags."""
    with pytest.raises(TooLargeError) as caught:
        p.parse_upload(413, sample("upload", "413_nginx.html"), route="upload_file")
    assert "413 Request Entity Too Large" in caught.value.body_excerpt
    assert "<" not in caught.value.body_excerpt


def test_unlisted_statuses_raise_the_base_api_error():
    """A status without its own class (403 after the shutdown) raises MediaCrushAPIError itself."""
    with pytest.raises(MediaCrushAPIError) as caught:
        p.parse_upload(403, sample("upload", "403_closed.json"), route="upload_file")
    assert type(caught.value) is MediaCrushAPIError
    assert caught.value.status_code == 403


def test_upload_200_is_only_a_hash(reply):
    """A fresh upload answers `{"hash"}` only: not a duplicate, no file object."""
    result = p.parse_upload(*reply("upload", "200.json"), route="upload_file")
    assert (result.hash, result.already_uploaded, result.file) == (GIF, False, None)


def test_upload_409_is_a_success_with_the_object(reply):
    """409 "already uploaded" is a success carrying the file object."""
    result = p.parse_upload(*reply("upload", "409_document.json"), route="upload_file")
    assert result.already_uploaded is True
    assert result.hash == GIF
    assert isinstance(result.file, File)
    assert result.file.original == f"/{GIF}.png"


def test_upload_409_with_the_broken_object_of_issue_356(reply):
    """The 409 whose object is `[{"error": 404}, 404]` (issue #356) is still a success, with file=None."""
    result = p.parse_upload(*reply("upload", "409_issue_356.json"), route="upload_url")
    assert (result.hash, result.already_uploaded, result.file) == (GIF, True, None)


def test_upload_409_with_an_unparseable_object_still_succeeds():
    """Any 409 object that is not a valid file object gives file=None rather than an error."""
    body = json.dumps({"error": 409, "hash": GIF, GIF: {"files": "nonsense", "flags": 3}}).encode()
    result = p.parse_upload(409, body, route="upload_file")
    assert (result.already_uploaded, result.file) == (True, None)


def test_upload_409_without_hash_uses_the_local_hash():
    """A 409 body lacking `hash` falls back to the hash computed locally."""
    result = p.parse_upload(409, b'{"error": 409}', route="upload_file", expected_hash=GIF)
    assert (result.hash, result.already_uploaded) == (GIF, True)


def test_exists_true_and_404_false(reply):
    """`{"exists": true}` is True, and the server's 404 `{"exists": false}` is False, not an error."""
    assert p.parse_exists(*reply("exists", "200.json")) is True
    assert p.parse_exists(*reply("exists", "404.json")) is False


def test_exists_html_404_is_an_error():
    """A non-JSON 404 (a wrong base URL, a proxy) is NotFoundError, not a silent False."""
    with pytest.raises(NotFoundError):
        p.parse_exists(404, b"<html>Not Found</html>")


def test_status_done_with_object(reply):
    """The status reply carries the object under the hash once the type is known."""
    status = p.parse_status(*reply("status", "200_done_document.json"), hash_=GIF)
    assert status.status is ProcessingStatus.DONE
    assert status.raw_status == "done"
    assert isinstance(status.file, File)
    assert status.file.hash == GIF


def test_status_pending_without_object(reply):
    """A pending file before detection has only `{"status"}`: file=None, hash from the request."""
    status = p.parse_status(*reply("status", "200_pending.json"), hash_=GIF)
    assert (status.status, status.hash, status.file) == (ProcessingStatus.PENDING, GIF, None)


def test_status_pending_object_has_null_blob_type(reply):
    """A pending object has `blob_type: null`, empty flags and metadata, and its byte size as compression."""
    status = p.parse_status(*reply("status", "200_pending_known_type.json"), hash_="Zx3mLm4e2TbS")
    assert status.file is not None
    assert status.file.blob_type is None
    assert status.file.flags == {}
    assert status.file.compression == 5081.0
    assert status.file.metadata is not None
    assert status.file.metadata.dimensions is None


def test_status_internal_error_with_string_none_blob_type(reply):
    """Issue #569's reply (`"blob_type": "None"`, internal_error) parses; the status is terminal and retryable."""
    status = p.parse_status(*reply("status", "200_internal_error_569.json"), hash_="Zx3mLm4e2TbS")
    assert status.status is ProcessingStatus.INTERNAL_ERROR
    assert status.status.is_terminal
    assert status.status.is_retryable
    assert status.file is not None
    assert status.file.blob_type is None


def test_status_of_a_failed_file(reply):
    """A failed file answers 200 with only its status."""
    status = p.parse_status(*reply("status", "200_failed.json"), hash_=GIF)
    assert status.status is ProcessingStatus.UNRECOGNISED
    assert status.file is None


def test_unknown_status_is_tolerated():
    """A status string this client does not know becomes UNKNOWN, keeping the raw value."""
    status = p.parse_status(200, b'{"status": "transcoding"}', hash_=GIF)
    assert status.status is ProcessingStatus.UNKNOWN
    assert status.raw_status == "transcoding"
    assert not status.status.is_terminal


def test_status_many_document_and_server_forms(reply):
    """Both the document's `{"status"}` entries and the server's `{"status", "file"}` entries parse; null is None."""
    doc = p.parse_status_many(
        *reply("status_many", "200_document.json"), hashes=["tVWMM_ziA3nm", "CPvuR5lRhmS0"]
    )
    assert {h: s.status for h, s in doc.items() if s} == {
        "tVWMM_ziA3nm": ProcessingStatus.PROCESSING,
        "CPvuR5lRhmS0": ProcessingStatus.PENDING,
    }
    asked = ["Zx3mLm4e2TbS", GIF, "AAAAAAAAAAAA", "BBBBBBBBBBBB", "CCCCCCCCCCCC"]
    server = p.parse_status_many(*reply("status_many", "200_server.json"), hashes=asked)
    assert list(server) == asked
    assert server["Zx3mLm4e2TbS"] is not None
    assert server["Zx3mLm4e2TbS"].file is not None
    assert server["Zx3mLm4e2TbS"].file.blob_type is None
    assert server[GIF] is not None
    assert server[GIF].status is ProcessingStatus.DONE
    assert server["AAAAAAAAAAAA"] is None
    assert server["BBBBBBBBBBBB"] is not None
    assert server["BBBBBBBBBBBB"].status is ProcessingStatus.ERROR
    assert server["CCCCCCCCCCCC"] is None


def test_info_many_mixed(reply):
    """info_many gives files, albums, None for null and None for the `[{"error": 404}, 404]` of an emptied album."""
    asked = [GIF, "6ecd2bbd34ec", "AAAAAAAAAAAA", "0123456789ab"]
    result = p.parse_info_many(*reply("info_many", "200_server_mixed.json"), hashes=asked)
    assert isinstance(result[GIF], File)
    assert isinstance(result["6ecd2bbd34ec"], Album)
    assert result["AAAAAAAAAAAA"] is None
    assert result["0123456789ab"] is None


def test_info_many_document(reply):
    """The document's info example parses both objects."""
    result = p.parse_info_many(
        *reply("info_many", "200_document.json"), hashes=["tVWMM_ziA3nm", "CPvuR5lRhmS0"]
    )
    assert all(isinstance(v, File) for v in result.values())
    assert result["tVWMM_ziA3nm"] is not None
    assert result["tVWMM_ziA3nm"].compression == 17.99


def test_url_info_document(reply):
    """url/info maps known URLs to files and unknown ones to None."""
    urls = ["http://i.imgur.com/rctIj1M.jpg", "http://does.not/exist.gif"]
    result = p.parse_url_info(*reply("url_info", "200_document.json"), urls=urls)
    assert isinstance(result[urls[0]], File)
    assert result[urls[1]] is None


def test_flags_get_and_post(reply):
    """Flags replies give the whole flag mapping."""
    assert p.parse_flags(*reply("flags", "200_document.json")) == {
        "autoplay": True,
        "loop": True,
        "mute": True,
    }
    assert p.parse_flags(*reply("flags", "200_after_post.json"), route="set_flags")["nsfw"] is False


def test_delete_and_album_create(reply):
    """Delete succeeds on 200; album creation returns the album hash."""
    assert p.parse_delete(*reply("delete", "200.json")) is None
    assert p.parse_album_create(*reply("album_create", "200.json")) == "6ecd2bbd34ec"


def test_delete_accepts_the_documents_typo():
    """Any 2xx delete body is success (the document's `sucess` typo included)."""
    assert p.parse_delete(200, b'{"status": "sucess"}') is None


@pytest.mark.parametrize(
    "body",
    [b"<html>oops</html>", b"", b"[]", b'{"hash": 12}', b"NaN", b'{"x-status": "teapot"}'],
)
def test_malformed_success_bodies_raise_response_format_error(body):
    """A 2xx body that is not the documented JSON raises ResponseFormatError naming the problem."""
    with pytest.raises(ResponseFormatError):
        p.parse_album_create(200, body)


def test_x_status_is_only_read_from_200():
    """`x-status` is the real status only in an HTTP 200; the HTTP status wins otherwise."""
    assert p.decode(200, b'{"x-status": 404, "error": 404}', route="info").status == 404
    assert p.decode(502, b'{"x-status": 200}', route="info").status == 502
    assert p.effective_status(200, b'{"x-status": 503}') == 503
    assert p.effective_status(200, b'{"x-status": "bad"}') == 200


def test_response_format_error_names_the_path():
    """A malformed file object names the offending field path."""
    body = json.dumps({"hash": GIF, "files": [{"file": "/a", "url": 5}]}).encode()
    with pytest.raises(ResponseFormatError) as caught:
        p.parse_info(200, body, hash_=GIF)
    assert "$.files[0].url" in str(caught.value)
