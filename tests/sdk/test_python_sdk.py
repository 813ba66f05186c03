"""Tests for the zero-dependency Python SDK (``sdks/python``, import name ``byourside``).

No network (except tests against a local ``http.server`` and one against the real app served by
uvicorn, both on 127.0.0.1) and no sleeping: ``sleep`` is injected and recorded, the clock is a
fake ``_monotonic``.
"""

import ast
import hashlib
import hmac
import http.client
import json
import pickle
import socket
import sys
import threading
import urllib.error
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

import byourside
from byourside import ByoursideError, Client, sign_webhook, verify_webhook

SDK_DIR = Path(__file__).resolve().parents[2] / "sdks" / "python"
KEY = "bys_ak_testkey1234"
BASE = "http://api.test"
TEMPORARY = "Temporary service error. Please retry shortly."


# --------------------------------------------------------------------------- fakes


class Recorded(object):
    def __init__(self, method, url, headers, body):
        self.method = method
        self.url = url
        self.headers = headers
        self.body = body
        self.json = json.loads(body) if body is not None else None


class FakeTransport(object):
    """Records requests; replies from a script of ``(status, body)`` or exceptions.

    No ``last_headers`` attribute: retries must fall back to exponential backoff.
    """

    def __init__(self, *responses, **kw):
        self.responses = list(responses)
        self.requests = []
        self.default = kw.get("default")
        self.on_call = kw.get("on_call")

    def _next(self):
        if self.responses:
            return self.responses.pop(0)
        if self.default is not None:
            return self.default
        raise AssertionError("unexpected extra request")

    def __call__(self, method, url, headers, body):
        assert body is None or isinstance(body, str)
        self.requests.append(Recorded(method, url, headers, body))
        if self.on_call is not None:
            self.on_call()
        reply = self._next()
        if isinstance(reply, BaseException):
            raise reply
        return self._reply(reply)

    def _reply(self, reply):
        return reply[0], reply[1]


class HeaderTransport(FakeTransport):
    """Like FakeTransport, but replies may be ``(status, body, headers)`` and the
    headers are exposed as ``last_headers`` (as the default urllib transport does)."""

    last_headers = None

    def _reply(self, reply):
        self.last_headers = reply[2] if len(reply) > 2 else {}
        return reply[0], reply[1]


class Sleeper(object):
    def __init__(self, clock=None):
        self.calls = []
        self.clock = clock

    def __call__(self, seconds):
        self.calls.append(seconds)
        if self.clock is not None:
            self.clock.now += seconds


class Clock(object):
    def __init__(self, start=1000.0):
        self.now = start

    def __call__(self):
        return self.now


def make(*responses, **kw):
    fake_kw = {"default": kw.pop("default", None), "on_call": kw.pop("on_call", None)}
    transport = kw.pop("transport", None) or FakeTransport(*responses, **fake_kw)
    sleep = kw.pop("sleep", None) or Sleeper()
    client = Client(KEY, BASE, transport, sleep, **kw)
    return client, transport, sleep


def call_obj(status, call_id="c1", **extra):
    obj = {"id": call_id, "callId": call_id, "status": status}
    obj.update(extra)
    return obj


PLACED = {"callId": "c1", "status": "queued", "language": "en-US", "languageSource": "inferred", "voice": "alloy"}


# --------------------------------------------------------------------------- package


def test_public_surface_and_version():
    assert byourside.__version__ == "0.1.0"
    for name in ("Client", "ByoursideError", "verify_webhook", "sign_webhook", "UrllibTransport"):
        assert name in byourside.__all__
        assert hasattr(byourside, name)
    assert issubclass(ByoursideError, Exception)
    assert byourside.TERMINAL_STATUSES == {"completed", "no_answer", "voicemail", "declined", "failed"}


def test_sources_parse_as_python_38():
    files = sorted((SDK_DIR / "byourside").glob("*.py"))
    assert len(files) >= 5
    for path in files:
        ast.parse(path.read_text(encoding="utf-8"), filename=str(path), feature_version=(3, 8))


def test_pyproject_metadata():
    if sys.version_info < (3, 11):
        pytest.skip("tomllib needs 3.11")
    import tomllib

    meta = tomllib.loads((SDK_DIR / "pyproject.toml").read_text(encoding="utf-8"))
    project = meta["project"]
    assert project["name"] == "byourside"
    assert project["version"] == byourside.__version__
    assert project["requires-python"] == ">=3.8"
    assert project.get("dependencies", []) == []
    assert (SDK_DIR / "byourside" / "py.typed").exists()


# --------------------------------------------------------------------------- construction


def test_api_key_and_base_url_from_env(monkeypatch):
    monkeypatch.setenv("BYS_API_KEY", "bys_ak_fromenv")
    monkeypatch.setenv("BYS_BASE_URL", "https://calls.example.com///")
    transport = FakeTransport((200, call_obj("queued")))
    client = Client(transport=transport)
    assert client.base_url == "https://calls.example.com"
    client.get_call("c1")
    req = transport.requests[0]
    assert req.url == "https://calls.example.com/v1/agent/calls/c1"
    assert req.headers["Authorization"] == "Bearer bys_ak_fromenv"


def test_default_base_url_is_local_server(monkeypatch):
    monkeypatch.delenv("BYS_BASE_URL", raising=False)
    client = Client(KEY)
    assert client.base_url == "http://127.0.0.1:8000" == byourside.DEFAULT_BASE_URL


def test_explicit_base_url_wins_and_is_trimmed(monkeypatch):
    monkeypatch.setenv("BYS_BASE_URL", "https://env.example.com")
    assert Client(KEY, "http://localhost:9000/").base_url == "http://localhost:9000"


