// byourside: zero-dependency Node client for the Agent Calling API (Node 18+).
//
//   const { Client } = require("byourside");   // or: import { Client } from "byourside";
//   const client = new Client();                 // BYS_API_KEY, BYS_BASE_URL
//   const { callId } = await client.placeCall({ to: "+14155550123", objective: "Book a table for two at 7pm" });
//   const call = await client.waitForCall(callId);
//   console.log(call.status, call.summary, call.extracted);
//
// This CommonJS file is the implementation; index.js is the ESM entry that re-exports it.

"use strict";

const { createHmac, randomUUID, timingSafeEqual } = require("node:crypto");

const VERSION = "0.1.0";
const DEFAULT_BASE_URL = "http://127.0.0.1:8000";
const SIGNATURE_HEADER = "X-BYS-Signature";
const TERMINAL_STATUSES = Object.freeze(["completed", "no_answer", "voicemail", "declined", "failed"]);

const CALLS_PATH = "/v1/agent/calls";
const DEFAULT_LIMIT = 20;
const BACKOFF_BASE_MS = 500;
const BACKOFF_CAP_MS = 8000;
const RETRY_AFTER_CAP_MS = 60000;

// Friendly English message for every error token of the contract (spec section 5),
// the same table as the Python SDK. The server's own text stays in `serverMessage`.
const MESSAGES = Object.freeze({
  invalid_request: "The request was not valid.",
  to_required: "A destination number ('to') is required.",
  objective_required: "An objective is required.",
  invalid_number: "The phone number is not valid E.164 (e.g. +14155550123).",
  invalid_fields:
    "The fields list is not valid: at most 20 items with unique names and type string, boolean or number.",
  invalid_webhook_url: "The webhook URL must be https:// on a public address.",
  destination_blocked: "Calls to this destination are not allowed.",
  caller_id_not_owned: "The caller ID is not a number on this account.",
  unauthorized: "Invalid or missing API key.",
  not_found: "Call not found.",
  idempotency_conflict: "This idempotency key was already used with a different request.",
  call_not_active: "The call is no longer active.",
  invalid_transfer_to:
    "The transfer numbers are not valid: one E.164 number or a list of up to 5 distinct ones, " +
    "each a number this server may call (and not the number being called).",
  rate_limited: "Rate limited: too many calls. Try again shortly.",
  over_minute_cap: "The account's outbound minute allowance is used up.",
  placement_failed: "The carrier refused the call. Please try again later.",
  store_error: "The service is temporarily unavailable (storage). Please try again.",
  invalid_voice: "That voice is not one this server can speak: list them with listVoices().",
  unsupported_language:
    "This server cannot speak that language. Its operator can add a realtime model (BYS_REALTIME) " +
    "or a cloud voice (BYS_TTS) with an LLM brain for more languages.",
  internal_error: "The service is temporarily unavailable. Please try again.",
});

const TEMPORARY_MESSAGE = "The service is temporarily unavailable. Please try again.";

/** Message for an error response: known token, else temporary (5xx / 0), else generic. */
function friendlyMessage(token, status) {
  if (token && Object.prototype.hasOwnProperty.call(MESSAGES, token)) return MESSAGES[token];
  if (status === 0 || status >= 500) return TEMPORARY_MESSAGE;
  if (token) return `Request failed (${token}).`;
  return `Request failed (HTTP ${status}).`;
}

/** Every failure the SDK reports: `message`, `status` (HTTP, 0 for network/local), `code` (wire token). */
class ByoursideError extends Error {
  constructor(message, status = 0, code = null, extra = {}) {
    super(message);
    this.name = "ByoursideError";
    this.message = message;
    this.status = status;
    this.code = code;
    this.serverMessage = extra.serverMessage ?? null;
    this.body = extra.body ?? null;
    this.retryAfter = extra.retryAfter ?? null;
    this.requestId = extra.requestId ?? null;
  }
}

function errorFromResponse(status, body, headers) {
  let token = null;
  let serverMessage = null;
  if (body && typeof body === "object" && !Array.isArray(body)) {
    if (typeof body.error === "string" && body.error) token = body.error;
    if (typeof body.message === "string") serverMessage = body.message;
  }
  return new ByoursideError(friendlyMessage(token, status), status, token || "error", {
    serverMessage,
    body,
    retryAfter: parseRetryAfter(headers?.get?.("retry-after")),
    requestId: headers?.get?.("x-request-id") ?? null,
  });
}

function parseRetryAfter(value) {
  if (value == null || value === "") return null;
  const seconds = Number(value);
  if (Number.isFinite(seconds)) return Math.max(0, seconds);
  const date = Date.parse(value);
  return Number.isFinite(date) ? Math.max(0, (date - Date.now()) / 1000) : null;
}

