"""`_clientkit._partfile` on its own: the sidecar's rules, positional writes, and the commit's order.

Written from what the module (and `_download`'s docstring) promise, issue 17: a sidecar is trusted only
for this file (same version, same URL unless re-issued with a validator, segments tiling the file);
writes land at their offsets however short each system call is; the `.part` is never opened through a
symlink; the sidecar is replaced atomically; the `.part` is fsynced before it is renamed.
"""

from __future__ import annotations

import errno
import itertools
import json
import os
import pathlib

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from _clientkit import _partfile
from _clientkit._partfile import (
    SIDECAR_VERSION,
    Layout,
    PartState,
    Segment,
    commit_part,
    file_size,
    fsync_directory,
    open_part,
    part_layout,
    pwrite_all,
    read_sidecar,
    resumable_state,
    tiles,
    unlink,
    write_sidecar,
)

URL = "https://files.test/a.mov?sig=1"
OTHER = "https://files.test/a.mov?sig=2"
tmp_settings = settings(suppress_health_check=[HealthCheck.function_scoped_fixture])


def sidecar(**changes: object) -> bytes:
    data: dict[str, object] = {
        "version": SIDECAR_VERSION,
        "url": URL,
        "name": "a.mov",
        "validator": '"v1"',
        "total": 100,
        "segments": [[0, 50, 10], [50, 100, 50]],
    }
    data.update(changes)
    return json.dumps(data).encode()


# ------------------------------------------------------------------------------------ Segment


def test_segment_position_and_completion():
    segment = Segment(10, 20)
    assert segment.done == 0
    assert segment.position == 10
    assert not segment.complete
    segment.done = 9
    assert segment.position == 19
    assert not segment.complete
    segment.done = 10
    assert segment.position == 20
    assert segment.complete


# ------------------------------------------------------------------------------------ the sidecar


def test_a_sidecar_round_trips():
    state = PartState.from_json(sidecar(), URL)
    assert state == PartState(
        url=URL,
        name="a.mov",
        validator='"v1"',
        total=100,
        segments=[Segment(0, 50, 10), Segment(50, 100, 50)],
    )
    assert PartState.from_json(state.to_json(), URL) == state


def test_to_json_is_the_documented_compact_layout():
    state = PartState(URL, "a.mov", None, 7, [Segment(0, 7, 3)])
    assert json.loads(state.to_json()) == {
        "version": 1,
        "url": URL,
        "name": "a.mov",
        "validator": None,
        "total": 7,
        "segments": [[0, 7, 3]],
    }
    assert b" " not in state.to_json()
    assert json.loads(PartState(URL, "b").to_json())["segments"] is None


def test_a_sidecar_of_an_empty_file_is_resumed():
    state = PartState.from_json(sidecar(total=0, segments=None), URL)
    assert state is not None
    assert state.total == 0


@pytest.mark.parametrize("total", [1.5, -1, "7", True, [7]])
def test_a_sequential_sidecar_with_a_bad_total_is_not_resumed(total):
    assert PartState.from_json(sidecar(total=total, segments=None), URL) is None


def test_a_sequential_sidecar_has_no_segments():
    state = PartState.from_json(sidecar(segments=None, total=None, validator=None), URL)
    assert state == PartState(URL, "a.mov")


def test_a_sidecar_of_another_url_is_not_resumed():
    assert PartState.from_json(sidecar(), OTHER) is None
    assert PartState.from_json(sidecar(url=OTHER), URL) is None


def test_a_reissued_url_resumes_only_with_a_validator():
    """A signed link handed out again may resume the `.part` of the link it replaces: the If-Range
    validator will catch a changed file. Without a validator, without the caller naming the earlier
    link, or for a sidecar of a third link, it starts over."""
    state = resumable_state(sidecar(url=OTHER), URL, reissue_of=OTHER)
    assert state is not None
    assert state.url == URL  # the new link is what the sidecar records from now on
    assert state.validator == '"v1"'
    assert state.segments == [Segment(0, 50, 10), Segment(50, 100, 50)]
    assert resumable_state(sidecar(url=OTHER, validator=None), URL, reissue_of=OTHER) is None
    assert resumable_state(sidecar(url=OTHER), URL) is None
    assert resumable_state(sidecar(url=OTHER), URL, reissue_of=URL) is None
    third = "https://files.test/a.mov?sig=3"
    assert resumable_state(sidecar(url=third), URL, reissue_of=OTHER) is None
    # a sidecar of this very URL is resumed whatever the caller says, validator or not
    for reissue in (None, OTHER, URL):
        assert resumable_state(sidecar(validator=None), URL, reissue_of=reissue) == PartState(
            URL, "a.mov", None, 100, [Segment(0, 50, 10), Segment(50, 100, 50)]
        )
    assert resumable_state(b"garbage", URL, reissue_of=OTHER) is None