def test_missing_api_key_raises(monkeypatch):
    monkeypatch.delenv("BYS_API_KEY", raising=False)
    with pytest.raises(ByoursideError) as info:
        Client()
    assert info.value.code == "no_api_key"
    assert info.value.status == 0


def test_empty_env_api_key_raises(monkeypatch):
    monkeypatch.setenv("BYS_API_KEY", "")
    with pytest.raises(ByoursideError) as info:
        Client()
    assert info.value.code == "no_api_key"


def test_explicit_empty_api_key_raises_even_with_env(monkeypatch):
    monkeypatch.setenv("BYS_API_KEY", "bys_ak_fromenv")
    for key in ("", "   "):
        with pytest.raises(ByoursideError) as info:
            Client(api_key=key)
        assert info.value.code == "no_api_key"
        assert info.value.status == 0


def test_repr_does_not_leak_key():
    assert "testkey1234" not in repr(Client(KEY, BASE))


def test_invalid_max_retries():
    with pytest.raises(ValueError):
        Client(KEY, BASE, max_retries=-1)


# --------------------------------------------------------------------------- place_call


def test_place_call_minimal_request_shape():
    client, transport, _ = make((201, PLACED))
    result = client.place_call("+14155550123", "Book a table for two")
    assert result == PLACED
    (req,) = transport.requests
    assert req.method == "POST"
    assert req.url == BASE + "/v1/agent/calls"
    assert req.json == {"to": "+14155550123", "objective": "Book a table for two"}
    assert req.headers["Authorization"] == "Bearer " + KEY
    assert req.headers["Content-Type"] == "application/json"
    assert req.headers["Accept"] == "application/json"
    assert req.headers["User-Agent"] == "byourside-python/0.1.0"
    assert "Idempotency-Key" not in req.headers


def test_place_call_all_fields_use_wire_names():
    fields = [{"name": "open", "type": "boolean"}, {"name": "price", "type": "number", "description": "EUR"}, {"name": "who"}]
    client, transport, _ = make((201, PLACED))
    client.place_call(
        "+14155550123",
        "Ask if they are open",
        "Be brief",
        fields,
        "https://hooks.example.com/bys",
        "+14155550000",
        voice="alloy",
        language="en-GB",
        max_duration_seconds=120,
        metadata={"ticket": "T-1"},
        voicemail_message="Please call back.",
    )
    assert transport.requests[0].json == {
        "to": "+14155550123",
        "objective": "Ask if they are open",
        "context": "Be brief",
        "fields": fields,
        "webhookUrl": "https://hooks.example.com/bys",
        "callerId": "+14155550000",
        "voice": "alloy",
        "language": "en-GB",
        "maxDurationSeconds": 120,
        "metadata": {"ticket": "T-1"},
        "voicemailMessage": "Please call back.",
    }


def test_place_call_omits_none_but_keeps_falsy_values():
    client, transport, _ = make((201, PLACED))
    client.place_call("+14155550123", "x", context=None, fields=[], caller_id=None, language="auto", metadata=None)
    assert transport.requests[0].json == {"to": "+14155550123", "objective": "x", "fields": [], "language": "auto"}


def test_place_call_transfer_to_one_number_or_a_list_and_the_mode():
    client, transport, _ = make((201, PLACED), (201, PLACED), (201, PLACED))
    client.place_call("+14155550123", "x", transfer_to="+14155550100")
    client.place_call("+14155550123", "x", transfer_to=("+14155550100", "+14155550101"), transfer_mode="warm")
    client.place_call("+14155550123", "x", transfer_mode="cold")
    assert [r.json for r in transport.requests] == [
        {"to": "+14155550123", "objective": "x", "transferTo": "+14155550100"},
        {"to": "+14155550123", "objective": "x", "transferTo": ["+14155550100", "+14155550101"],
         "transferMode": "warm"},
        {"to": "+14155550123", "objective": "x", "transferMode": "cold"},
    ]


def test_invalid_transfer_to_has_a_friendly_message():
    client, _, _ = make((400, {"error": "invalid_transfer_to", "message": "server text"}))
    with pytest.raises(ByoursideError) as info:
        client.place_call("+14155550123", "x", transfer_to="4155550100")
    assert info.value.code == "invalid_transfer_to" and info.value.status == 400
    assert "transfer" in info.value.message and info.value.server_message == "server text"


def test_place_call_idempotency_key_header():
    client, transport, _ = make((201, PLACED))
    client.place_call("+14155550123", "x", idempotency_key="order-42")
    assert transport.requests[0].headers["Idempotency-Key"] == "order-42"


# --------------------------------------------------------------------------- get / list / cancel


def test_get_call_request_shape():
    client, transport, _ = make((200, call_obj("completed", summary="done")))
    call = client.get_call("c1")
    assert call["summary"] == "done"
    (req,) = transport.requests
    assert (req.method, req.url, req.body) == ("GET", BASE + "/v1/agent/calls/c1", None)
    assert "Content-Type" not in req.headers
    assert req.headers["Authorization"] == "Bearer " + KEY
    assert req.headers["Accept"] == "application/json"
    assert req.headers["User-Agent"].startswith("byourside-python/")


