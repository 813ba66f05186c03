"""The sip provider calling the SIP simulator over TCP and over TLS, on loopback, with no speech models.

This sipp build has no TLS, so TLS runs between our two ends: the simulator listens with a certificate made
here (self-signed, for ``localhost`` and 127.0.0.1), and the provider checks it against the CA file it is
given, or against the system's CAs by default (which must refuse it).
"""

from __future__ import annotations

import asyncio
import ssl
from pathlib import Path

import pytest
from support import write_self_signed
from test_sip_dial import NoModels

from byourside_server.telephony.base import DialRequest, DialResult, Silence
from byourside_server.telephony.simulator.over_sip import SipSimulator
from byourside_server.telephony.simulator.scenarios import load_scenarios
from byourside_server.telephony.sip.config import SipConfig
from byourside_server.telephony.sip.provider import SipTelephony
from byourside_server.voice.telephony import VoicedTelephony
from byourside_server.telephony.sip.transport import client_tls_context, server_tls_context
from byourside_server.telephony.sip.ua import UserAgent


def self_signed(directory: Path, name: str = "localhost", with_ip: bool = True) -> tuple[Path, Path]:
    """A self-signed certificate for ``name`` (and 127.0.0.1 ``with_ip``), and its key, as PEM files."""
    return write_self_signed(directory, name, ("127.0.0.1",) if with_ip else ())


class Ends:
    """The simulator listening on one transport, and a provider configured to reach it."""

    def __init__(self, simulator: SipSimulator, telephony: VoicedTelephony, sni: list[str]) -> None:
        self.simulator, self.telephony, self.sni = simulator, telephony, sni

    async def aclose(self) -> None:
        await self.telephony.aclose()
        await self.simulator.aclose()


async def start(transport: str, tmp_path: Path, trunk_uri: str | None = None, **config) -> Ends:
    tls, sni = None, []
    if transport == "tls":
        cert_file, key_file = self_signed(tmp_path)
        tls = server_tls_context(str(cert_file), str(key_file))
        tls.sni_callback = lambda _sock, name, _ctx: sni.append(name)
        config.setdefault("tls_ca_file", str(cert_file))
    simulator = await SipSimulator(load_scenarios(), NoModels(), host="127.0.0.1", port=0, transport=transport,
                                   tls=tls).start()
    uri = (trunk_uri or simulator.uri).format(port=simulator.port)
    telephony = VoicedTelephony(SipTelephony(SipConfig(trunk_uri=uri, bind_host="127.0.0.1", **config)), NoModels())
    return Ends(simulator, telephony, sni)


def request(to: str, ring_timeout: float = 10.0) -> DialRequest:
    return DialRequest("call_stream", to, "+14155550100", ring_timeout, "en-US", "alloy")


async def settle(simulator: SipSimulator) -> None:
    for _ in range(50):  # the simulator saw the ACK (or the CANCEL) and ended its side
        if not simulator._tasks and not simulator.ua.dialogs:
            return
        await asyncio.sleep(0.1)


TRANSPORTS = ["tcp", "tls"]


@pytest.mark.parametrize("transport", TRANSPORTS)
@pytest.mark.parametrize(("number", "result"), [("+14155550161", DialResult.BUSY),
                                                ("+14155550162", DialResult.DECLINED)])
