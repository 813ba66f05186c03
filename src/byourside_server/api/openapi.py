"""The OpenAPI document: request bodies, parameters, every status an operation answers with,
response bodies and headers, and who needs the Bearer key.

Validation itself lives in requests.py (it must answer the spec's exact tokens);
this document describes the same rules for clients and for schemathesis, which
checks every answer against it (tests/e2e/test_openapi_fuzz.py). FastAPI
generates the skeleton from the routes; ``openapi_document`` makes it exact.
"""

from __future__ import annotations

from typing import Any

from byourside_server.api.requests import (
    MAX_CONTEXT,
    MAX_DURATION,
    MAX_FIELD_DESCRIPTION,
    MAX_FIELDS,
    MAX_METADATA_KEY,
    MAX_METADATA_KEYS,
    MAX_METADATA_VALUE,
    MAX_OBJECTIVE,
    MAX_URL,
    MAX_VOICE,
    MAX_VOICEMAIL_MESSAGE,
    MIN_DURATION,
)
from byourside_server.domain import CallStatus


def _nullable(schema: dict[str, Any]) -> dict[str, Any]:
    return {**schema, "type": [schema["type"], "null"]}


_TEXT = {"type": "string", "pattern": r"\S"}  # not empty, not only whitespace

CALL_REQUEST_SCHEMA = {
    "type": "object",
    "required": ["to", "objective"],
    "properties": {
        "to": {**_TEXT, "description": "Destination, strict E.164", "example": "+14155550123"},
        "objective": {**_TEXT, "maxLength": MAX_OBJECTIVE, "description": "What the call should achieve"},
        "context": _nullable({"type": "string", "maxLength": MAX_CONTEXT,
                              "description": "Background for the AI, never read out"}),
        "voicemailMessage": _nullable({"type": "string", "maxLength": MAX_VOICEMAIL_MESSAGE,
                                       "description": "(ext) Message left after the tone when voicemail answers; omitted: hang up"}),
        "fields": _nullable({
            "type": "array",
            "maxItems": MAX_FIELDS,
            "description": "Values to extract; names must be unique",
            "items": {
                "type": "object",
                "required": ["name"],
                "properties": {
                    "name": {"type": "string", "pattern": "^[A-Za-z_][A-Za-z0-9_]{0,63}$"},
                    "type": _nullable({"type": "string", "enum": ["string", "boolean", "number", None]}),
                    "description": _nullable({"type": "string", "maxLength": MAX_FIELD_DESCRIPTION}),
                },
            },
        }),
        "webhookUrl": _nullable({"type": "string", "maxLength": MAX_URL,
                                 "description": "https:// URL on a public address"}),
        "callerId": _nullable({"type": "string", "maxLength": 32, "description": "E.164 number owned by the account"}),
        "voice": _nullable({"type": "string", "maxLength": MAX_VOICE, "pattern": "^[A-Za-z0-9_.:-]+$"}),
        "language": _nullable({"type": "string", "maxLength": 35,
                               "pattern": "^([Aa][Uu][Tt][Oo]|[A-Za-z]{2,3}(-[A-Za-z0-9]{2,8}){0,3})?$",
                               "description": "BCP-47 tag such as en-US, or 'auto'"}),
        "maxDurationSeconds": _nullable({"type": "integer", "minimum": MIN_DURATION, "maximum": MAX_DURATION}),
        "metadata": _nullable({
            "type": "object",
            "maxProperties": MAX_METADATA_KEYS,
            "propertyNames": {"minLength": 1, "maxLength": MAX_METADATA_KEY},
            "additionalProperties": {"type": "string", "maxLength": MAX_METADATA_VALUE},
        }),
        "scheduledAt": _nullable({"type": "string", "format": "date-time",
                                  "description": "(ext) RFC 3339; the call stays queued until then (at most 90 days ahead)"}),
        "callingHours": _nullable({"type": "string", "enum": ["hold", "strict", None],
                                   "description": "(ext) outside the callee's calling hours: hold the call, or refuse it"}),
        "transferTo": {"type": ["string", "array", "null"], "maxItems": 5, "items": {"type": "string"},
                       "description": "(ext) E.164 number, or a list, of people the call may be handed to"},
        "transferMode": _nullable({"type": "string", "enum": ["cold", "warm", None],
                                   "description": "(ext) cold: connect at once; warm: the AI briefs the person first"}),
        "retry": _nullable({
            "type": "object",
            "description": "(ext) call again after these outcomes",
            "additionalProperties": False,
            "properties": {
                "on": {"type": "array", "minItems": 1,
                       "items": {"type": "string", "enum": ["no_answer", "busy", "voicemail", "failed"]}},
                "maxAttempts": {"type": "integer", "minimum": 1, "maximum": 10},
                "backoffMinutes": {"oneOf": [
                    {"type": "integer", "minimum": 1, "maximum": 10_080},
                    {"type": "array", "minItems": 1, "maxItems": 10,
                     "items": {"type": "integer", "minimum": 1, "maximum": 10_080}}]},
            },
        }),
    },
}

