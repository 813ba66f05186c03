"""Which caller IDs the configured carrier lets us present: what ``numbers add`` and ``numbers sync`` check.

- ``twilio``: the account's own numbers (IncomingPhoneNumbers) and its verified
  outgoing caller IDs (OutgoingCallerIds), asked of Twilio's REST API;
- ``telnyx``: the account's numbers (``/v2/phone_numbers``) and verified numbers;
- ``sip``: the list the operator declares in ``BYS_SIP_CALLER_IDS`` (a trunk
  has no API to ask; the trunk provider knows which numbers it gave you);
- ``simulator``: any number (a sandbox places no real calls).
"""

from __future__ import annotations

import re

from byourside_server.settings import Settings

E164 = re.compile(r"\+[1-9]\d{7,14}")


class CallerIdsUnavailable(Exception):
    """The carrier's list could not be had; the message says what to do."""


async def carrier_caller_ids(settings: Settings) -> list[str] | None:
    """The caller IDs the carrier confirms, or None when any number will do (the simulator)."""
    provider = settings.telephony
    if provider == "simulator":
        return None
    if provider == "sip":
        declared = [n.strip() for n in settings.sip_caller_ids.split(",") if n.strip()]
        wrong = [n for n in declared if not E164.fullmatch(n)]
        if wrong:
            raise CallerIdsUnavailable(f"BYS_SIP_CALLER_IDS holds {len(wrong)} entries that are not E.164 numbers "
                                       "(+ and 8-15 digits, comma-separated).")
        if not declared:
            raise CallerIdsUnavailable("BYS_TELEPHONY=sip: declare the caller IDs your SIP trunk lets you present in "
                                       "BYS_SIP_CALLER_IDS (comma-separated E.164, e.g. +14155550100,+442071234567).")
        return declared
    if provider == "twilio":
        from byourside_server.telephony.twilio import twilio_rest
        from byourside_server.telephony.twilio.rest import TwilioRestError

        try:
            rest = twilio_rest(settings)
        except ValueError as exc:
            raise CallerIdsUnavailable(f"BYS_TELEPHONY=twilio: {exc}") from None
        try:
            return await rest.numbers()
        except TwilioRestError as exc:
            raise CallerIdsUnavailable(f"Could not list the Twilio account's numbers at {settings.twilio_api_url}: "
                                       f"{exc}. Check BYS_TWILIO_ACCOUNT_SID and the credentials.") from None
        finally:
            await rest.aclose()
    if provider == "telnyx":
        from byourside_server.telephony.telnyx import telnyx_rest
        from byourside_server.telephony.telnyx.rest import TelnyxRestError

        try:
            client = telnyx_rest(settings)
        except ValueError as exc:
            raise CallerIdsUnavailable(f"BYS_TELEPHONY=telnyx: {exc}") from None
        try:
            return await client.numbers()
        except TelnyxRestError as exc:
            raise CallerIdsUnavailable(f"Could not list the Telnyx account's numbers at {settings.telnyx_api_url}: "
                                       f"{exc}. Check BYS_TELNYX_API_KEY.") from None
        finally:
            await client.aclose()
    raise CallerIdsUnavailable(f"BYS_TELEPHONY={provider}: this provider cannot confirm caller IDs.")
