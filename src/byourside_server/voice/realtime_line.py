"""An audio carrier composed for a realtime speech-to-speech model instead of the voice engine.

With a realtime brain (BYS_REALTIME) nothing of the cascaded voice engine
runs: the model hears and speaks the call's audio itself. ``RealtimeTelephony``
wraps a carrier (SIP/RTP, ...) and answers each call with a ``RealtimeLine``:

- ``channel``: the call's media channel for the brain. One task reads the
  carrier's frames, writes them to the call's stereo recording and relays
  them, so the recording is complete whatever the brain does.
- ``latency``: the per-reply latency log the brain fills (the call's
  ``latency`` report).
- ``hold_audio``: "One moment, please." rendered once with the local TTS when
  one is installed, played while a dropped provider reconnects.
- a warm transfer's brief: the model writes only its words, so the channel
  renders them with the same local TTS before handing the call over; carriers
  that play audio to the person (Telnyx's ``audio_url``, SIP's attended
  transfer, Twilio's ``<Play>``) then play it in our voice. Without a TTS the
  carrier gets the words alone, as before.

The line has no text face (``say``/``listen``): the brain talks through the
model. It still hangs up, and reports its recording and latency to the runtime.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import structlog

from byourside_server.telephony.base import (
    DialOutcome,
    DialRequest,
    DialResult,
    Line,
    LineEvent,
    Spoken,
    Telephony,
)
from byourside_server.telephony.media import MediaChannel, MediaEvent, Playback
from byourside_server.voice.latency import LatencyLog
from byourside_server.voice.recorder import StereoRecorder

if TYPE_CHECKING:
    from byourside_server.voice.factory import VoiceConfig

log = structlog.get_logger(__name__)

HOLD_LINE = "One moment, please."


SpeechRenderer = Callable[[str], Awaitable[np.ndarray]]


class RelayedChannel(MediaChannel):
    """The carrier's channel with its inbound events relayed through a queue (read by one consumer)."""

    def __init__(self, inner: MediaChannel, call_id: str = "",
                 render_brief: SpeechRenderer | None = None) -> None:  # no super().__init__: ``ended`` is the carrier's
        self.inner, self.call_id = inner, call_id
        self.inbound_delay_ms = inner.inbound_delay_ms
        self.queue: asyncio.Queue[MediaEvent | None] = asyncio.Queue()
        self._render_brief = render_brief
        self._rendered_brief: tuple[str, np.ndarray] | None = None  # reused for the next number of the list

    @property
    def ended(self) -> asyncio.Event:  # type: ignore[override]
        return self.inner.ended

    @property
    def ended_at_ms(self) -> int | None:  # type: ignore[override]
        return self.inner.ended_at_ms

    @property
    def ended_by_far_end(self) -> bool:  # type: ignore[override]
        return self.inner.ended_by_far_end

    async def events(self) -> AsyncIterator[MediaEvent]:
        while True:
            event = await self.queue.get()
            if event is None:
                return
            yield event

    def play(self, pcm: np.ndarray) -> Playback:
        return self.inner.play(pcm)

    def clear(self) -> None:
        self.inner.clear()

    def mark(self) -> asyncio.Future[None]:
        return self.inner.mark()

    async def send_digits(self, digits: str) -> None:
        await self.inner.send_digits(digits)

    async def hangup(self) -> None:
        await self.inner.hangup()

    async def transfer(self, to: str, brief: str | None = None, brief_audio: np.ndarray | None = None) -> None:
        if brief and brief_audio is None:
            brief_audio = await self._brief_audio(brief)
        await self.inner.transfer(to, brief, brief_audio)

    async def _brief_audio(self, brief: str) -> np.ndarray | None:
        """The brief in our voice, or None when no local TTS could render it (the carrier gets the words)."""
        if self._render_brief is None:
            return None
        if self._rendered_brief is not None and self._rendered_brief[0] == brief:
            return self._rendered_brief[1]
        try:
            audio = await self._render_brief(brief)
        except Exception as exc:  # noqa: BLE001 - no TTS installed or loadable: a brief in words only
            log.info("realtime_brief_not_rendered", call_id=self.call_id, error=type(exc).__name__)
            return None
        self._rendered_brief = (brief, audio)
        return audio

    def answered_by(self):  # the carrier's verdict
        return self.inner.answered_by()

    def elapsed_ms(self) -> int:
        return self.inner.elapsed_ms()