/** `limit` as an integer clamped to 1..100; non-numeric values fall back to 20. */
function clampLimit(limit) {
  if (limit === undefined || limit === null || typeof limit === "boolean") return DEFAULT_LIMIT;
  const n = typeof limit === "number" ? limit : Number(String(limit).trim() || NaN);
  if (Number.isNaN(n)) return DEFAULT_LIMIT;
  return Math.max(1, Math.min(100, Math.trunc(n)));
}

function env(name) {
  return typeof process !== "undefined" && process.env ? process.env[name] : undefined;
}

const defaultSleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

class Client {
  /**
   * @param {object} [options]
   * @param {string} [options.apiKey]  `bys_ak_...`; default `process.env.BYS_API_KEY`.
   * @param {string} [options.baseUrl] default `BYS_BASE_URL`, then http://127.0.0.1:8000.
   * @param {Function} [options.fetchImpl] a `fetch` (default: the global one).
   * @param {Function} [options.sleep] `ms => Promise`, used between polls and retries.
   * @param {number} [options.maxRetries] retries for 429/5xx/network errors on idempotent requests (default 0).
   * @param {number} [options.timeoutMs] per-request timeout (default 30000; 0 disables).
   */
  constructor(options = {}) {
    const { apiKey, baseUrl, fetchImpl, sleep, maxRetries = 0, timeoutMs = 30000, now } = options || {};
    const key = String(apiKey ?? env("BYS_API_KEY") ?? "").trim();
    if (!key) {
      throw new ByoursideError(
        "No API key: pass apiKey or set the BYS_API_KEY environment variable.",
        0,
        "no_api_key",
      );
    }
    if (!Number.isInteger(maxRetries) || maxRetries < 0) throw new TypeError("maxRetries must be an integer >= 0");
    const base = String((baseUrl && String(baseUrl).trim()) || env("BYS_BASE_URL") || "").trim();
    this.baseUrl = base.replace(/\/+$/, "") || DEFAULT_BASE_URL;
    this.maxRetries = maxRetries;
    this.timeoutMs = timeoutMs;
    const f = fetchImpl ?? globalThis.fetch;
    if (typeof f !== "function") throw new TypeError("No fetch implementation: pass fetchImpl (Node 18+ has one)");
    Object.defineProperty(this, "_apiKey", { value: key, enumerable: false });
    this._fetch = f;
    this._sleep = sleep ?? defaultSleep;
    this._now = now ?? (() => Date.now());
  }

  /**
   * Place a call; resolves to `{callId, status, language, languageSource, voice}`.
   * (ext) `transferTo`: one E.164 number or a list of up to 5, tried in order, of people the call
   * may be handed to when the callee asks for a person; `transferMode`: "cold" (default) or "warm"
   * (the person hears a one-sentence brief first). A refused number is `invalid_transfer_to`.
   */
  async placeCall(params = {}) {
    const {
      to, objective, context, fields, webhookUrl, callerId, voice, language, maxDurationSeconds, metadata,
      voicemailMessage, transferTo, transferMode,
    } = params || {};
    let { idempotencyKey } = params || {};
    const body = {};
    for (const [k, v] of Object.entries({
      to, objective, context, fields, webhookUrl, callerId, voice, language, maxDurationSeconds, metadata,
      voicemailMessage, transferTo, transferMode,
    })) {
      if (v !== undefined && v !== null) body[k] = v;
    }
    if (idempotencyKey == null && this.maxRetries > 0) idempotencyKey = randomUUID();
    return this._request("POST", CALLS_PATH, { body, idempotencyKey, retryable: idempotencyKey != null });
  }

  /** The call object (spec section 4). */
  async getCall(id) {
    return this._request("GET", callPath(id));
  }

  /** Newest calls first (the `calls` array). `limit` is clamped to 1..100; `listCalls(5)` also works. */
  async listCalls(options = {}) {
    const page = await this.listCallsPage(options);
    return Array.isArray(page?.calls) ? page.calls : [];
  }

  /** The whole page `{calls: [...], nextCursor}`. */
  async listCallsPage(options = {}) {
    const { limit, status, cursor } = typeof options === "object" && options !== null ? options : { limit: options };
    const query = new URLSearchParams({ limit: String(clampLimit(limit)) });
    if (status != null) query.set("status", String(status));
    if (cursor != null) query.set("cursor", String(cursor));
    return this._request("GET", `${CALLS_PATH}?${query}`);
  }

