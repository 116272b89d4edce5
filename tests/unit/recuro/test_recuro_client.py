"""RecuroClient over a respx router injected as `http_client=`: every action, error path and retry path."""

from __future__ import annotations

import json

import httpx
import pytest
import respx
from fakeclock import FakeClock

from recuro_async import (
    ConfigurationError,
    Filter,
    InvalidArgumentError,
    Media,
    MediaNotFoundError,
    OutputFormat,
    RateLimit,
    RateLimitedError,
    RecuroAPIError,
    RecuroClient,
    RecuroHTTPError,
    ServerError,
    State,
    TransportError,
    WaitTimeoutError,
)

BASE = "https://api.test/api/1.0/"
URL = "https://www.recuromedia.com/download.php?guid=1c8d4737"


def ok(body: object = None) -> httpx.Response:
    return httpx.Response(200, content=b"" if body is None else json.dumps(body).encode())


def err(status: int, code: str, message: str = "", **headers: str) -> httpx.Response:
    return httpx.Response(
        status,
        json={"error_code": code, "error_message": message},
        headers={k.replace("_", "-"): v for k, v in headers.items()},
    )


@pytest.fixture
def router():
    return respx.Router(assert_all_called=False)


@pytest.fixture
async def http(router):
    async with httpx.AsyncClient(transport=httpx.MockTransport(router.async_handler)) as client:
        yield client


@pytest.fixture
def clock():
    """A fake clock; tests that sleep (backoff, pauses, polling) run inside `clock.autoadvance()`."""
    return FakeClock()


@pytest.fixture
async def recuro(http, clock):
    async with RecuroClient(base_url=BASE, http_client=http, clock=clock) as client:
        yield client


def body_of(route: respx.Route, index: int = -1) -> dict[str, object]:
    return json.loads(route.calls[index].request.content)


async def test_list_media(router, recuro):
    """ListMedia returns Media values, an empty restored_file_url as None."""
    router.post(BASE, json__action="ListMedia").mock(
        return_value=ok(
            [
                {"file_id": "a.mov", "restored_file_url": URL},
                {"File_ID": "b.mov", "restored_file_url": ""},
            ]
        )
    )
    assert await recuro.list_media() == [Media("a.mov", URL), Media("b.mov", None)]


async def test_list_filters_and_formats(router, recuro):
    """ListFilters and ListOutputFormats return their infos."""
    router.post(BASE, json__action="ListFilters").mock(
        return_value=ok([{"name": "Noise", "description": "d", "example_url": "https://x/e.mp4"}])
    )
    router.post(BASE, json__action="ListOutputFormats").mock(
        return_value=ok([{"NAME": "Mp4H264", "LONG_NAME": "MP4"}])
    )
    assert [f.name for f in await recuro.list_filters()] == ["Noise"]
    assert [(f.name, f.long_name) for f in await recuro.list_output_formats()] == [
        ("Mp4H264", "MP4")
    ]


async def test_upload_media_sends_the_documented_body(router, recuro, canary_key, canary_secret):
    """UploadMedia posts the URL and optional properties and returns the file_id."""
    route = router.post(BASE, json__action="UploadMedia").mock(
        return_value=ok({"FILE_ID": "ids-1.mov"})
    )
    file_id = await recuro.upload_media(
        "https://media.test/reel.mov", username="u", password="p", notify_url="https://me.test/hook"
    )
    assert file_id == "ids-1.mov"
    assert body_of(route) == {
        "action": "UploadMedia",
        "original_file_url": "https://media.test/reel.mov",
        "username": "u",
        "password": "p",
        "notify_url": "https://me.test/hook",
    }
    request = route.calls.last.request
    assert request.headers["authorization"] == f"{canary_key}:{canary_secret}"
    assert request.headers["content-type"] == "application/json"


