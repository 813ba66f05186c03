"""The telnyx provider against the fake Telnyx, in one process: Call Control, Ed25519-signed webhooks, the stream.

Our side is the real provider serving its carrier routes on a real uvicorn server on loopback; the far
side is tests/carriers/fake_telnyx.py playing the simulator's scenarios. No speech models needed.
"""

from __future__ import annotations

import asyncio
import base64
import socket
import time

import numpy as np
import pytest
import uvicorn
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from fake_telnyx import FakeTelnyx
from test_twilio_provider import NoModels
from byourside_server.domain import AnsweredBy
from byourside_server.telephony.base import DialRequest, DialResult
from byourside_server.telephony.media import DigitReceived
from byourside_server.telephony.routes import carrier_app
from byourside_server.telephony.simulator.scenarios import load_scenarios
from byourside_server.telephony.telnyx.provider import TelnyxTelephony
from byourside_server.telephony.telnyx.rest import TelnyxRest
from byourside_server.telephony.telnyx.signature import signature_valid


def test_ed25519_webhook_signature():
    key = Ed25519PrivateKey.generate()
    public = base64.b64encode(key.public_key().public_bytes(serialization.Encoding.Raw,
                                                            serialization.PublicFormat.Raw)).decode()
    body, now = b'{"data": {"event_type": "call.answered"}}', time.time()
    stamp = str(int(now))
    signature = base64.b64encode(key.sign(stamp.encode() + b"|" + body)).decode()
    assert signature_valid(public, stamp, body, signature, now)
    assert not signature_valid(public, stamp, body + b" ", signature, now)  # the body as received, byte for byte
    assert not signature_valid(public, str(int(now) + 1), body, signature, now)
    assert not signature_valid(public, stamp, body, signature, now + 301)  # a replay after five minutes
    assert not signature_valid(public, stamp, body, None, now)
    assert not signature_valid(public, stamp, body, "not base64!", now)


@pytest.fixture
async def telnyx():
    fake = await FakeTelnyx(load_scenarios(), NoModels(), numbers=("+14155550100",)).start()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    provider = TelnyxTelephony(TelnyxRest(fake.api_key, fake.api_url), fake.public_key, fake.connection_id,
                               f"http://127.0.0.1:{port}")
    server = uvicorn.Server(uvicorn.Config(carrier_app(provider.carrier_routes()), host="127.0.0.1", port=port,
                                           log_config=None, access_log=False, lifespan="off"))
    task = asyncio.create_task(server.serve())
    while not server.started:
        await asyncio.sleep(0.02)
    yield fake, provider
    await fake.aclose()
    await provider.aclose()
    server.should_exit = True
    await task


def request(to: str, ring_timeout: float = 10.0, caller_id: str = "+14155550100") -> DialRequest:
    return DialRequest("call_telnyx", to, caller_id, ring_timeout, "en-US", "alloy")


@pytest.mark.parametrize(("number", "result", "reason"), [
    ("+14155550161", DialResult.BUSY, None),
    ("+14155550162", DialResult.DECLINED, None),
    ("+14155550163", DialResult.FAILED, "sip_503"),
    ("+442079460000", DialResult.FAILED, "invalid_number"),  # no scenario: unallocated
])
async def test_calls_that_are_not_answered_end_by_their_hangup_cause(telnyx, number, result, reason):
    fake, provider = telnyx
    outcome = await provider.dial(request(number))
    assert (outcome.result, outcome.reason) == (result, reason)
    (call,) = fake.calls.values()
    assert set(call.callback_answers) == {204}
    assert dict(call.params)["StreamUrl"].startswith("ws://127.0.0.1:")


async def test_no_answer_and_a_caller_id_telnyx_refuses(telnyx):
    fake, provider = telnyx
    outcome = await provider.dial(request("+14155550160", ring_timeout=5))
    assert outcome.result is DialResult.NO_ANSWER
    refused = await provider.dial(request("+14155550123", caller_id="+14155559999"))
    assert (refused.result, refused.reason) == (DialResult.FAILED, "telnyx_10011")


async def test_the_answered_call_streams_both_ways_and_hangs_up_through_call_control(telnyx):
    fake, provider = telnyx
    provider.machine_detection = "detect"
    outcome = await provider.dial(request("+14155550133"))
    assert outcome.result is DialResult.ANSWERED
    media = outcome.media
    (call,) = fake.calls.values()
    events = []

    async def take() -> None:
        async for event in media.events():
            events.append(event)

    taking = asyncio.create_task(take())
    tone = (3000 * np.sin(2 * np.pi * 440 * np.arange(4000) / 8000)).astype(np.int16)
    assert (await media.play(tone)).completed
    assert await asyncio.wait_for(media.mark(), 5) is True
    await media.send_digits("1")
    await call.media.send_digits("9")
    for _ in range(100):
        if call.callee.digits == ["1"] and any(isinstance(e, DigitReceived) for e in events) and media.answered_by():
            break
        await asyncio.sleep(0.05)
    assert call.callee.digits == ["1"]
    assert [e.digit for e in events if isinstance(e, DigitReceived)] == ["9"]
    assert media.answered_by().kind == AnsweredBy.HUMAN and media.answered_by().evidence["carrier"] == "telnyx"
    await media.hangup()
    await asyncio.wait_for(taking, 5)
    await asyncio.wait_for(call.ended.wait(), 10)
    assert call.statuses_sent[-1] == "completed" and provider._calls == {}


async def test_forged_webhooks_are_refused(telnyx):
    fake, provider = telnyx
    fake.forge_signatures = True  # signed with another key pair
    dialing = asyncio.create_task(provider.dial(request("+14155550161")))
    while not fake.calls or not next(iter(fake.calls.values())).ended.is_set():
        await asyncio.sleep(0.05)
    (call,) = fake.calls.values()
    assert set(call.callback_answers) == {403}
    assert not dialing.done()  # the forged hang-up moved nothing
    dialing.cancel()
    with pytest.raises(asyncio.CancelledError):
        await dialing
