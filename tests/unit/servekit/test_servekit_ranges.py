"""The serving kit's one Range/If-Range reading (RFC 9110) and its file responder, without sockets."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import anyio
import pytest

from _servekit._files import Selection, Source, if_range_matches, parse_range, select, send_file
from _servekit._http import Body, BodyTimeoutError, ClientDisconnectedError

DATA = bytes(range(256)) * 4  # 1024 bytes


@pytest.mark.parametrize(
    ("header", "size", "expected"),
    [
        ("bytes=0-9", 100, (0, 9)),
        ("bytes=10-", 100, (10, 99)),
        ("bytes=90-200", 100, (90, 99)),
        ("bytes=-10", 100, (90, 99)),
        ("bytes=-500", 100, (0, 99)),
        (" Bytes = 5 - 6 ", 100, (5, 6)),
        ("bytes=100-", 100, "unsatisfiable"),
        ("bytes=200-300", 100, "unsatisfiable"),
        ("bytes=-0", 100, "unsatisfiable"),
        ("bytes=-5", 0, "unsatisfiable"),
        ("bytes=9-3", 100, None),
        ("bytes=0-1,4-5", 100, None),
        ("items=0-1", 100, None),
        ("bytes=-", 100, None),
        ("bytes=abc", 100, None),
        ("", 100, None),
        (None, 100, None),
    ],
)
def test_parse_range(header, size, expected):
    """One satisfiable range is clipped; past the end is unsatisfiable; anything else is ignored."""
    assert parse_range(header, size) == expected


def test_if_range_needs_a_strong_equal_tag_or_the_exact_date():
    """A strong tag must equal ours; a weak tag never matches; a date must equal Last-Modified."""
    etag, date = '"abc"', "Wed, 21 Oct 2015 07:28:00 GMT"
    assert if_range_matches('"abc"', etag=etag, last_modified=date)
    assert not if_range_matches('W/"abc"', etag=etag, last_modified=date)
    assert not if_range_matches('"abc"', etag='W/"abc"', last_modified=date)
    assert not if_range_matches('"abd"', etag=etag, last_modified=date)
    assert if_range_matches(date, etag=etag, last_modified=date)
    assert not if_range_matches("Wed, 21 Oct 2015 07:28:01 GMT", etag=etag, last_modified=date)
    assert not if_range_matches("not a date", etag=etag, last_modified=date)
    assert not if_range_matches(date, etag=etag, last_modified=None)


def test_select_applies_if_range():
    """Range is honoured when If-Range holds, ignored (200, everything) when it does not."""
    tag = '"v1"'
    assert select(100, "bytes=5-", None, etag=tag, last_modified=None) == Selection(206, 5, 95, 100)
    assert select(100, "bytes=5-", tag, etag=tag, last_modified=None).status == 206
    assert select(100, "bytes=5-", '"v0"', etag=tag, last_modified=None) == Selection(
        200, 0, 100, 100
    )
    unsatisfiable = select(100, "bytes=100-", None, etag=tag, last_modified=None)
    assert (unsatisfiable.status, unsatisfiable.content_range) == (416, "bytes */100")


class Sink:
    """Collects the ASGI messages a response sends."""

    def __init__(self) -> None:
        self.messages: list[dict[str, Any]] = []

    async def __call__(self, message: Any) -> None:
        self.messages.append(dict(message))

    @property
    def headers(self) -> dict[str, str]:
        return {k.decode(): v.decode() for k, v in self.messages[0]["headers"]}

    @property
    def body(self) -> bytes:
        return b"".join(m.get("body", b"") for m in self.messages[1:])

    @property
    def ended(self) -> bool:
        return not self.messages[-1].get("more_body", False)


@pytest.fixture(params=["memory", "file"])
def source(request, tmp_path: Path) -> Source:
    if request.param == "memory":
        return Source(data=DATA)
    path = tmp_path / "f.bin"
    path.write_bytes(DATA)
    return Source(path=path)


async def test_a_206_omits_accept_ranges_unless_asked(source):
    """Like nginx, Accept-Ranges is named on a 200 and not on a 206, unless the switch says so."""
    whole, part, part_named = Sink(), Sink(), Sink()
    await send_file(whole, source, Selection(200, 0, len(DATA), len(DATA)), [])
    await send_file(part, source, Selection(206, 10, 20, len(DATA)), [])
    await send_file(
        part_named, source, Selection(206, 10, 20, len(DATA)), [], accept_ranges_on_206=True
    )
    assert whole.headers["accept-ranges"] == "bytes"
    assert (whole.body, whole.ended) == (DATA, True)
    assert "accept-ranges" not in part.headers
    assert part.headers["content-range"] == f"bytes 10-29/{len(DATA)}"
    assert part.headers["content-length"] == "20"
    assert (part.body, part.ended) == (DATA[10:30], True)
    assert part_named.headers["accept-ranges"] == "bytes"


async def test_a_cut_body_stops_after_n_bytes_without_ending(source):
    """The truncation hook sends exactly `cut` bytes and leaves the body unfinished for the caller."""
    sink, counted = Sink(), []
    sent = await send_file(
        sink, source, Selection(200, 0, len(DATA), len(DATA)), [], cut=300, on_sent=counted.append
    )
    assert sent == sum(counted) == 300
    assert sink.body == DATA[:300]
    assert not sink.ended


async def test_bandwidth_paces_the_body_on_the_clock(source):
    """The bandwidth hook spreads the body over size / bandwidth seconds."""
    sink = Sink()
    began = anyio.current_time()
    await send_file(sink, source, Selection(200, 0, len(DATA), len(DATA)), [], bandwidth=10_240)
    assert anyio.current_time() - began >= len(DATA) / 10_240 * 0.95
    assert sink.body == DATA


async def test_body_limits_and_deadline():
    """A body over its limit is drained and refused; a disconnect and a stalled body raise."""
    parts = [{"type": "http.request", "body": b"x" * 10, "more_body": True}] * 3 + [
        {"type": "http.request", "body": b"", "more_body": False}
    ]

    async def receive() -> Any:
        return parts.pop(0)

    assert await Body(receive).read(15, drain_limit=100) == (b"", True)
    assert parts == []

    async def gone() -> Any:
        return {"type": "http.disconnect"}

    with pytest.raises(ClientDisconnectedError):
        await Body(gone).read(15, drain_limit=100)

    async def stalled() -> Any:
        await anyio.sleep_forever()

    with anyio.fail_after(5), pytest.raises(BodyTimeoutError):
        await Body(stalled, timeout=0.05).read(15, drain_limit=100)