async def test_start_job_sends_wire_values(router, recuro):
    """StartJob sends format, filters and scaling as the document spells them; empty 200 is success."""
    route = router.post(BASE, json__action="StartJob").mock(return_value=ok())
    result = await recuro.start_job(
        "ids-1.mov",
        output_format=OutputFormat.MP4_H264,
        filters=[Filter.NOISE, "colorbalance"],
        output_scaling=1080,
    )
    assert result is None
    assert body_of(route) == {
        "action": "StartJob",
        "file_id": "ids-1.mov",
        "output_format": "Mp4H264",
        "filters": ["Noise", "ColorBalance"],
        "output_scaling": "1080",
    }


async def test_get_progress_and_delete(router, recuro):
    """GetProgress parses string progress; DeleteMedia's empty 200 is success."""
    router.post(BASE, json__action="GetProgress").mock(
        return_value=ok({"state": "JobCompleted", "progress": "100", "restored_file_url": URL})
    )
    router.post(BASE, json__action="DeleteMedia").mock(return_value=ok())
    progress = await recuro.get_progress("ids-1.mov")
    assert (progress.state, progress.progress, progress.restored_file_url) == (
        State.JOB_COMPLETED,
        100.0,
        URL,
    )
    assert await recuro.delete_media("ids-1.mov") is None


@pytest.mark.parametrize(
    ("response", "cls"),
    [
        (err(400, "FileIdMissing", "You need to specify a 'file_id'"), RecuroAPIError),
        (err(400, "MediaNotFound"), MediaNotFoundError),
        (httpx.Response(502, text="<html>Bad Gateway</html>"), RecuroHTTPError),
    ],
)
async def test_errors_surface_with_their_class(router, recuro, response, cls, clock):
    """API errors and proxy pages raise the matching class with status and code."""
    router.post(BASE, json__action="GetProgress").mock(side_effect=[response] * 5)
    async with clock.autoadvance():
        with pytest.raises(cls) as info:
            await recuro.get_progress("x")
        assert info.value.status_code == response.status_code


async def test_safe_call_retried_after_500(router, recuro, clock):
    """GetProgress is retried after a 500 and succeeds, with a backoff sleep between attempts."""
    route = router.post(BASE, json__action="GetProgress").mock(
        side_effect=[err(500, "Internal"), ok({"state": "MediaQueued", "progress": 0})]
    )
    async with clock.autoadvance():
        assert (await recuro.get_progress("x")).state is State.MEDIA_QUEUED
        assert route.call_count == 2


async def test_safe_call_retried_after_read_error(router, recuro, clock):
    """GetProgress is retried after a read error (safe to repeat)."""
    route = router.post(BASE, json__action="GetProgress").mock(
        side_effect=[httpx.ReadError("reset"), ok({"state": "MediaQueued", "progress": 0})]
    )
    async with clock.autoadvance():
        await recuro.get_progress("x")
        assert route.call_count == 2


async def test_retries_are_capped(router, recuro, clock):
    """After max_retries the last response's error is raised: 1 + 4 attempts."""
    route = router.post(BASE, json__action="ListMedia").mock(side_effect=[err(500, "Internal")] * 9)
    async with clock.autoadvance():
        with pytest.raises(ServerError):
            await recuro.list_media()
        assert route.call_count == 5


async def test_upload_not_retried_after_read_error(router, recuro):
    """UploadMedia is not repeated after a read error: the outcome is unknown (request_sent=True)."""
    route = router.post(BASE, json__action="UploadMedia").mock(side_effect=httpx.ReadError("reset"))
    with pytest.raises(TransportError) as info:
        await recuro.upload_media("https://media.test/a.mov")
    assert info.value.request_sent is True
    assert route.call_count == 1


async def test_upload_retried_after_connection_refused(router, recuro, clock):
    """UploadMedia is retried when the connection was refused: nothing reached the server."""
    route = router.post(BASE, json__action="UploadMedia").mock(
        side_effect=[httpx.ConnectError("refused"), ok({"file_id": "f"})]
    )
    async with clock.autoadvance():
        assert await recuro.upload_media("https://media.test/a.mov") == "f"
        assert route.call_count == 2


async def test_upload_connect_failure_reports_not_sent(router, recuro, clock):
    """Connection refusals on every attempt end in TransportError(request_sent=False)."""
    router.post(BASE, json__action="UploadMedia").mock(side_effect=httpx.ConnectError("refused"))
    async with clock.autoadvance():
        with pytest.raises(TransportError) as info:
            await recuro.upload_media("https://media.test/a.mov")
        assert info.value.request_sent is False


