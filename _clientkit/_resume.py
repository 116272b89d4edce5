"""Where a download's `.part` lives and what an earlier call left of it, found before any request.

The sidecar's own checks are `_partfile.resumable_state`; a `.part` whose size does not match its
sidecar is not resumed.

Where the sidecar lives
    `dest` a file path: `<dest>.part.json`. `dest` a directory: the name comes from the first response
    (Content-Disposition, else the URL and Content-Type), so a rerun must find it before it sends anything:
    the sidecar is `<dest>/.<sha256(url)[:32]>.part.json`, keyed by the URL, and holds the chosen name.
    A `dest` that ends with a separator is a directory (created if missing). One download per
    destination at a time. An existing final file is never replaced unless `overwrite=True`.

Re-issued URLs
    A sidecar records one URL; a `.part` of another URL is discarded, unless the caller passes
    `reissue_of=<that URL>` (a fresh signed link of the same file, after the old one answered
    401/403/410) AND the sidecar holds a strong validator: then the `.part` is resumed, every range
    request carries If-Range, and the sidecar is re-keyed to the new URL (in directory mode the old
    URL's sidecar is found by its key and replaced).
"""

from __future__ import annotations

import logging
import os
import pathlib

import anyio
import attrs

from ._failures import DestinationExistsFailure
from ._filenames import choose_filename, safe_join, sanitize_filename
from ._partfile import (
    Layout,
    PartState,
    file_size,
    part_layout,
    read_sidecar,
    resumable_state,
    unlink,
)

__all__ = ["Found", "choose_name", "find_part", "layout_for", "refuse_existing"]

_log = logging.getLogger("_clientkit")


@attrs.define
class Found:
    """What an earlier call left: the chosen name and, if its `.part` can be resumed, its state.

    Attributes:
        name: the file name the sidecar chose (None: no usable sidecar).
        state: the sidecar's state when the `.part` matches it, else None (start over).
        done: bytes of the `.part` already downloaded.
        rekey: the state was found under an earlier URL (`reissue_of`): save it under the new one.
        old_sidecar: the earlier URL's sidecar, to remove once the state is saved under the new key.
    """

    name: str | None = None
    state: PartState | None = None
    done: int = 0
    rekey: bool = False
    old_sidecar: pathlib.Path | None = None


async def refuse_existing(layout: Layout, name: str, *, overwrite: bool) -> None:
    """Raise `DestinationExistsFailure` if the final file exists (unless `overwrite`)."""
    if overwrite:
        return
    final = layout.final(name)
    if await anyio.to_thread.run_sync(os.path.lexists, final):
        raise DestinationExistsFailure(str(final))


async def _read_state(
    layout: Layout, url: str, reissue_of: str | None
) -> tuple[PartState | None, bool, pathlib.Path | None]:
    """The sidecar's state under the rules of `resumable_state`: (state, re-issued, old sidecar)."""
    raw = await anyio.to_thread.run_sync(read_sidecar, layout.sidecar)
    old_sidecar = None
    if raw is None and reissue_of is not None and layout.fixed_name is None:
        # Directory mode keys the sidecar by URL: the `.part` of the old URL is under the old key.
        old_sidecar = (
            await anyio.to_thread.run_sync(part_layout, layout.directory, reissue_of)
        ).sidecar
        raw = await anyio.to_thread.run_sync(read_sidecar, old_sidecar)
    if raw is None:
        return None, False, None
    state = resumable_state(raw, url, reissue_of=reissue_of)
    if state is None:
        return None, False, None
    reissued = old_sidecar is not None or PartState.from_json(raw, url) is None
    return state, reissued, old_sidecar


async def find_part(
    layout: Layout, url: str, *, reissue_of: str | None, resume: bool, overwrite: bool
) -> Found:
    """What to resume for `url` in `layout`; with `resume=False` the old `.part` and sidecar are removed."""
    if layout.fixed_name is not None:
        await refuse_existing(layout, layout.fixed_name, overwrite=overwrite)
    state, reissued, old_sidecar = await _read_state(layout, url, reissue_of)
    if state is not None and layout.fixed_name is None:
        name = sanitize_filename(state.name)
        try:
            await anyio.to_thread.run_sync(safe_join, layout.directory, f"{name}.part")
        except ValueError:
            state = None
        else:
            state.name = name
    if state is not None and layout.fixed_name is not None:
        state.name = layout.fixed_name
    if not resume:
        if state is not None:
            await anyio.to_thread.run_sync(unlink, layout.part(state.name))
        await anyio.to_thread.run_sync(unlink, layout.sidecar)
        if old_sidecar is not None:
            await anyio.to_thread.run_sync(unlink, old_sidecar)
        state = None
    if state is None:
        return Found()  # fresh: the part is opened (truncated) when the first response is accepted
    if layout.fixed_name is None:
        await refuse_existing(layout, state.name, overwrite=overwrite)
    size = await anyio.to_thread.run_sync(file_size, layout.part(state.name))
    if state.segments is not None:
        usable = size == state.total
        done = sum(s.done for s in state.segments)
    else:
        usable = state.total is None or size <= state.total
        done = size
    if not usable:
        _log.debug("the .part does not match its sidecar; starting over")
        return Found(name=state.name)
    return Found(state.name, state, done, reissued, old_sidecar)


def choose_name(
    directory: pathlib.Path, disposition: str | None, url: str, content_type: str | None
) -> str:
    """Blocking (mimetypes, resolve): the sanitised name, checked to stay inside `directory`."""
    name = choose_filename(content_disposition=disposition, url=url, content_type=content_type)
    safe_join(directory, name)
    safe_join(directory, f"{name}.part")
    return name


def layout_for(dest: str, url: str) -> Layout:
    """Blocking: the layout for `dest`; a `dest` ending with a separator is a directory, made if missing."""
    separators = tuple(sep for sep in (os.sep, os.altsep, "/") if sep)
    if dest.endswith(separators):
        try:
            pathlib.Path(dest).mkdir(parents=True, exist_ok=True)
        except FileExistsError as exc:
            raise ValueError(f"dest: {dest!r} ends with a separator but is a file") from exc
    return part_layout(pathlib.Path(dest), url)