_STRING_OR_NULL = {"type": ["string", "null"]}
_TURN = {
    "type": "object",
    "required": ["speaker", "text", "startMs", "endMs"],
    "properties": {"speaker": {"type": "string", "enum": ["agent", "contact"]}, "text": {"type": "string"},
                   "startMs": {"type": "integer"}, "endMs": {"type": "integer"}, "interrupted": {"type": "boolean"}},
}
CALL_SCHEMA = {
    "type": "object",
    "required": ["id", "callId", "status", "to", "from", "objective", "fields", "language", "voice", "createdAt",
                 "metadata"],
    "properties": {
        "id": {"type": "string"},
        "callId": {"type": "string"},
        "status": {"type": "string", "enum": [s.value for s in CallStatus]},
        "to": {"type": "string"},
        "from": {"type": "string"},
        "objective": {"type": "string"},
        "context": _STRING_OR_NULL,
        "fields": {"type": "array", "items": {"type": "object", "required": ["name"]}},
        "language": {"type": "string"},
        "languageSource": {"type": "string"},
        "voice": {"type": "string"},
        "summary": _STRING_OR_NULL,
        "extracted": {"type": ["object", "null"]},
        "transcript": _STRING_OR_NULL,
        "turns": {"type": ["array", "null"], "items": _TURN},
        "recordingUrl": _STRING_OR_NULL,
        "createdAt": {"type": "string"},
        "startedAt": _STRING_OR_NULL,
        "endedAt": _STRING_OR_NULL,
        "durationSeconds": {"type": ["integer", "null"]},
        "endReason": _STRING_OR_NULL,
        "objectiveMet": {"type": ["boolean", "null"]},
        "metadata": {"type": "object", "additionalProperties": {"type": "string"}},
        "voicemailMessage": _STRING_OR_NULL,
        "evidence": {"type": ["object", "null"]},
        "latency": {},
        "answeredBy": {"type": ["string", "null"], "enum": ["human", "machine", "ivr", "unknown", None]},
        "answeredByEvidence": {"type": ["object", "null"]},
        "maxDurationSeconds": {"type": "integer"},
        "cancelRequested": {"type": "boolean"},
        "scheduledAt": _STRING_OR_NULL,
        "heldUntil": _STRING_OR_NULL,
        "holdReason": {"type": ["string", "null"], "enum": ["scheduled", "calling_hours", "retry_backoff", "minute_cap", None]},
        "optOut": {"type": "boolean"},
        "retry": {"type": ["object", "null"]},
        "attempt": {"type": "integer"},
        "attemptOf": _STRING_OR_NULL,
        "attempts": {"type": ["array", "null"], "items": {"type": "string"}},
        "batchId": _STRING_OR_NULL,
        "erasedAt": _STRING_OR_NULL,
        "transferTo": {"type": ["array", "null"], "items": {"type": "string"}},
        "transferMode": {"type": ["string", "null"], "enum": ["cold", "warm", None]},
    },
}
CREATED_SCHEMA = {
    "type": "object",
    "required": ["callId", "status"],
    "properties": {
        "callId": {"type": "string"},
        "status": {"type": "string", "enum": [s.value for s in CallStatus]},
        "language": {"type": "string"},
        "languageSource": {"type": "string"},
        "voice": {"type": "string"},
    },
}
ERROR_SCHEMA = {
    "type": "object",
    "required": ["error", "message"],
    "properties": {"error": {"type": "string", "pattern": "^[a-z_]+$"}, "message": {"type": "string"}},
}

