"""A SIP call's media as a ``MediaChannel``: RTP audio and RFC 4733 digits, BYE as the end.

The adapter is thin: the RTP ticker (rtp.py) already paces both directions on
one 20 ms clock; each tick's inbound and outbound frames become one
``AudioFrame`` on the events queue, each received digit a ``DigitReceived``.
A BYE from the far end, or our ``hangup``, stops the ticker, ends the events
and finishes any playback where it stands.

``transfer`` is cold by default: a blind transfer by REFER (RFC 3515/5589):
the trunk is asked to call the person (``sip:<number>@<trunk host>``) and to
connect the callee; its NOTIFYs say how the person answered. A 2xx there
hands the call over and we leave with BYE; a failure (or a trunk that refuses
REFER) leaves the call ours. A warm transfer with the brief's audio is an
attended transfer (attended.py): a second leg briefed by us, then REFER with
Replaces, or our own bridge of the two legs when the trunk will not.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable

import numpy as np
import structlog

from byourside_server.telephony.base import TransferFailed
from byourside_server.telephony.media import (
    FRAME_MS,
    AudioFrame,
    DigitReceived,
    MediaChannel,
    MediaEvent,
    Playback,
)
from byourside_server.telephony.sip.dialog import Dialog
from byourside_server.telephony.sip.message import SipMessage, uri_of
from byourside_server.telephony.sip.rtp import RtpSession

log = structlog.get_logger(__name__)

REFER_WAIT_SECONDS = 10.0  # for the REFER's own answer (202 Accepted)
TRANSFER_WAIT_SECONDS = 60.0  # for the NOTIFY that says how the person answered


def transfer_failure(status: int) -> str:
    """A transfer target's final SIP status as ``TransferFailed.reason``."""
    if status == 486:
        return "busy"
    if status in (408, 480, 487):
        return "no_answer"
    if status in (600, 603):
        return "declined"
    return f"sip_{status}"


def sipfrag_status(body: bytes) -> int | None:
    """The status code of a ``message/sipfrag`` body ("SIP/2.0 200 OK")."""
    parts = body.decode(errors="replace").split(None, 2)
    return int(parts[1]) if len(parts) >= 2 and parts[0].upper().startswith("SIP/") and parts[1].isdigit() else None


