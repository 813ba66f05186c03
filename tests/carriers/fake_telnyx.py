"""A fake Telnyx of ours: Call Control API v2, Ed25519-signed webhooks and a media-streaming client, on loopback.

It follows Telnyx's documented protocol (docs/carriers.md names the versions):

- API v2, JSON with ``Authorization: Bearer <API key>``: ``POST /v2/calls`` (connection_id, to,
  from, timeout_secs, webhook_url, stream_url, stream_track, stream_bidirectional_mode=rtp,
  stream_bidirectional_codec=PCMU, answering_machine_detection) answers ``{"data": {"call_control_id",
  ...}}``; ``POST /v2/calls/{id}/actions/hangup``; ``POST /v2/calls/{id}/actions/transfer`` (to, from,
  audio_url, webhook_url: the new leg's events go there) answers ``{"data": {"result": "ok"}}``, or 422
  code 90018 when the call has ended; ``GET /v2/phone_numbers`` and ``/v2/verified_numbers``
  (``page[number]``, ``page[size]``, ``meta.total_pages``); errors ``{"errors": [{"code", "title", "detail"}]}``.
- Webhooks: ``{"data": {"record_type": "event", "event_type", "id", "occurred_at", "payload"}, "meta"}``
  for call.initiated, call.answered, call.hangup (hangup_cause, sip_hangup_cause) and
  call.machine.detection.ended (result), signed ``telnyx-signature-ed25519`` over
  ``{telnyx-timestamp}|{body}`` with the fake's own key pair.
- Media streaming: a WebSocket to stream_url (unsigned, as Telnyx's): ``connected``, ``start``
  (stream_id, start.call_control_id, media_format PCMU 8000 Hz), ``media`` every 20 ms, ``dtmf``,
  ``mark`` echoes, ``stop``; it takes ``media``, ``mark`` and ``clear``.

A transfer dials the ``to`` number's scenario as a new leg: ``call.initiated``, then ``call.answered``
and ``call.bridged`` (after fetching ``audio_url``, which Telnyx plays to the person before bridging) and
the first leg's media stream stops; or the new leg's ``call.hangup`` (user_busy, timeout, ...) and the
first call stays as it was.

The call's life (scenarios, rings, the callee over the stream) is the fake Twilio's, told in Telnyx's
events; the callee's side of the stream is the same ``StreamCallee`` speaking Telnyx's field names.
"""

from __future__ import annotations

import base64
import json
import secrets
import time
import uuid

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from fake_twilio import E164, NOT_ANSWERED, FakeCall, FakeTransfer, FakeTwilio
from stream_callee import StreamCallee

# Twilio-worded outcome (as the shared call life reports it) -> Telnyx's hangup_cause
HANGUP_CAUSES = {("busy", "486"): "user_busy", ("busy", "603"): "call_rejected", ("failed", "404"): "unallocated_number",
                 ("failed", "503"): "unspecified", ("no-answer", "487"): "timeout", ("canceled", "487"): "originator_cancel"}


class TelnyxStreamCallee(StreamCallee):
    async def _send(self, message: dict) -> None:
        message = {**message, "sequence_number": str(next(self._seq)), "stream_id": self.stream_sid}
        await self.socket.send(json.dumps(message))


