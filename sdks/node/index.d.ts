// Type declarations for the byourside Node SDK (the Agent Calling API, spec section 9).

export type CallStatus =
  | "queued" | "dialing" | "in_progress"
  | "completed" | "no_answer" | "voicemail" | "declined" | "failed";

export type FieldType = "string" | "boolean" | "number";

export type TransferMode = "cold" | "warm";

export interface FieldSpec {
  name: string;
  type?: FieldType;
  description?: string;
}

export interface PlaceCallParams {
  to: string;
  objective: string;
  context?: string;
  fields?: FieldSpec[];
  webhookUrl?: string;
  callerId?: string;
  voice?: string;
  language?: string;
  /** (ext) hard cap on the call, seconds. */
  maxDurationSeconds?: number;
  /** (ext) small string map echoed back on the call and in webhooks. */
  metadata?: Record<string, string>;
  /** (ext) left after the tone when an answering machine picks up. */
  voicemailMessage?: string;
  /**
   * (ext) people the call may be handed to when the callee asks for a person: one E.164 number or
   * a list of up to 5, tried in order; each passes the same checks as `to` (`invalid_transfer_to`).
   */
  transferTo?: string | string[];
  /** (ext) "cold" (default): connect at once; "warm": the person hears a one-sentence brief first. */
  transferMode?: TransferMode;
  /** (ext) sent as the Idempotency-Key header; generated when maxRetries > 0. */
  idempotencyKey?: string;
}

export interface PlacedCall {
  callId: string;
  status: "queued";
  language: string;
  languageSource: "explicit" | "inferred" | "auto";
  voice: string;
  [key: string]: unknown;
}

export interface Turn {
  speaker: "agent" | "contact";
  text: string;
  startMs: number | null;
  endMs: number | null;
}

export interface Call {
  id: string;
  callId: string;
  status: CallStatus;
  to: string;
  from: string | null;
  objective: string;
  context: string | null;
  fields: FieldSpec[] | null;
  language: string | null;
  languageSource: string | null;
  voice: string | null;
  summary: string | null;
  extracted: Record<string, string | number | boolean | null> | null;
  transcript: string | null;
  turns?: Turn[] | null;
  recordingUrl: string | null;
  createdAt: string;
  startedAt: string | null;
  endedAt: string | null;
  durationSeconds: number | null;
  endReason?: string | null;
  /** (ext) the request's transfer numbers, or null. */
  transferTo?: string[] | null;
  transferMode?: TransferMode | null;
  objectiveMet?: boolean | null;
  metadata?: Record<string, string> | null;
  [key: string]: unknown;
}

export interface CallPage {
  calls: Call[];
  nextCursor: string | null;
}

export interface ListCallsOptions {
  /** 1..100, clamped; non-numeric falls back to 20. */
  limit?: number | string;
  /** (ext) only calls in this status. */
  status?: CallStatus;
  /** (ext) nextCursor of the previous page. */
  cursor?: string;
}

export interface WaitOptions {
  /** Default 180000; 0 polls once; null waits forever. */
  timeoutMs?: number | null;
  /** Default 3000. */
  intervalMs?: number;
  /** Runs on the first poll and whenever the status changes. */
  onStatus?: (call: Call) => unknown;
}

export type FetchLike = (url: string, init?: {
  method?: string;
  headers?: Record<string, string>;
  body?: string;
  signal?: AbortSignal;
}) => Promise<{
  status: number;
  text(): Promise<string>;
  headers?: { get(name: string): string | null };
}>;

export interface ClientOptions {
  /** Default: process.env.BYS_API_KEY. Missing -> ByoursideError code "no_api_key". */
  apiKey?: string;
  /** Default: process.env.BYS_BASE_URL, then http://127.0.0.1:8000. */
  baseUrl?: string;
  fetchImpl?: FetchLike;
  sleep?: (ms: number) => Promise<unknown>;
  /** (ext) retries for 429/5xx/network errors on idempotent requests; default 0. */
  maxRetries?: number;
  /** (ext) per-request timeout; default 30000, 0 disables. */
  timeoutMs?: number;
}

