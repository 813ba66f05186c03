"""Destination-number guardrails: strict E.164, blocked ranges, regions (spec sections 5 and 8)."""

from __future__ import annotations

import dataclasses

import phonenumbers
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from phonenumbers import PhoneNumberFormat, PhoneNumberType

from byourside_server.errors import DestinationBlocked, InvalidNumber, ToRequired
from byourside_server.guardrails import numbers
from byourside_server.guardrails.numbers import (
    BUILTIN_BLOCKED_PREFIXES,
    E164_RE,
    Destination,
    DestinationPolicy,
    check_caller_id_format,
    check_destination,
    is_simulator_number,
    load_irsf_prefixes,
    parse_e164,
)

DEFAULT = DestinationPolicy()
SHIPPED = DestinationPolicy(irsf_prefixes=load_irsf_prefixes())
NO_SIM = DestinationPolicy(allow_simulator_numbers=False)
DEFAULT_REGIONS = sorted(DEFAULT.allowed_regions)


def e164(number: phonenumbers.PhoneNumber) -> str:
    return phonenumbers.format_number(number, PhoneNumberFormat.E164)


def example(region: str, kind: int) -> str | None:
    number = phonenumbers.example_number_for_type(region, kind)
    return e164(number) if number is not None else None


# --- Table: the spec's own examples and their neighbours -------------------------

SPEC_MALFORMED = [
    "+14155550123x1",
    "+1 415 555 0123",
    "0014155550123",
    "14155550123",
    "+1415555O123",  # letter O
    "",
]

MALFORMED = [
    "+12125550199 ext 1",
    "+12125550199#1",
    "+1-212-555-0199",
    "+1.212.555.0199",
    "+1 (212) 5550199",
    "+1/212/5550199",
    "+1212555o199",
    "   ",
    "+",
    "+1234567",  # 7 digits: too short
    "+1234567890123456",  # 16 digits: too long
    "+02125550199",  # country codes never start with 0
    "++12125550199",
    " +12125550199",
    "+12125550199 ",
    "+12125550199\n",
    "\uff0b12125550199",  # full-width plus
    "+1\u0662\u0661\u0662\u0665\u0665\u0665\u0660\u0661\u0669\u0669",  # Arabic-Indic digits
    "+\U0001d7cf2125550199",  # mathematical bold digit one
]


@pytest.mark.parametrize("raw", SPEC_MALFORMED + MALFORMED)
def test_malformed_text_is_invalid_number(raw: str) -> None:
    with pytest.raises(InvalidNumber) as caught:
        check_destination(raw, DEFAULT)
    assert caught.value.token == "invalid_number"
    assert "2125550199" not in caught.value.message
    assert "0199" not in caught.value.message


@pytest.mark.parametrize("raw", [None, 14155550123, 1.5, b"+14155550123", ["+14155550123"], {"to": "+1"}])
def test_non_string_is_invalid_number(raw: object) -> None:
    with pytest.raises(InvalidNumber):
        check_destination(raw, DEFAULT)
    with pytest.raises(InvalidNumber):
        parse_e164(raw)


@pytest.mark.parametrize(
    "raw",
    [
        "+19001234567",  # NANP premium; the library calls it invalid, the spec says blocked
        "+19002345678",  # NANP premium the library calls valid PREMIUM_RATE
        "+19005550123",  # premium beats the simulator range
        "+19761234567",
        "+881612345678",  # satellite (GMSS)
        "+870773111111",  # Inmarsat
        "+883510012345",  # international networks
        "+979123456789",  # international premium rate
        "+80012345678",  # international freephone
        "+80812345678",  # international shared cost
        "+449012345678",  # UK 09 premium
        "+448712345678",  # UK 087 shared cost
        "+611900123456",  # AU 1900 premium
        "+61190112345",  # AU 19 range the library calls invalid
        "+64900123456",  # NZ 0900 premium
        "+9721919123456",  # IL 1919 premium
        "+9721900123456",  # IL 1900 premium
        "+97219001234",  # IL premium range the library calls invalid
        "+18765550123",  # Jamaica: +1 but not US, and a simulator-shaped number
        "+18095550123",  # Dominican Republic
        "+447911123456",  # Guernsey, not GB
        "+447781123456",  # Guernsey mobile
        "+447797123456",  # Jersey
        "+447624123456",  # Isle of Man
        "+33123456789",  # France: valid, region not enabled
        "+4930123456",  # Germany
    ],
)
def test_blocked_destinations(raw: str) -> None:
    with pytest.raises(DestinationBlocked) as caught:
        check_destination(raw, DEFAULT)
    assert caught.value.token == "destination_blocked"
    assert raw[1:] not in caught.value.message


