"""The ``twilio`` telephony provider: Twilio's REST API and bidirectional Media Streams (provider.py).

``build_twilio_telephony`` composes it with the voice engine (voice/telephony.py), as for SIP: an
answered call's media becomes the Line the brain talks through. See docs/carriers.md.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from byourside_server.settings import Settings
    from byourside_server.telephony.base import Telephony
    from byourside_server.telephony.twilio.rest import TwilioRest

INSTALL_HINT = "pip install 'byourside-server[sip]'"  # the voice engine's models (the same extra as SIP)


def twilio_rest(settings: Settings) -> TwilioRest:
    """The REST client from BYS_TWILIO_*; ValueError names what is missing."""
    from byourside_server.telephony.twilio.rest import TwilioRest

    sid, token = settings.twilio_account_sid, settings.twilio_auth_token
    if not sid or not token:
        raise ValueError("set BYS_TWILIO_ACCOUNT_SID (AC...) and BYS_TWILIO_AUTH_TOKEN, from the Twilio Console's "
                         "Account Info (https://console.twilio.com)")
    if bool(settings.twilio_api_key_sid) != bool(settings.twilio_api_key_secret):
        raise ValueError("set both BYS_TWILIO_API_KEY_SID and BYS_TWILIO_API_KEY_SECRET, or neither")
    username, password = ((settings.twilio_api_key_sid, settings.twilio_api_key_secret)
                          if settings.twilio_api_key_sid else (sid, token))
    return TwilioRest(sid, username, password, settings.twilio_api_url)  # type: ignore[arg-type]


def build_twilio_telephony(settings: Settings) -> Telephony:
    """The provider with the voice engine; ValueError says which setting is missing, ImportError names the extra."""
    from byourside_server.telephony.routes import require_public_url

    public_url = require_public_url(settings.public_url, "twilio")
    rest = twilio_rest(settings)
    from byourside_server.voice.pipeline import check_voice_installed

    check_voice_installed()
    from byourside_server.telephony.twilio.provider import TwilioTelephony
    from byourside_server.voice.pipeline import local_voice
    from byourside_server.voice.telephony import VoicedTelephony

    carrier = TwilioTelephony(rest, settings.twilio_auth_token or "", public_url, settings.twilio_machine_detection)
    voice = local_voice(settings.voice, settings.data_dir)
    return VoicedTelephony(carrier, voice, recordings_dir=settings.data_dir / "recordings")