@pytest.mark.parametrize(
    "call_id,encoded",
    [("c 1", "c%201"), ("a/b", "a%2Fb"), ("x?y#z", "x%3Fy%23z"), ("é", "%C3%A9"), (42, "42"), ("../keys", "..%2Fkeys")],
)
def test_call_id_is_url_encoded(call_id, encoded):
    client, transport, _ = make(default=(200, call_obj("queued")))
    client.get_call(call_id)
    client.cancel_call(call_id)
    assert transport.requests[0].url == BASE + "/v1/agent/calls/" + encoded
    assert transport.requests[1].url == BASE + "/v1/agent/calls/" + encoded + "/cancel"


@pytest.mark.parametrize("call_id", ["", None])
def test_empty_call_id_is_rejected_locally(call_id):
    client, transport, _ = make()
    with pytest.raises(ByoursideError) as info:
        client.get_call(call_id)
    assert info.value.code == "invalid_request"
    assert transport.requests == []


def test_list_calls_default_request_and_result():
    calls = [call_obj("completed", "c2"), call_obj("queued", "c1")]
    client, transport, _ = make((200, {"calls": calls, "nextCursor": "abc"}))
    assert client.list_calls() == calls
    (req,) = transport.requests
    assert (req.method, req.url, req.body) == ("GET", BASE + "/v1/agent/calls?limit=20", None)


def test_get_usage_sends_the_period_only_when_given():
    usage = {"from": "2026-12-01", "to": "2026-12-02", "totals": {}, "days": [], "month": {}}
    client, transport, _ = make((200, usage), (200, usage))
    assert client.get_usage() == usage
    assert client.get_usage("2026-12-01", "2026-12-02") == usage
    first, second = transport.requests
    assert (first.method, first.url, first.body) == ("GET", BASE + "/v1/agent/usage", None)
    assert second.url == BASE + "/v1/agent/usage?from=2026-12-01&to=2026-12-02"


def test_list_voices_request_shape():
    voices = {"voices": [{"name": "joe", "provider": "piper", "languages": ["en"], "gender": "male"}],
              "default": "alloy", "aliases": ["alloy"]}
    client, transport, _ = make((200, voices))
    assert client.list_voices() == voices
    [req] = transport.requests
    assert (req.method, req.url, req.body) == ("GET", BASE + "/v1/agent/voices", None)


@pytest.mark.parametrize(
    "limit,sent",
    [
        (1, 1),
        (50, 50),
        (100, 100),
        (0, 1),
        (-5, 1),
        (101, 100),
        (10 ** 9, 100),
        ("7", 7),
        (" 30 ", 30),
        (5.9, 5),
        ("5.5", 5),
        ("abc", 20),
        (None, 20),
        ("", 20),
        (float("nan"), 20),
        (float("inf"), 20),
        (True, 20),
        ([3], 20),
    ],
)
def test_list_calls_limit_clamping_and_fallback(limit, sent):
    client, transport, _ = make((200, {"calls": [], "nextCursor": None}))
    assert client.list_calls(limit) == []
    assert transport.requests[0].url == BASE + "/v1/agent/calls?limit=%d" % sent


def test_list_calls_status_and_cursor():
    client, transport, _ = make((200, {"calls": [], "nextCursor": None}))
    client.list_calls(5, status="completed", cursor="cur/1+2")
    assert transport.requests[0].url == BASE + "/v1/agent/calls?limit=5&status=completed&cursor=cur%2F1%2B2"


def test_list_calls_page_returns_whole_body():
    page = {"calls": [call_obj("failed")], "nextCursor": "next"}
    client, transport, _ = make((200, page))
    assert client.list_calls_page(limit=3, status="failed") == page
    assert transport.requests[0].url == BASE + "/v1/agent/calls?limit=3&status=failed"


def test_list_calls_tolerates_missing_calls_key():
    client, _, _ = make((200, {}), (200, None))
    assert client.list_calls() == []
    assert client.list_calls() == []


def test_cancel_call_request_shape():
    client, transport, _ = make((200, call_obj("failed", endReason="canceled")))
    assert client.cancel_call("c1")["endReason"] == "canceled"
    (req,) = transport.requests
    assert (req.method, req.url, req.body) == ("POST", BASE + "/v1/agent/calls/c1/cancel", None)
    assert "Content-Type" not in req.headers


# --------------------------------------------------------------------------- wait_for_call


def test_wait_for_call_polls_until_terminal():
    clock = Clock()
    sleep = Sleeper(clock)
    transport = FakeTransport(
        (200, call_obj("queued")),
        (200, call_obj("dialing")),
        (200, call_obj("in_progress")),
        (200, call_obj("completed", summary="ok")),
    )
    client = Client(KEY, BASE, transport, sleep, _monotonic=clock)
    call = client.wait_for_call("c1")
    assert call["status"] == "completed" and call["summary"] == "ok"
    assert sleep.calls == [3, 3, 3]
    assert all(r.method == "GET" and r.url == BASE + "/v1/agent/calls/c1" for r in transport.requests)


@pytest.mark.parametrize("status", ["completed", "no_answer", "voicemail", "declined", "failed"])
def test_wait_for_call_detects_each_terminal_status(status):
    client, transport, sleep = make((200, call_obj("dialing")), (200, call_obj(status)), _monotonic=Clock())
    assert client.wait_for_call("c1", interval=1)["status"] == status
    assert len(transport.requests) == 2
    assert sleep.calls == [1]


def test_wait_for_call_on_status_fires_on_changes_only():
    clock = Clock()
    sleep = Sleeper(clock)
    statuses = ["queued", "queued", "dialing", "dialing", "in_progress", "in_progress", "voicemail"]
    transport = FakeTransport(*[(200, call_obj(s)) for s in statuses])
    client = Client(KEY, BASE, transport, sleep, _monotonic=clock)
    seen = []
    client.wait_for_call("c1", interval=2, on_status=lambda call: seen.append(call["status"]))
    assert seen == ["queued", "dialing", "in_progress", "voicemail"]
    assert sleep.calls == [2] * 6


