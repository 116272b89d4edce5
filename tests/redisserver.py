"""A real `redis-server` for tests: on a unix socket in a temp dir, persistence off, started and stopped here.

redis-server is Debian's package `redis-server`; the README's test command installs it. A missing binary
fails the test with a clear message (a skip would count as a pass), unless RECURO_TESTS_WITHOUT_REDIS=1
says on purpose that this machine runs the suite without Redis.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest

OPT_OUT = "RECURO_TESTS_WITHOUT_REDIS"
_READY_WITHIN = 15.0


def redis_server_binary() -> str:
    """The redis-server executable; fails (or skips, if opted out) when it is missing."""
    found = shutil.which("redis-server")
    if found is None:
        if os.environ.get(OPT_OUT) == "1":
            pytest.skip(f"redis-server not installed and {OPT_OUT}=1")
        pytest.fail(
            "redis-server is not installed: these tests need a real Redis. Install Debian's package "
            "(apt-get install -y redis-server; the README's test command does it), or set "
            f"{OPT_OUT}=1 to skip them on purpose.",
            pytrace=False,
        )
    return found


class RedisServer:
    """One redis-server process on `socket` (unix://...), no RDB, no AOF: a restart loses everything."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.socket = directory / "redis.sock"
        self._binary = redis_server_binary()
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """The URL redis-py connects to."""
        return f"unix://{self.socket}"

    def start(self) -> None:
        """Start the server and return once it answers PING."""
        import redis

        self._process = subprocess.Popen(
            [
                self._binary,
                "--port",
                "0",
                "--unixsocket",
                str(self.socket),
                "--unixsocketperm",
                "700",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.directory),
                "--loglevel",
                "warning",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + _READY_WITHIN
        while True:
            if self._process.poll() is not None:
                raise RuntimeError(f"redis-server exited with {self._process.returncode} at start")
            try:
                with redis.Redis(unix_socket_path=str(self.socket), socket_timeout=1.0) as probe:
                    if probe.ping():
                        return
            except (redis.ConnectionError, FileNotFoundError, ConnectionRefusedError):
                pass
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"redis-server did not answer PING within {_READY_WITHIN} s")
            time.sleep(0.02)  # readiness poll of a process we started, bounded by the deadline

    def stop(self) -> None:
        """Stop the server at once (SIGKILL: nothing is saved, like a crash)."""
        if self._process is not None and self._process.poll() is None:
            self._process.send_signal(signal.SIGKILL)
            self._process.wait(timeout=10)
        self._process = None
        self.socket.unlink(missing_ok=True)

    def restart(self) -> None:
        """Kill and start again: every key is lost (persistence is off)."""
        self.stop()
        self.start()
