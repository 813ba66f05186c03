"""Poisoned input, on both stores: text that no store or encoder can hold (lone UTF-16
surrogates, NUL), numbers JSON should not carry, ids and cursors that can never exist,
odd digits in the recording link. Each answers one spec token, creates nothing, and
never a 500; rows already holding such text (written before validation) stay readable,
listable and deliverable.
"""

from __future__ import annotations

import base64
import json
from typing import Any

import byourside
import pytest
from sqlalchemy import select, text

from byourside_server.api.app import create_app
from byourside_server.mcp.http import InProcessTransport
from byourside_server.mcp.tools import build_mcp
from byourside_server.store import schema as t
from support import auth, new_account, open_services

GOOD = {"to": "+14155550123", "objective": "Ask for the opening hours."}
SURROGATE, LOW_SURROGATE, NUL = "\ud800", "\udfff", "\x00"


def raw_json(payload: Any) -> bytes:
    """JSON as a client may send it: lone surrogates travel as ``\\ud800`` escapes."""
    return json.dumps(payload, ensure_ascii=True).encode()


def _with(bad: str) -> list[tuple[str, dict[str, Any]]]:
    return [
        ("to", {**GOOD, "to": "+1415555012" + bad}),
        ("objective", {**GOOD, "objective": "Ask " + bad}),
        ("context", {**GOOD, "context": "Be brief " + bad}),
        ("voicemailMessage", {**GOOD, "voicemailMessage": "Call back " + bad}),
        ("webhookUrl", {**GOOD, "webhookUrl": "http://127.0.0.1:9/hook" + bad}),
        ("callerId", {**GOOD, "callerId": "+1415555010" + bad}),
        ("voice", {**GOOD, "voice": "amy" + bad}),
        ("language", {**GOOD, "language": "en-US" + bad}),
        ("fields.name", {**GOOD, "fields": [{"name": "a" + bad}]}),
        ("fields.description", {**GOOD, "fields": [{"name": "a", "description": "d" + bad}]}),
        ("fields.type", {**GOOD, "fields": [{"name": "a", "type": "string" + bad}]}),
        ("metadata.key", {**GOOD, "metadata": {"k" + bad: "v"}}),
        ("metadata.value", {**GOOD, "metadata": {"note": bad}}),
        ("unknown key", {**GOOD, "futureOption" + bad: True}),
        ("unknown nested", {**GOOD, "futureOption": {"deep": [bad]}}),
    ]


POISONED_BODIES = [
    pytest.param(body, id=f"{where}-{name}")
    for name, bad in (("surrogate", SURROGATE), ("low-surrogate", LOW_SURROGATE), ("nul", NUL))
    for where, body in _with(bad)
]


async def _count_calls(services) -> int:  # noqa: ANN001
    async with services.db.read() as conn:
        return len((await conn.execute(select(t.calls.c.id))).all())


async def _post(api, secret: str, content: bytes, **headers: str):  # noqa: ANN001
    """Header values go as latin-1 bytes, as a raw client could send them."""
    extra = {name: value.encode("latin-1") for name, value in headers.items()}
    return await api.post("/v1/agent/calls", content=content,
                          headers={**auth(secret), "Content-Type": "application/json", **extra})


def _assert_token(response, status: int, token: str) -> None:  # noqa: ANN001
    assert response.status_code == status, response.text
    data = response.json()
    assert data["error"] == token and "Traceback" not in data["message"]


@pytest.mark.parametrize("payload", POISONED_BODIES)
async def test_poisoned_text_anywhere_in_the_body_is_invalid_request(services, api, payload):
    _, secret = await new_account(services)
    _assert_token(await _post(api, secret, raw_json(payload)), 400, "invalid_request")
    assert await _count_calls(services) == 0


async def test_poisoned_idempotent_body_and_key_are_invalid_request(services, api):
    _, secret = await new_account(services)
    poisoned = raw_json({**GOOD, "metadata": {"note": SURROGATE}})
    _assert_token(await _post(api, secret, poisoned, **{"Idempotency-Key": "k-1"}), 400, "invalid_request")
    for key in ("k\x00", "k\x7f", "clé", " " * 256):
        _assert_token(await _post(api, secret, raw_json(GOOD), **{"Idempotency-Key": key}), 400, "invalid_request")
    assert await _count_calls(services) == 0
    # A printable key still works, and replays.
    first = await _post(api, secret, raw_json(GOOD), **{"Idempotency-Key": "order 42/retry"})
    again = await _post(api, secret, raw_json(GOOD), **{"Idempotency-Key": "order 42/retry"})
    assert first.status_code == again.status_code == 201 and again.headers["idempotent-replayed"] == "true"


