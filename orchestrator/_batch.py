"""Opening a batch: the journal (and its run lock), staging, callbacks and the `Runner`, wired in one place.

```python
async with open_batch(adapter, out, stager=LocalFileServer()) as batch:
    async for event in batch.run(inputs):   # ItemQueued, StageChanged, ..., BatchDone
        show(event)
report = batch.report()                       # every item, as the journal has it once the batch ended
```
The same call serves every service: what a service can do beyond the core protocol (callbacks, a job to
start, an account listing) is found on the adapter by `isinstance`, so a new service needs no change here.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Iterable, Sequence
from pathlib import Path
from typing import Final

import attrs
from anyio.streams.memory import MemoryObjectReceiveStream

from ._attribution import StagedCallbacks, UploadCallbacks
from ._budget import JournaledWindow
from ._config import RunnerConfig
from ._effects import CrashPoint
from ._events import Event, ItemDone
from ._journal import Journal
from ._report import Report, build_report
from ._runner import Runner
from ._service import Describer, JobSpec, Notifier, RemoteStatus, ServiceAdapter
from ._stages import Item
from ._staging import LocalFileServer, Stager

__all__ = ["LOCAL_NOTIFY", "Batch", "journal_path", "open_batch"]

LOCAL_NOTIFY: Final = "local"
"""`notify=LOCAL_NOTIFY`: callbacks go to the staging server's own address (a service on loopback)."""
_STAGING_PORT: Final = "staging_port"  # journal meta: where the last run's staging server listened


def journal_path(adapter: ServiceAdapter, out: Path, journal: Path | None = None) -> Path:
    """Where the batch's journal lives: `journal`, else `out/.<service>-journal.sqlite`."""
    return (journal or out / f".{adapter.name}-journal.sqlite").expanduser()


@attrs.define
class Batch:
    """An open batch: its runner (to run, stop or abort it), journal, job spec and adapter.

    `items` is the batch's final state, read from the journal once the runner has ended (empty before).
    """

    runner: Runner
    journal: Journal
    spec: JobSpec
    adapter: ServiceAdapter
    items: list[Item] = attrs.field(factory=list)

    def run(self, inputs: Iterable[str]) -> MemoryObjectReceiveStream[Event]:
        """Start the batch (the journal's items plus `inputs`); the stream of its events."""
        return self.runner.run(inputs)

    async def describe(self, event: ItemDone) -> Sequence[str]:
        """What a finished item's output stands for (its files), when the service says (`Describer`)."""
        if isinstance(self.adapter, Describer):
            return await self.adapter.describe(Path(event.output_path))
        return ()

    def report(self, *, interrupted: bool = False) -> Report:
        """The report of the ended batch."""
        return build_report(
            self.items,
            service=self.spec.service,
            settings=self.spec.settings,
            interrupted=interrupted,
        )


@contextlib.asynccontextmanager
async def open_batch(
    adapter: ServiceAdapter,
    out: Path,
    *,
    stager: Stager | None = None,
    notify: str | None = None,
    journal: Path | None = None,
    config: RunnerConfig | None = None,
    window: JournaledWindow | None = None,
    crash_at: CrashPoint | None = None,
    callbacks: UploadCallbacks | bool = True,
) -> AsyncIterator[Batch]:
    """Open the journal (taking its run lock), start `stager`, wire callbacks, and run a `Runner` inside.

    Args:
        adapter: the service.
        out: the output directory (`config.out_dir` is set to it).
        stager: makes local inputs reachable (`LocalFileServer`, started and stopped with the batch, or
            `PushStager`); None for a batch of URLs only.
        notify: for a `Notifier` adapter, the public base URL at which `stager` (a `LocalFileServer`) is
            reachable for callbacks, or `LOCAL_NOTIFY` for its own address; None polls.
        journal: the journal's path (default: `journal_path(adapter, out)`).
        config: the engine's knobs (default: `RunnerConfig`'s).
        window: the client's limiter wrapped to keep its window in the journal (`JournaledWindow`).
        crash_at: a test hook that ends the process at the n-th effect.
        callbacks: per-input upload callbacks (`_attribution.py`), so several uploads share the wire:
            True (default) serves them on `stager` for a `Notifier` service (`StagedCallbacks`), and the
            staging server listens on the same port as the journal's last run when it can, so a rerun
            receives what was meant for a killed run; False: none (uploads one at a time).

    Raises `JournalError` when the journal belongs to another job or another run holds it, and
    `ValueError` when `notify` is given to a service without callbacks or without a `LocalFileServer`.
    """
    spec = adapter.job_spec()
    config = attrs.evolve(config or RunnerConfig(out_dir=out), out_dir=out)
    if notify is not None and not (
        isinstance(adapter, Notifier) and isinstance(stager, LocalFileServer)
    ):
        raise ValueError(
            f"notify: the {adapter.name} service sends no callbacks, or there is no LocalFileServer"
        )
    opened = Journal(journal_path(adapter, out, journal), spec)
    await opened.open()  # the run's lock first: a second run on this journal stops here
    async with contextlib.aclosing(opened), contextlib.AsyncExitStack() as stack:
        if isinstance(stager, LocalFileServer):
            stager.prefer_port(await opened.get_meta(_STAGING_PORT))
            await stack.enter_async_context(stager)
            await opened.set_meta(_STAGING_PORT, stager.port)
        attributing: UploadCallbacks | None = None
        if callbacks is True:
            if isinstance(adapter, Notifier) and isinstance(stager, LocalFileServer):
                attributing = StagedCallbacks(stager, adapter)
        elif callbacks is not False:
            attributing = callbacks
        runner: Runner | None = None

        def deliver(remote_id: str, status: RemoteStatus) -> None:
            # callbacks can only come once the runner has handed the service its notify_url
            if runner is not None:
                runner.notify(remote_id, status)

        if notify is not None:
            assert isinstance(adapter, Notifier)  # noqa: S101 - checked above
            assert isinstance(stager, LocalFileServer)  # noqa: S101
            webhook = adapter.webhook(deliver)
            mounted = stager.mount("hooks", webhook)
            public = mounted if notify == LOCAL_NOTIFY else notify.rstrip("/") + "/hooks"
            config = attrs.evolve(config, notify_url=webhook.notify_url(public))
        runner = Runner(
            adapter,
            opened,
            config=config,
            stager=stager,
            crash_at=crash_at,
            window=window,
            callbacks=attributing,
        )
        batch = Batch(runner, opened, spec, adapter)
        async with runner:
            yield batch
        batch.items = await opened.load()
