"""Checks of one local input that need no I/O: the caller has the facts (its size) already.

The engine and both commands use the same words, so a user sees one reason wherever an input is refused.
"""

from __future__ import annotations

from typing import Final

__all__ = ["EMPTY_INPUT_CODE", "empty_input_problem"]

#: The `error_code` an item gets when its local input is empty.
EMPTY_INPUT_CODE: Final = "EmptyInput"


def empty_input_problem(name: str, size: int | None) -> str | None:
    """Why a local input of `size` bytes cannot be sent, or None; `size=None` (a URL) is not judged.

    An empty file has nothing to restore or host: the services would fail it late (or, worse, accept it),
    so it is refused before any request.
    """
    if size == 0:
        return f"{name}: the file is empty (0 bytes); there is nothing to send"
    return None
