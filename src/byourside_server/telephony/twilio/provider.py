"""The ``twilio`` telephony provider: calls through Twilio's REST API, audio over a bidirectional Media Stream.

Dialling creates the call with inline TwiML that connects the answered call to
our WebSocket (``<Connect><Stream>``), a status callback for its progress and
Twilio's ring timeout; with ``BYS_TWILIO_MACHINE_DETECTION`` also asynchronous
answering-machine detection. Every URL we give Twilio is this process's
``BYS_PUBLIC_URL`` plus a route below ``/carriers/twilio`` and an unguessable
per-call token; every request Twilio makes to them must carry a valid
``X-Twilio-Signature`` (else 403 and nothing happens).

- answered: the Media Stream connects (``start``) -> ANSWERED with a
  ``WebSocketMedia`` (telephony/ws_media.py);
- ``busy`` -> BUSY (SIP 603 in ``SipResponseCode`` -> DECLINED), ``no-answer``
  -> NO_ANSWER, ``failed`` -> FAILED, ``canceled`` -> NO_ANSWER;
- our own ring deadline (Twilio's plus a grace) cancels the call through the
  REST API (``Status=completed`` cancels a ringing call and hangs up a live
  one); so do cancelling the dial and hanging up the media.
- transfer to a person: the live call's TwiML is replaced with ``<Dial action>``
  (the Update a Call resource); Twilio stops our Media Stream and dials the
  person. The ``<Number url>`` whisper, which Twilio requests (signed) once the
  person answers and before connecting them, is the sign that they took the
  call: the transfer is done. Warm, the whisper plays the brief in our voice
  (``<Play>`` of the WAV at ``/brief/{token}.wav``), or ``<Say>`` when we have
  only its words; cold, it is empty. A dial that ends without an answer
  (busy, no-answer, failed, canceled) makes Twilio request the ``action`` URL
  with that ``DialCallStatus``: we answer ``<Connect><Stream>`` to the call's
  own media URL, the callee comes back on a new stream and the transfer fails
  (the conversation goes on). The action that follows a connected dial (the
  person's conversation is over) is answered ``<Hangup/>``.
"""

from __future__ import annotations

import asyncio
import json
import secrets
from dataclasses import dataclass, field
from xml.sax.saxutils import escape, quoteattr

import numpy as np
import structlog
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket

from byourside_server.domain import AnsweredBy, AnswerVerdict
from byourside_server.telephony.base import (
    DialOutcome,
    DialRequest,
    DialResult,
    Telephony,
    TransferFailed,
)
from byourside_server.telephony.briefs import Briefs
from byourside_server.telephony.routes import CarrierRoutes, websocket_url
from byourside_server.telephony.twilio.rest import TwilioRest, TwilioRestError
from byourside_server.telephony.twilio.signature import signature_valid
from byourside_server.telephony.twilio.stream import TwilioStream
from byourside_server.telephony.ws_media import WebSocketMedia

log = structlog.get_logger(__name__)

PREFIX = "/carriers/twilio"
RING_GRACE_SECONDS = 10.0  # Twilio ends an unanswered call at Timeout itself; ours is the safety net
MEDIA_WAIT_SECONDS = 15.0  # from answer until the Media Stream must have started
START_WAIT_SECONDS = 10.0  # from the WebSocket's accept until Twilio's start message
SIGNATURE_HEADER = "x-twilio-signature"
TRANSFER_RING_SECONDS = 30  # <Dial timeout>: how long the person's phone rings
TRANSFER_GRACE_SECONDS = 30.0  # beyond that, for Twilio's whisper or action request (a safety net)
NOT_TAKEN = {"busy": "busy", "no-answer": "no_answer", "failed": "failed", "canceled": "no_answer"}  # DialCallStatus


@dataclass
class _Call:
    """A call we placed, from dial until its media has closed."""

    token: str
    call_id: str
    from_number: str = ""
    sid: str | None = None
    media: WebSocketMedia | None = None
    verdict: AnswerVerdict | None = None
    answered: bool = False  # Twilio reported in-progress
    updates: asyncio.Queue = field(default_factory=asyncio.Queue)  # status callbacks' params, or the media
    attempt: _Attempt | None = None  # the transfer under way


