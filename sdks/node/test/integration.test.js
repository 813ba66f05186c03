// The Node SDK against the real `byourside serve` (simulator telephony, offline agent,
// SQLite in a temporary directory, simulated time at full speed), over loopback HTTP.

import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, openSync, readFileSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

import { ByoursideError, Client } from "../index.js";

const BYOURSIDE = fileURLToPath(new URL("../../../.venv/bin/byourside", import.meta.url));
const skip = existsSync(BYOURSIDE) ? false : "no .venv/bin/byourside (run `make setup`)";

function freePort() {
  return new Promise((resolve, reject) => {
    const probe = createServer();
    probe.once("error", reject);
    probe.listen(0, "127.0.0.1", () => {
      const { port } = probe.address();
      probe.close(() => resolve(port));
    });
  });
}

/** A running `byourside serve` on a free loopback port with its own data directory. */
async function startServer(...args) {
  const dataDir = mkdtempSync(join(tmpdir(), "bys-node-sdk-"));
  const port = await freePort();
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith("BYS_")));
  Object.assign(env, {
    BYS_DATA_DIR: dataDir,
    BYS_PORT: String(port),
    BYS_HOST: "127.0.0.1",
    BYS_SIM_TIME_SCALE: "0",
    BYS_POLL_SECONDS: "0.05",
    BYS_HEARTBEAT_SECONDS: "0.2",
    BYS_LOG_LEVEL: "info",
  });
  const log = openSync(join(dataDir, "server.log"), "w");
  const proc = spawn(BYOURSIDE, ["serve", ...args], { env, stdio: ["ignore", log, log] });
  const running = { proc, dataDir, env, baseUrl: `http://127.0.0.1:${port}` };
  running.log = () => readFileSync(join(dataDir, "server.log"), "utf8");
  await waitHealthy(running, 120000); // start-up (imports, migrations) is slow on a loaded machine
  running.apiKey = cli(env, "keys", "create", "--account", "default").trim().split("\n").pop();
  assert.match(running.apiKey, /^bys_ak_/);
  return running;
}

async function stopServer(running) {
  if (!running) return;
  const { proc } = running;
  if (proc.exitCode === null && proc.signalCode === null) {
    const exited = new Promise((resolve) => proc.once("exit", resolve));
    proc.kill("SIGTERM");
    const timer = setTimeout(() => proc.kill("SIGKILL"), 20000);
    await exited;
    clearTimeout(timer);
  }
  rmSync(running.dataDir, { recursive: true, force: true });
}

function cli(env, ...args) {
  const run = spawnSync(BYOURSIDE, args, { env, encoding: "utf8", timeout: 60000 });
  assert.equal(run.status, 0, `byourside ${args.join(" ")}: ${run.stderr}`);
  return run.stdout;
}