  /**
   * (ext) Calls and minutes by day and final status from `from` to `to` (YYYY-MM-DD, UTC, both
   * included; default: this month so far), and this month's cap, used, reserved and left.
   */
  async getUsage({ from, to } = {}) {
    const query = new URLSearchParams();
    if (from != null) query.set("from", String(from));
    if (to != null) query.set("to", String(to));
    const text = query.toString();
    return this._request("GET", `/v1/agent/usage${text ? `?${text}` : ""}`);
  }

  /**
   * (ext) The voices this deployment can speak: `{ voices: [{ name, provider, languages, gender }],
   * default, aliases }`. A call's `voice` may name one of them or an alias (`alloy`, `echo`, ...);
   * anything else is refused with `invalid_voice`.
   */
  async listVoices() {
    return this._request("GET", "/v1/agent/voices");
  }

  /** Cancel a queued call or hang up a running one (a finished call: 409 `call_not_active`). */
  async cancelCall(id) {
    return this._request("POST", `${callPath(id)}/cancel`);
  }

  /**
   * (ext) Erase a finished call's personal data (transcript, recording, summary, extracted values;
   * numbers masked). Idempotent: resolves to the same erased call every time. A running call: 409 `call_active`.
   */
  async deleteCall(id) {
    return this._request("DELETE", callPath(id));
  }

  /**
   * (ext) Place many calls: each of `calls` is `defaults` with its own keys over them. Resolves to
   * the batch with `rejectedRows` ({row, error, message}); `webhookUrl` receives `batch.finished`.
   * Never retried: a second attempt could queue the batch twice.
   */
  async createBatch({ calls, defaults, webhookUrl, metadata } = {}) {
    const body = { calls: Array.isArray(calls) ? calls : [] };
    if (defaults != null) body.defaults = defaults;
    if (webhookUrl != null) body.webhookUrl = webhookUrl;
    if (metadata != null) body.metadata = metadata;
    return this._request("POST", "/v1/agent/batches", { body, retryable: false });
  }

  /** (ext) A batch's progress: status, total, counts of its calls by status. */
  async getBatch(id) {
    return this._request("GET", `/v1/agent/batches/${encodeURIComponent(String(id ?? ""))}`);
  }

  /** (ext) End a batch's waiting calls (they end `canceled`); calls on the line finish. */
  async cancelBatch(id) {
    return this._request("POST", `/v1/agent/batches/${encodeURIComponent(String(id ?? ""))}/cancel`);
  }

  /**
   * Poll until the call is terminal and resolve to it. Rejects with code `timeout`
   * (status 0) when the next poll would fall after the deadline (`timeoutMs: 0`:
   * exactly one poll; `null`: no deadline). `onStatus(call)` runs on every status change.
   */
  async waitForCall(id, { timeoutMs = 180000, intervalMs = 3000, onStatus } = {}) {
    const interval = Math.max(0, Number(intervalMs) || 0);
    const limit = timeoutMs === null ? null : Number(timeoutMs);
    const start = this._now();
    let previous;
    let first = true;
    for (;;) {
      const call = await this.getCall(id);
      const status = call && typeof call === "object" ? call.status : undefined;
      if (onStatus && (first || status !== previous)) await onStatus(call);
      first = false;
      previous = status;
      if (TERMINAL_STATUSES.includes(status)) return call;
      if (limit !== null && (!(limit > 0) || this._now() + interval > start + limit)) {
        throw new ByoursideError(
          `Timed out waiting for call ${id} to finish (last status: ${status}).`,
          0,
          "timeout",
          { body: call },
        );
      }
      await this._sleep(interval);
    }
  }

  async _request(method, path, { body, idempotencyKey, retryable = true } = {}) {
    const headers = {
      Authorization: `Bearer ${this._apiKey}`,
      Accept: "application/json",
      "User-Agent": `byourside-node/${VERSION}`,
    };
    const data = body === undefined ? undefined : JSON.stringify(body);
    if (data !== undefined) headers["Content-Type"] = "application/json";
    if (idempotencyKey != null) headers["Idempotency-Key"] = String(idempotencyKey);
    const attempts = 1 + (retryable ? this.maxRetries : 0);
    for (let attempt = 1; ; attempt++) {
      let response;
      try {
        response = await this._fetchOnce(this.baseUrl + path, { method, headers, body: data });
      } catch (cause) {
        if (cause instanceof ByoursideError) throw cause;
        if (attempt >= attempts) {
          const err = new ByoursideError(TEMPORARY_MESSAGE, 0, "network_error");
          err.cause = cause;
          throw err;
        }
        await this._sleep(backoff(attempt - 1));
        continue;
      }
      const status = Number(response.status) || 0;
      const parsed = await readJson(response);
      if (status >= 200 && status < 300) return parsed;
      const error = errorFromResponse(status, parsed, response.headers);
      const transient = status === 0 || status === 429 || status >= 500;
      if (!transient || error.code === "over_minute_cap" || attempt >= attempts) throw error;
      await this._sleep(error.retryAfter != null ? Math.min(error.retryAfter * 1000, RETRY_AFTER_CAP_MS) : backoff(attempt - 1));
    }
  }

