"""Placing a call: guardrails, caller-ID and language resolution, then one store transaction.

Order of work (spec section 4): validate -> guardrails -> create the call record
``queued`` -> respond. Nothing is written unless every check passed.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import httpx

from byourside_server.compliance.retry import RetryPolicy
from byourside_server.domain import FieldSpec
from byourside_server.errors import (
    CallerIdNotOwned,
    DestinationBlocked,
    InvalidNumber,
    InvalidTransferTo,
    InvalidVoice,
    InvalidWebhookUrl,
    UnsupportedLanguage,
)
from byourside_server.guardrails.numbers import DestinationPolicy, check_destination
from byourside_server.guardrails.webhook_urls import check_webhook_url
from byourside_server.services import Services
from byourside_server.settings import Settings
from byourside_server.store.call_types import Created, NewCall
from byourside_server.store.records import Account, ApiKeyRecord
from byourside_server.voice_policy import is_known, unspeakable
from byourside_server.wire import created_response

_HEBREW = re.compile(r"[\u0590-\u05FF]")
_ENGLISH_BY_REGION = {"US": "en-US", "CA": "en-CA", "GB": "en-GB", "AU": "en-AU", "NZ": "en-NZ"}


@dataclass(frozen=True)
class CallRequest:
    """What a client asks for, already validated by an edge (api/requests.py for HTTP, the MCP
    tools): ``to`` and ``caller_id`` in E.164, text within its limits, the language normalised."""

    to: str
    objective: str
    context: str | None
    fields: tuple[FieldSpec, ...]
    webhook_url: str | None
    caller_id: str | None
    voice: str | None
    language: str | None  # normalised BCP-47 tag, "auto", or None (infer)
    max_duration_seconds: int | None
    metadata: Mapping[str, str]
    voicemail_message: str | None = None  # (ext) left after the tone when voicemail answers
    scheduled_at: datetime | None = None  # (ext) not dialled before this (UTC)
    calling_hours: str = "hold"  # (ext) outside calling hours: "hold" until they open, or "strict": refuse
    retry: RetryPolicy | None = None  # (ext) call again after these outcomes (compliance/retry.py)
    transfer_to: tuple[str, ...] = ()  # (ext) people the call may be handed to (E.164 text, checked here)
    transfer_mode: str = "cold"  # (ext) "cold" or "warm" (the person is briefed first)


def check_sendable_url(url: str) -> None:
    """Refuse a webhook URL the sender could never send to. The sender parses with httpx
    (webhooks/sender.py), which refuses control characters that ``urlsplit`` lets through;
    accepted here, such a URL would be retried for a day and never delivered."""
    try:
        httpx.URL(url)
    except httpx.InvalidURL:
        raise InvalidWebhookUrl("'webhookUrl' is not a valid URL (control characters are not allowed).") from None


def request_hash(body: Mapping[str, Any]) -> str:
    """A stable fingerprint of a request body, for Idempotency-Key comparisons."""
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


def resolve_language(requested: str | None, objective: str, region: str, default: str) -> tuple[str, str]:
    """(language, languageSource). Without an explicit tag, infer from the objective's script and the destination."""
    if requested and requested != "auto":
        return requested, "explicit"
    if _HEBREW.search(objective):
        inferred = "he-IL"
    else:
        inferred = _ENGLISH_BY_REGION.get(region, default)
    return inferred, "auto" if requested == "auto" else "inferred"


def check_speakable(language: str, language_source: str, settings: Settings) -> None:
    """Refuse a call in a language this deployment cannot speak (``unsupported_language``), before anything is stored."""
    problem = unspeakable(language, settings)
    if problem is not None:
        if language_source != "explicit":
            problem += " (The language was inferred from the objective and the destination: set 'language' to choose.)"
        raise UnsupportedLanguage(problem)


def check_transfer_targets(numbers: tuple[str, ...], to: str, policy: DestinationPolicy) -> tuple[str, ...]:
    """The transfer numbers, each through the same guardrails as ``to``; any refusal is ``invalid_transfer_to``."""
    checked = []
    for index, number in enumerate(numbers):
        try:
            e164 = check_destination(number, policy).e164
        except (InvalidNumber, DestinationBlocked) as exc:
            raise InvalidTransferTo(f"'transferTo' number {index + 1}: {exc.message}") from None
        if e164 == to:
            raise InvalidTransferTo(f"'transferTo' number {index + 1} is the number being called.")
        checked.append(e164)
    return tuple(checked)


async def place_call(
    services: Services,
    account: Account,
    key: ApiKeyRecord | None,
    request: CallRequest,
    *,
    idempotency_key: str | None = None,
    body_hash: str | None = None,
) -> Created:
    settings = services.settings
    destination = check_destination(request.to, services.destination_policy)
    transfer_to = check_transfer_targets(request.transfer_to, destination.e164, services.destination_policy)
    if request.webhook_url:
        check_sendable_url(request.webhook_url)
        await check_webhook_url(
            request.webhook_url,
            allow_http=settings.webhook_allow_http,
            allow_private=settings.webhook_allow_private,
        )
    if request.voice and not is_known(request.voice, settings):
        raise InvalidVoice()
    caller_id = request.caller_id or account.default_caller_id
    not_owned = CallerIdNotOwned(
        "The caller ID is not a number on this account."
        if request.caller_id
        else "This account has no default caller ID. Add one with 'byourside numbers add'."
    )
    if caller_id is None:
        raise not_owned
    language, language_source = resolve_language(
        request.language, request.objective, destination.region, settings.default_language
    )
    check_speakable(language, language_source, settings)
    timing = await services.compliance.plan(account.id, destination.e164, scheduled_at=request.scheduled_at,
                                            strict=request.calling_hours == "strict")
    new = NewCall(
        to_number=destination.e164,
        from_number=caller_id,
        objective=request.objective,
        context=request.context,
        fields=request.fields,
        webhook_url=request.webhook_url,
        voice=request.voice or (key.voice if key else None) or settings.default_voice,
        language=language,
        language_source=language_source,
        max_duration_seconds=request.max_duration_seconds or settings.max_duration_seconds,
        metadata=request.metadata,
        voicemail_message=request.voicemail_message,
        scheduled_at=timing.scheduled_at,
        not_before=timing.not_before,
        hold_reason=timing.hold_reason,
        retry=request.retry.to_json() if request.retry is not None else None,
        transfer={"to": list(transfer_to), "mode": request.transfer_mode} if transfer_to else None,
    )
    try:  # the store checks the caller ID's ownership (and the key) in the creating transaction
        created = await services.calls.create(
            account, new, idempotency_key=idempotency_key, request_hash=body_hash, respond=created_response,
            key_id=key.id if key else None,  # None: a signed-in dashboard user, not a key
        )
    except CallerIdNotOwned:
        raise not_owned from None
    if not created.replayed:
        services.signals.call_queued.set()
    return created
