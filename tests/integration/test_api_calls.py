"""The happy paths of spec section 4 and the (ext) parts: shapes, idempotency, limits, listing, cancel."""

from __future__ import annotations

import asyncio

from support import auth, new_account

CALL_KEYS = {
    "id", "callId", "status", "to", "from", "objective", "context", "fields", "language", "languageSource",
    "voice", "summary", "extracted", "transcript", "turns", "recordingUrl", "createdAt", "startedAt", "endedAt",
    "durationSeconds", "endReason", "objectiveMet", "metadata",
}
GOOD = {"to": "+14155550123", "objective": "Ask for the opening hours."}


async def test_create_then_get_has_every_key(services, api):
    _, secret = await new_account(services)
    payload = {
        **GOOD,
        "context": "We are a delivery service.",
        "fields": [{"name": "opens_at", "description": "opening time"}, {"name": "open_sunday", "type": "boolean"}],
        "voice": "nova",
        "language": "en-us",
        "metadata": {"order": "42"},
        "maxDurationSeconds": 120,
    }
    response = await api.post("/v1/agent/calls", json=payload, headers=auth(secret))
    assert response.status_code == 201, response.text
    created = response.json()
    assert set(created) == {"callId", "status", "language", "languageSource", "voice"}
    assert created["status"] == "queued"
    assert created["language"] == "en-US" and created["languageSource"] == "explicit"
    assert created["voice"] == "nova"
    assert response.headers["x-request-id"]

    call = (await api.get(f"/v1/agent/calls/{created['callId']}", headers=auth(secret))).json()
    assert CALL_KEYS <= set(call)
    assert call["id"] == call["callId"] == created["callId"]
    assert call["to"] == "+14155550123" and call["from"] == "+14155550100"
    assert call["fields"] == [
        {"name": "opens_at", "type": "string", "description": "opening time"},
        {"name": "open_sunday", "type": "boolean", "description": None},
    ]
    assert call["metadata"] == {"order": "42"}
    assert call["createdAt"].endswith("Z")
    for key in ("summary", "extracted", "transcript", "recordingUrl", "startedAt", "endedAt", "durationSeconds"):
        assert call[key] is None


async def test_language_is_inferred_or_auto(services, api):
    _, secret = await new_account(services)
    inferred = (await api.post("/v1/agent/calls", json=GOOD, headers=auth(secret))).json()
    assert (inferred["language"], inferred["languageSource"]) == ("en-US", "inferred")
    auto = (await api.post("/v1/agent/calls", json={**GOOD, "language": "auto"}, headers=auth(secret))).json()
    assert auto["languageSource"] == "auto"
    # A Hebrew objective is a Hebrew call (he-IL), which the offline agent refuses (tests/integration/
    # test_language_refusal.py: a deployment that speaks Hebrew accepts it).
    hebrew = await api.post("/v1/agent/calls", json={**GOOD, "objective": "לברר מתי פתוח"}, headers=auth(secret))
    assert hebrew.status_code == 400 and hebrew.json()["error"] == "unsupported_language"
    assert "he-IL" in hebrew.json()["message"]


async def test_idempotency_key_replays_and_conflicts(services, api):
    _, secret = await new_account(services)
    headers = {**auth(secret), "Idempotency-Key": "order-42"}
    first = await api.post("/v1/agent/calls", json=GOOD, headers=headers)
    second = await api.post("/v1/agent/calls", json=GOOD, headers=headers)
    assert first.status_code == second.status_code == 201
    assert first.json() == second.json()
    assert second.headers.get("idempotent-replayed") == "true"
    conflict = await api.post("/v1/agent/calls", json={**GOOD, "objective": "Something else"}, headers=headers)
    assert conflict.status_code == 409 and conflict.json()["error"] == "idempotency_conflict"
    listed = (await api.get("/v1/agent/calls", headers=auth(secret))).json()["calls"]
    assert len(listed) == 1


async def test_concurrent_idempotent_requests_place_one_call(services, api):
    _, secret = await new_account(services)
    headers = {**auth(secret), "Idempotency-Key": "burst"}
    responses = await asyncio.gather(*[api.post("/v1/agent/calls", json=GOOD, headers=headers) for _ in range(8)])
    assert {r.status_code for r in responses} == {201}
    assert len({r.json()["callId"] for r in responses}) == 1
    assert len((await api.get("/v1/agent/calls", headers=auth(secret))).json()["calls"]) == 1


