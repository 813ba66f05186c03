// Unit tests of the Node SDK with an injected fetch and sleep (no network).

import { test } from "node:test";
import assert from "node:assert/strict";
import { createRequire } from "node:module";

import {
  ByoursideError,
  Client,
  DEFAULT_BASE_URL,
  TEMPORARY_MESSAGE,
  clampLimit,
  friendlyMessage,
} from "../index.js";

const require = createRequire(import.meta.url);
const KEY = "bys_ak_unit_test_key";

/** A scripted fetch: each response is {status, body, headers} or an Error to throw. */
function scriptedFetch(...responses) {
  const calls = [];
  const fetchImpl = async (url, init = {}) => {
    calls.push({ url, ...init, parsedBody: init.body === undefined ? undefined : JSON.parse(init.body) });
    const next = responses.length > 1 ? responses.shift() : responses[0];
    if (next instanceof Error) throw next;
    const headers = new Headers(next.headers || {});
    const text = next.raw !== undefined ? next.raw : next.body === undefined ? "" : JSON.stringify(next.body);
    return { status: next.status, headers, text: async () => text };
  };
  return { fetchImpl, calls };
}

function recorder() {
  const slept = [];
  return { slept, sleep: async (ms) => void slept.push(ms) };
}

function client(fetchImpl, extra = {}) {
  return new Client({ apiKey: KEY, baseUrl: "http://api.test/", fetchImpl, sleep: async () => {}, ...extra });
}

function withEnv(vars, fn) {
  const saved = {};
  for (const [k, v] of Object.entries(vars)) {
    saved[k] = process.env[k];
    if (v === undefined) delete process.env[k];
    else process.env[k] = v;
  }
  try {
    return fn();
  } finally {
    for (const [k, v] of Object.entries(saved)) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
  }
}

test("a missing key raises no_api_key; the key and base URL fall back to the environment", () => {
  withEnv({ BYS_API_KEY: undefined, BYS_BASE_URL: undefined }, () => {
    assert.throws(() => new Client(), (e) => e instanceof ByoursideError && e.code === "no_api_key" && e.status === 0);
    assert.throws(() => new Client({ apiKey: "  " }), { code: "no_api_key" });
    assert.equal(new Client({ apiKey: KEY }).baseUrl, DEFAULT_BASE_URL);
  });
  withEnv({ BYS_API_KEY: "bys_ak_from_env", BYS_BASE_URL: "https://calls.example.com//" }, () => {
    const c = new Client();
    assert.equal(c.baseUrl, "https://calls.example.com");
    assert.throws(() => new Client({ apiKey: "" }), { code: "no_api_key" }, "an explicit empty key is not replaced");
    assert.equal(new Client({ baseUrl: "http://x.test/" }).baseUrl, "http://x.test");
    assert.ok(!JSON.stringify(c).includes("bys_ak_from_env"), "the key is not enumerable");
  });
});

test("placeCall posts the spec's camelCase body with the Bearer key", async () => {
  const { fetchImpl, calls } = scriptedFetch({ status: 201, body: { callId: "c1", status: "queued" } });
  const result = await client(fetchImpl).placeCall({
    to: "+14155550123",
    objective: "Book a table",
    context: "Two people",
    fields: [{ name: "confirmed", type: "boolean" }],
    webhookUrl: "https://hooks.example.com/x",
    callerId: "+14155550100",
    voice: "alloy",
    language: "en-US",
    maxDurationSeconds: 120,
    metadata: { ticket: "42" },
    voicemailMessage: "Please call back.",
    idempotencyKey: "idem-1",
  });
  assert.deepEqual(result, { callId: "c1", status: "queued" });
  const [call] = calls;
  assert.equal(call.method, "POST");
  assert.equal(call.url, "http://api.test/v1/agent/calls");
  assert.equal(call.headers.Authorization, `Bearer ${KEY}`);
  assert.equal(call.headers["Content-Type"], "application/json");
  assert.equal(call.headers["Idempotency-Key"], "idem-1");
  assert.deepEqual(call.parsedBody, {
    to: "+14155550123",
    objective: "Book a table",
    context: "Two people",
    fields: [{ name: "confirmed", type: "boolean" }],
    webhookUrl: "https://hooks.example.com/x",
    callerId: "+14155550100",
    voice: "alloy",
    language: "en-US",
    maxDurationSeconds: 120,
    metadata: { ticket: "42" },
    voicemailMessage: "Please call back.",
  });
});