  async _fetchOnce(url, init) {
    if (!(this.timeoutMs > 0) || typeof AbortController === "undefined") return this._fetch(url, init);
    const controller = new AbortController();
    const timer = setTimeout(() => controller.abort(), this.timeoutMs);
    try {
      return await this._fetch(url, { ...init, signal: controller.signal });
    } finally {
      clearTimeout(timer);
    }
  }
}

function backoff(attempt) {
  return Math.min(BACKOFF_CAP_MS, BACKOFF_BASE_MS * 2 ** attempt);
}

function callPath(id) {
  if (id === undefined || id === null || String(id) === "") {
    throw new ByoursideError("A call id is required.", 0, "invalid_request");
  }
  return `${CALLS_PATH}/${encodeURIComponent(String(id))}`;
}

async function readJson(response) {
  let text;
  try {
    text = typeof response.text === "function" ? await response.text() : "";
  } catch {
    return null;
  }
  if (!text) return null;
  try {
    return JSON.parse(text);
  } catch {
    return null;
  }
}

function toBuffer(value) {
  if (typeof value === "string") return Buffer.from(value, "utf8");
  if (Buffer.isBuffer(value)) return value;
  if (value instanceof Uint8Array) return Buffer.from(value.buffer, value.byteOffset, value.byteLength);
  if (value instanceof ArrayBuffer) return Buffer.from(value);
  return null;
}

function digest(secret, timestamp, rawBody) {
  return createHmac("sha256", secret).update(`${timestamp}.`, "utf8").update(rawBody).digest("hex");
}

/** Build an `X-BYS-Signature` value for `rawBody` (for servers and tests). */
function signWebhook(rawBody, secret, timestamp = Math.floor(Date.now() / 1000)) {
  const t = String(Math.trunc(timestamp));
  return `t=${t},v1=${digest(toBuffer(secret), t, toBuffer(rawBody))}`;
}

/**
 * True if `header` (`t=<unix seconds>,v1=<hex>[,v1=<hex>...]`) is a valid, fresh
 * HMAC-SHA256 signature of the exact raw body under `secret`. Never throws.
 */
function verifyWebhook(header, rawBody, secret, toleranceSec = 300, nowSec) {
  try {
    if (Buffer.isBuffer(header) || header instanceof Uint8Array) header = Buffer.from(header).toString("utf8");
    if (typeof header !== "string" || !header.trim()) return false;
    const key = toBuffer(secret);
    const body = toBuffer(rawBody);
    if (!key || key.length === 0 || !body) return false;
    let timestamp = null;
    const signatures = [];
    for (const part of header.split(",")) {
      const i = part.indexOf("=");
      if (i < 0) continue;
      const name = part.slice(0, i).trim();
      const value = part.slice(i + 1).trim();
      if (name === "t" && timestamp === null) timestamp = value;
      else if (name === "v1" && value) signatures.push(value);
    }
    if (timestamp === null || !/^[0-9]+$/.test(timestamp) || signatures.length === 0) return false;
    const tolerance = Number(toleranceSec);
    if (typeof toleranceSec === "boolean" || !Number.isFinite(tolerance)) return false;
    const now = nowSec === undefined ? Date.now() / 1000 : Number(nowSec);
    if (Math.abs(now - Number(timestamp)) > tolerance) return false;
    const expected = Buffer.from(digest(key, timestamp, body), "utf8");
    let valid = false;
    for (const signature of signatures) {
      const candidate = Buffer.from(signature.toLowerCase(), "utf8");
      if (candidate.length === expected.length && timingSafeEqual(candidate, expected)) valid = true;
    }
    return valid;
  } catch {
    return false;
  }
}

Client.prototype.verifyWebhook = verifyWebhook;


module.exports = {
  VERSION,
  DEFAULT_BASE_URL,
  SIGNATURE_HEADER,
  TERMINAL_STATUSES,
  TEMPORARY_MESSAGE,
  friendlyMessage,
  ByoursideError,
  clampLimit,
  Client,
  signWebhook,
  verifyWebhook,
};
module.exports.default = Client;