def test_wait_for_call_on_status_includes_first_poll_when_already_terminal():
    client, _, sleep = make((200, call_obj("completed")), _monotonic=Clock())
    seen = []
    assert client.wait_for_call("c1", on_status=seen.append)["status"] == "completed"
    assert [c["status"] for c in seen] == ["completed"]
    assert sleep.calls == []


def test_wait_for_call_timeout_zero_raises_after_exactly_one_poll():
    for interval in (3, 0):
        client, transport, sleep = make(default=(200, call_obj("in_progress")), _monotonic=Clock())
        seen = []
        with pytest.raises(ByoursideError) as info:
            client.wait_for_call("c1", timeout=0, interval=interval, on_status=seen.append)
        assert info.value.code == "timeout"
        assert info.value.status == 0
        assert len(transport.requests) == 1
        assert sleep.calls == []
        assert len(seen) == 1


def test_wait_for_call_raises_when_next_poll_would_pass_deadline():
    clock = Clock()
    sleep = Sleeper(clock)
    transport = FakeTransport(default=(200, call_obj("dialing")))
    client = Client(KEY, BASE, transport, sleep, _monotonic=clock)
    with pytest.raises(ByoursideError) as info:
        client.wait_for_call("c1", timeout=10, interval=3)
    # polls at t=0, 3, 6, 9; a poll at 12 would pass the deadline (10)
    assert len(transport.requests) == 4
    assert sleep.calls == [3, 3, 3]
    assert info.value.code == "timeout" and info.value.status == 0
    assert "dialing" in info.value.message


def test_wait_for_call_allows_a_poll_exactly_at_the_deadline():
    clock = Clock()
    sleep = Sleeper(clock)
    transport = FakeTransport(*[(200, call_obj("dialing"))] * 3 + [(200, call_obj("completed"))])
    client = Client(KEY, BASE, transport, sleep, _monotonic=clock)
    # polls at 0, 3, 6, 9 == deadline: the last one is not past it
    assert client.wait_for_call("c1", timeout=9, interval=3)["status"] == "completed"
    assert sleep.calls == [3, 3, 3]


def test_wait_for_call_counts_time_spent_in_requests():
    clock = Clock()
    sleep = Sleeper(clock)

    def slow_request():
        clock.now += 4

    transport = FakeTransport(default=(200, call_obj("queued")), on_call=slow_request)
    client = Client(KEY, BASE, transport, sleep, _monotonic=clock)
    with pytest.raises(ByoursideError) as info:
        client.wait_for_call("c1", timeout=10, interval=1)
    # poll 1 ends at 4, sleep -> 5, poll 2 ends at 9; 9 + 1 = 10 is not past; sleep -> 10,
    # poll 3 ends at 14 -> next poll would pass
    assert info.value.code == "timeout"
    assert len(transport.requests) == 3


def test_wait_for_call_propagates_api_errors():
    client, _, _ = make((404, {"error": "not_found"}), _monotonic=Clock())
    with pytest.raises(ByoursideError) as info:
        client.wait_for_call("nope")
    assert (info.value.status, info.value.code) == (404, "not_found")


# --------------------------------------------------------------------------- errors

ERROR_CASES = [
    ("invalid_request", 400, None),
    ("to_required", 400, None),
    ("objective_required", 400, None),
    ("invalid_number", 400, None),
    ("invalid_fields", 400, None),
    ("invalid_webhook_url", 400, None),
    ("destination_blocked", 400, None),
    ("invalid_transfer_to", 400, None),
    ("caller_id_not_owned", 403, None),
    ("unauthorized", 401, "Invalid or missing API key."),
    ("not_found", 404, "No call found with that id (or it does not belong to your account)."),
    ("idempotency_conflict", 409, None),
    ("call_not_active", 409, None),
    ("rate_limited", 429, "Rate limit reached. Try again shortly."),
    ("over_minute_cap", 429, None),
    ("placement_failed", 502, None),
    ("store_error", 503, None),
]


@pytest.mark.parametrize("token,status,expected", ERROR_CASES)
def test_every_spec_error_token_maps_to_a_friendly_message(token, status, expected):
    server_text = "server says: %s" % token
    client, _, _ = make((status, {"error": token, "message": server_text}))
    with pytest.raises(ByoursideError) as info:
        client.get_call("c1")
    err = info.value
    assert err.status == status
    assert err.code == token
    assert str(err) == err.message
    assert err.message != server_text and err.server_message == server_text
    assert err.message.endswith(".")
    assert "Request failed" not in err.message
    if expected is not None:
        assert err.message == expected


def test_friendly_messages_are_distinct():
    messages = set()
    for token, status, _ in ERROR_CASES:
        client, _, _ = make((status, {"error": token}))
        with pytest.raises(ByoursideError) as info:
            client.get_call("c1")
        messages.add(info.value.message)
    assert len(messages) == len(ERROR_CASES)


def test_unknown_token_message():
    client, _, _ = make((418, {"error": "teapot_busy", "message": "short and stout"}))
    with pytest.raises(ByoursideError) as info:
        client.get_call("c1")
    assert info.value.message == "Request failed (teapot_busy)."
    assert info.value.code == "teapot_busy"
    assert info.value.status == 418
    assert info.value.server_message == "short and stout"


