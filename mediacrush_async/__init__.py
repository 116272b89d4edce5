"""Async client for the MediaCrush media-hosting API.

```python
from mediacrush_async import MediaCrushClient

async with MediaCrushClient() as mc:                # $MEDIACRUSH_BASE_URL, else https://mediacru.sh
    up = await mc.upload_file("cat.gif")            # UploadResult(hash, already_uploaded, file)
    st = await mc.wait(up.hash)                     # Status(status=ProcessingStatus.DONE, hash, file)
    for f in st.file.files:
        await mc.download(f, "out/")
```
"""

from __future__ import annotations

from ._client import DownloadOptions, DownloadProgress, MediaCrushClient
from ._enums import ProcessingStatus
from ._errors import (
    ConfigurationError,
    DestinationExistsError,
    DiskFullError,
    DownloadError,
    InvalidArgumentError,
    InvalidURLError,
    MediaCrushAPIError,
    MediaCrushError,
    NotFoundError,
    NotOwnerError,
    RateLimitedError,
    ResponseFormatError,
    ServerError,
    TooLargeError,
    TransportError,
    UnsupportedMediaError,
    WaitTimeoutError,
)
from ._hash import FileInput, content_hash
from ._models import (
    Album,
    ByteBudget,
    Dimensions,
    File,
    FileEntry,
    Metadata,
    Status,
    UploadResult,
)
from ._source import ProgressCallback

__all__ = [
    "Album",
    "ByteBudget",
    "ConfigurationError",
    "DestinationExistsError",
    "Dimensions",
    "DiskFullError",
    "DownloadError",
    "DownloadOptions",
    "DownloadProgress",
    "File",
    "FileEntry",
    "FileInput",
    "InvalidArgumentError",
    "InvalidURLError",
    "MediaCrushAPIError",
    "MediaCrushClient",
    "MediaCrushError",
    "Metadata",
    "NotFoundError",
    "NotOwnerError",
    "ProcessingStatus",
    "ProgressCallback",
    "RateLimitedError",
    "ResponseFormatError",
    "ServerError",
    "Status",
    "TooLargeError",
    "TransportError",
    "UnsupportedMediaError",
    "UploadResult",
    "WaitTimeoutError",
    "content_hash",
]

for _name in __all__:
    _obj = globals()[_name]
    if hasattr(_obj, "__module__") and isinstance(_obj, type | type(content_hash)):
        _obj.__module__ = __name__
del _name, _obj
