"""The listening half of the voice engine (voice/engine.py): which of the callee's turns the brain gets, and when.

``listen`` reads the recognition events (voice/listening.py) and returns the
next turn for the brain: a final transcript, several joined when the callee
went on after a pause the brain had not answered yet (``MERGE_GAP_MS``), a
record tone, silence or the hang-up. Turns heard as backchannels over our
speech are not for the brain.

Speculation: with ``speculate`` on, the early transcript taken in a short
silence is returned at once as the turn, so the brain and the TTS run while
the endpointer and the turn detector still decide. ``Speculation`` follows
that guess on the media clock: it settles when the turn closes where it was
guessed, when the callee has been quiet for the turn detector's silence
and the detector has not said the turn goes on (it judges; an answer late on
a busy machine does not hold the reply), or when the callee goes on; the
speaking half (voice/engine.py) waits for it before the first audio, and
drops the reply if they went on. A recogniser that closes turns itself
(Deepgram) settles it instead of our endpointer's silence: its closing words
confirm the guess, or show the callee went on.

``TurnTaking`` is a part of ``VoiceLine``, not a class of its own: it uses
the line's media, listening, latency and bookkeeping set up in its
``__init__``.
"""

from __future__ import annotations

import asyncio

from byourside_server.telephony.base import Beep, HangUp, LineEvent, Silence, Speech
from byourside_server.voice.listening import ToneHeard
from byourside_server.voice.ports import (
    FinalText,
    InterimText,
    SpeechEnded,
    SpeechStarted,
)
from byourside_server.voice.speaking import is_backchannel

SPECULATION_SLACK_MS = 40  # voiced time after a speculative turn's end that is a blip, not the callee going on
MERGE_GAP_MS = 1500  # speech after a pause at most this long, before the brain answered, continues the turn


class Speculation:
    """A turn given to the brain at its early transcript, before the endpointer closed it."""

    def __init__(self, start_ms: int, end_ms: int, voiced_ms: int) -> None:
        self.start_ms, self.end_ms, self.voiced_ms = start_ms, end_ms, voiced_ms
        self.settled = asyncio.Event()  # the turn closed there, or the callee went on
        self.settled_at_ms: int | None = None  # timeline ms of the frame that settled it
        self.went_on = False


class TurnTaking:
    """``VoiceLine``'s listening half (see the module docstring)."""

    def _settle_speculation(self) -> None:
        spec = self._speculation
        if spec is None or spec.settled.is_set():
            return
        endpointer = self.listening.endpointer
        if endpointer.in_speech and endpointer.voiced_ms > spec.voiced_ms + SPECULATION_SLACK_MS:
            spec.went_on = True  # more speech in the same turn: the reply answers half of it
            spec.settled.set()
        elif self.listening.closes_turns:
            verdict = self.listening.guess_verdict(spec.start_ms, spec.end_ms)
            if verdict is not None:  # the recogniser closed the turn: with the guessed words, or more
                spec.went_on = not verdict
                spec.settled.set()
        elif not endpointer.in_speech:
            spec.settled.set()  # the turn closed where it was guessed
        elif self._quiet_enough_to_answer(endpointer):
            spec.settled.set()  # the reply may start: the turn detector judges, it does not hold the floor
        if spec.settled.is_set():
            spec.settled_at_ms = self.listening.now_ms

    @staticmethod
    def _quiet_enough_to_answer(endpointer) -> bool:
        """The callee has been quiet for the turn detector's silence, and it has not said the turn goes on.

        Its answer may come late (a busy machine); until it does, the silence speaks. A pause it
        misjudges costs a dropped reply when the callee goes on before our first audio (the engine
        holds the reply while a sound begins), else a barge-in.
        """
        silence = endpointer.turn_silence_ms
        return silence is not None and endpointer.silent_ms >= silence and not endpointer.judged_incomplete

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
                # The reply waits on this recognition (it was asked at the early silence), not on the turn closing.
                self.latency.heard(event.end_ms, event.asked_ms - event.end_ms, self.elapsed_ms() - event.asked_ms)
                return Speech(event.text, event.start_ms, event.end_ms)

    def _speculate_on(self, event: InterimText) -> bool:
        """Take an early transcript as the turn, when speculating and the callee is still quiet since it."""
        if not self.voice.speculate or not event.text or self._reply is not None:
            return False
        if event.end_ms <= self._answered_up_to_ms or self._heard_as_backchannel(event):
            return False  # speech that needs no answer (answered already, or an acknowledgement over us)
        endpointer = self.listening.endpointer
        pending = endpointer.pending()
        if not endpointer.in_speech or pending is None or (pending.start_ms, pending.end_ms) != (
                event.start_ms, event.end_ms):
            return False  # closed meanwhile (its final text follows), or the callee went on
        self._speculation = Speculation(event.start_ms, event.end_ms, endpointer.voiced_ms)
        self._answered_up_to_ms = max(self._answered_up_to_ms, event.end_ms)
        return True

    def _to_answer(self, event: FinalText) -> bool:
        """Whether a recognised turn is for the brain (not a backchannel over our speech, not a wordless sound)."""
        spec = self._speculation
        if spec is not None and (spec.start_ms, spec.end_ms) == (event.start_ms, event.end_ms):
            self._speculation = None
            if not spec.went_on:
                return False  # the turn closed where it was guessed: the brain has it already
            # Its reply was dropped (the callee went on, the recogniser heard nothing more): the brain gets it.
        if spec is not None and spec.start_ms == event.start_ms:
            self._speculation = None  # the callee went on: the whole turn follows
        self.latency.forget_pending()
        self._answered_up_to_ms = max(self._answered_up_to_ms, event.end_ms)
        return bool(event.text) and not self._heard_as_backchannel(event)

    def _heard_as_backchannel(self, event: FinalText | InterimText) -> bool:
        """A turn the barge-in judgement heard as a backchannel over our speech (voice/engine.py).

        It noted our endpointer's span of the sound; a recogniser with its own timing (Deepgram's word
        times) places the same sound on a span of its own: there, a turn that overlaps a noted span and
        is itself only an acknowledgement is that backchannel.
        """
        if (event.start_ms, event.end_ms) in self._backchannels:
            return True
        return is_backchannel(event.text) and any(
            event.start_ms < end and start < event.end_ms for start, end in self._backchannels)

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
        self.latency.heard(last.end_ms, last.decided_ms - last.end_ms, last.stt_ms, gate_open_ms=last.decided_ms)
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

    async def _next_event(self, wait: float):
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