@pytest.mark.parametrize(
    "status,body,code",
    [
        (500, {"error": "internal_error"}, "internal_error"),
        (500, {"error": "something_new"}, "something_new"),
        (504, None, "error"),
        (503, "<html>down</html>", "error"),
        (500, {"message": "no token"}, "error"),
    ],
)
def test_server_errors_use_temporary_message(status, body, code):
    client, _, _ = make((status, body))
    with pytest.raises(ByoursideError) as info:
        client.get_call("c1")
    assert (info.value.status, info.value.code, info.value.message) == (status, code, TEMPORARY)


@pytest.mark.parametrize("body", [None, "not json", ["a", "list"], {"error": ""}])
def test_non_json_or_tokenless_4xx_body(body):
    client, _, _ = make((404, body))
    with pytest.raises(ByoursideError) as info:
        client.get_call("c1")
    assert info.value.status == 404
    assert info.value.code == "error"
    assert info.value.message == "Request failed with status 404."


def test_status_zero_from_transport_is_temporary():
    client, _, _ = make((0, None))
    with pytest.raises(ByoursideError) as info:
        client.get_call("c1")
    assert (info.value.status, info.value.code, info.value.message) == (0, "error", TEMPORARY)


@pytest.mark.parametrize(
    "exc",
    [
        OSError("boom"),
        ConnectionRefusedError(111, "refused"),
        urllib.error.URLError("name resolution failed"),
        socket.timeout("timed out"),
        http.client.RemoteDisconnected("closed"),
        http.client.IncompleteRead(b"par"),
    ],
)
def test_network_failures_raise_network_error(exc):
    client, transport, sleep = make(exc)
    with pytest.raises(ByoursideError) as info:
        client.get_call("c1")
    assert info.value.code == "network_error"
    assert info.value.status == 0
    assert info.value.message == TEMPORARY
    assert info.value.__cause__ is exc
    assert len(transport.requests) == 1 and sleep.calls == []


def test_byourside_error_constructor_and_pickle():
    err = ByoursideError("Nope.")
    assert (err.message, err.status, err.code, str(err)) == ("Nope.", 0, None, "Nope.")
    err = ByoursideError("Call not found.", 404, "not_found", server_message="x")
    clone = pickle.loads(pickle.dumps(err))
    assert (clone.message, clone.status, clone.code, clone.server_message) == ("Call not found.", 404, "not_found", "x")
    assert "not_found" in repr(err)


def test_error_carries_request_id_and_retry_after_when_headers_known():
    transport = HeaderTransport((429, {"error": "rate_limited"}, {"Retry-After": "7", "X-Request-Id": "req-1"}))
    client, _, _ = make(transport=transport)
    with pytest.raises(ByoursideError) as info:
        client.get_call("c1")
    assert info.value.retry_after == 7.0
    assert info.value.request_id == "req-1"


# --------------------------------------------------------------------------- retries


def test_no_retries_by_default():
    client, transport, sleep = make((503, {"error": "store_error"}), (200, call_obj("queued")))
    with pytest.raises(ByoursideError):
        client.get_call("c1")
    assert len(transport.requests) == 1 and sleep.calls == []


def test_429_retry_after_is_honoured_from_last_headers():
    transport = HeaderTransport(
        (429, {"error": "rate_limited"}, {"Retry-After": "2"}),
        (200, call_obj("queued"), {}),
    )
    client, _, sleep = make(transport=transport, max_retries=2)
    assert client.get_call("c1")["status"] == "queued"
    assert sleep.calls == [2.0]
    assert len(transport.requests) == 2


def test_retry_after_is_capped():
    transport = HeaderTransport(
        (429, {"error": "rate_limited"}, {"retry-after": "3600"}),
        (200, call_obj("queued"), {}),
    )
    client, _, sleep = make(transport=transport, max_retries=1)
    client.get_call("c1")
    assert sleep.calls == [60.0]


def test_429_without_headers_uses_backoff():
    client, transport, sleep = make((429, {"error": "rate_limited"}), (200, call_obj("queued")), max_retries=1)
    assert client.get_call("c1")["status"] == "queued"
    assert sleep.calls == [0.5]


def test_5xx_retried_with_exponential_backoff_then_success():
    client, transport, sleep = make(
        (503, {"error": "store_error"}),
        (502, None),
        (500, {"error": "internal_error"}),
        (200, {"calls": [call_obj("queued")], "nextCursor": None}),
        max_retries=3,
    )
    assert len(client.list_calls()) == 1
    assert sleep.calls == [0.5, 1.0, 2.0]
    assert len(transport.requests) == 4
    assert len({r.url for r in transport.requests}) == 1


def test_backoff_is_capped_and_last_error_raised():
    client, transport, sleep = make(default=(500, {"error": "internal_error"}), max_retries=6)
    with pytest.raises(ByoursideError) as info:
        client.get_call("c1")
    assert sleep.calls == [0.5, 1.0, 2.0, 4.0, 8.0, 8.0]
    assert len(transport.requests) == 7
    assert info.value.status == 500


@pytest.mark.parametrize(
    "status,token",
    [(400, "invalid_request"), (401, "unauthorized"), (404, "not_found"), (409, "call_not_active"), (429, "over_minute_cap")],
)
def test_non_transient_errors_are_never_retried(status, token):
    client, transport, sleep = make((status, {"error": token}), default=(200, call_obj("queued")), max_retries=3)
    with pytest.raises(ByoursideError) as info:
        client.cancel_call("c1")
    assert info.value.code == token
    assert len(transport.requests) == 1 and sleep.calls == []


def test_network_errors_are_retried():
    client, transport, sleep = make(OSError("reset"), (200, call_obj("queued")), max_retries=2)
    assert client.get_call("c1")["status"] == "queued"
    assert sleep.calls == [0.5]