@pytest.mark.parametrize("version", [None, 0, 2, "1", 1.5, True])
def test_a_sidecar_of_another_version_is_not_resumed(version):
    assert PartState.from_json(sidecar(version=version), URL) is None


def test_a_sidecar_without_a_version_is_not_resumed():
    data = json.loads(sidecar())
    del data["version"]
    assert PartState.from_json(json.dumps(data).encode(), URL) is None


@pytest.mark.parametrize("field", ["url", "name", "validator", "total", "segments"])
def test_a_sidecar_missing_a_field_is_not_resumed(field):
    data = json.loads(sidecar())
    del data[field]
    assert PartState.from_json(json.dumps(data).encode(), URL) is None


@pytest.mark.parametrize(
    "changes",
    [
        {"name": ""},
        {"name": None},
        {"name": 5},
        {"validator": 5},
        {"validator": ""},
        {"validator": ["x"]},
        {"total": -1},
        {"total": 1.5},
        {"total": "100"},
        {"total": True},
        {"total": None},  # segments without a total
        {"segments": "abc"},
        {"segments": [[0, 100]]},
        {"segments": [[0, 100, 0, 0]]},
        {"segments": [[0, 100.0, 0]]},
        {"segments": [[0, "100", 0]]},
        {"segments": [[0, 100, True]]},
        {"segments": [{"start": 0}]},
        {"segments": 5},
    ],
)
def test_a_malformed_sidecar_is_not_resumed(changes):
    assert PartState.from_json(sidecar(**changes), URL) is None


@pytest.mark.parametrize(
    "segments",
    [
        [],
        [[0, 50, 0]],  # short of the total
        [[0, 50, 0], [60, 100, 0]],  # a gap
        [[0, 60, 0], [50, 100, 0]],  # an overlap
        [[10, 100, 0]],  # not from byte 0
        [[0, 50, 0], [50, 110, 0]],  # past the total
        [[50, 100, 0], [0, 50, 0]],  # out of order
        [[0, 0, 0], [0, 100, 0]],  # an empty segment
        [[0, 50, 51], [50, 100, 0]],  # more done than the segment holds
        [[0, 50, 0], [50, 100, 51]],  # the same, in a segment that does not start at 0
        [[0, 50, -1], [50, 100, 0]],  # negative progress
    ],
)
def test_segments_that_do_not_tile_the_file_are_not_resumed(segments):
    assert PartState.from_json(sidecar(segments=segments), URL) is None


@pytest.mark.parametrize(
    "raw",
    [b"", b"{", b"[]", b"null", b"\xff\xfe", b'"text"', b"[" * 100_000 + b"]" * 100_000],
    ids=["empty", "cut", "list", "null", "not-utf8", "string", "deeply-nested"],
)
def test_garbage_is_not_resumed(raw):
    assert PartState.from_json(raw, URL) is None


def test_tiles():
    assert tiles([Segment(0, 10, 10)], 10)
    assert tiles([Segment(0, 4, 0), Segment(4, 10, 6)], 10)
    assert not tiles([], 0)
    assert not tiles([Segment(0, 10)], 11)
    assert not tiles([Segment(0, 10)], 9)
    assert not tiles([Segment(0, 10, 11)], 10)
    assert not tiles([Segment(0, 4), Segment(4, 10, 7)], 10)
    assert tiles([Segment(0, 4), Segment(4, 10, 6)], 10)
    assert not tiles([Segment(0, 10, -1)], 10)
    assert not tiles([Segment(1, 10)], 10)


@st.composite
def tilings(draw: st.DrawFn) -> tuple[list[Segment], int]:
    cuts = sorted(set(draw(st.lists(st.integers(1, 10_000), min_size=1, max_size=6))))
    bounds = [0, *cuts]
    segments = []
    for start, end in itertools.pairwise(bounds):
        segments.append(Segment(start, end, draw(st.integers(0, end - start))))
    return segments, bounds[-1]


