"""``GET /v1/agent/calls/{id}/recording``: the call's audio, with the Bearer key or a signed link.

The audio comes from the recording store (recordings/): a file on this machine is
sent as a file; an S3 object is streamed through this process, so the same signed
links and keys work whichever process recorded the call.
"""

from __future__ import annotations

import os

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, Response, StreamingResponse
from starlette.background import BackgroundTask

from byourside_server.api.common import authenticate, recording_links, services_of
from byourside_server.api.openapi import ERROR_RESPONSES
from byourside_server.errors import NotFound
from byourside_server.recordings import LocalRecordingStore, RecordingNotFound, is_s3_reference
from byourside_server.services import Services

router = APIRouter(tags=["calls"], responses=ERROR_RESPONSES)

NO_RECORDING = "This call has no recording."


@router.get("/v1/agent/calls/{call_id}/recording")
async def get_recording(call_id: str, request: Request) -> Response:
    """Served with the Bearer key, or without one through an unexpired signed link."""
    services = services_of(request)
    calls = services.calls
    query = request.query_params
    if "authorization" not in request.headers and recording_links(request).verify(
        call_id, query.get("expires"), query.get("token")
    ):
        call = await calls.get_any(call_id)
        if call is None:
            raise NotFound()
    else:
        account, _ = await authenticate(request)
        call = await calls.get(account.id, call_id)
    response = await recording_response(services, call.recording_path)
    if response is None:
        raise NotFound(NO_RECORDING)
    return response


async def recording_response(services: Services, reference: str | None,
                             headers: dict[str, str] | None = None) -> Response | None:
    """The audio of a stored recording reference, or None when there is none: a file on this
    machine is sent as a file, an S3 object is streamed through this process."""
    if not reference:
        return None
    headers = dict(headers or {})
    if not is_s3_reference(reference):
        return FileResponse(reference, media_type="audio/wav", headers=headers) if os.path.isfile(reference) else None
    store = services.recordings or LocalRecordingStore(services.settings.data_dir / "recordings")
    try:
        stream = await store.open(reference)
    except RecordingNotFound:
        return None
    if stream.size is not None:
        headers["Content-Length"] = str(stream.size)
    return StreamingResponse(stream.chunks, media_type="audio/wav", headers=headers,
                             background=BackgroundTask(stream.close))
