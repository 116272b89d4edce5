"""Suite-wide fixtures: the secret canary, hypothesis profiles, and a log capture that checks for leaks."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, settings

# The whole suite runs with this secret in the environment; no log record may ever contain it.
CANARY_KEY = "canary-key-7Hq2"
CANARY_SECRET = "canary-secret-Zx81Lm0Q"
os.environ["RECURO_API_KEY"] = CANARY_KEY
os.environ["RECURO_API_SECRET"] = CANARY_SECRET
# The clients read their base URL from the environment: a shell that sourced an emulator's lines must not
# point the suite's clients somewhere else.
os.environ.pop("RECURO_BASE_URL", None)
os.environ.pop("MEDIACRUSH_BASE_URL", None)

settings.register_profile(
    "ci", max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.register_profile(
    "full", max_examples=1000, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

_WATCHED_LOGGERS = (
    "recuro_async",
    "mediacrush_async",
    "orchestrator",
    "_clientkit",
    "httpx",
    "httpcore",
    "uvicorn",
)


class _Recorder(logging.Handler):
    def __init__(self) -> None:
        super().__init__(level=logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        try:
            text = record.getMessage()
        except Exception:
            text = f"{record.msg!r} {record.args!r}"
        self.lines.append(f"{record.name}: {text} {record.__dict__!r}")


@pytest.fixture(autouse=True)
def secret_never_logged() -> Iterator[None]:
    """Every test runs with DEBUG logging captured; a record holding the canary secret fails the test."""
    recorder = _Recorder()
    saved = []
    for name in _WATCHED_LOGGERS:
        logger = logging.getLogger(name)
        saved.append((logger, logger.level))
        logger.setLevel(logging.DEBUG)
        logger.addHandler(recorder)
    try:
        yield
    finally:
        for logger, level in saved:
            logger.removeHandler(recorder)
            logger.setLevel(level)
    leaked = [line for line in recorder.lines if CANARY_SECRET in line]
    assert not leaked, f"the API secret leaked into a log record: {leaked[0][:200]}"


@pytest.fixture
def canary_secret() -> str:
    """The known secret the suite runs with."""
    return CANARY_SECRET


@pytest.fixture
def canary_key() -> str:
    """The API key paired with the canary secret."""
    return CANARY_KEY
