// verifyWebhook: HMAC-SHA256 over "<t>.<raw body>", several v1 entries, tolerance, never throws.
// Cross-checked against signatures made by the Python SDK's sign_webhook.

import { test } from "node:test";
import assert from "node:assert/strict";
import { createHmac } from "node:crypto";
import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";

import { Client, signWebhook, verifyWebhook } from "../index.js";

const SECRET = "whsec_test_secret";
const BODY = '{"event":"call.completed","callId":"c-1","summary":"Café booked ✓"}';
const T = 1700000000;
// Made once with the Python SDK: byourside.sign_webhook(BODY, SECRET, timestamp=T).
const PYTHON_HEADER = "t=1700000000,v1=1944f3014062d521d1677bffa8d3ee6238062e859e294315614ad6cc65c00a42";

const PYTHON = fileURLToPath(new URL("../../../.venv/bin/python", import.meta.url));

function hmac(secret, t, body) {
  return createHmac("sha256", secret).update(`${t}.${body}`, "utf8").digest("hex");
}

test("a signature made by the Python SDK verifies (fixed vector)", () => {
  assert.equal(PYTHON_HEADER, `t=${T},v1=${hmac(SECRET, T, BODY)}`, "the vector is plain HMAC-SHA256 of '<t>.<body>'");
  assert.equal(verifyWebhook(PYTHON_HEADER, BODY, SECRET, 300, T + 10), true);
  assert.equal(verifyWebhook(PYTHON_HEADER, Buffer.from(BODY, "utf8"), SECRET, 300, T), true);
  assert.equal(verifyWebhook(PYTHON_HEADER, new TextEncoder().encode(BODY), SECRET, 300, T), true);
  assert.equal(signWebhook(BODY, SECRET, T), PYTHON_HEADER);
});

test("fresh signatures cross-verify between the Python and Node SDKs",
  { skip: existsSync(PYTHON) ? false : "no .venv/bin/python (run `make setup`)" }, () => {
    const script = "import sys; from byourside import sign_webhook; sys.stdout.write(sign_webhook(sys.argv[1], sys.argv[2]))";
    const run = spawnSync(PYTHON, ["-c", script, BODY, SECRET], { encoding: "utf8" });
    assert.equal(run.status, 0, run.stderr);
    assert.match(run.stdout, /^t=\d+,v1=[0-9a-f]{64}$/);
    assert.equal(verifyWebhook(run.stdout, BODY, SECRET), true);
    assert.equal(new Client({ apiKey: "bys_ak_x", fetchImpl: fetch }).verifyWebhook(run.stdout, BODY, SECRET), true);
    assert.equal(verifyWebhook(run.stdout, BODY + " ", SECRET), false);
    const back = "import sys; from byourside import verify_webhook; sys.exit(0 if verify_webhook(sys.argv[1], sys.argv[2], sys.argv[3]) else 3)";
    const header = signWebhook(BODY, SECRET);
    assert.equal(spawnSync(PYTHON, ["-c", back, header, BODY, SECRET]).status, 0, "Python verifies a Node signature");
    assert.equal(spawnSync(PYTHON, ["-c", back, header, BODY, "whsec_wrong"]).status, 3);
  });

test("wrong secret, changed body, or an altered signature are rejected", () => {
  const header = signWebhook(BODY, SECRET, T);
  assert.equal(verifyWebhook(header, BODY, "whsec_other", 300, T), false);
  assert.equal(verifyWebhook(header, BODY.replace("c-1", "c-2"), SECRET, 300, T), false);
  const flipped = header.slice(0, -1) + (header.endsWith("0") ? "1" : "0");
  assert.equal(verifyWebhook(flipped, BODY, SECRET, 300, T), false);
  assert.equal(verifyWebhook(`t=${T + 1},v1=${hmac(SECRET, T, BODY)}`, BODY, SECRET, 300, T), false);
  assert.equal(verifyWebhook(header.toUpperCase().replace("T=", "t=").replace("V1=", "v1="), BODY, SECRET, 300, T), true,
    "hex case does not matter");
});

test("the timestamp must be within the tolerance, in either direction", () => {
  const header = signWebhook(BODY, SECRET, T);
  assert.equal(verifyWebhook(header, BODY, SECRET, 300, T + 300), true);
  assert.equal(verifyWebhook(header, BODY, SECRET, 300, T + 301), false);
  assert.equal(verifyWebhook(header, BODY, SECRET, 300, T - 301), false);
  assert.equal(verifyWebhook(header, BODY, SECRET, 1000, T + 900), true);
  assert.equal(verifyWebhook(header, BODY, SECRET, undefined, T + 299), true, "default tolerance is 300 s");
  assert.equal(verifyWebhook(header, BODY, SECRET, undefined, T + 301), false);
  assert.equal(verifyWebhook(signWebhook(BODY, SECRET, T), BODY, SECRET), false, "a 2023 timestamp is stale now");
});

test("any one of several v1 entries may match (secret rotation)", () => {
  const good = hmac(SECRET, T, BODY);
  const other = hmac("whsec_old", T, BODY);
  assert.equal(verifyWebhook(`t=${T},v1=${other},v1=${good}`, BODY, SECRET, 300, T), true);
  assert.equal(verifyWebhook(`t=${T}, v1=${good} ,v1=${other}`, BODY, SECRET, 300, T), true);
  assert.equal(verifyWebhook(`t=${T},v1=${other},v1=deadbeef`, BODY, SECRET, 300, T), false);
  assert.equal(verifyWebhook(`v1=${good},t=${T}`, BODY, SECRET, 300, T), true, "order does not matter");
  assert.equal(verifyWebhook(`t=${T},v0=${good}`, BODY, SECRET, 300, T), false, "only v1 counts");
});

test("malformed input returns false and never throws", () => {
  const good = signWebhook(BODY, SECRET, T);
  const junk = [undefined, null, "", "   ", 42, {}, [], "t=", "v1=abc", `t=abc,v1=${hmac(SECRET, T, BODY)}`,
    `t=-5,v1=${hmac(SECRET, -5, BODY)}`, `t=${T}`, "garbage", "t=1,v1=zz", `t=${T},v1=é`];
  for (const header of junk) assert.equal(verifyWebhook(header, BODY, SECRET, 300, T), false, String(header));
  for (const body of [undefined, null, 5, {}]) assert.equal(verifyWebhook(good, body, SECRET, 300, T), false);
  for (const secret of [undefined, null, "", 5, {}]) assert.equal(verifyWebhook(good, BODY, secret, 300, T), false);
  for (const tolerance of ["abc", true, NaN, {}]) assert.equal(verifyWebhook(good, BODY, SECRET, tolerance, T), false);
  assert.equal(verifyWebhook(Buffer.from(good), BODY, SECRET, 300, T), true, "a Buffer header is accepted");
});