@given(tiling=tilings(), validator=st.one_of(st.none(), st.text(min_size=1, max_size=20)))
def test_every_tiling_round_trips(tiling, validator):
    segments, total = tiling
    state = PartState(URL, "n", validator, total, segments)
    assert tiles(segments, total)
    assert PartState.from_json(state.to_json(), URL) == state


@given(tiling=tilings(), index=st.integers(0, 5), delta=st.integers(-3, 3).filter(bool))
def test_every_broken_tiling_is_refused(tiling, index, delta):
    """Move one boundary of a valid tiling: the sidecar no longer describes this file."""
    segments, total = tiling
    i = index % len(segments)
    raw = json.loads(PartState(URL, "n", '"v"', total, segments).to_json())
    raw["segments"][i][1] += delta  # the end of one segment moves; the next start does not
    assert PartState.from_json(json.dumps(raw).encode(), URL) is None


@given(
    data=st.dictionaries(
        st.sampled_from(["version", "url", "name", "validator", "total", "segments", "x"]),
        st.one_of(
            st.none(),
            st.integers(-2, 3),
            st.text(max_size=3),
            st.lists(st.lists(st.integers(-1, 5), max_size=4), max_size=3),
        ),
    )
)
def test_from_json_never_raises(data):
    state = PartState.from_json(json.dumps(data).encode(), URL)
    if state is not None:
        assert state.name
        assert state.total is None or state.total >= 0
        assert state.segments is None or tiles(state.segments, state.total or 0)


# ------------------------------------------------------------------------------------ layout


def test_file_mode_layout(tmp_path):
    layout = part_layout(tmp_path / "out.mp4", URL)
    assert layout == Layout(tmp_path.resolve(), "out.mp4", tmp_path.resolve() / "out.mp4.part.json")
    assert layout.part("out.mp4") == tmp_path.resolve() / "out.mp4.part"
    assert layout.final("out.mp4") == tmp_path.resolve() / "out.mp4"


def test_directory_mode_layout_keys_the_sidecar_by_url(tmp_path):
    layout = part_layout(tmp_path, URL)
    assert layout.fixed_name is None
    assert layout.directory == tmp_path.resolve()
    name = layout.sidecar.name
    assert name.startswith(".")
    assert name.endswith(".part.json")
    assert len(name) == len(".") + 32 + len(".part.json")
    assert part_layout(tmp_path, URL) == layout
    assert part_layout(tmp_path, OTHER).sidecar != layout.sidecar


def test_layout_errors_name_the_field(tmp_path):
    missing = f"{tmp_path}/missing/"
    with pytest.raises(ValueError, match=r"dest: directory .* does not exist") as info:
        part_layout(missing, URL)  # a str: Path() would drop the slash
    assert repr(str(pathlib.Path(missing))) in str(info.value)
    with pytest.raises(ValueError, match=r"dest: the parent directory .* does not exist") as info:
        part_layout(tmp_path / "missing" / "out.mp4", URL)
    assert repr(str(tmp_path / "missing")) in str(info.value)


# ------------------------------------------------------------------------------------ files


def test_open_part_creates_and_keeps_or_truncates(tmp_path):
    part = tmp_path / "a.part"
    fd = open_part(part, truncate=False)
    os.write(fd, b"hello")
    os.close(fd)
    assert (part.stat().st_mode & 0o777) == 0o644 & ~_umask()
    fd = open_part(part, truncate=False)
    os.pwrite(fd, b"J", 0)
    os.close(fd)
    assert part.read_bytes() == b"Jello"
    fd = open_part(part, truncate=True)
    os.close(fd)
    assert part.read_bytes() == b""


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@pytest.mark.skipif(not hasattr(os, "O_NOFOLLOW"), reason="no O_NOFOLLOW on this platform")
@pytest.mark.parametrize("truncate", [False, True])
def test_open_part_never_follows_a_planted_symlink(tmp_path, truncate):
    victim = tmp_path / "victim"
    victim.write_bytes(b"precious")
    part = tmp_path / "a.part"
    part.symlink_to(victim)
    with pytest.raises(OSError):  # ELOOP
        open_part(part, truncate=truncate)
    assert victim.read_bytes() == b"precious"


