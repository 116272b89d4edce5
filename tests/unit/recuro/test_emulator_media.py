"""The emulator's pure parts: container sniffing and the deterministic restoration."""

from __future__ import annotations

import pytest

from recuro_async.testing import expected_restored_bytes, restored_size, sniff_container
from recuro_async.testing._media import JobSettings, name_from_url, safe_name


@pytest.mark.parametrize(
    ("head", "name", "container"),
    [
        (bytes.fromhex("1A45DFA3") + b"\x93\x42\x82", "x", "MKV"),
        (b"\x00\x00\x00\x14ftypqt  ", "x", "MOV"),
        (b"\x00\x00\x00\x08wide\x00\x00", "x", "MOV"),
        (b"\x00\x00\x00\x20ftypisom", "x.mov", "MP4"),
        (b"RIFF\x24\x00\x00\x00WAVEfmt ", "x", "WAV"),
        (b"ID3\x03\x00", "x", "MP3"),
        (b"\xff\xfb\x90\x64", "x", "MP3"),
        (bytes.fromhex("000001BA44"), "x", "MPG"),
        (bytes.fromhex("000001B3"), "x", "MPG"),
        (bytes.fromhex("060E2B34020501") + b"\x00" * 10, "x", "MXF"),
        (b"\x00" * 100 + bytes.fromhex("060E2B34"), "x", "MXF"),
        (b"\x00\x01\x02\x03", "clip.MKV", "MKV"),
        (b"\x00\x01\x02\x03", "clip.mpeg", "MPG"),
        (b"\x00\x01\x02\x03", "clip.avi", None),
        (b"\x00\x01\x02\x03", "", None),
        (b"\x89PNG\r\n\x1a\n", "clip.mov", None),
        (b"<!DOCTYPE html>", "clip.mp4", None),
        (b"\xff\xf1\x50\x80", "x", None),
    ],
)
def test_sniff_container(head, name, container):
    """Magic numbers decide when present, foreign formats are refused, else the extension decides."""
    assert sniff_container(head, name) == container


def test_restoration_is_header_plus_keyed_substitution():
    """The restored bytes are a header naming the settings followed by a byte-for-byte substitution."""
    original = bytes(range(256)) * 4
    out = expected_restored_bytes(
        original, output_format="Mp4H264", filters=["Noise"], output_scaling=None
    )
    header, body = out.split(b"\n", 1)
    assert header == b"RECURO-RESTORED/1 format=Mp4H264 scaling=source filters=Noise"
    assert len(body) == len(original)
    assert sorted(body[:256]) == list(range(256))
    assert body != original


def test_restoration_ignores_case_order_and_repeats():
    """Names match case-insensitively and filters are a set."""
    original = b"some media bytes"
    a = expected_restored_bytes(
        original, output_format="mp4h264", filters=["noise", "Colorize"], output_scaling=1080
    )
    b = expected_restored_bytes(
        original,
        output_format="Mp4H264",
        filters=["Colorize", "NOISE", "Noise"],
        output_scaling="1080",
    )
    assert a == b


def test_restoration_depends_on_every_setting():
    """Changing the format, a filter or the scaling changes the bytes."""
    original = bytes(range(256))
    base = {"output_format": "Mp4H264", "filters": ["Noise"], "output_scaling": None}
    variants = [
        base,
        {**base, "output_format": "Mp4Hevc"},
        {**base, "filters": ["ReGrain"]},
        {**base, "output_scaling": "2160"},
    ]
    outputs = {expected_restored_bytes(original, **v)[-256:] for v in variants}
    assert len(outputs) == len(variants)


@pytest.mark.parametrize(
    "settings",
    [
        {"output_format": "Avi", "filters": [], "output_scaling": None},
        {"output_format": "Mp4H264", "filters": ["Blur"], "output_scaling": None},
        {"output_format": "Mp4H264", "filters": [], "output_scaling": "720"},
    ],
)
def test_unknown_settings_raise_value_error(settings):
    """An unknown format, filter or scaling raises ValueError naming it."""
    with pytest.raises(ValueError, match="unknown"):
        expected_restored_bytes(b"x", **settings)


def test_chunked_restoration_equals_whole():
    """The substitution is positionless, so restoring chunk by chunk gives the same bytes."""
    settings = JobSettings.of("MxfDnxHr444", ["Colorize"], "2160")
    data = bytes(range(256)) * 1000
    table = settings.table()
    chunked = b"".join(data[i : i + 999].translate(table) for i in range(0, len(data), 999))
    assert settings.header() + chunked == expected_restored_bytes(
        data, output_format="MxfDnxHr444", filters=["Colorize"], output_scaling="2160"
    )
    assert restored_size(
        len(data), output_format="MxfDnxHr444", filters=["Colorize"], output_scaling="2160"
    ) == len(settings.header()) + len(data)


@pytest.mark.parametrize(
    ("url", "name"),
    [
        ("https://h/a/b/reel%201.mov?x=1", "reel 1.mov"),
        ("https://h/", ""),
        ("https://h/..%2F..%2Fetc%2Fpasswd", "passwd"),
        ("https://h/a%22b%0d.mov", "ab.mov"),
    ],
)
def test_names_from_urls_are_safe(url, name):
    """File names taken from URLs keep no directories, quotes or control characters."""
    assert name_from_url(url) == name
    assert "/" not in safe_name(name)
