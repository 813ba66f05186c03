"""The phone simulator over real SIP and RTP: a SIP user agent that answers calls and plays scenarios.

``SipSimulator`` listens for INVITEs (on loopback by default). The dialled
number (the Request-URI's user part) picks the scenario from the same
``ScenarioBook`` the in-process simulator uses, and the scenario decides what
the SIP caller sees: ringing for ``ring_seconds`` and then 486 (busy), 603
(decline), 503 (carrier failure) or 200 OK; a ``no_answer`` line rings until
the caller gives up (CANCEL). Once answered, a ``SipCallee`` plays the
scenario's responder in real time: what it says is rendered by the TTS and
streamed as paced RTP, the record tone is a real 1 kHz tone, and it hears the
caller through the voice engine's listening half (endpointer and STT), and
keys through RFC 4733 events.

A REFER from the caller (a blind transfer, RFC 5589) is accepted (202) and the
Refer-To number's scenario decides how the person answers, reported in
NOTIFYs (``SIP/2.0 100 Trying``, then 200 or the scenario's rejection); the
caller then leaves with BYE. A REFER whose Refer-To carries Replaces (an
attended transfer, RFC 3891/5589) joins the callee with the person already
on another of our calls, named by the Replaces dialog (Call-ID, to-tag: our
tag, from-tag: the caller's): that person's dialog ends with our BYE to the
caller, as a replaced dialog does, and the NOTIFY says ``200 OK`` (``481``
when no such call is up). Transfers put through are kept in ``transfers``,
attended ones also in ``joins`` with how much sound the person had heard.

It listens on UDP, TCP or TLS (with a certificate). Run it with
``byourside sip-sim`` and point ``BYS_SIP_TRUNK_URI`` at it (``uri``).
"""

from __future__ import annotations

import asyncio
import collections
import inspect
import socket
import ssl
from dataclasses import dataclass
from urllib.parse import unquote

import numpy as np
import structlog

from byourside_server.telephony.media import AudioFrame, DigitReceived
from byourside_server.telephony.simulator.responders import (
    PersonaFactory,
    PersonaResponder,
    responder_for,
)
from byourside_server.telephony.simulator.scenarios import ScenarioBook
from byourside_server.telephony.simulator.script import (
    Action,
    Flush,
    Hang,
    Responder,
    Say,
    Tone,
)
from byourside_server.telephony.sip.dialog import Dialog
from byourside_server.telephony.sip.media import RtpMedia
from byourside_server.telephony.sip.message import SipMessage, tag_of, uri_of
from byourside_server.telephony.sip.rtp import RtpSession
from byourside_server.telephony.sip.sdp import SdpError
from byourside_server.telephony.sip.transport import local_address_towards
from byourside_server.telephony.sip.ua import UserAgent
from byourside_server.telephony.sip.uas import IncomingCall, user_of
from byourside_server.voice.audio import TELEPHONE_RATE
from byourside_server.voice.factory import VoiceFactory
from byourside_server.voice.listening import BatchRecognition
from byourside_server.voice.ports import FinalText

log = structlog.get_logger(__name__)

RECORD_TONE_HZ = 1000
RECORD_TONE_MS = 500
MAX_RING_SECONDS = 300  # a no_answer line gives up on its own after this (480), should the caller never CANCEL
IDLE_CHECK_SECONDS = 0.1
SOUND_RMS = 300  # an inbound frame louder than this carries sound (speech, a tone), not line noise

# Final responses for the scenarios that never answer (see telephony/sip/provider.py map_final).
REJECTIONS = {"busy": (486, "Busy Here"), "decline": (603, "Decline"), "failure": (503, "Service Unavailable")}


@dataclass(frozen=True)
class Join:
    """An attended transfer put through: the callee joined with the person on another call."""

    callee: str  # the number the transferor called first
    person: str  # the number of the call that was replaced
    person_heard_ms: int  # sound the person had heard (the brief) before the join


