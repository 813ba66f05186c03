"""Consent and disclosure: whether a call is recorded, when the agent says so, and the account's
own name and AI disclosure wording.

Recording: an account keeps a recording of its calls unless it chose not to (``record_calls``,
default ``BYS_RECORD_CALLS``); then the line's audio file is deleted as the call ends and the
call has no ``recordingUrl``.

The recording notice ("This call is recorded.") follows the AI disclosure in the agent's first
words when the call is recorded and either the account asks for it on every call
(``recording_notice: always``) or the callee's number is in a place where every party must
know of or consent to a recording (``required``, the default). The places are the table below;
a US number is placed by its area code (``phonenumbers``' geocoding data), and a US number the
data cannot place (toll-free, non-geographic) gets the notice: the cautious reading. The table
is a summary of public surveys (docs/consent.md names them), not legal advice.

The AI disclosure is never removable: wording an account sets must itself say the caller is an
AI (``agent.phrases.says_ai``), and the brains fall back to the standard disclosure otherwise.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import phonenumbers
import structlog
from phonenumbers import geocoder

from byourside_server.agent.phrases import says_ai

if TYPE_CHECKING:
    from byourside_server.settings import Settings
    from byourside_server.store.records import Account

log = structlog.get_logger(__name__)

NOTICE_REQUIRED, NOTICE_ALWAYS = "required", "always"
NOTICE_MODES = (NOTICE_REQUIRED, NOTICE_ALWAYS)

# US states where recording a phone call needs every party's consent (or, for some, their knowledge).
# Michigan, Oregon (in person only) and Delaware (conflicting statutes) are disputed; they are listed
# because a notice where none was needed costs one sentence, and a missing one can cost a lawsuit.
ALL_PARTY_US_STATES = frozenset({"CA", "CT", "DE", "FL", "IL", "MD", "MA", "MI", "MT", "NV", "NH", "OR", "PA", "WA"})

# Countries (ISO 3166 regions as ``phonenumbers`` names them) where a recorded callee must be told:
# the EU and EEA (GDPR art. 13, and criminal codes such as Germany's StGB 201 and France's code
# pénal 226-1), the UK (UK GDPR), Switzerland (StGB 179ter), Canada (PIPEDA) and Australia
# (Telecommunications (Interception and Access) Act 1979).
ALL_PARTY_COUNTRIES = frozenset({
    "AT", "BE", "BG", "HR", "CY", "CZ", "DK", "EE", "FI", "FR", "DE", "GR", "HU", "IE", "IT", "LV", "LT", "LU",
    "MT", "NL", "PL", "PT", "RO", "SK", "SI", "ES", "SE",  # EU
    "IS", "LI", "NO",  # EEA
    "GB", "CH", "CA", "AU",
})

_US_STATE_NAMES = {
    "alabama": "AL", "alaska": "AK", "arizona": "AZ", "arkansas": "AR", "california": "CA", "colorado": "CO",
    "connecticut": "CT", "delaware": "DE", "florida": "FL", "georgia": "GA", "hawaii": "HI", "idaho": "ID",
    "illinois": "IL", "indiana": "IN", "iowa": "IA", "kansas": "KS", "kentucky": "KY", "louisiana": "LA",
    "maine": "ME", "maryland": "MD", "massachusetts": "MA", "michigan": "MI", "minnesota": "MN",
    "mississippi": "MS", "missouri": "MO", "montana": "MT", "nebraska": "NE", "nevada": "NV",
    "new hampshire": "NH", "new jersey": "NJ", "new mexico": "NM", "new york": "NY", "north carolina": "NC",
    "north dakota": "ND", "ohio": "OH", "oklahoma": "OK", "oregon": "OR", "pennsylvania": "PA",
    "rhode island": "RI", "south carolina": "SC", "south dakota": "SD", "tennessee": "TN", "texas": "TX",
    "utah": "UT", "vermont": "VT", "virginia": "VA", "washington state": "WA", "washington": "WA",
    "washington d.c.": "DC", "west virginia": "WV", "wisconsin": "WI", "wyoming": "WY",
}

MAX_DISPLAY_NAME = 100
MAX_DISCLOSURE = 300
MAX_RETENTION_DAYS = 36_500


class ConsentSettingError(ValueError):
    """An account setting that cannot be used; the message says what to write instead."""


def us_state(e164: str) -> str | None:
    """The US state a number's area code belongs to ("CA"), or None when the data does not place it."""
    try:
        number = phonenumbers.parse(e164)
    except phonenumbers.NumberParseException:
        return None
    description = geocoder.description_for_number(number, "en").strip()
    if not description:
        return None
    if description.lower() in _US_STATE_NAMES:
        return _US_STATE_NAMES[description.lower()]
    tail = description.rsplit(", ", 1)[-1]  # "San Francisco, CA"
    return tail if len(tail) == 2 and tail.isupper() else None


