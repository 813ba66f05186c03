"""Destination-number guardrails (spec sections 5 and 8).

A destination passes four gates, in this order, before a call record exists:

1. strict E.164 text (``+`` then 8-15 ASCII digits)            -> ``InvalidNumber``
2. blocked prefixes: a built-in table of premium-rate, shared-cost and
   non-geographic codes, plus the operator's IRSF list           -> ``DestinationBlocked``
3. fictional simulator numbers (``+1 NXX 555-01XX``) pass here when allowed
4. the number library: valid number, geographic region, not premium or
   shared-cost, region on the allowlist                          -> either error

Prefixes are checked before the library on purpose: the library calls many
premium numbers (``+1 900 123 4567``) invalid, and such a number must still be
refused as ``destination_blocked``, never waved through as a typo.

Error messages never contain the number itself (numbers are personal data).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import phonenumbers
from phonenumbers import NumberParseException, PhoneNumberType

from byourside_server.errors import ApiError, DestinationBlocked, InvalidNumber

__all__ = [
    "E164_RE",
    "BUILTIN_BLOCKED_PREFIXES",
    "Destination",
    "DestinationPolicy",
    "check_caller_id_format",
    "check_destination",
    "is_simulator_number",
    "load_irsf_prefixes",
    "parse_e164",
]

# re.ASCII: without it ``\d`` also matches Arabic-Indic and other Unicode digits.
# Always use ``fullmatch``: ``$`` alone would accept a trailing newline.
E164_RE = re.compile(r"^\+[1-9]\d{7,14}$", re.ASCII)

_SIMULATOR_RE = re.compile(r"\+1[2-9]\d{2}55501\d{2}", re.ASCII)
_PREFIX_RE = re.compile(r"\+[1-9]\d{0,14}", re.ASCII)

# Blocked whatever the allowlist or the library says. One group per line of reasoning.
BUILTIN_BLOCKED_PREFIXES: tuple[str, ...] = (
    # NANP pay-per-call: the 900 service code, and 976, the code long tied to
    # pay-per-call lines (not a geographic area code).
    "+1900", "+1976",
    # UK: 09xx premium rate, 087x shared-cost/revenue-sharing service numbers.
    "+449", "+4487",
    # Australia 19xx premium; New Zealand 0900 premium.
    "+6119", "+64900",
    # Israel premium 1-900/1-901/1-902 and 1-919.
    "+9721900", "+9721901", "+9721902", "+9721919",
    # International freephone (800) and shared cost (808): not a place, and
    # carriers bill them unpredictably from abroad.
    "+800", "+808",
    # Inmarsat (870 SNAC, 871-874 retired ocean regions), universal personal
    # telecommunications (878), global mobile satellite systems (881).
    "+870", "+871", "+872", "+873", "+874", "+878", "+881",
    # "International networks" (882, 883), disaster relief (888), international
    # premium rate (979) and the ITPCS trial code (991).
    "+882", "+883", "+888", "+979", "+991",
)

# Library types refused even inside an allowed region.
_BLOCKED_TYPES = frozenset({PhoneNumberType.PREMIUM_RATE, PhoneNumberType.SHARED_COST})
_TYPE_NAMES = {value: name.lower() for name, value in vars(PhoneNumberType).items() if name.isupper()}


@dataclass(frozen=True)
class DestinationPolicy:
    """What an operator allows. Built once from settings; immutable so it can be shared."""

    allowed_regions: frozenset[str] = frozenset({"US", "CA", "GB", "AU", "NZ", "IL"})
    irsf_prefixes: tuple[str, ...] = ()  # E.164 prefixes such as "+53", matched with startswith
    allow_simulator_numbers: bool = True  # fictional +1 NXX 555-01XX lines count as allowed (US)


@dataclass(frozen=True)
class Destination:
    """A destination that passed every gate."""

    e164: str  # normalised E.164, e.g. "+14155550123"
    region: str  # ISO 3166 region, e.g. "US"
    number_type: str  # library type lowercased, e.g. "mobile"; "unknown" for unassigned simulator lines
    simulator: bool  # True when the policy routes this fictional number to the phone simulator


def _invalid_reason(raw: object) -> str:
    """Say what is wrong with a number without repeating it."""
    if not isinstance(raw, str):
        return f"The number must be a string in E.164 form, e.g. \"+14155550123\" (got {type(raw).__name__})."
    if not raw.strip():
        return "The number is empty: give '+', the country code and the number, e.g. +14155550123."
    if raw != raw.strip() or any(c in raw for c in " \t-.()/"):
        return "The number contains spaces or punctuation: E.164 is '+' and digits only, e.g. +14155550123."
    if any(c in raw.lower() for c in "x#;,") or "ext" in raw.lower():
        return "Extensions are not supported: give '+' and digits only, e.g. +14155550123."
    if raw.startswith("00"):
        return "Use '+' instead of the '00' international prefix, e.g. +14155550123."
    if not raw.startswith("+"):
        return "The number must start with '+' and the country code, e.g. +14155550123."
    if not raw[1:].isascii() or not raw[1:].isdigit():
        return "After '+' only the digits 0-9 are allowed (check for letters such as O for 0)."
    if raw.startswith("+0"):
        return "Country codes never start with 0: give '+', the country code and the number."
    return "E.164 numbers have 8 to 15 digits after '+' (country code included)."


def parse_e164(raw: object, *, token_error: type[ApiError] = InvalidNumber) -> str:
    """Return ``raw`` if it is strict E.164 text, else raise ``token_error``.

    Nothing is normalised or guessed (no stripping of spaces, no '00' rewrite):
    an agent that sends a sloppy number gets told how to fix it instead of
    having a guess dialled.
    """
    if isinstance(raw, str) and E164_RE.fullmatch(raw):
        return raw
    raise token_error(_invalid_reason(raw))


def _parse(e164: str) -> phonenumbers.PhoneNumber | None:
    try:
        return phonenumbers.parse(e164, None)
    except NumberParseException:
        return None


def is_simulator_number(e164: str) -> bool:
    """True for the fictional NANP lines ``+1 NXX 555-01XX`` in US area codes.

    NANPA reserves 555-0100..0199 for fiction. Area codes the library assigns to
    another country (+1 876 Jamaica, +1 613 Canada ...) are excluded so that a
    Caribbean number can never reach the network through the simulator door;
    unassigned area codes (+1 555) count as US.
    """
    if not isinstance(e164, str) or not _SIMULATOR_RE.fullmatch(e164):
        return False
    parsed = _parse(e164)
    region = phonenumbers.region_code_for_number(parsed) if parsed is not None else None
    return region in (None, "US")


def _blocked_prefix(e164: str, policy: DestinationPolicy) -> bool:
    return e164.startswith(BUILTIN_BLOCKED_PREFIXES) or e164.startswith(tuple(policy.irsf_prefixes))


def check_destination(raw: object, policy: DestinationPolicy) -> Destination:
    """Decide whether a call may go to ``raw``; return it classified, or raise.

    Raises ``InvalidNumber`` for text that is not strict E.164 or a number the
    library does not recognise, and ``DestinationBlocked`` for blocked prefixes,
    non-geographic codes, premium-rate or shared-cost numbers and regions
    outside ``policy.allowed_regions``. The region, not the country code,
    decides: +1 876 is Jamaica and +44 7911 is Guernsey.
    """
    e164 = parse_e164(raw)
    if _blocked_prefix(e164, policy):
        raise DestinationBlocked(
            "Calls to this number range are not allowed (premium-rate, satellite, non-geographic or high-fraud range)."
        )
    if policy.allow_simulator_numbers and is_simulator_number(e164):
        parsed = _parse(e164)
        valid = parsed is not None and phonenumbers.is_valid_number(parsed)
        kind = _TYPE_NAMES[phonenumbers.number_type(parsed)] if valid else "unknown"
        return Destination(e164=e164, region="US", number_type=kind, simulator=True)

    parsed = _parse(e164)
    if parsed is None or not phonenumbers.is_valid_number(parsed):
        raise InvalidNumber("The number is well-formed but not a valid number in its country: check the digits.")
    region = phonenumbers.region_code_for_number(parsed)
    if region in (None, phonenumbers.UNKNOWN_REGION, phonenumbers.REGION_CODE_FOR_NON_GEO_ENTITY):
        raise DestinationBlocked("Calls to non-geographic numbers (satellite, international networks) are not allowed.")
    kind = phonenumbers.number_type(parsed)
    if kind in _BLOCKED_TYPES:
        raise DestinationBlocked("Calls to premium-rate and shared-cost numbers are not allowed.")
    if region not in policy.allowed_regions:
        raise DestinationBlocked(
            f"Calls to region {region} are not enabled on this server "
            f"(allowed: {', '.join(sorted(policy.allowed_regions)) or 'none'})."
        )
    return Destination(e164=e164, region=region, number_type=_TYPE_NAMES[kind], simulator=False)


def check_caller_id_format(raw: object) -> str:
    """Return ``raw`` if it can be a caller ID: strict E.164 and a valid number, or a simulator line.

    Ownership (``caller_id_not_owned``) is checked elsewhere, against the account.
    """
    e164 = parse_e164(raw)
    if is_simulator_number(e164):
        return e164
    parsed = _parse(e164)
    if parsed is None or not phonenumbers.is_valid_number(parsed):
        raise InvalidNumber("The caller ID is well-formed but not a valid number in its country: check the digits.")
    return e164


def _read_prefixes(text: str, source: str, into: dict[str, None]) -> None:
    for lineno, line in enumerate(text.splitlines(), start=1):
        entry = line.split("#", 1)[0].strip()
        if not entry:
            continue
        if not _PREFIX_RE.fullmatch(entry):
            raise ValueError(
                f"{source}, line {lineno}: expected one E.164 prefix ('+', a non-zero digit, "
                f"then up to 14 digits, no spaces), optionally followed by a '#' comment"
            )
        into.setdefault(entry, None)


def load_irsf_prefixes(extra_file: str | os.PathLike[str] | None = None) -> tuple[str, ...]:
    """Return the shipped IRSF prefixes followed by the operator's, deduplicated in order.

    Format of both files: one E.164 prefix per line; blank lines and anything
    after '#' are ignored. A bad line raises ``ValueError`` naming the file and
    line, so a typo stops the server at start-up instead of silently allowing
    a range.
    """
    prefixes: dict[str, None] = {}
    shipped = resources.files(__package__).joinpath("irsf_prefixes.txt")
    _read_prefixes(shipped.read_text(encoding="utf-8"), "irsf_prefixes.txt (shipped)", prefixes)
    if extra_file is not None:
        path = Path(extra_file)
        _read_prefixes(path.read_text(encoding="utf-8"), str(path), prefixes)
    return tuple(prefixes)
