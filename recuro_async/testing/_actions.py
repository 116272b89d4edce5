"""The API's actions by table: each takes the service, the caller, the owner's key and the parameters.

An action returns the file_id it concerned (for the request log) and its JSON result (None for an
empty body); it raises `ApiError` for the answers the document lists. The HTTP side (reading,
authenticating, admitting, encoding) is `_app`'s.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any, Protocol

import anyio

from recuro_async.testing import _params
from recuro_async.testing._catalog import FILTERS, OUTPUT_FORMATS, ApiError

if TYPE_CHECKING:
    from recuro_async.testing._service import RecuroService

__all__ = ["ACTION_HANDLERS", "Action", "Caller", "Result"]


class Caller(Protocol):
    """What an action needs to know of the HTTP request that carried it."""

    def origin(self, configured: str | None) -> str:
        """The origin restored_file_urls are built on: configured, else the one the client used."""
        ...


Result = tuple[str | None, Any]  # (file_id, JSON result or None for an empty body)
Action = Callable[["RecuroService", Caller, str, Mapping[str, Any]], Awaitable[Result]]


async def _list_media(
    service: RecuroService, request: Caller, owner: str, _args: Mapping[str, Any]
) -> Result:
    now = anyio.current_time()
    origin = request.origin(service.config.public_url)
    listing = []
    for media in service.owned_media(owner):
        guid = media.restored_guid(now)
        restored = "" if guid is None else service.restored_url(origin, guid)
        listing.append({"file_id": media.file_id, "restored_file_url": restored})
    return None, listing


async def _list_filters(
    _service: RecuroService, _request: Caller, _owner: str, _args: Mapping[str, Any]
) -> Result:
    return None, [{"name": n, "description": d, "example_url": u} for n, (d, u) in FILTERS.items()]


async def _list_output_formats(
    _service: RecuroService, _request: Caller, _owner: str, _args: Mapping[str, Any]
) -> Result:
    return None, [{"name": f.name, "long_name": f.long_name} for f in OUTPUT_FORMATS]


async def _upload_media(
    service: RecuroService, _request: Caller, owner: str, params: Mapping[str, Any]
) -> Result:
    url = _params.required_url(params, "original_file_url")
    username = _params.optional_str(params, "username")
    password = _params.optional_str(params, "password")
    notify_url = _params.url_param(params, "notify_url", required=False)
    media = await service.upload_media(
        owner, url, username=username, password=password, notify_url=notify_url
    )
    return media.file_id, {"file_id": media.file_id}


async def _start_job(
    service: RecuroService, request: Caller, owner: str, params: Mapping[str, Any]
) -> Result:
    file_id = _params.file_id(params)
    settings = _params.job_settings(params)
    notify_url = _params.url_param(params, "notify_url", required=False)
    media = service.lookup(owner, file_id)
    origin = request.origin(service.config.public_url)
    service.start_job(media, settings, notify_url=notify_url, origin=origin)
    return file_id, None


async def _get_progress(
    service: RecuroService, request: Caller, owner: str, params: Mapping[str, Any]
) -> Result:
    file_id = _params.file_id(params)
    snap = service.lookup(owner, file_id).snapshot(anyio.current_time())
    progress: dict[str, Any] = {"state": snap.state, "progress": snap.progress}
    if snap.guid is not None:
        origin = request.origin(service.config.public_url)
        progress["restored_file_url"] = service.restored_url(origin, snap.guid)
    return file_id, progress


async def _delete_media(
    service: RecuroService, _request: Caller, owner: str, params: Mapping[str, Any]
) -> Result:
    file_id = _params.file_id(params)
    try:
        media = service.lookup(owner, file_id)
    except ApiError:
        if service.config.strict_delete:
            raise
        return file_id, None
    await service.delete_media(media)
    return file_id, None


ACTION_HANDLERS: Mapping[str, Action] = {
    "ListMedia": _list_media,
    "ListFilters": _list_filters,
    "ListOutputFormats": _list_output_formats,
    "UploadMedia": _upload_media,
    "StartJob": _start_job,
    "GetProgress": _get_progress,
    "DeleteMedia": _delete_media,
}
