"""Typed async client for the Recuro Media video-restoration API 1.0.

```python
async with RecuroClient() as recuro:          # RECURO_BASE_URL, RECURO_API_KEY, RECURO_API_SECRET
    file_id = await recuro.upload_media("https://example.org/reel1.mov")
```
The emulator of the service is in `recuro_async.testing`; callbacks in `recuro_async.webhooks`.
"""

from __future__ import annotations

from _clientkit._limiter import Pacing
from _clientkit._redis_limiter import LimiterUnavailableError, RedisLimiter

from ._client import DownloadOptions, RecuroClient
from ._enums import Filter, InputContainer, OutputFormat, State
from ._errors import (
    ConfigurationError,
    DestinationExistsError,
    DiskFullError,
    DownloadError,
    DownloadLinkExpiredError,
    InvalidArgumentError,
    MediaNotFoundError,
    RateLimitedError,
    RecuroAPIError,
    RecuroError,
    RecuroHTTPError,
    ResponseFormatError,
    ServerError,
    TransportError,
    WaitTimeoutError,
)
from ._models import FilterInfo, Media, OutputFormatInfo, Progress, RateLimit

__all__ = [
    "ConfigurationError",
    "DestinationExistsError",
    "DiskFullError",
    "DownloadError",
    "DownloadLinkExpiredError",
    "DownloadOptions",
    "Filter",
    "FilterInfo",
    "InputContainer",
    "InvalidArgumentError",
    "LimiterUnavailableError",
    "Media",
    "MediaNotFoundError",
    "OutputFormat",
    "OutputFormatInfo",
    "Pacing",
    "Progress",
    "RateLimit",
    "RateLimitedError",
    "RecuroAPIError",
    "RecuroClient",
    "RecuroError",
    "RecuroHTTPError",
    "RedisLimiter",
    "ResponseFormatError",
    "ServerError",
    "State",
    "TransportError",
    "WaitTimeoutError",
]

for _name in __all__:
    _obj = globals()[_name]
    if getattr(_obj, "__module__", "").startswith(("recuro_async.", "_clientkit.")):
        _obj.__module__ = "recuro_async"
del _name, _obj


def __getattr__(name: str) -> str:
    if name == "__version__":
        from importlib.metadata import version

        return version("recuro-mediacrush-async")
    raise AttributeError(f"module 'recuro_async' has no attribute {name!r}")
