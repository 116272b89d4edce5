"""Each adapter's batch settings (`Adapter.batch_config`) and Recuro's batch client (`RecuroAdapter.batch_client`): what the
commands use, and what an embedder gets from the same calls."""

from __future__ import annotations

from pathlib import Path

import pytest

from _clientkit._limiter import SlidingWindowLimiter
from orchestrator._adapters import mediacrush, recuro
from orchestrator._budget import JournaledWindow


async def test_a_recuro_batch_client_keeps_its_window_in_a_journaled_limiter(monkeypatch):
    """Without Redis, the client's limiter is the returned JournaledWindow over a paced sliding window
    of `rate_limit` requests per `period`."""
    monkeypatch.delenv("RECURO_REDIS_URL", raising=False)
    client, window = recuro.RecuroAdapter.batch_client(
        "k", "s", rate_limit=30, period=6.0, base_url="http://127.0.0.1:9/"
    )
    async with client:
        assert client.limiter is window
        assert isinstance(window, JournaledWindow)
        inner = window.inner
        assert isinstance(inner, SlidingWindowLimiter)
        assert inner.max_requests == 30


@pytest.mark.parametrize("from_env", [False, True])
async def test_a_recuro_batch_client_with_redis_shares_the_window_there(monkeypatch, from_env):
    """`redis_url` (or $RECURO_REDIS_URL) puts the window in Redis; the journal's wrapper then keeps none."""
    url = "redis://127.0.0.1:9/0"
    monkeypatch.delenv("RECURO_REDIS_URL", raising=False)
    if from_env:
        monkeypatch.setenv("RECURO_REDIS_URL", url)
    client, window = recuro.RecuroAdapter.batch_client(
        "k", "s", redis_url=None if from_env else url, base_url="http://127.0.0.1:9/"
    )
    async with client:
        assert type(client.limiter).__name__ == "RedisLimiter"
        assert window.inner is client.limiter


def test_batch_configs_are_tuned_per_service_and_overridable():
    """Recuro: Little's-law max_active and webhook polling on request; MediaCrush: quick polls, no settle."""
    out = Path("out")
    tuned = recuro.RecuroAdapter.batch_config(out)
    assert (tuned.out_dir, tuned.max_active, tuned.poll.webhook) == (
        out,
        recuro.DEFAULT_MAX_ACTIVE,
        False,
    )
    assert recuro.RecuroAdapter.batch_config(out, webhook=True, max_active=5).poll.webhook
    assert recuro.RecuroAdapter.batch_config(out, max_active=5).max_active == 5
    crush = mediacrush.MediaCrushAdapter.batch_config(out, keep_remote=True)
    assert (crush.settle, crush.max_active, crush.max_uploads, crush.keep_remote) == (
        0.0,
        16,
        4,
        True,
    )
    assert (crush.poll.min_interval, crush.poll.max_interval) == (0.5, 10.0)
    with pytest.raises(TypeError):
        mediacrush.MediaCrushAdapter.batch_config(out, no_such_knob=1)


def test_recuro_takes_http_urls_and_local_files_of_its_containers(tmp_path: Path):
    """Each input is judged before any request: a URL needs a host, other schemes and containers the
    service does not read are refused, naming the input (and the supported containers)."""
    problem = recuro.RecuroAdapter.input_problem
    reel = tmp_path / "reel.mov"
    reel.write_bytes(b"moov")
    notes = tmp_path / "notes.txt"
    notes.write_bytes(b"text")
    assert problem("https://example.org/reel.mov") is None
    assert problem(str(reel)) is None
    assert problem("https://") == "https://: not a valid URL"
    assert problem("ftp://example.org/reel.mov") == (
        "ftp://example.org/reel.mov: only http(s) URLs or local files can be restored"
    )
    refused = problem(str(notes))
    assert refused is not None
    assert refused.startswith(f"{notes}: unsupported container '.txt'; supported: ")
    assert "MOV" in refused
    assert problem(str(tmp_path / "gone.mov")) == f"{tmp_path / 'gone.mov'}: no such file"


def test_mediacrush_takes_readable_local_files_of_any_kind(tmp_path: Path):
    """MediaCrush is sent the bytes: any readable, non-empty local file will do, whatever its kind."""
    problem = mediacrush.MediaCrushAdapter.input_problem
    notes = tmp_path / "notes.txt"
    notes.write_bytes(b"text")
    assert problem(str(notes)) is None
    assert problem(str(tmp_path)) == f"{tmp_path}: is a directory, not a regular file"
    assert problem(str(tmp_path / "gone.gif")) == f"{tmp_path / 'gone.gif'}: no such file"
