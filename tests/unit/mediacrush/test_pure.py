"""Pure pieces: the status enum, the converter's strictness, the content hash, input validation, exports."""

from __future__ import annotations

import base64
import hashlib
import io

import pytest

import mediacrush_async
from mediacrush_async import (
    Album,
    ByteBudget,
    ConfigurationError,
    File,
    InvalidArgumentError,
    MediaCrushError,
    ProcessingStatus,
    ResponseFormatError,
    content_hash,
)
from mediacrush_async import _validate as v
from mediacrush_async._converter import BlobObject, structure


def md5_id(data: bytes) -> str:
    """The id formula written out independently: base64(md5)[:12] with + -> - and / -> _."""
    encoded = base64.b64encode(hashlib.md5(data, usedforsecurity=False).digest()).decode()
    return encoded[:12].replace("+", "-").replace("/", "_")


# ---------------------------------------------------------------- enum


@pytest.mark.parametrize(
    ("value", "terminal", "retryable"),
    [
        ("pending", False, False),
        ("processing", False, False),
        ("ready", False, False),
        ("done", True, False),
        ("error", True, False),
        ("timeout", True, False),
        ("unrecognised", True, False),
        ("internal_error", True, True),
    ],
)
def test_status_marks(value, terminal, retryable):
    """Each server status has the documented terminal and retryable marks."""
    status = ProcessingStatus(value)
    assert status.value == value
    assert status.is_terminal is terminal
    assert status.is_retryable is retryable


def test_status_spellings_and_unknown():
    """Case and the American `unrecognized` are tolerated; anything else is UNKNOWN and not terminal."""
    assert ProcessingStatus("DONE") is ProcessingStatus.DONE
    assert ProcessingStatus("unrecognized") is ProcessingStatus.UNRECOGNISED
    assert ProcessingStatus("something-new") is ProcessingStatus.UNKNOWN
    assert not ProcessingStatus.UNKNOWN.is_terminal
    assert ProcessingStatus.READY.is_playable
    assert ProcessingStatus.ERROR.is_failure
    assert not ProcessingStatus.DONE.is_failure


# ---------------------------------------------------------------- converter


def test_strict_strings_and_bools():
    """null never becomes "None" and "false" never becomes True (the cattrs coercion traps)."""
    with pytest.raises(ResponseFormatError):
        structure({"hash": None}, BlobObject)
    blob = structure({"hash": "a" * 12, "flags": {"nsfw": "false", "loop": True}}, File)
    assert blob.flags == {"nsfw": False, "loop": True}
    with pytest.raises(ResponseFormatError) as caught:
        structure({"hash": "a" * 12, "flags": {"nsfw": 1}}, File)
    assert "flags" in str(caught.value)


def test_lenient_numbers_but_not_bools():
    """Numbers may come as numeric strings; a bool is never a number."""
    assert structure({"hash": "a" * 12, "compression": "8.93"}, File).compression == 8.93
    with pytest.raises(ResponseFormatError):
        structure({"hash": "a" * 12, "compression": True}, File)
    with pytest.raises(ResponseFormatError):
        structure({"hash": "a" * 12, "compression": "NaN"}, File)


def test_union_normalises_keys_before_dispatch():
    """Upper-case keys and a missing `type` with `blob_type: album` still dispatch to Album (STYLE 4 trap 2)."""
    assert isinstance(
        structure({"TYPE": "Application/Album", "HASH": "6ecd2bbd34ec"}, BlobObject), Album
    )
    assert isinstance(structure({"blob_type": "album", "hash": "6ecd2bbd34ec"}, BlobObject), Album)
    blob = structure({"Type": "image/gif", "Hash": "a" * 12, "Blob_Type": "VIDEO"}, BlobObject)
    assert isinstance(blob, File)
    assert (blob.type, blob.blob_type) == ("image/gif", "video")


def test_unknown_keys_are_ignored_and_metadata_extras_kept():
    """Unknown keys are ignored; metadata keys the model does not name stay in `extra`."""
    blob = structure(
        {
            "hash": "a" * 12,
            "new_field": [1, 2],
            "metadata": {"has_audio": True, "duration": "12.5", "artist": "cat", "subtitles": {}},
        },
        File,
    )
    assert blob.metadata is not None
    assert blob.metadata.duration == 12.5
    assert blob.metadata.extra["artist"] == "cat"