_ERROR_DESCRIPTIONS = {
    400: "invalid_request, to_required, objective_required, invalid_number, invalid_fields, invalid_webhook_url, "
         "destination_blocked, invalid_voice (ext), invalid_transfer_to (ext), unsupported_language (ext)",
    401: "unauthorized: no, malformed, unknown or revoked Bearer key",
    403: "caller_id_not_owned, destination_suppressed (ext)",
    404: "not_found",
    405: "invalid_request: method not allowed (Allow lists the methods)",
    409: "idempotency_conflict, call_not_active, outside_calling_hours (ext, with Retry-After), call_active (ext)",
    429: "rate_limited, over_minute_cap (Retry-After gives the seconds to wait)",
    502: "placement_failed",
    503: "store_error: the database is unavailable; retry",
}


def _error(status: int) -> dict[str, Any]:
    response: dict[str, Any] = {"description": _ERROR_DESCRIPTIONS[status],
                                "content": {"application/json": {"schema": ERROR_SCHEMA}}}
    if status == 429:
        response["headers"] = {"Retry-After": {"schema": {"type": "string", "pattern": "^[0-9]+$"}, "required": True}}
    return response


# Kept for the routes' ``responses=``; openapi_document replaces them per operation.
ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {status: _error(status) for status in _ERROR_DESCRIPTIONS}

_ALWAYS = (400, 401, 404, 405, 503)  # any /v1 operation: bad input, auth, unknown id, method, store
_JSON = "application/json"


def _ok(schema: dict[str, Any], description: str = "OK", media: str = _JSON, **extra: Any) -> dict[str, Any]:
    return {"description": description, "content": {media: {"schema": schema}}, **extra}


def _call_id() -> dict[str, Any]:
    return {"name": "call_id", "in": "path", "required": True, "schema": {"type": "string"}}


def _query(name: str, schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"name": name, "in": "query", "required": False, "schema": schema, "description": description}


