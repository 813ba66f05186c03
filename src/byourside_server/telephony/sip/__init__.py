"""The ``sip`` telephony provider: outbound calls over a SIP trunk; its media channel is RTP (media.py).

``build_sip_telephony`` composes it with the voice engine (voice/telephony.py), which turns each
answered call's media into the Line the brain talks through.

Our own asyncio SIP user agent (UDP, TCP or TLS) and RTP stack; see docs/ARCHITECTURE.md
("SIP and voice") for why it is not PJSIP.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from byourside_server.settings import Settings
    from byourside_server.telephony.base import Telephony

INSTALL_HINT = "pip install 'byourside-server[sip]'"


def build_sip_telephony(settings: Settings) -> Telephony:
    """The provider from BYS_SIP_* / BYS_STT_* / BYS_TTS_* settings; ImportError names the extra."""
    from byourside_server.voice.pipeline import check_voice_installed

    check_voice_installed()
    from byourside_server.telephony.sip.provider import SipTelephony
    from byourside_server.voice.pipeline import local_voice
    from byourside_server.voice.telephony import VoicedTelephony

    config = settings.sip
    config.trunk_host_uri  # noqa: B018 - fail at start-up when the trunk is not configured
    config.selected_transport  # noqa: B018 - or asks for a transport we do not have
    voice = local_voice(settings.voice, settings.data_dir)
    return VoicedTelephony(SipTelephony(config), voice, recordings_dir=settings.data_dir / "recordings")
