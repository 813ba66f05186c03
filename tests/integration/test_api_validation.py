"""Every invalid request answers one spec token, creates nothing, and never leaks a traceback."""

from __future__ import annotations

import json

import pytest

from support import auth, new_account

GOOD = {"to": "+14155550123", "objective": "Ask for the opening hours."}


def body(**changes):
    data = dict(GOOD)
    for key, value in changes.items():
        if value is ...:
            data.pop(key, None)
        else:
            data[key] = value
    return data


CASES = [
    # (request body, expected status, expected token)
    (body(to=...), 400, "to_required"),
    (body(to=None), 400, "to_required"),
    (body(to=""), 400, "to_required"),
    (body(to="   "), 400, "to_required"),
    (body(to=14155550123), 400, "invalid_request"),
    (body(objective=...), 400, "objective_required"),
    (body(objective=None), 400, "objective_required"),
    (body(objective="  \n "), 400, "objective_required"),
    (body(objective=42), 400, "invalid_request"),
    (body(objective="x" * 4001), 400, "invalid_request"),
    (body(context="x" * 8001), 400, "invalid_request"),
    (body(context=["a"]), 400, "invalid_request"),
    (body(to="+14155550123x1"), 400, "invalid_number"),
    (body(to="+1 415 555 0123"), 400, "invalid_number"),
    (body(to="+1415555O123"), 400, "invalid_number"),
    (body(to="0014155550123"), 400, "invalid_number"),
    (body(to="14155550123"), 400, "invalid_number"),
    (body(to="+1415"), 400, "invalid_number"),
    (body(to="+18765550123"), 400, "destination_blocked"),  # Jamaica shares +1
    (body(to="+881612345678"), 400, "destination_blocked"),  # satellite
    (body(to="+19001234567"), 400, "destination_blocked"),  # premium rate
    (body(fields=[{"name": f"f{i}"} for i in range(21)]), 400, "invalid_fields"),
    (body(fields=[{"name": "a"}, {"name": "a"}]), 400, "invalid_fields"),
    (body(fields=[{"name": "a", "type": "date"}]), 400, "invalid_fields"),
    (body(fields=[{"name": "1abc"}]), 400, "invalid_fields"),
    (body(fields=[{"name": "has space"}]), 400, "invalid_fields"),
    (body(fields=["name"]), 400, "invalid_fields"),
    (body(fields={"name": "a"}), 400, "invalid_fields"),
    (body(webhookUrl="ftp://example.com/hook"), 400, "invalid_webhook_url"),
    (body(webhookUrl=5), 400, "invalid_request"),
    (body(callerId="+1 415"), 400, "invalid_number"),
    (body(callerId="+14155550199"), 403, "caller_id_not_owned"),
    (body(language="english please"), 400, "invalid_request"),
    (body(voice="x" * 65), 400, "invalid_request"),
    (body(maxDurationSeconds="60"), 400, "invalid_request"),
    (body(maxDurationSeconds=True), 400, "invalid_request"),
    (body(maxDurationSeconds=5), 400, "invalid_request"),
    (body(metadata=["a"]), 400, "invalid_request"),
    (body(metadata={"k": 1}), 400, "invalid_request"),
]


async def _count_calls(api, secret):
    response = await api.get("/v1/agent/calls?limit=100", headers=auth(secret))
    return len(response.json()["calls"])


@pytest.mark.parametrize("payload,status,token", CASES)
async def test_invalid_bodies_answer_one_token_and_create_nothing(services, api, payload, status, token):
    _, secret = await new_account(services)
    response = await api.post("/v1/agent/calls", json=payload, headers=auth(secret))
    assert response.status_code == status, response.text
    data = response.json()
    assert data["error"] == token
    assert data["message"] and "Traceback" not in data["message"]
    assert await _count_calls(api, secret) == 0


@pytest.mark.parametrize(
    "raw",
    [b"", b"not json", b"[1, 2]", b'"a string"', b"null", b"{\"to\": ", "{\"to\": \"\xff\"}".encode("latin-1")],
)
async def test_non_object_bodies_are_invalid_request(services, api, raw):
    _, secret = await new_account(services)
    response = await api.post(
        "/v1/agent/calls", content=raw, headers={**auth(secret), "Content-Type": "application/json"}
    )
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_request"
    assert await _count_calls(api, secret) == 0


async def test_oversize_body_is_invalid_request(services, api):
    _, secret = await new_account(services)
    payload = json.dumps(body(context="x" * 400_000))
    response = await api.post("/v1/agent/calls", content=payload, headers=auth(secret))
    assert response.status_code == 400 and response.json()["error"] == "invalid_request"


@pytest.mark.parametrize(
    "header",
    [None, "", "Bearer", "Bearer ", "Basic abc", "Bearer bys_ak_nope", "Bearer sk_live_123", "bys_ak_x"],
)
async def test_bad_credentials_are_unauthorized(services, api, header):
    headers = {"Authorization": header} if header is not None else {}
    for method, url in [("POST", "/v1/agent/calls"), ("GET", "/v1/agent/calls"), ("GET", "/v1/agent/calls/x")]:
        response = await api.request(method, url, json=GOOD, headers=headers)
        assert response.status_code == 401
        assert response.json()["error"] == "unauthorized"


async def test_revoked_key_is_unauthorized(services, api):
    account, secret = await new_account(services)
    assert (await api.get("/v1/agent/calls", headers=auth(secret))).status_code == 200
    assert await services.accounts.revoke_key(account.id, secret)
    response = await api.get("/v1/agent/calls", headers=auth(secret))
    assert response.status_code == 401 and response.json()["error"] == "unauthorized"


async def test_another_accounts_call_is_not_found(services, api):
    _, alice = await new_account(services)
    _, bob = await new_account(services)
    created = await api.post("/v1/agent/calls", json=GOOD, headers=auth(alice))
    call_id = created.json()["callId"]
    for response in [
        await api.get(f"/v1/agent/calls/{call_id}", headers=auth(bob)),
        await api.post(f"/v1/agent/calls/{call_id}/cancel", headers=auth(bob)),
        await api.get("/v1/agent/calls/does-not-exist", headers=auth(alice)),
    ]:
        assert response.status_code == 404 and response.json()["error"] == "not_found"
    assert await _count_calls(api, bob) == 0


async def test_someone_elses_caller_id_is_not_owned(services, api):
    await new_account(services, caller_id="+14155550111")
    _, secret = await new_account(services, caller_id="+14155550100")
    response = await api.post("/v1/agent/calls", json=body(callerId="+14155550111"), headers=auth(secret))
    assert response.status_code == 403 and response.json()["error"] == "caller_id_not_owned"


async def test_account_without_caller_id_gets_caller_id_not_owned(services, api):
    account = await services.accounts.create("bare", services.default_limits)
    _, secret = await services.accounts.create_key(account.id)
    response = await api.post("/v1/agent/calls", json=GOOD, headers=auth(secret))
    assert response.status_code == 403 and response.json()["error"] == "caller_id_not_owned"


async def test_unknown_route_and_method_use_the_envelope(services, api):
    response = await api.get("/nope")
    assert response.status_code == 404 and response.json()["error"] == "not_found"
    response = await api.delete("/v1/agent/calls")
    assert response.status_code == 405 and response.json()["error"] == "invalid_request"
    assert response.headers["x-request-id"]
    # RFC 9110: a 405 lists what the path allows, across every route of that path.
    assert response.headers["allow"] == "GET, POST"
    assert (await api.request("TRACE", "/healthz")).headers["allow"] == "GET"
