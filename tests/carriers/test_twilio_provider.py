"""The twilio provider against the fake Twilio, in one process: REST, signed callbacks, the Media Stream.

Our side is the real provider serving its carrier routes on a real uvicorn server on loopback; the far
side is tests/carriers/fake_twilio.py playing the simulator's scenarios. These need no speech models:
calls that are not answered, and the silent line (audio, keys and hang-ups checked as audio and messages).
"""

from __future__ import annotations

import asyncio
import socket

import numpy as np
import pytest
import uvicorn

from fake_twilio import FakeTwilio, sign
from byourside_server.domain import AnsweredBy
from byourside_server.telephony.base import DialRequest, DialResult
from byourside_server.telephony.media import AudioFrame, DigitReceived
from byourside_server.telephony.routes import carrier_app
from byourside_server.telephony.simulator.scenarios import load_scenarios
from byourside_server.telephony.twilio.provider import TwilioTelephony
from byourside_server.telephony.twilio.rest import TwilioRest
from byourside_server.telephony.twilio.signature import signature_valid, twilio_signature
from byourside_server.voice.factory import VoiceFactory
from byourside_server.voice.vad import Endpointer


class NoModels(VoiceFactory):
    """For callees that never speak or transcribe: any use of a speech model fails the test."""

    def __init__(self) -> None:
        super().__init__(stt=self._fail, tts=self._fail, endpointer=lambda: Endpointer(lambda frame: False))

    @staticmethod
    def _fail():
        raise AssertionError("this test must not need speech models")


def test_signature_matches_twilios_documented_example():
    # The example of Twilio's security docs and of twilio-python's RequestValidator tests.
    url = "https://mycompany.com/myapp.php?foo=1&bar=2"
    params = [("CallSid", "CA1234567890ABCDE"), ("Caller", "+14158675309"), ("Digits", "1234"),
              ("From", "+14158675309"), ("To", "+18005551212")]
    assert twilio_signature("12345", url, params) == "RSOYDt4T1cUTdK1PDd93/VVr8B8="
    assert signature_valid("12345", url, params, "RSOYDt4T1cUTdK1PDd93/VVr8B8=")
    assert not signature_valid("12345", url, params + [("Extra", "1")], "RSOYDt4T1cUTdK1PDd93/VVr8B8=")
    assert not signature_valid("54321", url, params, "RSOYDt4T1cUTdK1PDd93/VVr8B8=")
    assert not signature_valid("12345", url, params, None)
    assert sign("12345", url, params) == twilio_signature("12345", url, params)  # the fake signs alike


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Rig:
    """The fake Twilio and our provider, its routes served on loopback."""

    def __init__(self, fake: FakeTwilio, provider: TwilioTelephony, server: uvicorn.Server, task: asyncio.Task) -> None:
        self.fake, self.provider, self.server, self.task = fake, provider, server, task

    async def dial(self, to: str, ring_timeout: float = 10.0):
        return await self.provider.dial(DialRequest("call_twilio", to, "+14155550100", ring_timeout, "en-US", "alloy"))

    def only_call(self):
        (call,) = self.fake.calls.values()
        return call


@pytest.fixture
async def rig():
    fake = await FakeTwilio(load_scenarios(), NoModels(), numbers=("+14155550100",)).start()
    port = free_port()
    rest = TwilioRest(fake.account_sid, fake.account_sid, fake.auth_token, fake.api_url)
    provider = TwilioTelephony(rest, fake.auth_token, f"http://127.0.0.1:{port}")
    config = uvicorn.Config(carrier_app(provider.carrier_routes()), host="127.0.0.1", port=port, log_config=None,
                            access_log=False, lifespan="off")
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    while not server.started:
        await asyncio.sleep(0.02)
    yield Rig(fake, provider, server, task)
    await fake.aclose()
    await provider.aclose()
    server.should_exit = True
    await task


@pytest.mark.parametrize(("number", "result", "reason", "sip_code"), [
    ("+14155550161", DialResult.BUSY, None, "486"),
    ("+14155550162", DialResult.DECLINED, None, "603"),
    ("+14155550163", DialResult.FAILED, "sip_503", "503"),
])
async def test_calls_that_are_not_answered_end_as_twilio_reports_them(rig, number, result, reason, sip_code):
    outcome = await rig.dial(number)
    assert (outcome.result, outcome.reason) == (result, reason)
    call = rig.only_call()
    assert call.statuses_sent[-1] in ("busy", "failed")
    assert set(call.callback_answers) == {204}  # every signed callback accepted
    params = dict(call.params)
    assert params["StatusCallback"].startswith(rig.provider.base + "/status/")
    assert '<Connect><Stream url="ws://127.0.0.1:' in params["Twiml"]
    assert params["Timeout"] == "10"


