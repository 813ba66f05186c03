"""Calling hours, the callee's time zones, the retry policy and the request keys of responsible calling."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from byourside_server.compliance.hours import CallingHours, CallingHoursError, parse_days, zones_for_number
from byourside_server.compliance.requests import parse_calling_hours_mode, parse_scheduled_at
from byourside_server.compliance.retry import RetryPolicy, outcome_of, parse_retry
from byourside_server.domain import CallStatus
from byourside_server.errors import InvalidRequest

UTC = timezone.utc
DEFAULT = CallingHours()  # 08:00-21:00 every day


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(UTC)


def test_a_single_zone_number_waits_for_its_own_morning():
    zones = zones_for_number("+14155551234")  # San Francisco
    assert [z.key for z in zones] == ["America/Los_Angeles"]
    three_am = at("2026-12-01T03:00:00-08:00")
    assert DEFAULT.next_open(zones, three_am) == at("2026-12-01T08:00:00-08:00")
    noon = at("2026-12-01T12:00:00-08:00")
    assert DEFAULT.next_open(zones, noon) == noon
    # The window closes at 21:00 sharp and reopens the next morning.
    assert DEFAULT.next_open(zones, at("2026-12-01T21:00:00-08:00")) == at("2026-12-02T08:00:00-08:00")


def test_where_it_is_night_for_one_callee_it_is_day_for_another():
    moment = at("2026-12-01T11:00:00+00:00")  # 03:00 in San Francisco, 11:00 in London
    assert DEFAULT.next_open(zones_for_number("+442071234567"), moment) == moment
    assert DEFAULT.next_open(zones_for_number("+14155551234"), moment) == at("2026-12-01T16:00:00+00:00")


def test_a_number_spanning_zones_waits_until_the_window_is_open_in_every_one():
    zones = zones_for_number("+61412345678")  # an Australian mobile range: Lord Howe to the Cocos Islands
    assert {"Australia/Sydney", "Australia/Perth", "Indian/Cocos"} <= {z.key for z in zones}
    moment = at("2026-12-01T22:30:00+00:00")  # 09:30 in Sydney (summer), 06:30 in Perth
    opened = DEFAULT.next_open(zones, moment)
    assert opened == at("2026-12-02T08:00:00+06:30")  # 08:00 on the Cocos Islands, the last zone to open
    assert all(DEFAULT.open_in(z, opened) for z in zones)
    assert not DEFAULT.open_everywhere(zones, opened - timedelta(minutes=1))


def test_toll_free_numbers_get_the_narrow_overlap_of_all_their_zones():
    zones = zones_for_number("+18005550100")  # NANP toll-free: Guam to Newfoundland
    opened = DEFAULT.next_open(zones, at("2026-12-01T12:00:00+00:00"))
    assert opened is not None and DEFAULT.open_everywhere(zones, opened)


def test_a_number_without_zone_data_gets_its_countrys_zones():
    assert len(zones_for_number("+15555550100")) > 10  # +1 555: no area, so every +1 zone


def test_days_of_the_week_are_kept():
    weekdays = CallingHours.parse("09:00", "17:00", "mon-fri")
    saturday_noon = at("2026-12-05T12:00:00-08:00")
    assert weekdays.next_open(zones_for_number("+14155551234"), saturday_noon) == at("2026-12-07T09:00:00-08:00")
    assert parse_days(["Sat", "sunday"]) == frozenset({5, 6})
    assert parse_days("fri-mon") == frozenset({4, 5, 6, 0})


def test_windows_that_never_overlap_are_reported_as_never_open():
    narrow = CallingHours.parse("12:00", "13:00", "mon-sun")
    assert narrow.next_open(zones_for_number("+18005550100"), at("2026-12-01T12:00:00+00:00")) is None


def test_daylight_saving_is_followed():
    zones = zones_for_number("+14155551234")
    # 2026-03-08: clocks go forward in the US; 08:00 that morning is 15:00 UTC, not 16:00.
    assert DEFAULT.next_open(zones, at("2026-03-08T10:00:00+00:00")) == at("2026-03-08T15:00:00+00:00")


@pytest.mark.parametrize("start,end,days", [("8am", "21:00", "mon"), ("21:00", "08:00", "mon"), ("08:00", "25:00", "mon"),
                                            ("08:00", "21:00", "funday"), ("08:00", "21:00", "")])
def test_bad_calling_hours_are_refused(start, end, days):
    with pytest.raises(CallingHoursError):
        CallingHours.parse(start, end, days)


def test_scheduled_at_is_strict_rfc3339():
    assert parse_scheduled_at("2026-12-01T09:30:00-08:00") == at("2026-12-01T17:30:00+00:00")
    assert parse_scheduled_at("2026-12-01T17:30:00.123456789Z") == at("2026-12-01T17:30:00.123456+00:00")
    assert parse_scheduled_at(None) is None
    for bad in ("2026-12-01T09:30:00", "2026-12-01", "tomorrow", "2026-13-01T09:30:00Z", "2026-02-30T09:30:00Z",
                1764581400, "2026-12-01T24:30:00Z", " 2026-12-01T09:30:00Z"):
        with pytest.raises(InvalidRequest):
            parse_scheduled_at(bad)


def test_calling_hours_mode():
    assert parse_calling_hours_mode(None) == "hold"
    assert parse_calling_hours_mode("strict") == "strict"
    for bad in ("STRICT", "", True, "ignore"):
        with pytest.raises(InvalidRequest):
            parse_calling_hours_mode(bad)


def test_retry_policy_reads_and_shows_itself():
    policy = parse_retry({"on": ["no_answer", "busy"], "maxAttempts": 3, "backoffMinutes": [10, 60]})
    assert policy == RetryPolicy(("no_answer", "busy"), 3, (10, 60))
    assert policy.backoff_before(2) == 10 and policy.backoff_before(3) == 60 and policy.backoff_before(9) == 60
    assert RetryPolicy.from_json(policy.to_json()) == policy
    assert parse_retry({}) == RetryPolicy(("no_answer", "busy"), 3, (60,))
    assert parse_retry(None) is None


@pytest.mark.parametrize("bad", [
    [], "no_answer", {"on": []}, {"on": ["completed"]}, {"maxAttempts": 0}, {"maxAttempts": 11}, {"maxAttempts": 2.5},
    {"maxAttempts": True}, {"backoffMinutes": 0}, {"backoffMinutes": []}, {"backoffMinutes": "10"}, {"other": 1},
])
def test_bad_retry_policies_are_invalid_requests(bad):
    with pytest.raises(InvalidRequest):
        parse_retry(bad)


def test_which_endings_count_as_which_retry_outcome():
    assert outcome_of(CallStatus.NO_ANSWER, "no_answer") == "no_answer"
    assert outcome_of(CallStatus.NO_ANSWER, "busy") == "busy"
    assert outcome_of(CallStatus.VOICEMAIL, "voicemail") == "voicemail"
    assert outcome_of(CallStatus.FAILED, "error:carrier") == "failed"
    assert outcome_of(CallStatus.FAILED, "canceled") is None
    assert outcome_of(CallStatus.FAILED, "suppressed") is None
    assert outcome_of(CallStatus.COMPLETED, "objective_met") is None
    assert outcome_of(CallStatus.DECLINED, "declined") is None
