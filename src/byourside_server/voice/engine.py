"""The voice engine: any media channel (telephony/media.py) as the text-faced ``Line`` the brains use.

One task consumes the channel's frames. Each frame goes to the recorder (both
sides, one stereo WAV), the answering-machine detector (voice/amd.py) and the
listening half (voice/listening.py: endpointing, record tones, early and final
transcription); the callee is heard continuously, also while we speak, so
nothing said in between is lost.

``say`` renders text with the TTS (sentence by sentence, or clause by clause
as a model streams it: ``say_stream``) and plays it on the channel. Barge-in:
when the callee talks over us for ``barge_in_pause_ms`` our speech pauses (the
channel is cleared; we know how much had left); if the sound was a backchannel
("uh-huh", "okay", "right") or noise it resumes where it stopped, and if it
was words, or lasted ``barge_in_ms``, the reply stops there. ``say`` then
reports ``interrupted`` and ``heard``: the words whose audio had left.

A reply is dropped before its first audio when the callee went on talking
after what it answers (it was judged on a stale turn): ``say`` returns
interrupted with nothing heard, and the next ``listen`` brings what they said.

Each reply's latency, stage by stage, goes into ``latency`` (voice/latency.py).
"""

from __future__ import annotations

import asyncio
import collections
from collections.abc import AsyncIterator
from pathlib import Path

import structlog

from byourside_server.telephony.base import Beep, CalleeHungUp, HangUp, Line, LineEvent, Silence, Speech, Spoken
from byourside_server.telephony.media import AudioFrame, DigitReceived, MediaChannel
from byourside_server.voice.amd import AnsweringMachineDetector
from byourside_server.voice.audio import TELEPHONE_RATE
from byourside_server.voice.factory import VoiceFactory
from byourside_server.voice.latency import LatencyLog
from byourside_server.voice.listening import BatchRecognition, ToneHeard
from byourside_server.voice.ports import FinalText, InterimText, SpeechChunk, SpeechEnded, SpeechStarted
from byourside_server.voice.recorder import StereoRecorder
from byourside_server.voice.speaking import Reply, is_backchannel, play_chunk

log = structlog.get_logger(__name__)

SPECULATION_SLACK_MS = 40  # voiced time after a speculative turn's end that is a blip, not the callee going on
MERGE_GAP_MS = 1500  # speech after a pause at most this long, before the brain answered, continues the turn
JUDGE_AFTER_SILENCE_MS = 200  # quiet after speech over us before its words are judged
MIN_SPEECH_MS = 200  # voiced time that makes a sound the callee talking (as the endpointer's minimum turn)


class _Speculation:
    """A turn given to the brain at its early transcript, before the endpointer closed it."""

    def __init__(self, start_ms: int, end_ms: int, voiced_ms: int) -> None:
        self.start_ms, self.end_ms, self.voiced_ms = start_ms, end_ms, voiced_ms
        self.settled = asyncio.Event()  # the turn closed there, or the callee went on
        self.went_on = False