def test_too_short_blocked_prefix_is_still_invalid_number() -> None:
    # Malformed text is decided before any prefix: "+8828" is not E.164 at all.
    with pytest.raises(InvalidNumber):
        check_destination("+8828", DEFAULT)


@pytest.mark.parametrize(
    ("raw", "region", "simulator"),
    [
        ("+14155550123", "US", True),
        ("+12125550100", "US", True),
        ("+15555550199", "US", True),  # unassigned area code, still a fictional line
        ("+12025550100", "US", True),
        ("+12125551234", "US", False),  # 555-1234 is outside the fictional 01XX block
        ("+16135550123", "CA", False),  # Canadian area code: a real CA number
        ("+14165550100", "CA", False),
        ("+442079460000", "GB", False),
        ("+442079460123", "GB", False),
        ("+447400123456", "GB", False),
        ("+448001234567", "GB", False),  # UK freephone is allowed
        ("+18002345678", "US", False),  # NANP toll-free is allowed
        ("+61212345678", "AU", False),
        ("+61412345678", "AU", False),
        ("+6432345678", "NZ", False),
        ("+64211234567", "NZ", False),
        ("+97221234567", "IL", False),
        ("+972502345678", "IL", False),
    ],
)
def test_allowed_destinations(raw: str, region: str, simulator: bool) -> None:
    dest = check_destination(raw, SHIPPED)
    assert dest == Destination(e164=raw, region=region, number_type=dest.number_type, simulator=simulator)
    assert dest.number_type in {"fixed_line", "mobile", "fixed_line_or_mobile", "toll_free", "unknown"}


def test_simulator_number_reports_library_type() -> None:
    assert check_destination("+14155550123", DEFAULT).number_type == "fixed_line_or_mobile"
    assert check_destination("+15555550100", DEFAULT).number_type == "unknown"


def test_simulator_numbers_follow_the_policy_switch() -> None:
    # Off: a fictional line in a real area code is just a US number; one in an
    # unassigned area code is not a number at all.
    assert check_destination("+14155550123", NO_SIM) == Destination("+14155550123", "US", "fixed_line_or_mobile", False)
    with pytest.raises(InvalidNumber):
        check_destination("+15555550100", NO_SIM)


def test_simulator_numbers_are_allowed_as_us_even_if_us_is_not_enabled() -> None:
    gb_only = DestinationPolicy(allowed_regions=frozenset({"GB"}))
    assert check_destination("+14155550123", gb_only).simulator is True
    with pytest.raises(DestinationBlocked):
        check_destination("+12125551234", gb_only)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("+14155550123", True),
        ("+12005550100", True),
        ("+19995550199", True),
        ("+15555550100", True),
        ("+11005550100", False),  # N must be 2-9
        ("+10005550100", False),
        ("+14155550200", False),
        ("+14155551234", False),
        ("+141555501234", False),
        ("+1415555012", False),
        ("+18765550123", False),  # Jamaica
        ("+16135550123", False),  # Canada
        ("+24155550123", False),
        ("14155550123", False),
        ("", False),
    ],
)
def test_is_simulator_number(raw: str, expected: bool) -> None:
    assert is_simulator_number(raw) is expected


def test_widening_the_allowlist() -> None:
    wide = DestinationPolicy(allowed_regions=frozenset({"FR", "GG", "JM"}), irsf_prefixes=load_irsf_prefixes())
    assert check_destination("+33123456789", wide).region == "FR"
    assert check_destination("+447911123456", wide).region == "GG"
    # Jamaica is enabled, but its area code is on the shipped IRSF list.
    with pytest.raises(DestinationBlocked):
        check_destination("+18762345678", wide)
    # ... and without the list it goes through.
    assert check_destination("+18762345678", dataclasses.replace(wide, irsf_prefixes=())).region == "JM"
    # Allowing a region never unblocks premium or non-geographic numbers.
    every = DestinationPolicy(allowed_regions=frozenset({"US", "GB", "001"}))
    for raw in ("+19002345678", "+449012345678", "+881612345678", "+80012345678"):
        with pytest.raises(DestinationBlocked):
            check_destination(raw, every)


