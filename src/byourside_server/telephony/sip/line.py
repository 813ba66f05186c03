"""An answered SIP call as a ``Line``: text in and out, audio on the wire.

``say`` renders text with the TTS sentence by sentence and plays it paced over
RTP; ``listen`` waits for the endpointer to close the callee's next utterance
and transcribes it; ``send_digits`` sends RFC 4733 events; a BYE from the far
end ends the line (HangUp, CalleeHungUp). The callee's audio is endpointed
continuously, also while we speak, so nothing said in between is lost; when
the callee talks over us for ``barge_in_ms`` we stop speaking (barge-in) and
``say`` returns early, while shorter sounds (backchannels) are ignored. An
answering machine's record tone is reported as a ``Beep``. Both
sides are recorded into one stereo WAV when a recordings directory is given.
Each reply's latency, stage by stage, goes into ``latency`` (voice/latency.py).
Early transcription: once the callee has been quiet for ``stt_early_ms`` the
turn so far is transcribed in the background; if the turn then ends there,
that transcript is used and most of the STT time is already behind us.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import numpy as np
import structlog

from byourside_server.telephony.base import (
    Beep,
    CalleeHungUp,
    HangUp,
    Line,
    LineEvent,
    Silence,
    Speech,
    Spoken,
)
from byourside_server.telephony.sip.dialog import Dialog
from byourside_server.telephony.sip.rtp import RtpSession
from byourside_server.voice.audio import FRAME_MS, TELEPHONE_RATE
from byourside_server.voice.pipeline import VoiceFactory
from byourside_server.voice.amd import AnsweringMachineDetector
from byourside_server.voice.latency import LatencyLog
from byourside_server.voice.recorder import StereoRecorder
from byourside_server.voice.tones import BeepDetector
from byourside_server.voice.vad import Utterance

log = structlog.get_logger(__name__)


class SipLine(Line):
    def __init__(self, dialog: Dialog, rtp: RtpSession, voice: VoiceFactory, call_id: str,
                 recordings_dir: Path | None) -> None:
        self.dialog, self.rtp, self.voice, self.call_id = dialog, rtp, voice, call_id
        self._endpointer = voice.endpointer()
        # What the callee did, with the timeline ms at which the endpointer (or beep detector) decided it.
        self._utterances: asyncio.Queue[tuple[Utterance | Beep, int]] = asyncio.Queue()
        self.latency = LatencyLog()
        self.amd = AnsweringMachineDetector()
        self._early: tuple[Utterance, asyncio.Task[str]] | None = None  # the turn so far, being transcribed
        early_ms = voice.stt_early_ms // FRAME_MS * FRAME_MS
        self._early_at_ms = early_ms if early_ms > 0 else -1  # silence at which to start; -1: never
        self.early_transcripts_used = 0  # cadence of the first words: a hint, not a decision
        self._beeps = BeepDetector()
        self._last_beep_ms: int | None = None
        self._hung_up = asyncio.Event()
        self._hangup_at: int | None = None
        self._closing: asyncio.Task | None = None
        self._speaking = False
        self._voiced_before_speaking = 0  # the callee's voiced ms in the current turn when we began to speak
        self.barged_in = False  # the callee talked over the last ``say`` and cut it short
        self.digits_received: list[str] = []
        self._recorder = StereoRecorder(recordings_dir / f"{call_id}.wav") if recordings_dir else None
        dialog.on_bye = self._far_end_bye
        rtp.on_frame = self._on_frame
        rtp.on_digit = self.digits_received.append

    # timeline
    def elapsed_ms(self) -> int:
        return self.rtp.ticks * FRAME_MS

    def recording_path(self) -> str | None:
        return str(self._recorder.path) if self._recorder is not None else None

    def note_model_latency(self, first_token_ms: float | None) -> None:
        self.latency.model_replied(first_token_ms)

    def latency_report(self) -> dict | None:
        report = self.latency.report()
        if self.amd.verdict is not None:
            report = {**(report or {"turns": []}), "amd": self.amd.verdict.to_json()}
        return report

    def answering_machine_hint(self) -> str | None:
        return self.amd.verdict.kind if self.amd.verdict is not None else None

    def _on_frame(self, inbound: np.ndarray, outbound: np.ndarray) -> None:
        if self._recorder is not None:
            self._recorder.write(inbound, outbound)
        if self.amd.feed(inbound) is not None:
            log.info("sip_amd", call_id=self.call_id, verdict=self.amd.verdict.kind, cause=self.amd.verdict.cause)
        utterance = self._endpointer.feed(inbound)
        beep_at = self._beeps.feed(inbound)
        if beep_at is not None:
            self._last_beep_ms = beep_at
            self.amd.beep()
            # A greeting that runs into the tone without a pause is heard before the tone, not after it.
            for heard in (utterance, self._endpointer.flush()):
                if heard is not None and not self._is_the_beep(heard):
                    self._utterances.put_nowait((heard, self.elapsed_ms()))
            utterance = None
            self._utterances.put_nowait((Beep(beep_at), self.elapsed_ms()))
        if utterance is not None and self._is_the_beep(utterance):
            utterance = None
        if not self._endpointer.in_speech:
            self._voiced_before_speaking = 0
        barge_in = self.voice.barge_in_ms
        talking_over_us = self._endpointer.voiced_ms - self._voiced_before_speaking
        if (self._speaking and barge_in and not self.barged_in and talking_over_us >= barge_in
                and not self._beeps.in_tone):  # a record tone is not the callee talking
            self.barged_in = True
            self.rtp.stop_playing()
            log.info("sip_barge_in", call_id=self.call_id)
        if utterance is not None:
            self._utterances.put_nowait((utterance, self.elapsed_ms()))
        elif self._endpointer.silent_ms == self._early_at_ms:
            self._transcribe_early()

    def _transcribe_early(self) -> None:
        """Start transcribing the turn so far; a newer pause replaces an older guess."""
        stt, pending = self.voice.loaded_stt, self._endpointer.pending()
        if stt is None or pending is None:
            return
        self._drop_early()
        task = asyncio.get_running_loop().create_task(stt.transcribe(pending.pcm, TELEPHONE_RATE))
        task.add_done_callback(lambda t: t.cancelled() or t.exception())  # a dropped guess may fail unseen
        self._early = (pending, task)

    def _drop_early(self) -> None:
        if self._early is not None:
            self._early[1].cancel()
            self._early = None

    async def _transcribe(self, utterance: Utterance) -> str:
        """The utterance's text: the early transcript when the turn ended where it was taken."""
        early, self._early = self._early, None
        if early is not None and (early[0].start_ms, early[0].end_ms) == (utterance.start_ms, utterance.end_ms):
            self.early_transcripts_used += 1
            return await early[1]
        if early is not None:
            early[1].cancel()
        stt, _ = await self.voice.load()
        return await stt.transcribe(utterance.pcm, TELEPHONE_RATE)

    def _is_the_beep(self, utterance: Utterance) -> bool:
        """The endpointer also hears a record tone as a short "utterance"; STT would invent words for it."""
        beep = self._last_beep_ms
        return beep is not None and utterance.start_ms >= beep - 300 and utterance.end_ms - utterance.start_ms < 1500

    def _far_end_bye(self) -> None:
        log.info("sip_far_end_bye", call_id=self.call_id)
        self._hangup_at = self.elapsed_ms()
        self._hung_up.set()
        self.rtp.stop_playing()
        self._close_media()

    def _check_open(self) -> None:
        if self._hung_up.is_set():
            raise CalleeHungUp(self._hangup_at or self.elapsed_ms())

    async def _until_hangup(self, awaitable) -> bool:
        """Await ``awaitable``; False if the far end hung up first."""
        job = asyncio.ensure_future(awaitable)
        bye = asyncio.ensure_future(self._hung_up.wait())
        try:
            await asyncio.wait({job, bye}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            bye.cancel()
        if job.done():
            job.result()
            return True
        job.cancel()
        return False

    # Line
    async def say(self, text: str) -> Spoken:
        self._check_open()
        _, tts = await self.voice.load()
        start = None
        self.barged_in, self._speaking = False, True
        # Only speech after we start talking counts toward barge-in, not the rest of a turn already under way.
        self._voiced_before_speaking = self._endpointer.voiced_ms
        asked = asyncio.get_running_loop().time()
        try:
            async for pcm in tts.stream(text):
                self._check_open()
                if self.barged_in:
                    break
                if start is None:
                    start = self.elapsed_ms()
                    # The callee's audio reached the timeline only after the jitter buffer held it back.
                    self.latency.spoke(start + self.rtp.jitter.depth * FRAME_MS,
                                       (asyncio.get_running_loop().time() - asked) * 1000)
                played = self.rtp.play(pcm)
                if not await self._until_hangup(played) or not played.result():
                    break  # hung up, or barged in: the rest of the text is not spoken
        finally:
            self._speaking = False
        self._check_open()
        end = self.elapsed_ms()
        return Spoken(start if start is not None else end, end)

    async def listen(self, timeout_seconds: float) -> LineEvent:
        if self._hung_up.is_set():
            return HangUp(self._hangup_at or self.elapsed_ms())
        start = self.elapsed_ms()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_seconds
        while True:
            remaining = deadline - loop.time()
            if remaining <= 0 and not self._endpointer.in_speech and self._utterances.empty():
                return Silence(start, self.elapsed_ms())
            # A turn that has begun may finish past the timeout: keep polling while the callee talks.
            item = await self._next_utterance(remaining if remaining > 0 else 0.2)
            if self._hung_up.is_set():
                return HangUp(self._hangup_at or self.elapsed_ms())
            if item is None:
                continue
            utterance, decided_ms = item
            self.latency.forget_pending()
            if isinstance(utterance, Beep):
                return utterance
            transcribing = loop.time()
            text = await self._transcribe(utterance)
            if text:
                self.latency.heard(utterance.end_ms, decided_ms - utterance.end_ms,
                                   round((loop.time() - transcribing) * 1000))
                return Speech(text, utterance.start_ms, utterance.end_ms)

    async def _next_utterance(self, wait: float) -> tuple[Utterance | Beep, int] | None:
        get = asyncio.ensure_future(self._utterances.get())
        bye = asyncio.ensure_future(self._hung_up.wait())
        try:
            await asyncio.wait({get, bye}, timeout=wait, return_when=asyncio.FIRST_COMPLETED)
        finally:
            bye.cancel()
        if get.done():
            return get.result()
        get.cancel()
        return None

    async def send_digits(self, digits: str) -> None:
        self._check_open()
        await self._until_hangup(self.rtp.send_digits(digits))
        self._check_open()

    async def hangup(self) -> None:
        if self._closing is not None:
            await self._closing  # the far end hung up, or an earlier hangup: wait until the recording is whole
            return
        task = self.dialog.bye()
        self._hung_up.set()
        if self._hangup_at is None:
            self._hangup_at = self.elapsed_ms()
        closing = self._close_media()
        if task is not None:
            try:
                await task
            except Exception:  # noqa: BLE001 - the call is over either way
                log.warning("sip_bye_failed", call_id=self.call_id)
        await closing

    def _close_media(self) -> asyncio.Task:
        """Stop RTP and finish the recording, once; every caller gets the same task."""
        if self._closing is None:
            self._closing = asyncio.get_running_loop().create_task(self._shut_media())
        return self._closing

    async def _shut_media(self) -> None:
        self._drop_early()
        await self.rtp.close()
        if self._recorder is not None:
            self._recorder.close()
