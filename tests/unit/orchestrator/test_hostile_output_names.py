"""Names from servers and URLs never put a file outside `--out`, and no two items share an output."""

from __future__ import annotations

from pathlib import Path

import anyio
from hypothesis import given
from hypothesis import strategies as st

from mediacrush_async import File, FileEntry
from orchestrator._adapters.mediacrush import MediaCrushAdapter
from orchestrator._inputs import _new_items
from orchestrator._outputs import derived_name, output_path

HOSTILE = [
    "/..",
    "..",
    "/etc/passwd",
    "../../outside.mp4",
    "C:\\Windows\\evil.mp4",
    "a\x00b.mp4",
    "x" * 300 + ".mp4",
    "CON.mp4",
    ".",
    "",
]


def _inside(path: Path, out: Path) -> bool:
    return path.resolve().parent == out.resolve()


@given(st.text(max_size=400))
def test_any_name_lands_directly_inside_the_output_directory(name):
    """Whatever the name, the output path is a direct child of the output directory."""
    out = Path("/srv/restored")
    assert output_path(out, name, set()).parent == out


def test_url_inputs_with_hostile_tails_stay_inside_and_apart(tmp_path):
    """Output paths of URL inputs are inside --out and distinct, even ignoring case."""
    urls = [f"https://h.example/{tail}" for tail in HOSTILE] + [
        "https://h.example/Reel.mov",
        "https://h.example/reel.MOV",
        "https://h.example/a/%2e%2e",
        "https://h.example/..%2F..%2Fetc%2Fpasswd",
    ]
    items = _new_items(urls, {}, tmp_path, lambda name: Path(name).stem + ".mp4", "fp")
    paths = [Path(item.output_path) for item in items]
    assert len(paths) == len(urls)
    assert all(_inside(p, tmp_path) for p in paths)
    assert len({str(p).casefold() for p in paths}) == len(paths)


class HostileClient:
    """A MediaCrush client whose server names every derived file with hostile paths."""

    base_url = "https://mediacrush.example"

    def __init__(self) -> None:
        self.written: list[Path] = []

    async def info(self, file_hash: str) -> File:
        entries = tuple(FileEntry(file=name, url=None, type="video/mp4") for name in HOSTILE)
        return File(hash=file_hash, blob_type="video", files=entries)

    async def download(self, entry, dest, *, progress=None, overwrite=False):  # type: ignore[no-untyped-def]
        dest = Path(dest)
        await anyio.Path(dest).write_bytes(entry.file.encode("utf-8", "replace"))
        self.written.append(dest)
        return dest


async def test_mediacrush_derived_files_stay_inside_and_apart(tmp_path):
    """Derived files named '/..', absolute paths, NUL, 300 bytes, or hashes differing only by case: all
    land inside --out, and no two items share a file."""
    client = HostileClient()
    adapter = MediaCrushAdapter(client)  # type: ignore[arg-type]
    for file_hash in ("AbCdEfGhIjKl", "abcdefghijkl"):
        manifest = tmp_path / f"{file_hash}.mediacrush.json"
        await adapter.download(f"https://mediacrush.example/{file_hash}", manifest, progress=None)
    assert len(client.written) == 2 * len(HOSTILE)
    assert all(_inside(p, tmp_path) for p in client.written)
    assert len({str(p).casefold() for p in client.written}) == len(client.written)


def test_a_derived_name_keeps_the_servers_usual_name():
    """`<hash>.<ext>` as MediaCrush serves it is kept as it is."""
    assert derived_name("CPvuR5lRhmS0", "/CPvuR5lRhmS0.mp4") == "CPvuR5lRhmS0.mp4"
