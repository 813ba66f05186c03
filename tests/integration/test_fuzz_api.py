"""The standing fuzz regime: hypothesis drives the real app (ASGI, real store, SQLite and PostgreSQL)
with request bodies, headers, ids, cursors and query strings full of hostile text: lone surrogates,
NUL, bidi controls, huge and non-finite numbers, deep nesting, malformed JSON.

For every request: never a 5xx, never a stall, and nothing created unless the answer is 201. Every
call created along the way must afterwards be readable and listable; half of them are then
dialled by a worker that vanishes and must be reaped, the rest are conducted to the end by the
real worker (phone simulator, offline agent); every call with a webhook URL must have its final
event delivered, well-formed UTF-8 JSON, to a real receiver.

Reproducible: derandomized, no example database. Bounded: a fixed number of examples per store.
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import re
from pathlib import Path
from typing import Any
from urllib.parse import quote_from_bytes

import httpx
import pytest
from hypothesis import HealthCheck, given, note, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from byourside_server.api.app import create_app
from byourside_server.server import build_worker
from byourside_server.store import schema
from byourside_server.webhooks.delivery import DeliveryWorker
from support import auth, new_account, open_services, running
from webhook_receiver import Receiver

# Raise BYS_TEST_FUZZ_EXAMPLES for a longer hunt; BYS_TEST_FUZZ_RANDOM=true draws new examples each run.
EXAMPLES_PER_STORE = int(os.environ.get("BYS_TEST_FUZZ_EXAMPLES", "200"))
DERANDOMIZE = os.environ.get("BYS_TEST_FUZZ_RANDOM", "").lower() != "true"
REQUEST_TIMEOUT_SECONDS = 20.0  # a hang detector for a busy machine, not a speed requirement

# Text that broke (or could break) storage, hashing, serialisation or parsing.
HOSTILE = [
    "\ud800", "\udfff", "a\ud83dz", "\x00", "a\x00b", "\u202e\u2066evil\u2069", "\ufeff", "\u200b", "\uffff",
    "\U0010ffff", "²", "٣", "１２", "NaN", "Infinity", "-0", "1e400", "9" * 5000, "𝕏" * 300, "'; DROP TABLE calls; --",
    "%00", "%C2%B2", "../../etc/passwd", "\\", '"', "{}", "[]", "null", " ", "", "\r\n", "\t",
]
TERMINAL = {"completed", "no_answer", "voicemail", "declined", "failed"}
CALL_STATUSES = ["queued", "dialing", "in_progress", "completed", "no_answer", "voicemail", "declined", "failed"]
NUMBERS = ["+14155550123", "+14155550124", "+442071838750", "+61291234567", "+14155550100"]

# All code points, lone surrogates included (hypothesis leaves them out unless asked).
any_char = st.characters(codec=None, exclude_categories=())
hostile_text = st.one_of(
    st.text(any_char, max_size=40),
    st.sampled_from(HOSTILE),
    st.tuples(st.text(max_size=10), st.sampled_from(HOSTILE), st.text(max_size=10)).map("".join),
)
huge_numbers = st.sampled_from([10**400, -(10**400), 2**63, -(2**63) - 1, 1e308, math.nan, math.inf, -math.inf, 0.5, -1])
scalar = st.one_of(hostile_text, st.integers(), huge_numbers, st.booleans(), st.none())


def nested(depth: int) -> str:
    """A placeholder that encode_body expands into JSON nested ``depth`` levels deep (kept small
    here so hypothesis can print the example)."""
    return f"DEEP:{depth}"


json_value = st.recursive(scalar, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                          st.dictionaries(hostile_text, inner, max_size=4)),
                          max_leaves=12)


# Valid but unusual text: bidi controls, zero-width and astral characters, combining marks.
odd_but_valid_text = st.text(st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")), min_size=1, max_size=80) \
    .filter(str.strip)
VALID_FIELDS = {
    "context": odd_but_valid_text,
    "voicemailMessage": odd_but_valid_text,
    "fields": st.lists(st.fixed_dictionaries(
        {"name": st.from_regex(r"[a-z_][a-z0-9_]{0,10}", fullmatch=True)},
        optional={"type": st.sampled_from(["string", "boolean", "number"]), "description": odd_but_valid_text}),
        max_size=3, unique_by=lambda f: f["name"]),
    "webhookUrl": st.one_of(st.just("RECEIVER"), st.builds(lambda q: f"RECEIVER/{q}", st.from_regex(r"[a-z0-9]{1,12}", fullmatch=True))),
    "callerId": st.just("+14155550100"),
    "voice": st.sampled_from(["alloy", "verse"]),
    "language": st.sampled_from(["en-US", "auto", "fr-FR", "he-IL"]),
    "maxDurationSeconds": st.integers(10, 600),
    "metadata": st.dictionaries(st.text(min_size=1, max_size=10), odd_but_valid_text, max_size=3),
}
HOSTILE_FIELDS = {
    "to": st.one_of(hostile_text, scalar),
    "objective": st.one_of(hostile_text, scalar),
    "context": scalar,
    "voicemailMessage": scalar,
    "fields": st.one_of(json_value, st.lists(st.fixed_dictionaries({"name": hostile_text},
                                                                  optional={"type": hostile_text, "description": hostile_text}),
                                             max_size=3)),
    "webhookUrl": st.one_of(hostile_text, st.builds(lambda q: f"RECEIVER?q={q}", hostile_text)),
    "callerId": hostile_text,
    "voice": hostile_text,
    "language": hostile_text,
    "maxDurationSeconds": st.one_of(huge_numbers, scalar),
    "metadata": st.one_of(st.dictionaries(hostile_text, hostile_text, max_size=4), st.builds(nested, st.integers(50, 5000)),
                          json_value),
}


@st.composite
def call_bodies(draw: st.DrawFn) -> dict[str, Any]:
    """A well-formed call (so that calls get created, with unusual but valid text) that often has
    one or two hostile fields or an unknown key."""
    body: dict[str, Any] = {"to": draw(st.sampled_from(NUMBERS)), "objective": draw(odd_but_valid_text)}
    for key in draw(st.lists(st.sampled_from(sorted(VALID_FIELDS)), unique=True, max_size=5)):
        body[key] = draw(VALID_FIELDS[key])
    for key in draw(st.lists(st.sampled_from(sorted(HOSTILE_FIELDS)), unique=True, max_size=2)):
        body[key] = draw(HOSTILE_FIELDS[key])
    if draw(st.integers(0, 5)) == 0:
        body[draw(hostile_text)] = draw(json_value)  # an unknown key
    return body


def encode_body(body: Any, receiver_url: str) -> bytes:
    text = json.dumps(body, allow_nan=True)  # NaN/Infinity literals and \ud800 escapes on purpose
    text = re.sub(r'"DEEP:(\d+)"', lambda m: '{"a":[' * int(m[1]) + "1" + "]}" * int(m[1]), text)
    return text.replace('"RECEIVER', '"' + receiver_url).encode()


raw_bodies = st.one_of(
    st.binary(max_size=200),
    st.sampled_from([b"", b"null", b"[]", b"{", b'{"to": NaN}', b'{"maxDurationSeconds": Infinity}',
                     b'{"a": 1e99999}', b"[" * 100_000 + b"]" * 100_000, b'{"a":' * 50_000 + b"1" + b"}" * 50_000,
                     b'{"to": "+14155550123", "objective": "\\ud800"}', '{"objective": "é"}'.encode("latin-1")]),
)
header_value = st.one_of(st.text(st.characters(max_codepoint=255, exclude_characters="\r\n"), max_size=40),
                         st.sampled_from(HOSTILE).filter(lambda s: all(ord(c) < 256 for c in s) and "\r" not in s and "\n" not in s))


@st.composite
def requests(draw: st.DrawFn) -> dict[str, Any]:
    kind = draw(st.sampled_from(["create", "create", "create", "create_raw", "get", "list", "cancel",
                                 "recording", "webhooks"]))
    headers: dict[str, Any] = {}
    if draw(st.integers(0, 9)) == 0:
        headers["Authorization"] = draw(st.one_of(header_value, st.builds("Bearer {}".format, header_value)))
    for name in ("Idempotency-Key", "X-Request-Id"):
        if draw(st.booleans()):
            headers[name] = draw(header_value)
    # An id: hostile text, a random UUID, or (None) one of the calls created so far, picked by ``ref``.
    ident = draw(st.one_of(hostile_text, st.uuids().map(str), st.none(), st.none()))
    ref = draw(st.integers(0, 1000))
    if kind == "create":
        return {"method": "POST", "path": "/v1/agent/calls", "body": draw(call_bodies()), "headers": headers}
    if kind == "create_raw":
        return {"method": "POST", "path": "/v1/agent/calls", "raw": draw(raw_bodies), "headers": headers}
    if kind == "list":
        params = {}
        for name, values in (("limit", st.one_of(hostile_text, st.integers().map(str))),
                             ("cursor", hostile_text), ("status", st.one_of(st.sampled_from(CALL_STATUSES), hostile_text))):
            if draw(st.booleans()):
                params[name] = draw(values)
        return {"method": "GET", "path": "/v1/agent/calls", "params": params, "headers": headers}
    if kind == "recording":
        params = {"expires": draw(st.one_of(hostile_text, st.integers().map(str))), "token": draw(hostile_text)}
        # Without a key: the signed-link path anyone can reach (expires and token are checked first).
        return {"method": "GET", "path": "/v1/agent/calls/{id}/recording", "id": ident, "ref": ref, "params": params,
                "headers": {}, "anonymous": draw(st.booleans())}
    suffix = {"get": "", "cancel": "/cancel", "webhooks": "/webhooks"}[kind]
    return {"method": "POST" if kind == "cancel" else "GET", "path": f"/v1/agent/calls/{{id}}{suffix}",
            "id": ident, "ref": ref, "headers": headers}


def _escaped(value: str) -> str:
    """Every byte percent-encoded; a lone surrogate as its (ill-formed) UTF-8 bytes, as an attacker sends it."""
    return quote_from_bytes(value.encode("utf-8", "surrogatepass"), safe="")


def _url(request: dict[str, Any], created: list[str]) -> str:
    url = request["path"]
    if "id" in request:
        ident = request["id"]
        if ident is None:
            ident = created[request["ref"] % len(created)] if created else "00000000-0000-4000-8000-000000000000"
        url = url.replace("{id}", _escaped(ident) or "%20")
    params = request.get("params") or {}
    if params:
        url += "?" + "&".join(f"{_escaped(k)}={_escaped(v)}" for k, v in params.items())
    return url


class FuzzSession:
    """The app, one account, and bookkeeping of the calls created, on a private event loop."""

    def __init__(self, database_url: str, tmp_path: Path, receiver: Receiver) -> None:
        self.loop = asyncio.new_event_loop()
        self.receiver = receiver
        # Open at every hour: the generator dials every country, and a call held for the callee's
        # night would otherwise wait past the test (calling hours have their own tests).
        self.services = self.run(open_services(database_url, tmp_path, calling_hours_start="00:00",
                                               calling_hours_end="24:00"))
        self.account, self.key = self.run(new_account(self.services))
        self.run(self._lift_limits())
        self.client = httpx.AsyncClient(transport=httpx.ASGITransport(app=create_app(self.services)),
                                        base_url="http://testserver")
        self.created: list[str] = []

    def run(self, coro: Any) -> Any:
        return self.loop.run_until_complete(coro)

    async def _lift_limits(self) -> None:
        async with self.services.db.write() as conn:
            await conn.execute(schema.accounts.update().values(
                calls_per_minute=1_000_000, max_concurrent_calls=1_000_000, monthly_minutes=100_000_000))

    async def count_calls(self) -> int:
        async with self.services.db.read() as conn:
            return (await conn.execute(select(func.count()).select_from(schema.calls))).scalar_one()

    async def send(self, request: dict[str, Any]) -> httpx.Response:
        headers = {} if request.get("anonymous") else {"Authorization": f"Bearer {self.key}"}
        headers.update(request["headers"])
        headers = {k: v.encode("latin-1") if isinstance(v, str) else v for k, v in headers.items()}
        content = None
        if "body" in request:
            content = encode_body(request["body"], self.receiver.url())
            headers["Content-Type"] = b"application/json"
        elif "raw" in request:
            content = request["raw"]
            headers["Content-Type"] = b"application/json"
        return await asyncio.wait_for(
            self.client.request(request["method"], _url(request, self.created), headers=headers, content=content),
            REQUEST_TIMEOUT_SECONDS)

    async def check(self, request: dict[str, Any]) -> None:
        before = await self.count_calls()
        response = await self.send(request)
        after = await self.count_calls()
        assert response.status_code < 500, (response.status_code, response.text[:300])
        if response.status_code >= 400:
            body = response.json()
            assert set(body) >= {"error", "message"}, body
            assert after == before, f"{response.status_code} {body['error']} but a call was stored"
        if request["method"] == "POST" and request["path"] == "/v1/agent/calls" and response.status_code == 201:
            assert after - before in (0, 1)
            call_id = response.json()["callId"]
            if after > before:
                self.created.append(call_id)
            read = await self.client.get(f"/v1/agent/calls/{call_id}", headers=auth(self.key))
            assert read.status_code == 200, read.text[:300]

    async def everything_created_is_usable(self) -> None:
        ids = set(self.created)
        # Listable: every created call appears once while paging through the whole list.
        listed: list[str] = []
        cursor = None
        while True:
            page = await self.client.get("/v1/agent/calls", params={"limit": 100, **({"cursor": cursor} if cursor else {})},
                                         headers=auth(self.key))
            assert page.status_code == 200, page.text[:300]
            listed += [c["callId"] for c in page.json()["calls"]]
            cursor = page.json()["nextCursor"]
            if not cursor:
                break
        assert ids <= set(listed) and len(listed) == len(set(listed))
        # Reapable: a worker claims and dials half of the queued calls, then vanishes; the reaper fails each one.
        calls = self.services.calls
        queued = [c for c in self.created if (await calls.get(self.account.id, c)).status.value == "queued"]
        vanished = set()
        for _ in range(len(queued) // 2):
            claimed = await calls.claim_next("vanished", lease_seconds=0.2)
            assert claimed is not None
            assert await calls.mark_dialing(claimed.id, "vanished")
            vanished.add(claimed.id)
        await asyncio.sleep(0.5)
        assert set(await calls.reap_expired()) == vanished
        # Conducted: the real worker (phone simulator, offline agent) takes the rest to the end.
        async with running(build_worker(self.services)):
            loop = asyncio.get_running_loop()
            deadline = loop.time() + 120
            while unfinished := [call for c in ids
                                 if (call := await calls.get(self.account.id, c)).status.value not in TERMINAL]:
                assert loop.time() < deadline, ("calls still unfinished",
                                                [(c.status.value, c.not_before, c.hold_reason, c.to_number) for c in unfinished])
                await asyncio.sleep(0.05)
        for call_id in ids:
            read = await self.client.get(f"/v1/agent/calls/{call_id}", headers=auth(self.key))
            assert read.status_code == 200 and read.json()["status"] in TERMINAL, read.text[:300]
            hooks = await self.client.get(f"/v1/agent/calls/{call_id}/webhooks", headers=auth(self.key))
            assert hooks.status_code == 200, hooks.text[:300]
        # Deliverable: every call with a webhook URL has its final event delivered, well-formed, to the receiver.
        with_hooks = {}
        for call_id in ids:
            call = await calls.get(self.account.id, call_id)
            if call.webhook_url:
                with_hooks[call_id] = call.webhook_url

        def delivered() -> set[str]:
            return {req.json["callId"] for req in self.receiver.requests if req.json.get("status") in TERMINAL}

        async with running(DeliveryWorker(self.services, worker_id="fuzz-delivery")):
            loop = asyncio.get_running_loop()
            deadline = loop.time() + 60
            while not delivered() >= set(with_hooks) and loop.time() < deadline:
                await asyncio.sleep(0.05)
        missing = {c: with_hooks[c] for c in set(with_hooks) - delivered()}
        for call_id in missing:
            hooks = await self.client.get(f"/v1/agent/calls/{call_id}/webhooks", headers=auth(self.key))
            missing[call_id] = (with_hooks[call_id], hooks.text[:1000])
        assert not missing, f"webhook events never delivered: {missing}"
        for req in self.receiver.requests:
            req.raw.decode("utf-8")  # strict: no lone surrogates on the wire
            assert req.json["callId"] in with_hooks

    def close(self) -> None:
        self.run(self.client.aclose())
        self.run(self.services.aclose())
        self.loop.close()


@pytest.fixture
def fuzz_session(database_url: str, tmp_path: Path):
    with Receiver() as receiver:
        session = FuzzSession(database_url, tmp_path, receiver)
        try:
            yield session
        finally:
            session.close()


def test_hostile_requests_never_break_the_api(fuzz_session: FuzzSession):
    @given(request=requests())
    @settings(max_examples=EXAMPLES_PER_STORE, deadline=None, derandomize=DERANDOMIZE, database=None,
              suppress_health_check=list(HealthCheck))
    def one_request(request: dict[str, Any]) -> None:
        note(f"request: {request!r:.3000}")
        fuzz_session.run(fuzz_session.check(request))

    one_request()
    assert fuzz_session.created, "no example created a call: the generator is too hostile to test creation"
    fuzz_session.run(fuzz_session.everything_created_is_usable())