def record_tone(hz: int = RECORD_TONE_HZ, ms: int = RECORD_TONE_MS) -> np.ndarray:
    t = np.arange(TELEPHONE_RATE * ms // 1000) / TELEPHONE_RATE
    return (8000 * np.sin(2 * np.pi * hz * t)).astype(np.int16)


class SipCallee:
    """One answered call: the scenario's responder speaking and listening over RTP, in real time.

    Actions play one after another (a ``Say`` waits its thinking pause, then
    is spoken); ``Flush`` drops whatever is queued or playing; ``Hang`` sends
    BYE. The caller is heard through the voice engine's listening half
    (voice/listening.py: endpointing and transcription, in order, in the
    background); each utterance's text goes to the responder, whose actions
    queue behind the ones still playing. Idle time is counted while neither
    side speaks, as in the in-process simulator. When the call ends, the words
    still in the endpointer are transcribed too (a voicemail box keeps the end
    of a message).
    """

    def __init__(self, responder: Responder, media: RtpMedia, voice: VoiceFactory, patience: float = 1.0,
                 number: str = "") -> None:
        self.responder, self.media, self.voice, self.number = responder, media, voice, number
        self.patience = patience  # multiplies the responder's idle time before it nudges or hangs up
        self.dialog = media.dialog
        self.heard: list[str] = []  # what the caller said, as transcribed (tests read it)
        self.digits: list[str] = []
        self.sound_ms = 0  # inbound audio that carried sound, whatever it said (tests without speech models)
        # No early transcription: a simulated callee has no latency to save, and the CPU is the caller's.
        self.listening = BatchRecognition(voice, transcribe_early=False)
        self._actions: collections.deque[Action] = collections.deque()
        self._wake = asyncio.Event()
        self._current: asyncio.Task | None = None
        self._hanging_up: asyncio.Task | None = None
        self._busy = False  # performing an action (pausing, rendering or speaking)
        self._last_activity = 0.0

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        self._last_activity = loop.time()
        self._enqueue(self.responder.on_answer())
        workers = [loop.create_task(self._perform()), loop.create_task(self._hear()),
                   loop.create_task(self._watch_idle())]
        try:
            await self._take_in_media()  # until the call ends, either side
            await self._hear_the_rest(workers[1])
        finally:
            for task in workers:
                task.cancel()
            await asyncio.gather(*workers, return_exceptions=True)
            await self.media.hangup()
            await self.listening.aclose()

    # the caller's side
    async def _take_in_media(self) -> None:
        loop = asyncio.get_running_loop()
        async for event in self.media.events():
            if isinstance(event, DigitReceived):
                self.digits.append(event.digit)
                self._last_activity = loop.time()
                self._enqueue(self.responder.on_digits(event.digit))
            elif isinstance(event, AudioFrame):
                if np.sqrt(np.mean(event.inbound.astype(np.float64) ** 2)) > SOUND_RMS:
                    self.sound_ms += len(event.inbound) * 1000 // TELEPHONE_RATE
                self.listening.feed(event.inbound, event.at_ms)
                if self.listening.endpointer.in_speech:
                    self._last_activity = loop.time()

    async def _hear(self) -> None:
        while True:
            event = await self.listening.next_event()
            if not isinstance(event, FinalText):
                continue
            self._last_activity = asyncio.get_running_loop().time()
            if not event.text:
                continue
            self.heard.append(event.text)
            actions = self.responder.on_speech(event.text)
            if inspect.isawaitable(actions):  # a model-driven persona thinks asynchronously
                actions = await actions
            self._enqueue(actions)

    async def _hear_the_rest(self, hearing: asyncio.Task) -> None:
        """The caller's last words, endpointed or not, are transcribed and kept (not answered)."""
        self.listening.finish(self.media.elapsed_ms())
        await self.listening.drain()
        hearing.cancel()
        for event in self.listening.events_now():
            if isinstance(event, FinalText) and event.text:
                self.heard.append(event.text)

    async def _watch_idle(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(IDLE_CHECK_SECONDS)
            idle = self.responder.idle_after()
            quiet = not self._busy and not self._actions and not self.listening.unfinished
            if idle is not None and quiet and loop.time() - self._last_activity >= idle * self.patience:
                self._last_activity = loop.time()
                self._enqueue(self.responder.on_idle())

    # our side
    def _enqueue(self, actions: list[Action]) -> None:
        for action in actions:
            if isinstance(action, Flush):
                self._actions.clear()
                self.media.clear()
                if self._current is not None:
                    self._current.cancel()
            else:
                self._actions.append(action)
        self._wake.set()

    async def _perform(self) -> None:
        while True:
            if not self._actions:
                self._wake.clear()
                await self._wake.wait()
                continue
            action = self._actions.popleft()
            self._busy = True
            self._current = asyncio.get_running_loop().create_task(self._play(action))
            try:
                await self._current
            except asyncio.CancelledError:
                if self.media.ended.is_set() or asyncio.current_task().cancelling():
                    raise
            except Exception:
                log.exception("sip_sim_action_failed", sip_call_id=self.dialog.call_id)
            finally:
                self._busy, self._current = False, None
                self._last_activity = asyncio.get_running_loop().time()

    async def _play(self, action: Action) -> None:
        await asyncio.sleep(action.pause)
        if isinstance(action, Hang):
            log.info("sip_sim_hangs_up", sip_call_id=self.dialog.call_id)
            self._hanging_up = asyncio.get_running_loop().create_task(self.media.hangup())
            return
        if isinstance(action, Tone):
            await self.media.play(record_tone())
            return
        assert isinstance(action, Say)
        if not action.text.strip():
            return
        _, tts = await self.voice.load()
        async for chunk in tts.stream(action.text):
            if not (await self.media.play(chunk.pcm)).completed:
                return  # flushed


class SipSimulator:
    """Answers SIP calls and plays the scenario each dialled number maps to."""

    def __init__(self, book: ScenarioBook, voice: VoiceFactory, *, host: str = "127.0.0.1", port: int = 5080,
                 persona_factory: PersonaFactory = PersonaResponder, transport: str = "udp",
                 tls: ssl.SSLContext | None = None, patience: float = 1.0) -> None:
        self.book, self.voice, self.host, self._port = book, voice, host, port
        self.transport, self.tls = transport, tls  # tls: our certificate, to listen on TLS
        self.persona_factory = persona_factory
        # Multiplies how long a callee waits in silence before nudging or hanging up (tests on a loaded machine
        # make it patient, so a slow STT on the caller's side is not taken for silence).
        self.patience = patience
        self.ua: UserAgent | None = None
        self.callees: list[SipCallee] = []  # answered calls, newest last (tests inspect them)
        self.transfers: list[tuple[str, str]] = []  # (number called, number transferred to) put through by REFER
        self.joins: list[Join] = []  # the attended ones (REFER with Replaces)
        self._tasks: set[asyncio.Task] = set()

    @property
    def port(self) -> int:
        return self.ua.port if self.ua is not None else self._port

    @property
    def uri(self) -> str:
        """The trunk URI that reaches us, naming the transport unless it is UDP."""
        return f"sip:{self.host}:{self.port}" + ("" if self.transport == "udp" else f";transport={self.transport}")

    async def start(self) -> SipSimulator:
        self.ua = await UserAgent.open(self.host, self._port, self.transport, server_tls=self.tls)
        self.ua.on_invite = self._on_invite
        return self

    async def finish_calls(self, timeout: float) -> None:
        """Wait up to ``timeout`` seconds for the calls in progress to end on our side."""
        if self._tasks:
            await asyncio.wait(set(self._tasks), timeout=timeout)

    async def aclose(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self.ua is not None:
            self.ua.close()
            self.ua = None

    def _local_ip(self, addr: tuple[str, int]) -> str:
        return self.host if self.host not in ("0.0.0.0", "") else local_address_towards(addr)

    def _on_invite(self, invite: SipMessage, addr: tuple[str, int]) -> None:
        assert self.ua is not None
        call = IncomingCall(self.ua, invite, addr, self._local_ip(addr))
        task = asyncio.get_running_loop().create_task(self._handle(call))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _handle(self, call: IncomingCall) -> None:
        try:
            await self._play_scenario(call)
        except Exception:
            log.exception("sip_sim_call_failed", sip_call_id=call.call_id)
            call.reject(500, "Server Internal Error")
        finally:
            call.close()

    def _on_refer(self, number: str, dialog: Dialog, refer: SipMessage, addr: tuple[str, int]) -> None:
        assert self.ua is not None
        refer_to = uri_of(refer.get("refer-to") or "")
        target = user_of(refer_to)
        _, _, headers = refer_to.partition("?")
        replaces = next((unquote(value) for name, _, value in (h.partition("=") for h in headers.split("&") if h)
                         if name.lower() == "replaces"), None)
        self.ua.respond(refer, addr, 202, "Accepted", extra=[("contact", dialog.contact)])
        job = (self._join(number, replaces, dialog) if replaces is not None else
               self._carry_out_refer(number, target, dialog))
        task = asyncio.get_running_loop().create_task(job)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _carry_out_refer(self, number: str, target: str, dialog: Dialog) -> None:
        """Call the transfer target as its scenario says, and tell the transferor how it went."""
        await self._notify(dialog, "SIP/2.0 100 Trying", final=False)
        scenario = self.book.for_number(target)
        if scenario is None:
            status = (404, "Not Found")
        elif scenario.kind == "no_answer":
            status = (480, "Temporarily Unavailable")
        else:
            await asyncio.sleep(min(scenario.ring_seconds, 1.0))
            status = REJECTIONS.get(scenario.kind, (200, "OK"))
        if status[0] == 200:
            self.transfers.append((number, target))
        log.info("sip_sim_transfer", status=status[0])
        await self._notify(dialog, f"SIP/2.0 {status[0]} {status[1]}", final=True)

    def _replaced(self, replaces: str) -> SipCallee | None:
        """The answered call a Replaces value names (``call-id;to-tag=ours;from-tag=the caller's``), if still up."""
        call_id, *params = replaces.split(";")
        tags = dict(param.strip().partition("=")[::2] for param in params)
        for callee in self.callees:
            dialog = callee.dialog
            if (dialog.call_id == call_id.strip() and not dialog.closed and tag_of(dialog.local) == tags.get("to-tag")
                    and dialog.remote_tag == tags.get("from-tag")):
                return callee
        return None

    async def _join(self, number: str, replaces: str, dialog: Dialog) -> None:
        """Connect the caller's callee with the person of the call Replaces names, in place of that call."""
        await self._notify(dialog, "SIP/2.0 100 Trying", final=False)
        person = self._replaced(replaces)
        if person is None:
            log.info("sip_sim_replaces_unknown")
            await self._notify(dialog, "SIP/2.0 481 Call/Transaction Does Not Exist", final=True)
            return
        self.joins.append(Join(number, person.number, person.sound_ms))
        self.transfers.append((number, person.number))
        log.info("sip_sim_attended_transfer", heard_ms=person.sound_ms)
        await person.media.hangup()  # the replaced dialog ends with BYE (RFC 3891 section 3)
        await self._notify(dialog, "SIP/2.0 200 OK", final=True)

    @staticmethod
    async def _notify(dialog: Dialog, sipfrag: str, *, final: bool) -> None:
        tx = dialog.notify_refer(sipfrag, final=final)
        try:
            await asyncio.wait_for(tx.next_response(), timeout=8)
        except TimeoutError:
            pass
        finally:
            tx.close()

    async def _ring(self, call: IncomingCall, seconds: float) -> bool:
        """Ring for ``seconds``; False when the caller cancelled meanwhile."""
        call.ring()
        try:
            await asyncio.wait_for(call.cancelled.wait(), timeout=seconds)
        except TimeoutError:
            return True
        return False

    async def _play_scenario(self, call: IncomingCall) -> None:
        scenario = self.book.for_number(call.number)
        name = self.book.name_for(call.number)
        log.info("sip_sim_incoming", sip_call_id=call.call_id, scenario=name)
        if scenario is None:
            call.reject(404, "Not Found")
            return
        if scenario.kind == "no_answer":
            if await self._ring(call, MAX_RING_SECONDS):
                call.reject(480, "Temporarily Unavailable")
            return
        if not await self._ring(call, scenario.ring_seconds):
            return
        if scenario.kind in REJECTIONS:
            call.reject(*REJECTIONS[scenario.kind])
            return
        try:
            media = call.offer()
        except SdpError:
            call.reject(488, "Not Acceptable Here")
            return
        loop = asyncio.get_running_loop()
        _, rtp = await loop.create_datagram_endpoint(RtpSession, local_addr=(call.local_ip, 0),
                                                     family=socket.AF_INET)
        dialog = await call.answer(media, rtp.local_port,
                                   on_refer=lambda dialog, refer, addr: self._on_refer(call.number, dialog, refer, addr))
        if dialog is None:
            await rtp.close()
            return
        rtp.start((media.host, media.port), media.payload_type, media.event_payload_type)
        callee = SipCallee(responder_for(scenario, self.persona_factory), RtpMedia(dialog, rtp, call.call_id),
                           self.voice, self.patience, number=call.number)
        self.callees.append(callee)
        await callee.run()
        log.info("sip_sim_call_ended", sip_call_id=call.call_id)
