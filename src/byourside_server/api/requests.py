"""Validation of ``POST /v1/agent/calls`` bodies into placement's typed ``CallRequest``.

Each problem maps to exactly one spec token. Checks run in a fixed order
(shape, required fields, types and sizes, then formats) so the same bad body
always answers the same token. Shape includes the text rule of
``guardrails/text.py`` for every string and key anywhere in the body (lone
surrogates, NUL, nesting depth): ``invalid_request``. Unknown top-level keys
are ignored so newer clients keep working.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any, Mapping

from byourside_server.compliance.requests import parse_calling_hours_mode, parse_scheduled_at
from byourside_server.compliance.retry import parse_retry
from byourside_server.domain import FIELD_TYPES, FieldSpec
from byourside_server.errors import (
    InvalidFields,
    InvalidRequest,
    InvalidTransferTo,
    ObjectiveRequired,
    ToRequired,
)
from byourside_server.guardrails.numbers import parse_e164
from byourside_server.guardrails.text import check_json_text
from byourside_server.placement import CallRequest

MAX_BODY_BYTES = 256 * 1024
MAX_OBJECTIVE = 4_000
MAX_CONTEXT = 8_000
MAX_VOICEMAIL_MESSAGE = 1_000
MAX_FIELDS = 20
MAX_FIELD_DESCRIPTION = 500
MAX_URL = 2_048
MAX_VOICE = 64
MAX_METADATA_KEYS = 20
MAX_METADATA_KEY = 40
MAX_METADATA_VALUE = 500
MIN_DURATION, MAX_DURATION = 10, 14_400
MAX_TRANSFER_TO = 5
TRANSFER_MODES = ("cold", "warm")

# Matched with fullmatch: ``$`` would also accept a trailing newline.
FIELD_NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}")
LANGUAGE_RE = re.compile(r"[A-Za-z]{2,3}(-[A-Za-z0-9]{2,8}){0,3}")
VOICE_RE = re.compile(r"[A-Za-z0-9_.:-]+")


def _refuse_constant(name: str) -> float:
    raise ValueError(f"{name} is not JSON")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):  # 1e400 overflows to infinity
        raise ValueError("number out of range")
    return value


def parse_body(raw: bytes, *, max_bytes: int = MAX_BODY_BYTES) -> dict[str, Any]:
    """The body as a JSON object whose text is well-formed (see guardrails/text.py) and whose
    numbers are finite (``NaN``/``Infinity`` literals and overflowing numbers are refused)."""
    if len(raw) > max_bytes:
        raise InvalidRequest(f"The request body is larger than {max_bytes // 1024} KiB.")
    try:
        body = json.loads(raw, parse_constant=_refuse_constant, parse_float=_finite_float)
    except (ValueError, UnicodeDecodeError, RecursionError):
        raise InvalidRequest(
            "The request body must be a JSON object (standard JSON: finite numbers, no NaN or Infinity)."
        ) from None
    if not isinstance(body, dict):
        raise InvalidRequest("The request body must be a JSON object, not an array or a scalar.")
    check_json_text(body)
    return body


def _optional_str(body: Mapping[str, Any], key: str, limit: int) -> str | None:
    value = body.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise InvalidRequest(f"'{key}' must be a string.")
    if len(value) > limit:
        raise InvalidRequest(f"'{key}' is longer than {limit} characters.")
    return value


def validate_call_request(body: Mapping[str, Any]) -> CallRequest:
    check_json_text(body)
    to = body.get("to")
    if to is None or (isinstance(to, str) and not to.strip()):
        raise ToRequired()
    if not isinstance(to, str):
        raise InvalidRequest("'to' must be a string in E.164 form, e.g. +14155550123.")
    objective = body.get("objective")
    if objective is None or (isinstance(objective, str) and not objective.strip()):
        raise ObjectiveRequired()
    if not isinstance(objective, str):
        raise InvalidRequest("'objective' must be a string.")
    objective = objective.strip()
    if len(objective) > MAX_OBJECTIVE:
        raise InvalidRequest(f"'objective' is longer than {MAX_OBJECTIVE} characters.")
    context = _optional_str(body, "context", MAX_CONTEXT)
    webhook_url = _optional_str(body, "webhookUrl", MAX_URL)
    caller_id = _optional_str(body, "callerId", 32)
    voice = _optional_str(body, "voice", MAX_VOICE)
    if voice is not None and not VOICE_RE.fullmatch(voice):
        raise InvalidRequest("'voice' must be a voice name (letters, digits, '-', '_', '.', ':').")
    language = _validate_language(_optional_str(body, "language", 35))
    max_duration = _validate_duration(body.get("maxDurationSeconds"))
    metadata = _validate_metadata(body.get("metadata"))
    fields = _validate_fields(body.get("fields"))
    voicemail_message = _optional_str(body, "voicemailMessage", MAX_VOICEMAIL_MESSAGE)
    scheduled_at = parse_scheduled_at(body.get("scheduledAt"))
    calling_hours = parse_calling_hours_mode(body.get("callingHours"))
    retry = parse_retry(body.get("retry"))
    transfer_to = _validate_transfer_to(body.get("transferTo"))
    transfer_mode = body.get("transferMode")
    if transfer_mode is not None and transfer_mode not in TRANSFER_MODES:
        raise InvalidRequest("'transferMode' must be 'cold' (connect at once) or 'warm' (brief the person first).")
    return CallRequest(
        to=parse_e164(to),
        objective=objective,
        context=context.strip() or None if context is not None else None,
        fields=fields,
        webhook_url=webhook_url or None,
        caller_id=parse_e164(caller_id) if caller_id else None,
        voice=voice or None,
        language=language,
        max_duration_seconds=max_duration,
        metadata=metadata,
        voicemail_message=voicemail_message.strip() or None if voicemail_message is not None else None,
        scheduled_at=scheduled_at,
        calling_hours=calling_hours,
        retry=retry,
        transfer_to=transfer_to,
        transfer_mode=transfer_mode or "cold",
    )


def _validate_transfer_to(value: Any) -> tuple[str, ...]:
    """One E.164 number or a list of distinct ones (format only: placement applies the number guardrails)."""
    if value is None:
        return ()
    numbers = [value] if isinstance(value, str) else value
    if not isinstance(numbers, list) or not 1 <= len(numbers) <= MAX_TRANSFER_TO:
        raise InvalidTransferTo()
    checked = tuple(parse_e164(n, token_error=InvalidTransferTo) for n in numbers)
    if len(set(checked)) != len(checked):
        raise InvalidTransferTo("'transferTo' lists the same number twice.")
    return checked


def _validate_language(value: str | None) -> str | None:
    if value is None or value == "":
        return None
    if value.lower() == "auto":
        return "auto"
    if not LANGUAGE_RE.fullmatch(value):
        raise InvalidRequest("'language' must be a BCP-47 tag such as en-US, or 'auto'.")
    primary, *rest = value.split("-")
    # Conventional casing: language lower, region upper, script title.
    parts = [primary.lower()] + [p.upper() if len(p) == 2 else p.title() if len(p) == 4 else p for p in rest]
    return "-".join(parts)


def _validate_duration(value: Any) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or (
        isinstance(value, float) and not value.is_integer()  # also NaN and infinities
    ):
        raise InvalidRequest("'maxDurationSeconds' must be a whole number of seconds.")
    if not MIN_DURATION <= value <= MAX_DURATION:
        raise InvalidRequest(f"'maxDurationSeconds' must be between {MIN_DURATION} and {MAX_DURATION}.")
    return int(value)


def _validate_metadata(value: Any) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise InvalidRequest("'metadata' must be an object of string values.")
    if len(value) > MAX_METADATA_KEYS:
        raise InvalidRequest(f"'metadata' may have at most {MAX_METADATA_KEYS} keys.")
    for key, item in value.items():
        if not key or len(key) > MAX_METADATA_KEY:
            raise InvalidRequest(f"'metadata' keys must be 1-{MAX_METADATA_KEY} characters.")
        if not isinstance(item, str) or len(item) > MAX_METADATA_VALUE:
            raise InvalidRequest(f"'metadata' values must be strings of at most {MAX_METADATA_VALUE} characters.")
    return dict(value)


def _validate_fields(value: Any) -> tuple[FieldSpec, ...]:
    if value is None:
        return ()
    if not isinstance(value, list):
        raise InvalidFields("'fields' must be an array of {name, type?, description?} objects.")
    if len(value) > MAX_FIELDS:
        raise InvalidFields(f"'fields' may have at most {MAX_FIELDS} items.")
    specs: list[FieldSpec] = []
    seen: set[str] = set()
    for index, item in enumerate(value):
        if not isinstance(item, dict):
            raise InvalidFields(f"fields[{index}] must be an object with a 'name'.")
        name = item.get("name")
        if not isinstance(name, str) or not FIELD_NAME_RE.fullmatch(name):
            raise InvalidFields(
                f"fields[{index}].name must be an identifier: a letter or '_', then letters, digits or '_' (max 64)."
            )
        if name in seen:
            raise InvalidFields(f"fields[{index}].name '{name}' is used twice; field names must be unique.")
        seen.add(name)
        ftype = item.get("type", "string")
        if ftype is None:
            ftype = "string"
        if ftype not in FIELD_TYPES:
            raise InvalidFields(f"fields[{index}].type must be one of string, boolean, number.")
        description = item.get("description")
        if description is not None and (not isinstance(description, str) or len(description) > MAX_FIELD_DESCRIPTION):
            raise InvalidFields(f"fields[{index}].description must be a string of at most {MAX_FIELD_DESCRIPTION} characters.")
        specs.append(FieldSpec(name=name, type=ftype, description=(description or "").strip() or None))
    return tuple(specs)