async def test_placements_per_minute_limit(services, api):
    account, secret = await new_account(services)
    await services.accounts.set_limits(account.id, calls_per_minute=2, max_concurrent_calls=100)
    for _ in range(2):
        assert (await api.post("/v1/agent/calls", json=GOOD, headers=auth(secret))).status_code == 201
    limited = await api.post("/v1/agent/calls", json=GOOD, headers=auth(secret))
    assert limited.status_code == 429 and limited.json()["error"] == "rate_limited"
    assert 1 <= int(limited.headers["retry-after"]) <= 60
    assert len((await api.get("/v1/agent/calls", headers=auth(secret))).json()["calls"]) == 2


async def test_concurrent_calls_limit(services, api):
    account, secret = await new_account(services)
    await services.accounts.set_limits(account.id, max_concurrent_calls=1)
    assert (await api.post("/v1/agent/calls", json=GOOD, headers=auth(secret))).status_code == 201
    limited = await api.post("/v1/agent/calls", json=GOOD, headers=auth(secret))
    assert limited.status_code == 429 and limited.json()["error"] == "rate_limited"
    assert int(limited.headers["retry-after"]) > 0


async def test_monthly_minute_cap_counts_reserved_time(services, api):
    account, secret = await new_account(services)
    await services.accounts.set_limits(account.id, monthly_minutes=3)
    # The first call reserves 120 s of the 180 s allowance; the second gets only the 60 s left.
    first = await api.post("/v1/agent/calls", json={**GOOD, "maxDurationSeconds": 120}, headers=auth(secret))
    second = await api.post("/v1/agent/calls", json={**GOOD, "maxDurationSeconds": 600}, headers=auth(secret))
    assert first.status_code == second.status_code == 201
    second_call = (await api.get(f"/v1/agent/calls/{second.json()['callId']}", headers=auth(secret))).json()
    assert second_call["maxDurationSeconds"] == 60
    capped = await api.post("/v1/agent/calls", json=GOOD, headers=auth(secret))
    assert capped.status_code == 429 and capped.json()["error"] == "over_minute_cap"


async def test_list_is_newest_first_with_cursor_and_status_filter(services, api):
    _, secret = await new_account(services)
    ids = []
    for i in range(5):
        ids.append((await api.post("/v1/agent/calls", json={**GOOD, "objective": f"call {i}"}, headers=auth(secret))).json()["callId"])
    await api.post(f"/v1/agent/calls/{ids[0]}/cancel", headers=auth(secret))

    page1 = (await api.get("/v1/agent/calls?limit=2", headers=auth(secret))).json()
    assert [c["id"] for c in page1["calls"]] == ids[::-1][:2]
    page2 = (await api.get(f"/v1/agent/calls?limit=2&cursor={page1['nextCursor']}", headers=auth(secret))).json()
    page3 = (await api.get(f"/v1/agent/calls?limit=2&cursor={page2['nextCursor']}", headers=auth(secret))).json()
    assert [c["id"] for c in page2["calls"] + page3["calls"]] == ids[::-1][2:]
    assert page3["nextCursor"] is None

    failed = (await api.get("/v1/agent/calls?status=failed", headers=auth(secret))).json()["calls"]
    assert [c["id"] for c in failed] == [ids[0]]
    for bad in ("status=ringing", "cursor=garbage!"):
        response = await api.get(f"/v1/agent/calls?{bad}", headers=auth(secret))
        assert response.status_code == 400 and response.json()["error"] == "invalid_request"


async def test_limit_is_clamped_not_rejected(services, api):
    _, secret = await new_account(services)
    for _ in range(3):
        await api.post("/v1/agent/calls", json=GOOD, headers=auth(secret))
    for query, expected in [("limit=0", 1), ("limit=-5", 1), ("limit=1000", 3), ("limit=abc", 3), ("", 3)]:
        response = await api.get(f"/v1/agent/calls?{query}", headers=auth(secret))
        assert response.status_code == 200
        assert len(response.json()["calls"]) == expected, query


async def test_cancel_queued_call_then_cancel_again_is_not_active(services, api):
    _, secret = await new_account(services)
    call_id = (await api.post("/v1/agent/calls", json=GOOD, headers=auth(secret))).json()["callId"]
    canceled = await api.post(f"/v1/agent/calls/{call_id}/cancel", headers=auth(secret))
    assert canceled.status_code == 200
    assert canceled.json()["status"] == "failed" and canceled.json()["endReason"] == "canceled"
    again = await api.post(f"/v1/agent/calls/{call_id}/cancel", headers=auth(secret))
    assert again.status_code == 409 and again.json()["error"] == "call_not_active"


async def test_openapi_and_health(services, api):
    spec = (await api.get("/openapi.json")).json()
    assert "/v1/agent/calls" in spec["paths"]
    assert spec["paths"]["/v1/agent/calls"]["post"]["requestBody"]["content"]["application/json"]["schema"]["required"] == ["to", "objective"]
    health = await api.get("/healthz")
    assert health.status_code == 200 and health.json()["ok"] is True