def test_cancel_is_retried():
    client, transport, sleep = make((502, None), (200, call_obj("failed")), max_retries=1)
    assert client.cancel_call("c1")["status"] == "failed"
    assert [r.method for r in transport.requests] == ["POST", "POST"]


def test_place_call_auto_idempotency_key_is_same_across_retries():
    client, transport, sleep = make(
        (503, {"error": "store_error"}), OSError("reset"), (429, {"error": "rate_limited"}), (201, PLACED), max_retries=3
    )
    assert client.place_call("+14155550123", "x") == PLACED
    keys = [r.headers.get("Idempotency-Key") for r in transport.requests]
    assert len(keys) == 4 and len(set(keys)) == 1 and keys[0]
    uuid.UUID(keys[0])
    assert len({r.body for r in transport.requests}) == 1
    assert sleep.calls == [0.5, 1.0, 2.0]


def test_place_call_new_key_per_call():
    client, transport, _ = make((201, PLACED), (201, PLACED), max_retries=1)
    client.place_call("+14155550123", "x")
    client.place_call("+14155550123", "x")
    keys = [r.headers["Idempotency-Key"] for r in transport.requests]
    assert keys[0] != keys[1]


def test_place_call_explicit_key_used_across_retries():
    client, transport, _ = make((500, None), (201, PLACED), max_retries=1)
    client.place_call("+14155550123", "x", idempotency_key="mine")
    assert [r.headers["Idempotency-Key"] for r in transport.requests] == ["mine", "mine"]


def test_place_call_without_retries_sends_no_key_and_never_retries():
    client, transport, sleep = make((503, {"error": "store_error"}), (201, PLACED))
    with pytest.raises(ByoursideError):
        client.place_call("+14155550123", "x")
    assert len(transport.requests) == 1 and sleep.calls == []
    assert "Idempotency-Key" not in transport.requests[0].headers


# --------------------------------------------------------------------------- webhooks

SECRET = "whsec_test_secret"
BODY = '{"event":"call.completed","eventId":"ev_1","callId":"c1","summary":"Booked \\u00e9"}'
NOW = 1_700_000_000


def _sig(body, secret, t):
    raw = body.encode("utf-8") if isinstance(body, str) else body
    return hmac.new(secret.encode("utf-8"), str(t).encode() + b"." + raw, hashlib.sha256).hexdigest()


def test_verify_webhook_valid_str_and_bytes_body():
    header = "t=%d,v1=%s" % (NOW, _sig(BODY, SECRET, NOW))
    assert verify_webhook(header, BODY, SECRET, now=NOW) is True
    assert verify_webhook(header, BODY.encode("utf-8"), SECRET, now=NOW) is True
    assert verify_webhook(header, bytearray(BODY.encode("utf-8")), SECRET, 300, NOW) is True


def test_verify_webhook_non_ascii_body_bytes_vs_str():
    body = '{"summary":"Réservé ✓"}'
    header = "t=%d,v1=%s" % (NOW, _sig(body, SECRET, NOW))
    assert verify_webhook(header, body, SECRET, now=NOW)
    assert verify_webhook(header, body.encode("utf-8"), SECRET, now=NOW)
    assert not verify_webhook(header, body.encode("utf-16"), SECRET, now=NOW)


def test_verify_webhook_uses_the_whole_secret_including_prefix():
    header = "t=%d,v1=%s" % (NOW, _sig(BODY, "test_secret", NOW))
    assert not verify_webhook(header, BODY, SECRET, now=NOW)


def test_verify_webhook_rejects_wrong_secret_and_tampered_body():
    header = sign_webhook(BODY, SECRET, timestamp=NOW)
    assert not verify_webhook(header, BODY, "whsec_other", now=NOW)
    assert not verify_webhook(header, BODY.replace("Booked", "Booker"), SECRET, now=NOW)
    assert not verify_webhook(header, BODY + " ", SECRET, now=NOW)


def test_verify_webhook_timestamp_tolerance():
    header = sign_webhook(BODY, SECRET, timestamp=NOW)
    assert verify_webhook(header, BODY, SECRET, now=NOW + 300)
    assert verify_webhook(header, BODY, SECRET, now=NOW - 300)
    assert not verify_webhook(header, BODY, SECRET, now=NOW + 301)  # stale
    assert not verify_webhook(header, BODY, SECRET, now=NOW - 301)  # from the future
    assert verify_webhook(header, BODY, SECRET, tolerance=1000, now=NOW + 900)
    assert not verify_webhook(header, BODY, SECRET, tolerance=10, now=NOW + 11)


def test_verify_webhook_default_now_is_current_time():
    assert verify_webhook(sign_webhook(BODY, SECRET), BODY, SECRET)
    assert not verify_webhook(sign_webhook(BODY, SECRET, timestamp=NOW), BODY, SECRET)


def test_verify_webhook_multiple_v1_entries():
    good = _sig(BODY, SECRET, NOW)
    old = _sig(BODY, "whsec_old", NOW)
    assert verify_webhook("t=%d,v1=%s,v1=%s" % (NOW, old, good), BODY, SECRET, now=NOW)
    assert verify_webhook("t=%d, v1=%s, v1=%s" % (NOW, good, old), BODY, SECRET, now=NOW)
    assert verify_webhook("t=%d,v0=zzz,v1=%s" % (NOW, good.upper()), BODY, SECRET, now=NOW)
    assert not verify_webhook("t=%d,v1=%s,v1=%s" % (NOW, old, "0" * 64), BODY, SECRET, now=NOW)
    assert verify_webhook("t=%d,v1=ünï,v1=%s" % (NOW, good), BODY, SECRET, now=NOW)


