"""Batch engine: drives many items through a service (Recuro, MediaCrush), crash-safe, inside one rate budget.

```python
async with open_batch(adapter, out, stager=LocalFileServer()) as batch:
    async for event in batch.run(inputs):   # ItemQueued, StageChanged, ..., ItemDone, BatchDone
        dashboard.update(event)
print(batch.report().totals)
```
The engine is service-agnostic: it talks to a `ServiceAdapter` (`RecuroAdapter`, `MediaCrushAdapter`), and
finds what a service can do beyond upload, status, download and delete with `isinstance` (`Starter`,
`Sweeper`, `Notifier`, `Prechecker`, `Preflight`). Adding a service: the README's "Add a service".
"""

from __future__ import annotations

from ._adapters.mediacrush import MediaCrushAdapter
from ._adapters.recuro import RecuroAdapter
from ._batch import Batch, open_batch
from ._demo import Demo, MediaCrushDemo, RecuroDemo
from ._events import (
    BatchDone,
    DownloadProgress,
    Event,
    ItemDone,
    ItemFailed,
    ItemProgress,
    ItemQueued,
    StageChanged,
)
from ._journal import Intent, Journal, JournalError, JournalMismatchError
from ._polling import PollSettings
from ._report import Report, ReportItem, Tally, build_report
from ._runner import Runner, RunnerConfig
from ._service import (
    Describer,
    ItemError,
    JobSpec,
    Notifier,
    NotReadyError,
    OutcomeUnknownError,
    Phase,
    Prechecker,
    Preflight,
    RemoteMedia,
    RemoteStatus,
    ServiceAdapter,
    Starter,
    Sweeper,
    Uploaded,
)
from ._stages import Item, Stage
from ._staging import AccessRecord, LocalFileServer, PushStager, StagedSource, Stager

__all__ = [
    "AccessRecord",
    "Batch",
    "BatchDone",
    "Demo",
    "Describer",
    "DownloadProgress",
    "Event",
    "Intent",
    "Item",
    "ItemDone",
    "ItemError",
    "ItemFailed",
    "ItemProgress",
    "ItemQueued",
    "JobSpec",
    "Journal",
    "JournalError",
    "JournalMismatchError",
    "LocalFileServer",
    "MediaCrushAdapter",
    "MediaCrushDemo",
    "NotReadyError",
    "Notifier",
    "OutcomeUnknownError",
    "Phase",
    "PollSettings",
    "Prechecker",
    "Preflight",
    "PushStager",
    "RecuroAdapter",
    "RecuroDemo",
    "RemoteMedia",
    "RemoteStatus",
    "Report",
    "ReportItem",
    "Runner",
    "RunnerConfig",
    "ServiceAdapter",
    "Stage",
    "StageChanged",
    "StagedSource",
    "Stager",
    "Starter",
    "Sweeper",
    "Tally",
    "Uploaded",
    "build_report",
    "open_batch",
]

for _name in __all__:
    _obj = globals()[_name]
    if isinstance(_obj, type) and _obj.__module__.startswith("orchestrator."):
        _obj.__module__ = "orchestrator"
del _name, _obj
