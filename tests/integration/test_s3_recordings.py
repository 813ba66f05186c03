"""The S3 recording store end to end in one process (both databases): a worker's call uploads its
recording before the outcome is written; the recording route streams it with the Bearer key or an
unexpired signed link; a misconfigured store stops the process at start-up, naming the setting."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import wave
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest

from byourside_server.api.app import create_app
from byourside_server.api.recording_links import RecordingLinks, load_signing_secret
from byourside_server.domain import CallStatus
from byourside_server.recordings import RecordingStoreSettingsMissing, build_recording_store
from byourside_server.runtime.session import SessionDeps
from byourside_server.runtime.worker import Worker
from byourside_server.settings import Settings
from byourside_server.store.calls import CallOutcome
from byourside_server.telephony.base import DialOutcome, DialRequest, DialResult
from fakes import EchoBrain, FakeLine, FakeTelephony
from support import auth, new_account, open_services, running

GOOD = {"to": "+14155550123", "objective": "Ask for the opening hours."}


class RecordedLine(FakeLine):
    """A scripted line that leaves a WAV behind, as the voice engine's line does."""

    def __init__(self, path: Path, kept: dict[str, bytes]) -> None:
        super().__init__(("Hello?", "We open at nine."))
        self.path = path
        self.kept = kept

    async def hangup(self) -> None:
        if not self.closed:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with wave.open(str(self.path), "wb") as w:
                w.setnchannels(2)
                w.setsampwidth(2)
                w.setframerate(8000)
                w.writeframes(os.urandom(8000 * 4))
            self.kept[self.path.stem] = self.path.read_bytes()
        await super().hangup()

    def recording_path(self) -> str | None:
        return str(self.path)


class RecordingTelephony(FakeTelephony):
    def __init__(self, directory: Path) -> None:
        super().__init__()
        self.directory = directory
        self.audio: dict[str, bytes] = {}  # what each call's line recorded, by call id

    async def dial(self, request: DialRequest) -> DialOutcome:
        return DialOutcome(DialResult.ANSWERED, line=RecordedLine(self.directory / f"{request.call_id}.wav", self.audio))


def _path(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.path}?{parts.query}"


async def _wait_ended(api: httpx.AsyncClient, call_id: str, secret: str) -> dict:
    import asyncio

    for _ in range(1200):  # a safety net for a loaded machine, not a speed requirement
        call = (await api.get(f"/v1/agent/calls/{call_id}", headers=auth(secret))).json()
        if call["status"] not in {"queued", "dialing", "in_progress"}:
            return call
        await asyncio.sleep(0.05)
    raise AssertionError("call did not end")


async def test_a_call_recorded_to_s3_is_served_by_key_and_signed_link(s3_server, database_url, tmp_path):
    services = await open_services(database_url, tmp_path, **s3_server.overrides())
    telephony = RecordingTelephony(tmp_path / "recordings")
    deps = SessionDeps(calls=services.calls, telephony=telephony, brain=EchoBrain(), ring_timeout_seconds=5,
                       recordings=services.recordings)
    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=create_app(services)),
                                     base_url="http://testserver") as api, running(Worker(services, deps, concurrency=1)):
            _, secret = await new_account(services)
            call_id = (await api.post("/v1/agent/calls", json=GOOD, headers=auth(secret))).json()["callId"]
            call = await _wait_ended(api, call_id, secret)
            audio = telephony.audio[call_id]
            assert call["status"] == "completed"
            stored = await services.calls.get_any(call_id)
            assert stored.recording_path == f"s3://{s3_server.bucket}/calls/{call_id}.wav"
            assert not (tmp_path / "recordings" / f"{call_id}.wav").exists()  # the store holds it now

            with_key = await api.get(f"/v1/agent/calls/{call_id}/recording", headers=auth(secret))
            assert with_key.status_code == 200 and with_key.content == audio
            assert with_key.headers["content-length"] == str(len(audio))
            signed = await api.get(_path(call["recordingUrl"]))
            assert signed.status_code == 200 and signed.content == audio

            expired = RecordingLinks(load_signing_secret(None, tmp_path), "", 60, now=lambda: time.time() - 3600)
            assert (await api.get(_path(expired.url(call_id)))).status_code == 401
            _, stranger = await new_account(services)
            other = await api.get(f"/v1/agent/calls/{call_id}/recording", headers=auth(stranger))
            assert other.status_code == 404

            await services.recordings.delete(stored.recording_path)
            gone = await api.get(f"/v1/agent/calls/{call_id}/recording", headers=auth(secret))
            assert gone.status_code == 404 and gone.json()["error"] == "not_found"
    finally:
        await services.aclose()


async def test_an_unreachable_store_answers_store_error(s3_server, database_url, tmp_path):
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{s.getsockname()[1]}"
    services = await open_services(database_url, tmp_path, **{**s3_server.overrides(), "s3_endpoint_url": dead})
    try:
        _, secret = await new_account(services)
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=create_app(services)),
                                     base_url="http://testserver") as api:
            call_id = (await api.post("/v1/agent/calls", json=GOOD, headers=auth(secret))).json()["callId"]
            calls = services.calls
            await calls.claim_next("w", 30)
            assert await calls.mark_dialing(call_id, "w") and await calls.mark_in_progress(call_id, "w")
            outcome = CallOutcome(CallStatus.COMPLETED, "objective_met", duration_seconds=3,
                                  recording_path=f"s3://{s3_server.bucket}/calls/{call_id}.wav")
            assert await calls.finish(call_id, "w", outcome)
            response = await api.get(f"/v1/agent/calls/{call_id}/recording", headers=auth(secret))
            assert response.status_code == 503 and response.json()["error"] == "store_error"
    finally:
        await services.aclose()


@pytest.mark.parametrize("missing", ["s3_endpoint_url", "s3_bucket", "s3_access_key_id", "s3_secret_access_key"])
def test_a_missing_s3_setting_is_named_at_start_up(missing, tmp_path):
    values = {"data_dir": tmp_path, "recording_store": "s3", "s3_endpoint_url": "http://127.0.0.1:1",
              "s3_bucket": "b", "s3_access_key_id": "k", "s3_secret_access_key": "s"}
    values[missing] = None
    with pytest.raises(RecordingStoreSettingsMissing, match=f"BYS_{missing.upper()}"):
        build_recording_store(Settings(**values))


def test_the_worker_command_refuses_to_start_without_the_bucket(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("BYS_")}
    env.update({"BYS_DATA_DIR": str(tmp_path), "BYS_RECORDING_STORE": "s3", "BYS_S3_ENDPOINT_URL": "http://127.0.0.1:1",
                "BYS_S3_ACCESS_KEY_ID": "k", "BYS_S3_SECRET_ACCESS_KEY": "s"})
    result = subprocess.run([str(Path(sys.executable).parent / "byourside"), "worker"], env=env,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 1
    assert "BYS_S3_BUCKET" in result.stderr and "Traceback" not in result.stderr
