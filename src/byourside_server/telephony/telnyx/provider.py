"""The ``telnyx`` telephony provider: Telnyx Call Control, audio over its bidirectional media streaming.

Dialling (``POST /v2/calls``) names our webhook URL, the ring timeout, the
stream URL (bidirectional RTP mode, PCMU) and, with
``BYS_TELNYX_MACHINE_DETECTION``, Telnyx's answering-machine detection. Every
URL is this process's ``BYS_PUBLIC_URL`` plus a route below ``/carriers/telnyx``
and an unguessable per-call token. Webhooks must carry a valid Ed25519
signature (``telnyx-signature-ed25519`` over ``{telnyx-timestamp}|{body}``,
checked with ``BYS_TELNYX_PUBLIC_KEY``), else 403; Telnyx does not sign its
media WebSocket, so a stream is accepted only on its call's token and must
name the call's own ``call_control_id``.

- answered: the stream starts -> ANSWERED with a ``WebSocketMedia``;
- ``call.hangup`` before that, by ``hangup_cause``: ``user_busy`` -> BUSY,
  ``call_rejected`` -> DECLINED, ``timeout`` / ``no_answer`` -> NO_ANSWER,
  ``originator_cancel`` -> NO_ANSWER, ``unallocated_number`` / ``not_found``
  -> FAILED invalid_number, anything else FAILED (``sip_<code>``);
- our ring deadline, cancelling the dial and hanging up the media all end the
  call with ``actions/hangup``.
- transfer to a person: ``actions/transfer`` dials them (presenting our caller
  ID) and bridges the call once they answer; warm: with ``audio_url``, our
  brief's WAV (``/brief/{token}.wav``), which Telnyx plays to the person before
  bridging. The new leg's webhooks come to the call's own URL: ``call.bridged``
  or ``call.answered`` is a transfer done, its ``call.hangup`` one that failed
  (the call stays ours and the conversation goes on).
"""

from __future__ import annotations

import asyncio
import json
import secrets
import time
from dataclasses import dataclass, field

import numpy as np
import structlog
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket

from byourside_server.domain import AnsweredBy, AnswerVerdict
from byourside_server.telephony.base import DialOutcome, DialRequest, DialResult, Telephony, TransferFailed
from byourside_server.telephony.routes import CarrierRoutes, websocket_url
from byourside_server.telephony.telnyx.rest import TelnyxRest, TelnyxRestError
from byourside_server.telephony.telnyx.signature import signature_valid
from byourside_server.telephony.telnyx.stream import TelnyxStream
from byourside_server.telephony.briefs import Briefs
from byourside_server.telephony.ws_media import WebSocketMedia

log = structlog.get_logger(__name__)

PREFIX = "/carriers/telnyx"
RING_GRACE_SECONDS = 10.0
MEDIA_WAIT_SECONDS = 15.0
START_WAIT_SECONDS = 10.0
TRANSFER_WAIT_SECONDS = 60.0  # from actions/transfer until the person answered or the attempt ended
NOT_ANSWERED = {
    "user_busy": DialOutcome(DialResult.BUSY),
    "call_rejected": DialOutcome(DialResult.DECLINED),
    "timeout": DialOutcome(DialResult.NO_ANSWER),
    "no_answer": DialOutcome(DialResult.NO_ANSWER),
    "originator_cancel": DialOutcome(DialResult.NO_ANSWER, reason="canceled"),
    "unallocated_number": DialOutcome(DialResult.FAILED, reason="invalid_number"),
    "not_found": DialOutcome(DialResult.FAILED, reason="invalid_number"),
}


@dataclass
class _Call:
    token: str
    call_id: str
    from_number: str = ""
    control_id: str | None = None
    media: WebSocketMedia | None = None
    verdict: AnswerVerdict | None = None
    answered: bool = False
    updates: asyncio.Queue = field(default_factory=asyncio.Queue)  # webhook payloads ("event_type" added), or the media
    transferring: asyncio.Queue | None = None  # while a transfer is under way: the new leg's webhook payloads


def map_hangup(payload: dict) -> DialOutcome:
    """A call that hung up before it was answered."""
    known = NOT_ANSWERED.get(str(payload.get("hangup_cause", "")))
    if known is not None:
        return known
    sip = str(payload.get("sip_hangup_cause") or "")
    return DialOutcome(DialResult.FAILED, reason=f"sip_{sip}" if sip.isdigit() else "carrier")


