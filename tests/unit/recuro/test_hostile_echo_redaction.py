"""A hostile server echoing the Authorization header into every string it sends back (issue 11, case 7).

The echo goes into `error_code` (raw, after 195 filler characters so a 200-character cut would split it,
and JSON-escaped), `error_message`, a non-JSON error page, a malformed JSON body, and a wrongly typed
field of a 200. The secret must appear nowhere: not in the exception's str, repr, args or attributes, not
anywhere along its `__cause__`/`__context__` chain, and in no log record.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator

import httpx
import pytest
import respx
from fakeclock import FakeClock

from recuro_async import RecuroClient, RecuroError

BASE = "https://api.test/api/1.0/"
KEY = "hostile-key"
# `/` and `"` make a JSON echo differ from the raw value (`\/`, `\"`)
SECRET = 'Se/cr"et-9QzW+x=='
HEADER = f"{KEY}:{SECRET}"
# pieces of the secret that must not show up either (an excerpt cut too early leaks a prefix)
PIECES = (SECRET, SECRET[:6], SECRET[-6:], "Se/cr", 'cr"et', "9QzW")


def _json_escaped(value: str) -> str:
    """`value` as a JSON string body with `/` escaped too (what PHP's json_encode sends)."""
    return json.dumps(value)[1:-1].replace("/", "\\/")


def _unicode_escaped(value: str) -> str:
    return "".join(f"\\u{ord(c):04x}" for c in value)


def _error_body(code: str, message: str = "nope") -> bytes:
    """An API error body; `code` and `message` go in as JSON string contents (escape `"` yourself)."""
    return ('{"error_code": "' + code + '", "error_message": "' + message + '"}').encode()


def _quoted(value: str) -> str:
    """`value` as JSON string contents, only what JSON requires escaped."""
    return json.dumps(value, ensure_ascii=False)[1:-1]


# filler that puts a 200-character cut six characters into the secret
FILL = 200 - len(KEY) - 1 - 6


def _walk(exc: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    stack = [exc]
    while stack:
        item = stack.pop()
        if id(item) in seen:
            continue
        seen.add(id(item))
        yield item
        stack.extend(e for e in (item.__cause__, item.__context__) if e is not None)
        stack.extend(getattr(item, "exceptions", ()))


def _texts(exc: BaseException) -> list[str]:
    texts = []
    for item in _walk(exc):
        texts += [str(item), repr(item), repr(item.args), repr(vars(item))]
        texts += [str(value) for value in (*item.args, *vars(item).values())]
    return texts


def _assert_clean(texts: list[str]) -> None:
    for text in texts:
        for piece in PIECES:
            assert piece not in text, f"{piece!r} leaked in {text[:300]!r}"
        assert _json_escaped(SECRET) not in text
        assert _unicode_escaped(SECRET)[:36] not in text


def _body(text: str) -> Callable[[httpx.Request], httpx.Response]:
    def respond(request: httpx.Request) -> httpx.Response:
        assert request.headers["authorization"] == HEADER  # the echo is the real header
        return httpx.Response(400, content=text.encode())

    return respond


CASES = {
    "code-raw": lambda h: _error_body(_quoted(h)),
    "code-straddling-200": lambda h: _error_body("E" * FILL + _quoted(h)),
    "code-json-escaped": lambda h: _error_body(_json_escaped(h)),
    "code-unicode-escaped": lambda h: _error_body(_unicode_escaped(h)),
    "message-json-escaped": lambda h: _error_body("BadRequest", _json_escaped(h)),
    "page-raw": lambda h: f"<html><body>Bad header: {h}</body></html>".encode(),
    "page-straddling-200": lambda h: ("x" * FILL + h + " and more").encode(),
    "page-json-escaped": lambda h: ('{"echo": "' + _json_escaped(h)).encode(),
    "page-unicode-escaped": lambda h: _unicode_escaped(h).encode(),
    "page-cut-at-64k": lambda h: ("z" * (64 * 1024 - 5) + h).encode(),
}


@pytest.fixture
def router():
    return respx.Router(assert_all_called=False)


@pytest.fixture
async def hostile(router):
    async with (
        httpx.AsyncClient(transport=httpx.MockTransport(router.async_handler)) as http,
        RecuroClient(KEY, SECRET, base_url=BASE, http_client=http, clock=FakeClock()) as client,
    ):
        yield client


@pytest.fixture
def records(caplog) -> list[logging.LogRecord]:
    caplog.set_level(logging.DEBUG)
    return caplog.records


def _record_texts(records: list[logging.LogRecord]) -> list[str]:
    return [f"{r.getMessage()} {r.__dict__!r}" for r in records]


@pytest.mark.parametrize("case", sorted(CASES))
async def test_an_echoed_header_never_reaches_the_error_or_the_log(router, hostile, records, case):
    raw = CASES[case](HEADER)
    router.post(BASE).mock(side_effect=_body(raw.decode()))
    with pytest.raises(RecuroError) as info:
        await hostile.get_progress("a.mov")
    logging.getLogger("recuro_async").debug("failed", exc_info=info.value)
    _assert_clean(_texts(info.value))
    _assert_clean(_record_texts(records))


async def test_the_error_code_is_masked_but_still_classifies(router, hostile):
    """A not-found code with the echo in it is still MediaNotFound; its stored code is masked."""
    from recuro_async import MediaNotFoundError

    router.post(BASE).mock(
        return_value=httpx.Response(404, content=_error_body("MediaNotFound " + _quoted(HEADER)))
    )
    with pytest.raises(MediaNotFoundError) as info:
        await hostile.get_progress("a.mov")
    assert info.value.error_code == "MediaNotFound ***"


async def test_a_masked_rate_limit_code_still_classifies(router):
    """Classification reads the raw code: `RateLimit<secret>` is still a refusal."""
    from recuro_async import RateLimitedError

    router.post(BASE).mock(
        return_value=httpx.Response(400, content=_error_body("RateLimit" + _json_escaped(HEADER)))
    )
    async with (
        httpx.AsyncClient(transport=httpx.MockTransport(router.async_handler)) as http,
        RecuroClient(
            KEY, SECRET, base_url=BASE, http_client=http, clock=FakeClock(), max_retries=0
        ) as client,
    ):
        with pytest.raises(RateLimitedError) as info:
            await client.delete_media("a.mov")
    assert info.value.error_code == "RateLimit***"
    _assert_clean(_texts(info.value))


@pytest.mark.parametrize(
    "body",
    [
        {"file_id": "a.mov", "state": "MediaAnalyze", "progress": HEADER},
        {"state": "JobCompleted", "progress": 5, "restored_file_url": ["x", HEADER]},
    ],
    ids=["float-field", "list-in-str-field"],
)
async def test_a_200_with_the_echo_in_a_wrong_field_leaks_nothing(router, hostile, records, body):
    """cattrs quotes the bad value in its own exception: it must not ride along as the cause."""
    router.post(BASE).mock(return_value=httpx.Response(200, json=body))
    with pytest.raises(RecuroError) as info:
        await hostile.get_progress("a.mov")
    assert info.value.__cause__ is None
    assert info.value.__suppress_context__ or info.value.__context__ is None
    _assert_clean(_texts(info.value))
    _assert_clean(_record_texts(records))


async def test_a_200_with_the_echo_as_a_key_leaks_nothing(router, hostile):
    """A list of media whose items use the header as a key: the path errors are masked too."""
    router.post(BASE).mock(return_value=httpx.Response(200, json=[{HEADER: 1}]))
    with pytest.raises(RecuroError) as info:
        await hostile.list_media()
    _assert_clean(_texts(info.value))


async def test_a_200_that_is_not_json_leaks_nothing(router, hostile, records):
    """The JSON decoder's error keeps the whole document: it must not ride along as the cause."""
    router.post(BASE).mock(return_value=httpx.Response(200, content=f"oops {HEADER}".encode()))
    with pytest.raises(RecuroError) as info:
        await hostile.get_progress("a.mov")
    assert info.value.__cause__ is None
    _assert_clean(_texts(info.value))
    _assert_clean(_record_texts(records))


@pytest.mark.parametrize("echo", [HEADER, _json_escaped(HEADER)], ids=["decoded", "escaped"])
async def test_a_200_quoting_the_header_in_a_value_is_masked(router, hostile, echo):
    """A state the document does not list is kept as `raw_state` and shown, or raised by wait_for:
    it must not carry the credential."""
    body = '{"state": "' + _quoted(echo) + '", "progress": 5}'
    router.post(BASE).mock(return_value=httpx.Response(200, content=body.encode()))
    progress = await hostile.get_progress("a.mov")
    assert progress.raw_state == "***"
    for piece in PIECES:
        assert piece not in repr(progress)


async def test_a_200_without_the_header_is_left_alone(router, hostile):
    """Masking applies only to answers that quote the credential; a normal answer is untouched."""
    router.post(BASE).mock(
        return_value=httpx.Response(
            200,
            json={"state": "JobCompleted", "progress": 100, "restored_file_url": "https://x/y%2F"},
        )
    )
    progress = await hostile.get_progress("a.mov")
    assert progress.restored_file_url == "https://x/y%2F"
    assert progress.raw_state == "JobCompleted"
