"""The MediaCrush emulator's wire helpers: multipart parsing, ranges, JSON format, limits, faults, config."""

from __future__ import annotations

import json

import attrs
import pytest

from mediacrush_async.testing import EmulatorConfig
from mediacrush_async.testing._faults import FaultDecision, FaultPlan
from mediacrush_async.testing._http import dumps
from mediacrush_async.testing._multipart import (
    MultipartError,
    MultipartParser,
    PartInfo,
    boundary_of,
)
from mediacrush_async.testing._ratelimit import FixedWindowCounter


class Collect:
    """A part sink that keeps what it gets."""

    def __init__(self, info: PartInfo, done: list[tuple[PartInfo, bytes]]) -> None:
        self.info = info
        self.data = bytearray()
        self.done = done

    def write(self, data: bytes, /) -> None:
        self.data += data

    def end(self) -> None:
        self.done.append((self.info, bytes(self.data)))


def parse(body: bytes, boundary: bytes, piece: int) -> list[tuple[PartInfo, bytes]]:
    done: list[tuple[PartInfo, bytes]] = []
    parser = MultipartParser(boundary, lambda info: Collect(info, done))
    for i in range(0, len(body), piece):
        parser.feed(body[i : i + piece])
    parser.close()
    return done


PAYLOAD = b"\r\n--not-quite\r\n" + bytes(range(256)) * 40 + b"\r\n--boundar"
BODY = (
    b"preamble\r\n--XyZ\r\n"
    b'Content-Disposition: form-data; name="list"\r\n\r\n'
    b"abc,def\r\n--XyZ\r\n"
    b'Content-Disposition: form-data; name="file"; filename="c a t.gif"\r\n'
    b"Content-Type: image/gif\r\n\r\n" + PAYLOAD + b"\r\n--XyZ--\r\nepilogue"
)


@pytest.mark.parametrize("piece", [1, 2, 7, 64, 4096, len(BODY)])
def test_multipart_parses_whatever_the_chunking(piece):
    """Fields and file parts come out identical whether the body arrives in 1-byte or whole chunks."""
    parts = parse(BODY, b"XyZ", piece)
    assert [(p.name, p.filename, p.content_type) for p, _ in parts] == [
        ("list", None, None),
        ("file", "c a t.gif", "image/gif"),
    ]
    assert parts[0][1] == b"abc,def"
    assert parts[1][1] == PAYLOAD


def test_multipart_without_closing_boundary_is_an_error():
    """A body cut before the closing delimiter raises MultipartError on close."""
    parser = MultipartParser(b"XyZ", lambda info: Collect(info, []))
    parser.feed(BODY[:200])
    with pytest.raises(MultipartError):
        parser.close()


def test_multipart_empty_filename_still_marks_a_file_part():
    """`filename=""` makes a file part (Werkzeug puts it in request.files)."""
    body = b'--b\r\nContent-Disposition: form-data; name="file"; filename=""\r\n\r\nx\r\n--b--\r\n'
    parts = parse(body, b"b", 5)
    assert parts[0][0].filename == ""


def test_boundary_of_reads_quoted_and_plain_values():
    """The boundary comes from the Content-Type; other types give None."""
    assert boundary_of('multipart/form-data; boundary="a b"') == b"a b"
    assert boundary_of("multipart/form-data; boundary=----x") == b"----x"
    assert boundary_of("application/x-www-form-urlencoded") is None
    assert boundary_of("multipart/form-data") is None


def test_pretty_json_has_python2_trailing_spaces():
    """Indented output sorts keys and leaves a space after each line-ending comma, like Python 2."""
    text = dumps({"b": [1, 2], "a": True}, pretty=True)
    assert text == '{\n  "a": true, \n  "b": [\n    1, \n    2\n  ]\n}'


def test_compact_json_keeps_spaces_after_separators():
    """The XMLHttpRequest form is one line with `", "` and `": "` separators."""
    assert dumps({"b": 1, "a": "é"}, pretty=False) == '{"a": "\\u00e9", "b": 1}'
    assert json.loads(dumps({"x": None}, pretty=False)) == {"x": None}


def test_fixed_window_counts_before_checking_and_never_extends():
    """Units are added before the `>=` check, refused ones count too, and the window is fixed."""
    now = [0.0]
    counter = FixedWindowCounter(100, 10.0, lambda: now[0])
    assert counter.add("a", 60) is False
    now[0] = 9.0
    assert counter.add("a", 40) is True
    assert counter.add("a", 1) is True
    assert counter.used("a") == 101
    assert counter.add("b", 1) is False
    now[0] = 10.0
    assert counter.used("a") == 0
    assert counter.add("a", 99) is False


def test_fixed_window_exempt_addresses():
    """Whitelisted addresses are never refused."""
    counter = FixedWindowCounter(1, 10.0, lambda: 0.0, exempt=["10.0.0.1"])
    assert counter.add("10.0.0.1", 10**9) is False


def test_fault_plan_is_reproducible_per_seed():
    """The same seed gives the same fault sequence; another seed another one."""
    cfg = EmulatorConfig(
        seed=7, fault_rate=0.3, drop_rate=0.2, truncate_rate=0.5, latency_jitter=1.0
    )
    first = _draws(cfg, 200)
    other = _draws(attrs.evolve(cfg, seed=8), 200)
    assert first == _draws(cfg, 200)
    assert [d.error for d in first] != [d.error for d in other]
    assert 30 < sum(d.error for d in first) < 90
    assert all(0.0 <= d.delay <= 1.0 for d in first)


def _draws(cfg: EmulatorConfig, n: int) -> list[FaultDecision]:
    plan = FaultPlan(cfg)
    return [plan.next() for _ in range(n)]


def test_processing_failures_depend_on_seed_hash_and_attempt():
    """Processing outcomes are drawn per (seed, hash, attempt), independent of request order."""
    cfg = EmulatorConfig(seed=1, failure_rate=0.5)
    plan = FaultPlan(cfg)
    outcomes = [plan.processing_outcome(f"h{i}", 0) for i in range(100)]
    assert outcomes == [FaultPlan(cfg).processing_outcome(f"h{i}", 0) for i in range(100)]
    assert {o for o in outcomes if o} <= {"error", "timeout", "internal_error"}
    assert 20 < sum(o is not None for o in outcomes) < 80
    assert FaultPlan(EmulatorConfig()).processing_outcome("h0", 0) is None


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("time_scale", 0),
        ("time_scale", float("nan")),
        ("fault_rate", 1.5),
        ("byte_limit", 0),
        ("byte_window", -1.0),
        ("max_url_size", True),
        ("non_media_status", "timeout"),
        ("non_media_status", "broken"),
        ("failure_statuses", ("done",)),
        ("cdn_url", "cdn.example"),
        ("bandwidth", 0),
        ("doc_mode_415", "yes"),
    ],
)
def test_config_rejects_bad_values(field, value):
    """Invalid settings fail at construction with a message naming the field."""
    with pytest.raises((ValueError, TypeError), match=field):
        EmulatorConfig(**{field: value})


def test_config_scales_time():
    """`scaled` multiplies emulated seconds by `time_scale`."""
    assert EmulatorConfig(time_scale=0.01).scaled(3600) == pytest.approx(36.0)
