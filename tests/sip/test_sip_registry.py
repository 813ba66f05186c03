"""BYS_TELEPHONY=sip through the one provider registry: configured, misconfigured."""

from __future__ import annotations

import pytest

from byourside_server.clock import SystemClock
from byourside_server.runtime.registry import ProviderError, build_telephony
from byourside_server.settings import Settings
from byourside_server.telephony.sip.provider import SipTelephony
from byourside_server.voice.telephony import VoicedTelephony


@pytest.fixture
def sip_env(monkeypatch):
    for name in ("BYS_SIP_TRUNK_URI", "BYS_SIP_TRANSPORT", "BYS_SIP_CODECS", "BYS_SIP_USERNAME"):
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


async def test_sip_provider_is_built_from_settings(sip_env, tmp_path):
    sip_env.setenv("BYS_SIP_TRUNK_URI", "sip:trunk.example.net:5080")
    sip_env.setenv("BYS_SIP_USERNAME", "acct")
    sip_env.setenv("BYS_SIP_CODECS", "pcma, pcmu")
    telephony = build_telephony(Settings(telephony="sip", data_dir=tmp_path), SystemClock())
    assert isinstance(telephony, VoicedTelephony) and isinstance(telephony.carrier, SipTelephony)
    assert telephony.carrier.config.username == "acct"
    assert telephony.carrier.config.payload_types == (8, 0)
    assert telephony.recordings_dir == tmp_path / "recordings"
    await telephony.aclose()


@pytest.mark.parametrize(("env", "message"), [
    ({}, "BYS_SIP_TRUNK_URI is not set"),
    ({"BYS_SIP_TRUNK_URI": "pbx.local", "BYS_SIP_TRANSPORT": "sctp"}, "BYS_SIP_TRANSPORT"),
    ({"BYS_SIP_TRUNK_URI": "pbx.local;transport=sctp"}, "transport="),
    ({"BYS_SIP_TRUNK_URI": "sips:pbx.local", "BYS_SIP_TRANSPORT": "udp"}, "BYS_SIP_TRANSPORT=tls"),
    ({"BYS_SIP_TRUNK_URI": "pbx.local", "BYS_SIP_CODECS": "opus"}, "BYS_SIP_CODECS"),
])
def test_misconfigured_sip_fails_at_start_up(sip_env, tmp_path, env, message):
    for name, value in env.items():
        sip_env.setenv(name, value)
    with pytest.raises(ProviderError, match=message):
        build_telephony(Settings(telephony="sip", data_dir=tmp_path), SystemClock())