async def test_no_answer_rings_until_twilios_timeout(rig):
    outcome = await rig.dial("+14155550160", ring_timeout=5)
    assert outcome.result is DialResult.NO_ANSWER
    assert rig.only_call().statuses_sent == ["initiated", "ringing", "no-answer"]


@pytest.mark.parametrize("moment", ["created", "ringing"])
async def test_cancelling_the_dial_cancels_the_call_through_the_rest_api(rig, moment):
    # "created": Twilio has the call but its answer to the create request may not have reached us yet.
    dialing = asyncio.create_task(rig.dial("+14155550160", ring_timeout=60))
    while not rig.fake.calls or (moment == "ringing" and rig.only_call().status != "ringing"):
        await asyncio.sleep(0.001)
    dialing.cancel()
    with pytest.raises(asyncio.CancelledError):
        await dialing
    call = rig.only_call()
    await asyncio.wait_for(call.ended.wait(), 10)
    assert call.statuses_sent[-1] == "canceled"
    assert rig.provider._calls == {}  # nothing left waiting


async def test_a_caller_id_the_account_does_not_own_is_refused_by_twilio(rig):
    outcome = await rig.provider.dial(DialRequest("c", "+14155550123", "+14155559999", 10, "en-US", "alloy"))
    assert (outcome.result, outcome.reason) == (DialResult.FAILED, "twilio_21210")
    assert rig.fake.calls == {}


async def test_the_answered_call_is_a_media_channel_both_ways(rig):
    outcome = await rig.dial("+14155550133")  # the silent line: answers, never speaks
    assert outcome.result is DialResult.ANSWERED
    media = outcome.media
    call = rig.only_call()
    frames = []

    async def take() -> None:
        async for event in media.events():
            frames.append(event)

    taking = asyncio.create_task(take())
    tone = (3000 * np.sin(2 * np.pi * 440 * np.arange(8000) / 8000)).astype(np.int16)  # one second
    played = await media.play(tone)
    assert played.completed and played.total_ms == 1000
    assert await asyncio.wait_for(media.mark(), 5) is True  # echoed by Twilio once played
    await media.send_digits("42#")  # in-band tones: the callee's phone system hears the keys
    heard = call.callee
    for _ in range(100):
        if heard.digits == ["4", "2", "#"]:
            break
        await asyncio.sleep(0.05)
    assert heard.digits == ["4", "2", "#"]
    # barge-in: queued audio is dropped here and Twilio is told to drop its own
    long = media.play(np.tile(tone, 5))
    await asyncio.sleep(0.3)
    pending_mark = media.mark()
    media.clear()
    result = await long
    assert not result.completed and 0 < result.played_ms < 2000
    assert await pending_mark is False
    for _ in range(50):
        if call.media.clears:
            break
        await asyncio.sleep(0.05)
    assert call.media.clears == 1
    # the callee's keys reach us as events
    await call.media.send_digits("7")
    for _ in range(50):
        if any(isinstance(e, DigitReceived) and e.digit == "7" for e in frames):
            break
        await asyncio.sleep(0.05)
    assert any(isinstance(e, DigitReceived) and e.digit == "7" for e in frames)
    # both sides aligned on one timeline, 20 ms apart
    audio = [e for e in frames if isinstance(e, AudioFrame)]
    assert [f.at_ms for f in audio[:5]] == [0, 20, 40, 60, 80]
    assert any(f.outbound.any() for f in audio)
    await media.hangup()
    await asyncio.wait_for(taking, 5)
    await asyncio.wait_for(call.ended.wait(), 10)
    assert call.statuses_sent[-1] == "completed" and not media.ended_by_far_end
    assert rig.provider._calls == {}


async def test_the_callee_hanging_up_ends_the_media_from_the_far_end(rig):
    outcome = await rig.dial("+14155550133")
    call = rig.only_call()
    await call.media.hangup()  # the callee hangs up: stop, then the socket closes
    await asyncio.wait_for(outcome.media.ended.wait(), 5)
    assert outcome.media.ended_by_far_end
    await outcome.media.hangup()


