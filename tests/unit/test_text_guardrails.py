"""The text rule and the raw-string parsers of guardrails/text.py, and the encoder that cannot fail."""

from __future__ import annotations

import json
import math

import pytest

from byourside_server.wire import json_text
from byourside_server.errors import InvalidRequest
from byourside_server.guardrails.text import check_json_text, parse_ascii_int, possible_id, scrub


@pytest.mark.parametrize("bad", ["\ud800", "a\udfffb", "\x00", {"k\ud800": 1}, [[["x\x00"]]]])
def test_check_json_text_refuses_surrogates_and_nul_anywhere(bad):
    with pytest.raises(InvalidRequest):
        check_json_text({"outer": bad})


def test_check_json_text_accepts_any_well_formed_text_and_bounds_depth():
    check_json_text({"text": "\U0001f600 \u202e שלום \ufeff \uffff", "n": [1, 2.5, None, True]})
    deep: object = "x"
    for _ in range(32):
        deep = [deep]
    check_json_text(deep)
    with pytest.raises(InvalidRequest, match="deeper"):
        check_json_text([deep])


def test_error_messages_name_only_plain_top_level_keys():
    with pytest.raises(InvalidRequest) as named:
        check_json_text({"objective": "\x00"})
    assert "'objective'" in named.value.message
    with pytest.raises(InvalidRequest) as unnamed:
        check_json_text({"call me at +14155550123": "\x00"})
    assert "+1415" not in unnamed.value.message


@pytest.mark.parametrize(
    "raw,expected",
    [("42", 42), ("-5", -5), ("+7", 7), ("007", 7), ("²", None), ("١٢", None), ("１２", None), ("1_0", None),
     (" 5", None), ("5 ", None), ("", None), (None, None), ("1" * 12, int("1" * 12)), ("1" * 13, None)],
)
def test_parse_ascii_int_takes_ascii_digits_only(raw, expected):
    assert parse_ascii_int(raw, max_digits=12) == expected


@pytest.mark.parametrize("value,ok", [("4f0c2a9e-8d1b-4c1e-9a57-0d3f6b2c9e11", True), ("x" * 64, True),
                                      ("x" * 65, False), ("", False), ("a b", False), ("a\x00", False), ("été", False)])
def test_possible_id(value, ok):
    assert possible_id(value) is ok


def test_scrub_and_json_text_never_fail_on_stored_data():
    stored = {"note": "\ud800", "k\udfff": "v", "price": math.nan, "list": [math.inf, "ok \x00"]}
    assert scrub(stored) == {"note": "\ufffd", "k\ufffd": "v", "price": None, "list": [None, "ok \ufffd"]}
    text = json_text(stored)
    assert json.loads(text.encode("utf-8")) == {"note": "\ufffd", "k\ufffd": "v", "price": None,
                                                "list": [None, "ok \ufffd"]}
    assert json_text({"a": "é \u0000"}) == '{"a":"é \\u0000"}'  # NUL stays a JSON escape when nothing else is wrong