@dataclass
class _Attempt:
    """One ``<Dial>`` to a person: its whisper and action URLs carry ``token``."""

    token: str
    call: _Call
    brief_token: str | None
    outcome: asyncio.Future  # "answered", a DialCallStatus that did not connect, or "call_ended"
    back: asyncio.Event = field(default_factory=asyncio.Event)  # the callee's new stream has started


def map_final_status(status: str, sip_code: str | None) -> DialOutcome | None:
    """A call that ended before it was answered, by its CallStatus; None while it is still on its way."""
    if status == "busy":
        return DialOutcome(DialResult.DECLINED if sip_code == "603" else DialResult.BUSY)
    if status == "no-answer":
        return DialOutcome(DialResult.NO_ANSWER)
    if status == "canceled":
        return DialOutcome(DialResult.NO_ANSWER, reason="canceled")
    if status == "failed":
        return DialOutcome(DialResult.FAILED, reason=f"sip_{sip_code}" if sip_code and sip_code.isdigit() else "carrier")
    if status == "completed":  # ended as it was answered, before its media started
        return DialOutcome(DialResult.FAILED, reason="media_stream_missing")
    return None


def verdict_from(answered_by: str, params: dict[str, str]) -> AnswerVerdict:
    """Twilio's AnsweredBy (human, machine_start, machine_end_beep, machine_end_silence, machine_end_other, fax,
    unknown) as our verdict, with Twilio's own figures as evidence."""
    kind = (AnsweredBy.HUMAN if answered_by == "human"
            else AnsweredBy.MACHINE if answered_by.startswith("machine") or answered_by == "fax"
            else AnsweredBy.UNKNOWN)
    evidence = {"source": "carrier", "carrier": "twilio", "answeredBy": answered_by}
    duration = params.get("MachineDetectionDuration", "")
    if duration.isdigit():
        evidence["machineDetectionDurationMs"] = int(duration)
    return AnswerVerdict(kind, evidence)