test("placeCall leaves out unset options and sends no idempotency key without retries", async () => {
  const { fetchImpl, calls } = scriptedFetch({ status: 201, body: { callId: "c1" } });
  await client(fetchImpl).placeCall({ to: "+14155550123", objective: "Hi", context: undefined, voice: null });
  assert.deepEqual(calls[0].parsedBody, { to: "+14155550123", objective: "Hi" });
  assert.equal(calls[0].headers["Idempotency-Key"], undefined);
});

test("placeCall sends transferTo as one number or a list, and transferMode", async () => {
  const { fetchImpl, calls } = scriptedFetch(
    { status: 201, body: { callId: "c1" } }, { status: 201, body: { callId: "c2" } },
    { status: 400, body: { error: "invalid_transfer_to", message: "server text" } },
  );
  const c = client(fetchImpl);
  await c.placeCall({ to: "+14155550123", objective: "Hi", transferTo: "+14155550100" });
  await c.placeCall({
    to: "+14155550123", objective: "Hi", transferTo: ["+14155550100", "+14155550101"], transferMode: "warm",
  });
  assert.deepEqual(calls.map((x) => x.parsedBody), [
    { to: "+14155550123", objective: "Hi", transferTo: "+14155550100" },
    { to: "+14155550123", objective: "Hi", transferTo: ["+14155550100", "+14155550101"], transferMode: "warm" },
  ]);
  const refused = await c.placeCall({ to: "+14155550123", objective: "Hi", transferTo: "4155550100" })
    .catch((e) => e);
  assert.ok(refused instanceof ByoursideError);
  assert.equal(refused.code, "invalid_transfer_to");
  assert.equal(refused.status, 400);
  assert.match(refused.message, /^The transfer numbers are not valid/);
  assert.equal(refused.serverMessage, "server text");
});

test("getCall and cancelCall URL-encode the id", async () => {
  const { fetchImpl, calls } = scriptedFetch({ status: 200, body: { callId: "c 1", status: "queued" } });
  const c = client(fetchImpl);
  await c.getCall("c 1");
  await c.cancelCall("a/b?x");
  assert.equal(calls[0].url, "http://api.test/v1/agent/calls/c%201");
  assert.equal(calls[0].method, "GET");
  assert.equal(calls[0].body, undefined);
  assert.equal(calls[1].url, "http://api.test/v1/agent/calls/a%2Fb%3Fx/cancel");
  assert.equal(calls[1].method, "POST");
  await assert.rejects(c.getCall(""), { code: "invalid_request", status: 0 });
  assert.equal(calls.length, 2, "an empty id never reaches the network");
});

test("listVoices GETs the catalogue", async () => {
  const catalogue = { voices: [{ name: "joe", provider: "piper", languages: ["en"], gender: "male" }],
    default: "alloy", aliases: ["alloy"] };
  const { fetchImpl, calls } = scriptedFetch({ status: 200, body: catalogue });
  assert.deepEqual(await client(fetchImpl).listVoices(), catalogue);
  assert.equal(calls[0].url, "http://api.test/v1/agent/voices");
  assert.equal(calls[0].method, "GET");
  assert.equal(calls[0].body, undefined);
});

