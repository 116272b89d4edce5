"""What every `recuro` subcommand shares: credentials, base URL, client construction, exit codes."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any, Final

import anyio

from recuro_async import ConfigurationError, RecuroClient, RecuroError
from recuro_async._constants import API_KEY_ENV, API_SECRET_ENV, BASE_URL_ENV, DEFAULT_BASE_URL

__all__ = [
    "EXIT_FAILED",
    "EXIT_INTERRUPTED",
    "EXIT_OK",
    "EXIT_USAGE",
    "add_connection_arguments",
    "client_from_args",
    "fail",
    "run_async",
]

EXIT_OK: Final = 0
EXIT_FAILED: Final = 1
EXIT_USAGE: Final = 2
EXIT_INTERRUPTED: Final = 130


def add_connection_arguments(parser: argparse.ArgumentParser) -> None:
    """--base-url, --api-key and --api-secret-file (the secret is never taken on the command line)."""
    parser.add_argument(
        "--base-url",
        default=os.environ.get(BASE_URL_ENV, DEFAULT_BASE_URL),
        help=f"API base URL (default: ${BASE_URL_ENV} or {DEFAULT_BASE_URL})",
    )
    parser.add_argument("--api-key", default=None, help=f"API key (default: ${API_KEY_ENV})")
    parser.add_argument(
        "--api-secret-file",
        type=Path,
        default=None,
        help=f"file holding the API secret (default: ${API_SECRET_ENV})",
    )


def credentials_from_args(args: argparse.Namespace) -> tuple[str | None, str | None]:
    """The key and secret named on the command line; None means "from the environment"."""
    secret: str | None = None
    if args.api_secret_file is not None:
        try:
            secret = args.api_secret_file.read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise ConfigurationError(
                f"--api-secret-file: cannot read {str(args.api_secret_file)!r}: {exc.strerror}"
            ) from exc
    return args.api_key, secret


def client_from_args(args: argparse.Namespace, **kwargs: Any) -> RecuroClient:
    """A client configured from the command line and the environment."""
    key, secret = credentials_from_args(args)
    return RecuroClient(key, secret, base_url=args.base_url, **kwargs)


def fail(message: str) -> None:
    """Print an error for a person, on stderr."""
    print(f"recuro: error: {message}", file=sys.stderr)


def run_async(main: Callable[[], Coroutine[Any, Any, int]]) -> int:
    """Run a subcommand; map configuration errors to 2, API failures to 1 and Ctrl-C to 130."""
    try:
        return anyio.run(main)
    except KeyboardInterrupt:
        fail("interrupted")
        return EXIT_INTERRUPTED
    except (ConfigurationError, ValueError) as exc:
        fail(str(exc))
        return EXIT_USAGE
    except RecuroError as exc:
        fail(str(exc))
        return EXIT_FAILED
