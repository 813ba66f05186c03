"""The dashboard's password hashing and what its pages show, as plain values."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from byourside_server.dashboard import passwords, views
from byourside_server.domain import CallStatus, FieldSpec, Turn
from byourside_server.store.records import CallRecord


def test_scrypt_hashes_are_salted_per_password_and_carry_their_parameters():
    first, second = passwords.hash_password("correct horse battery"), passwords.hash_password("correct horse battery")
    assert first != second  # a fresh salt each time
    scheme, log2_n, r, p, salt, key = first.split("$")
    assert (scheme, log2_n, r, p) == ("scrypt", "15", "8", "1")
    assert passwords.verify_password("correct horse battery", first)
    assert passwords.verify_password("correct horse battery", second)
    assert not passwords.verify_password("correct horse batterY", first)


@pytest.mark.parametrize("stored", [None, "", "plain", "scrypt$99$8$1$AAAA$AAAA", "md5$1$2$3$4$5", "scrypt$15$8$1$!!$!!"])
def test_missing_or_malformed_hashes_never_verify(stored):
    assert not passwords.verify_password("whatever password", stored)


def test_password_rules():
    with pytest.raises(passwords.WeakPassword):
        passwords.check_password_rules("short")
    with pytest.raises(passwords.WeakPassword):
        passwords.check_password_rules("x" * (passwords.MAX_LENGTH + 1))
    passwords.check_password_rules("ten chars!")
    assert not passwords.verify_password("x" * (passwords.MAX_LENGTH + 1), passwords.hash_password("ten chars!"))


def test_destinations_are_masked():
    assert views.mask_number("+14155550123") == "+1415•••••23"
    assert views.mask_number("+447911123456") == "+4479••••••56"
    assert "555" not in views.mask_number("+14155550123")[5:]


def call(**changes) -> CallRecord:  # noqa: ANN003
    now = datetime(2026, 12, 1, 12, 0, tzinfo=timezone.utc)
    values = dict(
        id="c1", account_id="a1", status=CallStatus.COMPLETED, to_number="+14155550123", from_number="+14155550100",
        objective="Ask", context=None, fields=(FieldSpec("price", "number"), FieldSpec("open")), webhook_url=None,
        voice="alloy", language="en-US", language_source="default", max_duration_seconds=600, metadata={},
        summary=None, extracted={"price": 85, "open": None},
        turns=(Turn("agent", "What does it cost?", 0, 1500), Turn("contact", "It is <b>85</b> dollars, eighty-five.", 2000, 5000),
               Turn("agent", "Just to conf", 61_000, 62_000, interrupted=True)),
        recording_path=None, evidence={"price": {"quote": "<b>85</b> dollars", "turnIndex": 1}, "open": "junk"},
        voicemail_message=None, latency=None, end_reason="objective_met", objective_met=True, duration_seconds=62,
        created_at=now, dial_started_at=now, started_at=now, ended_at=now, lease_owner=None, lease_expires_at=None,
        cancel_requested_at=None)
    values.update(changes)
    return CallRecord(**values)


def test_the_transcript_marks_evidence_times_and_interruptions():
    turns = views.transcript(call())
    assert [t.at for t in turns] == ["0:00", "0:02", "1:01"]
    assert [t.interrupted for t in turns] == [False, False, True]
    assert turns[1].segments == (views.Segment("It is "), views.Segment("<b>85</b> dollars", "price"),
                                 views.Segment(", eighty-five."))
    assert turns[0].segments == (views.Segment("What does it cost?"),)


def test_a_quote_not_in_its_turn_marks_nothing_and_overlaps_are_skipped():
    record = call(evidence={"price": {"quote": "ninety", "turnIndex": 1}, "a": {"quote": "is <b>85", "turnIndex": 1},
                            "b": {"quote": "85</b> dollars", "turnIndex": 1}})
    segments = views.transcript(record)[1].segments
    assert [s.field for s in segments if s.field] == ["a"]
    assert "".join(s.text for s in segments) == "It is <b>85</b> dollars, eighty-five."


def test_fields_show_value_and_evidence():
    shown = views.fields(call())
    assert (shown[0].name, shown[0].value, shown[0].quote, shown[0].turn_index) == ("price", "85", "<b>85</b> dollars", 1)
    assert (shown[1].value, shown[1].quote) == ("—", None)


def test_the_call_page_renders_turn_times_interruptions_and_evidence_as_text():
    import re

    from byourside_server.dashboard.routes import _templates

    record = call()
    html = _templates.get_template("call.html").render(
        user=None, csrf_token="t" * 64, title="Call", call=record, row=views.call_row(record),
        timeline=views.timeline(record, []), turns=views.transcript(record), fields=views.fields(record),
        raw_json=views.raw_json(record, "http://x"), duration=views.duration(record.duration_seconds))
    turns = re.findall(r'<li class="turn turn-(\w+)" id="turn-(\d)">(.*?)</li>', html, re.S)
    assert [(speaker, index) for speaker, index, _ in turns] == [("agent", "0"), ("contact", "1"), ("agent", "2")]
    assert "interrupted" in turns[2][2] and "interrupted" not in turns[1][2]
    assert '<mark title="evidence for price" data-field="price">&lt;b&gt;85&lt;/b&gt; dollars</mark>' in turns[1][2]
    assert '<span class="at">1:01</span>' in turns[2][2]
    assert '<a href="#turn-1" data-evidence=' in html and "<b>" not in html