def test_operator_prefixes_block_inside_allowed_regions() -> None:
    policy = DestinationPolicy(irsf_prefixes=("+4420794",))
    with pytest.raises(DestinationBlocked):
        check_destination("+442079460000", policy)
    assert check_destination("+442071234567", policy).region == "GB"


def test_library_invalid_number_in_allowed_country_is_invalid_number() -> None:
    with pytest.raises(InvalidNumber):
        check_destination("+4412345678", DEFAULT)  # GB needs 10 national digits
    with pytest.raises(InvalidNumber):
        check_destination("+99912345678", DEFAULT)  # no such country code


PAID_EXAMPLES = [
    pytest.param(raw, id=f"{region}-{name}")
    for region in DEFAULT_REGIONS
    for name, kind in (("premium", PhoneNumberType.PREMIUM_RATE), ("shared", PhoneNumberType.SHARED_COST))
    if (raw := example(region, kind)) is not None
]


def test_library_has_paid_examples_for_most_regions() -> None:
    assert len(PAID_EXAMPLES) >= len(DEFAULT_REGIONS)


@pytest.mark.parametrize("raw", PAID_EXAMPLES)
def test_library_premium_and_shared_cost_examples_are_blocked(raw: str) -> None:
    with pytest.raises(DestinationBlocked):
        check_destination(raw, DEFAULT)


NON_GEO_CODES = sorted(phonenumbers.COUNTRY_CODES_FOR_NON_GEO_REGIONS)


@pytest.mark.parametrize("code", NON_GEO_CODES)
def test_every_non_geographic_code_is_a_builtin_prefix(code: int) -> None:
    # Keeps the table in step with library upgrades that add codes.
    assert f"+{code}".startswith(BUILTIN_BLOCKED_PREFIXES)


@pytest.mark.parametrize("code", NON_GEO_CODES)
def test_non_geographic_region_is_blocked_even_without_the_prefix_table(code: int, monkeypatch) -> None:
    number = phonenumbers.example_number_for_non_geo_entity(code)
    assert number is not None
    monkeypatch.setattr(numbers, "BUILTIN_BLOCKED_PREFIXES", ())
    policy = DestinationPolicy(allowed_regions=frozenset({"001", "ZZ"}))
    with pytest.raises(DestinationBlocked):
        check_destination(e164(number), policy)


def test_error_classes_can_be_swapped_for_parse() -> None:
    with pytest.raises(ToRequired):
        parse_e164("", token_error=ToRequired)


@pytest.mark.parametrize(
    ("raw", "ok"),
    [
        ("+14155550123", True),
        ("+15555550100", True),  # simulator caller IDs are fine for sandbox accounts
        ("+442079460000", True),
        ("+447911123456", True),  # format only; region rules are for destinations
        ("+19001234567", False),
        ("+4412345678", False),
        ("+1 415 555 0123", False),
        (None, False),
    ],
)
def test_check_caller_id_format(raw: object, ok: bool) -> None:
    if ok:
        assert check_caller_id_format(raw) == raw
    else:
        with pytest.raises(InvalidNumber):
            check_caller_id_format(raw)


def test_value_objects_are_frozen() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        DEFAULT.allow_simulator_numbers = False  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        check_destination("+442079460000", DEFAULT).region = "US"  # type: ignore[misc]


# --- Shipped and operator IRSF lists ---------------------------------------------


def test_shipped_irsf_list_loads() -> None:
    shipped = load_irsf_prefixes()
    assert {"+53", "+252", "+232", "+245", "+677", "+692", "+1876"} <= set(shipped)
    assert len(shipped) == len(set(shipped))
    assert all(E164_RE.fullmatch(p + "0" * (9 - len(p))) for p in shipped)


def test_operator_file_extends_shipped_list(tmp_path) -> None:
    extra = tmp_path / "extra.txt"
    extra.write_text("# operator list\n\n+371 # Latvia\n  +3709   \n+53\n+371\n+4470#inline, no space\n", encoding="utf-8")
    prefixes = load_irsf_prefixes(extra)
    shipped = load_irsf_prefixes()
    assert prefixes[: len(shipped)] == shipped
    assert prefixes[len(shipped) :] == ("+371", "+3709", "+4470")
    assert load_irsf_prefixes(str(extra)) == prefixes


