"""Callbacks: the pure parser and the token-guarded ASGI receiver."""

from __future__ import annotations

import json

import anyio
import httpx
import pytest

from recuro_async._errors import ResponseFormatError
from recuro_async.webhooks import Notification, WebhookReceiver, parse_notification

MEDIA_DONE = {
    "file_id": "ids-345643.mov",
    "error_code": "MediaCompleted",
    "error_message": "Media completed successfully.",
}
JOB_DONE = {
    "file_id": "ids-345643.mov",
    "error_code": "JobCompleted",
    "error_message": "Job completed successfully.",
    "restored_file_url": "https://www.recuromedia.com/download.php?guid=1c8d4737-a0d4-42fb-8276-271426eb9128",
}


def test_parse_the_documents_examples():
    """The document's MediaCompleted and JobCompleted bodies parse as successes."""
    media = parse_notification(json.dumps(MEDIA_DONE).encode())
    job = parse_notification(json.dumps(JOB_DONE).encode())
    assert media == Notification(
        "ids-345643.mov", "MediaCompleted", "Media completed successfully.", None, succeeded=True
    )
    assert not media.is_job
    assert job.succeeded
    assert job.is_job
    assert job.restored_file_url == JOB_DONE["restored_file_url"]


def test_parse_failure_form_and_odd_case():
    """A failure code is not a success; keys parse in any case."""
    note = parse_notification(
        b'{"FILE_ID": "f", "Error_Code": "JobFailed", "ERROR_MESSAGE": "codec"}'
    )
    assert (note.file_id, note.error_code, note.succeeded) == ("f", "JobFailed", False)


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"not json",
        b"[]",
        b'{"file_id": "f"}',
        b'{"file_id": 3, "error_code": "x"}',
        b"\xff\xfe",
    ],
)
def test_parse_rejects_malformed_bodies(body):
    """Malformed bodies raise ResponseFormatError, nothing else."""
    with pytest.raises(ResponseFormatError):
        parse_notification(body)


@pytest.fixture
async def receiver_and_stream():
    send, receive = anyio.create_memory_object_stream[Notification](10)
    receiver = WebhookReceiver(send, known_file_ids={"ids-345643.mov"}, max_body=1024)
    async with (
        send,
        receive,
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=receiver), base_url="http://hooks.test"
        ) as client,
    ):
        yield receiver, receive, client


async def test_receiver_hands_notifications_to_the_stream(receiver_and_stream):
    """A POST under the token reaches the consumer."""
    receiver, receive, client = receiver_and_stream
    response = await client.post(receiver.path, json=JOB_DONE)
    assert response.status_code == 200
    assert (receive.receive_nowait()).error_code == "JobCompleted"


async def test_receiver_wrong_token_is_404(receiver_and_stream):
    """Any path without the token answers 404 and reaches nobody."""
    receiver, receive, client = receiver_and_stream
    for path in ("/", "/guess/", f"/{receiver.token[:-1]}/", f"/x{receiver.token}/"):
        assert (await client.post(path, json=JOB_DONE)).status_code == 404
    with pytest.raises(anyio.WouldBlock):
        receive.receive_nowait()


async def test_receiver_malformed_and_oversized(receiver_and_stream):
    """A malformed body answers 400, an oversized one 413."""
    receiver, _, client = receiver_and_stream
    assert (await client.post(receiver.path, content=b"{")).status_code == 400
    assert (await client.post(receiver.path, content=b"x" * 2048)).status_code == 413


async def test_receiver_ignores_unknown_file_ids(receiver_and_stream):
    """A callback for a file_id the batch does not own is acknowledged and dropped."""
    receiver, receive, client = receiver_and_stream
    response = await client.post(receiver.path, json={**JOB_DONE, "file_id": "someone-else.mov"})
    assert response.status_code == 200
    with pytest.raises(anyio.WouldBlock):
        receive.receive_nowait()


async def test_receiver_with_callback_consumer_and_repr():
    """An async callback works as consumer; the repr hides the token."""
    seen: list[Notification] = []

    async def consume(note: Notification) -> None:
        seen.append(note)

    receiver = WebhookReceiver(consume)
    assert receiver.token not in repr(receiver)
    assert receiver.notify_url("https://me.example/hooks/").endswith(f"/hooks/{receiver.token}/")
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=receiver), base_url="http://h"
    ) as client:
        await client.post(receiver.path + "media", json=MEDIA_DONE)
    assert [n.error_code for n in seen] == ["MediaCompleted"]


async def test_receiver_non_ascii_path_is_404_and_deep_body_400(receiver_and_stream):
    """A wrong token with non-ASCII characters is a 404 (not a crash); an absurdly deep body is a 400."""
    _, _, client = receiver_and_stream
    assert (await client.post("/%C3%A9/", json=JOB_DONE)).status_code == 404
    deep = b"[" * 100_000 + b"]" * 100_000
    big = WebhookReceiver(lambda _: anyio.lowlevel.checkpoint(), max_body=len(deep) + 1)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=big), base_url="http://h"
    ) as other:
        assert (await other.post(big.path, content=deep)).status_code == 400
