"""A throw-away nginx serving one directory on loopback, with a per-connection rate cap (B2's common web server).

nginx (Debian's `nginx-light`) names `Accept-Ranges` on 200 responses only, unlike our emulator: the row
that uses it shows whether segments engage against a server as most are. It runs in the foreground as one
process (`daemon off; master_process off`), with its own prefix, pid, logs and temp paths in a scratch
directory, and is stopped (TERM, then KILL) when the `with` block ends.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from pathlib import Path
from types import TracebackType
from typing import Self

_CANDIDATES = ("nginx", "/usr/sbin/nginx")


def nginx_binary() -> str | None:
    """The nginx executable, or None when it is not installed."""
    for name in _CANDIDATES:
        found = shutil.which(name)
        if found is not None:
            return found
    return None


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


class Nginx:
    """nginx serving `root` at `http://127.0.0.1:PORT/`, each connection capped at `rate` bytes/s."""

    def __init__(self, binary: str, root: Path, scratch: Path, *, rate: int) -> None:
        self.binary, self.root, self.scratch, self.rate = binary, root, scratch, rate
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.access_log = scratch / "access.log"
        self._proc: subprocess.Popen[bytes] | None = None
        self._seen = 0

    def _config(self) -> str:
        s = self.scratch
        temp = " ".join(
            f"{kind}_temp_path {s / kind};"
            for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
        )
        return (
            "daemon off; master_process off; worker_processes 1;\n"
            f"pid {s / 'nginx.pid'}; error_log {s / 'error.log'} warn;\n"
            "events { worker_connections 256; }\n"
            "http {\n"
            "  sendfile on; tcp_nopush on; keepalive_timeout 30;\n"
            "  log_format counts '$status $body_bytes_sent';\n"
            f"  access_log {self.access_log} counts;\n"
            f"  {temp}\n"
            f"  server {{ listen 127.0.0.1:{self.port}; root {self.root}; limit_rate {self.rate}; }}\n"
            "}\n"
        )

    def __enter__(self) -> Self:
        self.scratch.mkdir(parents=True, exist_ok=True)
        conf = self.scratch / "nginx.conf"
        conf.write_text(self._config())
        self._proc = subprocess.Popen(
            [
                self.binary,
                "-p",
                str(self.scratch),
                "-c",
                str(conf),
                "-e",
                str(self.scratch / "error.log"),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                err = self._proc.stderr.read().decode(errors="replace") if self._proc.stderr else ""
                raise RuntimeError(f"nginx exited {self._proc.returncode}: {err.strip()[-400:]}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
            except OSError:
                time.sleep(0.05)
                continue
            return self
        self.__exit__(None, None, None)
        raise RuntimeError("nginx did not start listening within 10 s")

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        proc, self._proc = self._proc, None
        if proc is None:
            return
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if proc.stderr is not None:
            proc.stderr.close()

    def counts(self) -> tuple[int, int]:
        """(responses, body bytes) logged since the last call."""
        lines = self.access_log.read_text().splitlines() if self.access_log.exists() else []
        new, self._seen = lines[self._seen :], len(lines)
        return len(new), sum(int(line.split()[1]) for line in new if len(line.split()) == 2)