async def test_forged_callbacks_and_streams_are_refused(rig):
    rig.fake.forge_signatures = True
    dialing = asyncio.create_task(rig.dial("+14155550133"))
    while not rig.fake.calls or not rig.only_call().ended.is_set():
        await asyncio.sleep(0.05)
    call = rig.only_call()
    assert call.callback_answers and set(call.callback_answers) == {403}
    assert call.media is None  # the WebSocket handshake was refused
    assert not dialing.done()  # nothing forged moved the call on
    dialing.cancel()
    with pytest.raises(asyncio.CancelledError):
        await dialing


async def test_twilios_answering_machine_detection_is_kept_on_the_media(rig):
    rig.provider.machine_detection = "DetectMessageEnd"
    outcome = await rig.dial("+14155550133")
    params = dict(rig.only_call().params)
    assert (params["MachineDetection"], params["AsyncAmd"]) == ("DetectMessageEnd", "true")
    assert params["AsyncAmdStatusCallback"].startswith(rig.provider.base + "/amd/")
    for _ in range(100):  # Twilio's verdict comes a few seconds into the answer
        if outcome.media.answered_by() is not None:
            break
        await asyncio.sleep(0.1)
    verdict = outcome.media.answered_by()
    assert verdict is not None and verdict.kind == AnsweredBy.HUMAN
    assert verdict.evidence == {"source": "carrier", "carrier": "twilio", "answeredBy": "human",
                                "machineDetectionDurationMs": 2500}
    await outcome.media.hangup()


def test_twilio_settings_missing_stop_the_start_with_what_to_set(tmp_path):
    from byourside_server.clock import SystemClock
    from byourside_server.runtime.registry import ProviderError, build_telephony
    from byourside_server.settings import Settings

    keys = {"twilio_account_sid": "AC" + "0" * 32, "twilio_auth_token": "token"}
    with pytest.raises(ProviderError, match="set BYS_PUBLIC_URL to the https:// address"):
        build_telephony(Settings(telephony="twilio", data_dir=tmp_path, **keys), SystemClock())
    with pytest.raises(ProviderError, match="BYS_TWILIO_ACCOUNT_SID"):
        build_telephony(Settings(telephony="twilio", data_dir=tmp_path, public_url="https://calls.example.com"),
                        SystemClock())
    # The real worker process says the same and exits, before dialling anything.
    import subprocess

    from e2e_server import BIN, server_env

    env = server_env(tmp_path, None, 0, BYS_TELEPHONY="twilio", BYS_TWILIO_ACCOUNT_SID=keys["twilio_account_sid"],
                     BYS_TWILIO_AUTH_TOKEN="token")
    assert subprocess.run([str(BIN / "byourside"), "migrate"], env=env, capture_output=True, timeout=120).returncode == 0
    worker = subprocess.run([str(BIN / "byourside"), "worker"], env=env, capture_output=True, text=True, timeout=120)
    assert worker.returncode == 1 and "BYS_PUBLIC_URL" in worker.stderr, worker.stderr[-2000:]
    assert "Traceback" not in worker.stderr


async def test_serve_with_workers_mounts_the_carrier_routes_beside_the_api(tmp_path):
    # `byourside serve` (API and workers in one process): Twilio reaches this process's own port.
    import httpx

    from support import open_services
    from byourside_server.server import run_server

    port = free_port()
    services = await open_services(f"sqlite+aiosqlite:///{tmp_path / 'db.sqlite'}", tmp_path, host="127.0.0.1",
                                   port=port, telephony="twilio", public_url=f"http://127.0.0.1:{port}",
                                   twilio_account_sid="AC" + "0" * 32, twilio_auth_token="token",
                                   twilio_api_url="http://127.0.0.1:9")
    ready, stop = asyncio.Event(), asyncio.Event()
    serving = asyncio.create_task(run_server(services, with_workers=True, ready=ready, stop=stop))
    await asyncio.wait_for(ready.wait(), 60)
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http:
            assert (await http.get("/healthz")).status_code == 200  # the API
            forged = await http.post("/carriers/twilio/status/token", data={"CallStatus": "completed"},
                                     headers={"X-Twilio-Signature": "forged"})
            assert forged.status_code == 403 and forged.json()["error"] == "forbidden"
    finally:
        stop.set()
        await serving
