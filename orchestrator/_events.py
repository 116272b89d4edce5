"""The typed events a `Runner` sends while a batch runs (frozen attrs values; `Event` is their union).

Each event carries `key` (the item's identity in the journal) and `at` (the runner clock's monotonic time),
except `BatchDone`, which closes the stream. Events hold no secrets: inputs, stages, sizes, error codes.
"""

from __future__ import annotations

from typing import TypeAlias

import attrs

from ._stages import Stage

__all__ = [
    "BatchDone",
    "DownloadProgress",
    "Event",
    "ItemDone",
    "ItemFailed",
    "ItemProgress",
    "ItemQueued",
    "StageChanged",
]


@attrs.frozen
class ItemQueued:
    """An item joined the batch (or was found in the journal), at `stage`."""

    key: str
    input: str
    stage: Stage
    at: float = 0.0


@attrs.frozen
class StageChanged:
    """An item moved from `old` to `new`; the move is already committed to the journal."""

    key: str
    old: Stage
    new: Stage
    at: float = 0.0


@attrs.frozen
class ItemProgress:
    """The service reported `state` and `progress` (0-100, within that state) for an item."""

    key: str
    state: str
    progress: float
    at: float = 0.0


@attrs.frozen
class DownloadProgress:
    """`done` bytes of an item's restored file are on disk, of `total` (None when unknown)."""

    key: str
    done: int
    total: int | None
    at: float = 0.0


@attrs.frozen
class ItemDone:
    """An item finished: its verified output is at `output_path`."""

    key: str
    output_path: str
    size: int
    sha256: str
    skipped: bool = False
    at: float = 0.0


@attrs.frozen
class ItemFailed:
    """An item failed (or was parked for a person) with a reason; the rest of the batch goes on.

    `resumable`: the item did not fail: a failure on our side (network, an expired link) stopped it after
    its retries. Its media is kept, and rerunning the same command resumes it where it stood.
    """

    key: str
    error_code: str
    error_message: str
    parked: bool = False
    resumable: bool = False
    at: float = 0.0


@attrs.frozen
class BatchDone:
    """The batch ended; the counts sum to the number of items.

    `interrupted` after a stop request; `error` when the engine had to stop the batch itself (the
    journal could not be written): rerunning resumes from the last commit.
    """

    done: int
    failed: int
    parked: int
    pending: int
    interrupted: bool = False
    at: float = 0.0
    error: str | None = None


Event: TypeAlias = (
    ItemQueued | StageChanged | ItemProgress | DownloadProgress | ItemDone | ItemFailed | BatchDone
)