async def test_start_job_not_retried_after_500(router, recuro):
    """StartJob is not repeated after a 500: the job may exist (a duplicate costs money)."""
    route = router.post(BASE, json__action="StartJob").mock(
        side_effect=[err(500, "Internal"), ok()]
    )
    with pytest.raises(ServerError):
        await recuro.start_job("f", output_format="Mp4H264", filters=["Noise"])
    assert route.call_count == 1


async def test_refusal_pauses_the_limiter_for_retry_after(router, recuro, clock):
    """A rate-limit refusal pauses the shared limiter for Retry-After, then the call is retried."""
    route = router.post(BASE, json__action="StartJob").mock(
        side_effect=[err(400, "RateLimitExceeded", "200 requests/minute", retry_after="7"), ok()]
    )
    async with clock.autoadvance():
        started = clock.monotonic()
        await recuro.start_job("f", output_format="Mp4H264", filters=["Noise"])
        assert route.call_count == 2
        second_sent_at = clock.monotonic()
        assert second_sent_at - started >= 7.0


async def test_refusal_without_retry_after_pauses_one_period(router, http, clock):
    """A refusal without Retry-After pauses the limiter for one period; other callers wait too."""
    async with (
        RecuroClient(
            base_url=BASE, http_client=http, clock=clock, rate_limit=RateLimit(200, 30.0)
        ) as recuro,
        clock.autoadvance(),
    ):
        router.post(BASE, json__action="ListMedia").mock(side_effect=[httpx.Response(429), ok([])])
        await recuro.list_media()
        assert clock.monotonic() >= 30.0


async def test_persistent_refusal_raises_rate_limited(router, recuro, clock):
    """A refusal on every attempt ends in RateLimitedError carrying Retry-After."""
    router.post(BASE, json__action="ListMedia").mock(
        side_effect=[err(400, "RateLimitExceeded", retry_after="2")] * 5
    )
    async with clock.autoadvance():
        with pytest.raises(RateLimitedError) as info:
            await recuro.list_media()
        assert info.value.retry_after == 2.0


async def test_server_retry_after_honoured_on_503(router, recuro, clock):
    """A 503 with Retry-After waits at least that long before the retry."""
    router.post(BASE, json__action="ListMedia").mock(
        side_effect=[httpx.Response(503, headers={"Retry-After": "4"}), ok([])]
    )
    async with clock.autoadvance():
        await recuro.list_media()
        assert clock.monotonic() >= 4.0


@pytest.mark.parametrize(
    ("call", "field", "allowed"),
    [
        (
            lambda c: c.start_job("f", output_format="Avi", filters=["Noise"]),
            "output_format",
            "Mp4H264",
        ),
        (
            lambda c: c.start_job("f", output_format="Mp4H264", filters=["Sparkle"]),
            "filters",
            "ColorBalance",
        ),
        (lambda c: c.start_job("f", output_format="Mp4H264", filters="Noise"), "filters", "list"),
        (
            lambda c: c.start_job("f", output_format="Mp4H264", filters=[], output_scaling="720"),
            "output_scaling",
            "2160",
        ),
        (lambda c: c.start_job("", output_format="Mp4H264", filters=[]), "file_id", "non-empty"),
        (lambda c: c.get_progress(""), "file_id", "non-empty"),
        (lambda c: c.delete_media("  "), "file_id", "non-empty"),
        (lambda c: c.upload_media("reel.mov"), "original_file_url", "https://"),
        (lambda c: c.upload_media("ftp://x/a.mov"), "original_file_url", "https://"),
        (lambda c: c.upload_media("https://x/a.mov", notify_url="nope"), "notify_url", "https://"),
        (lambda c: c.download("not a url", "."), "url", "https://"),
        (lambda c: c.download("http://public.example/x", "."), "url", "https://"),
    ],
    ids=[
        "format",
        "filter",
        "filters-not-list",
        "scaling",
        "start-empty-id",
        "progress-empty-id",
        "delete-blank-id",
        "upload-not-url",
        "upload-ftp",
        "notify-not-url",
        "download-not-url",
        "download-http-public",
    ],
)
async def test_bad_input_rejected_before_any_request(router, recuro, call, field, allowed):
    """Bad input raises a ValueError naming the field and the allowed values, and sends nothing."""
    catch_all = router.route().mock(return_value=ok())
    with pytest.raises(InvalidArgumentError) as info:
        await call(recuro)
    assert isinstance(info.value, ValueError)
    assert info.value.field == field
    assert field in str(info.value)
    assert allowed in str(info.value)
    assert catch_all.call_count == 0


