"""Batch engine: drives many items through a service (Recuro, MediaCrush), crash-safe, inside one rate budget.

```python
async with (
    Journal(out / ".recuro-journal.sqlite", adapter.job_spec()) as journal,
    LocalFileServer() as stager,
    Runner(adapter, journal, config=RunnerConfig(out_dir=out), stager=stager) as runner,
):
    stager.set_fetch_hook(runner.record_fetch)
    async for event in runner.run(inputs):   # ItemQueued, StageChanged, ..., ItemDone, BatchDone
        dashboard.update(event)
```
The engine is service-agnostic: it talks to a `ServiceAdapter` (`RecuroAdapter`, `MediaCrushAdapter`).
"""

from __future__ import annotations

from ._adapters.mediacrush import MediaCrushAdapter
from ._adapters.recuro import RecuroAdapter
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
from ._report import Report, ReportItem, build_report
from ._runner import Runner, RunnerConfig
from ._service import (
    ItemError,
    JobSpec,
    NotReadyError,
    OutcomeUnknownError,
    Phase,
    RemoteMedia,
    RemoteStatus,
    ServiceAdapter,
)
from ._stages import Item, Stage
from ._staging import AccessRecord, LocalFileServer, StagedSource, Stager

__all__ = [
    "AccessRecord",
    "BatchDone",
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
    "NotReadyError",
    "OutcomeUnknownError",
    "Phase",
    "PollSettings",
    "RecuroAdapter",
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
    "build_report",
]

for _name in __all__:
    _obj = globals()[_name]
    if isinstance(_obj, type) and _obj.__module__.startswith("orchestrator."):
        _obj.__module__ = "orchestrator"
del _name, _obj