export declare class ByoursideError extends Error {
  constructor(message: string, status?: number, code?: string | null, extra?: {
    serverMessage?: string | null; body?: unknown; retryAfter?: number | null; requestId?: string | null;
  });
  readonly name: "ByoursideError";
  message: string;
  /** HTTP status; 0 for network errors, timeouts and local errors. */
  status: number;
  /** Wire token (unauthorized, invalid_number ...), "error" if the server sent none, or
   *  a local code: no_api_key, network_error, timeout, invalid_request. */
  code: string | null;
  serverMessage: string | null;
  body: unknown;
  /** Seconds, from Retry-After. */
  retryAfter: number | null;
  requestId: string | null;
}

export interface UsageFigures {
  calls: number;
  seconds: number;
  minutes: number;
}

export interface UsageDay extends UsageFigures {
  date: string;
  byStatus: Record<string, UsageFigures>;
}

/** GET /v1/agent/usage (ext). */
export interface Usage {
  from: string;
  to: string;
  totals: UsageFigures & { byStatus: Record<string, UsageFigures> };
  days: UsageDay[];
  month: {
    month: string;
    capMinutes: number;
    usedMinutes: number;
    reservedMinutes: number;
    remainingMinutes: number;
    activeCalls: number;
  };
}

/** One voice of GET /v1/agent/voices (ext). */
export interface Voice {
  name: string;
  provider: string;
  /** BCP-47 primary subtags; `["*"]`: every language the model speaks. */
  languages: string[];
  gender: string | null;
}

/** GET /v1/agent/voices (ext). */
export interface VoiceCatalogue {
  voices: Voice[];
  default: string;
  /** The contract's voice names, accepted everywhere and mapped to a voice of the provider. */
  aliases: string[];
}

export declare class Client {
  constructor(options?: ClientOptions);
  readonly baseUrl: string;
  readonly maxRetries: number;
  readonly timeoutMs: number;
  placeCall(params: PlaceCallParams): Promise<PlacedCall>;
  getCall(id: string): Promise<Call>;
  listCalls(options?: ListCallsOptions | number): Promise<Call[]>;
  listCallsPage(options?: ListCallsOptions | number): Promise<CallPage>;
  cancelCall(id: string): Promise<Call>;
  /** (ext) Erase a finished call's personal data; idempotent. A running call: 409 `call_active`. */
  deleteCall(id: string): Promise<Call>;
  /** (ext) Place many calls: each row is `defaults` with its own keys over them. Never retried. */
  createBatch(params: {
    calls: Array<Record<string, unknown>>;
    defaults?: Record<string, unknown>;
    webhookUrl?: string;
    metadata?: Record<string, string>;
  }): Promise<Batch & { rejectedRows: Array<{ row: number; error: string; message: string }> }>;
  /** (ext) A batch's progress. */
  getBatch(id: string): Promise<Batch>;
  /** (ext) End a batch's waiting calls; calls on the line finish. */
  cancelBatch(id: string): Promise<Batch>;
  /** (ext) Calls and minutes by day and status for a period, and this month's minute cap. */
  getUsage(options?: { from?: string; to?: string }): Promise<Usage>;
  /** (ext) The voices this deployment can speak; a call's `voice` names one of them or an alias. */
  listVoices(): Promise<VoiceCatalogue>;
  waitForCall(id: string, options?: WaitOptions): Promise<Call>;
  verifyWebhook: typeof verifyWebhook;
}

export declare function verifyWebhook(
  header: string | Uint8Array | null | undefined,
  rawBody: string | Uint8Array | ArrayBuffer,
  secret: string | Uint8Array,
  toleranceSec?: number,
  nowSec?: number,
): boolean;

export declare function signWebhook(rawBody: string | Uint8Array, secret: string | Uint8Array, timestamp?: number): string;
export declare function friendlyMessage(token: string | null | undefined, status: number): string;
export declare function clampLimit(limit: unknown): number;

export declare const VERSION: string;
export declare const DEFAULT_BASE_URL: string;
export declare const SIGNATURE_HEADER: "X-BYS-Signature";
export declare const TEMPORARY_MESSAGE: string;
export declare const TERMINAL_STATUSES: readonly CallStatus[];

export default Client;

/** (ext) A batch of calls (POST /v1/agent/batches). */
export interface Batch {
  batchId: string;
  status: "running" | "finished" | "canceled";
  total: number;
  rejected: number;
  counts: Record<string, number>;
  webhookUrl: string | null;
  metadata: Record<string, string>;
  createdAt: string;
  canceledAt: string | null;
  finishedAt: string | null;
}