@pytest.mark.parametrize(
    "raw",
    [
        b'{"to": "+14155550123", "objective": "x", "maxDurationSeconds": NaN}',
        b'{"to": "+14155550123", "objective": "x", "maxDurationSeconds": Infinity}',
        b'{"to": "+14155550123", "objective": "x", "maxDurationSeconds": -Infinity}',
        b'{"to": "+14155550123", "objective": "x", "maxDurationSeconds": 1e400}',
        b'{"to": "+14155550123", "objective": "x", "maxDurationSeconds": -1e400}',
        b'{"to": "+14155550123", "objective": "x", "metadata": ' + b"[" * 100_000 + b"]" * 100_000 + b"}",
        b'{"to": "+14155550123", "objective": "x", "futureOption": ' + b"[" * 40 + b"]" * 40 + b"}",
    ],
    ids=["nan", "infinity", "minus-infinity", "1e400", "minus-1e400", "deep-recursion", "deeper-than-32"],
)
async def test_numbers_json_cannot_carry_and_deep_nesting_are_invalid_request(services, api, raw):
    _, secret = await new_account(services)
    _assert_token(await _post(api, secret, raw), 400, "invalid_request")
    assert await _count_calls(services) == 0


async def test_whole_number_floats_and_big_integers_are_judged_by_range(services, api):
    _, secret = await new_account(services)
    ok = await _post(api, secret, b'{"to": "+14155550123", "objective": "x", "maxDurationSeconds": 60.0}')
    assert ok.status_code == 201, ok.text
    huge = b'{"to": "+14155550123", "objective": "x", "maxDurationSeconds": 1' + b"0" * 4000 + b"}"
    _assert_token(await _post(api, secret, huge), 400, "invalid_request")


@pytest.mark.parametrize("url", ["http://127.0.0.1:9/hook?q=\u0001", "http://127.0.0.1:9/hook?q=\u0015[]"])
async def test_webhook_urls_the_sender_could_never_use_are_refused_at_creation(services, api, url):
    _, secret = await new_account(services)
    response = await _post(api, secret, raw_json({**GOOD, "webhookUrl": url}))
    _assert_token(response, 400, "invalid_webhook_url")
    assert await _count_calls(services) == 0
    tested = await api.post("/v1/agent/webhooks/test", content=raw_json({"url": url}),
                            headers={**auth(secret), "Content-Type": "application/json"})
    _assert_token(tested, 400, "invalid_webhook_url")


@pytest.mark.parametrize("url", ["http://127.0.0.1:9/hook" + SURROGATE, "http://127.0.0.1:9/h" + NUL + "ook"])
async def test_webhook_test_endpoint_refuses_poisoned_text(services, api, url):
    _, secret = await new_account(services)
    response = await api.post("/v1/agent/webhooks/test", content=raw_json({"url": url}),
                              headers={**auth(secret), "Content-Type": "application/json"})
    _assert_token(response, 400, "invalid_request")


@pytest.mark.parametrize("call_id", ["%00", "abc%00def", "x" * 65, "%C3%A9t%C3%A9", "%ED%A0%80"])
async def test_ids_that_can_never_exist_are_not_found(services, api, call_id):
    _, secret = await new_account(services)
    for method, path in [("GET", ""), ("POST", "/cancel"), ("GET", "/webhooks"), ("GET", "/recording")]:
        response = await api.request(method, f"/v1/agent/calls/{call_id}{path}", headers=auth(secret))
        _assert_token(response, 404, "not_found")


def _cursor(raw: str) -> str:
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


@pytest.mark.parametrize(
    "query",
    [
        "cursor=" + _cursor("2026-01-01T00:00:00+00:00|a\x00b"),  # NUL in the id part
        "cursor=" + _cursor("9999-12-31T23:59:59-05:00|x"),  # overflows when turned into UTC
        "cursor=" + _cursor("0001-01-01T00:00:00+05:00|x"),  # underflows when turned into UTC
        "cursor=" + _cursor("2026-01-01T00:00:00+00:00|" + "x" * 65),  # an id that cannot exist
        "cursor=%00",
        "cursor=" + "A" * 5000,
        "cursor=%C3%A9",
        "status=queued%00",
        "status=%ED%A0%80",
    ],
    ids=["nul-id", "overflow", "underflow", "long-id", "nul", "huge", "non-ascii", "status-nul", "status-bad-utf8"],
)
async def test_cursors_and_filters_that_cannot_exist_are_invalid_request(services, api, query):
    _, secret = await new_account(services)
    _assert_token(await api.get(f"/v1/agent/calls?{query}", headers=auth(secret)), 400, "invalid_request")


