"""``byourside call``: place a call through the HTTP API with the Python SDK and follow it."""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from typing import Any, Callable


def load_sdk():  # noqa: ANN202
    """The Python SDK, or exit with the install command when it is missing."""
    try:
        import byourside
    except ImportError:
        print("error: the Python SDK is not installed: pip install -e sdks/python", file=sys.stderr)
        raise SystemExit(1) from None
    return byourside


def parse_field(spec: str) -> dict[str, Any]:
    """'name', 'name:type' or 'name:type:description' -> a fields item."""
    name, _, rest = spec.partition(":")
    ftype, _, description = rest.partition(":")
    field: dict[str, Any] = {"name": name.strip()}
    if ftype.strip():
        field["type"] = ftype.strip()
    if description.strip():
        field["description"] = description.strip()
    return field


def parse_metadata(specs: list[str]) -> dict[str, str] | None:
    """['key=value', ...] -> a metadata mapping; a spec without '=' is a usage error."""
    metadata: dict[str, str] = {}
    for spec in specs:
        key, sep, value = spec.partition("=")
        if not sep or not key.strip():
            raise SystemExit(f"error: --metadata takes key=value, got '{spec}'.")
        metadata[key.strip()] = value
    return metadata or None


def unreachable_reason(exc: BaseException) -> str:
    """Why the socket failed, in a few lowercase words ('connection refused', 'timed out')."""
    cause = exc.__cause__
    reason = getattr(cause, "reason", cause)  # urllib wraps the OSError in URLError.reason
    if isinstance(reason, OSError) and reason.strerror:
        return reason.strerror.lower()
    return str(reason or "network error").lower()


def error_text(exc: Any, base_url: str) -> str:
    """One line for an SDK error: the unreachable server's URL, or the token with the server's own message."""
    if exc.code == "network_error":
        return (f"cannot reach the byourside server at {base_url} ({unreachable_reason(exc)}). "
                "Start it with 'byourside serve' or set BYS_BASE_URL.")
    detail = exc.server_message if exc.server_message and exc.server_message != exc.message else ""
    return f"{exc.message}{f' ({detail})' if detail else ''} [{exc.code}]"


def status_printer(out: Callable[[str], None]) -> Callable[[dict[str, Any]], None]:
    """A callback that prints each status change once, with the time since the first one."""
    started = time.monotonic()

    def show(call: dict[str, Any]) -> None:
        extra = f" ({call['endReason']})" if call.get("endReason") else ""
        out(f"  [{time.monotonic() - started:5.1f}s] {call['status']}{extra}")

    return show


def follow(client: Any, call_id: str, *, timeout: float, out: Callable[[str], None]) -> dict[str, Any]:
    """Wait for the call to end, printing status changes and transcript lines as they appear."""
    show_status = status_printer(out)
    shown_turns = 0

    def on_poll(call: dict[str, Any]) -> None:
        nonlocal shown_turns
        turns = call.get("turns") or []
        for turn in turns[shown_turns:]:
            who = "Agent  " if turn["speaker"] == "agent" else "Contact"
            out(f"      {who}: {turn['text']}")
        shown_turns = max(shown_turns, len(turns))

    last_status = None
    deadline = time.monotonic() + timeout
    while True:
        call = client.get_call(call_id)
        on_poll(call)
        if call["status"] != last_status:
            show_status(call)
            last_status = call["status"]
        if call["status"] in ("completed", "no_answer", "voicemail", "declined", "failed"):
            return call
        if time.monotonic() + 0.5 > deadline:
            raise TimeoutError("The call did not finish in time; follow it with 'byourside call' or GET /v1/agent/calls/{id}.")
        time.sleep(0.5)


def place_and_follow(args: argparse.Namespace) -> int:
    byourside = load_sdk()
    base_url = os.environ.get("BYS_BASE_URL") or byourside.DEFAULT_BASE_URL
    try:
        client = byourside.Client(os.environ.get("BYS_API_KEY"), base_url=base_url)
        base_url = client.base_url
        created = client.place_call(
            args.to,
            args.objective,
            context=args.context,
            fields=[parse_field(f) for f in args.field] or None,
            webhook_url=args.webhook_url,
            caller_id=args.caller_id,
            voice=args.voice,
            language=args.language,
            max_duration_seconds=args.max_duration,
            metadata=parse_metadata(args.metadata),
            idempotency_key=args.idempotency_key,
            voicemail_message=args.voicemail_message,
        )
    except byourside.ByoursideError as exc:
        hint = " Set BYS_API_KEY (byourside keys create --account default)." if exc.code == "no_api_key" else ""
        print(f"error: {error_text(exc, base_url)}{hint}", file=sys.stderr)
        return 1
    if not args.wait:
        print(json.dumps(created, indent=2))
        return 0
    print(f"Call {created['callId']} queued.", file=sys.stderr)
    try:
        call = follow(client, created["callId"], timeout=args.timeout, out=lambda s: print(s, file=sys.stderr))
    except byourside.ByoursideError as exc:
        print(f"error: {error_text(exc, base_url)}", file=sys.stderr)
        return 1
    except TimeoutError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(json.dumps(call, indent=2))
    return 0


def usage_lines(usage: dict[str, Any]) -> list[str]:
    """``GET /v1/agent/usage`` as text: one line per day with calls, then totals and the month's cap."""
    lines = [f"Usage from {usage['from']} to {usage['to']} (UTC, by the day a call was placed)"]
    for day in usage["days"]:
        if not day["calls"]:
            continue
        statuses = ", ".join(f"{status} {figures['calls']}" for status, figures in sorted(day["byStatus"].items()))
        lines.append(f"  {day['date']}  {day['calls']:>6} calls  {day['minutes']:>9.2f} min  ({statuses})")
    totals = usage["totals"]
    lines.append(f"  {'total':<10}  {totals['calls']:>6} calls  {totals['minutes']:>9.2f} min")
    for status, figures in sorted(totals["byStatus"].items()):
        lines.append(f"    {status:<12} {figures['calls']:>6} calls  {figures['minutes']:>9.2f} min")
    m = usage["month"]
    lines.append(
        f"Month {m['month']}: cap {m['capMinutes']} min, used {m['usedMinutes']:.2f}, reserved by "
        f"{m['activeCalls']} unfinished call(s) {m['reservedMinutes']:.2f}, left {m['remainingMinutes']:.2f}"
    )
    return lines


def show_usage(args: argparse.Namespace) -> int:
    byourside = load_sdk()
    base_url = os.environ.get("BYS_BASE_URL") or byourside.DEFAULT_BASE_URL
    try:
        client = byourside.Client(os.environ.get("BYS_API_KEY"), base_url=base_url)
        base_url = client.base_url
        usage = client.get_usage(args.start, args.end)
    except byourside.ByoursideError as exc:
        hint = " Set BYS_API_KEY (byourside keys create --account default)." if exc.code == "no_api_key" else ""
        print(f"error: {error_text(exc, base_url)}{hint}", file=sys.stderr)
        return 1
    print(json.dumps(usage, indent=2) if args.json else "\n".join(usage_lines(usage)))
    return 0
