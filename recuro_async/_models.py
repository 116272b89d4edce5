"""Values the API returns, and the rate-limit setting (all frozen attrs classes)."""

from __future__ import annotations

import attrs

from _clientkit._validators import finite_number, integer

from ._enums import State

__all__ = ["FilterInfo", "Media", "OutputFormatInfo", "Progress", "RateLimit"]


@attrs.frozen
class RateLimit:
    """At most `max_requests` API requests in any sliding window of `period` seconds (per account)."""

    max_requests: int = attrs.field(default=200, validator=integer(ge=1))
    period: float = attrs.field(default=60.0, validator=finite_number(gt=0))


@attrs.frozen
class Media:
    """One uploaded media file (ListMedia); `restored_file_url` is None until a job completed."""

    file_id: str
    restored_file_url: str | None = None


@attrs.frozen
class FilterInfo:
    """A restoration filter the service offers (ListFilters)."""

    name: str
    description: str = ""
    example_url: str | None = None


@attrs.frozen
class OutputFormatInfo:
    """An output format the service offers (ListOutputFormats)."""

    name: str
    long_name: str = ""


@attrs.frozen
class Progress:
    """A media file's state and its progress (0-100) within that state (GetProgress).

    Attributes:
        state: the state, `State.UNKNOWN` for a value the document does not list.
        progress: percent done within `state`.
        restored_file_url: the download URL once the state is JobCompleted, else None.
        raw_state: the state exactly as the server sent it.
    """

    state: State
    progress: float = 0.0
    restored_file_url: str | None = None
    raw_state: str = attrs.field(default="", eq=False)

    @property
    def is_done(self) -> bool:
        """True once the restored file is ready to download."""
        return self.state is State.JOB_COMPLETED
