"""`ProcessingStatus`: the server's eight status strings, plus UNKNOWN for anything else."""

from __future__ import annotations

import enum
from typing import Final

__all__ = ["ProcessingStatus"]


class ProcessingStatus(enum.StrEnum):
    """The processing status of an uploaded file (MEDIACRUSH.md 4; British `unrecognised`).

    `ready` means playable in a browser but not finished; `done` and the four failures are terminal.
    An unlisted value (a newer server, a typo) becomes `UNKNOWN`, never an exception; `Status.raw_status`
    keeps the string. Values match case-insensitively, and the American `unrecognized` that official
    clients tested for is accepted as `UNRECOGNISED`.
    """

    PENDING = "pending"
    PROCESSING = "processing"
    READY = "ready"
    DONE = "done"
    ERROR = "error"
    TIMEOUT = "timeout"
    UNRECOGNISED = "unrecognised"
    INTERNAL_ERROR = "internal_error"
    UNKNOWN = "unknown"

    @classmethod
    def _missing_(cls, value: object) -> ProcessingStatus:
        if isinstance(value, str):
            text = value.strip().lower()
            text = _ALIASES.get(text, text)
            for member in cls:
                if member.value == text:
                    return member
        return cls.UNKNOWN

    @property
    def is_terminal(self) -> bool:
        """True when the status will not change any more (done or a failure)."""
        return self in _TERMINAL

    @property
    def is_failure(self) -> bool:
        """True for the four terminal failures (the file was removed by the server)."""
        return self in _TERMINAL and self is not ProcessingStatus.DONE

    @property
    def is_retryable(self) -> bool:
        """True when the document advises uploading again (`internal_error`: the workers died)."""
        return self is ProcessingStatus.INTERNAL_ERROR

    @property
    def is_playable(self) -> bool:
        """True when browser-ready files exist (`ready` or `done`)."""
        return self in (ProcessingStatus.READY, ProcessingStatus.DONE)


_ALIASES: Final = {"unrecognized": "unrecognised", "internal error": "internal_error"}

_TERMINAL: Final = frozenset(
    {
        ProcessingStatus.DONE,
        ProcessingStatus.ERROR,
        ProcessingStatus.TIMEOUT,
        ProcessingStatus.UNRECOGNISED,
        ProcessingStatus.INTERNAL_ERROR,
    }
)