class FakeTelnyx(FakeTwilio):
    def __init__(self, book, voice, *, api_key: str = "KEYfake", connection_id: str = "1234567890",  # noqa: ANN001
                 **options) -> None:
        super().__init__(book, voice, **options)
        self.api_key, self.connection_id = api_key, connection_id
        self._key = Ed25519PrivateKey.generate()
        self.public_key = base64.b64encode(self._key.public_key().public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw)).decode()
        self.stream_class = TelnyxStreamCallee

    def app(self) -> Starlette:
        return Starlette(routes=[
            Route("/v2/calls", self._dial, methods=["POST"]),
            Route("/v2/calls/{sid}/actions/hangup", self._hangup, methods=["POST"]),
            Route("/v2/calls/{sid}/actions/transfer", self._transfer_action, methods=["POST"]),
            Route("/v2/phone_numbers", self._list_numbers, methods=["GET"]),
            Route("/v2/verified_numbers", self._list_verified, methods=["GET"]),
        ])

    @staticmethod
    def _telnyx_error(status: int, code: str, detail: str) -> JSONResponse:
        return JSONResponse({"errors": [{"code": code, "title": detail, "detail": detail}]}, status_code=status)

    def _authorised(self, request: Request) -> bool:
        return request.headers.get("authorization") == f"Bearer {self.api_key}"

    async def _dial(self, request: Request) -> Response:
        if not self._authorised(request):
            return self._telnyx_error(401, "10009", "Authentication failed")
        body = await request.json()
        to, from_ = str(body.get("to", "")), str(body.get("from", ""))
        if body.get("connection_id") != self.connection_id:
            return self._telnyx_error(422, "10015", "Invalid connection_id")
        if not E164.fullmatch(to):
            return self._telnyx_error(422, "10016", "Invalid 'to' number")
        if from_ not in self.numbers + self.caller_ids:
            return self._telnyx_error(422, "10011", "The 'from' number is not a number of the account")
        params = [("Timeout", str(body.get("timeout_secs", 30))), ("StreamUrl", str(body.get("stream_url", ""))),
                  ("StatusCallback", str(body.get("webhook_url", "")))]
        if body.get("answering_machine_detection"):
            params.append(("MachineDetection", str(body["answering_machine_detection"])))
        call = FakeCall("v3:" + secrets.token_urlsafe(16), to, from_, params)
        self._start_call(call)
        return JSONResponse({"data": {"call_control_id": call.sid, "call_leg_id": str(uuid.uuid4()),
                                      "call_session_id": str(uuid.uuid4()), "is_alive": False, "record_type": "call"}})

    async def _hangup(self, request: Request) -> Response:
        if not self._authorised(request):
            return self._telnyx_error(401, "10009", "Authentication failed")
        call = self.calls.get(request.path_params["sid"])
        if call is None:
            return self._telnyx_error(404, "10005", "Resource not found")
        call.end_requested.set()
        return JSONResponse({"data": {"result": "ok"}})

    async def _transfer_action(self, request: Request) -> Response:
        if not self._authorised(request):
            return self._telnyx_error(401, "10009", "Authentication failed")
        call = self.calls.get(request.path_params["sid"])
        if call is None:
            return self._telnyx_error(404, "10005", "Resource not found")
        if call.status != "in-progress":
            return self._telnyx_error(422, "90018", "Call has already ended")
        body = await request.json()
        to = str(body.get("to", ""))
        if not E164.fullmatch(to):
            return self._telnyx_error(422, "10016", "Invalid 'to' number")
        transfer = FakeTransfer(to, body.get("from"), body.get("audio_url"))
        call.transfers.append(transfer)
        self._spawn(self._telnyx_transfer(call, transfer, str(body.get("webhook_url") or call.param("StatusCallback"))))
        return JSONResponse({"data": {"result": "ok"}})

    async def _telnyx_transfer(self, call: FakeCall, transfer: FakeTransfer, url: str) -> None:
        leg = "v3:" + secrets.token_urlsafe(16)
        legs = {"url": url, "control_id": leg, "to": transfer.to}
        try:
            await self._event(call, "call.initiated", **legs, state="parked")
            scenario = self.book.for_number(transfer.to)
            if scenario is None or scenario.kind in NOT_ANSWERED or scenario.kind == "no_answer":
                kind = scenario.kind if scenario is not None else "failure"
                status, code = NOT_ANSWERED.get(kind, ("no-answer", "487"))
                transfer.status = status
                await self._event(call, "call.hangup", **legs, hangup_cause=HANGUP_CAUSES.get((status, code), "timeout"),
                                  sip_hangup_cause=code, hangup_source="callee")
                return
            if transfer.whisper_url:
                assert self._http is not None
                audio = await self._http.get(transfer.whisper_url)
                transfer.whisper_audio = audio.content if audio.status_code == 200 else None
            await self._event(call, "call.answered", **legs, state="answered")
            await self._event(call, "call.bridged", **legs)
            transfer.status = "connected"
            if call.media is not None:  # the person has the callee now: our stream is done
                await call.media.hangup()
        finally:
            transfer.done.set()

    async def _page(self, request: Request, numbers: list[str]) -> Response:
        if not self._authorised(request):
            return self._telnyx_error(401, "10009", "Authentication failed")
        page = int(request.query_params.get("page[number]", "1"))
        size = min(int(request.query_params.get("page[size]", "20")), self.page_size)
        pages = max(1, -(-len(numbers) // size))
        chunk = numbers[(page - 1) * size:page * size]
        return JSONResponse({"data": [{"phone_number": n, "id": str(uuid.uuid4())} for n in chunk],
                             "meta": {"page_number": page, "page_size": size, "total_pages": pages,
                                      "total_results": len(numbers)}})

    async def _list_numbers(self, request: Request) -> Response:
        return await self._page(request, self.numbers)

    async def _list_verified(self, request: Request) -> Response:
        return await self._page(request, self.caller_ids)

    # the call's life, told as Telnyx events
    async def _event(self, call: FakeCall, event_type: str, *, url: str | None = None, control_id: str | None = None,
                     to: str | None = None, **payload: str) -> None:
        url = url or call.param("StatusCallback")
        body = json.dumps({"data": {"record_type": "event", "event_type": event_type, "id": str(uuid.uuid4()),
                                    "occurred_at": time.strftime("%Y-%m-%dT%H:%M:%S.000000Z", time.gmtime()),
                                    "payload": {"call_control_id": control_id or call.sid,
                                                "connection_id": self.connection_id,
                                                "from": call.from_, "to": to or call.to, "direction": "outgoing",
                                                **payload}},
                           "meta": {"attempt": 1, "delivered_to": url}}).encode()
        timestamp = str(int(time.time()))
        key = Ed25519PrivateKey.generate() if self.forge_signatures else self._key
        signature = base64.b64encode(key.sign(timestamp.encode() + b"|" + body)).decode()
        assert self._http is not None
        try:
            answer = await self._http.post(url, content=body, headers={
                "Content-Type": "application/json", "telnyx-timestamp": timestamp, "telnyx-signature-ed25519": signature})
            call.callback_answers.append(answer.status_code)
        except Exception:  # noqa: BLE001 - our server is gone
            call.callback_answers.append(0)

    async def _status(self, call: FakeCall, status: str, **extra: str) -> None:
        call.status = status
        call.statuses_sent.append(status)
        if status == "initiated":
            await self._event(call, "call.initiated", state="parked")
        elif status == "in-progress":
            await self._event(call, "call.answered", state="answered")
        elif status != "ringing":  # Telnyx tells no ringing; every end is a hangup with its cause
            code = extra.get("SipResponseCode", "")
            cause = HANGUP_CAUSES.get((status, code), "normal_clearing")
            await self._event(call, "call.hangup", hangup_cause=cause, sip_hangup_cause=code or "200",
                              hangup_source="callee" if status != "canceled" else "caller")

    def _stream_url(self, call: FakeCall) -> str:
        return call.param("StreamUrl") or ""

    def _stream_headers(self, url: str) -> dict[str, str]:
        return {}  # Telnyx does not sign its media WebSocket

    async def _send_stream_start(self, socket, call: FakeCall, stream_id: str) -> None:  # noqa: ANN001
        await socket.send(json.dumps({"event": "connected", "version": "1.0.0"}))
        await socket.send(json.dumps({"event": "start", "sequence_number": "1", "stream_id": stream_id, "start": {
            "user_id": str(uuid.uuid4()), "call_control_id": call.sid, "client_state": None,
            "media_format": {"encoding": "PCMU", "sample_rate": 8000, "channels": 1}}}))

    async def _report_amd(self, call: FakeCall, kind: str) -> None:
        import asyncio

        await asyncio.sleep(2.5)
        await self._event(call, "call.machine.detection.ended", result="machine" if kind == "voicemail" else "human")
