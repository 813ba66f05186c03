"""The MCP tools: place_call, get_call, list_calls, wait_for_call, cancel_call, list_voices; the batch tools.

One FastMCP server definition serves both transports (stdio in ``byourside mcp``,
streamable HTTP at ``/mcp`` in ``byourside serve``). Every tool talks to the Agent
Calling API through the zero-dependency Python SDK, so the MCP surface sees exactly
what any HTTP client sees: same validation, same guardrails, same error tokens.
The SDK is blocking; its calls run in a worker thread.

Each result is one text content holding JSON with the API's own keys. Failures are
tool errors (``isError``) whose text is ``{"error": <token>, "message": ..., "status": ...}``;
nothing a caller sends can crash the server.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Annotated, Any, Literal

import anyio
import byourside
import structlog
from mcp.server.fastmcp import Context, FastMCP
from mcp.server.fastmcp.exceptions import ToolError
from mcp.types import CallToolResult, TextContent, ToolAnnotations
from pydantic import Field, ValidationError

from byourside_server.errors import ApiError
from byourside_server.guardrails.text import check_json_text

log = structlog.get_logger(__name__)

ClientFactory = Callable[[Context], byourside.Client]

SERVER_NAME = "byourside"
INSTRUCTIONS = (
    "Place real outbound phone calls with an AI caller and read the outcome. "
    "place_call returns a callId at once (status queued); then use wait_for_call "
    "(bounded; call it again while the call is still running) or get_call. Finished "
    "calls carry summary, transcript, recordingUrl and the extracted fields."
)

DEFAULT_WAIT_SECONDS = 50.0  # stays under the ~60 s tool-call timeout of common MCP hosts
MAX_WAIT_SECONDS = 600.0
POLL_SECONDS = 1.0
_PROGRESS_STEP = {"queued": 0, "dialing": 1, "in_progress": 2}  # any terminal status: 3
_PROGRESS_TOTAL = 3


_CHATTY_LOGGERS = ("mcp.server.lowlevel.server", "mcp.server.streamable_http", "mcp.server.streamable_http_manager")


def quiet_mcp_loggers() -> None:
    """The mcp package logs every request at INFO; keep only its warnings and errors."""
    for name in _CHATTY_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)


def _text(payload: Any, *, is_error: bool = False) -> CallToolResult:
    return CallToolResult(content=[TextContent(type="text", text=json.dumps(payload))], isError=is_error)


def error_result(code: str, message: str, status: int = 0) -> CallToolResult:
    return _text({"error": code, "message": message, "status": status}, is_error=True)


def _from_sdk_error(exc: byourside.ByoursideError, base_url: str | None = None) -> CallToolResult:
    message = exc.message
    if exc.server_message and exc.server_message != message:
        message = f"{message} ({exc.server_message})"
    if exc.code == "network_error" and base_url:
        message = f"{message} Could not reach the byourside server at {base_url}; check BYS_BASE_URL and that the server is running."
    return error_result(exc.code or "error", message, exc.status)


async def _run(client: byourside.Client | None, fn: Callable[[], Any]) -> tuple[Any, CallToolResult | None]:
    """Run one blocking SDK call on ``client`` in a thread; map failures to a tool error result."""
    try:
        return await anyio.to_thread.run_sync(fn), None
    except byourside.ByoursideError as exc:
        return None, _from_sdk_error(exc, getattr(client, "base_url", None))
    except Exception:
        log.exception("mcp_tool_failed")
        return None, error_result("internal_error", "The MCP server hit an unexpected error; see the server log.")


def _client(factory: ClientFactory, ctx: Context) -> byourside.Client:
    return factory(ctx)


class _Server(FastMCP):
    """FastMCP whose argument-validation failures use the same error shape as API errors.

    Arguments meet the API's text rule first (guardrails/text.py): the SDK could not
    even encode a lone surrogate into a URL, so such an argument is ``invalid_request``
    here rather than an unexpected error further down."""

    async def call_tool(self, name: str, arguments: dict[str, Any]) -> Any:
        try:
            check_json_text(arguments)
        except ApiError as exc:
            return error_result(exc.token, f"Invalid arguments for {name}: {exc.message}", exc.http_status)
        try:
            return await super().call_tool(name, arguments)
        except ToolError as exc:
            cause = exc.__cause__
            if not isinstance(cause, ValidationError):
                raise
            problems = "; ".join(
                f"{'.'.join(str(p) for p in e['loc']) or 'arguments'}: {e['msg']}" for e in cause.errors()
            )
            return error_result("invalid_request", f"Invalid arguments for {name}: {problems}", 400)


def build_mcp(client_factory: ClientFactory, *, poll_seconds: float = POLL_SECONDS) -> FastMCP:
    """The FastMCP server; ``client_factory(ctx)`` returns the SDK client for the caller."""
    server = _Server(SERVER_NAME, instructions=INSTRUCTIONS, log_level="WARNING")

    def client_for(ctx: Context) -> tuple[byourside.Client | None, CallToolResult | None]:
        try:
            return _client(client_factory, ctx), None
        except byourside.ByoursideError as exc:
            return None, _from_sdk_error(exc)

    @server.tool(
        structured_output=False,
        annotations=ToolAnnotations(title="Place a phone call", destructiveHint=False, openWorldHint=True),
    )
    async def place_call(
        ctx: Context,
        to: Annotated[str, Field(description="Destination in strict E.164, e.g. +14155550123")],
        objective: Annotated[str, Field(description="Plain-text goal the AI caller pursues on the call")],
        context: Annotated[str | None, Field(description="Background for the AI; never read out to the callee")] = None,
        fields: Annotated[
            list[dict[str, Any]] | None,
            Field(description='Up to 20 values to extract: [{"name": "party_size", "type": "number", '
                              '"description": "..."}]; type is string (default), boolean or number'),
        ] = None,
        caller_id: Annotated[str | None, Field(description="E.164 number owned by the account to call from")] = None,
        voice: Annotated[str | None, Field(description="Voice name (default: the key's, then the platform's)")] = None,
        language: Annotated[str | None, Field(description="BCP-47 tag such as en-US, or auto")] = None,
        transfer_to: Annotated[
            list[str] | None,
            Field(description="People the call may be handed to if the callee asks for a real person: a list of "
                              "1 to 5 E.164 numbers (a list even for one), tried in order until one answers; each "
                              "is checked like 'to' and may not be 'to' itself. The call then ends completed with "
                              "endReason transferred. Leave out to never transfer"),
        ] = None,
        transfer_mode: Annotated[
            Literal["cold", "warm"] | None,
            Field(description="How the person is connected: cold (default) at once; warm after hearing a "
                              "one-sentence brief of who is calling and why. Only with transfer_to"),
        ] = None,
    ) -> CallToolResult:
        """Place an outbound AI phone call. Returns {callId, status: queued, language, voice} at once;
        follow it with wait_for_call or get_call."""
        client, err = client_for(ctx)
        if err:
            return err
        result, err = await _run(client, lambda: client.place_call(
            to, objective, context=context, fields=fields, caller_id=caller_id, voice=voice, language=language,
            transfer_to=transfer_to, transfer_mode=transfer_mode,
        ))
        return err or _text(result)

    @server.tool(structured_output=False, annotations=ToolAnnotations(title="Get a call", readOnlyHint=True))
    async def get_call(ctx: Context, call_id: Annotated[str, Field(description="The callId from place_call")]) -> CallToolResult:
        """The call object: status, summary, extracted fields, transcript, recordingUrl, timings."""
        client, err = client_for(ctx)
        if err:
            return err
        result, err = await _run(client, lambda: client.get_call(call_id))
        return err or _text(result)

    @server.tool(structured_output=False, annotations=ToolAnnotations(title="List voices", readOnlyHint=True))
    async def list_voices(ctx: Context) -> CallToolResult:
        """The voices calls can use: {voices: [{name, provider, languages, gender}], default, aliases}.
        Pass a name (or an alias such as alloy) as place_call's voice; languages lists what each speaks
        (["*"]: any language the model speaks)."""
        client, err = client_for(ctx)
        if err:
            return err
        result, err = await _run(client, client.list_voices)
        return err or _text(result)

    @server.tool(structured_output=False, annotations=ToolAnnotations(title="List calls", readOnlyHint=True))
    async def list_calls(
        ctx: Context,
        limit: Annotated[int, Field(description="How many calls, newest first (1..100)")] = 20,
        status: Annotated[
            str | None,
            Field(description="Only calls in this status: queued, dialing, in_progress, completed, "
                              "no_answer, voicemail, declined or failed"),
        ] = None,
    ) -> CallToolResult:
        """Recent calls, newest first: {calls: [...], nextCursor}."""
        client, err = client_for(ctx)
        if err:
            return err
        result, err = await _run(client, lambda: client.list_calls_page(limit, status=status))
        return err or _text(result)

    @server.tool(structured_output=False, annotations=ToolAnnotations(title="Wait for a call", readOnlyHint=True))
    async def wait_for_call(
        ctx: Context,
        call_id: Annotated[str, Field(description="The callId from place_call")],
        timeout_seconds: Annotated[
            float, Field(description=f"Longest wait, seconds (default {DEFAULT_WAIT_SECONDS:g}, at most {MAX_WAIT_SECONDS:g})")
        ] = DEFAULT_WAIT_SECONDS,
    ) -> CallToolResult:
        """Wait until the call finishes and return it. The wait is bounded: if the call is still
        running when the bound passes, the current state comes back with a "hint" to call again.
        Sends progress notifications as the status moves."""
        client, err = client_for(ctx)
        if err:
            return err
        try:
            bound = min(MAX_WAIT_SECONDS, max(0.0, float(timeout_seconds)))
        except (TypeError, ValueError):
            bound = DEFAULT_WAIT_SECONDS
        previous: str | None = None
        with anyio.move_on_after(bound) as scope:
            while True:
                call, err = await _run(client, lambda: client.get_call(call_id))
                if err:
                    return err
                status = call.get("status") if isinstance(call, dict) else None
                if status != previous:
                    previous = status
                    await _report(ctx, status)
                if status in byourside.TERMINAL_STATUSES:
                    return _text(call)
                await anyio.sleep(poll_seconds)
        if scope.cancelled_caught:
            call, err = await _run(client, lambda: client.get_call(call_id))
            if err:
                return err
            status = call.get("status") if isinstance(call, dict) else None
            if status in byourside.TERMINAL_STATUSES:
                return _text(call)
            call = dict(call) if isinstance(call, dict) else {"callId": call_id}
            call["hint"] = (f"The call is still {status}; call wait_for_call again with the same call_id "
                            "to keep waiting.")
            return _text(call)
        return error_result("internal_error", "The wait ended unexpectedly.")  # pragma: no cover

    @server.tool(
        structured_output=False,
        annotations=ToolAnnotations(title="Cancel a call", destructiveHint=True, idempotentHint=True),
    )
    async def cancel_call(ctx: Context, call_id: Annotated[str, Field(description="The callId to cancel")]) -> CallToolResult:
        """Cancel a queued call or hang up a running one. A finished call answers call_not_active."""
        client, err = client_for(ctx)
        if err:
            return err
        result, err = await _run(client, lambda: client.cancel_call(call_id))
        return err or _text(result)

    @server.tool(
        structured_output=False,
        annotations=ToolAnnotations(title="Place a batch of calls", destructiveHint=False, openWorldHint=True),
    )
    async def create_batch(
        ctx: Context,
        calls: Annotated[
            list[dict[str, Any]],
            Field(description='One object per call, over the defaults: [{"to": "+14155550123", "context": "...", '
                              '"metadata": {...}, "scheduledAt": "2026-12-01T09:30:00-08:00"}, ...]'),
        ],
        defaults: Annotated[
            dict[str, Any] | None,
            Field(description='Call request keys every row starts from, e.g. {"objective": "...", "fields": [...], '
                              '"retry": {"on": ["no_answer"], "maxAttempts": 3, "backoffMinutes": 60}, '
                              '"transferTo": ["+14155550100"], "transferMode": "warm"}'),
        ] = None,
    ) -> CallToolResult:
        """Place many calls at once, paced by the account's concurrent-call limit and the callees'
        calling hours. Returns the batch (batchId, counts) with rejectedRows: rows refused, each
        with its error token. Follow it with get_batch."""
        client, err = client_for(ctx)
        if err:
            return err
        result, err = await _run(client, lambda: client.create_batch(calls, defaults))
        return err or _text(result)

    @server.tool(structured_output=False, annotations=ToolAnnotations(title="Get a batch", readOnlyHint=True))
    async def get_batch(ctx: Context, batch_id: Annotated[str, Field(description="The batchId from create_batch")]) -> CallToolResult:
        """A batch's progress: status (running, finished, canceled), total, and its calls counted by status."""
        client, err = client_for(ctx)
        if err:
            return err
        result, err = await _run(client, lambda: client.get_batch(batch_id))
        return err or _text(result)

    @server.tool(
        structured_output=False,
        annotations=ToolAnnotations(title="Cancel a batch", destructiveHint=True, idempotentHint=False),
    )
    async def cancel_batch(ctx: Context, batch_id: Annotated[str, Field(description="The batchId to cancel")]) -> CallToolResult:
        """End a batch's waiting calls (they end canceled); calls already on the line finish."""
        client, err = client_for(ctx)
        if err:
            return err
        result, err = await _run(client, lambda: client.cancel_batch(batch_id))
        return err or _text(result)

    return server


async def _report(ctx: Context, status: str | None) -> None:
    """A progress notification for a status change (sent only if the client asked for progress)."""
    step = _PROGRESS_STEP.get(status or "", _PROGRESS_TOTAL)
    try:
        await ctx.report_progress(step, _PROGRESS_TOTAL, f"status: {status}")
    except Exception:  # noqa: BLE001  (a client that went away must not turn the wait into a crash)
        log.warning("mcp_progress_failed")