@pytest.mark.parametrize(
    "header",
    [
        "",
        "garbage",
        "t=,v1=abc",
        "v1=" + "a" * 64,
        "t=%d" % NOW,
        "t=%d,v1=" % NOW,
        "t=abc,v1=" + "a" * 64,
        "t=-%d,v1=%s" % (NOW, "a" * 64),
        "t=%d.5,v1=%s" % (NOW, "a" * 64),
        "t=%d,v1=%s" % (NOW, "a" * 64),
        ",,,==,",
        None,
        12345,
        ["t=1", "v1=2"],
    ],
)
def test_verify_webhook_garbage_headers_return_false(header):
    assert verify_webhook(header, BODY, SECRET, now=NOW) is False


@pytest.mark.parametrize(
    "body,secret,tolerance,now",
    [
        (None, SECRET, 300, NOW),
        ({"a": 1}, SECRET, 300, NOW),
        (BODY, None, 300, NOW),
        (BODY, "", 300, NOW),
        (BODY, 123, 300, NOW),
        (BODY, SECRET, "abc", NOW),
        (BODY, SECRET, None, NOW),
        (BODY, SECRET, 300, "yesterday"),
    ],
)
def test_verify_webhook_never_raises_on_bad_arguments(body, secret, tolerance, now):
    header = sign_webhook(BODY, SECRET, timestamp=NOW)
    assert verify_webhook(header, body, secret, tolerance, now) is False


def test_sign_webhook_format_and_client_alias():
    header = sign_webhook(BODY, SECRET, timestamp=NOW)
    assert header == "t=%d,v1=%s" % (NOW, _sig(BODY, SECRET, NOW))
    assert Client.verify_webhook(header, BODY, SECRET, now=NOW)
    assert byourside.SIGNATURE_HEADER == "X-BYS-Signature"


# --------------------------------------------------------------------------- real HTTP