@lru_cache(maxsize=4096)
def consent_region(e164: str) -> str | None:
    """Where a number's recording rules come from: "US-CA" for a US state, "DE" for a country;
    "US" for a US number no state data places; None when the number cannot be read."""
    try:
        number = phonenumbers.parse(e164)
    except phonenumbers.NumberParseException:
        return None
    region = phonenumbers.region_code_for_number(number)
    if region == "US" or (number.country_code == 1 and region is None):
        state = us_state(e164)
        return f"US-{state}" if state else "US"
    return region


def all_party_consent(e164: str) -> bool:
    """Whether the callee's place asks that every party know of a recording (see the module note)."""
    region = consent_region(e164)
    if region is None:
        return False
    if region == "US":  # a US number with no state: the cautious reading
        return True
    if region.startswith("US-"):
        return region[3:] in ALL_PARTY_US_STATES
    return region in ALL_PARTY_COUNTRIES


@dataclass(frozen=True)
class ConsentPolicy:
    """The server's defaults (settings) for accounts that set none, and the per-call decisions."""

    record_calls: bool = True
    recording_notice: str = NOTICE_REQUIRED

    @classmethod
    def from_settings(cls, settings: Settings) -> ConsentPolicy:
        return cls(settings.record_calls, settings.recording_notice)

    def records(self, account: Account) -> bool:
        return self.record_calls if account.record_calls is None else account.record_calls

    def notice_due(self, account: Account, to_number: str) -> bool:
        """Whether a recorded call to ``to_number`` opens with the recording notice."""
        mode = account.recording_notice or self.recording_notice
        return mode == NOTICE_ALWAYS or all_party_consent(to_number)


def discard_recording(local_path: str | None) -> None:
    """Delete the audio a line wrote for a call that must not be recorded."""
    if local_path:
        try:
            Path(local_path).unlink(missing_ok=True)
        except OSError as exc:
            log.error("recording_not_discarded", error=type(exc).__name__)


# -- checking an account's settings --------------------------------------------

def _printable(value: str) -> bool:
    return all(ch.isprintable() for ch in value)


def check_display_name(value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ConsentSettingError("The display name must be the name callees should hear, e.g. 'Acme Dental'.")
    name = " ".join(value.split())
    if len(name) > MAX_DISPLAY_NAME or not _printable(name) or "{" in name or "}" in name:
        raise ConsentSettingError(f"The display name must be at most {MAX_DISPLAY_NAME} printable characters "
                                  "without braces.")
    return name


def check_disclosure(value: Any) -> str:
    """AI disclosure wording: it must say the caller is an AI; ``{name}`` stands for the display name."""
    if not isinstance(value, str) or not value.strip():
        raise ConsentSettingError("The AI disclosure cannot be removed: give wording that says the caller is an AI, "
                                  "e.g. 'Hello, this is Ava, an AI assistant calling for {name}.'")
    wording = " ".join(value.split())
    if len(wording) > MAX_DISCLOSURE or not _printable(wording):
        raise ConsentSettingError(f"The AI disclosure must be at most {MAX_DISCLOSURE} printable characters.")
    if any(brace in wording.replace("{name}", "") for brace in "{}"):
        raise ConsentSettingError("The AI disclosure may use only the placeholder {name} (the display name).")
    if not says_ai(wording):
        raise ConsentSettingError("The AI disclosure must tell the callee they are speaking with an AI: include "
                                  "'AI' or 'artificial intelligence', e.g. 'Hi, this is an AI assistant calling for "
                                  "{name}.'")
    return wording


def check_notice_mode(value: Any) -> str:
    if value not in NOTICE_MODES:
        raise ConsentSettingError("The recording notice is 'required' (only where the callee's place asks for it) "
                                  "or 'always'.")
    return value


def check_retention_days(value: Any) -> int:
    """Whole days, 0 for "keep forever"."""
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_RETENTION_DAYS:
        raise ConsentSettingError(f"Retention is a whole number of days from 0 (keep forever) to {MAX_RETENTION_DAYS}.")
    return value
