"""A download refused with an error page that echoes the credential: the excerpt is masked before it is cut.

The excerpt is the first 200 characters of the first 512 bytes; a secret straddling either cut must leave
none of its characters behind (issue 11, case 7).
"""

from __future__ import annotations

import json

import httpx
import pytest
import respx

from _clientkit._auth import OriginAuth
from _clientkit._download import DownloadOptions, download_file
from _clientkit._failures import HTTPStatusFailure
from _clientkit._redact import Secret

URL = "https://files.test/out.mp4"
SECRET = 'Zq/9"kL-77wPx'
VALUE = f"key:{SECRET}"
PIECES = (SECRET, SECRET[:5], "Zq/9", '9"kL', "77wPx")


def _pages() -> dict[str, bytes]:
    fill_200 = 200 - len("key:") - 5  # the 200-character cut falls 5 characters into the secret
    fill_512 = 512 - len("key:") - 5  # the 512-byte read ends 5 characters into the secret
    return {
        "raw": f"denied for {VALUE}".encode(),
        "straddling-200": ("x" * fill_200 + VALUE + " rest").encode(),
        "straddling-512": ("y" * fill_512 + VALUE + " rest").encode(),
        "json-escaped": ('{"auth": ' + json.dumps(VALUE).replace("/", "\\/") + "}").encode(),
        "secret-alone": f"secret {SECRET} refused".encode(),
    }


@pytest.mark.parametrize("page", sorted(_pages()))
async def test_an_echoed_credential_never_reaches_the_failure(tmp_path, page):
    body = _pages()[page]
    router = respx.Router(assert_all_called=False)
    router.get(URL).mock(return_value=httpx.Response(403, content=body))
    auth = OriginAuth("https://files.test", Secret(VALUE))
    async with httpx.AsyncClient(transport=httpx.MockTransport(router.async_handler)) as client:
        with pytest.raises(HTTPStatusFailure) as info:
            await download_file(
                client, URL, tmp_path / "out.mp4", auth=auth, options=DownloadOptions(max_retries=0)
            )
    failure = info.value
    for text in (str(failure), repr(failure), failure.body_excerpt, repr(failure.args)):
        for piece in PIECES:
            assert piece not in text, (piece, text)
    assert len(failure.body_excerpt) <= 200


def test_origin_auth_lists_what_it_masks():
    auth = OriginAuth("https://files.test", Secret(VALUE))
    assert auth.secrets() == (VALUE, SECRET)
    assert OriginAuth("https://files.test", Secret("plain")).secrets() == ("plain",)
    assert OriginAuth("https://files.test", Secret("user: ")).secrets() == ("user: ",)
