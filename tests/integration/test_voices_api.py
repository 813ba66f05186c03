"""GET /v1/agent/voices (ext) lists what this deployment speaks; a call's unknown voice is 400 invalid_voice."""

from __future__ import annotations

import shutil

import httpx
import pytest

from byourside_server.api.app import create_app
from support import auth, new_account, open_services

BODY = {"to": "+14155550123", "objective": "Ask for the opening hours."}


async def client_for(tmp_path, **settings):  # noqa: ANN201
    services = await open_services(f"sqlite+aiosqlite:///{tmp_path / 'db.sqlite'}", tmp_path, **settings)
    return services, httpx.AsyncClient(transport=httpx.ASGITransport(app=create_app(services)),
                                       base_url="http://testserver")


@pytest.mark.parametrize(("realtime", "names", "providers"), [
    # The local voices: Piper's packaged voice, and espeak-ng where it is installed (tests/unit/test_local_voices.py)
    ("off", ["joe", "espeak"] if shutil.which("espeak-ng") else ["joe"],
     {"piper", "espeak"} if shutil.which("espeak-ng") else {"piper"}),
    ("openai", ["alloy", "ash", "ballad", "coral", "echo", "sage", "shimmer", "verse", "marin", "cedar"], {"openai"}),
    ("gemini", ["Puck", "Charon", "Kore", "Fenrir", "Aoede", "Leda", "Orus", "Zephyr"], {"gemini"}),
])
async def test_the_catalogue_lists_the_voices_of_the_configured_speaker(tmp_path, realtime, names, providers):
    services, api = await client_for(tmp_path, realtime=realtime)
    try:
        _, secret = await new_account(services)
        assert (await api.get("/v1/agent/voices")).status_code == 401
        listed = (await api.get("/v1/agent/voices", headers=auth(secret))).json()
        assert [v["name"] for v in listed["voices"]] == names
        assert {v["provider"] for v in listed["voices"]} == providers
        assert listed["default"] == "alloy" and "alloy" in listed["aliases"]
        joe = listed["voices"][0]
        assert set(joe) == {"name", "provider", "languages", "gender"}
    finally:
        await api.aclose()
        await services.aclose()


async def test_an_unknown_voice_is_invalid_voice_and_creates_nothing(tmp_path):
    services, api = await client_for(tmp_path, realtime="gemini")
    try:
        _, secret = await new_account(services)
        refused = await api.post("/v1/agent/calls", json={**BODY, "voice": "Bob"}, headers=auth(secret))
        assert refused.status_code == 400 and refused.json()["error"] == "invalid_voice"
        assert "GET /v1/agent/voices" in refused.json()["message"]
        assert (await api.get("/v1/agent/calls", headers=auth(secret))).json()["calls"] == []
        for voice in ("Kore", "kore", "shimmer"):  # a voice of the deployment, any case; a contract name
            placed = await api.post("/v1/agent/calls", json={**BODY, "voice": voice}, headers=auth(secret))
            assert placed.status_code == 201, placed.json()
    finally:
        await api.aclose()
        await services.aclose()


@pytest.mark.parametrize(("tts", "names", "provider", "speaks_hebrew"), [
    ("cartesia", ["Katie", "Jacqueline", "Brooke", "Ronald", "Jordan", "Keith"], "cartesia", True),
    ("openai", ["alloy", "ash", "ballad", "coral", "echo", "sage", "shimmer", "verse", "marin", "cedar", "fable",
                "nova", "onyx"], "openai", True),
    ("elevenlabs", ["Rachel", "Adam", "Antoni", "Domi", "Elli", "Josh"], "elevenlabs", False),
])
async def test_with_a_cloud_tts_the_catalogue_lists_its_voices(tmp_path, tts, names, provider, speaks_hebrew):
    services, api = await client_for(tmp_path, voice_overrides={"tts": tts})
    try:
        _, secret = await new_account(services)
        listed = (await api.get("/v1/agent/voices", headers=auth(secret))).json()
        assert [v["name"] for v in listed["voices"]] == names
        assert {v["provider"] for v in listed["voices"]} == {provider}
        languages = listed["voices"][0]["languages"]
        assert ("he" in languages or languages == ["*"]) is speaks_hebrew
        placed = await api.post("/v1/agent/calls", json={**BODY, "voice": names[1].upper()}, headers=auth(secret))
        assert placed.status_code == 201, placed.json()
    finally:
        await api.aclose()
        await services.aclose()