def test_open_part_asks_for_no_follow(tmp_path, monkeypatch):
    """The flag itself, for platforms where the symlink test cannot run."""
    seen: list[int] = []
    real_open = os.open

    def spy(path, flags, mode=0o777):
        seen.append(flags)
        return real_open(path, flags, mode)

    monkeypatch.setattr(os, "open", spy)
    os.close(open_part(tmp_path / "a.part", truncate=False))
    os.close(open_part(tmp_path / "a.part", truncate=True))
    no_follow = getattr(os, "O_NOFOLLOW", 0)
    assert [f & (no_follow | os.O_CREAT | os.O_RDWR | os.O_TRUNC) for f in seen] == [
        no_follow | os.O_CREAT | os.O_RDWR,
        no_follow | os.O_CREAT | os.O_RDWR | os.O_TRUNC,
    ]


def _read(fd: int, size: int) -> bytes:
    return os.pread(fd, size, 0)


@tmp_settings
@given(
    buffers=st.lists(st.binary(max_size=64), max_size=12),
    offset=st.integers(0, 50),
    caps=st.lists(st.integers(1, 40), min_size=1, max_size=8),
    path=st.sampled_from(["pwritev", "pwrite", "seek"]),
)
def test_pwrite_all_lands_every_byte_however_short_the_writes(
    tmp_path, monkeypatch, buffers, offset, caps, path
):
    """Each system call writes at most a few bytes (as a signal or a full pipe may make it): every
    buffer still lands at its offset, on each of the three write paths."""
    target = tmp_path / f"w-{path}"
    target.unlink(missing_ok=True)
    fd = os.open(target, os.O_RDWR | os.O_CREAT)
    calls = iter(caps * 10_000)
    real_pwritev, real_pwrite, real_write = os.pwritev, os.pwrite, os.write

    def short_pwritev(fd_, views, at):
        data = b"".join(bytes(v) for v in views)[: next(calls)]
        return real_pwritev(fd_, [data], at)

    def short_pwrite(fd_, view, at):
        return real_pwrite(fd_, bytes(view)[: next(calls)], at)

    def short_write(fd_, view):
        return real_write(fd_, bytes(view)[: next(calls)])

    with monkeypatch.context() as patch:
        if path == "pwritev":
            patch.setattr(os, "pwritev", short_pwritev)
        else:
            patch.delattr(os, "pwritev")
            if path == "pwrite":
                patch.setattr(os, "pwrite", short_pwrite)
            else:
                patch.delattr(os, "pwrite")
                patch.setattr(os, "write", short_write)
        try:
            pwrite_all(fd, buffers, offset)
        finally:
            written = _read(fd, 10_000)
            os.close(fd)
    expected = b"\0" * offset + b"".join(buffers) if any(buffers) else b""
    assert written == expected


def test_pwrite_all_batches_at_most_max_iov_buffers(tmp_path, monkeypatch):
    sizes: list[int] = []
    real = os.pwritev

    def spy(fd, views, at):
        sizes.append(len(views))
        return real(fd, views, at)

    monkeypatch.setattr(os, "pwritev", spy)
    fd = os.open(tmp_path / "w", os.O_RDWR | os.O_CREAT)
    try:
        pwrite_all(fd, [b"x"] * (_partfile.MAX_IOV + 3), 0)
    finally:
        os.close(fd)
    assert sizes == [_partfile.MAX_IOV, 3]
    assert (tmp_path / "w").read_bytes() == b"x" * (_partfile.MAX_IOV + 3)


@pytest.mark.parametrize("path", ["pwritev", "pwrite", "seek"])
def test_a_write_that_makes_no_progress_raises_instead_of_looping(tmp_path, monkeypatch, path):
    if path == "pwritev":
        monkeypatch.setattr(os, "pwritev", lambda *a: 0)
    else:
        monkeypatch.delattr(os, "pwritev")
        if path == "pwrite":
            monkeypatch.setattr(os, "pwrite", lambda *a: 0)
        else:
            monkeypatch.delattr(os, "pwrite")
            monkeypatch.setattr(os, "write", lambda *a: 0)
    fd = os.open(tmp_path / "w", os.O_RDWR | os.O_CREAT)
    try:
        with pytest.raises(OSError) as info:
            pwrite_all(fd, [b"abc"], 0)
        assert info.value.errno == errno.EIO
        assert info.value.strerror == "a write to the .part made no progress"
    finally:
        os.close(fd)


def test_pwrite_all_skips_empty_buffers(tmp_path, monkeypatch):
    monkeypatch.setattr(os, "pwritev", lambda *a: pytest.fail("nothing to write"))
    pwrite_all(-1, [b"", b""], 0)


# ------------------------------------------------------------------------------------ sidecar file