class _Handler(BaseHTTPRequestHandler):
    def log_message(self, *args):  # keep test output quiet
        pass

    def _send(self, status, payload, headers=None, raw=None):
        data = raw if raw is not None else json.dumps(payload).encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", "application/json" if raw is None else "text/html")
        self.send_header("Content-Length", str(len(data)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    def _handle(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length).decode("utf-8") if length else None
        self.server.seen.append((self.command, self.path, dict(self.headers), body))
        if self.headers.get("Authorization") != "Bearer " + KEY:
            return self._send(401, {"error": "unauthorized", "message": "Missing or invalid API key."})
        if self.command == "POST" and self.path == "/v1/agent/calls":
            return self._send(201, PLACED)
        if self.path == "/v1/agent/calls/limited":
            self.server.limited_hits += 1
            if self.server.limited_hits == 1:
                return self._send(429, {"error": "rate_limited"}, {"Retry-After": "2", "X-Request-Id": "rid-9"})
            return self._send(200, call_obj("completed", "limited"))
        if self.path == "/v1/agent/calls/broken":
            return self._send(502, None, raw=b"<html>bad gateway</html>")
        if self.path.startswith("/v1/agent/calls?"):
            return self._send(200, {"calls": [call_obj("queued")], "nextCursor": None})
        if self.path == "/v1/agent/calls/c%201":
            return self._send(200, call_obj("in_progress", "c 1"))
        return self._send(404, {"error": "not_found", "message": "No such call on this account."})

    do_GET = _handle
    do_POST = _handle


@pytest.fixture
def http_server():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    server.daemon_threads = True
    server.seen = []
    server.limited_hits = 0
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def test_default_urllib_transport_against_real_http_server(http_server):
    base = "http://127.0.0.1:%d/" % http_server.server_address[1]
    sleep = Sleeper()
    client = Client(KEY, base, sleep=sleep, max_retries=1, timeout=5)
    assert isinstance(client.transport, byourside.UrllibTransport)

    placed = client.place_call("+14155550123", "Ask about opening hours", metadata={"k": "v"})
    assert placed == PLACED
    method, path, headers, body = http_server.seen[-1]
    assert (method, path) == ("POST", "/v1/agent/calls")
    assert json.loads(body) == {"to": "+14155550123", "objective": "Ask about opening hours", "metadata": {"k": "v"}}
    assert headers["Content-Type"] == "application/json"
    assert headers["User-Agent"] == "byourside-python/0.1.0"
    assert headers["Accept"] == "application/json"
    uuid.UUID(headers["Idempotency-Key"])  # auto key because max_retries > 0

    assert client.get_call("c 1")["status"] == "in_progress"
    assert http_server.seen[-1][1] == "/v1/agent/calls/c%201"
    assert "Content-Type" not in http_server.seen[-1][2]

    assert len(client.list_calls(500)) == 1
    assert http_server.seen[-1][1] == "/v1/agent/calls?limit=100"

    with pytest.raises(ByoursideError) as info:
        client.get_call("missing")
    assert (info.value.status, info.value.code, info.value.message) == (404, "not_found", "No call found with that id (or it does not belong to your account).")
    assert info.value.server_message == "No such call on this account."

    # Retry-After on a 429 is honoured (read from the real response headers)
    assert sleep.calls == []
    assert client.get_call("limited")["status"] == "completed"
    assert sleep.calls == [2.0]
    assert http_server.limited_hits == 2

    with pytest.raises(ByoursideError) as info:
        Client(KEY, base, sleep=sleep).get_call("broken")
    assert (info.value.status, info.value.code, info.value.message) == (502, "error", TEMPORARY)

    with pytest.raises(ByoursideError) as info:
        Client("bys_ak_wrong", base).get_call("c 1")
    assert (info.value.status, info.value.code) == (401, "unauthorized")
    assert info.value.message == "Invalid or missing API key."


def test_default_transport_records_headers_and_429_error_details(http_server):
    base = "http://127.0.0.1:%d" % http_server.server_address[1]
    client = Client(KEY, base, sleep=Sleeper())
    with pytest.raises(ByoursideError) as info:
        client.get_call("limited")
    assert (info.value.status, info.value.code) == (429, "rate_limited")
    assert info.value.retry_after == 2.0
    assert info.value.request_id == "rid-9"
    assert client.transport.last_headers["retry-after"] == "2"


def test_default_transport_connection_refused_is_network_error():
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    client = Client(KEY, "http://127.0.0.1:%d" % port, sleep=Sleeper(), timeout=2)
    with pytest.raises(ByoursideError) as info:
        client.get_call("c1")
    assert (info.value.status, info.value.code) == (0, "network_error")


# ------------------------------------------------- the published 0.1.0 module layout

def test_the_published_module_paths_import():
    from byourside.client import Client as PublishedClient
    from byourside.errors import ByoursideError as PublishedError, map_error
    from byourside.webhooks import verify_webhook as published_verify

    assert PublishedClient is Client
    assert PublishedError is ByoursideError
    assert published_verify is verify_webhook
    assert callable(map_error)


@pytest.mark.parametrize(
    "status,body,expected",
    [
        (400, {"error": "destination_blocked"}, "That destination is not allowed (premium, IRSF, or unsupported country)."),
        (401, {"error": "unauthorized", "message": "server text"}, "Invalid or missing API key."),
        (503, {"error": "store_error"}, "Temporary service error. Please retry shortly."),
        (502, {"error": "placement_failed"}, "The call could not be placed (carrier/trunk issue). Try again shortly."),
        (500, {"error": "something_new"}, "Temporary service error. Please retry shortly."),
        (0, None, "Temporary service error. Please retry shortly."),
        (None, None, "Temporary service error. Please retry shortly."),
        (418, {"error": "teapot_busy"}, "Request failed (teapot_busy)."),
        (404, {"message": "no token"}, "Request failed with status 404."),
        (400, "not json", "Request failed with status 400."),
        (404, {"error": 7}, "Request failed (7)."),
    ],
)
def test_map_error_answers_as_the_published_package_does(status, body, expected):
    from byourside.errors import map_error

    assert map_error(status, body) == expected


def test_the_client_error_message_is_map_error_and_the_server_text_stays_reachable():
    from byourside.errors import map_error

    body = {"error": "destination_blocked", "message": "Premium-rate numbers are blocked."}
    client, _, _ = make((400, body))
    with pytest.raises(ByoursideError) as info:
        client.place_call("+19001234567", "x")
    assert info.value.message == map_error(400, body)
    assert info.value.server_message == "Premium-rate numbers are blocked."


# ------------------------------------------------------- against the real server


async def test_transfer_to_against_the_real_server_hands_the_callee_to_a_person(tmp_path):
    """The SDK over loopback HTTP to the real app (uvicorn), with a worker running the call on the
    phone simulator: the callee at +1 415 555-0134 asks for a person and is handed over."""
    import asyncio

    import uvicorn
    from support import new_account, open_services

    from byourside_server.agent.offline import OfflineBrain
    from byourside_server.api.app import create_app
    from byourside_server.clock import SystemClock
    from byourside_server.runtime.session import SessionDeps
    from byourside_server.runtime.worker import Worker
    from byourside_server.telephony.simulator.provider import SimulatorTelephony
    from byourside_server.telephony.simulator.scenarios import load_scenarios

    services = await open_services(f"sqlite+aiosqlite:///{tmp_path / 'db.sqlite'}", tmp_path)
    _, secret = await new_account(services)
    telephony = SimulatorTelephony(load_scenarios(), SystemClock(), time_scale=0)
    worker = Worker(services, SessionDeps(calls=services.calls, telephony=telephony, brain=OfflineBrain(),
                                          ring_timeout_seconds=30), concurrency=1)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(create_app(services), host="127.0.0.1", port=port, log_config=None,
                                           access_log=False, lifespan="off"))
    tasks = [asyncio.create_task(server.serve()), asyncio.create_task(worker.run())]
    try:
        while not server.started:
            await asyncio.sleep(0.02)
        client = Client(secret, f"http://127.0.0.1:{port}")
        placed = await asyncio.to_thread(client.place_call, "+14155550134", "Ask when the policy renewal is due.",
                                         transfer_to=["+14155550161", "+14155550100"], transfer_mode="warm")
        call = await asyncio.to_thread(client.wait_for_call, placed["callId"], 120, 0.05)
        assert (call["status"], call["endReason"]) == ("completed", "transferred"), call
        assert (call["transferTo"], call["transferMode"]) == (["+14155550161", "+14155550100"], "warm")
        (handed,) = telephony.transfers  # the busy first number did not take it; the second did
        assert handed.to == "+14155550100" and handed.brief
        with pytest.raises(ByoursideError) as refused:
            await asyncio.to_thread(client.place_call, "+14155550123", "x", transfer_to="+19001234567")
        assert (refused.value.status, refused.value.code) == (400, "invalid_transfer_to")
    finally:
        worker.stop()
        server.should_exit = True
        await asyncio.wait_for(asyncio.gather(*tasks), timeout=30)
        await services.aclose()
