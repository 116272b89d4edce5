"""The MediaCrush emulator's media rules: file ids, sniffing, derived files, samples (pure, no HTTP)."""

from __future__ import annotations

import base64
import hashlib
import io
import struct
import zlib

import pytest

from mediacrush_async.testing import (
    SAMPLE_KINDS,
    content_hash_of,
    expected_derived_bytes,
    sample_media,
)
from mediacrush_async.testing._blobs import SpoolWriter
from mediacrush_async.testing._derived import plan_outputs, write_derived
from mediacrush_async.testing._media import ENTRY_TYPES, default_flags, metadata_for, sniff


def reference_id(data: bytes) -> str:
    """The MediaCrush-cli formula: md5sum | base64 | tr '+/' '-_' | cut -c1-12."""
    digest = hashlib.md5(data, usedforsecurity=False).digest()
    return base64.b64encode(digest).decode()[:12].translate(str.maketrans("+/", "-_"))


@pytest.mark.parametrize("data", [b"", b"cat", bytes(range(256)) * 7, b"\xfb\xff" * 1000])
def test_content_hash_matches_the_documented_formula(data):
    """`content_hash_of` is base64(MD5) cut to 12 characters with `+`->`-` and `/`->`_`."""
    assert content_hash_of(data) == reference_id(data)
    assert len(content_hash_of(data)) == 12


def test_content_hash_uses_the_url_safe_alphabet():
    """Ids whose base64 holds `+` or `/` come out with `-` and `_` instead."""
    seen = "".join(content_hash_of(str(i).encode()) for i in range(400))
    assert "-" in seen
    assert "_" in seen
    assert "+" not in seen
    assert "/" not in seen


@pytest.mark.parametrize(
    ("kind", "name", "blob_type"),
    [
        ("gif", "gif", "video"),
        ("png", "png", "image"),
        ("jpeg", "jpeg", "image"),
        ("mp4", "mp4", "video"),
        ("webm", "webm", "video"),
        ("ogg", "ogg", "audio"),
        ("mp3", "mp3", "audio"),
        ("wav", "wav", "audio"),
        ("svg", "svg", "image"),
        ("bmp", "bmp", "image"),
    ],
)
def test_samples_sniff_as_their_kind(kind, name, blob_type):
    """Each sample is recognised by its magic bytes and mapped to the server's blob type."""
    detected = sniff(sample_media(kind))
    assert detected is not None
    assert detected.name == name
    assert detected.proc.blob_type == blob_type


def test_text_is_not_media():
    """The `text` sample and random prose are not recognised as media."""
    assert sniff(sample_media("text")) is None
    assert sniff(b"Hello, world!\n" * 10) is None


def test_samples_vary_with_seed_and_are_stable():
    """The same kind and seed give the same bytes; another seed gives another file id."""
    assert sample_media("gif", seed=3) == sample_media("gif", seed=3)
    assert content_hash_of(sample_media("gif", seed=3)) != content_hash_of(
        sample_media("gif", seed=4)
    )


def test_sample_rejects_unknown_kind():
    """An unknown sample kind names the allowed ones."""
    with pytest.raises(ValueError, match="gif"):
        sample_media("tiff")
    assert "text" in SAMPLE_KINDS


def test_gif_plan_lists_original_then_videos_and_a_jpg_thumbnail():
    """A GIF lists gif, mp4, webm, ogv in `files` and a `.jpg` in `extras` (MEDIACRUSH.md 6)."""
    kind = sniff(sample_media("gif"))
    assert kind is not None
    plan = plan_outputs(kind, "gif")
    assert [(o.ext, o.role, o.stage) for o in plan] == [
        ("gif", "original", "processing"),
        ("mp4", "file", "ready"),
        ("webm", "file", "ready"),
        ("ogv", "file", "done"),
        ("jpg", "extra", "ready"),
    ]
    assert plan_outputs(kind, "gif", png_thumbnails=True)[-1].ext == "png"


def test_mp4_plan_skips_the_name_of_the_original():
    """An `.mp4` original is not listed twice: files are mp4 (original), webm, ogv."""
    kind = sniff(sample_media("mp4"))
    assert kind is not None
    assert [o.ext for o in plan_outputs(kind, "mp4")] == ["mp4", "webm", "ogv", "jpg"]


def test_jpeg_uploaded_as_jpe_lists_a_jpg_that_is_never_created():
    """A JPEG stored as `.jpe` also lists `/<h>.jpg`, which never exists (node-mediacrush fixtures)."""
    kind = sniff(sample_media("jpeg"))
    assert kind is not None
    plan = plan_outputs(kind, "jpe")
    assert [(o.ext, o.stage) for o in plan] == [("jpe", "processing"), ("jpg", "never")]
    data = sample_media("jpeg")
    with pytest.raises(ValueError, match="never creates"):
        expected_derived_bytes(data, f"{content_hash_of(data)}.jpg", original_ext="jpe")


def test_audio_plan_is_mp3_then_ogg():
    """Audio lists mp3 (ready) and ogg (done) and has no extras."""
    kind = sniff(sample_media("wav"))
    assert kind is not None
    assert [(o.ext, o.stage) for o in plan_outputs(kind, "wav")] == [
        ("wav", "processing"),
        ("mp3", "ready"),
        ("ogg", "done"),
    ]


def test_entry_types_are_only_the_servers_extension_table():
    """Only the nine extensions of `mimeinfo.py` have a `type` in derived entries."""
    assert sorted(ENTRY_TYPES) == ["gif", "jpg", "mp3", "mp4", "ogg", "ogv", "png", "svg", "webm"]