@pytest.mark.parametrize("fsync", [True, False])
def test_write_sidecar_replaces_atomically(tmp_path, monkeypatch, fsync):
    """The new sidecar is written beside the old one and renamed over it: the old file is never
    opened for writing, and the rename happens after the (optional) fsync of the new one."""
    path = tmp_path / "a.part.json"
    path.write_bytes(b"old")
    events: list[str] = []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync_spy(fd):
        events.append("fsync")
        real_fsync(fd)

    def replace_spy(src, dst):
        events.append(f"replace {pathlib.Path(src).name} -> {pathlib.Path(dst).name}")
        assert path.read_bytes() == b"old"  # untouched until the rename
        assert pathlib.Path(src).read_bytes() == b"new"
        real_replace(src, dst)

    monkeypatch.setattr(os, "fsync", fsync_spy)
    monkeypatch.setattr(os, "replace", replace_spy)
    inode = path.stat().st_ino
    write_sidecar(path, b"new", fsync)
    assert path.read_bytes() == b"new"
    assert path.stat().st_ino != inode
    assert events == [*(["fsync"] if fsync else []), "replace a.part.json.tmp -> a.part.json"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.part.json"]


def test_write_sidecar_creates_a_fresh_private_temporary_file(tmp_path, monkeypatch):
    seen: list[tuple[str, int, int]] = []
    real_open = os.open

    def spy(path, flags, mode=0o777):
        seen.append((pathlib.Path(path).name, flags, mode))
        return real_open(path, flags, mode)

    monkeypatch.setattr(os, "open", spy)
    path = tmp_path / "a.part.json"
    write_sidecar(path, b"{}", fsync=False)
    ((name, flags, mode),) = seen
    assert name == "a.part.json.tmp"
    wanted = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
    assert flags & wanted == wanted
    assert not flags & os.O_TRUNC
    assert mode == 0o644
    assert (path.stat().st_mode & 0o777) == 0o644 & ~_umask()


def test_the_original_error_surfaces_when_the_rename_fails(tmp_path, monkeypatch):
    """The temporary file may already be gone (another cleaner): its removal must not hide why."""
    path = tmp_path / "a.part.json"

    def vanished(src, dst):
        pathlib.Path(src).unlink()
        raise FileNotFoundError(2, "renaming failed")

    monkeypatch.setattr(os, "replace", vanished)
    with pytest.raises(FileNotFoundError, match="renaming failed"):
        write_sidecar(path, b"{}", fsync=False)
    assert list(tmp_path.iterdir()) == []


def test_a_failed_sidecar_write_keeps_the_old_one(tmp_path, monkeypatch):
    path = tmp_path / "a.part.json"
    path.write_bytes(b"old")

    def broken(fd):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", broken)
    with pytest.raises(OSError, match="No space"):
        write_sidecar(path, b"new" * 1000, fsync=True)
    assert path.read_bytes() == b"old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.part.json"]  # no .tmp left behind


def test_write_sidecar_writes_everything_despite_short_writes(tmp_path, monkeypatch):
    real = os.write
    monkeypatch.setattr(os, "write", lambda fd, data: real(fd, bytes(data)[:3]))
    path = tmp_path / "s.json"
    write_sidecar(path, b"0123456789", fsync=False)
    assert path.read_bytes() == b"0123456789"


@pytest.mark.skipif(not hasattr(os, "O_NOFOLLOW"), reason="no O_NOFOLLOW on this platform")
def test_write_sidecar_never_writes_through_a_planted_temporary_symlink(tmp_path):
    victim = tmp_path / "victim"
    victim.write_bytes(b"precious")
    path = tmp_path / "a.part.json"
    (tmp_path / "a.part.json.tmp").symlink_to(victim)
    write_sidecar(path, b"new", fsync=False)
    assert victim.read_bytes() == b"precious"
    assert path.read_bytes() == b"new"
    assert not path.is_symlink()


def test_read_sidecar(tmp_path):
    path = tmp_path / "s.json"
    assert read_sidecar(path) is None
    path.write_bytes(b"{}")
    assert read_sidecar(path) == b"{}"
    assert read_sidecar(tmp_path) is None  # a directory under that name
    assert read_sidecar(path / "below") is None  # a file where a directory should be


def test_file_size_and_unlink(tmp_path):
    path = tmp_path / "f"
    assert file_size(path) == 0
    path.write_bytes(b"12345")
    assert file_size(path) == 5
    unlink(path)
    assert not path.exists()
    unlink(path)  # already gone: fine


