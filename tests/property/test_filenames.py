"""Property: whatever a server offers as a file name, the sanitised name stays inside `dest`."""

from __future__ import annotations

import tempfile
from pathlib import Path

from hypothesis import example, given
from hypothesis import strategies as st

from _clientkit._filenames import (
    MAX_NAME_BYTES,
    choose_filename,
    sanitize_filename,
)

DEST = Path(tempfile.gettempdir()) / "sanitiser-property-dest"
HOSTILE = st.text(alphabet=st.sampled_from(list("./\\\x00\n\r .:*?<>|\"'%~CONULPT1é\u202e")))


@given(st.text() | HOSTILE)
@example("../../etc/passwd")
@example("..")
@example("/")
@example("\x00")
@example("." * 300)
@example("CON")
def test_sanitised_name_never_escapes_dest(name):
    """For arbitrary strings the result is a non-empty single component whose join stays in dest."""
    safe = sanitize_filename(name)
    assert safe
    assert safe not in {".", ".."}
    assert "/" not in safe
    assert "\\" not in safe
    assert "\x00" not in safe
    assert len(safe.encode("utf-8")) <= MAX_NAME_BYTES
    assert (DEST / safe).resolve().parent == DEST.resolve()
    assert (DEST / f"{safe}.part").resolve().parent == DEST.resolve()


@given(st.text(), st.text())
def test_chosen_name_from_any_disposition_never_escapes_dest(disposition, path):
    """A name chosen from an arbitrary Content-Disposition and URL path stays inside dest."""
    name = choose_filename(
        content_disposition=f"attachment; filename*=UTF-8''{disposition}",
        url=f"https://example.com/{path}",
    )
    assert name
    assert (DEST / name).resolve().parent == DEST.resolve()