_BEARER = [{"bearerAuth": []}]
_OPERATIONS: dict[tuple[str, str], dict[str, Any]] = {
    ("/healthz", "get"): {
        "security": [],
        "responses": {
            "200": _ok({"type": "object", "required": ["ok", "version"],
                        "properties": {"ok": {"const": True}, "version": {"type": "string"}}}),
            "503": _ok({"type": "object", "required": ["ok"], "properties": {"ok": {"const": False}}},
                       "The database is unavailable"),
        },
    },
    ("/metrics", "get"): {
        "security": [],
        "responses": {
            "200": _ok({"type": "string"}, "Prometheus text exposition", "text/plain"),
            "401": {**_error(401), "description": "BYS_METRICS_TOKEN is set and the request does not carry it"},
            "503": _error(503),
        },
    },
    ("/v1/agent/calls", "post"): {
        "security": _BEARER,
        "parameters": [{"name": "Idempotency-Key", "in": "header", "required": False,
                        "schema": {"type": "string", "minLength": 1, "maxLength": 255, "pattern": "^[\\x21-\\x7e]+$"}}],
        "responses": {
            "201": _ok(CREATED_SCHEMA, "Queued (or, with Idempotent-Replayed: true, the first answer replayed)",
                       headers={"Idempotent-Replayed": {"schema": {"type": "string", "enum": ["true"]}}}),
            **{str(s): _error(s) for s in (*_ALWAYS, 403, 409, 429, 502)},
        },
    },
    ("/v1/agent/calls", "get"): {
        "security": _BEARER,
        "parameters": [
            _query("limit", {"type": "string"}, "1-100 (default 20); out-of-range values are clamped"),
            _query("cursor", {"type": "string"}, "nextCursor of the previous page"),
            _query("status", {"type": "string", "enum": ["", *(s.value for s in CallStatus)]},
                   "only calls in this status (empty: all)"),
        ],
        "responses": {
            "200": _ok({"type": "object", "required": ["calls", "nextCursor"],
                        "properties": {"calls": {"type": "array", "items": CALL_SCHEMA},
                                       "nextCursor": _STRING_OR_NULL}}),
            **{str(s): _error(s) for s in _ALWAYS},
        },
    },
    ("/v1/agent/calls/{call_id}", "get"): {
        "security": _BEARER,
        "parameters": [_call_id()],
        "responses": {"200": _ok(CALL_SCHEMA), **{str(s): _error(s) for s in _ALWAYS}},
    },
    ("/v1/agent/calls/{call_id}", "delete"): {
        # (ext) Erase an ended call's personal data; idempotent. 409 call_active while it runs.
        "security": _BEARER,
        "parameters": [_call_id()],
        "responses": {"200": _ok(CALL_SCHEMA), **{str(s): _error(s) for s in (*_ALWAYS, 409)}},
    },
    ("/v1/agent/calls/{call_id}/cancel", "post"): {
        "security": _BEARER,
        "parameters": [_call_id()],
        "responses": {"200": _ok(CALL_SCHEMA), **{str(s): _error(s) for s in (*_ALWAYS, 409)}},
    },
    ("/v1/agent/calls/{call_id}/recording", "get"): {
        # The Bearer key, or no key at all with the signed link's expires and token.
        "security": [*_BEARER, {}],
        "parameters": [
            _call_id(),
            _query("expires", {"type": "string"}, "from the signed recordingUrl"),
            _query("token", {"type": "string"}, "from the signed recordingUrl"),
        ],
        "responses": {"200": _ok({"type": "string", "format": "binary"}, "Stereo WAV", "audio/wav"),
                      **{str(s): _error(s) for s in _ALWAYS}},
    },
    ("/v1/agent/calls/{call_id}/webhooks", "get"): {
        "security": _BEARER,
        "parameters": [_call_id()],
        "responses": {
            "200": _ok({"type": "object", "required": ["callId", "events"],
                        "properties": {"callId": {"type": "string"},
                                       "events": {"type": "array", "items": {"type": "object"}}}}),
            **{str(s): _error(s) for s in _ALWAYS},
        },
    },
    ("/v1/agent/webhooks/test", "post"): {
        "security": _BEARER,
        "requestBody": {"required": True, "content": {_JSON: {"schema": {
            "type": "object", "required": ["url"],
            "properties": {"url": {"type": "string", "pattern": r"\S", "maxLength": MAX_URL}}}}}},
        "responses": {
            "200": _ok({"type": "object", "required": ["eventId", "event", "delivered", "attempt"],
                        "properties": {"eventId": {"type": "string"}, "event": {"type": "string"},
                                       "delivered": {"type": "boolean"}, "attempt": {"type": "object"}}}),
            **{str(s): _error(s) for s in (*_ALWAYS, 429)},
        },
    },
}

# (ext) Responsible calling: the do-not-call list and calling hours (api/routes/suppressions.py, calling_hours.py)
_SUPPRESSION = {"type": "object", "required": ["number", "source", "createdAt"],
                "properties": {"number": {"type": "string"}, "source": {"type": "string",
                                                                   "enum": ["api", "cli", "csv", "opt_out"]},
                               "callId": _STRING_OR_NULL, "note": _STRING_OR_NULL, "createdAt": {"type": "string"}}}
