"""Two moments of a call measured over real SIP and RTP on loopback: barge-in, and answer to first word.

Run by bench/voice.py (``--moments``, on by default); the far end is ``sipp`` streaming Piper's
speech in real time, as for the latency turns, and every figure is on the line's RTP timeline
plus how long the jitter buffer had held the callee's audio back, from ground truth taken from
the synthesised audio (speech is a 10 ms window at or above -40 dBFS).

- **barge-in**: we speak a long reply; while it plays the callee says a backchannel ("Uh-huh.")
  and, four seconds later, talks over us ("Sorry, can I ask you something first?"). Measured: the
  speech onset over us to the first RTP tick that carries none of our audio (our speech stopping
  on the wire), and for each backchannel whether our reply went on (it may pause while the words
  are judged) or stopped. The fake STT tells the two apart by length (a voiced stretch under
  700 ms is "Uh-huh."); with ``local`` Whisper hears them.
- **answer to first word**: the callee answers "Hello?" and waits; we say our greeting as soon
  as we hear them. Measured: the end of "Hello?" to our greeting's first RTP frame, over
  ``--answers`` calls (one far end each), twice: with the greeting prepared while the phone is
  answered (``Line.prepare``, as the offline agent does with its opener), and not prepared (a
  greeting only known once the callee has been heard: rendered after the turn closes).
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import numpy as np

from sipp_uas import answer_play, start_sipp
from voice import FRAME_MS, CalleeTimeline, FixedTTS, speak, speech_bounds

from byourside_server.telephony.base import DialRequest, DialResult, Speech
from byourside_server.telephony.sip.config import SipConfig
from byourside_server.telephony.sip.provider import SipTelephony
from byourside_server.voice.audio import FRAME_SAMPLES, TELEPHONE_RATE, ulaw_decode, ulaw_encode
from byourside_server.voice.factory import VoiceConfig, VoiceFactory
from byourside_server.voice.ports import SpeechToText, TextToSpeech
from byourside_server.voice.telephony import VoicedTelephony

BACKCHANNEL = "Uh-huh."
INTERRUPTION = "Sorry, can I ask you something first?"
HELLO = "Hello?"
GREETING = "Hi, this is an AI assistant calling for Sunrise Dental about your appointment."
BACKCHANNEL_AT_S, INTERRUPTION_AT_S, PERIOD_S = 3.0, 7.0, 13.0  # within each barge-in trial
STOPPED_FRAMES = 10  # our audio has stopped when 200 ms of ticks carry none of it
RESUMED_WITHIN_MS = 2500  # a reply that plays again this soon after a backchannel went on
# One long reply: more sentences than a trial lasts, so the callee always speaks over it.
LONG_REPLY = " ".join(f"Here is point number {i} about your appointment, and what to bring along with you."
                      for i in range(1, 40))


class LengthSTT(SpeechToText):
    """The fake STT of the barge-in run: a short voiced stretch is the backchannel, anything longer words."""

    async def transcribe(self, pcm: np.ndarray, sample_rate: int) -> str:
        await asyncio.sleep(0.1)
        loud = np.abs(pcm.astype(np.int32)) > 300
        return BACKCHANNEL if loud.sum() < 0.7 * sample_rate else INTERRUPTION


async def write_audio(tts: TextToSpeech, workdir: Path, name: str,
                      schedule: list[tuple[float, str]], total_s: float) -> Path:
    """The far end's audio: each (seconds, text) of ``schedule`` placed at its time, silence elsewhere;
    beside it the ground truth JSON in bench/voice.py's format."""
    stream = np.zeros(int(total_s * TELEPHONE_RATE), dtype=np.int16)
    utterances = []
    for at_s, text in schedule:
        speech = ulaw_decode(ulaw_encode(await speak(tts, text)))
        offset = int(at_s * TELEPHONE_RATE)
        stream[offset:offset + len(speech)] = speech[:len(stream) - offset]
        start, end = speech_bounds(speech)
        audible = offset + int(np.flatnonzero(speech)[0])
        utterances.append({"text": text, "start": offset + start, "end": offset + end,
                           "onset_frame": audible // FRAME_SAMPLES})
    path = workdir / f"{name}.ulaw"
    path.write_bytes(ulaw_encode(stream))
    path.with_suffix(".json").write_text(json.dumps({"utterances": utterances}, indent=1))
    return path


def start_ms(timeline: CalleeTimeline, index: int) -> int:
    """When utterance ``index``'s first speech frame reached the endpointer, on the timeline."""
    utterance = timeline.utterances[index]
    return (timeline.onsets[index] + utterance["start"] // FRAME_SAMPLES - utterance["onset_frame"]) * FRAME_MS


class OutboundTicks:
    """Per RTP tick, whether a frame of our speech left (wraps the session's frame listener after the timeline)."""

    def __init__(self, rtp) -> None:  # noqa: ANN001
        self.loud: dict[int, bool] = {}
        inner = rtp.on_frame

        def on_frame(inbound: np.ndarray, outbound: np.ndarray) -> None:
            self.loud[rtp.ticks] = bool(np.any(outbound))
            inner(inbound, outbound)

        rtp.on_frame = on_frame

    def stopped_at(self, from_tick: int) -> int | None:
        """The first tick at or after ``from_tick`` that begins STOPPED_FRAMES ticks without our audio."""
        last = max(self.loud, default=0)
        for tick in range(from_tick, last - STOPPED_FRAMES + 2):
            if not any(self.loud.get(t, False) for t in range(tick, tick + STOPPED_FRAMES)):
                return tick
        return None

    def loud_between(self, first: int, last: int) -> bool:
        return any(self.loud.get(t, False) for t in range(first, last))


async def dial(voice: VoiceFactory, audio: Path, workdir: Path, after_ms: int):  # noqa: ANN201
    far_end = start_sipp(answer_play(audio, after_ms=after_ms), workdir, echo=False, timeout_s=300)
    telephony = VoicedTelephony(SipTelephony(SipConfig(trunk_uri=far_end.uri, bind_host="127.0.0.1")), voice)
    outcome = await telephony.dial(DialRequest("bench", "+14155550123", "+14155550100", 5, "en-US", "x"))
    assert outcome.result is DialResult.ANSWERED, outcome
    return far_end, telephony, outcome.line


async def barge_in(mode: str, voice: VoiceFactory, tts: TextToSpeech, workdir: Path, trials: int) -> dict:
    schedule = [(k * PERIOD_S + at, text) for k in range(trials)
                for at, text in ((BACKCHANNEL_AT_S, BACKCHANNEL), (INTERRUPTION_AT_S, INTERRUPTION))]
    run_dir = workdir / f"barge-in-{mode}"
    run_dir.mkdir()
    audio = await write_audio(tts, run_dir, "callee", schedule, trials * PERIOD_S)
    far_end, telephony, line = await dial(voice, audio, run_dir, after_ms=1000)
    figures: dict[str, list[float]] = {"stop": [], "backchannel_went_on": [], "backchannel_pause": []}
    try:
        rtp = line.media.rtp
        timeline = CalleeTimeline(rtp, audio, [])
        ours = OutboundTicks(rtp)
        seconds = trials * PERIOD_S + 2
        loop = asyncio.get_running_loop()
        deadline = loop.time() + seconds * 3  # a safety net on a loaded machine, not a speed requirement
        while len(timeline.onsets) < len(schedule) or rtp.ticks * FRAME_MS < (start_ms(timeline, len(schedule) - 1)
                                                                              + 4000):
            if loop.time() > deadline:
                break
            spoken = await line.say(LONG_REPLY)
            if spoken.interrupted:
                await line.listen(8)  # the words that stopped us: heard, then we talk again
        for index, (_, text) in enumerate(schedule[:len(timeline.onsets)]):
            onset = start_ms(timeline, index)
            tick = onset // FRAME_MS
            if not ours.loud_between(tick - 5, tick + 1):
                continue  # we were not speaking when it began: nothing to barge in on
            stop = ours.stopped_at(tick)
            if text == INTERRUPTION:
                if stop is not None:
                    figures["stop"].append((stop - tick) * FRAME_MS + timeline.held_back_ms(onset))
            else:
                end_tick = timeline.end_ms(index) // FRAME_MS
                went_on = stop is None or ours.loud_between(stop, end_tick + RESUMED_WITHIN_MS // FRAME_MS)
                figures["backchannel_went_on"].append(float(went_on))
                silent = sum(1 for t in range(tick, end_tick + RESUMED_WITHIN_MS // FRAME_MS)
                             if not ours.loud.get(t, False))
                figures["backchannel_pause"].append(silent * FRAME_MS if went_on else float("nan"))
        await line.hangup()
    finally:
        await telephony.aclose()
        far_end.stop()
    return figures


async def answer_to_first_word(mode: str, voice: VoiceFactory, tts: TextToSpeech, workdir: Path,
                               answers: int, prepared: bool) -> list[float]:
    figures = []
    for k in range(answers):
        run_dir = workdir / f"answer-{mode}-{'prepared' if prepared else 'cold'}-{k}"
        run_dir.mkdir()
        audio = await write_audio(tts, run_dir, "callee", [(0.3, HELLO)], 8.0)
        far_end, telephony, line = await dial(voice, audio, run_dir, after_ms=200)
        try:
            if prepared:
                line.prepare(GREETING)
            timeline = CalleeTimeline(line.media.rtp, audio, [])
            heard = await line.listen(8)
            if isinstance(heard, Speech) and timeline.onsets:
                spoken = await line.say(GREETING)
                if not spoken.interrupted:
                    end = timeline.end_ms(0)
                    first_audio = min((ms for ms in line.media.rtp.talkspurt_starts if ms >= spoken.start_ms),
                                      default=spoken.start_ms + FRAME_MS)  # when our first frame left
                    figures.append(first_audio - end + timeline.held_back_ms(end))
            await line.hangup()
        finally:
            await telephony.aclose()
            far_end.stop()
    return figures


def fake_barge_in_voice(config: VoiceConfig, endpointer) -> VoiceFactory:  # noqa: ANN001
    """The fake providers with our shipped barge-in settings (the latency runs switch barge-in off)."""
    stt, tts = LengthSTT(), FixedTTS()
    return VoiceFactory(lambda: stt, lambda: tts, endpointer, barge_in_ms=config.barge_in_ms,
                        barge_in_pause_ms=config.barge_in_pause_ms, stt_early_ms=config.stt_early_ms,
                        speculate=config.turn_speculate)


async def run(mode: str, workdir: Path, trials: int, answers: int) -> dict[str, list[float]]:
    """Both moments for ``mode`` (fake or local), with our shipped settings; prints and returns the figures."""
    from voice import pct

    from byourside_server.voice.factory import local_voice, make_endpointer, turn_detector
    from byourside_server.voice.tts import load_tts

    config = VoiceConfig()
    callee_tts = await asyncio.to_thread(load_tts, config.tts_engine, config.tts_voice)  # Piper: the callee's voice
    if mode == "fake":
        detector = turn_detector(config)
        voice = fake_barge_in_voice(config, lambda: make_endpointer(config, detector))
        voice.turn_detector = detector
    else:
        voice = local_voice(config, workdir)
    await voice.load()
    figures = (await barge_in(mode, voice, callee_tts, workdir, trials) if trials
               else {"stop": [], "backchannel_went_on": [], "backchannel_pause": []})
    figures["answer"] = await answer_to_first_word(mode, voice, callee_tts, workdir, answers, prepared=True)
    figures["answer_cold"] = await answer_to_first_word(mode, voice, callee_tts, workdir, answers, prepared=False)

    def cell(values: list[float]) -> str:
        return f"p50 {pct(values, 50):5.0f} ms   p90 {pct(values, 90):5.0f} ms   (n={len(values)})" if values else "-"

    went_on = figures["backchannel_went_on"]
    pauses = [v for v in figures["backchannel_pause"] if v == v]
    print(f"{mode}: barge-in (callee speech onset over our reply -> our audio stopping on the wire): "
          f"{cell(figures['stop'])}")
    print(f"{mode}: backchannels over our reply: {int(sum(went_on))} of {len(went_on)} did not stop it"
          + (f" (paused for p50 {pct(pauses, 50):.0f} ms while judged)" if pauses else ""))
    print(f"{mode}: answer to first word (end of the callee's \"Hello?\" -> our greeting's first audio), "
          f"greeting prepared: {cell(figures['answer'])}")
    print(f"{mode}: answer to first word, greeting not prepared: {cell(figures['answer_cold'])}")
    return figures