async function waitHealthy(running, deadlineMs) {
  const until = Date.now() + deadlineMs;
  while (Date.now() < until) {
    if (running.proc.exitCode !== null) throw new Error(`server exited early:\n${running.log()}`);
    try {
      const res = await fetch(`${running.baseUrl}/healthz`);
      if (res.status === 200) return;
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`server did not become healthy:\n${running.log()}`);
}

let server; // with workers: calls run to the end on the simulator
let idle; // --no-workers: calls stay queued, so cancel and wait deadlines are deterministic

before(async () => {
  if (skip) return;
  [server, idle] = await Promise.all([startServer(), startServer("--no-workers")]);
});

after(async () => {
  await Promise.all([stopServer(server), stopServer(idle)]);
});

function client(extra = {}, on = server) {
  return new Client({ apiKey: on.apiKey, baseUrl: on.baseUrl, ...extra });
}

test("place a call to the simulator and wait until it is completed", { skip }, async () => {
  const c = client();
  const placed = await c.placeCall({
    to: "+14155550123",
    objective: "Confirm the dinner booking for two at 7pm",
    context: "Booking under the name Rivera",
    fields: [{ name: "confirmed", type: "boolean", description: "Was the booking confirmed?" }],
    metadata: { ticket: "node-1" },
    idempotencyKey: "node-sdk-integration-1",
  });
  assert.equal(placed.status, "queued");
  assert.ok(placed.callId);

  const seen = [];
  const call = await c.waitForCall(placed.callId, { timeoutMs: 60000, intervalMs: 100, onStatus: (x) => seen.push(x.status) });
  assert.equal(call.status, "completed");
  assert.equal(call.callId, placed.callId);
  assert.equal(call.id, placed.callId);
  assert.ok(call.summary, "a finished call has a summary");
  assert.match(call.transcript, /^Agent: /m);
  assert.ok(Object.prototype.hasOwnProperty.call(call.extracted, "confirmed"));
  assert.deepEqual(call.metadata, { ticket: "node-1" });
  assert.equal(seen.at(-1), "completed");

  const again = await c.getCall(placed.callId);
  assert.equal(again.summary, call.summary);

  const replay = await c.placeCall({
    to: "+14155550123",
    objective: "Confirm the dinner booking for two at 7pm",
    context: "Booking under the name Rivera",
    fields: [{ name: "confirmed", type: "boolean", description: "Was the booking confirmed?" }],
    metadata: { ticket: "node-1" },
    idempotencyKey: "node-sdk-integration-1",
  });
  assert.equal(replay.callId, placed.callId, "the same idempotency key never places a second call");

  const listed = await c.listCalls({ limit: 500, status: "completed" });
  assert.ok(Array.isArray(listed));
  assert.ok(listed.some((x) => x.callId === placed.callId));

  const cancel = await c.cancelCall(placed.callId).catch((e) => e);
  assert.ok(cancel instanceof ByoursideError);
  assert.equal(cancel.code, "call_not_active");
  assert.equal(cancel.status, 409);
});

test("transferTo hands the callee who asks for a person to the first number that answers", { skip }, async () => {
  const c = client();
  const placed = await c.placeCall({
    to: "+14155550134", // the simulator's callee who asks for a real person
    objective: "Ask when the policy renewal is due.",
    transferTo: ["+14155550161", "+14155550100"], // busy, then a line that answers
    transferMode: "warm",
  });
  const call = await c.waitForCall(placed.callId, { timeoutMs: 60000, intervalMs: 100 });
  assert.equal(call.status, "completed");
  assert.equal(call.endReason, "transferred");
  assert.deepEqual(call.transferTo, ["+14155550161", "+14155550100"]);
  assert.equal(call.transferMode, "warm");
  assert.match(call.transcript, /real person/);

  const refused = await c.placeCall({ to: "+14155550123", objective: "Hi", transferTo: "+14155550123" })
    .catch((e) => e);
  assert.ok(refused instanceof ByoursideError);
  assert.equal(refused.code, "invalid_transfer_to");
  assert.equal(refused.status, 400);
});

test("getUsage reports the account's calls by day and status and the month's cap", { skip }, async () => {
  const c = client({}, idle);
  const today = new Date().toISOString().slice(0, 10);
  const usage = await c.getUsage({ from: today, to: today });
  assert.equal(usage.from, today);
  assert.deepEqual(usage.days.map((d) => d.date), [today]);
  assert.equal(typeof usage.month.capMinutes, "number");
  assert.ok(usage.month.remainingMinutes <= usage.month.capMinutes);
  const bad = await c.getUsage({ from: "tomorrow" }).catch((e) => e);
  assert.ok(bad instanceof ByoursideError);
  assert.equal(bad.code, "invalid_request");
  assert.equal(bad.status, 400);
});

test("listVoices names the voices placeCall accepts", { skip }, async () => {
  const c = client({}, idle);
  const catalogue = await c.listVoices();
  // the local voices: the packaged Piper voice in English, espeak-ng in the other languages
  assert.deepEqual(catalogue.voices.map((v) => v.name), ["joe", "espeak"]);
  assert.deepEqual(catalogue.voices[0], { name: "joe", provider: "piper", languages: ["en"], gender: "male" });
  assert.equal(catalogue.default, "alloy");
  assert.ok(catalogue.aliases.includes("shimmer"));
  const placed = await c.placeCall({ to: "+14155550123", objective: "Ask for the opening hours.", voice: "joe" });
  assert.equal(placed.voice, "joe");
  const refused = await c.placeCall({ to: "+14155550123", objective: "Hi", voice: "Bob" }).catch((e) => e);
  assert.ok(refused instanceof ByoursideError);
  assert.equal(refused.code, "invalid_voice");
  assert.equal(refused.status, 400);
});

test("the server's error tokens arrive as ByoursideError code and status", { skip }, async () => {
  const c = client();
  const invalid = await c.placeCall({ to: "4155550123", objective: "Hi" }).catch((e) => e);
  assert.equal(invalid.code, "invalid_number");
  assert.equal(invalid.status, 400);
  assert.equal(invalid.message, "The phone number is not valid E.164 (e.g. +14155550123).");
  assert.ok(invalid.requestId);

  const blocked = await c.placeCall({ to: "+19001234567", objective: "Hi" }).catch((e) => e);
  assert.equal(blocked.code, "destination_blocked");

  const missing = await c.getCall("no such call/../x").catch((e) => e);
  assert.equal(missing.code, "not_found");
  assert.equal(missing.status, 404);

  const noObjective = await c.placeCall({ to: "+14155550123", objective: "  " }).catch((e) => e);
  assert.equal(noObjective.code, "objective_required");

  const stranger = await client({ apiKey: "bys_ak_not_a_key" }).listCalls().catch((e) => e);
  assert.equal(stranger.code, "unauthorized");
  assert.equal(stranger.status, 401);
});

test("cancelling a queued call ends it with endReason canceled", { skip }, async () => {
  const c = client({}, idle);
  const placed = await c.placeCall({ to: "+14155550123", objective: "Ask about opening hours" });
  const cancelled = await c.cancelCall(placed.callId);
  assert.equal(cancelled.callId, placed.callId);
  const done = await c.waitForCall(placed.callId, { timeoutMs: 30000, intervalMs: 100 });
  assert.equal(done.endReason, "canceled");
  assert.ok(["failed", "no_answer", "declined", "completed"].includes(done.status), done.status);
  const again = await c.cancelCall(placed.callId).catch((e) => e);
  assert.equal(again.code, "call_not_active");
});

test("createBatch reports refused rows; getBatch and cancelBatch follow the batch", { skip }, async () => {
  const c = client({}, idle);
  const batch = await c.createBatch({
    defaults: { objective: "Ask about opening hours" },
    calls: [{ to: "+14155550123", metadata: { row: "1" } }, { to: "415 555 0123" }],
  });
  assert.equal(batch.total, 1);
  assert.deepEqual(batch.rejectedRows.map((r) => [r.row, r.error]), [[2, "invalid_number"]]);
  assert.equal((await c.getBatch(batch.batchId)).counts.queued, 1);
  const cancelled = await c.cancelBatch(batch.batchId);
  assert.equal(cancelled.status, "canceled");
  assert.equal(cancelled.counts.failed, 1);
  const missing = await c.getBatch("no-such-batch").catch((e) => e);
  assert.equal(missing.status, 404);
});

test("waitForCall gives up with code timeout while a call stays queued", { skip }, async () => {
  const c = client({}, idle);
  const placed = await c.placeCall({ to: "+14155550123", objective: "Nobody will dial this" });
  const seen = [];
  const err = await c.waitForCall(placed.callId, { timeoutMs: 300, intervalMs: 100, onStatus: (x) => seen.push(x.status) })
    .catch((e) => e);
  assert.ok(err instanceof ByoursideError);
  assert.equal(err.code, "timeout");
  assert.equal(err.status, 0);
  assert.deepEqual(seen, ["queued"]);
  await c.cancelCall(placed.callId);
});

test("a server that is not listening is a network_error with status 0", { skip }, async () => {
  const port = await freePort();
  const err = await new Client({ apiKey: server.apiKey, baseUrl: `http://127.0.0.1:${port}` }).getCall("x")
    .catch((e) => e);
  assert.ok(err instanceof ByoursideError);
  assert.equal(err.code, "network_error");
  assert.equal(err.status, 0);
});
