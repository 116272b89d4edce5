"""Where outputs go: one function names every file the batch writes, so none can leave `--out`.

Names come from inputs (a URL's last segment) and from servers (MediaCrush's derived files), so every one is
hostile: it goes through the shared sanitiser (`_clientkit._filenames`: one path component, no NUL or
control characters, no `..`, at most 200 bytes) and the safe join (resolved, and refused unless it lies
directly in the output directory). Names are unique in a batch ignoring case, since the disk may ignore it.
"""

from __future__ import annotations

import re
from collections.abc import MutableSet
from pathlib import Path
from typing import Final

from _clientkit._filenames import safe_join, sanitize_filename

__all__ = ["derived_name", "output_path"]

_EXTENSION: Final = re.compile(r"\.[A-Za-z0-9]{1,8}$")


def output_path(out_dir: Path, name: str, taken: MutableSet[str]) -> Path:
    """`out_dir/name` made safe, and unique among `taken` (case-folded paths) and files already there.

    The chosen path is added to `taken`. Raises `ValueError` only if `out_dir` itself is unusable.
    """
    safe = sanitize_filename(name, fallback="media")
    stem, ext = _split(safe)
    candidate = safe_join(out_dir, safe)
    n = 2
    while str(candidate).casefold() in taken or candidate.exists():
        candidate = safe_join(out_dir, f"{stem}-{n}{ext}")
        n += 1
    taken.add(str(candidate).casefold())
    return candidate


def derived_name(remote_id: str, served_name: str) -> str:
    """A local name for a file a server derived from the item `remote_id`, made safe.

    The served name is kept when it starts with the item's id (as MediaCrush's `<hash>.<ext>` do), else the
    id is put in front, so two items never share a derived file whatever the server answers (unless they
    are the same remote file).
    """
    remote = sanitize_filename(remote_id, fallback="file")
    served = sanitize_filename(served_name, fallback="file")
    if served.casefold().startswith(remote.casefold()):
        return served
    return sanitize_filename(f"{remote}-{served}")


def _split(name: str) -> tuple[str, str]:
    match = _EXTENSION.search(name)
    if match is None or match.start() == 0:
        return name, ""
    return name[: match.start()], match.group(0)
