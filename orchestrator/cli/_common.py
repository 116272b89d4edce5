"""What every `recuro` subcommand shares: credentials, base URL, client construction, errors (`RECURO`)."""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any, Final

from recuro_async import ConfigurationError, RecuroClient, RecuroError
from recuro_async._constants import API_KEY_ENV, API_SECRET_ENV, BASE_URL_ENV, DEFAULT_BASE_URL

from ._main import Service, Voice, add_base_url

__all__ = ["RECURO", "add_connection_arguments", "client_from_args"]


def add_connection_arguments(parser: argparse.ArgumentParser) -> None:
    """--base-url, --api-key and --api-secret-file (the secret is never taken on the command line).

    Precedence, the same as `RecuroClient()`'s: the option, else the environment variable (an empty value
    counts as unset), else the production URL.
    """
    add_base_url(parser, env=BASE_URL_ENV, default=DEFAULT_BASE_URL, what="API")
    parser.add_argument(
        "--api-key", default=None, metavar="KEY", help=f"API key (default: ${API_KEY_ENV})"
    )
    parser.add_argument(
        "--api-secret-file",
        type=Path,
        default=None,
        metavar="FILE",
        help=f"read the API secret from FILE; without it the secret is the value of ${API_SECRET_ENV} "
        "(never given on the command line, never printed)",
    )


def credentials_from_args(args: argparse.Namespace) -> tuple[str | None, str | None]:
    """The key and secret named on the command line; None means "from the environment".

    Raises `ConfigurationError` naming both the options and the variables when either is missing.
    """
    secret: str | None = None
    if args.api_secret_file is not None:
        try:
            secret = args.api_secret_file.read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise ConfigurationError(
                f"--api-secret-file: cannot read {str(args.api_secret_file)!r}: {exc.strerror}"
            ) from exc
        if not secret:
            raise ConfigurationError(
                f"--api-secret-file {str(args.api_secret_file)!r}: the file is empty"
            )
    missing = []
    if not (args.api_key or os.environ.get(API_KEY_ENV)):
        missing.append(("the API key", f"--api-key KEY or set {API_KEY_ENV}"))
    if not (secret or os.environ.get(API_SECRET_ENV)):
        missing.append(("the API secret", f"--api-secret-file FILE or set {API_SECRET_ENV}"))
    if missing:
        raise ConfigurationError(
            "missing Recuro credentials: "
            + "; ".join(f"{what}: pass {how}" for what, how in missing)
        )
    return args.api_key, secret


def client_from_args(args: argparse.Namespace, **kwargs: Any) -> RecuroClient:
    """A client configured from the command line and the environment."""
    key, secret = credentials_from_args(args)
    return RecuroClient(key, secret, base_url=args.base_url, **kwargs)


RECURO: Final = Service[RecuroClient](
    voice=Voice("recuro"),
    packages=("recuro_async",),
    connect=client_from_args,
    add_connection=add_connection_arguments,
    usage=(ConfigurationError,),
    failed=(RecuroError,),
)
