"""Recordings are served with the Bearer key or through an expiring signed link (spec section 7)."""

from __future__ import annotations

import time
from urllib.parse import urlsplit

from byourside_server.api.recording_links import RecordingLinks, load_signing_secret
from byourside_server.domain import CallStatus
from byourside_server.store.calls import CallOutcome
from support import auth, new_account

GOOD = {"to": "+14155550123", "objective": "Ask for the opening hours."}


async def _call_with_recording(services, api, tmp_path):
    _, secret = await new_account(services)
    call_id = (await api.post("/v1/agent/calls", json=GOOD, headers=auth(secret))).json()["callId"]
    audio = tmp_path / "rec.wav"
    audio.write_bytes(b"RIFF....WAVEfmt fake audio bytes")
    calls = services.calls
    assert (await calls.claim_next("w", 30)).id == call_id
    assert await calls.mark_dialing(call_id, "w") and await calls.mark_in_progress(call_id, "w")
    outcome = CallOutcome(CallStatus.COMPLETED, "objective_met", duration_seconds=3, recording_path=str(audio))
    assert await calls.finish(call_id, "w", outcome)
    return call_id, secret, audio.read_bytes()


def _path(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.path}?{parts.query}" if parts.query else parts.path


async def test_signed_link_serves_the_recording_without_a_key(services, api, tmp_path):
    call_id, secret, audio = await _call_with_recording(services, api, tmp_path)
    call = (await api.get(f"/v1/agent/calls/{call_id}", headers=auth(secret))).json()
    url = call["recordingUrl"]
    assert f"/v1/agent/calls/{call_id}/recording?expires=" in url and "&token=" in url

    response = await api.get(_path(url))
    assert response.status_code == 200 and response.content == audio

    tampered = _path(url)[:-4] + ("0000" if not _path(url).endswith("0000") else "1111")
    assert (await api.get(tampered)).status_code == 401
    assert (await api.get(f"/v1/agent/calls/{call_id}/recording")).status_code == 401

    # A link that has expired, signed with the same secret, is refused.
    expired = RecordingLinks(load_signing_secret(None, tmp_path), "", 60, now=lambda: time.time() - 3600)
    assert (await api.get(_path(expired.url(call_id)))).status_code == 401


async def test_bearer_key_works_and_other_accounts_see_not_found(services, api, tmp_path):
    call_id, secret, audio = await _call_with_recording(services, api, tmp_path)
    owner = await api.get(f"/v1/agent/calls/{call_id}/recording", headers=auth(secret))
    assert owner.status_code == 200 and owner.content == audio
    _, stranger = await new_account(services)
    other = await api.get(f"/v1/agent/calls/{call_id}/recording", headers=auth(stranger))
    assert other.status_code == 404 and other.json()["error"] == "not_found"


async def test_calls_without_audio_have_no_recording_url(services, api):
    _, secret = await new_account(services)
    call_id = (await api.post("/v1/agent/calls", json=GOOD, headers=auth(secret))).json()["callId"]
    assert (await api.get(f"/v1/agent/calls/{call_id}", headers=auth(secret))).json()["recordingUrl"] is None
    response = await api.get(f"/v1/agent/calls/{call_id}/recording", headers=auth(secret))
    assert response.status_code == 404