@pytest.mark.parametrize("bad", ["371", "+37 1", "+", "+0", "+abc", "+1-900", "00371", "+1234567890123456"])
def test_operator_file_bad_line_names_file_and_line(tmp_path, bad: str) -> None:
    extra = tmp_path / "extra.txt"
    extra.write_text(f"# header\n+371\n{bad}   # comment\n", encoding="utf-8")
    with pytest.raises(ValueError) as caught:
        load_irsf_prefixes(extra)
    assert "line 3" in str(caught.value)
    assert str(extra) in str(caught.value)


def test_missing_operator_file_raises(tmp_path) -> None:
    with pytest.raises(FileNotFoundError):
        load_irsf_prefixes(tmp_path / "nope.txt")


@pytest.mark.parametrize("region", DEFAULT_REGIONS)
@pytest.mark.parametrize("kind", [PhoneNumberType.FIXED_LINE, PhoneNumberType.MOBILE, PhoneNumberType.TOLL_FREE])
def test_shipped_lists_do_not_block_allowed_regions(region: str, kind: int) -> None:
    raw = example(region, kind)
    assert raw is not None
    # NANP toll-free codes are shared by US and CA; the library files them under US.
    expected = "US" if (region, kind) == ("CA", PhoneNumberType.TOLL_FREE) else region
    assert check_destination(raw, SHIPPED).region == expected
    assert check_destination(raw, dataclasses.replace(SHIPPED, allow_simulator_numbers=False)).region == expected


# --- Properties ------------------------------------------------------------------

digits = st.text(alphabet="0123456789", min_size=0, max_size=20)
near_e164 = st.one_of(
    st.text(),
    st.builds(lambda d: "+" + d, digits),
    st.builds(lambda a, junk, b: "+" + a + junk + b, digits, st.text(min_size=1, max_size=3), digits),
)


@given(near_e164)
def test_property_non_e164_text_is_invalid_number(raw: str) -> None:
    if E164_RE.fullmatch(raw):
        assert parse_e164(raw) == raw
        return
    with pytest.raises(InvalidNumber):
        parse_e164(raw)
    with pytest.raises(InvalidNumber):
        check_destination(raw, SHIPPED)


@settings(max_examples=300)
@given(st.one_of(st.text(), st.builds(lambda d: "+" + d, digits), st.from_regex(E164_RE, fullmatch=True)))
def test_property_check_destination_only_raises_api_errors(raw: str) -> None:
    try:
        dest = check_destination(raw, SHIPPED)
    except (InvalidNumber, DestinationBlocked) as exc:
        if len(raw) >= 9:
            assert raw[1:] not in exc.message
        return
    assert dest.e164 == raw
    assert dest.region in SHIPPED.allowed_regions


@pytest.mark.parametrize("region", DEFAULT_REGIONS)
@pytest.mark.parametrize("kind", [PhoneNumberType.FIXED_LINE, PhoneNumberType.MOBILE])
@pytest.mark.parametrize("policy", [DEFAULT, NO_SIM], ids=["sim", "nosim"])
def test_property_allowed_region_examples_pass(region: str, kind: int, policy: DestinationPolicy) -> None:
    raw = example(region, kind)
    assert raw is not None
    dest = check_destination(raw, policy)
    assert (dest.e164, dest.region) == (raw, region)


ALL_BLOCKED = tuple(dict.fromkeys(BUILTIN_BLOCKED_PREFIXES + SHIPPED.irsf_prefixes))


@settings(max_examples=300)
@given(st.sampled_from(ALL_BLOCKED), st.data())
def test_property_blocked_prefix_is_always_blocked(prefix: str, data: st.DataObject) -> None:
    total = data.draw(st.integers(min_value=max(8, len(prefix) - 1), max_value=15))
    raw = prefix + data.draw(st.text(alphabet="0123456789", min_size=total - (len(prefix) - 1), max_size=total - (len(prefix) - 1)))
    assert E164_RE.fullmatch(raw)
    with pytest.raises(DestinationBlocked):
        check_destination(raw, SHIPPED)
    # Allowing every region the library knows changes nothing.
    everywhere = dataclasses.replace(SHIPPED, allowed_regions=frozenset(phonenumbers.SUPPORTED_REGIONS) | {"001"})
    with pytest.raises(DestinationBlocked):
        check_destination(raw, everywhere)


@given(st.from_regex(E164_RE, fullmatch=True))
def test_property_parse_e164_is_idempotent(raw: str) -> None:
    once = parse_e164(raw)
    assert once == raw
    assert parse_e164(once) == once