class TwilioTelephony(Telephony):
    name = "twilio"

    def __init__(self, rest: TwilioRest, auth_token: str, public_url: str, machine_detection: str = "off") -> None:
        self.rest = rest
        self.auth_token = auth_token
        self.base = public_url.rstrip("/") + PREFIX  # what Twilio requests, exactly: the signed URLs
        self.machine_detection = machine_detection
        self._calls: dict[str, _Call] = {}
        self._attempts: dict[str, _Attempt] = {}
        self.briefs = Briefs()

    def carrier_routes(self) -> CarrierRoutes:
        return CarrierRoutes(PREFIX, [
            Route("/status/{token}", self._status_callback, methods=["POST"]),
            Route("/amd/{token}", self._amd_callback, methods=["POST"]),
            Route("/whisper/{token}", self._whisper, methods=["POST"]),
            Route("/dialed/{token}", self._dialed, methods=["POST"]),
            self.briefs.route(),
            WebSocketRoute("/media/{token}", self._media_stream),
        ])

    async def aclose(self) -> None:
        await self.rest.aclose()

    # placing the call
    def _create_params(self, request: DialRequest, token: str) -> list[tuple[str, str]]:
        stream_url = websocket_url(f"{self.base}/media/{token}")
        twiml = f"<Response><Connect><Stream url={quoteattr(stream_url)}/></Connect></Response>"
        params = [
            ("To", request.to), ("From", request.from_number), ("Twiml", twiml),
            ("StatusCallback", f"{self.base}/status/{token}"), ("StatusCallbackMethod", "POST"),
            *[("StatusCallbackEvent", event) for event in ("initiated", "ringing", "answered", "completed")],
            ("Timeout", str(max(5, min(600, round(request.ring_timeout_seconds))))),
        ]
        if self.machine_detection != "off":
            params += [("MachineDetection", self.machine_detection), ("AsyncAmd", "true"),
                       ("AsyncAmdStatusCallback", f"{self.base}/amd/{token}"), ("AsyncAmdStatusCallbackMethod", "POST")]
        return params

    async def dial(self, request: DialRequest) -> DialOutcome:
        call = _Call(secrets.token_urlsafe(18), request.call_id, request.from_number)
        self._calls[call.token] = call
        answered = False
        try:
            try:
                creating = self.rest.create_call(self._create_params(request, call.token))
                call.sid = await _finish_even_if_cancelled(creating, call)
            except TwilioRestError as exc:
                log.warning("twilio_call_refused", call_id=call.call_id, http_status=exc.status, code=exc.code,
                            reason=exc.reason)
                return DialOutcome(DialResult.FAILED, reason=exc.reason)
            log.info("twilio_call_created", call_id=call.call_id, call_sid=call.sid)
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
                return self._timed_out(call)
            if isinstance(update, WebSocketMedia):
                log.info("twilio_call_answered", call_id=call.call_id)
                return DialOutcome(DialResult.ANSWERED, media=update)
            status = update.get("CallStatus", "")
            if status == "in-progress":  # answered: the Media Stream follows within moments
                call.answered = True
                deadline = loop.time() + MEDIA_WAIT_SECONDS
                continue
            final = map_final_status(status, update.get("SipResponseCode"))
            if final is not None:
                log.info("twilio_call_not_answered", call_id=call.call_id, call_status=status,
                         sip_code=update.get("SipResponseCode"))
                return final

    def _timed_out(self, call: _Call) -> DialOutcome:
        if call.answered:
            log.error("twilio_media_stream_missing", call_id=call.call_id,
                      hint="the call was answered but its Media Stream never reached this process: check that "
                           "BYS_PUBLIC_URL reaches it (wss) and that a proxy passes WebSocket upgrades")
            return DialOutcome(DialResult.FAILED, reason="media_stream_missing")
        return DialOutcome(DialResult.NO_ANSWER, reason="ring_timeout")

    async def _abandon(self, call: _Call) -> None:
        """End a call we no longer wait for: cancel it while it rings, hang it up if it was answered."""
        if call.sid is None:
            return
        try:
            await self.rest.end_call(call.sid, "completed")  # cancels a queued or ringing call, hangs up a live one
        except TwilioRestError as exc:
            log.warning("twilio_call_not_ended", call_id=call.call_id, call_sid=call.sid, http_status=exc.status,
                        code=exc.code)

    # Twilio calling us
    def _signed(self, url: str, params: list[tuple[str, str]], signature: str | None) -> bool:
        return signature_valid(self.auth_token, url, params, signature)

    async def _form(self, request: Request, route: str) -> tuple[_Call | None, dict[str, str]] | None:
        """The call and params of a signed callback; None when the signature does not match."""
        token = request.path_params["token"]
        form = await request.form()
        params = [(k, v) for k, v in form.multi_items() if isinstance(v, str)]
        if not self._signed(f"{self.base}/{route}/{token}", params, request.headers.get(SIGNATURE_HEADER)):
            log.warning("twilio_signature_refused", route=route)
            return None
        return self._calls.get(token), dict(params)

    async def _status_callback(self, request: Request) -> Response:
        found = await self._form(request, "status")
        if found is None:
            return _forbidden()
        call, params = found
        if call is not None and call.media is None:
            call.updates.put_nowait(params)
        elif call is not None and call.attempt is not None and params.get("CallStatus") == "completed":
            _settle(call.attempt, "call_ended")  # the callee hung up while the person's phone rang
        return Response(status_code=204)

    async def _amd_callback(self, request: Request) -> Response:
        found = await self._form(request, "amd")
        if found is None:
            return _forbidden()
        call, params = found
        if call is not None and params.get("AnsweredBy"):
            call.verdict = verdict_from(params["AnsweredBy"], params)
            log.info("twilio_answered_by", call_id=call.call_id, answered_by=call.verdict.kind.value)
            if call.media is not None:
                call.media.verdict = call.verdict
        return Response(status_code=204)

    async def _media_stream(self, websocket: WebSocket) -> None:
        token = websocket.path_params["token"]
        call = self._calls.get(token)
        url = websocket_url(f"{self.base}/media/{token}")
        if not self._signed(url, [], websocket.headers.get(SIGNATURE_HEADER)):
            log.warning("twilio_signature_refused", route="media")
            await websocket.close(code=1008)  # before accept: the handshake is answered 403
            return
        returning = call is not None and call.media is not None and call.media.awaiting_stream
        if call is None or (call.media is not None and not returning):
            await websocket.close(code=1008)
            return
        await websocket.accept()
        start = await self._wait_for_start(websocket)
        if start is None or start.get("callSid") != call.sid:
            log.warning("twilio_media_stream_refused", call_id=call.call_id)
            await websocket.close(code=1008)
            return
        if returning:
            await self._stream_back(call, websocket, start["streamSid"])
            return

        async def end_call() -> None:
            assert call.sid is not None
            await self.rest.end_call(call.sid, "completed")

        async def transfer_call(to: str, brief: str | None, brief_audio: np.ndarray | None) -> None:
            await self._transfer(call, to, brief, brief_audio)

        media = WebSocketMedia(websocket, TwilioStream(start["streamSid"]), call.call_id, end_call, transfer_call)
        media.verdict = call.verdict
        call.media = media
        media.start()
        call.updates.put_nowait(media)
        try:
            await media.wait_closed()
        finally:
            self._calls.pop(token, None)

    # handing the call to a person
    def transfer_twiml(self, to: str, from_number: str, attempt_token: str) -> str:
        """``<Dial>`` the person, presenting our caller ID, with the whisper (their answer; warm: the brief) and
        the action (a dial that ended: the callee comes back to us)."""
        caller_id = f" callerId={quoteattr(from_number)}" if from_number else ""
        action = quoteattr(f"{self.base}/dialed/{attempt_token}")
        whisper = quoteattr(f"{self.base}/whisper/{attempt_token}")
        return (f"<Response><Dial{caller_id} action={action} method=\"POST\" timeout=\"{TRANSFER_RING_SECONDS}\">"
                f"<Number url={whisper} method=\"POST\">{escape(to)}</Number></Dial></Response>")

    def stream_twiml(self, call: _Call) -> str:
        """The TwiML that connects the call to our media WebSocket (again, after a dial nobody took)."""
        stream_url = websocket_url(f"{self.base}/media/{call.token}")
        return f"<Response><Connect><Stream url={quoteattr(stream_url)}/></Connect></Response>"

    async def _transfer(self, call: _Call, to: str, brief: str | None, brief_audio: np.ndarray | None) -> None:
        assert call.sid is not None
        attempt = _Attempt(secrets.token_urlsafe(18), call, self.briefs.put(brief, brief_audio) if brief else None,
                           asyncio.get_running_loop().create_future())
        self._attempts[attempt.token] = attempt
        call.attempt = attempt
        try:
            try:
                await self.rest.update_call_twiml(call.sid, self.transfer_twiml(to, call.from_number, attempt.token))
            except TwilioRestError as exc:
                log.warning("twilio_transfer_refused", call_id=call.call_id, http_status=exc.status, code=exc.code)
                raise TransferFailed(exc.reason) from None
            try:
                outcome = await asyncio.wait_for(asyncio.shield(attempt.outcome),
                                                 TRANSFER_RING_SECONDS + TRANSFER_GRACE_SECONDS)
            except TimeoutError:
                outcome = "call_ended"
                log.warning("twilio_transfer_unanswered_by_twilio", call_id=call.call_id)
                await self._abandon(call)
            if outcome == "answered":
                log.info("twilio_call_transferred", call_id=call.call_id, warm=brief is not None)
                return
            if outcome != "call_ended":
                try:
                    await asyncio.wait_for(attempt.back.wait(), MEDIA_WAIT_SECONDS)
                except TimeoutError:
                    log.warning("twilio_media_stream_not_back", call_id=call.call_id)
                    await self._abandon(call)
            log.info("twilio_transfer_not_taken", call_id=call.call_id, dial_status=outcome)
            raise TransferFailed(NOT_TAKEN.get(outcome, "call_ended"))
        finally:
            call.attempt = None
            self._attempts.pop(attempt.token, None)  # a later action (the person's call is over) is answered Hangup

    async def _whisper(self, request: Request) -> Response:
        """TwiML Twilio runs on the person's leg once they answer, before connecting them: the brief."""
        found = await self._form(request, "whisper")
        if found is None:
            return _forbidden()
        attempt = self._attempts.get(request.path_params["token"])
        if attempt is None:
            return _twiml("<Response/>")
        _settle(attempt, "answered")
        brief = self.briefs.get(attempt.brief_token) if attempt.brief_token else None
        if brief is None:
            return _twiml("<Response/>")
        if brief.wav is not None:
            return _twiml(f"<Response><Play>{escape(f'{self.base}/brief/{attempt.brief_token}.wav')}</Play></Response>")
        return _twiml(f"<Response><Say>{escape(brief.text)}</Say></Response>")

    async def _dialed(self, request: Request) -> Response:
        """The ``<Dial action>``: the dial has ended. Not connected: the callee comes back to our stream."""
        found = await self._form(request, "dialed")
        if found is None:
            return _forbidden()
        _, params = found
        attempt = self._attempts.pop(request.path_params["token"], None)
        dial_status = params.get("DialCallStatus", "")
        if attempt is None or attempt.outcome.done() or dial_status not in NOT_TAKEN:
            if attempt is not None:
                _settle(attempt, "answered")  # DialCallStatus completed: the person took the call
            return _twiml("<Response><Hangup/></Response>")  # after the person's conversation: the call is over
        if params.get("CallStatus") == "completed":  # the callee hung up meanwhile
            _settle(attempt, "call_ended")
            return _twiml("<Response/>")
        _settle(attempt, dial_status)
        return _twiml(self.stream_twiml(attempt.call))

    async def _stream_back(self, call: _Call, websocket: WebSocket, stream_sid: str) -> None:
        """The callee's new stream after a dial nobody took: the same media carries on over it."""
        media = call.media
        assert media is not None
        media.resume(websocket, TwilioStream(stream_sid))
        if call.attempt is not None:
            call.attempt.back.set()
        await media.wait_closed()

    async def _wait_for_start(self, websocket: WebSocket) -> dict | None:
        """Twilio's ``start`` message (after ``connected``): the streamSid and callSid."""
        try:
            async with asyncio.timeout(START_WAIT_SECONDS):
                while True:
                    message = json.loads(await websocket.receive_text())
                    if message.get("event") == "start":
                        start = message.get("start") or {}
                        return {"streamSid": message.get("streamSid") or start.get("streamSid"),
                                "callSid": start.get("callSid")}
        except Exception:  # noqa: BLE001 - no start in time, a broken message or a closed socket
            return None


async def _finish_even_if_cancelled(creating, call: _Call) -> str:
    """Create the call; cancelled meanwhile, still learn its sid (Twilio may be ringing it) before giving up,
    so that the abandoning can end it."""
    task = asyncio.ensure_future(creating)
    try:
        return await asyncio.shield(task)
    except asyncio.CancelledError:
        try:
            call.sid = await task
        except Exception:  # noqa: BLE001 - not created: nothing to end
            pass
        raise


def _settle(attempt: _Attempt, outcome: str) -> None:
    if not attempt.outcome.done():
        attempt.outcome.set_result(outcome)


def _twiml(body: str) -> Response:
    return Response(body, media_type="application/xml")


def _forbidden() -> Response:
    body = json.dumps({"error": "forbidden", "message": "X-Twilio-Signature does not match this request."})
    return Response(body, status_code=403, media_type="application/json")