class RtpMedia(MediaChannel):
    def __init__(self, dialog: Dialog, rtp: RtpSession, call_id: str = "") -> None:
        super().__init__()
        self.dialog, self.rtp, self.call_id = dialog, rtp, call_id
        self._events: asyncio.Queue[MediaEvent | None] = asyncio.Queue()
        self._closing: asyncio.Task | None = None
        # A warm transfer with the brief's audio: (to, audio) -> None (set by the provider: sip/attended.py).
        self.attended_transfer: Callable[[str, np.ndarray], Awaitable[None]] | None = None
        self.handed_over = False  # bridged to the person: our hang-up no longer ends the call
        dialog.on_bye = self._far_end_bye
        rtp.on_frame = self._on_frame
        rtp.on_digit = self._on_digit

    @property
    def inbound_delay_ms(self) -> int:  # type: ignore[override]
        """How long the jitter buffer held back the inbound frame of the latest tick."""
        return self.rtp.jitter.delay_ms

    def _on_frame(self, inbound: np.ndarray, outbound: np.ndarray) -> None:
        self._events.put_nowait(AudioFrame(inbound, outbound, (self.rtp.ticks - 1) * FRAME_MS))

    def _on_digit(self, digit: str) -> None:
        self._events.put_nowait(DigitReceived(digit, self.elapsed_ms()))

    async def events(self) -> AsyncIterator[MediaEvent]:
        while True:
            event = await self._events.get()
            if event is None:
                return
            yield event

    def play(self, pcm: np.ndarray) -> Playback:
        if self.ended.is_set():
            playback = Playback(len(pcm))
            playback.finish()
            return playback
        return self.rtp.play(pcm)

    def clear(self) -> None:
        self.rtp.stop_playing()

    def mark(self) -> asyncio.Future:
        return self.rtp.mark()

    async def send_digits(self, digits: str) -> None:
        sent = self.rtp.send_digits(digits)
        ended = asyncio.ensure_future(self.ended.wait())
        try:
            await asyncio.wait({sent, ended}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            ended.cancel()

    def elapsed_ms(self) -> int:
        return self.rtp.ticks * FRAME_MS

    def clock_ms(self) -> float:
        return self.rtp.clock_ms()

    def transfer_target(self, to: str) -> str:
        """The person's SIP URI on the trunk that carries this call: the number at the host we called."""
        called = uri_of(self.dialog.remote)
        scheme, _, rest = called.partition(":")
        host = rest.split("@", 1)[-1].split(";", 1)[0]
        return f"{scheme or 'sip'}:{to}@{host}"

    async def transfer(self, to: str, brief: str | None = None, brief_audio: np.ndarray | None = None) -> None:
        if self.ended.is_set():
            raise TransferFailed("call_ended")
        if brief and brief_audio is not None and self.attended_transfer is not None:
            await self.attended_transfer(to, brief_audio)
            return
        if brief:  # a brief with no audio (a realtime brain's words): a blind transfer, connected at once
            log.info("sip_transfer_brief_not_played", call_id=self.call_id)
        notices: asyncio.Queue[SipMessage] = asyncio.Queue()
        self.dialog.on_notify = notices.put_nowait
        tx = self.dialog.refer(self.transfer_target(to))
        try:
            async def refer_answered() -> int | None:
                return (await tx.next_response()).status

            status = await self.final_status(refer_answered, REFER_WAIT_SECONDS)
            if status is None or not 200 <= status < 300:
                log.info("sip_refer_refused", call_id=self.call_id, status=status)
                raise TransferFailed("unsupported" if status in (405, 420, 501) else
                                     "no_answer" if status is None else f"sip_{status}")
            status = await self.final_status(self._notified(notices), TRANSFER_WAIT_SECONDS)
            if status is None or not 200 <= status < 300:
                log.info("sip_transfer_not_answered", call_id=self.call_id, status=status)
                raise TransferFailed("no_answer" if status is None else transfer_failure(status))
        finally:
            tx.close()
            self.dialog.on_notify = None
        log.info("sip_call_transferred", call_id=self.call_id)
        await self.hangup()  # the transferor leaves (RFC 5589): BYE, and the media is ours no more

    async def final_status(self, next_message, seconds: float) -> int | None:
        """The first final status ``next_message`` yields within ``seconds`` (None: none came, or the call ended)."""
        ended = asyncio.ensure_future(self.ended.wait())
        try:
            async with asyncio.timeout(seconds):
                while True:
                    message = asyncio.ensure_future(next_message())
                    await asyncio.wait({message, ended}, return_when=asyncio.FIRST_COMPLETED)
                    if not message.done():
                        message.cancel()
                        return None
                    status = message.result()
                    if status is not None and status >= 200:
                        return status
        except TimeoutError:
            return None
        finally:
            ended.cancel()

    def hand_over(self) -> None:
        """The call is the person's through our bridge (bridge.py): the channel ends for us, the leg stays up."""
        self.handed_over = True
        self._mark_ended(by_far_end=False)
        self.rtp.stop_playing()
        self._events.put_nowait(None)

    @staticmethod
    def _notified(notices: asyncio.Queue[SipMessage]):
        async def next_status() -> int | None:
            return sipfrag_status((await notices.get()).body)
        return next_status

    def _far_end_bye(self) -> None:
        log.info("sip_far_end_bye", call_id=self.call_id)
        self._mark_ended(by_far_end=True)
        self.rtp.stop_playing()
        self._close_media()

    async def hangup(self) -> None:
        if self.handed_over:
            return  # the bridge ends the legs when the callee or the person hangs up
        if self._closing is not None:
            await self._closing  # the far end hung up, or an earlier hangup: wait until the media is closed
            return
        bye = self.dialog.bye()
        self._mark_ended(by_far_end=False)
        closing = self._close_media()
        if bye is not None:
            try:
                await bye
            except Exception:  # noqa: BLE001 - the call is over either way
                log.warning("sip_bye_failed", call_id=self.call_id)
        await closing

    def _close_media(self) -> asyncio.Task:
        """Stop RTP and end the events, once; every caller gets the same task."""
        if self._closing is None:
            self._closing = asyncio.get_running_loop().create_task(self._shut())
        return self._closing

    async def _shut(self) -> None:
        await self.rtp.close()
        self._events.put_nowait(None)  # after the ticker's last frame