@pytest.mark.parametrize("limit", ["%C2%B2", "1" * 5000, "%D9%A1%D9%A2", "1_0", " 5", "%00"])
async def test_odd_limits_fall_back_to_the_default(services, api, limit):
    _, secret = await new_account(services)
    response = await api.get(f"/v1/agent/calls?limit={limit}", headers=auth(secret))
    assert response.status_code == 200 and response.json() == {"calls": [], "nextCursor": None}


@pytest.mark.parametrize(
    "query",
    [
        "expires=%C2%B2&token=x",  # "²".isdigit() is true, int("²") raises
        "expires=" + "9" * 5000 + "&token=x",  # int() refuses more than 4,300 digits
        "expires=99999999999&token=%C3%A9",  # hmac.compare_digest refuses non-ASCII text
        "expires=99999999999&token=" + "0" * 64,  # well formed, wrongly signed
        "expires=%00&token=%00",
    ],
    ids=["superscript", "5000-digits", "non-ascii-token", "wrong-token", "nul"],
)
async def test_odd_recording_links_are_unauthorized(services, api, query):
    _, secret = await new_account(services)
    call_id = (await api.post("/v1/agent/calls", json=GOOD, headers=auth(secret))).json()["callId"]
    _assert_token(await api.get(f"/v1/agent/calls/{call_id}/recording?{query}"), 401, "unauthorized")


async def test_bearer_scheme_is_case_insensitive_everywhere(database_url, tmp_path):
    import httpx

    services = await open_services(database_url, tmp_path, metrics_token="scrape-me")
    try:
        _, secret = await new_account(services)
        transport = httpx.ASGITransport(app=create_app(services))
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            for scheme in ("Bearer", "bearer", "BEARER", "bEaReR"):
                metrics = await client.get("/metrics", headers={"Authorization": f"{scheme} scrape-me"})
                calls = await client.get("/v1/agent/calls", headers={"Authorization": f"{scheme} {secret}"})
                assert metrics.status_code == calls.status_code == 200
            for header in ("Basic scrape-me", "Bearer scrape-me-not", "bearer", "Bearer caf\u00e9"):
                _assert_token(await client.get("/metrics", headers={"Authorization": header.encode("latin-1")}),
                              401, "unauthorized")
    finally:
        await services.aclose()


# Rows that already hold such text (written before validation existed, or by hand).


async def _poison_row(services, call_id: str) -> None:  # noqa: ANN001
    """Write, by SQL, what the API now refuses: lone surrogates in JSON text (both stores
    accept the ``\\ud800`` escape in a JSON column) and, where the store takes it, a NaN."""
    metadata = '{"note": "\\ud800", "k\\udfff": "v"}'
    turns = '[{"speaker": "contact", "text": "hi \\ud83d", "startMs": 0, "endMs": 1}]'
    extracted = '{"price": NaN}' if services.db.is_sqlite else '{"price": "\\udc00"}'
    cast = "" if services.db.is_sqlite else "::json"
    async with services.db.write() as conn:
        await conn.execute(
            text(f"UPDATE calls SET metadata = CAST(:m AS TEXT){cast}, turns = CAST(:t AS TEXT){cast}, "
                 f"extracted = CAST(:e AS TEXT){cast} WHERE id = :id"),
            {"m": metadata, "t": turns, "e": extracted, "id": call_id},
        )


