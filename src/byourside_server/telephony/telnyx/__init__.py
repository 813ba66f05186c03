"""The ``telnyx`` telephony provider: Telnyx Call Control and its bidirectional media streaming (provider.py).

``build_telnyx_telephony`` composes it with the voice engine (voice/telephony.py), as for SIP and
Twilio. See docs/carriers.md.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from byourside_server.settings import Settings
    from byourside_server.telephony.base import Telephony
    from byourside_server.telephony.telnyx.rest import TelnyxRest

INSTALL_HINT = "pip install 'byourside-server[sip]'"  # the voice engine's models and Ed25519 (cryptography)


def telnyx_rest(settings: Settings) -> TelnyxRest:
    """The API client from BYS_TELNYX_API_KEY; ValueError names what is missing."""
    from byourside_server.telephony.telnyx.rest import TelnyxRest

    if not settings.telnyx_api_key:
        raise ValueError("set BYS_TELNYX_API_KEY (KEY...), from the Telnyx Mission Control Portal "
                         "(https://portal.telnyx.com, API Keys)")
    return TelnyxRest(settings.telnyx_api_key, settings.telnyx_api_url)


def build_telnyx_telephony(settings: Settings) -> Telephony:
    """The provider with the voice engine; ValueError says which setting is missing, ImportError names the extra."""
    from byourside_server.telephony.routes import require_public_url

    public_url = require_public_url(settings.public_url, "telnyx")
    if not settings.telnyx_public_key or not settings.telnyx_connection_id:
        raise ValueError("set BYS_TELNYX_PUBLIC_KEY (Mission Control: Keys & Credentials, Public Key; it checks the "
                         "webhooks' signatures) and BYS_TELNYX_CONNECTION_ID (the Call Control Application's id)")
    rest = telnyx_rest(settings)
    import cryptography  # noqa: F401 - Ed25519 for the webhooks' signatures
    from byourside_server.voice.pipeline import check_voice_installed

    check_voice_installed()
    from byourside_server.telephony.telnyx.provider import TelnyxTelephony
    from byourside_server.voice.pipeline import local_voice
    from byourside_server.voice.telephony import VoicedTelephony

    carrier = TelnyxTelephony(rest, settings.telnyx_public_key, settings.telnyx_connection_id, public_url,
                              settings.telnyx_machine_detection)
    voice = local_voice(settings.voice, settings.data_dir)
    return VoicedTelephony(carrier, voice, recordings_dir=settings.data_dir / "recordings")