def test_missing_hash_comes_from_original_or_fails():
    """An item without `hash` takes it from `original` (sharded paths too); with neither it is a format error."""
    assert structure({"original": "/x/xAbc_-123456.mp4"}, File).hash == "xAbc_-123456"
    with pytest.raises(ResponseFormatError) as caught:
        structure({"type": "image/png"}, File)
    assert "$.hash" in str(caught.value)


def test_entry_without_file_takes_the_url_path():
    """A file entry with only a `url` gets its `file` from the URL's path."""
    blob = structure({"hash": "a" * 12, "files": [{"url": "https://cdn.x/a/aaaa.mp4?x=1"}]}, File)
    assert blob.files[0].file == "/a/aaaa.mp4"


def test_models_are_frozen_and_hashable_where_values():
    """Models are frozen attrs values."""
    blob = structure({"hash": "a" * 12}, File)
    with pytest.raises(AttributeError):
        blob.hash = "b"  # type: ignore[misc]
    assert hash(blob) == hash(structure({"hash": "a" * 12}, File))


# ---------------------------------------------------------------- content hash


def test_content_hash_of_the_servers_not_media_fixture():
    """The repository's `test_data/not_media.dat` ("asdfasdfklasdj\\n") hashes to `3Yf8ivt5-_L9` (MEDIACRUSH.md 1)."""
    assert content_hash(b"asdfasdfklasdj\n") == "3Yf8ivt5-_L9"


@pytest.mark.parametrize("size", [0, 1, 100, 300_000, 1_000_003])
def test_content_hash_matches_hashlib_for_paths_bytes_and_files(tmp_path, size):
    """Path, bytes and file object give the id computed independently from hashlib."""
    data = bytes((i * 7 + 3) % 256 for i in range(size))
    path = tmp_path / "f.bin"
    path.write_bytes(data)
    expected = md5_id(data)
    assert content_hash(data) == expected
    assert content_hash(path) == expected
    assert content_hash(str(path)) == expected
    with path.open("rb") as stream:
        stream.read(0)
        assert content_hash(stream) == expected
        assert stream.tell() == 0


def test_content_hash_alphabet_replacements():
    """Bytes whose base64 id contains + and / get - and _ instead."""
    found = {"-": False, "_": False}
    for i in range(2000):
        data = str(i).encode()
        cid = content_hash(data)
        assert len(cid) == 12
        assert "+" not in cid
        assert "/" not in cid
        found["-"] |= "-" in cid
        found["_"] |= "_" in cid
    assert all(found.values())


def test_content_hash_restores_the_file_position():
    """A file object is hashed from its current position, which is restored."""
    stream = io.BytesIO(b"headerPAYLOAD")
    stream.seek(6)
    assert content_hash(stream) == md5_id(b"PAYLOAD")
    assert stream.tell() == 6


@pytest.mark.parametrize("bad", [io.StringIO("text"), 42, object()])
def test_content_hash_rejects_non_binary_input(bad):
    """Text streams and other objects raise InvalidArgumentError naming `file` and the allowed inputs."""
    with pytest.raises(InvalidArgumentError, match="file: must be a path"):
        content_hash(bad)


def test_content_hash_unreadable_path(tmp_path):
    """A missing file raises InvalidArgumentError naming the path."""
    with pytest.raises(InvalidArgumentError, match="cannot read"):
        content_hash(tmp_path / "missing.gif")


# ---------------------------------------------------------------- validation


@pytest.mark.parametrize("bad", ["", "short", "a" * 13, "abc/def/ghij", "aaaaaaaaaaa?", None, 12])
def test_hash_validation(bad):
    """A hash must be 12 URL-safe characters; the error names the field and the rule."""
    with pytest.raises(InvalidArgumentError, match="hash: must be a 12-character"):
        v.file_hash(bad)


