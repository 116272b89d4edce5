"""Named defaults of the Recuro client."""

from __future__ import annotations

from typing import Final

DEFAULT_BASE_URL: Final = "https://www.recuromedia.com/api/1.0/"
API_KEY_ENV: Final = "RECURO_API_KEY"
API_SECRET_ENV: Final = "RECURO_API_SECRET"  # noqa: S105 - the variable's name, not a secret
BASE_URL_ENV: Final = "RECURO_BASE_URL"

DEFAULT_MAX_REQUESTS: Final = (
    200  # "rate limited to a maximum of 200 requests/minute" (seed, Authentication)
)
DEFAULT_PERIOD: Final = 60.0
DEFAULT_TIMEOUT: Final = 30.0
DEFAULT_CONNECT_TIMEOUT: Final = 10.0
CALL_DEADLINE_FACTOR: Final = 2.0  # the default call deadline is this many times `timeout`
DEFAULT_MAX_RETRIES: Final = 4
DEFAULT_POLL_INTERVAL: Final = 10.0
MAX_POLL_INTERVAL: Final = 60.0
BODY_EXCERPT_CHARS: Final = 200
USER_AGENT: Final = "recuro-async/0.1"
