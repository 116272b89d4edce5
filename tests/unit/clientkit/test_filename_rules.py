"""The file-name sanitiser, the Content-Disposition parser and the URL fallback, case by case."""

from __future__ import annotations

import pytest

from _clientkit._filenames import (
    MAX_NAME_BYTES,
    choose_filename,
    filename_from_content_disposition,
    filename_from_url,
    safe_join,
    sanitize_filename,
)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("movie.mp4", "movie.mp4"),
        ("../../x", "x"),
        ("/etc/passwd", "passwd"),
        ("..\\..\\boot.ini", "boot.ini"),
        ("..", "download"),
        (".", "download"),
        ("", "download"),
        ("   ", "download"),
        ("a/..", "a"),
        (".bashrc", "bashrc"),
        ("...x...", "x"),
        ("name\x00.txt", "name.txt"),
        ("line\nbreak.txt", "linebreak.txt"),
        ("tab\tname.txt", "tabname.txt"),
        ("evil\u202etxt.exe", "eviltxt.exe"),
        ('what?<is>:this*|".txt', "what__is__this___.txt"),
        ("CON", "_CON"),
        ("nul.txt", "_nul.txt"),
        ("com1.tar.gz", "_com1.tar.gz"),
        ("console.txt", "console.txt"),
        ("trailing. . ", "trailing"),
        ("\udcff.bin", "bin"),
        ("cafe\u0301.txt", "caf\u00e9.txt"),
    ],
)
def test_sanitize_cases(raw, expected):
    """Each hostile or odd name becomes the expected safe base name."""
    assert sanitize_filename(raw) == expected


def test_sanitize_uses_the_fallback_for_nothing_left():
    """An empty result becomes the (sanitised) fallback."""
    assert sanitize_filename("../..", fallback="../clip.mp4") == "clip.mp4"


def test_long_names_are_cut_keeping_the_extension():
    """A name over MAX_NAME_BYTES is cut at a character boundary and keeps a short extension."""
    name = sanitize_filename("é" * 300 + ".mp4")
    assert name.endswith(".mp4")
    assert len(name.encode()) <= MAX_NAME_BYTES
    assert name.startswith("é")


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ('attachment; filename="a b.mp4"', "a b.mp4"),
        ("attachment; filename=plain.bin", "plain.bin"),
        ("attachment; filename*=UTF-8''na%C3%AFve.txt", "naïve.txt"),
        ("attachment; filename=\"x.bin\"; filename*=UTF-8''y.bin", "y.bin"),
        ("attachment; filename*=UTF-8''y.bin; filename=\"x.bin\"", "y.bin"),
        ("attachment; filename*=iso-8859-1'en'%E9t%E9.txt", "été.txt"),
        ("attachment; filename*=koi8-r''x.txt; filename=\"fallback.txt\"", "fallback.txt"),
        ('attachment; filename="quo\\"te.txt"', 'quo"te.txt'),
        ('attachment; FILENAME="upper.txt"', "upper.txt"),
        ('attachment; foo="a;b"; filename="after.txt"', "after.txt"),
        ("inline", None),
        ("", None),
        (None, None),
        ('attachment; filename=""', None),
    ],
)
def test_content_disposition(header, expected):
    """filename* (RFC 8187) wins over filename; quoted strings are unescaped; odd input gives None."""
    assert filename_from_content_disposition(header) == expected


@pytest.mark.parametrize(
    ("url", "content_type", "expected"),
    [
        ("https://h/v/movie.mp4", None, "movie.mp4"),
        ("https://h/v/movie.mp4?sig=secret", "video/mp4", "movie.mp4"),
        ("https://h/download.php?guid=abc", "video/mp4", "abc.mp4"),
        ("https://h/download.php?id=42&token=s3cr3t", "image/png", "42.png"),
        ("https://h/get.aspx?filename=clip.mov&token=x", "video/mp4", "clip.mov"),
        ("https://h/download.php?token=s3cr3t", "video/mp4", "download.mp4"),
        ("https://h/", "video/webm", "download.webm"),
        ("https://h/files/report", "application/pdf", "report.pdf"),
        ("https://h/files/blob", "application/octet-stream", "blob"),
        ("https://h/files/na%C3%AFve%20name.txt", None, "naïve name.txt"),
    ],
)
def test_filename_from_url(url, content_type, expected):
    """The URL fallback prefers the path, then a name or id from a script's query, plus a type extension."""
    assert filename_from_url(url, content_type) == expected


def test_choose_filename_falls_back_to_the_url_when_disposition_is_useless():
    """A Content-Disposition that sanitises to nothing yields the URL's name."""
    name = choose_filename(
        content_disposition='attachment; filename=".."', url="https://h/a/clip.mkv"
    )
    assert name == "clip.mkv"


def test_safe_join_accepts_a_plain_name(tmp_path):
    """A plain name joins to a path directly inside the directory."""
    assert safe_join(tmp_path, "a.txt") == tmp_path.resolve() / "a.txt"


@pytest.mark.parametrize("name", ["", ".", "..", "a/b", "../x", "a\\b", "a\x00"])
def test_safe_join_refuses_non_components(tmp_path, name):
    """Anything but a single path component is refused."""
    with pytest.raises(ValueError, match="component"):
        safe_join(tmp_path, name)


def test_safe_join_refuses_a_symlink_out_of_the_directory(tmp_path):
    """A symlink planted in the directory that points elsewhere is refused."""
    inside = tmp_path / "dest"
    inside.mkdir()
    (inside / "link.txt").symlink_to(tmp_path / "elsewhere.txt")
    with pytest.raises(ValueError, match="outside"):
        safe_join(inside, "link.txt")