@pytest.mark.parametrize("kind", ["gif", "mp4", "webm", "ogg", "mp3", "wav", "bmp"])
def test_derived_files_are_deterministic_and_sniff_as_their_format(kind):
    """Every created output is a stable function of the original and looks like its own format."""
    data = sample_media(kind, size=20_000)
    detected = sniff(data)
    assert detected is not None
    h = content_hash_of(data)
    for out in plan_outputs(detected, detected.ext):
        if out.stage == "never" or out.role == "original":
            continue
        first = expected_derived_bytes(data, f"/{h}.{out.ext}")
        assert first == expected_derived_bytes(data, f"{h}.{out.ext}")
        assert first != data
        again = sniff(first)
        assert again is not None
        assert out.ext in {again.ext, again.name} or (out.ext == "jpg" and again.name == "jpeg")


def test_streamed_derivation_equals_the_in_memory_one(tmp_path):
    """Writing a derived file in chunks through a spilling writer gives the same bytes."""
    data = sample_media("mp4", size=3_000_000)
    kind = sniff(data)
    assert kind is not None
    h = content_hash_of(data)
    for ext in ("webm", "ogv", "jpg"):
        writer = SpoolWriter(tmp_path, threshold=1000)
        write_derived(kind, h, ext, original_ext="mp4", src=io.BytesIO(data), dst=writer)
        blob = writer.finish()
        assert blob.path is not None
        assert blob.path.read_bytes() == expected_derived_bytes(data, f"{h}.{ext}")
        blob.discard()
        assert not blob.path.exists()


def test_jpeg_original_loses_exif_and_comments():
    """The served JPEG drops APP1 and COM segments (`jhead -purejpg`) and keeps the image data."""
    data = sample_media("jpeg")
    served = expected_derived_bytes(data, f"{content_hash_of(data)}.jpg")
    assert b"Exif" in data
    assert b"Exif" not in served
    assert b"MediaCrush emulator" not in served
    assert served.startswith(b"\xff\xd8\xff\xe0")
    assert served.endswith(data[-100:])
    assert content_hash_of(served) != content_hash_of(data)


def test_png_original_loses_text_chunks():
    """The final PNG original drops tEXt chunks (`optipng`), keeping IHDR, IDAT and IEND."""
    data = sample_media("png")
    served = expected_derived_bytes(data, f"{content_hash_of(data)}.png")
    assert b"tEXt" in data
    assert b"tEXt" not in served
    for chunk in (b"IHDR", b"IDAT", b"IEND"):
        assert chunk in served


def test_png_without_text_is_served_unchanged():
    """A PNG with nothing to strip is served byte for byte."""
    ihdr = struct.pack(">IIBBBBB", 2, 2, 8, 2, 0, 0, 0)

    def chunk(kind: bytes, body: bytes) -> bytes:
        return (
            struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
        )

    data = (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", zlib.compress(bytes(16)))
        + chunk(b"IEND", b"")
    )
    assert expected_derived_bytes(data, f"{content_hash_of(data)}.png") == data


def test_gif_original_copy_is_the_upload():
    """A GIF's original is served as uploaded."""
    data = sample_media("gif")
    assert expected_derived_bytes(data, f"{content_hash_of(data)}.gif") == data


def test_expected_bytes_rejects_other_hashes_and_non_media():
    """A name of another hash, a name without extension, or non-media bytes raise ValueError."""
    data = sample_media("gif")
    with pytest.raises(ValueError, match="not a file of these bytes"):
        expected_derived_bytes(data, "AAAAAAAAAAAA.mp4")
    with pytest.raises(ValueError, match="<hash>"):
        expected_derived_bytes(data, content_hash_of(data))
    text = sample_media("text")
    with pytest.raises(ValueError, match="not media"):
        expected_derived_bytes(text, f"{content_hash_of(text)}.png")


def test_flag_defaults_per_type():
    """GIFs autoplay, loop and mute; other video has them off; images and audio only have nsfw."""
    gif, mp4, png, mp3 = (sniff(sample_media(k)) for k in ("gif", "mp4", "png", "mp3"))
    assert gif is not None
    assert mp4 is not None
    assert png is not None
    assert mp3 is not None
    assert default_flags(gif) == {"autoplay": True, "loop": True, "mute": True, "nsfw": False}
    assert default_flags(mp4) == {"autoplay": False, "loop": False, "mute": False, "nsfw": False}
    assert default_flags(png) == {"nsfw": False}
    assert default_flags(mp3) == {"nsfw": False}
    assert default_flags(gif, with_nsfw=False) == {"autoplay": True, "loop": True, "mute": True}


def test_metadata_per_type():
    """Video metadata has dimensions and audio/video marks; audio a duration; images dimensions."""
    gif = sample_media("gif")
    kind = sniff(gif)
    assert kind is not None
    assert metadata_for(kind, gif, len(gif)) == {
        "dimensions": {"height": 32, "width": 48},
        "has_audio": False,
        "has_subtitles": False,
        "has_video": True,
    }
    wav = sample_media("wav", size=16_044)
    kind = sniff(wav)
    assert kind is not None
    assert metadata_for(kind, wav, len(wav)) == {
        "duration": 1.0,
        "has_audio": True,
        "has_video": False,
    }
    jpeg = sample_media("jpeg")
    kind = sniff(jpeg)
    assert kind is not None
    assert metadata_for(kind, jpeg, len(jpeg)) == {"dimensions": {"height": 30, "width": 50}}
    svg = sample_media("svg")
    kind = sniff(svg)
    assert kind is not None
    assert metadata_for(kind, svg, len(svg)) is None