_ADDED = {"type": "object", "required": ["added", "alreadyListed"],
          "properties": {"added": {"type": "integer"}, "alreadyListed": {"type": "integer"},
                         "rejected": {"type": "array", "items": {"type": "object", "required": ["row", "error"]}}}}
_CALLING_HOURS_BODY = {
    "type": "object", "required": ["start", "end"], "additionalProperties": False,
    "properties": {"start": {"type": "string", "pattern": "^([01][0-9]|2[0-3]):[0-5][0-9]$"},
                   "end": {"type": "string", "pattern": "^(([01][0-9]|2[0-3]):[0-5][0-9]|24:00)$"},
                   "days": {"type": "array", "minItems": 1,
                            "items": {"type": "string", "enum": ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]}}},
}
_CALLING_HOURS = {"type": "object", "required": ["start", "end", "days", "source"],
                  "properties": {"start": {"type": "string"}, "end": {"type": "string"},
                                 "days": {"type": "array", "items": {"type": "string"}},
                                 "source": {"type": "string", "enum": ["account", "default"]}}}
_NUMBER_PATH = [{"name": "number", "in": "path", "required": True, "schema": {"type": "string"},
                 "description": "E.164, '+' URL-encoded as %2B"}]
_BATCH = {"type": "object", "required": ["batchId", "status", "total", "rejected", "counts", "createdAt"],
          "properties": {"batchId": {"type": "string"},
                         "status": {"type": "string", "enum": ["running", "finished", "canceled"]},
                         "total": {"type": "integer"}, "rejected": {"type": "integer"},
                         "counts": {"type": "object", "additionalProperties": {"type": "integer"}},
                         "webhookUrl": _STRING_OR_NULL, "metadata": {"type": "object"},
                         "createdAt": {"type": "string"}, "canceledAt": _STRING_OR_NULL,
                         "finishedAt": _STRING_OR_NULL}}
_BATCH_CREATED = {**_BATCH, "required": [*_BATCH["required"], "rejectedRows"],
                  "properties": {**_BATCH["properties"], "rejectedRows": {"type": "array", "items": {
                      "type": "object", "required": ["row", "error", "message"]}}}}