test("deleteCall sends DELETE to the call's URL and rejects call_active", async () => {
  const erased = { callId: "c 1", status: "completed", to: "+1415***0123", erasedAt: "2026-12-01T10:00:00.000Z" };
  const { fetchImpl, calls } = scriptedFetch({ status: 200, body: erased },
    { status: 409, body: { error: "call_active", message: "The call has not ended yet." } });
  const c = client(fetchImpl);
  assert.deepEqual(await c.deleteCall("c 1"), erased);
  assert.equal(calls[0].url, "http://api.test/v1/agent/calls/c%201");
  assert.equal(calls[0].method, "DELETE");
  assert.equal(calls[0].body, undefined);
  await assert.rejects(c.deleteCall("c2"), { code: "call_active", status: 409 });
});

test("listCalls clamps the limit, falls back to 20 and returns the array", async () => {
  for (const [given, sent] of [[0, "1"], [-5, "1"], [500, "100"], ["abc", "20"], ["7", "7"], [undefined, "20"],
    [3.9, "3"], [NaN, "20"], [true, "20"], [null, "20"]]) {
    const { fetchImpl, calls } = scriptedFetch({ status: 200, body: { calls: [{ callId: "a" }], nextCursor: null } });
    const list = await client(fetchImpl).listCalls({ limit: given });
    assert.deepEqual(list, [{ callId: "a" }]);
    assert.equal(new URL(calls[0].url).searchParams.get("limit"), sent, `limit ${String(given)}`);
  }
  assert.equal(clampLimit("  "), 20);
  const bare = scriptedFetch({ status: 200, body: { calls: [], nextCursor: null } });
  await client(bare.fetchImpl).listCalls(7);
  assert.equal(new URL(bare.calls[0].url).searchParams.get("limit"), "7", "a bare number is the limit");
  const { fetchImpl, calls } = scriptedFetch({ status: 200, body: { calls: [], nextCursor: "n2" } });
  const page = await client(fetchImpl).listCallsPage({ limit: 5, status: "completed", cursor: "n1" });
  assert.deepEqual(page, { calls: [], nextCursor: "n2" });
  const url = new URL(calls[0].url);
  assert.equal(url.pathname, "/v1/agent/calls");
  assert.deepEqual(Object.fromEntries(url.searchParams), { limit: "5", status: "completed", cursor: "n1" });
  const odd = scriptedFetch({ status: 200, body: { nothing: true } });
  assert.deepEqual(await client(odd.fetchImpl).listCalls(), []);
});

test("error responses carry status, token and the table's message", async () => {
  const cases = [
    [400, { error: "invalid_number", message: "server text" }, "invalid_number",
      "The phone number is not valid E.164 (e.g. +14155550123)."],
    [400, { error: "destination_blocked" }, "destination_blocked", "Calls to this destination are not allowed."],
    [401, { error: "unauthorized" }, "unauthorized", "Invalid or missing API key."],
    [409, { error: "brand_new_token" }, "brand_new_token", "Request failed (brand_new_token)."],
    [404, { detail: "x" }, "error", "Request failed (HTTP 404)."],
    [503, { error: "something_else" }, "something_else", TEMPORARY_MESSAGE],
    [500, undefined, "error", TEMPORARY_MESSAGE],
  ];
  for (const [status, body, code, message] of cases) {
    const { fetchImpl } = scriptedFetch({ status, body, headers: { "X-Request-Id": "req-9" } });
    const err = await client(fetchImpl).getCall("c1").then(
      () => assert.fail("should reject"),
      (e) => e,
    );
    assert.ok(err instanceof ByoursideError && err instanceof Error);
    assert.equal(err.status, status);
    assert.equal(err.code, code);
    assert.equal(err.message, message);
    assert.equal(err.requestId, "req-9");
  }
  const { fetchImpl } = scriptedFetch({ status: 400, body: { error: "invalid_number", message: "server text" } });
  const err = await client(fetchImpl).placeCall({ to: "x", objective: "y" }).catch((e) => e);
  assert.equal(err.serverMessage, "server text");
  assert.deepEqual(err.body, { error: "invalid_number", message: "server text" });
  const garbage = scriptedFetch({ status: 502, raw: "<html>bad gateway</html>" });
  assert.deepEqual(
    await client(garbage.fetchImpl).getCall("c").catch((e) => [e.code, e.status, e.message]),
    ["error", 502, TEMPORARY_MESSAGE],
  );
});