async def test_server_catalog_wins_once_fetched(router, recuro):
    """After ListFilters, a filter the service added works and one it dropped is refused."""
    router.post(BASE, json__action="ListFilters").mock(
        return_value=ok([{"name": "SuperResolution", "description": "", "example_url": ""}])
    )
    start = router.post(BASE, json__action="StartJob").mock(return_value=ok())
    await recuro.list_filters()
    await recuro.start_job("f", output_format="Mp4H264", filters=["superresolution"])
    assert body_of(start)["filters"] == ["SuperResolution"]
    with pytest.raises(InvalidArgumentError, match="SuperResolution"):
        await recuro.start_job("f", output_format="Mp4H264", filters=["Noise"])


def test_missing_credentials_name_the_variables(monkeypatch):
    """Without arguments or environment, the error says which variables to set."""
    monkeypatch.delenv("RECURO_API_KEY")
    monkeypatch.delenv("RECURO_API_SECRET")
    with pytest.raises(ConfigurationError, match="RECURO_API_KEY and RECURO_API_SECRET"):
        RecuroClient()


@pytest.mark.parametrize(
    ("base_url", "accepted"),
    [
        ("https://www.recuromedia.com/api/1.0/", True),
        ("http://127.0.0.1:8080/api/1.0/", True),
        ("http://localhost:8080/api/1.0/", True),
        ("http://[::1]:8080/api/1.0/", True),
        ("http://www.recuromedia.com/api/1.0/", False),
        ("http://10.0.0.5/api/1.0/", False),
        ("ftp://127.0.0.1/", False),
    ],
)
async def test_https_enforced_except_loopback(base_url, accepted):
    """http:// is refused for any host but loopback, before any request."""
    if accepted:
        async with RecuroClient(base_url=base_url, rate_limit=None) as client:
            assert client.base_url.startswith(base_url.rstrip("/"))
    else:
        with pytest.raises(ConfigurationError):
            RecuroClient(base_url=base_url)


async def test_repr_and_errors_hide_the_secret(router, recuro, canary_secret):
    """Neither the client's repr nor an error raised through it shows the secret."""
    router.post(BASE, json__action="ListMedia").mock(
        return_value=httpx.Response(403, text=f"forbidden: {canary_secret}")
    )
    with pytest.raises(RecuroHTTPError) as info:
        await recuro.list_media()
    for text in (repr(recuro), str(info.value), repr(info.value), repr(recuro.limiter)):
        assert canary_secret not in text


async def test_wait_for_polls_until_the_state(router, recuro, clock):
    """wait_for polls GetProgress until the state (or a later one) is reached."""
    route = router.post(BASE, json__action="GetProgress").mock(
        side_effect=[
            ok({"state": "MediaAnalyze", "progress": 10}),
            ok({"state": "MediaAnalyze", "progress": 90}),
            ok({"state": "JobQueued", "progress": 0}),
        ]
    )
    seen = []
    async with clock.autoadvance():
        progress = await recuro.wait_for(
            "f", State.MEDIA_COMPLETED, poll_interval=1.0, on_progress=seen.append
        )
        assert progress.state is State.JOB_QUEUED
        assert route.call_count == 3
        assert len(seen) == 3