# ------------------------------------------------------------------------------------ the commit


def _spy_commit(monkeypatch, events):
    real_fsync, real_replace, real_close = os.fsync, os.replace, os.close

    def fsync_spy(fd):
        kind = "dir" if pathlib.Path(f"/proc/self/fd/{fd}").is_dir() else "file"
        events.append(f"fsync {kind}")
        real_fsync(fd)

    def replace_spy(src, dst):
        events.append("rename")
        real_replace(src, dst)

    def close_spy(fd):
        events.append("close")
        real_close(fd)

    monkeypatch.setattr(os, "fsync", fsync_spy)
    monkeypatch.setattr(os, "replace", replace_spy)
    monkeypatch.setattr(os, "close", close_spy)


@pytest.mark.skipif(
    not pathlib.Path("/proc/self/fd").is_dir(), reason="needs /proc to tell fds apart"
)
def test_commit_fsyncs_the_part_before_the_rename_and_the_directory_after(tmp_path, monkeypatch):
    part, final, side = tmp_path / "a.part", tmp_path / "a", tmp_path / "a.part.json"
    side.write_bytes(b"{}")
    fd = os.open(part, os.O_RDWR | os.O_CREAT)
    os.write(fd, b"data")
    events: list[str] = []
    _spy_commit(monkeypatch, events)
    commit_part(fd, part, final, side, fsync=True)
    assert events == ["fsync file", "close", "rename", "fsync dir", "close"]
    assert final.read_bytes() == b"data"
    assert not part.exists()
    assert not side.exists()


@pytest.mark.skipif(
    not pathlib.Path("/proc/self/fd").is_dir(), reason="needs /proc to tell fds apart"
)
def test_commit_without_fsync_only_closes_and_renames(tmp_path, monkeypatch):
    part, final, side = tmp_path / "a.part", tmp_path / "a", tmp_path / "a.part.json"
    side.write_bytes(b"{}")
    fd = os.open(part, os.O_RDWR | os.O_CREAT)
    events: list[str] = []
    _spy_commit(monkeypatch, events)
    commit_part(fd, part, final, side, fsync=False)
    assert events == ["close", "rename"]
    assert final.exists()
    assert not side.exists()


def test_a_failed_fsync_closes_the_part_and_renames_nothing(tmp_path, monkeypatch):
    part, final, side = tmp_path / "a.part", tmp_path / "a", tmp_path / "a.part.json"
    side.write_bytes(b"{}")
    fd = os.open(part, os.O_RDWR | os.O_CREAT)
    closed: list[int] = []
    real_close = os.close

    def broken(fd_):
        raise OSError(5, "I/O error")

    monkeypatch.setattr(os, "fsync", broken)
    monkeypatch.setattr(os, "close", lambda fd_: (closed.append(fd_), real_close(fd_)))
    with pytest.raises(OSError, match="I/O error"):
        commit_part(fd, part, final, side, fsync=True)
    assert closed == [fd]
    assert part.exists()
    assert not final.exists()
    assert side.exists()  # the sidecar stays with its `.part`


def test_fsync_directory_opens_read_only_and_closes(tmp_path, monkeypatch):
    events: list[object] = []
    real_open, real_close, real_fsync = os.open, os.close, os.fsync

    def open_spy(path, flags, *args):
        fd = real_open(path, flags, *args)
        events.append(("open", pathlib.Path(path), flags, fd))
        return fd

    monkeypatch.setattr(os, "open", open_spy)
    monkeypatch.setattr(os, "fsync", lambda fd: (events.append(("fsync", fd)), real_fsync(fd)))
    monkeypatch.setattr(os, "close", lambda fd: (events.append(("close", fd)), real_close(fd)))
    fsync_directory(tmp_path)
    fd = events[0][3]
    assert events == [("open", tmp_path, os.O_RDONLY, fd), ("fsync", fd), ("close", fd)]


def test_fsync_directory_closes_even_when_fsync_fails(tmp_path, monkeypatch):
    closed: list[int] = []
    real_close = os.close

    def broken(fd):
        raise OSError(5, "I/O error")

    monkeypatch.setattr(os, "fsync", broken)
    monkeypatch.setattr(os, "close", lambda fd: (closed.append(fd), real_close(fd)))
    with pytest.raises(OSError):
        fsync_directory(tmp_path)
    assert len(closed) == 1