test("the message table matches the Python SDK's semantics", () => {
  assert.equal(friendlyMessage("not_found", 404), "Call not found.");
  assert.equal(friendlyMessage("internal_error", 500), TEMPORARY_MESSAGE);
  assert.equal(friendlyMessage("weird", 418), "Request failed (weird).");
  assert.equal(friendlyMessage(null, 0), TEMPORARY_MESSAGE);
  assert.equal(friendlyMessage(null, 422), "Request failed (HTTP 422).");
  assert.equal(friendlyMessage("toString", 400), "Request failed (toString).");
});

test("a network failure is code network_error with status 0", async () => {
  const { fetchImpl, calls } = scriptedFetch(new TypeError("fetch failed"));
  const err = await client(fetchImpl).getCall("c1").catch((e) => e);
  assert.ok(err instanceof ByoursideError);
  assert.equal(err.code, "network_error");
  assert.equal(err.status, 0);
  assert.equal(err.message, TEMPORARY_MESSAGE);
  assert.equal(calls.length, 1, "no retries by default");
});

test("retries 429/5xx honouring Retry-After, with one idempotency key for every attempt", async () => {
  const { slept, sleep } = recorder();
  const { fetchImpl, calls } = scriptedFetch(
    { status: 429, body: { error: "rate_limited" }, headers: { "Retry-After": "2" } },
    { status: 503, body: { error: "store_error" } },
    new TypeError("socket hang up"),
    { status: 201, body: { callId: "c9", status: "queued" } },
  );
  const c = new Client({ apiKey: KEY, fetchImpl, sleep, maxRetries: 3 });
  const placed = await c.placeCall({ to: "+14155550123", objective: "Hi" });
  assert.equal(placed.callId, "c9");
  assert.equal(calls.length, 4);
  const keys = new Set(calls.map((x) => x.headers["Idempotency-Key"]));
  assert.equal(keys.size, 1);
  assert.match([...keys][0], /^[0-9a-f-]{36}$/);
  assert.deepEqual(slept, [2000, 1000, 2000]);
});

test("over_minute_cap and 4xx are never retried; retries stop at maxRetries", async () => {
  const cap = scriptedFetch({ status: 429, body: { error: "over_minute_cap" } });
  await assert.rejects(new Client({ apiKey: KEY, fetchImpl: cap.fetchImpl, sleep: async () => {}, maxRetries: 3 })
    .getCall("c"), { code: "over_minute_cap", status: 429 });
  assert.equal(cap.calls.length, 1);
  const bad = scriptedFetch({ status: 400, body: { error: "invalid_number" } });
  await assert.rejects(new Client({ apiKey: KEY, fetchImpl: bad.fetchImpl, sleep: async () => {}, maxRetries: 3 })
    .getCall("c"), { code: "invalid_number" });
  assert.equal(bad.calls.length, 1);
  const down = scriptedFetch({ status: 503, body: { error: "store_error" } });
  await assert.rejects(new Client({ apiKey: KEY, fetchImpl: down.fetchImpl, sleep: async () => {}, maxRetries: 2 })
    .getCall("c"), { code: "store_error", status: 503 });
  assert.equal(down.calls.length, 3);
});

test("a POST without an idempotency key is not retried when retries are off", async () => {
  const { fetchImpl, calls } = scriptedFetch({ status: 503, body: { error: "store_error" } });
  await assert.rejects(client(fetchImpl).placeCall({ to: "+1", objective: "x" }), { code: "store_error" });
  assert.equal(calls.length, 1);
});

function fakeClock() {
  let now = 0;
  return { now: () => now, sleep: async (ms) => void (now += ms), advance: (ms) => void (now += ms) };
}

