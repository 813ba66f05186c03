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
A sound that begins just before the first audio holds it until it is talk
(dropped) or over (a cough: the reply plays).

``listen`` and speculative turn-taking are the listening half, in
voice/turn_taking.py.

Each reply's latency, stage by stage, goes into ``latency`` (voice/latency.py).
"""

from __future__ import annotations

import asyncio
import collections
from collections.abc import AsyncIterator
from pathlib import Path

import structlog

from byourside_server.domain import AnsweredBy, AnswerVerdict
from byourside_server.telephony.base import CalleeHungUp, Line, Spoken
from byourside_server.telephony.media import AudioFrame, DigitReceived, MediaChannel
from byourside_server.voice.amd import AnsweringMachineDetector
from byourside_server.voice.audio import TELEPHONE_RATE
from byourside_server.voice.factory import VoiceFactory
from byourside_server.voice.latency import LatencyLog
from byourside_server.voice.listening import ToneHeard
from byourside_server.voice.ports import FinalText, SpeechChunk, TextToSpeech, split_sentences
from byourside_server.voice.recorder import StereoRecorder
from byourside_server.voice.speaking import Reply, is_backchannel, play_chunk
from byourside_server.voice.turn_taking import Speculation, TurnTaking

log = structlog.get_logger(__name__)

JUDGE_AFTER_SILENCE_MS = 200  # quiet after speech over us before its words are judged
BLIP_OVER_AFTER_MS = 100  # quiet after a sound that began as we were about to speak, before we speak after all
MIN_SPEECH_MS = 200  # voiced time that makes a sound the callee talking (as the endpointer's minimum turn)


class VoiceLine(TurnTaking, Line):
    def __init__(self, media: MediaChannel, voice: VoiceFactory, call_id: str,
                 recordings_dir: Path | None = None, *, voice_name: str | None = None,
                 language: str | None = None) -> None:
        self.media, self.voice, self.call_id = media, voice, call_id
        # The call's own voice (a catalogue or contract name) and language (BCP-47): the speaker and the
        # recogniser are the process's models set for this call (``for_call``, ``for_language``).
        self.voice_name, self.language = voice_name, language
        self._speaker: TextToSpeech | None = None
        self._prepared: dict[str, asyncio.Task[SpeechChunk]] = {}  # first sentences rendered ahead (prepare)
        self.listening = voice.recognition(detect_tones=True, language=language)  # BatchRecognition, or a service
        self.latency = LatencyLog()
        self.amd = AnsweringMachineDetector()
        self.digits_received: list[str] = []
        self.barged_in = False  # the callee cut the last ``say`` short
        self.backchannels_heard = 0  # speech over us that was only an acknowledgement: the reply went on
        self.replies_dropped = 0  # replies dropped before their first audio: the callee had gone on
        self._reply: Reply | None = None
        self._speculation: Speculation | None = None
        self._voiced_before_speaking = 0
        self._held: collections.deque[ToneHeard | FinalText] = collections.deque()  # read ahead, for the next listen
        self._backchannels: set[tuple[int, int]] = set()  # (start, end) of turns heard as backchannels
        self._answered_up_to_ms = -1  # end of the callee speech the brain has been given (or that needs no answer)
        self._latest_speech_ms = -1  # start of the callee's latest speech that is more than a sound
        self._talking_ms = max(MIN_SPEECH_MS, voice.barge_in_ms)  # voiced time that is the callee talking, not a cough
        self._recorder = StereoRecorder(recordings_dir / f"{call_id}.wav") if recordings_dir else None
        self._frame_seen = asyncio.Event()  # set on every inbound frame, for waits measured in frames
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

    def answered_by(self) -> AnswerVerdict | None:
        carrier = self.media.answered_by()  # a carrier's answering-machine detection outweighs our cadence
        if carrier is not None:
            return carrier
        verdict = self.amd.verdict
        if verdict is None:
            return None
        return AnswerVerdict(AnsweredBy(verdict.kind), {"source": "cadence", **verdict.to_json()})

    # the media clock
    async def _consume(self) -> None:
        try:
            async for event in self.media.events():
                if isinstance(event, DigitReceived):
                    self.digits_received.append(event.digit)
                elif isinstance(event, AudioFrame):
                    self._on_frame(event)
        except Exception:
            log.exception("voice_frame_handler_failed", call_id=self.call_id)
        finally:
            self._frame_seen.set()  # no more frames: nothing waits for one in vain
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
        self._frame_seen.set()

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
                text = await stt.for_language(self.language).transcribe(pending.pcm, TELEPHONE_RATE)
            except Exception:
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

    async def _tts(self) -> TextToSpeech:
        """The speaker for this call: the process's TTS with the call's voice and language."""
        if self._speaker is None:
            _, tts = await self.voice.load()
            self._speaker = tts.for_call(self.voice_name, self.language)
        return self._speaker

    def prepare(self, text: str) -> None:
        sentences = split_sentences(text)
        if not sentences or sentences[0] in self._prepared or self.media.ended.is_set():
            return

        async def render() -> SpeechChunk:
            return await (await self._tts()).render(sentences[0])

        task = asyncio.get_running_loop().create_task(render())
        task.add_done_callback(lambda t: t.cancelled() or t.exception())  # a failure shows when it is said
        self._prepared[sentences[0]] = task

    async def say(self, text: str) -> Spoken:
        self._check_open()
        tts = await self._tts()
        sentences = split_sentences(text)
        prepared = self._prepared.pop(sentences[0], None) if sentences else None
        chunks = tts.stream(text) if prepared is None else self._after(prepared, tts, " ".join(sentences[1:]))
        try:
            return await self._speak(chunks)
        finally:
            await chunks.aclose()

    @staticmethod
    async def _after(first: asyncio.Task[SpeechChunk], tts: TextToSpeech, rest: str) -> AsyncIterator[SpeechChunk]:
        """A prepared first sentence, then the rest of the text rendered as it plays."""
        yield await first
        if rest:
            async for chunk in tts.stream(rest):
                yield chunk

    async def say_stream(self, pieces: AsyncIterator[str]) -> tuple[str, Spoken]:
        self._check_open()
        tts = await self._tts()
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
                    ready_ms, spec = self.media.clock_ms(), self._speculation
                    if not await self._speculation_holds():
                        return self._drop_reply()
                    settled_ms = self.listening.now_ms
                    if self._callee_went_on() or not await self._floor_is_free():
                        return self._drop_reply()
                    start = self.elapsed_ms()
                    # The callee's audio reached the timeline only after the jitter buffer held it back.
                    self.latency.spoke(start + self.media.inbound_delay_ms, (loop.time() - asked) * 1000,
                                       self._gate_open_ms(spec, settled_ms), ready_ms)
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

    async def _floor_is_free(self) -> bool:
        """Before the first audio: if the callee has just begun a sound, wait to hear whether it is a new turn.

        It is once it has lasted ``_talking_ms`` voiced (False: the reply answers a stale turn and is
        dropped); a shorter sound followed by ``BLIP_OVER_AFTER_MS`` of quiet was a cough or a click (True).
        """
        endpointer = self.listening.endpointer
        spec = self._speculation
        # A speculative reply may start while the turn it answers is still open: only voice after it counts.
        answered_voice = spec.voiced_ms if spec is not None and endpointer.speech_start_ms == spec.start_ms else 0
        while endpointer.in_speech and not self.media.ended.is_set():
            if endpointer.silent_ms >= BLIP_OVER_AFTER_MS:
                return True
            if endpointer.voiced_ms - answered_voice >= self._talking_ms:
                return False
            self._frame_seen.clear()
            await self._frame_seen.wait()
        return True

    def _gate_open_ms(self, spec: Speculation | None, settled_ms: int) -> int | None:
        """When turn-taking let the reply play: its speculation settled, or a sound begun at our start was over
        (frames went by in ``_floor_is_free`` after ``settled_ms``); None: the turn's closing (latency.heard)."""
        floor_ms = self.listening.now_ms if self.listening.now_ms != settled_ms else None
        instants = [ms for ms in (spec.settled_at_ms if spec is not None else None, floor_ms) if ms is not None]
        return max(instants) if instants else None

    def _drop_reply(self) -> Spoken:
        self.replies_dropped += 1
        log.info("voice_reply_dropped", call_id=self.call_id)
        now = self.elapsed_ms()
        return Spoken(now, now, interrupted=True, heard="")

    def _callee_went_on(self) -> bool:
        """The callee has spoken since the speech this reply answers (so the reply answers a stale turn)."""
        return self._latest_speech_ms > self._answered_up_to_ms

    def _check_open(self) -> None:
        if self.media.ended.is_set():
            raise CalleeHungUp(self.media.ended_at_ms or self.elapsed_ms())

    # Line: keys and the end
    async def send_digits(self, digits: str) -> None:
        self._check_open()
        await self.media.send_digits(digits)
        self._check_open()

    async def transfer(self, to: str, brief: str | None = None) -> None:
        """Hand the call over through the carrier; a warm transfer's brief is rendered in our voice first."""
        audio = None
        if brief:
            audio = await (await self._tts()).synthesize(brief)
        await self.media.transfer(to, brief, audio)

    async def hangup(self) -> None:
        """End the call; once this returns the recording is complete."""
        await self.media.hangup()
        for task in self._prepared.values():
            task.cancel()
        self._prepared.clear()
        await self._pump
        await self.listening.aclose()

