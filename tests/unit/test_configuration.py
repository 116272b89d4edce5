"""One configuration story (issue 12): the clients read the same environment variables as the CLI.

Precedence, for both clients: an explicit argument, else the environment variable (an empty value counts
as unset), else the built-in default. A connection failure names the origin it tried, never credentials.
"""

from __future__ import annotations

import os
import shlex
import socket
import subprocess

import httpx
import pytest
from fakeclock import FakeClock

from mediacrush_async import MediaCrushClient
from mediacrush_async import TransportError as MediaCrushTransportError
from recuro_async import ConfigurationError, RecuroClient, TransportError

RECURO_DEFAULT = "https://www.recuromedia.com/api/1.0/"
MEDIACRUSH_DEFAULT = "https://mediacru.sh"


@pytest.fixture
def no_base_urls(monkeypatch):
    monkeypatch.delenv("RECURO_BASE_URL", raising=False)
    monkeypatch.delenv("MEDIACRUSH_BASE_URL", raising=False)
    return monkeypatch


async def test_recuro_client_reads_recuro_base_url(no_base_urls):
    """`RecuroClient()` goes where `recuro ...` goes: RECURO_BASE_URL, not the production URL."""
    no_base_urls.setenv("RECURO_BASE_URL", "http://127.0.0.1:8080/api/1.0/")
    async with RecuroClient() as client:
        assert client.base_url == "http://127.0.0.1:8080/api/1.0/"


async def test_recuro_explicit_base_url_wins_over_the_environment(no_base_urls):
    """An argument beats the environment; an empty variable counts as unset."""
    no_base_urls.setenv("RECURO_BASE_URL", "http://127.0.0.1:8080/api/1.0/")
    async with RecuroClient(base_url="https://api.test/api/1.0/") as client:
        assert client.base_url == "https://api.test/api/1.0/"
    no_base_urls.setenv("RECURO_BASE_URL", "")
    async with RecuroClient() as client:
        assert client.base_url == RECURO_DEFAULT


async def test_recuro_bad_base_url_in_the_environment_names_the_variable(no_base_urls):
    """An insecure URL from the environment is refused, and the error says where it came from."""
    no_base_urls.setenv("RECURO_BASE_URL", "http://recuro.example/api/")
    with pytest.raises(ConfigurationError, match="RECURO_BASE_URL"):
        RecuroClient()


async def test_mediacrush_client_reads_mediacrush_base_url(no_base_urls):
    """`MediaCrushClient()` reads MEDIACRUSH_BASE_URL; an argument wins; empty means unset."""
    no_base_urls.setenv("MEDIACRUSH_BASE_URL", "http://127.0.0.1:8081")
    async with MediaCrushClient() as client:
        assert client.base_url == "http://127.0.0.1:8081"
    async with MediaCrushClient("https://mc.test") as client:
        assert client.base_url == "https://mc.test"
    no_base_urls.setenv("MEDIACRUSH_BASE_URL", "")
    async with MediaCrushClient() as client:
        assert client.base_url == MEDIACRUSH_DEFAULT


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def test_recuro_connection_error_names_the_host(no_base_urls, canary_secret):
    """'cannot connect' says which scheme://host:port was tried, and never the secret."""
    port = _closed_port()
    clock = FakeClock()
    async with RecuroClient(
        base_url=f"http://127.0.0.1:{port}/api/1.0/", max_retries=0, clock=clock
    ) as client:
        with pytest.raises(TransportError) as info:
            await client.list_media()
    assert f"http://127.0.0.1:{port}" in str(info.value)
    assert canary_secret not in str(info.value)


async def test_mediacrush_connection_error_names_the_host(no_base_urls):
    """The same for MediaCrush; credentials in a URL are never part of the message."""
    port = _closed_port()
    async with MediaCrushClient(
        f"http://127.0.0.1:{port}", max_retries=0, clock=FakeClock()
    ) as client:
        with pytest.raises(MediaCrushTransportError) as info:
            await client.exists("AAAAAAAAAAAA")
    assert f"http://127.0.0.1:{port}" in str(info.value)


async def test_recuro_error_names_the_default_port(no_base_urls):
    """An https URL without a port is named with :443, so the reader knows what was dialled."""

    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    async with (
        httpx.AsyncClient(transport=httpx.MockTransport(refuse)) as http,
        RecuroClient(
            base_url="https://user:pw@api.test/api/1.0/",
            max_retries=0,
            http_client=http,
            clock=FakeClock(),
        ) as client,
    ):
        with pytest.raises(TransportError) as info:
            await client.list_media()
    assert "https://api.test:443" in str(info.value)
    assert "pw" not in str(info.value).replace("https", "")


