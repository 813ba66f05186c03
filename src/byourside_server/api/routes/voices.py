"""``GET /v1/agent/voices`` (ext): the voices this deployment can speak.

Each is ``{name, provider, languages, gender}`` (``languages``: BCP-47
primary subtags, ``["*"]`` for a multilingual model voice; ``gender`` null
where unknown). A call's ``voice`` may name one of them or a contract default
name (``alloy``, ``echo``, ...), which maps to a voice of the provider;
anything else is ``400 invalid_voice``.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from byourside_server.api.common import authenticate, services_of
from byourside_server.api.openapi import ERROR_RESPONSES
from byourside_server.voice_catalogue import CONTRACT_NAMES
from byourside_server.voice_policy import deployment_voices

router = APIRouter(tags=["voices"], responses=ERROR_RESPONSES)


@router.get("/v1/agent/voices")
async def list_voices(request: Request) -> JSONResponse:
    await authenticate(request)
    settings = services_of(request).settings
    return JSONResponse({
        "voices": [v.to_json() for v in deployment_voices(settings)],
        "default": settings.default_voice,
        "aliases": list(CONTRACT_NAMES),
    })
