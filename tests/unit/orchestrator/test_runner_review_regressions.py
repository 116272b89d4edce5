"""Regressions found by review: a failed reconciliation read, and --retry-failed with media still remote."""

from __future__ import annotations

from pathlib import Path

from orch_fakes import FakeClock, FakeService

from orchestrator import Journal, OutcomeUnknownError, Runner, RunnerConfig, Stage
from orchestrator._polling import PollSettings

POLL = PollSettings(min_interval=1.0, max_interval=20.0)
INPUT = ["https://example.org/media/u0.mov"]


def _config(out: Path, **changes) -> RunnerConfig:
    return RunnerConfig(out_dir=out, poll=POLL, settle=1.0, backoff=0.1, **changes)


async def _run(service, journal_path, config, clock):
    async with (
        Journal(journal_path, service.job_spec()) as journal,
        Runner(service, journal, config=config, clock=clock) as runner,
    ):
        events = [event async for event in runner.run(INPUT)]
        return events, runner.items


class FlakyReconciliation(FakeService):
    """After a call with an unknown outcome, the next read that would settle it fails once."""

    def __init__(self, clock: FakeClock) -> None:
        super().__init__(clock)
        self.fail_next_read = False
        self.start_log: list[str] = []
        self.upload_log: list[str] = []

    async def start(self, remote_id, *, notify_url):
        self.start_log.append(remote_id)
        try:
            return await super().start(remote_id, notify_url=notify_url)
        except OutcomeUnknownError:
            self.fail_next_read = True
            raise

    async def upload(self, source_url, *, notify_url):
        self.upload_log.append(source_url)
        try:
            return await super().upload(source_url, notify_url=notify_url)
        except OutcomeUnknownError:
            self.fail_next_read = True
            raise

    async def status(self, remote_id):
        if self.fail_next_read:
            self.fail_next_read = False
            raise ConnectionError("GetProgress: 503 after the client's retries")
        return await super().status(remote_id)

    async def sweep(self):
        if self.fail_next_read:
            self.fail_next_read = False
            raise ConnectionError("ListMedia: 503 after the client's retries")
        return await super().sweep()


async def test_failed_reconciliation_read_never_resends_start_job(tmp_path):
    """A StartJob with an unknown outcome is reconciled again after a failed read, never sent twice."""
    clock = FakeClock()
    service = FlakyReconciliation(clock)
    service.start_unknown.add("u0")
    _, items = await _run(service, tmp_path / "j.sqlite", _config(tmp_path), clock)
    assert len(service.start_log) == 1, service.start_log
    assert items[0].stage is Stage.DONE


async def test_failed_reconciliation_read_never_resends_upload(tmp_path):
    """An UploadMedia with an unknown outcome is reconciled again after a failed read: one media, none left."""
    clock = FakeClock()
    service = FlakyReconciliation(clock)
    service.upload_unknown.add("u0")
    _, items = await _run(service, tmp_path / "j.sqlite", _config(tmp_path), clock)
    assert len(service.upload_log) == 1, service.upload_log
    assert items[0].stage is Stage.DONE
    assert service.live() == []


class DeleteFails(FakeService):
    """DeleteMedia fails until `deletes_fail` is cleared."""

    deletes_fail = True

    async def delete(self, remote_id):
        if self.deletes_fail:
            raise ConnectionError("DeleteMedia: 503")
        return await super().delete(remote_id)


async def test_retry_failed_keeps_ownership_of_media_it_could_not_delete(tmp_path):
    """--retry-failed does not forget a failed item's media when deleting it failed; a later run deletes it."""
    clock = FakeClock()
    service = DeleteFails(clock)
    service.fail_jobs.add("u0")
    journal = tmp_path / "j.sqlite"
    await _run(service, journal, _config(tmp_path), clock)
    service.fail_jobs.clear()
    await _run(service, journal, _config(tmp_path, retry_failed=True), clock)
    service.deletes_fail = False
    _, items = await _run(service, journal, _config(tmp_path, retry_failed=True), clock)
    assert items[0].stage is Stage.DONE
    assert service.live() == []


async def test_retry_failed_with_keep_remote_retries(tmp_path):
    """--retry-failed --keep-remote retries a failed item whose media is deliberately left remote."""
    clock = FakeClock()
    service = FakeService(clock)
    service.fail_jobs.add("u0")
    journal = tmp_path / "j.sqlite"
    await _run(service, journal, _config(tmp_path, keep_remote=True), clock)
    service.fail_jobs.clear()
    _, items = await _run(
        service, journal, _config(tmp_path, keep_remote=True, retry_failed=True), clock
    )
    assert items[0].stage is Stage.DONE
    assert service.calls["upload"] == 2