class VoiceLine(Line):
    def __init__(self, media: MediaChannel, voice: VoiceFactory, call_id: str,
                 recordings_dir: Path | None = None) -> None:
        self.media, self.voice, self.call_id = media, voice, call_id
        self.listening = BatchRecognition(voice, detect_tones=True)
        self.latency = LatencyLog()
        self.amd = AnsweringMachineDetector()
        self.digits_received: list[str] = []
        self.barged_in = False  # the callee cut the last ``say`` short
        self.backchannels_heard = 0  # speech over us that was only an acknowledgement: the reply went on
        self.replies_dropped = 0  # replies dropped before their first audio: the callee had gone on
        self._reply: Reply | None = None
        self._speculation: _Speculation | None = None
        self._voiced_before_speaking = 0
        self._held: collections.deque[ToneHeard | FinalText] = collections.deque()  # read ahead, for the next listen
        self._backchannels: set[tuple[int, int]] = set()  # (start, end) of turns heard as backchannels
        self._answered_up_to_ms = -1  # end of the callee speech the brain has been given (or that needs no answer)
        self._latest_speech_ms = -1  # start of the callee's latest speech that is more than a sound
        self._talking_ms = max(MIN_SPEECH_MS, voice.barge_in_ms)  # voiced time that is the callee talking, not a cough
        self._recorder = StereoRecorder(recordings_dir / f"{call_id}.wav") if recordings_dir else None
        self._pump = asyncio.get_running_loop().create_task(self._consume())

    @property
    def early_transcripts_used(self) -> int:
        return self.listening.early_transcripts_used

    # Line: the small things
    def elapsed_ms(self) -> int:
        return self.media.elapsed_ms()

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

    # the media clock
    async def _consume(self) -> None:
        try:
            async for event in self.media.events():
                if isinstance(event, DigitReceived):
                    self.digits_received.append(event.digit)
                elif isinstance(event, AudioFrame):
                    self._on_frame(event)
        except Exception:  # noqa: BLE001 - a broken frame handler must not leave the call deaf and unrecorded
            log.exception("voice_frame_handler_failed", call_id=self.call_id)
        finally:
            if self._recorder is not None:
                self._recorder.close()

    def _on_frame(self, frame: AudioFrame) -> None:
        if self._recorder is not None:
            self._recorder.write(frame.inbound, frame.outbound)
        if self.amd.feed(frame.inbound) is not None:
            log.info("voice_amd", call_id=self.call_id, verdict=self.amd.verdict.kind, cause=self.amd.verdict.cause)
        tones_before = self.listening.last_tone_ms
        self.listening.feed(frame.inbound, frame.at_ms)
        if self.listening.last_tone_ms != tones_before:
            self.amd.beep()
        endpointer = self.listening.endpointer
        if not endpointer.in_speech:
            self._voiced_before_speaking = 0
        elif endpointer.voiced_ms >= self._talking_ms and not self.listening.in_tone:
            self._latest_speech_ms = max(self._latest_speech_ms, endpointer.speech_start_ms or 0)
        self._settle_speculation()
        self._watch_barge_in()

    def _settle_speculation(self) -> None:
        spec = self._speculation
        if spec is None or spec.settled.is_set():
            return
        endpointer = self.listening.endpointer
        if endpointer.in_speech and endpointer.voiced_ms > spec.voiced_ms + SPECULATION_SLACK_MS:
            spec.went_on = True  # more speech in the same turn: the reply answers half of it
            spec.settled.set()
        elif not endpointer.in_speech:
            spec.settled.set()  # the turn closed where it was guessed

    def _watch_barge_in(self) -> None:
        reply = self._reply
        if reply is None or reply.state == "stopped" or self.listening.in_tone:  # a record tone is not the callee
            return
        endpointer = self.listening.endpointer
        over_us = endpointer.voiced_ms - self._voiced_before_speaking
        stop_ms, pause_ms = self.voice.barge_in_ms, self.voice.barge_in_pause_ms
        if stop_ms and over_us >= stop_ms:
            self._stop(reply)
        elif reply.state == "playing" and pause_ms and over_us >= pause_ms:
            reply.set("paused")
            self.media.clear()
            log.info("voice_barge_in_pause", call_id=self.call_id)
        elif reply.state == "paused" and reply.deciding is None and (
                not endpointer.in_speech or endpointer.silent_ms >= JUDGE_AFTER_SILENCE_MS):
            reply.deciding = asyncio.get_running_loop().create_task(self._judge_speech_over_us(reply))

    def _stop(self, reply: Reply) -> None:
        if reply.state != "stopped":
            reply.set("stopped")
            self.barged_in = True
            self.media.clear()
            log.info("voice_barge_in", call_id=self.call_id)

    async def _judge_speech_over_us(self, reply: Reply) -> None:
        """Words over our speech stop it; a backchannel or noise lets it resume."""
        endpointer = self.listening.endpointer
        pending = endpointer.pending()
        text = ""
        if pending is not None:
            try:
                stt, _ = await self.voice.load()
                text = await stt.transcribe(pending.pcm, TELEPHONE_RATE)
            except Exception:  # noqa: BLE001 - words we cannot make out are still words: stop rather than talk over
                log.exception("voice_barge_in_stt_failed", call_id=self.call_id)
                text = "unintelligible words"
        if reply.state != "paused":
            return
        if endpointer.voiced_ms - self._voiced_before_speaking >= self.voice.barge_in_ms:
            self._stop(reply)
        elif is_backchannel(text):
            if pending is not None:
                self._backchannels.add((pending.start_ms, pending.end_ms))
                self.backchannels_heard += 1
            self._answered_up_to_ms = self.elapsed_ms()
            self._voiced_before_speaking = endpointer.voiced_ms
            reply.deciding = None
            reply.set("playing")
            log.info("voice_barge_in_resume", call_id=self.call_id)
        else:
            self._stop(reply)

    # Line: speaking
    @property
    def streams_speech(self) -> bool:
        return True

    async def say(self, text: str) -> Spoken:
        self._check_open()
        _, tts = await self.voice.load()
        chunks = tts.stream(text)
        try:
            return await self._speak(chunks)
        finally:
            await chunks.aclose()

    async def say_stream(self, pieces: AsyncIterator[str]) -> tuple[str, Spoken]:
        self._check_open()
        _, tts = await self.voice.load()
        speech = tts.incremental(first_clause=True)

        async def feed() -> None:
            try:
                async for piece in pieces:
                    speech.push(piece)
            finally:
                speech.end()

        feeding = asyncio.get_running_loop().create_task(feed())
        chunks = speech.__aiter__()
        try:
            spoken = await self._speak(chunks)
            await feeding  # the whole text, even when the callee cut the speech short
        finally:
            feeding.cancel()
            await chunks.aclose()
        return speech.text.strip(), spoken

    async def _speak(self, chunks: AsyncIterator[SpeechChunk]) -> Spoken:
        self._check_open()
        reply = self._reply = Reply()
        self.barged_in = False
        # Only speech after we start talking counts toward barge-in, not the rest of a turn already under way.
        self._voiced_before_speaking = self.listening.endpointer.voiced_ms
        loop = asyncio.get_running_loop()
        asked = loop.time()
        start: int | None = None
        heard: list[str] = []
        try:
            async for chunk in chunks:
                if self.media.ended.is_set() or reply.state == "stopped":
                    break
                if start is None:
                    if not await self._speculation_holds():
                        return self._drop_reply()
                    if self._callee_went_on():
                        return self._drop_reply()
                    start = self.elapsed_ms()
                    # The callee's audio reached the timeline only after the jitter buffer held it back.
                    self.latency.spoke(start + self.media.inbound_delay_ms, (loop.time() - asked) * 1000)
                played_ms = await play_chunk(self.media, chunk, reply)
                heard.append(chunk.heard(played_ms))
                if played_ms < chunk.duration_ms:
                    break  # stopped by the callee, or hung up: the rest of the text is not spoken
        finally:
            self._reply = None
            if reply.deciding is not None:
                reply.deciding.cancel()
        self._check_open()
        end = self.elapsed_ms()
        interrupted = reply.state == "stopped"
        return Spoken(start if start is not None else end, end, interrupted=interrupted,
                      heard=" ".join(h for h in heard if h) if interrupted else None)

    async def _speculation_holds(self) -> bool:
        """Before a speculative reply's first audio: wait until its turn closed (True) or went on (False)."""
        spec = self._speculation
        if spec is None:
            return True
        if not spec.settled.is_set():
            settled = asyncio.ensure_future(spec.settled.wait())
            ended = asyncio.ensure_future(self.media.ended.wait())
            try:
                await asyncio.wait({settled, ended}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                settled.cancel()
                ended.cancel()
        return not spec.went_on

    def _drop_reply(self) -> Spoken:
        self.replies_dropped += 1
        log.info("voice_reply_dropped", call_id=self.call_id)
        now = self.elapsed_ms()
        return Spoken(now, now, interrupted=True, heard="")

    def _callee_went_on(self) -> bool:
        """The callee has spoken since the speech this reply answers (so the reply answers a stale turn)."""
        return self._latest_speech_ms > self._answered_up_to_ms

    # Line: listening
    async def listen(self, timeout_seconds: float) -> LineEvent:
        if self.media.ended.is_set():
            return self._hangup_event()
        start = self.elapsed_ms()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_seconds
        while True:
            remaining = deadline - loop.time()
            if remaining <= 0 and not self._held and not self.listening.unfinished:
                return Silence(start, self.elapsed_ms())
            # A turn that has begun may finish past the timeout: keep waiting while the callee talks.
            event = await self._next_event(remaining if remaining > 0 else 0.2)
            if self.media.ended.is_set():
                return self._hangup_event()
            if isinstance(event, ToneHeard):
                self.latency.forget_pending()
                self._answered_up_to_ms = max(self._answered_up_to_ms, event.at_ms)
                return Beep(event.at_ms)
            if isinstance(event, FinalText) and self._to_answer(event):
                return await self._whole_turn(event)
            if isinstance(event, InterimText) and self._speculate_on(event):
                self.latency.heard(event.end_ms, self.elapsed_ms() - event.end_ms, 0)
                return Speech(event.text, event.start_ms, event.end_ms)

    def _speculate_on(self, event: InterimText) -> bool:
        """Take an early transcript as the turn, when speculating and the callee is still quiet since it."""
        if not self.voice.speculate or not event.text or self._reply is not None:
            return False
        endpointer = self.listening.endpointer
        pending = endpointer.pending()
        if not endpointer.in_speech or pending is None or (pending.start_ms, pending.end_ms) != (
                event.start_ms, event.end_ms):
            return False  # closed meanwhile (its final text follows), or the callee went on
        self._speculation = _Speculation(event.start_ms, event.end_ms, endpointer.voiced_ms)
        self._answered_up_to_ms = max(self._answered_up_to_ms, event.end_ms)
        return True

    def _to_answer(self, event: FinalText) -> bool:
        """Whether a recognised turn is for the brain (not a backchannel over our speech, not a wordless sound)."""
        spec = self._speculation
        if spec is not None and (spec.start_ms, spec.end_ms) == (event.start_ms, event.end_ms):
            self._speculation = None
            return False  # the turn closed where it was guessed: the brain has it already
        if spec is not None and spec.start_ms == event.start_ms:
            self._speculation = None  # the callee went on: the whole turn follows
        self.latency.forget_pending()
        self._answered_up_to_ms = max(self._answered_up_to_ms, event.end_ms)
        return bool(event.text) and (event.start_ms, event.end_ms) not in self._backchannels

    async def _whole_turn(self, first: FinalText) -> Speech:
        """``first`` and what the callee went on to say after a pause before the brain could answer, as one turn.

        A pause can close a turn that was not over ("Hi, you've reached Chris Morgan. ... I can't come
        to the phone"); when the brain gets to it late (a slow STT, a busy machine) the callee has already
        gone on, and answering the first half alone would answer a stale turn. Only speech that began
        within ``MERGE_GAP_MS`` of the part before it is joined; later speech is the next turn.
        """
        texts, last = [first.text], first
        while not self.media.ended.is_set() and self._went_on_from(last):
            event = await self._next_event(0.5)
            if event is None or isinstance(event, (SpeechStarted, SpeechEnded, InterimText)):
                continue
            if isinstance(event, ToneHeard) or event.start_ms - last.end_ms > MERGE_GAP_MS:
                self._held.append(event)  # the next listen reports it
                break
            if self._to_answer(event):
                texts.append(event.text)
                last = event
        self.latency.heard(last.end_ms, last.decided_ms - last.end_ms, last.stt_ms)
        return Speech(" ".join(texts), first.start_ms, last.end_ms)

    def _went_on_from(self, last: FinalText) -> bool:
        """The callee is talking on after ``last`` (within the gap), or what they said next is still being heard."""
        if self._held:
            return False
        endpointer = self.listening.endpointer
        if endpointer.in_speech:
            started = endpointer.speech_start_ms or 0
            return endpointer.voiced_ms >= self._talking_ms and started - last.end_ms <= MERGE_GAP_MS
        return self.listening.unfinished  # a closed turn still being recognised, or events unread

    async def _next_event(self, wait: float):  # noqa: ANN202
        if self._held:
            return self._held.popleft()
        get = asyncio.ensure_future(self.listening.next_event())
        ended = asyncio.ensure_future(self.media.ended.wait())
        try:
            await asyncio.wait({get, ended}, timeout=wait, return_when=asyncio.FIRST_COMPLETED)
        finally:
            ended.cancel()
        if get.done():
            return get.result()
        get.cancel()
        return None

    def _hangup_event(self) -> HangUp:
        return HangUp(self.media.ended_at_ms if self.media.ended_at_ms is not None else self.elapsed_ms())

    def _check_open(self) -> None:
        if self.media.ended.is_set():
            raise CalleeHungUp(self.media.ended_at_ms or self.elapsed_ms())

    # Line: keys and the end
    async def send_digits(self, digits: str) -> None:
        self._check_open()
        await self.media.send_digits(digits)
        self._check_open()

    async def hangup(self) -> None:
        """End the call; once this returns the recording is complete."""
        await self.media.hangup()
        await self._pump
        await self.listening.aclose()

