"""A call in a language the deployment cannot speak is refused at placement (400 unsupported_language, ext).

The offline agent's phrases are English: it refuses every other language,
explicit or inferred, for single calls and batch rows alike, and creates
nothing. A realtime model speaks any language; an LLM brain on an audio
carrier speaks what its voices speak (the voice catalogue). Both stores.
"""

from __future__ import annotations

import httpx
import pytest
from sqlalchemy import func, select
from support import auth, new_account, open_services

from byourside_server.api.app import create_app
from byourside_server.store import schema as t

BODY = {"to": "+14155550123", "objective": "Ask for the opening hours."}
HEBREW_OBJECTIVE = "לברר מתי פתוח"


@pytest.fixture
async def deployment(database_url, tmp_path):
    """Opens services (with these settings) and an API client on them, on the parametrised store."""
    opened = []

    async def open_with(**settings):
        services = await open_services(database_url, tmp_path, **settings)
        api = httpx.AsyncClient(transport=httpx.ASGITransport(app=create_app(services)), base_url="http://testserver")
        opened.append((services, api))
        _, secret = await new_account(services)
        return services, api, auth(secret)

    yield open_with
    for services, api in opened:
        await api.aclose()
        await services.aclose()


async def stored_calls(services) -> int:
    async with services.db.read() as conn:
        return (await conn.execute(select(func.count()).select_from(t.calls))).scalar_one()


async def test_the_offline_agent_refuses_other_languages_and_creates_nothing(deployment):
    services, api, headers = await deployment()
    for body in ({**BODY, "language": "fr-FR"}, {**BODY, "language": "he"}, {**BODY, "objective": HEBREW_OBJECTIVE},
                 {**BODY, "objective": HEBREW_OBJECTIVE, "language": "auto"}):
        refused = await api.post("/v1/agent/calls", json=body, headers=headers)
        assert refused.status_code == 400, refused.text
        error = refused.json()
        assert error["error"] == "unsupported_language"
        message = error["message"]
        assert "offline agent speaks only English" in message and "BYS_REALTIME" in message and "BYS_TTS" in message
        assert HEBREW_OBJECTIVE not in message and "+1415" not in message
        if "language" not in body or body["language"] == "auto":
            assert "he-IL" in message and "inferred" in message
    assert await stored_calls(services) == 0
    for language in ("en-GB", "en", "auto", None):  # English, and auto with an English objective, keep working
        body = {**BODY, "language": language} if language else BODY
        placed = await api.post("/v1/agent/calls", json=body, headers=headers)
        assert placed.status_code == 201, placed.text
        assert placed.json()["language"].split("-")[0] == "en"
    assert await stored_calls(services) == 4


async def test_batch_rows_in_a_language_the_offline_agent_cannot_speak_are_rejected(deployment):
    services, api, headers = await deployment()
    body = {"defaults": {"objective": "Confirm tomorrow's appointment."}, "calls": [
        {"to": "+14155550123"}, {"to": "+14155550124", "language": "de-DE"},
        {"to": "+14155550125", "objective": HEBREW_OBJECTIVE}, {"to": "+14155550126", "language": "en-US"}]}
    response = await api.post("/v1/agent/batches", json=body, headers=headers)
    assert response.status_code == 201, response.text
    batch = response.json()
    assert batch["total"] == 2 and batch["rejected"] == 2
    assert [(r["row"], r["error"]) for r in batch["rejectedRows"]] == [
        (2, "unsupported_language"), (3, "unsupported_language")]
    assert "English" in batch["rejectedRows"][0]["message"]
    assert await stored_calls(services) == 2
    inside = await api.post("/v1/agent/batches", json={
        "defaults": {"objective": "Confirm tomorrow's appointment."},
        "csv": "to,language\n+14155550127,fr-CA\n+14155550128,en-CA\n"}, headers=headers)
    assert inside.status_code == 201, inside.text
    assert [(r["row"], r["error"]) for r in inside.json()["rejectedRows"]] == [(1, "unsupported_language")]
    assert await stored_calls(services) == 3


@pytest.mark.parametrize(("settings", "accepted", "refused"), [
    ({"realtime": "openai"}, ["he-IL", "fr-FR", "ja"], []),
    ({"realtime": "gemini"}, ["he-IL", "ar-IL"], []),
    ({"brain": "llm", "telephony": "sip", "voice_overrides": {"tts": "cartesia"}}, ["he-IL", "fr-CA", "ru"], ["yi"]),
    ({"brain": "llm", "telephony": "sip", "voice_overrides": {"tts": "openai"}}, ["he-IL", "ar"], []),
    ({"brain": "llm", "telephony": "sip", "voice_overrides": {"tts": "elevenlabs"}}, ["fr-FR", "ar"], ["he-IL"]),
    # Piper alone (the packaged voice): English. With espeak-ng too (the default): tests/unit/test_local_voices.py
    ({"brain": "llm", "telephony": "sip", "voice_overrides": {"tts_engine": "piper"}}, ["en-US"], ["he-IL", "fr-FR"]),
    ({"brain": "llm"}, ["he-IL", "fr-FR"], []),  # the text simulator: the model writes any language
])
async def test_a_deployment_that_speaks_more_accepts_what_its_speaker_speaks(deployment, settings, accepted, refused):
    services, api, headers = await deployment(**settings)
    for language in accepted:
        placed = await api.post("/v1/agent/calls", json={**BODY, "language": language}, headers=headers)
        assert placed.status_code == 201, (language, placed.text)
    hebrew = await api.post("/v1/agent/calls", json={**BODY, "objective": HEBREW_OBJECTIVE}, headers=headers)
    assert (hebrew.status_code == 201) is ("he-IL" in accepted), hebrew.text
    for language in refused:
        response = await api.post("/v1/agent/calls", json={**BODY, "language": language}, headers=headers)
        assert response.status_code == 400 and response.json()["error"] == "unsupported_language", response.text
        assert language in response.json()["message"] and "GET /v1/agent/voices" in response.json()["message"]
    assert await stored_calls(services) == len(accepted) + (1 if "he-IL" in accepted else 0)