def test_hash_lists():
    """Lists must be non-empty lists (not a string); repeats collapse; bad items are named by index."""
    assert v.hash_list(["a" * 12, "b" * 12, "a" * 12]) == ["a" * 12, "b" * 12]
    with pytest.raises(InvalidArgumentError, match="at least one"):
        v.hash_list([])
    with pytest.raises(InvalidArgumentError, match="not a single string"):
        v.hash_list("a" * 12)
    with pytest.raises(InvalidArgumentError, match=r"hashes\[1\]"):
        v.hash_list(["a" * 12, "nope"])


def test_album_limits():
    """Albums take 1 to 1024 items, repeats kept."""
    assert v.album_hashes(["a" * 12] * 1024) == ["a" * 12] * 1024
    with pytest.raises(InvalidArgumentError, match="1 to 1024 items, got 1025"):
        v.album_hashes(["a" * 12] * 1025)
    with pytest.raises(InvalidArgumentError, match="at least one"):
        v.album_hashes([])


@pytest.mark.parametrize(
    "bad", ["not a url", "ftp://x.org/a", "https://", "/relative/path", "http://x .org/", 5]
)
def test_url_validation(bad):
    """Upload URLs must be absolute http(s) URLs with a host."""
    with pytest.raises(InvalidArgumentError, match="url: must be an absolute"):
        v.upload_url(bad)


def test_url_list_rejects_commas():
    """url/info lists cannot hold a URL with a comma (the server splits on commas)."""
    with pytest.raises(InvalidArgumentError, match=r"urls\[0\]: must not contain ','"):
        v.url_list(["https://x.org/a,b"])


def test_flag_validation():
    """Flags must be known names with bool values; the error lists the allowed flags."""
    assert v.flags({"nsfw": True, "loop": False}) == {"nsfw": True, "loop": False}
    with pytest.raises(InvalidArgumentError, match="allowed flags: autoplay, loop, mute, nsfw"):
        v.flags({"sparkle": True})
    with pytest.raises(InvalidArgumentError, match="nsfw: must be True or False"):
        v.flags({"nsfw": "true"})
    with pytest.raises(InvalidArgumentError, match="at least one flag"):
        v.flags({})


@pytest.mark.parametrize(
    ("url", "clean"),
    [
        ("https://mediacru.sh/", "https://mediacru.sh"),
        ("http://127.0.0.1:8080", "http://127.0.0.1:8080"),
        ("http://localhost/api-root/", "http://localhost/api-root"),
        ("http://[::1]:9000", "http://[::1]:9000"),
    ],
)
def test_base_url_accepted(url, clean):
    """https anywhere, http only on loopback; the trailing slash goes."""
    assert v.base_url(url) == clean


@pytest.mark.parametrize(
    "url",
    ["http://mediacru.sh", "ftp://x", "mediacru.sh", "https://u:p@x.org", "https://x.org/?a=1"],
)
def test_base_url_refused(url):
    """Plain http to a remote host, other schemes and URLs with credentials or queries are refused."""
    with pytest.raises(ConfigurationError):
        v.base_url(url)


def test_byte_budget_validation():
    """ByteBudget rejects non-positive sizes and periods with a ValueError naming the field."""
    assert ByteBudget().max_bytes == 250_000_000
    assert ByteBudget(max_bytes=None).max_bytes is None
    with pytest.raises(ValueError, match="max_bytes"):
        ByteBudget(max_bytes=0)
    with pytest.raises(ValueError, match="period"):
        ByteBudget(period=-1)


# ---------------------------------------------------------------- exports


def test_all_is_sorted_and_complete():
    """`__all__` is sorted, every name exists, and classes report the package as their module."""
    names = mediacrush_async.__all__
    assert names == sorted(names)
    public = {n for n in dir(mediacrush_async) if not n.startswith("_")}
    assert set(names) <= public
    for name in names:
        obj = getattr(mediacrush_async, name)
        if isinstance(obj, type):
            assert obj.__module__ == "mediacrush_async", name


def test_every_error_is_a_mediacrush_error():
    """Every exported exception derives from MediaCrushError; InvalidArgumentError is also a ValueError."""
    for name in mediacrush_async.__all__:
        obj = getattr(mediacrush_async, name)
        if isinstance(obj, type) and issubclass(obj, Exception):
            assert issubclass(obj, MediaCrushError), name
    assert issubclass(InvalidArgumentError, ValueError)
