"""Private bases of the error classes both clients define for the same concept (attributes and messages).

Each client's public class derives from its own package base first and from one of these second, e.g.
`class DiskFullError(DownloadError, DiskFullBase)`: `except RecuroError`, `except OSError` and
`except recuro_async.DownloadError` keep working, and a Recuro error is never a MediaCrush one. These
bases are not exported by either client; users catch the clients' classes.
"""

from __future__ import annotations

import errno

__all__ = [
    "DestinationExistsBase",
    "DiskFullBase",
    "DownloadErrorBase",
    "InvalidArgumentBase",
    "TransportErrorBase",
]


class InvalidArgumentBase(ValueError):
    """An argument is invalid; raised before any request is sent. `field` names the argument."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field


class TransportErrorBase(Exception):
    """The request failed on the network after retries; `request_sent` tells if the server may have it."""

    def __init__(self, message: str, *, request_sent: bool) -> None:
        super().__init__(message)
        self.request_sent = request_sent


class DownloadErrorBase(Exception):
    """A download that cannot complete; `reason` says why, `part_path` is the kept partial file (if any)."""

    def __init__(self, reason: str, *, part_path: str | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.part_path = part_path


class DiskFullBase(DownloadErrorBase, OSError):
    """The disk (or quota) filled up during a download; the `.part` is kept for a resume after freeing space.

    `path` is the file that was being written, `needed_bytes` how many more bytes the download needs
    (None if the size is unknown). Also an `OSError` with `errno.ENOSPC`.
    """

    def __init__(self, reason: str, *, path: str, needed_bytes: int | None) -> None:
        DownloadErrorBase.__init__(self, reason, part_path=path)
        self.errno = errno.ENOSPC
        self.filename = path
        self.path = path
        self.needed_bytes = needed_bytes

    def __str__(self) -> str:
        return self.reason


class DestinationExistsBase(DownloadErrorBase, FileExistsError):
    """The download's final file exists; it is never replaced unless `overwrite=True` is passed."""

    def __init__(self, reason: str, *, path: str) -> None:
        DownloadErrorBase.__init__(self, reason)
        self.errno = errno.EEXIST
        self.filename = path
        self.path = path

    def __str__(self) -> str:
        return self.reason
