"""A SIP call's media as a ``MediaChannel``: RTP audio and RFC 4733 digits, BYE as the end.

The adapter is thin: the RTP ticker (rtp.py) already paces both directions on
one 20 ms clock; each tick's inbound and outbound frames become one
``AudioFrame`` on the events queue, each received digit a ``DigitReceived``.
A BYE from the far end, or our ``hangup``, stops the ticker, ends the events
and finishes any playback where it stands.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import numpy as np
import structlog

from byourside_server.telephony.media import FRAME_MS, AudioFrame, DigitReceived, MediaChannel, MediaEvent, Playback
from byourside_server.telephony.sip.dialog import Dialog
from byourside_server.telephony.sip.rtp import RtpSession

log = structlog.get_logger(__name__)


class RtpMedia(MediaChannel):
    def __init__(self, dialog: Dialog, rtp: RtpSession, call_id: str = "") -> None:
        super().__init__()
        self.dialog, self.rtp, self.call_id = dialog, rtp, call_id
        self._events: asyncio.Queue[MediaEvent | None] = asyncio.Queue()
        self._closing: asyncio.Task | None = None
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

    def _far_end_bye(self) -> None:
        log.info("sip_far_end_bye", call_id=self.call_id)
        self._mark_ended(by_far_end=True)
        self.rtp.stop_playing()
        self._close_media()

    async def hangup(self) -> None:
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
