"""Per-turn voice latency over real SIP and RTP on loopback: end of callee speech -> first agent audio.

    .venv/bin/python bench/voice.py [--modes fake,local] [--turns 6] [--pipecat-python PATH]

A `sipp` far end (Debian package sip-tester) answers and streams callee speech
synthesised by Piper in real time (20 ms RTP frames): short answers and
answers with pauses inside them, each followed by silence. Our sip provider
dials it; per turn the bench listens (endpointing), "thinks" and speaks, and
measures on the line's RTP timeline from the end of the callee's speech to the
first frame of our reply. The end of speech is ground truth taken from the
synthesised audio (the last 10 ms above -40 dBFS in each line), not the
endpointer's own idea of it.

- ``fake``: fixed-latency providers (STT 100 ms; LLM first token 200 ms then
  20 ms per token; TTS first audio 100 ms).
- ``local``: faster-whisper (packaged Whisper base) + Piper joe, with the same
  fake LLM (no local LLM can hold this conversation on this machine).
- ``deepgram`` / ``deepgram-nospec``: the callee heard through our fake
  Deepgram live server (tests/providers/fake_deepgram.py: the callee's lines as
  its script, an interim every 100 ms of audio, every message held back
  DEEPGRAM_DELAY_S, ``endpointing`` DEEPGRAM_ENDPOINTING_MS so a line's pause is
  not its end), with speculative turn-taking on / off; the same fake LLM and TTS.

The same fake-provider turn built on pipecat-ai 1.14 (bench/voice_pipecat.py,
run with the python of a separate environment that has pipecat-ai) hears the
same audio against the same ground truth in the same run; its figures are
printed beside ours, with the ratios.

Framework share, for a pipeline that speculates (prepares the reply while the
turn is still open): the first audio cannot leave before the later of two
instants, both taken by the engine on the line's timeline (voice/latency.py):

- policy wait: from the instant the callee's last speech frame reached the
  engine to the instant turn-taking let the reply play (quiet for the turn
  silence with no "incomplete" verdict, or the turn closed);
- model path: from the same instant to the reply's first audio being in hand
  (the VAD's lag, the early-STT delay, STT, LLM, TTS first audio).

framework = latency - max(policy wait, model path): what the pipeline adds
on its own, the jitter buffer's hold-back of the last speech frame (latency
counts from its arrival), the wait for a send tick and event-loop delays
(printed split into ``hold-back`` and ``send wait``). pipecat's side
(bench/voice_pipecat.py) is latency - model - its turn wait, the same cost for
a pipeline that does not overlap them. ``beyond model`` = latency - model;
``turn wait`` = end of speech to the endpointer closing the turn, which a
speculative reply need not wait for.

Prints figures only; it asserts nothing about speed. See docs/benchmarks-voice.md.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "sip"))

from _harness import machine_load_note
from sipp_uas import answer_play, start_sipp

from byourside_server.telephony.base import DialRequest, DialResult, Speech
from byourside_server.telephony.sip.config import SipConfig
from byourside_server.telephony.sip.provider import SipTelephony
from byourside_server.voice.audio import (
    FRAME_MS,
    FRAME_SAMPLES,
    TELEPHONE_RATE,
    ulaw_decode,
    ulaw_encode,
)
from byourside_server.voice.factory import deepgram_stt
from byourside_server.voice.pipeline import (
    SpeechToText,
    TextToSpeech,
    VoiceConfig,
    VoiceFactory,
    local_voice,
    make_endpointer,
    turn_detector,
)
from byourside_server.voice.telephony import VoicedTelephony
from byourside_server.voice.vad import Endpointer, Utterance

# The callee's lines, for both sides (bench/voice_pipecat.py reads them from the ground-truth JSON).
# "..." is a pause of PAUSE_MS inside the utterance, from the end of one phrase to the next.
CALLEE = [
    "Hello, Sunrise Dental, Maria speaking.",
    "Yes, we are open tomorrow.",
    "Let me check the book... we have a slot at ten, or one at half past two.",
    "Ten is fine.",
    "Could you spell the last name for me... slowly please.",
    "Great, you are all set. Anything else?",
    "Hmm, that would be... Tuesday the fourth, right?",
    "The doctor is in until six.",
    "I can put you down for... eleven thirty, if that suits.",
    "No, we do not take walk-ins.",
    "Hold on one second... okay, I found your file.",
    "Thanks for calling, goodbye.",
]
PAUSE_MS = 600  # longer than pipecat's 200 ms VAD stop, shorter than our 700 ms endpointing silence
SPEECH_FLOOR_DBFS = -40.0  # ground truth: speech is a 10 ms window at or above this level
REPLY = "Thank you, that works for me."
REPLY_TOKENS = 8
GAP_SECONDS = 5.0
STT_S, LLM_FIRST_S, LLM_TOKEN_S, TTS_FIRST_S = 0.100, 0.200, 0.020, 0.100
DEEPGRAM_DELAY_S, DEEPGRAM_ENDPOINTING_MS = 0.100, 800  # the fake Deepgram's answers: network and processing


class FixedSTT(SpeechToText):
    async def transcribe(self, pcm: np.ndarray, sample_rate: int) -> str:
        await asyncio.sleep(STT_S)
        return "callee speech"


class FixedTTS(TextToSpeech):
    async def synthesize(self, text: str) -> np.ndarray:
        await asyncio.sleep(TTS_FIRST_S)
        t = np.arange(int(0.06 * len(text) * TELEPHONE_RATE / 10)) / TELEPHONE_RATE
        return (6000 * np.sin(2 * np.pi * 440 * t)).astype(np.int16)


# Its first clause ("Thanks a lot,") can be spoken long before its first sentence is complete.
STREAMED_REPLY = "Thanks a lot, that works for me and I will see you on Tuesday at ten then."


async def fake_llm_tokens(line, said: dict) -> AsyncIterator[str]:
    """The fake LLM streaming: first token after LLM_FIRST_S, then one every LLM_TOKEN_S. Notes the timeline
    ms at which the last token arrived (``said["last_token_ms"]``)."""
    words = STREAMED_REPLY.split(" ")
    tokens = [w + (" " if i < len(words) - 1 else "") for i, w in enumerate(words)]
    await asyncio.sleep(LLM_FIRST_S)
    for index, token in enumerate(tokens):
        if index:
            await asyncio.sleep(LLM_TOKEN_S)
        said["last_token_ms"] = line.elapsed_ms()
        yield token


async def fake_llm() -> str:
    await asyncio.sleep(LLM_FIRST_S + LLM_TOKEN_S * (REPLY_TOKENS - 1))
    return REPLY


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(p / 100 * (len(ordered) - 1))))]


def speech_bounds(pcm: np.ndarray) -> tuple[int, int]:
    """First and one-past-last sample of the 10 ms windows at or above SPEECH_FLOOR_DBFS."""
    window = TELEPHONE_RATE // 100
    blocks = pcm[: len(pcm) // window * window].astype(np.float64).reshape(-1, window)
    level = 20 * np.log10(np.sqrt((blocks ** 2).mean(axis=1)) / 32768 + 1e-12)
    loud = np.flatnonzero(level >= SPEECH_FLOOR_DBFS)
    return int(loud[0]) * window, (int(loud[-1]) + 1) * window


async def speak(tts: TextToSpeech, text: str) -> np.ndarray:
    """Synthesise one callee line; each "..." becomes exactly PAUSE_MS of silence between the phrases."""
    phrases = [phrase.strip() for phrase in text.split("...")]
    pieces = []
    for index, phrase in enumerate(phrases):
        pcm = await tts.synthesize(phrase + ("..." if index < len(phrases) - 1 else ""))
        start, end = speech_bounds(pcm)
        if index:
            pieces.append(np.zeros(PAUSE_MS * TELEPHONE_RATE // 1000, dtype=np.int16))
            pcm = pcm[start:]
        if index < len(phrases) - 1:
            pcm = pcm[:end]
        pieces.append(pcm)
    return np.concatenate(pieces)


async def far_end_audio(workdir: Path, turns: int) -> Path:
    """Write the callee's audio (8 kHz mu-law, each line followed by GAP_SECONDS of silence) and,
    beside it, its ground truth as JSON: where each line's speech starts and ends in the stream (as
    received, after mu-law), its first audible frame, and the fake providers' latencies."""
    voice = local_voice(VoiceConfig(), workdir)
    _, tts = await voice.load()
    gap = np.zeros(int(GAP_SECONDS * TELEPHONE_RATE), dtype=np.int16)
    pieces, utterances, offset = [], [], 0
    for text in (CALLEE * (turns // len(CALLEE) + 1))[:turns]:
        speech = ulaw_decode(ulaw_encode(await speak(tts, text)))
        start, end = speech_bounds(speech)
        audible = offset + int(np.flatnonzero(speech)[0])
        utterances.append({"text": text, "start": offset + start, "end": offset + end,
                           "onset_frame": audible // FRAME_SAMPLES})
        pieces += [speech, gap]
        offset += len(speech) + len(gap)
    path = workdir / "callee.ulaw"
    path.write_bytes(ulaw_encode(np.concatenate(pieces)))
    truth = {"rate": TELEPHONE_RATE, "frame_samples": FRAME_SAMPLES, "utterances": utterances,
             "fake": {"stt_s": STT_S, "llm_first_s": LLM_FIRST_S, "llm_token_s": LLM_TOKEN_S,
                      "reply": REPLY, "reply_tokens": REPLY_TOKENS, "tts_first_s": TTS_FIRST_S}}
    path.with_suffix(".json").write_text(json.dumps(truth, indent=1))
    return path


class CalleeTimeline:
    """The ground truth placed on the line's timeline (the ms of Speech and Spoken).

    Wraps the RTP session's frame listener: each utterance is anchored at the tick where its first
    audible frame reached the endpointer (the first non-silent frame after QUIET_FRAMES of digital
    silence), so a jitter-buffer rebuffer between utterances does not shift the others.
    """

    QUIET_FRAMES = 100  # 2 s: longer than any pause inside an utterance, shorter than GAP_SECONDS

    def __init__(self, rtp, audio: Path, cut_ins: list[float]) -> None:
        self.utterances = json.loads(audio.with_suffix(".json").read_text())["utterances"]
        self.onsets: list[int] = []  # the tick of each utterance's first audible frame
        self.measured: set[int] = set()
        self.cut_ins = cut_ins  # the index of the utterance each cut-in fell in
        self._silent = self.QUIET_FRAMES
        self.held_back: dict[int, int] = {}  # tick -> how long the jitter buffer held its inbound frame back (ms)
        inner = rtp.on_frame

        def on_frame(inbound: np.ndarray, outbound: np.ndarray) -> None:
            self.held_back[rtp.ticks] = rtp.jitter.delay_ms
            if np.any(inbound):
                if self._silent >= self.QUIET_FRAMES:
                    self.onsets.append(rtp.ticks)
                self._silent = 0
            else:
                self._silent += 1
            inner(inbound, outbound)

        rtp.on_frame = on_frame

    def end_ms(self, index: int) -> int:
        """When utterance ``index``'s last speech frame reached the endpointer, on the timeline."""
        utterance = self.utterances[index]
        last_frame = (utterance["end"] - 1) // FRAME_SAMPLES
        return (self.onsets[index] + last_frame - utterance["onset_frame"]) * FRAME_MS

    def held_back_ms(self, at_ms: int) -> int:
        """How long the jitter buffer had held back the inbound frame that reached the timeline at ``at_ms``."""
        return self.held_back.get(at_ms // FRAME_MS, 0)

    def done(self) -> bool:
        """Whether the last utterance has been answered and measured."""
        return len(self.utterances) - 1 in self.measured

    def utterance_at(self, ms: int) -> int | None:
        """The utterance under way at ``ms`` (the last one begun by then)."""
        begun = [i for i, tick in enumerate(self.onsets[:len(self.utterances)]) if tick * FRAME_MS <= ms]
        return begun[-1] if begun else None

    def speech_end(self, heard_end_ms: int, first_audio_ms: int) -> int | None:
        """The ground-truth end of the callee speech that a heard turn answers, on the timeline.

        None for a cut-in, which is counted and not measured: a reply whose first audio left (at
        ``first_audio_ms``) before the callee had finished the utterance, in a pause; likewise a
        second reply on an utterance already measured.
        """
        index = self.utterance_at(heard_end_ms)
        if index is None or index in self.measured or first_audio_ms < self.end_ms(index):
            self.cut_ins.append(float(-1 if index is None else index))
            return None
        self.measured.add(index)
        return self.end_ms(index)


class TimedSTT(SpeechToText):
    def __init__(self, inner: SpeechToText) -> None:
        self.inner, self.last = inner, 0.0

    async def transcribe(self, pcm: np.ndarray, sample_rate: int) -> str:
        start = time.perf_counter()
        try:
            return await self.inner.transcribe(pcm, sample_rate)
        finally:
            self.last = time.perf_counter() - start


class TimedTTS(TextToSpeech):
    def __init__(self, inner: TextToSpeech) -> None:
        self.inner, self.first = inner, 0.0

    async def synthesize(self, text: str) -> np.ndarray:
        start = time.perf_counter()
        try:
            return await self.inner.synthesize(text)
        finally:
            self.first = time.perf_counter() - start


class ClosingTimes:
    """The shipped endpointer, noting when (on the line's timeline) it closed each utterance and why."""

    def __init__(self, inner: Endpointer) -> None:
        self.inner, self.ms = inner, 0
        self.closed: dict[int, tuple[int, str]] = {}  # utterance end_ms -> (ms it was closed, ended_by)
        self.utterances: list[Utterance] = []  # in the order they closed

    def __getattr__(self, name: str):
        return getattr(self.inner, name)  # in_speech, voiced_ms, ...: the endpointer's own

    def feed(self, frame: np.ndarray) -> Utterance | None:
        self.ms += FRAME_MS
        return self._note(self.inner.feed(frame))

    def flush(self) -> Utterance | None:
        return self._note(self.inner.flush())

    def _note(self, utterance: Utterance | None) -> Utterance | None:
        if utterance is not None:
            self.closed[utterance.end_ms] = (self.ms, utterance.ended_by)
            self.utterances.append(utterance)
        return utterance


LEVERS = {"talkspurt_at_once": True, "phase_lead": True}  # the RTP levers on the framework share (--no-...)


def rtp_levers(rtp) -> None:
    """Turn off the levers the command line turned off, on one call's RTP session."""
    rtp.talkspurt_at_once = LEVERS["talkspurt_at_once"]
    if not LEVERS["phase_lead"]:
        rtp.jitter.align_after = None


async def fake_deepgram(turns: int, speculate: bool):
    """The fake Deepgram live server, scripted with the callee's lines, and the settings that hear through it."""
    sys.path.insert(0, str(ROOT / "tests" / "providers"))
    from fake_deepgram import FakeDeepgram

    script = [text.replace("...", "") for text in (CALLEE * (turns // len(CALLEE) + 1))[:turns]]
    fake = await FakeDeepgram(script=script, interim_every_ms=100, answer_delay=DEEPGRAM_DELAY_S).start()
    config = VoiceConfig(stt="deepgram", deepgram_api_key=fake.api_key, deepgram_url=fake.url,
                         deepgram_endpointing_ms=DEEPGRAM_ENDPOINTING_MS, turn_speculate=speculate)
    return fake, config


async def run_mode(mode: str, audio: Path, turns: int, workdir: Path,
                   stream_llm: bool = False) -> dict[str, list[float]]:
    config, deepgram, recognition = VoiceConfig(), None, None
    if mode in ("deepgram", "deepgram-nospec"):
        deepgram, config = await fake_deepgram(turns, speculate=mode == "deepgram")
        hearing, recognition = deepgram_stt(config)
        stt_inner, tts_inner = hearing(), FixedTTS()
    elif mode == "fake":
        stt_inner, tts_inner = FixedSTT(), FixedTTS()
    else:
        stt_inner, tts_inner = await local_voice(config, workdir).load()
    stt, tts = TimedSTT(stt_inner), TimedTTS(tts_inner)
    # The endpointer local_voice ships (webrtcvad + the configured turn detector), its model loaded up front.
    detector = turn_detector(config)
    endpointers: list[ClosingTimes] = []

    def endpointer() -> ClosingTimes:
        endpointers.append(ClosingTimes(make_endpointer(config, detector)))
        return endpointers[-1]

    voice = VoiceFactory(lambda: stt, lambda: tts, endpointer, barge_in_ms=0, turn_detector=detector,
                         stt_early_ms=config.stt_early_ms, speculate=config.turn_speculate, recognition=recognition)
    await voice.load()
    run_dir = workdir / mode
    run_dir.mkdir()
    far_end = start_sipp(answer_play(audio, after_ms=1000), run_dir, echo=False, timeout_s=300)
    telephony = VoicedTelephony(SipTelephony(SipConfig(trunk_uri=far_end.uri, bind_host="127.0.0.1")), voice)
    figures: dict[str, list[float]] = {"latency": [], "model": [], "beyond_model": [], "turn_wait": [],
                                       "policy_wait": [], "model_path": [], "overhead": [], "held_back": [],
                                       "send_wait": [], "by_turn_detector": [], "stt": [], "tts_first": []}
    heard_texts = []
    try:
        outcome = await telephony.dial(DialRequest("bench", "+14155550123", "+14155550100", 5, "en-US", "x"))
        assert outcome.result is DialResult.ANSWERED, outcome
        line = outcome.line
        rtp = line.media.rtp  # the SIP adapter's RTP session: its ticks are the line's timeline
        rtp_levers(rtp)
        timeline = CalleeTimeline(rtp, audio, figures.setdefault("cut_ins", []))  # the ground truth
        while not timeline.done():  # a cut-in takes a turn of its own: go on until the last line is answered
            heard = await line.listen(GAP_SECONDS + 15)
            if not isinstance(heard, Speech):
                break
            heard_texts.append(heard.text)
            llm_start = time.perf_counter()
            if stream_llm:
                said: dict = {}
                _, spoken = await line.say_stream(fake_llm_tokens(line, said))
                llm = LLM_FIRST_S + LLM_TOKEN_S * (len(STREAMED_REPLY.split(" ")) - 1)
                if not spoken.interrupted:  # how long before the reply's last token its first audio left
                    figures.setdefault("audio_lead", []).append(said["last_token_ms"] - (spoken.start_ms + FRAME_MS))
            else:
                reply = await fake_llm()
                llm = time.perf_counter() - llm_start
                spoken = await line.say(reply)
            if spoken.interrupted and not spoken.heard:  # dropped before its first audio: the callee went on
                figures.setdefault("dropped", []).append(1.0)
                continue
            # From the ground-truth end of the callee's speech (the same instant pipecat's side is
            # measured from); None when our first audio left before it, in a pause (a cut-in).
            speech_end = timeline.speech_end(heard.end_ms, spoken.start_ms + FRAME_MS)
            if speech_end is None:
                continue
            # When the endpointer closed the turn: a speculative reply may start before it does.
            closed_ms, ended_by = endpointers[-1].closed.get(heard.end_ms, (None, "open"))
            # On the line's timeline (from the instant the reply's first frame left), plus what it does
            # not see: how long the jitter buffer had held the last speech frame back.
            first_audio = min((ms for ms in rtp.talkspurt_starts if ms >= spoken.start_ms),
                              default=spoken.start_ms + FRAME_MS)
            held_back = timeline.held_back_ms(speech_end)
            latency = first_audio - speech_end + held_back
            # STT on the critical path: what was left of it after the turn closed (the line starts it
            # early, in the closing silence; see BYS_STT_EARLY_MS); for a speculative reply, the early
            # transcription itself, which the brain waited for (the line's latency log says which).
            turn = line.latency.turns[-1] if line.latency.turns else None
            stt_wait = turn.stt_ms if turn is not None else stt.last * 1000
            model = stt_wait + (llm + tts.first) * 1000
            # Endpointing share: from the end of speech to the endpointer closing the turn (the turn
            # detector's short silence and answer, or the silence fallback).
            figures["latency"].append(latency)
            figures["model"].append(model)
            figures["beyond_model"].append(latency - model)
            if closed_ms is not None:
                figures["turn_wait"].append(closed_ms - speech_end)
            if turn is not None and turn.gate_open_ms is not None and turn.audio_ready_ms is not None:
                # Both from the instant the last speech frame reached the engine (see the module docstring).
                policy, model_path = turn.gate_open_ms - speech_end, turn.audio_ready_ms - speech_end
                figures["policy_wait"].append(policy)
                figures["model_path"].append(model_path)
                figures["overhead"].append(latency - max(policy, model_path))
                figures["held_back"].append(held_back)
                figures["send_wait"].append(latency - held_back - max(policy, model_path))
            figures["by_turn_detector"].append(float(ended_by == "turn"))
            figures["stt"].append(stt_wait)
            figures["tts_first"].append(tts.first * 1000)
        await line.hangup()
    finally:
        await telephony.aclose()
        far_end.stop()
        if deepgram is not None:
            await deepgram.aclose()
    if deepgram is not None:
        print(f"  deepgram (fake, answers {DEEPGRAM_DELAY_S * 1000:.0f} ms late, endpointing "
              f"{DEEPGRAM_ENDPOINTING_MS} ms): heard {deepgram.heard}")
    if mode == "local":
        print("  heard:", " | ".join(heard_texts))
    closed = [u.ended_by for e in endpointers for u in e.utterances]  # every turn, cut-ins included
    if detector is None:
        setting = f"turn detector off, {config.vad_end_silence_ms} ms of silence ends a turn"
    else:
        setting = (f"{config.turn_detector}: a complete turn closes after {config.vad_turn_silence_ms} ms of "
                   f"silence, any turn after {config.vad_end_silence_ms} ms")
    print(f"  endpointing ({setting}): {closed.count('turn')} turns closed by the turn detector, "
          f"{closed.count('silence')} by silence")
    return figures


ROWS = (  # (key, label): one row per figure, both sides
    ("latency", "latency"), ("model", "model"), ("beyond_model", "beyond model"), ("turn_wait", "turn wait"),
    ("policy_wait", "policy wait"), ("model_path", "model path"), ("overhead", "framework"),
    ("held_back", "  hold-back"), ("send_wait", "  send wait"), ("stt", "stt"), ("tts_first", "tts first"),
)


def report(mode: str, figures: dict[str, list[float]]) -> None:
    n = len(figures["latency"])
    cut_ins = len(figures.get("cut_ins", []))
    if not n:
        print(f"{mode}: no turns measured ({cut_ins} cut-ins)")
        return
    by_detector = (f", {int(sum(figures['by_turn_detector']))} closed by the turn detector"
                   if "by_turn_detector" in figures else "")
    lead = figures.get("audio_lead")
    if lead:
        early = sum(1 for v in lead if v > 0)
        print(f"{mode}: streamed LLM ({LLM_TOKEN_S * 1000:.0f} ms per token, a {len(STREAMED_REPLY.split())}-word "
              f"first sentence): first audio left before the sentence's last token in {early} of {len(lead)} "
              f"replies, p50 {pct(lead, 50):.0f} ms before it")
    dropped = len(figures.get("dropped", []))
    if dropped:
        print(f"{mode}: {dropped} replies dropped before their first audio (the callee went on: a speculative "
              "turn, or a turn closed in a pause)")
    print(f"{mode}: {n} turns measured from the ground-truth end of speech{by_detector}; {cut_ins} cut-ins "
          "(replies whose first audio left inside a pause, before the callee had finished). beyond model = latency - "
          "model; turn wait = end of speech to the turn closing; framework = latency - max(policy wait, model path) "
          "= hold-back + send wait")
    for key, label in ROWS:
        values = figures.get(key)
        if values:
            print(f"  {label:12s} p50 {pct(values, 50):7.0f} ms   p90 {pct(values, 90):7.0f} ms   "
                  f"mean {statistics.fmean(values):7.0f} ms")


PIPECAT_VENV = Path("/tmp/bys-bench-pipecat")  # where `make bench-voice` puts pipecat-ai


def default_pipecat_python() -> str | None:
    configured = os.environ.get("BYS_BENCH_PIPECAT_PYTHON")
    if configured:
        return configured
    python = PIPECAT_VENV / "bin" / "python"
    return str(python) if python.exists() else None


def run_pipecat(python: str, audio: Path, workdir: Path) -> dict | None:
    """Run bench/voice_pipecat.py in pipecat's own environment on the same callee audio and ground
    truth; its JSON figures, or None (with the reason printed) when it failed."""
    seconds = len(audio.read_bytes()) / TELEPHONE_RATE
    log = workdir / "pipecat.log"
    command = [python, str(ROOT / "bench" / "voice_pipecat.py"), "--audio", str(audio),
               "--truth", str(audio.with_suffix(".json"))]
    with log.open("wb") as stderr:
        try:
            done = subprocess.run(command, stdout=subprocess.PIPE, stderr=stderr, timeout=seconds + 180,
                                  env={**os.environ, "HF_HUB_OFFLINE": "1"}, check=False)
        except (OSError, subprocess.TimeoutExpired) as error:
            print(f"pipecat-ai: not measured ({error})")
            return None
    if done.returncode != 0:
        tail = log.read_text(errors="replace").strip().splitlines()[-15:]
        print(f"pipecat-ai: not measured ({python} exited with {done.returncode}):\n  " + "\n  ".join(tail))
        return None
    return json.loads(done.stdout)


def pipecat_figures(result: dict) -> dict[str, list[float]]:
    """pipecat's per-turn figures under our keys (its pure framework share is our ``overhead``)."""
    keys = {"latency": "latency", "model": "model", "beyond_model": "beyond_model", "turn_wait": "turn_wait",
            "overhead": "framework", "stt": "stt", "tts_first": "tts_first", "vad_stop": "vad_stop",
            "smart_turn": "smart_turn"}
    figures = {ours: [turn[theirs] for turn in result["turns"]] for ours, theirs in keys.items()}
    figures["cut_ins"] = [0.0] * result["cut_ins"]
    return figures


def side_by_side(ours: dict[str, list[float]], pipecat: dict[str, list[float]], result: dict) -> None:
    def cell(values: list[float] | None) -> str:
        return f"{pct(values, 50):5.0f} / {pct(values, 90):5.0f}" if values else "    -"

    print(f"side by side, fake providers, the same callee audio and ground truth "
          f"(pipecat-ai {result['pipecat']}, Silero VAD + Smart Turn v3 defaults, pipeline at {result['in_rate']} Hz)")
    print(f"  {'ms, p50 / p90':14s} {'byourside':>15s} {'pipecat-ai':>15s}   ours / pipecat (p50)")
    for key, label in ROWS + (("vad_stop", "Silero stop"), ("smart_turn", "smart turn")):
        mine, theirs = ours.get(key), pipecat.get(key)
        ratio = (f"{pct(mine, 50) / pct(theirs, 50):.2f}"
                 if mine and theirs and key in ("latency", "beyond_model", "overhead") and pct(theirs, 50) else "")
        print(f"  {label:14s} {cell(mine):>15s} {cell(theirs):>15s}   {ratio}")
    print(f"  {'turns':14s} {len(ours['latency']):>15d} {len(pipecat['latency']):>15d}")
    print(f"  {'cut-ins':14s} {len(ours.get('cut_ins', [])):>15d} {len(pipecat['cut_ins']):>15d}")
    verdicts = " | ".join(" ".join(f"{state[0]}{ms:+d}" for state, ms in line) for line in result["verdicts"])
    print(f"  pipecat: {result['missed']} utterances without a measured reply; Smart Turn's verdicts on each line "
          f"(Complete / Incomplete, ms from the end of its speech): {verdicts}")


def compare_with_pipecat(python: str | None, audio: Path, workdir: Path,
                         ours: dict[str, list[float]] | None) -> None:
    if ours is None:
        print("pipecat-ai: skipped (the side-by-side run compares the fake mode: add it to --modes)")
        return
    if not python:
        print(f"pipecat-ai: skipped (no environment with pipecat-ai: `make bench-voice` creates {PIPECAT_VENV}; "
              "or pass --pipecat-python / set BYS_BENCH_PIPECAT_PYTHON)")
        return
    result = run_pipecat(python, audio, workdir)
    if result is None:
        return
    pipecat = pipecat_figures(result)
    report(f"pipecat-ai {result['pipecat']} (fake providers)", pipecat)
    side_by_side(ours, pipecat, result)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--modes", default="fake,local")
    parser.add_argument("--turns", type=int, default=6)
    parser.add_argument("--stream-llm", action="store_true",
                        help="the fake LLM streams its tokens into Line.say_stream (speech from the first clause)")
    parser.add_argument("--pipecat-python", default=default_pipecat_python(),
                        help="python of an environment with pipecat-ai 1.14 for the side-by-side run "
                             f"(default: $BYS_BENCH_PIPECAT_PYTHON, else {PIPECAT_VENV}/bin/python if it exists)")
    parser.add_argument("--barge-in-trials", type=int, default=6,
                        help="barge-in trials (a backchannel and an interruption over our reply each); 0: none")
    parser.add_argument("--answers", type=int, default=5, help="calls for the answer-to-first-word line; 0: none")
    parser.add_argument("--no-talkspurt-start", action="store_true",
                        help="a reply's first frame waits for the next 20 ms tick (to measure that lever)")
    parser.add_argument("--no-phase-lead", action="store_true",
                        help="the receive ticks keep their phase, so an inbound frame waits up to a tick "
                             "(to measure that lever)")
    args = parser.parse_args()
    LEVERS.update(talkspurt_at_once=not args.no_talkspurt_start, phase_lead=not args.no_phase_lead)
    print(f"machine: {machine_load_note()} (shared with other work)")
    with tempfile.TemporaryDirectory(prefix="bys-voice-bench-") as tmp:
        workdir = Path(tmp)
        results = {}
        modes = [m.strip() for m in args.modes.split(",")]
        if args.turns > 0:
            audio = await far_end_audio(workdir, args.turns)
            for mode in modes:
                results[mode] = await run_mode(mode, audio, args.turns, workdir, stream_llm=args.stream_llm)
                report(mode, results[mode])
            compare_with_pipecat(args.pipecat_python, audio, workdir, results.get("fake"))
        if args.barge_in_trials > 0 or args.answers > 0:
            import voice_moments  # bench/voice_moments.py: barge-in and answer to first word

            for mode in modes:
                if mode in ("fake", "local"):  # the moments run on the shipped local or fake models
                    await voice_moments.run(mode, workdir, args.barge_in_trials, args.answers)
    print(f"machine after the run: {machine_load_note()}")


if __name__ == "__main__":
    asyncio.run(main())