class TelnyxTelephony(Telephony):
    name = "telnyx"

    def __init__(self, rest: TelnyxRest, public_key: str, connection_id: str, public_url: str,
                 machine_detection: str = "off") -> None:
        self.rest = rest
        self.public_key = public_key
        self.connection_id = connection_id
        self.base = public_url.rstrip("/") + PREFIX
        self.machine_detection = machine_detection
        self._calls: dict[str, _Call] = {}
        self.briefs = Briefs()

    def carrier_routes(self) -> CarrierRoutes:
        return CarrierRoutes(PREFIX, [
            Route("/events/{token}", self._webhook, methods=["POST"]),
            self.briefs.route(),
            WebSocketRoute("/media/{token}", self._media_stream),
        ])

    async def aclose(self) -> None:
        await self.rest.aclose()

    def _dial_body(self, request: DialRequest, token: str) -> dict:
        body = {
            "connection_id": self.connection_id, "to": request.to, "from": request.from_number,
            "timeout_secs": max(5, min(600, round(request.ring_timeout_seconds))),
            "webhook_url": f"{self.base}/events/{token}", "webhook_url_method": "POST",
            "stream_url": websocket_url(f"{self.base}/media/{token}"), "stream_track": "inbound_track",
            "stream_bidirectional_mode": "rtp", "stream_bidirectional_codec": "PCMU",
        }
        if self.machine_detection != "off":
            body["answering_machine_detection"] = self.machine_detection
        return body

    async def dial(self, request: DialRequest) -> DialOutcome:
        call = _Call(secrets.token_urlsafe(18), request.call_id, request.from_number)
        self._calls[call.token] = call
        answered = False
        try:
            try:
                dialling = self.rest.dial(self._dial_body(request, call.token))
                call.control_id = await _finish_even_if_cancelled(dialling, call)
            except TelnyxRestError as exc:
                log.warning("telnyx_call_refused", call_id=call.call_id, http_status=exc.status, code=exc.code)
                return DialOutcome(DialResult.FAILED, reason=exc.reason)
            log.info("telnyx_call_created", call_id=call.call_id)
            outcome = await self._until_answered(call, request)
            answered = outcome.result is DialResult.ANSWERED
            return outcome
        except asyncio.CancelledError:
            await asyncio.shield(self._abandon(call))
            raise
        finally:
            if not answered:
                self._calls.pop(call.token, None)

    async def _until_answered(self, call: _Call, request: DialRequest) -> DialOutcome:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + request.ring_timeout_seconds + RING_GRACE_SECONDS
        while True:
            try:
                # Not wait_for: on Python 3.11 it swallows a cancellation that crosses an update arriving.
                async with asyncio.timeout(max(0.0, deadline - loop.time())):
                    update = await call.updates.get()
            except TimeoutError:
                await self._abandon(call)
                if call.answered:
                    log.error("telnyx_media_stream_missing", call_id=call.call_id,
                              hint="the call was answered but its media stream never reached this process: check "
                                   "that BYS_PUBLIC_URL reaches it (wss) and that a proxy passes WebSocket upgrades")
                    return DialOutcome(DialResult.FAILED, reason="media_stream_missing")
                return DialOutcome(DialResult.NO_ANSWER, reason="ring_timeout")
            if isinstance(update, WebSocketMedia):
                log.info("telnyx_call_answered", call_id=call.call_id)
                return DialOutcome(DialResult.ANSWERED, media=update)
            if update["event_type"] == "call.answered":
                call.answered = True
                deadline = loop.time() + MEDIA_WAIT_SECONDS
            elif update["event_type"] == "call.hangup":
                outcome = map_hangup(update)
                log.info("telnyx_call_not_answered", call_id=call.call_id, hangup_cause=update.get("hangup_cause"))
                return outcome if not call.answered else DialOutcome(DialResult.FAILED, reason="media_stream_missing")

    async def _abandon(self, call: _Call) -> None:
        if call.control_id is None:
            return
        try:
            await self.rest.hangup(call.control_id)
        except TelnyxRestError as exc:
            log.warning("telnyx_call_not_ended", call_id=call.call_id, http_status=exc.status, code=exc.code)

    # Telnyx calling us
    async def _webhook(self, request: Request) -> Response:
        body = await request.body()
        if not signature_valid(self.public_key, request.headers.get("telnyx-timestamp"), body,
                               request.headers.get("telnyx-signature-ed25519"), time.time()):
            log.warning("telnyx_signature_refused")
            return Response(json.dumps({"error": "forbidden", "message": "telnyx-signature-ed25519 does not match "
                                        "this request."}), status_code=403, media_type="application/json")
        call = self._calls.get(request.path_params["token"])
        try:
            data = json.loads(body)["data"]
            event_type, payload = str(data["event_type"]), dict(data.get("payload") or {})
        except (ValueError, KeyError, TypeError):
            return Response(status_code=204)  # signed, but not an event we read
        if call is None:
            return Response(status_code=204)
        if event_type in ("call.machine.detection.ended", "call.machine.premium.detection.ended"):
            call.verdict = _verdict(str(payload.get("result", "")))
            if call.media is not None:
                call.media.verdict = call.verdict
        elif call.media is None:
            call.updates.put_nowait({**payload, "event_type": event_type})
        elif call.transferring is not None and payload.get("call_control_id") != call.control_id:
            call.transferring.put_nowait({**payload, "event_type": event_type})
        return Response(status_code=204)

    async def _media_stream(self, websocket: WebSocket) -> None:
        token = websocket.path_params["token"]
        call = self._calls.get(token)
        if call is None or call.media is not None:
            await websocket.close(code=1008)
            return
        await websocket.accept()
        start = await _wait_for_start(websocket)
        if start is None or start.get("call_control_id") != call.control_id:
            log.warning("telnyx_media_stream_refused", call_id=call.call_id)
            await websocket.close(code=1008)
            return

        async def end_call() -> None:
            assert call.control_id is not None
            await self.rest.hangup(call.control_id)

        async def transfer_call(to: str, brief: str | None, brief_audio: np.ndarray | None) -> None:
            await self._transfer(call, to, brief, brief_audio)

        media = WebSocketMedia(websocket, TelnyxStream(), call.call_id, end_call, transfer_call)
        media.verdict = call.verdict
        call.media = media
        media.start()
        call.updates.put_nowait(media)
        try:
            await media.wait_closed()
        finally:
            self._calls.pop(token, None)


    # handing the call to a person
    def transfer_body(self, call: _Call, to: str, brief_token: str | None) -> dict:
        body = {"to": to, "webhook_url": f"{self.base}/events/{call.token}", "webhook_url_method": "POST"}
        if call.from_number:
            body["from"] = call.from_number
        if brief_token is not None:
            body["audio_url"] = f"{self.base}/brief/{brief_token}.wav"
        return body

    async def _transfer(self, call: _Call, to: str, brief: str | None, brief_audio: np.ndarray | None) -> None:
        assert call.control_id is not None
        token = None
        if brief and brief_audio is not None:
            token = self.briefs.put(brief, brief_audio)
        elif brief:
            log.info("telnyx_brief_not_played", call_id=call.call_id, why="Telnyx plays audio only; no voice rendered it")
        call.transferring = asyncio.Queue()
        try:
            try:
                await self.rest.transfer(call.control_id, self.transfer_body(call, to, token))
            except TelnyxRestError as exc:
                log.warning("telnyx_transfer_refused", call_id=call.call_id, http_status=exc.status, code=exc.code)
                raise TransferFailed(exc.reason) from None
            try:
                async with asyncio.timeout(TRANSFER_WAIT_SECONDS):
                    while True:
                        event = await call.transferring.get()
                        if event["event_type"] in ("call.bridged", "call.answered"):
                            break
                        if event["event_type"] == "call.hangup":
                            outcome = map_hangup(event)
                            reason = outcome.reason or outcome.result.value
                            log.info("telnyx_transfer_not_answered", call_id=call.call_id, reason=reason)
                            raise TransferFailed(reason)
            except TimeoutError:
                raise TransferFailed("no_answer") from None
        finally:
            call.transferring = None
        log.info("telnyx_call_transferred", call_id=call.call_id, warm=token is not None)


async def _finish_even_if_cancelled(dialling, call: _Call) -> str:  # noqa: ANN001
    """Dial; cancelled meanwhile, still learn the call_control_id (Telnyx may be ringing it) before giving up,
    so that the abandoning can hang it up."""
    task = asyncio.ensure_future(dialling)
    try:
        return await asyncio.shield(task)
    except asyncio.CancelledError:
        try:
            call.control_id = await task
        except Exception:  # noqa: BLE001 - not dialled: nothing to hang up
            pass
        raise


def _verdict(result: str) -> AnswerVerdict:
    kind = (AnsweredBy.HUMAN if result.startswith("human")
            else AnsweredBy.MACHINE if result in ("machine", "fax_detected") else AnsweredBy.UNKNOWN)
    return AnswerVerdict(kind, {"source": "carrier", "carrier": "telnyx", "result": result})


async def _wait_for_start(websocket: WebSocket) -> dict | None:
    try:
        async with asyncio.timeout(START_WAIT_SECONDS):
            while True:
                message = json.loads(await websocket.receive_text())
                if message.get("event") == "start":
                    return dict(message.get("start") or {})
    except Exception:  # noqa: BLE001 - no start in time, a broken message or a closed socket
        return None