async def test_wait_for_times_out(router, recuro, clock):
    """wait_for raises WaitTimeoutError (a TimeoutError) when the deadline passes."""
    router.post(BASE, json__action="GetProgress").mock(
        return_value=ok({"state": "JobRunning", "progress": 5})
    )
    async with clock.autoadvance():
        with pytest.raises(TimeoutError) as info:
            await recuro.wait_for("f", State.JOB_COMPLETED, poll_interval=1.0, timeout=10.0)
        assert isinstance(info.value, WaitTimeoutError)
        assert "JobRunning" in str(info.value)


async def test_callers_http_client_stays_open(router, http):
    """A caller's http_client is not closed by the RecuroClient."""
    async with RecuroClient(base_url=BASE, http_client=http, rate_limit=None):
        pass
    assert not http.is_closed


async def test_client_cannot_be_reopened(http):
    """A closed client refuses to open again."""
    client = RecuroClient(base_url=BASE, http_client=http)
    async with client:
        pass
    with pytest.raises(RuntimeError, match="opened once"):
        async with client:
            pass


async def test_every_request_takes_a_limiter_slot(router, http, clock):
    """With a limit of 2 per 60 s, the third call waits for the first slot's period to pass."""
    router.post(BASE, json__action="ListMedia").mock(return_value=ok([]))
    async with (
        RecuroClient(
            base_url=BASE, http_client=http, clock=clock, rate_limit=RateLimit(2, 60.0)
        ) as recuro,
        clock.autoadvance(),
    ):
        for _ in range(3):
            await recuro.list_media()
    assert clock.monotonic() >= 60.0


async def test_delete_of_a_missing_id_is_success_unless_asked(router, recuro):
    """DeleteMedia of an id the service no longer knows succeeds; missing_ok=False raises instead."""
    router.post(BASE, json__action="DeleteMedia").mock(
        return_value=err(400, "MediaNotFound", "unknown")
    )
    assert await recuro.delete_media("gone") is None
    with pytest.raises(MediaNotFoundError):
        await recuro.delete_media("gone", missing_ok=False)


@pytest.mark.parametrize(
    "template", ["secret {secret} is not valid", "Authorization: {key}: {secret}"]
)
async def test_download_error_never_echoes_the_secret_alone(
    router, recuro, canary_key, canary_secret, tmp_path, template
):
    """A download refused with a body quoting the secret (without the key) masks it in the error."""
    body = template.format(key=canary_key, secret=canary_secret).encode()
    # a streamed body, as a real server sends it (the downloader reads it raw)
    router.get(URL).mock(return_value=httpx.Response(401, stream=httpx.ByteStream(body)))
    with pytest.raises(RecuroHTTPError) as info:
        await recuro.download(URL, tmp_path)
    assert canary_secret not in str(info.value)
    assert canary_secret not in info.value.body_excerpt


async def test_undecodable_response_to_upload_is_sent_not_retried(router, recuro):
    """A response that cannot be decoded proves the request arrived: TransportError(request_sent=True), once."""
    route = router.post(BASE, json__action="UploadMedia").mock(
        return_value=httpx.Response(
            200, headers={"Content-Encoding": "gzip"}, stream=httpx.ByteStream(b"not gzip at all")
        )
    )
    with pytest.raises(TransportError) as info:
        await recuro.upload_media("https://media.test/a.mov")
    assert info.value.request_sent is True
    assert route.call_count == 1


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"username": 123}, "username"),
        ({"password": ["x"]}, "password"),
        ({"username": "u\r\nX: y"}, "username"),
    ],
)
async def test_upload_credentials_must_be_strings(router, recuro, kwargs, field):
    """username/password of the wrong type or with line breaks are refused before any request."""
    catch_all = router.route().mock(return_value=ok({"file_id": "f"}))
    with pytest.raises(InvalidArgumentError) as info:
        await recuro.upload_media("https://media.test/a.mov", **kwargs)
    assert info.value.field == field
    assert catch_all.call_count == 0


@pytest.mark.parametrize("timeout", [-1, 0, float("nan"), "30"])
def test_timeout_is_validated_by_name(timeout):
    """A bad timeout is an error naming `timeout`, not an internal field."""
    with pytest.raises(InvalidArgumentError, match="timeout"):
        RecuroClient(timeout=timeout)