class RealtimeLine(Line):
    def __init__(self, media: MediaChannel, call_id: str, recordings_dir: Path | None = None,
                 hold_audio: np.ndarray | None = None, render_brief: SpeechRenderer | None = None) -> None:
        self.media, self.call_id, self.hold_audio = media, call_id, hold_audio
        self.channel = RelayedChannel(media, call_id, render_brief)
        self.latency = LatencyLog()
        self._recorder = StereoRecorder(recordings_dir / f"{call_id}.wav") if recordings_dir else None
        self._pump = asyncio.get_running_loop().create_task(self._relay())

    async def _relay(self) -> None:
        from byourside_server.telephony.media import AudioFrame

        try:
            async for event in self.media.events():
                if isinstance(event, AudioFrame) and self._recorder is not None:
                    self._recorder.write(event.inbound, event.outbound)
                self.channel.queue.put_nowait(event)
        except Exception:
            log.exception("realtime_relay_failed", call_id=self.call_id)
        finally:
            self.channel.queue.put_nowait(None)
            if self._recorder is not None:
                self._recorder.close()

    async def say(self, text: str) -> Spoken:
        raise RuntimeError("a call conducted by a realtime model has no text face; the model speaks")

    async def listen(self, timeout_seconds: float) -> LineEvent:
        raise RuntimeError("a call conducted by a realtime model has no text face; the model listens")

    async def send_digits(self, digits: str) -> None:
        await self.media.send_digits(digits)

    async def hangup(self) -> None:
        """End the call; once this returns the recording is complete."""
        await self.media.hangup()
        await self._pump

    def elapsed_ms(self) -> int:
        return self.media.elapsed_ms()

    def answered_by(self):  # the carrier's verdict
        return self.media.answered_by()

    def recording_path(self) -> str | None:
        return str(self._recorder.path) if self._recorder is not None else None

    def latency_report(self) -> dict | None:
        return self.latency.report()


class RealtimeTelephony(Telephony):
    """A carrier whose answered calls are conducted by a realtime model (see the module docstring)."""

    def __init__(self, carrier: Telephony, recordings_dir: Path | None = None,
                 render_speech: SpeechRenderer | None = None) -> None:
        self.carrier, self.recordings_dir = carrier, recordings_dir
        self.name = carrier.name
        self._render_speech = render_speech  # the holding line and warm transfers' briefs
        self._hold: asyncio.Task | None = None

    def _hold_rendered(self, task: asyncio.Task) -> None:
        if not task.cancelled() and task.exception() is not None:
            log.warning("realtime_hold_line_not_rendered", error=type(task.exception()).__name__)

    def _hold_audio(self) -> np.ndarray | None:
        task = self._hold
        if task is None or not task.done() or task.cancelled() or task.exception() is not None:
            return None
        return task.result()

    async def dial(self, request: DialRequest) -> DialOutcome:
        if self._hold is None and self._render_speech is not None:
            self._hold = asyncio.get_running_loop().create_task(self._render_speech(HOLD_LINE))
            self._hold.add_done_callback(self._hold_rendered)
        outcome = await self.carrier.dial(request)
        if outcome.result is not DialResult.ANSWERED or outcome.media is None:
            return outcome
        line = RealtimeLine(outcome.media, request.call_id, self.recordings_dir if request.record else None,
                            self._hold_audio(), self._render_speech)
        return DialOutcome(DialResult.ANSWERED, line=line, reason=outcome.reason, media=line.channel)

    async def aclose(self) -> None:
        if self._hold is not None and not self._hold.done():
            self._hold.cancel()
        await self.carrier.aclose()


def local_speech_renderer(config: VoiceConfig) -> SpeechRenderer:
    """Text in the local TTS's voice (BYS_TTS_ENGINE / BYS_TTS_VOICE), the engine loaded once on first use.

    When it cannot be loaded every rendering raises that error (the holding line stays quiet, a brief
    goes to the carrier in words)."""
    loading: list[asyncio.Task] = []  # the one load, shared by every rendering

    async def render(text: str) -> np.ndarray:
        from byourside_server.voice.tts import load_tts

        if not loading:
            loading.append(asyncio.get_running_loop().create_task(
                asyncio.to_thread(load_tts, config.tts_engine, config.tts_voice)))
        tts = await asyncio.shield(loading[0])  # a caller given up on leaves the load to the others
        return await tts.synthesize(text)

    return render