def test_missing_credentials_from_the_library_name_the_variables(no_base_urls):
    """Raised by the library, the error names RECURO_API_KEY and RECURO_API_SECRET."""
    no_base_urls.delenv("RECURO_API_KEY")
    no_base_urls.delenv("RECURO_API_SECRET")
    with pytest.raises(ConfigurationError) as info:
        RecuroClient()
    assert "RECURO_API_KEY" in str(info.value)
    assert "RECURO_API_SECRET" in str(info.value)


@pytest.mark.parametrize("command", ["recuro", "mediacrush"])
def test_emulator_lines_are_eval_able_exports(command, tmp_path):
    """The emulator's first lines, passed to `eval` in a real shell, export the variables."""
    lines = {
        "recuro": [
            "export RECURO_BASE_URL=http://127.0.0.1:1/api/1.0/",
            "export RECURO_API_KEY=demo-key",
            "export RECURO_API_SECRET='s3cr$t x'",
        ],
        "mediacrush": ["export MEDIACRUSH_BASE_URL=http://127.0.0.1:1"],
    }[command]
    from mediacrush_async.testing._cli import export_lines as mediacrush_lines
    from recuro_async.testing._cli import export_lines as recuro_lines

    if command == "recuro":
        printed = recuro_lines("http://127.0.0.1:1/api/1.0/", "demo-key", "s3cr$t x")
    else:
        printed = mediacrush_lines("http://127.0.0.1:1")
    assert printed.splitlines() == lines
    script = f"eval {shlex.quote(printed)}; env"
    result = subprocess.run(
        ["/bin/sh", "-c", script], capture_output=True, text=True, check=True, env={}
    )
    exported = dict(line.split("=", 1) for line in result.stdout.splitlines() if "=" in line)
    for line in lines:
        name, value = line.removeprefix("export ").split("=", 1)
        assert exported[name] == shlex.split(value)[0]


def _recuro_args(*argv: str):
    from orchestrator.cli.recuro import build_parser

    return build_parser().parse_args(list(argv))


def test_missing_credentials_from_the_cli_name_the_flags_and_the_variables(no_base_urls):
    """Raised by a `recuro` command, the error names --api-key/--api-secret-file and both variables."""
    from orchestrator.cli._common import client_from_args

    no_base_urls.delenv("RECURO_API_KEY")
    no_base_urls.delenv("RECURO_API_SECRET")
    with pytest.raises(ConfigurationError) as info:
        client_from_args(_recuro_args("ls"))
    message = str(info.value)
    for name in ("--api-key", "--api-secret-file", "RECURO_API_KEY", "RECURO_API_SECRET"):
        assert name in message
    assert "api_key and api_secret" not in message


def test_missing_secret_only_names_what_is_missing(no_base_urls):
    """With a key given, the error is about the secret alone."""
    from orchestrator.cli._common import client_from_args

    no_base_urls.delenv("RECURO_API_SECRET")
    with pytest.raises(ConfigurationError) as info:
        client_from_args(_recuro_args("ls", "--api-key", "k"))
    message = str(info.value)
    assert "--api-secret-file" in message
    assert "RECURO_API_SECRET" in message
    assert "RECURO_API_KEY" not in message


def test_api_secret_file_help_does_not_claim_the_variable_is_a_file():
    """The secret file's help says the variable holds the secret itself, not a file name."""
    from orchestrator.cli.recuro import build_parser

    sub = next(a for a in build_parser()._actions if a.dest == "command")
    ls_parser = sub.choices["ls"]
    action = next(a for a in ls_parser._actions if a.dest == "api_secret_file")
    assert "(default: $RECURO_API_SECRET)" not in action.help
    assert "RECURO_API_SECRET" in action.help


def test_cli_and_client_agree_on_an_empty_base_url_variable(no_base_urls):
    """RECURO_BASE_URL='' means the default for the command as for the library."""
    no_base_urls.setenv("RECURO_BASE_URL", "")
    assert _recuro_args("ls").base_url == RECURO_DEFAULT


async def test_restore_redis_url_goes_to_the_client_not_the_environment(no_base_urls, tmp_path):
    """`recuro restore --redis-url` gives the client a shared limiter without setting RECURO_REDIS_URL."""
    from orchestrator.cli._restore import _setup

    no_base_urls.delenv("RECURO_REDIS_URL", raising=False)
    media = tmp_path / "reel.mov"
    media.write_bytes(b"\x00\x00\x00\x14ftypqt  " + bytes(64))
    args = _recuro_args(
        "restore", str(media), "--format", "Mp4H264", "--out", str(tmp_path / "out"),
        "--base-url", "http://127.0.0.1:9/", "--api-key", "k",
        "--redis-url", "redis://127.0.0.1:9/0",
    )  # fmt: skip
    setup = await _setup(args, ("k", "s"))
    async with setup.client:
        assert type(setup.client.limiter).__name__ == "RedisLimiter"
    assert "RECURO_REDIS_URL" not in os.environ