_BATCH_PATH = [{"name": "batch_id", "in": "path", "required": True, "schema": {"type": "string"}}]
_OPERATIONS.update({
    ("/v1/agent/suppressions", "get"): {
        "security": _BEARER,
        "parameters": [_query("limit", {"type": "string"}, "1-100 (default 20); out-of-range values are clamped"),
                       _query("cursor", {"type": "string"}, "nextCursor of the previous page")],
        "responses": {
            "200": _ok({"type": "object", "required": ["suppressions", "nextCursor"],
                        "properties": {"suppressions": {"type": "array", "items": _SUPPRESSION},
                                       "nextCursor": _STRING_OR_NULL}}),
            **{str(s): _error(s) for s in _ALWAYS},
        },
    },
    ("/v1/agent/suppressions", "post"): {
        "security": _BEARER,
        "requestBody": {"required": True, "content": {
            _JSON: {"schema": {
                "type": "object", "required": ["numbers"],
                "properties": {"numbers": {"type": "array", "minItems": 1, "maxItems": 1000,
                                           "items": {"type": "string", "pattern": "^\\+[1-9][0-9]{7,14}$"}},
                               "note": {"type": ["string", "null"], "maxLength": 200}}}},
            "text/csv": {"schema": {"type": "string", "description": "one E.164 number a row"}}}},
        "responses": {"200": _ok(_ADDED), **{str(s): _error(s) for s in _ALWAYS}},
    },
    ("/v1/agent/suppressions/{number}", "get"): {
        "security": _BEARER, "parameters": _NUMBER_PATH,
        "responses": {"200": _ok(_SUPPRESSION), **{str(s): _error(s) for s in _ALWAYS}},
    },
    ("/v1/agent/suppressions/{number}", "delete"): {
        "security": _BEARER, "parameters": _NUMBER_PATH,
        "responses": {"200": _ok({"type": "object", "required": ["removed"], "properties": {"removed": {"const": True}}}),
                      **{str(s): _error(s) for s in _ALWAYS}},
    },
    ("/v1/agent/batches", "post"): {
        "security": _BEARER,
        "requestBody": {"required": True, "content": {
            _JSON: {"schema": {"type": "object", "required": ["calls"], "properties": {
                "defaults": {"type": "object", "description": "call request keys every row starts from"},
                "calls": {"type": "array", "minItems": 1, "maxItems": 10_000, "items": {"type": "object"}},
                "webhookUrl": {"type": "string", "description": "where batch.finished is sent"},
                "metadata": {"type": "object", "additionalProperties": {"type": "string"}}}}},
            "text/csv": {"schema": {"type": "string", "description": "a header of call request keys, a row per call"}}}},
        "responses": {"201": _ok(_BATCH_CREATED, "Created (rows that failed their checks are in rejectedRows)"),
                      **{str(s): _error(s) for s in _ALWAYS}},
    },
    ("/v1/agent/batches", "get"): {
        "security": _BEARER,
        "parameters": [_query("limit", {"type": "string"}, "1-100 (default 20); out-of-range values are clamped")],
        "responses": {"200": _ok({"type": "object", "required": ["batches"],
                                  "properties": {"batches": {"type": "array", "items": _BATCH}}}),
                      **{str(s): _error(s) for s in _ALWAYS}},
    },
    ("/v1/agent/batches/{batch_id}", "get"): {
        "security": _BEARER, "parameters": _BATCH_PATH,
        "responses": {"200": _ok(_BATCH), **{str(s): _error(s) for s in _ALWAYS}},
    },
    ("/v1/agent/batches/{batch_id}/cancel", "post"): {
        "security": _BEARER, "parameters": _BATCH_PATH,
        "responses": {"200": _ok(_BATCH), **{str(s): _error(s) for s in (*_ALWAYS, 409)}},
    },
    ("/v1/agent/calling-hours", "get"): {
        "security": _BEARER, "responses": {"200": _ok(_CALLING_HOURS), **{str(s): _error(s) for s in _ALWAYS}},
    },
    ("/v1/agent/calling-hours", "put"): {
        "security": _BEARER,
        "requestBody": {"required": True, "content": {_JSON: {"schema": _CALLING_HOURS_BODY}}},
        "responses": {"200": _ok(_CALLING_HOURS), **{str(s): _error(s) for s in _ALWAYS}},
    },
    ("/v1/agent/calling-hours", "delete"): {
        "security": _BEARER, "responses": {"200": _ok(_CALLING_HOURS), **{str(s): _error(s) for s in _ALWAYS}},
    },
})


def openapi_document(app: Any) -> dict[str, Any]:
    """FastAPI's generated document with each known operation made exact (cached on the app)."""
    if app.openapi_schema:
        return app.openapi_schema
    from fastapi.openapi.utils import get_openapi

    document = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
    document.setdefault("components", {})["securitySchemes"] = {
        "bearerAuth": {"type": "http", "scheme": "bearer", "description": "An agent API key, bys_ak_..."}
    }
    document["security"] = _BEARER
    for (path, method), exact in _OPERATIONS.items():
        operation = document.get("paths", {}).get(path, {}).get(method)
        if operation is None:
            continue
        operation.update(exact)
        if "requestBody" not in exact and method == "post" and path == "/v1/agent/calls":
            operation["requestBody"] = {"required": True, "content": {_JSON: {"schema": CALL_REQUEST_SCHEMA}}}
    document.get("components", {}).get("schemas", {}).pop("HTTPValidationError", None)
    document.get("components", {}).get("schemas", {}).pop("ValidationError", None)
    app.openapi_schema = document
    return document
