"""OpenAPI documentation of the request body and error envelope.

Validation itself lives in requests.py (it must answer the spec's exact tokens);
this schema describes the same rules for clients and for schemathesis.
"""

from __future__ import annotations

from byourside_server.api.requests import (
    MAX_CONTEXT,
    MAX_DURATION,
    MAX_FIELDS,
    MAX_OBJECTIVE,
    MIN_DURATION,
)

CALL_REQUEST_SCHEMA = {
    "type": "object",
    "required": ["to", "objective"],
    "properties": {
        "to": {"type": "string", "description": "Destination, strict E.164", "example": "+14155550123"},
        "objective": {"type": "string", "maxLength": MAX_OBJECTIVE, "description": "What the call should achieve"},
        "context": {"type": "string", "maxLength": MAX_CONTEXT, "description": "Background for the AI, never read out"},
        "voicemailMessage": {"type": "string", "maxLength": 1000,
                             "description": "(ext) Message left after the tone when voicemail answers; omitted: hang up"},
        "fields": {
            "type": "array",
            "maxItems": MAX_FIELDS,
            "items": {
                "type": "object",
                "required": ["name"],
                "properties": {
                    "name": {"type": "string", "pattern": "^[A-Za-z_][A-Za-z0-9_]{0,63}$"},
                    "type": {"type": "string", "enum": ["string", "boolean", "number"]},
                    "description": {"type": "string", "maxLength": 500},
                },
            },
        },
        "webhookUrl": {"type": "string", "format": "uri", "description": "https:// URL on a public address"},
        "callerId": {"type": "string", "description": "E.164 number owned by the account"},
        "voice": {"type": "string", "maxLength": 64},
        "language": {"type": "string", "description": "BCP-47 tag such as en-US, or 'auto'"},
        "maxDurationSeconds": {"type": "integer", "minimum": MIN_DURATION, "maximum": MAX_DURATION},
        "metadata": {"type": "object", "additionalProperties": {"type": "string", "maxLength": 500}, "maxProperties": 20},
    },
}

_ERROR = {
    "content": {
        "application/json": {
            "schema": {
                "type": "object",
                "required": ["error", "message"],
                "properties": {"error": {"type": "string"}, "message": {"type": "string"}},
            }
        }
    }
}

ERROR_RESPONSES = {
    400: {"description": "Invalid request (invalid_request, to_required, objective_required, invalid_number, invalid_fields, invalid_webhook_url, destination_blocked)", **_ERROR},
    401: {"description": "unauthorized", **_ERROR},
    403: {"description": "caller_id_not_owned", **_ERROR},
    404: {"description": "not_found", **_ERROR},
    409: {"description": "idempotency_conflict, call_not_active", **_ERROR},
    429: {"description": "rate_limited, over_minute_cap (with Retry-After)", **_ERROR},
    502: {"description": "placement_failed", **_ERROR},
    503: {"description": "store_error", **_ERROR},
}