async def test_rejections_over_a_stream(tmp_path, transport, number, result):
    ends = await start(transport, tmp_path)
    try:
        outcome = await ends.telephony.dial(request(number))
        assert (outcome.result, outcome.line) == (result, None)
        await settle(ends.simulator)
        assert ends.simulator.ua.dialogs == {} and ends.telephony.carrier._ua.dialogs == {}
        assert ends.telephony.carrier._ua.transport.name == transport.upper()
    finally:
        await ends.aclose()


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_no_answer_over_a_stream_rings_until_the_caller_cancels(tmp_path, transport):
    ends = await start(transport, tmp_path)
    try:
        outcome = await ends.telephony.dial(request("+14155550160", ring_timeout=1.5))
        assert (outcome.result, outcome.reason) == (DialResult.NO_ANSWER, "ring_timeout")
        await settle(ends.simulator)
        assert not ends.simulator._tasks and ends.simulator.ua.dialogs == {}
    finally:
        await ends.aclose()


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_silent_line_over_a_stream_answers_and_the_callers_bye_ends_it(tmp_path, transport):
    ends = await start(transport, tmp_path)
    try:
        outcome = await ends.telephony.dial(request("+14155550133"))
        assert outcome.result is DialResult.ANSWERED
        line = outcome.line
        assert isinstance(await line.listen(0.5), Silence)
        await line.send_digits("42#")
        await line.hangup()
        callee = ends.simulator.callees[-1]
        assert callee.digits == ["4", "2", "#"]
        await settle(ends.simulator)
        assert not ends.simulator._tasks and callee.dialog.closed
        # The simulator reaches us at the Contact we sent: the transport is named in it.
        assert callee.dialog.remote_target.endswith(f";transport={transport}")
    finally:
        await ends.aclose()


async def test_a_sips_trunk_uri_selects_tls_checks_the_name_and_uses_sips_uris(tmp_path):
    ends = await start("tls", tmp_path, trunk_uri="sips:localhost:{port}")
    try:
        outcome = await ends.telephony.dial(request("+14155550133"))
        assert outcome.result is DialResult.ANSWERED
        assert isinstance(await outcome.line.listen(0.3), Silence)  # the simulator took the call up
        await outcome.line.hangup()
        await settle(ends.simulator)
        assert ends.sni == ["localhost"]  # the name, not the address it resolved to, went into the handshake
        assert ends.simulator.callees[-1].dialog.remote_target.startswith("sips:byourside@127.0.0.1:")
    finally:
        await ends.aclose()


async def test_an_unknown_certificate_is_refused_by_default(tmp_path):
    ends = await start("tls", tmp_path, tls_ca_file=None)  # only the system's CAs: our self-signed one is not
    try:
        outcome = await ends.telephony.dial(request("+14155550161"))
        assert (outcome.result, outcome.reason) == (DialResult.FAILED, "sip_tls")
        assert ends.simulator.callees == [] and not ends.simulator._tasks
    finally:
        await ends.aclose()


async def test_a_certificate_for_another_name_is_refused(tmp_path):
    other, _ = self_signed(tmp_path, "pbx.example.test")
    ends = await start("tls", tmp_path, trunk_uri="sip:localhost:{port};transport=tls", tls_ca_file=str(other))
    try:
        outcome = await ends.telephony.dial(request("+14155550161"))
        assert (outcome.result, outcome.reason) == (DialResult.FAILED, "sip_tls")
    finally:
        await ends.aclose()


async def test_verification_can_be_turned_off(tmp_path):
    ends = await start("tls", tmp_path, tls_ca_file=None, tls_verify=False)
    try:
        outcome = await ends.telephony.dial(request("+14155550161"))
        assert outcome.result is DialResult.BUSY
    finally:
        await ends.aclose()


async def test_an_address_with_no_name_of_its_own_is_checked_against_the_trunks_name(tmp_path):
    """A Contact or Record-Route often names one of the trunk's IPs: its certificate carries the trunk's name."""
    cert_file, key_file = self_signed(tmp_path, "localhost", with_ip=False)
    server = await UserAgent.open("127.0.0.1", 0, "tls", server_tls=server_tls_context(str(cert_file), str(key_file)))
    client = await UserAgent.open("127.0.0.1", 0, "tls", client_tls=client_tls_context(str(cert_file)))
    other = await UserAgent.open("127.0.0.1", 0, "tls", client_tls=client_tls_context(str(cert_file)))
    try:
        client.remember_name(("127.0.0.1", 5061), "localhost", default=True)  # the trunk, resolved elsewhere
        assert await client.connect(("127.0.0.1", server.port)) > 0
        with pytest.raises(ssl.SSLCertVerificationError):  # without the trunk's name: checked as 127.0.0.1
            await other.connect(("127.0.0.1", server.port))
    finally:
        for ua in (client, other, server):
            ua.close()