test("waitForCall polls until terminal and reports each status change", async () => {
  const clock = fakeClock();
  const { fetchImpl, calls } = scriptedFetch(
    { status: 200, body: { callId: "c1", status: "queued" } },
    { status: 200, body: { callId: "c1", status: "queued" } },
    { status: 200, body: { callId: "c1", status: "dialing" } },
    { status: 200, body: { callId: "c1", status: "in_progress" } },
    { status: 200, body: { callId: "c1", status: "completed", summary: "done" } },
  );
  const seen = [];
  const c = new Client({ apiKey: KEY, fetchImpl, sleep: clock.sleep, now: clock.now });
  const call = await c.waitForCall("c1", { intervalMs: 1000, onStatus: (x) => seen.push(x.status) });
  assert.equal(call.summary, "done");
  assert.equal(calls.length, 5);
  assert.deepEqual(seen, ["queued", "dialing", "in_progress", "completed"]);
  assert.equal(clock.now(), 4000);
});

test("waitForCall raises timeout (status 0) when the next poll would pass the deadline", async () => {
  const clock = fakeClock();
  const { fetchImpl, calls } = scriptedFetch({ status: 200, body: { callId: "c1", status: "dialing" } });
  const c = new Client({ apiKey: KEY, fetchImpl, sleep: clock.sleep, now: clock.now });
  const err = await c.waitForCall("c1", { timeoutMs: 10000, intervalMs: 3000 }).catch((e) => e);
  assert.ok(err instanceof ByoursideError);
  assert.equal(err.code, "timeout");
  assert.equal(err.status, 0);
  assert.equal(err.body.status, "dialing");
  assert.equal(calls.length, 4, "polls at 0, 3, 6, 9 s; a poll at 12 s would pass 10 s");
  assert.equal(clock.now(), 9000, "never sleeps past the deadline");

  const once = scriptedFetch({ status: 200, body: { callId: "c1", status: "queued" } });
  const c0 = new Client({ apiKey: KEY, fetchImpl: once.fetchImpl, sleep: clock.sleep, now: clock.now });
  await assert.rejects(c0.waitForCall("c1", { timeoutMs: 0 }), { code: "timeout", status: 0 });
  assert.equal(once.calls.length, 1);
});

test("waitForCall with the defaults waits 180 s in 3 s steps, and errors from polls propagate", async () => {
  const clock = fakeClock();
  const { fetchImpl, calls } = scriptedFetch({ status: 200, body: { status: "queued" } });
  const c = new Client({ apiKey: KEY, fetchImpl, sleep: clock.sleep, now: clock.now });
  await assert.rejects(c.waitForCall("c1"), { code: "timeout" });
  assert.equal(calls.length, 61);
  const gone = scriptedFetch({ status: 404, body: { error: "not_found" } });
  const c2 = new Client({ apiKey: KEY, fetchImpl: gone.fetchImpl, sleep: clock.sleep, now: clock.now });
  await assert.rejects(c2.waitForCall("c1"), { code: "not_found", status: 404 });
});

test("a request that outlives timeoutMs becomes a network_error", async () => {
  const hanging = (url, init) => new Promise((_, reject) => {
    init.signal.addEventListener("abort", () => reject(new DOMException("aborted", "AbortError")));
  });
  const c = new Client({ apiKey: KEY, fetchImpl: hanging, timeoutMs: 20 });
  await assert.rejects(c.getCall("c1"), { code: "network_error", status: 0 });
});

test("CommonJS and ESM entry points share the same classes", () => {
  const cjs = require("../index.cjs");
  assert.equal(cjs.Client, Client);
  assert.equal(cjs.ByoursideError, ByoursideError);
  assert.equal(typeof cjs.verifyWebhook, "function");
  const pkg = require("../package.json");
  assert.equal(pkg.name, "byourside");
  assert.equal(pkg.exports["."].require, "./index.cjs");
  assert.equal(pkg.exports["."].import, "./index.js");
  assert.equal(pkg.exports["."].types, "./index.d.ts");
  assert.deepEqual(pkg.dependencies ?? {}, {});
});