async def test_stored_poison_stays_readable_listable_and_deliverable(services, api):
    account, secret = await new_account(services)
    created = await api.post("/v1/agent/calls", json={**GOOD, "webhookUrl": "http://127.0.0.1:9/hook"},
                             headers=auth(secret))
    call_id = created.json()["callId"]
    await _poison_row(services, call_id)

    got = await api.get(f"/v1/agent/calls/{call_id}", headers=auth(secret))
    assert got.status_code == 200, got.text
    call = got.json()
    assert call["metadata"] == {"note": "\ufffd", "k\ufffd": "v"} and call["turns"][0]["text"] == "hi \ufffd"
    assert "\ufffd" in call["transcript"]
    assert call["extracted"] in ({"price": None}, {"price": "\ufffd"})
    listed = await api.get("/v1/agent/calls", headers=auth(secret))
    assert listed.status_code == 200 and listed.json()["calls"][0]["metadata"]["note"] == "\ufffd"

    # The status changes of that call still commit, each with its webhook event.
    assert (await services.calls.claim_next("w", 30)).id == call_id
    assert await services.calls.mark_dialing(call_id, "w") and await services.calls.mark_in_progress(call_id, "w")
    async with services.db.read() as conn:
        payloads = (await conn.execute(select(t.webhook_deliveries.c.payload))).scalars().all()
    assert len(payloads) == 1
    body = json.loads(payloads[0].encode("utf-8"))
    assert body["event"] == "call.in_progress" and body["metadata"]["note"] == "\ufffd"


def _mcp(services, secret: str):  # noqa: ANN001
    app = create_app(services)
    return build_mcp(lambda ctx: byourside.Client(api_key=secret, base_url="http://byourside.internal",
                                                 transport=InProcessTransport(app)))


def _tool_payload(result: Any) -> tuple[bool, Any]:
    content = result.content if hasattr(result, "content") else result
    is_error = bool(getattr(result, "isError", False))
    return is_error, json.loads(content[0].text)


async def test_mcp_lists_and_gets_a_poisoned_call(services, api):
    _, secret = await new_account(services)
    call_id = (await api.post("/v1/agent/calls", json=GOOD, headers=auth(secret))).json()["callId"]
    await _poison_row(services, call_id)
    server = _mcp(services, secret)
    is_error, page = _tool_payload(await server.call_tool("list_calls", {"limit": 5}))
    assert not is_error and page["calls"][0]["metadata"]["note"] == "\ufffd"
    is_error, call = _tool_payload(await server.call_tool("get_call", {"call_id": call_id}))
    assert not is_error and call["callId"] == call_id


@pytest.mark.parametrize(
    "tool,arguments",
    [
        ("place_call", {"to": "+14155550123", "objective": "Ask " + SURROGATE}),
        ("place_call", {"to": "+14155550123", "objective": "Ask", "context": NUL}),
        ("place_call", {"to": "+14155550123", "objective": "Ask", "fields": [{"name": "a", "description": SURROGATE}]}),
        ("get_call", {"call_id": "abc" + SURROGATE}),
        ("cancel_call", {"call_id": SURROGATE}),
        ("list_calls", {"status": "queued" + NUL}),
    ],
)
async def test_mcp_arguments_with_poisoned_text_are_invalid_request(services, tool, arguments):
    _, secret = await new_account(services)
    is_error, payload = _tool_payload(await _mcp(services, secret).call_tool(tool, arguments))
    assert is_error and payload["error"] == "invalid_request", payload
    assert await _count_calls(services) == 0


async def test_machine_made_text_and_numbers_cannot_make_the_final_write_fail(services, api):
    """Speech recognition and models are not validated requests: a NUL or lone surrogate in
    their words, or a NaN among extracted values, is replaced rather than losing the outcome."""
    from byourside_server.domain import CallStatus, Turn
    from byourside_server.store.calls import CallOutcome

    _, secret = await new_account(services)
    call_id = (await api.post("/v1/agent/calls", json=GOOD, headers=auth(secret))).json()["callId"]
    calls = services.calls
    assert (await calls.claim_next("w", 30)).id == call_id
    assert await calls.mark_dialing(call_id, "w") and await calls.mark_in_progress(call_id, "w")
    turns = (Turn("agent", "Hello", 0, 900), Turn("contact", "We open at 9\x00 \ud83d", 1000, 2000))
    await calls.save_live_turns(call_id, "w", turns)
    outcome = CallOutcome(CallStatus.COMPLETED, "objective_met", summary="Opens at 9 \udc00", turns=turns,
                          extracted={"opens_at": "9\x00", "price": float("nan")}, objective_met=True,
                          duration_seconds=2, latency={"p50": {"totalMs": float("inf")}})
    assert await calls.finish(call_id, "w", outcome)
    call = (await api.get(f"/v1/agent/calls/{call_id}", headers=auth(secret))).json()
    assert call["status"] == "completed" and call["summary"] == "Opens at 9 \ufffd"
    assert call["turns"][1]["text"] == "We open at 9\ufffd \ufffd"
    assert call["extracted"] == {"opens_at": "9\ufffd", "price": None}
    assert call["latency"] == {"p50": {"totalMs": None}}
