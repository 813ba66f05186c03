"""A fake Twilio of ours: the REST API, signed status callbacks and a Media Streams client, on loopback.

It follows Twilio's documented wire protocol (docs/carriers.md names the versions):

- REST API 2010-04-01, form-encoded with HTTP Basic auth (Account SID or API key):
  ``POST /2010-04-01/Accounts/{sid}/Calls.json`` (To, From, Twiml with
  ``<Connect><Stream url=...>``, StatusCallback, StatusCallbackEvent, Timeout,
  MachineDetection + AsyncAmd + AsyncAmdStatusCallback), ``POST .../Calls/{CallSid}.json``
  (the Update a Call resource: Status=canceled|completed, or Twiml replacing a live call's instructions,
  21220 when the call is not in progress), ``GET .../IncomingPhoneNumbers.json`` and
  ``.../OutgoingCallerIds.json`` (paged with next_page_uri); errors as ``{"code", "message", "status"}``
  (21210 From not owned or verified, 21211 invalid To, 20003 bad credentials).
- Status callbacks: form POSTs (CallSid, CallStatus, SipResponseCode, CallDuration, ...) signed with
  X-Twilio-Signature (HMAC-SHA1 of the URL and the sorted parameters, keyed with the Auth Token).
- Media Streams, bidirectional (protocol "Call" 1.0.0): a WebSocket to the Stream URL whose handshake
  is signed the same way; ``connected``, ``start``, ``media`` every 20 ms (base64 μ-law), ``dtmf``,
  ``mark`` echoes once the audio before it has played, ``stop``; it plays what it receives in real
  time, drops it on ``clear`` (echoing the marks it held).

- Transfers: new TwiML with ``<Dial callerId=... action=...><Number url=...>...</Number></Dial>`` ends the
  Media Stream (``stop``, as Twilio does when ``<Connect>`` is replaced; the callee stays on the line) and
  dials the number's scenario; when it answers and the Number has a ``url`` (the whisper), that URL is
  requested (signed, with the child call's CallSid and ParentCallSid) and what its TwiML says (``<Say>``)
  or plays (``<Play>``, fetched) is noted before the parties are connected. When the dial ends (at once
  if nobody answered; after the person's conversation if connected) the Dial's ``action`` is requested
  (signed; ``DialCallStatus`` completed, busy, no-answer or failed, ``DialCallSid``, ``DialCallDuration``,
  ``CallStatus`` of the callee's call) and its TwiML followed: ``<Connect><Stream>`` connects a new Media
  Stream (a new streamSid) to the callee, anything else ends the call, as does a Dial without ``action``.
  Each transfer is kept in ``FakeCall.transfers``.

The dialled number picks a simulator scenario (the same ``ScenarioBook`` as the SIP simulator): busy,
decline (reported as ``busy`` with SIP 603), carrier failure, no answer (rings until Timeout), or an
answer whose callee is played by the SIP simulator's ``SipCallee`` (Piper speaking, faster-whisper
listening) over this stream instead of RTP.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import re
import secrets
import threading
from dataclasses import dataclass, field
from urllib.parse import parse_qsl
from xml.sax.saxutils import unescape

import httpx
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from websockets.asyncio.client import connect

from byourside_server.telephony.simulator.over_sip import SipCallee
from byourside_server.telephony.simulator.responders import responder_for
from byourside_server.telephony.simulator.scenarios import ScenarioBook
from stream_callee import StreamCallee

E164 = re.compile(r"\+[1-9]\d{7,14}")
# How a scenario that never answers ends on Twilio: (CallStatus, SipResponseCode).
NOT_ANSWERED = {"busy": ("busy", "486"), "decline": ("busy", "603"), "failure": ("failed", "503")}


def sign(auth_token: str, url: str, params: list[tuple[str, str]]) -> str:
    """X-Twilio-Signature as Twilio computes it (written here independently of the server's code)."""
    data = url + "".join(k + v for k, v in sorted(params))
    return base64.b64encode(hmac.new(auth_token.encode(), data.encode(), hashlib.sha1).digest()).decode()


@dataclass
class FakeTransfer:
    """A ``<Dial>`` (Twilio) or ``actions/transfer`` (Telnyx) this fake carried out."""

    to: str
    caller_id: str | None
    whisper_url: str | None  # Twilio: the Number's url; Telnyx: audio_url
    status: str = "dialing"  # then "connected", or how the dial ended: busy, no-answer, failed
    whisper_said: str | None = None  # <Say> of the whisper TwiML
    whisper_audio: bytes | None = None  # what <Play> (Twilio) or audio_url (Telnyx) fetched
    action_url: str | None = None  # Twilio: the Dial's action
    action_answer: str | None = None  # Twilio: the TwiML our server answered the action with
    came_back: bool = False  # Twilio: the action's TwiML connected a new Media Stream to the callee
    done: asyncio.Event = field(default_factory=asyncio.Event)


@dataclass
class FakeCall:
    sid: str
    to: str
    from_: str
    params: list[tuple[str, str]]  # the create request, as sent
    status: str = "queued"
    statuses_sent: list[str] = field(default_factory=list)  # CallStatus of each callback, in order
    callback_answers: list[int] = field(default_factory=list)  # our server's HTTP status per callback
    callee: SipCallee | None = None
    media: "StreamCallee | None" = None
    ended: asyncio.Event = field(default_factory=asyncio.Event)
    end_requested: asyncio.Event = field(default_factory=asyncio.Event)
    transfers: list[FakeTransfer] = field(default_factory=list)

    def param(self, name: str, default: str | None = None) -> str | None:
        return next((v for k, v in self.params if k == name), default)


class FakeTwilio:
    """Run with ``start_in_thread()`` (its own event loop) beside a server process, or ``await start()``."""

    def __init__(self, book: ScenarioBook, voice, *, account_sid: str = "AC" + "0" * 32,  # noqa: ANN001
                 auth_token: str = "fake-auth-token", numbers: tuple[str, ...] = (), caller_ids: tuple[str, ...] = (),
                 patience: float = 10.0, page_size: int = 50, forge_signatures: bool = False) -> None:
        self.book, self.voice = book, voice
        self.account_sid, self.auth_token = account_sid, auth_token
        self.numbers, self.caller_ids = list(numbers), list(caller_ids)
        self.patience = patience
        self.page_size = page_size
        self.forge_signatures = forge_signatures  # sign with a wrong token: our server must refuse everything
        self.calls: dict[str, FakeCall] = {}
        self.stream_class = StreamCallee
        self.port = 0
        self._server: uvicorn.Server | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._tasks: set[asyncio.Task] = set()
        self._serving: asyncio.Task | None = None
        self._http: httpx.AsyncClient | None = None

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    # running
    def app(self) -> Starlette:
        base = "/2010-04-01/Accounts/{account}"
        return Starlette(routes=[
            Route(base + "/Calls.json", self._create_call, methods=["POST"]),
            Route(base + "/Calls/{sid}.json", self._update_call, methods=["POST"]),
            Route(base + "/IncomingPhoneNumbers.json", self._list_incoming, methods=["GET"]),
            Route(base + "/OutgoingCallerIds.json", self._list_caller_ids, methods=["GET"]),
        ])

    async def start(self) -> FakeTwilio:
        import socket

        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self._http = httpx.AsyncClient(timeout=10)
        config = uvicorn.Config(self.app(), host="127.0.0.1", port=self.port, log_config=None, access_log=False,
                                lifespan="off")
        self._server = uvicorn.Server(config)
        self._serving = asyncio.get_running_loop().create_task(self._server.serve())
        while not self._server.started:
            if self._serving.done():
                self._serving.result()
            await asyncio.sleep(0.02)
        return self

    async def aclose(self) -> None:
        for call in self.calls.values():
            if call.media is not None:
                await call.media.hangup()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._server is not None and self._serving is not None:
            self._server.should_exit = True
            await self._serving
        if self._http is not None:
            await self._http.aclose()

    def start_in_thread(self) -> FakeTwilio:
        started = threading.Event()
        failure: list[BaseException] = []

        def run() -> None:
            self._loop = asyncio.new_event_loop()
            try:
                self._loop.run_until_complete(self.start())
            except BaseException as exc:  # noqa: BLE001 - reported to the starting thread
                failure.append(exc)
                started.set()
                return
            started.set()
            self._loop.run_forever()
            self._loop.run_until_complete(self.aclose())
            self._loop.close()

        self._thread = threading.Thread(target=run, name="fake-twilio", daemon=True)
        self._thread.start()
        started.wait(60)
        if failure:
            raise failure[0]
        return self

    def stop_thread(self) -> None:
        if self._loop is not None and self._thread is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(30)

    def wait_for_calls_to_end(self, timeout: float) -> None:
        """From another thread: wait until every call has ended here (the callee heard the last words)."""
        import time

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and not all(c.ended.is_set() for c in self.calls.values()):
            time.sleep(0.1)

    # REST
    def _authorised(self, request: Request) -> bool:
        expected = base64.b64encode(f"{self.account_sid}:{self.auth_token}".encode()).decode()
        return (request.path_params["account"] == self.account_sid
                and request.headers.get("authorization") == f"Basic {expected}")

    @staticmethod
    def _error(status: int, code: int, message: str) -> JSONResponse:
        return JSONResponse({"code": code, "message": message, "more_info": f"https://www.twilio.com/docs/errors/{code}",
                             "status": status}, status_code=status)

    async def _create_call(self, request: Request) -> Response:
        if not self._authorised(request):
            return self._error(401, 20003, "Authenticate")
        params = parse_qsl((await request.body()).decode(), keep_blank_values=True)
        call = FakeCall("CA" + secrets.token_hex(16), dict(params).get("To", ""), dict(params).get("From", ""), params)
        if not E164.fullmatch(call.to):
            return self._error(400, 21211, f"Invalid 'To' Phone Number: {call.to}")
        if call.from_ not in self.numbers + self.caller_ids:
            return self._error(400, 21210, "The source phone number provided is not yet verified for your account.")
        if not call.param("Twiml") or not call.param("StatusCallback"):
            return self._error(400, 21205, "Url or Twiml parameter is required.")
        self._start_call(call)
        return JSONResponse({"sid": call.sid, "account_sid": self.account_sid, "to": call.to, "from": call.from_,
                             "status": "queued", "direction": "outbound-api", "api_version": "2010-04-01"},
                            status_code=201)

    def _start_call(self, call: FakeCall) -> None:
        self.calls[call.sid] = call
        self._spawn(self._run_call(call))

    async def _update_call(self, request: Request) -> Response:
        if not self._authorised(request):
            return self._error(401, 20003, "Authenticate")
        call = self.calls.get(request.path_params["sid"])
        if call is None:
            return self._error(404, 20404, "The requested resource was not found")
        form = dict(parse_qsl((await request.body()).decode()))
        if form.get("Twiml") is not None:
            if call.status != "in-progress":
                return self._error(400, 21220, "Call is not in-progress. Cannot redirect.")
            dial = re.search(r"<Dial([^>]*)>(.*?)</Dial>", form["Twiml"], re.DOTALL)
            number = re.search(r"<Number([^>]*)>([^<]+)</Number>", dial.group(2)) if dial else None
            if number is None:
                return self._error(400, 12100, "Document parse failure")
            transfer = FakeTransfer(unescape(number.group(2)).strip(), _attribute(dial.group(1), "callerId"),
                                    _attribute(number.group(1), "url"), action_url=_attribute(dial.group(1), "action"))
            call.transfers.append(transfer)
            self._spawn(self._transfer(call, transfer))
            return JSONResponse({"sid": call.sid, "status": call.status})
        status = form.get("Status")
        # canceled ends a queued or ringing call only; completed ends it whatever its state.
        if status == "completed" or (status == "canceled" and call.status in ("queued", "initiated", "ringing")):
            call.end_requested.set()
        return JSONResponse({"sid": call.sid, "status": call.status})

    async def _list(self, request: Request, numbers: list[str], key: str) -> Response:
        if not self._authorised(request):
            return self._error(401, 20003, "Authenticate")
        page = int(request.query_params.get("Page", "0"))
        size = min(int(request.query_params.get("PageSize", "50")), self.page_size)
        chunk = numbers[page * size:(page + 1) * size]
        more = (page + 1) * size < len(numbers)
        next_uri = f"{request.url.path}?PageSize={size}&Page={page + 1}" if more else None
        return JSONResponse({key: [{"phone_number": n, "sid": "PN" + secrets.token_hex(16)} for n in chunk],
                             "page": page, "page_size": size, "next_page_uri": next_uri})

    async def _list_incoming(self, request: Request) -> Response:
        return await self._list(request, self.numbers, "incoming_phone_numbers")

    async def _list_caller_ids(self, request: Request) -> Response:
        return await self._list(request, self.caller_ids, "outgoing_caller_ids")

    # a call's life
    async def _callback(self, call: FakeCall, url: str | None, params: list[tuple[str, str]]) -> None:
        if not url:
            return
        params = [("AccountSid", self.account_sid), ("CallSid", call.sid), ("From", call.from_), ("To", call.to),
                  ("Direction", "outbound-api"), ("ApiVersion", "2010-04-01"), *params]
        token = "not-the-auth-token" if self.forge_signatures else self.auth_token
        assert self._http is not None
        try:
            answer = await self._http.post(url, data=dict(params), headers={"X-Twilio-Signature": sign(token, url, params)})
            call.callback_answers.append(answer.status_code)
        except httpx.HTTPError:
            call.callback_answers.append(0)

    async def _status(self, call: FakeCall, status: str, **extra: str) -> None:
        call.status = status
        call.statuses_sent.append(status)
        events = [v for k, v in call.params if k == "StatusCallbackEvent"]
        event = {"ringing": "ringing", "in-progress": "answered", "initiated": "initiated"}.get(status, "completed")
        if event in events:
            await self._callback(call, call.param("StatusCallback"), [("CallStatus", status), *extra.items()])

    async def _ring(self, call: FakeCall, seconds: float) -> bool:
        """Ring; False when the call was canceled meanwhile."""
        try:
            await asyncio.wait_for(call.end_requested.wait(), timeout=seconds)
        except TimeoutError:
            return True
        return False

    async def _run_call(self, call: FakeCall) -> None:
        try:
            await self._status(call, "initiated")
            scenario = self.book.for_number(call.to)
            if scenario is None:
                await self._status(call, "failed", SipResponseCode="404")
                return
            await self._status(call, "ringing")
            timeout = float(call.param("Timeout", "60") or 60)
            if scenario.kind == "no_answer" or scenario.ring_seconds >= timeout:
                if await self._ring(call, timeout):
                    await self._status(call, "no-answer", SipResponseCode="487")
                else:
                    await self._status(call, "canceled", SipResponseCode="487")
                return
            if not await self._ring(call, scenario.ring_seconds):
                await self._status(call, "canceled", SipResponseCode="487")
                return
            if scenario.kind in NOT_ANSWERED:
                status, code = NOT_ANSWERED[scenario.kind]
                await self._status(call, status, SipResponseCode=code)
                return
            await self._answer(call, scenario)
        finally:
            call.ended.set()

    async def _answer(self, call: FakeCall, scenario) -> None:  # noqa: ANN001
        await self._status(call, "in-progress")
        url = self._stream_url(call)
        answered_at = asyncio.get_running_loop().time()
        try:
            socket = await connect(url, additional_headers=self._stream_headers(url))
        except Exception:  # noqa: BLE001 - refused (e.g. a forged signature): the carrier ends the call
            await self._status(call, "completed", CallDuration="0")
            return
        stream_sid = "MZ" + secrets.token_hex(16)
        await self._send_stream_start(socket, call, stream_sid)
        ended = asyncio.Event()
        media = self.stream_class(socket, stream_sid, call.sid, ended.set)
        call.media = media
        media.start()
        call.callee = SipCallee(responder_for(scenario), media, self.voice, self.patience)
        if call.param("MachineDetection"):
            self._spawn(self._report_amd(call, scenario.kind))
        hang_up_on_request = self._spawn(self._end_when_requested(call, media))
        await call.callee.run()
        hang_up_on_request.cancel()
        await media.hangup()
        for transfer in call.transfers:  # the callee talks with the person now; the call ends after them
            await transfer.done.wait()
        duration = round(asyncio.get_running_loop().time() - answered_at)
        await self._status(call, "completed", CallDuration=str(duration))

    def _stream_url(self, call: FakeCall) -> str:
        return re.search(r'<Stream url="([^"]+)"', call.param("Twiml") or "").group(1).replace("&amp;", "&")

    def _stream_headers(self, url: str) -> dict[str, str]:
        token = "not-the-auth-token" if self.forge_signatures else self.auth_token
        return {"X-Twilio-Signature": sign(token, url, [])}

    async def _send_stream_start(self, socket, call: FakeCall, stream_sid: str) -> None:  # noqa: ANN001
        await socket.send(json.dumps({"event": "connected", "protocol": "Call", "version": "1.0.0"}))
        await socket.send(json.dumps({"event": "start", "sequenceNumber": "1", "streamSid": stream_sid, "start": {
            "streamSid": stream_sid, "accountSid": self.account_sid, "callSid": call.sid, "tracks": ["inbound"],
            "customParameters": {},
            "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1}}}))

    async def _end_when_requested(self, call: FakeCall, media: StreamCallee) -> None:
        await call.end_requested.wait()
        await media.hangup()

    async def _report_amd(self, call: FakeCall, kind: str) -> None:
        """Asynchronous AMD: a verdict a few seconds into the answer, as Twilio's takes."""
        await asyncio.sleep(2.5)
        machine = "machine_end_beep" if call.param("MachineDetection") == "DetectMessageEnd" else "machine_start"
        answered_by = machine if kind == "voicemail" else "human"
        await self._callback(call, call.param("AsyncAmdStatusCallback"),
                             [("AnsweredBy", answered_by), ("MachineDetectionDuration", "2500")])

    async def _transfer(self, call: FakeCall, transfer: FakeTransfer) -> None:
        """New TwiML replaced <Connect><Stream>: the stream stops, the person is dialled (and whispered to); the
        dial's end requests the action, whose TwiML may bring the callee back on a new stream."""
        try:
            if call.media is not None:
                await call.media.pause()
            scenario = self.book.for_number(transfer.to)
            if scenario is None:
                dial_status = "failed"
            elif scenario.kind == "no_answer":
                dial_status = "no-answer"
            elif scenario.kind in NOT_ANSWERED:
                dial_status = NOT_ANSWERED[scenario.kind][0]
            else:
                dial_status = "completed"
                if transfer.whisper_url:
                    await self._whisper(call, transfer)
                transfer.status = "connected"
                if call.media is not None:
                    await call.media.hangup()  # the callee talks with the person now, no more with us
            if dial_status != "completed":
                transfer.status = dial_status
            await self._dial_ended(call, transfer, dial_status)
        finally:
            transfer.done.set()

    async def _dial_ended(self, call: FakeCall, transfer: FakeTransfer, dial_status: str) -> None:
        """Request the Dial's action and follow its TwiML: a new stream to the callee, or the call's end."""
        media = call.media
        answer = ""
        if transfer.action_url:
            params = [("AccountSid", self.account_sid), ("CallSid", call.sid), ("From", call.from_), ("To", call.to),
                      ("Direction", "outbound-api"), ("ApiVersion", "2010-04-01"),
                      ("CallStatus", "completed" if call.end_requested.is_set() else "in-progress"),
                      ("DialCallStatus", dial_status), ("DialCallSid", "CA" + secrets.token_hex(16)),
                      ("DialCallDuration", "1" if dial_status == "completed" else "0")]
            token = "not-the-auth-token" if self.forge_signatures else self.auth_token
            assert self._http is not None
            reply = await self._http.post(transfer.action_url, data=dict(params),
                                          headers={"X-Twilio-Signature": sign(token, transfer.action_url, params)})
            answer = reply.text if reply.status_code == 200 else ""
            transfer.action_answer = answer
        stream = re.search(r'<Connect>\s*<Stream url="([^"]+)"', answer)
        if stream is None or media is None or media.ended.is_set():
            if media is not None:
                await media.hangup()  # the TwiML is done: Twilio ends the call
            return
        url = unescape(stream.group(1))
        try:
            socket = await connect(url, additional_headers=self._stream_headers(url))
        except Exception:  # noqa: BLE001 - refused: the call ends
            await media.hangup()
            return
        stream_sid = "MZ" + secrets.token_hex(16)
        await self._send_stream_start(socket, call, stream_sid)
        media.resume(socket, stream_sid)
        transfer.came_back = True

    async def _whisper(self, call: FakeCall, transfer: FakeTransfer) -> None:
        params = [("AccountSid", self.account_sid), ("CallSid", "CA" + secrets.token_hex(16)),
                  ("ParentCallSid", call.sid), ("CallStatus", "in-progress"), ("Direction", "outbound-dial"),
                  ("From", transfer.caller_id or call.from_), ("To", transfer.to), ("ApiVersion", "2010-04-01")]
        token = "not-the-auth-token" if self.forge_signatures else self.auth_token
        assert self._http is not None and transfer.whisper_url is not None
        answer = await self._http.post(transfer.whisper_url, data=dict(params),
                                       headers={"X-Twilio-Signature": sign(token, transfer.whisper_url, params)})
        said = re.search(r"<Say[^>]*>([^<]*)</Say>", answer.text)
        played = re.search(r"<Play[^>]*>([^<]*)</Play>", answer.text)
        if said:
            transfer.whisper_said = unescape(said.group(1))
        if played:
            audio = await self._http.get(unescape(played.group(1)))
            transfer.whisper_audio = audio.content if audio.status_code == 200 else None

    def _spawn(self, coro) -> asyncio.Task:  # noqa: ANN001
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task


def _attribute(attributes: str, name: str) -> str | None:
    found = re.search(rf'{name}="([^"]*)"', attributes)
    return unescape(found.group(1)) if found else None
