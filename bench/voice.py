"""Per-turn voice latency over real SIP and RTP on loopback: end of callee speech -> first agent audio.

    .venv/bin/python bench/voice.py [--modes fake,local] [--turns 6]

A `sipp` far end (Debian package sip-tester) answers and streams callee speech
synthesised by Piper in real time (20 ms RTP frames): short answers and
answers with pauses inside them, each followed by silence. Our sip provider
dials it; per turn the bench listens (webrtcvad endpointing), "thinks" and
speaks, and measures on the line's RTP timeline from the end of the callee's
speech to the first frame of our reply.

- ``fake``: fixed-latency providers (STT 100 ms; LLM first token 200 ms then
  20 ms per token; TTS first audio 100 ms), so ``overhead`` = latency minus
  the endpointing silence minus model time is the pipeline's own cost.
- ``local``: faster-whisper (packaged Whisper base) + Piper joe, with the same
  fake LLM (no local LLM can hold this conversation on this machine).

Prints figures only; it asserts nothing about speed. See docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "sip"))

from sipp_uas import answer_play, start_sipp

from byourside_server.telephony.base import DialRequest, DialResult, Speech
from byourside_server.telephony.sip.config import SipConfig
from byourside_server.telephony.sip.provider import SipTelephony
from byourside_server.voice.audio import TELEPHONE_RATE, ulaw_encode
from byourside_server.voice.pipeline import (
    SpeechToText,
    TextToSpeech,
    VoiceConfig,
    VoiceFactory,
    local_voice,
)
from byourside_server.voice.vad import Endpointer, webrtc_classifier

CALLEE = [
    "Hello, Sunrise Dental, Maria speaking.",
    "Yes, we are open tomorrow.",
    "Let me check the book... we have a slot at ten, or one at half past two.",
    "Ten is fine.",
    "Could you spell the last name for me... slowly please.",
    "Great, you are all set. Anything else?",
]
REPLY = "Thank you, that works for me."
REPLY_TOKENS = 8
GAP_SECONDS = 5.0
STT_S, LLM_FIRST_S, LLM_TOKEN_S, TTS_FIRST_S = 0.100, 0.200, 0.020, 0.100


class FixedSTT(SpeechToText):
    async def transcribe(self, pcm: np.ndarray, sample_rate: int) -> str:
        await asyncio.sleep(STT_S)
        return "callee speech"


class FixedTTS(TextToSpeech):
    async def synthesize(self, text: str) -> np.ndarray:
        await asyncio.sleep(TTS_FIRST_S)
        t = np.arange(int(0.06 * len(text) * TELEPHONE_RATE / 10)) / TELEPHONE_RATE
        return (6000 * np.sin(2 * np.pi * 440 * t)).astype(np.int16)


async def fake_llm() -> str:
    await asyncio.sleep(LLM_FIRST_S + LLM_TOKEN_S * (REPLY_TOKENS - 1))
    return REPLY


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(p / 100 * (len(ordered) - 1))))]


async def far_end_audio(workdir: Path, turns: int) -> Path:
    voice = local_voice(VoiceConfig(), workdir)
    _, tts = await voice.load()
    gap = np.zeros(int(GAP_SECONDS * TELEPHONE_RATE), dtype=np.int16)
    pieces = []
    for text in (CALLEE * 3)[:turns]:
        pieces += [await tts.synthesize(text), gap]
    path = workdir / "callee.ulaw"
    path.write_bytes(ulaw_encode(np.concatenate(pieces)))
    return path


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


async def run_mode(mode: str, audio: Path, turns: int, workdir: Path) -> dict[str, list[float]]:
    config = VoiceConfig()
    if mode == "fake":
        stt_inner, tts_inner = FixedSTT(), FixedTTS()
    else:
        stt_inner, tts_inner = await local_voice(config, workdir).load()
    stt, tts = TimedSTT(stt_inner), TimedTTS(tts_inner)
    voice = VoiceFactory(lambda: stt, lambda: tts,
                         lambda: Endpointer(webrtc_classifier(config.vad_aggressiveness),
                                            end_silence_ms=config.vad_end_silence_ms), barge_in_ms=0)
    run_dir = workdir / mode
    run_dir.mkdir()
    far_end = start_sipp(answer_play(audio, after_ms=1000), run_dir, echo=False, timeout_s=300)
    telephony = SipTelephony(SipConfig(trunk_uri=far_end.uri, bind_host="127.0.0.1"), voice)
    figures: dict[str, list[float]] = {"latency": [], "model": [], "overhead": [], "stt": [], "tts_first": []}
    heard_texts = []
    try:
        outcome = await telephony.dial(DialRequest("bench", "+14155550123", "+14155550100", 5, "en-US", "x"))
        assert outcome.result is DialResult.ANSWERED, outcome
        line = outcome.line
        for _ in range(turns):
            heard = await line.listen(GAP_SECONDS + 15)
            if not isinstance(heard, Speech):
                break
            heard_texts.append(heard.text)
            llm_start = time.perf_counter()
            reply = await fake_llm()
            llm = time.perf_counter() - llm_start
            spoken = await line.say(reply)
            # On the line's timeline, plus what it does not see: the jitter buffer held the callee's
            # audio back by its depth before the endpointer heard it.
            latency = spoken.start_ms - heard.end_ms + line.rtp.jitter.depth * 20
            model = (stt.last + llm + tts.first) * 1000
            figures["latency"].append(latency)
            figures["model"].append(model)
            figures["overhead"].append(latency - config.vad_end_silence_ms - model)
            figures["stt"].append(stt.last * 1000)
            figures["tts_first"].append(tts.first * 1000)
        await line.hangup()
    finally:
        await telephony.aclose()
        far_end.stop()
    if mode == "local":
        print("  heard:", " | ".join(heard_texts))
    return figures


def report(mode: str, figures: dict[str, list[float]]) -> None:
    n = len(figures["latency"])
    if not n:
        print(f"{mode}: no turns measured")
        return
    print(f"{mode}: {n} turns (latency includes the {VoiceConfig().vad_end_silence_ms} ms endpointing silence; "
          "overhead excludes it and model time)")
    for key in ("latency", "model", "overhead", "stt", "tts_first"):
        values = figures[key]
        print(f"  {key:10s} p50 {pct(values, 50):7.0f} ms   p90 {pct(values, 90):7.0f} ms   "
              f"mean {statistics.fmean(values):7.0f} ms")


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--modes", default="fake,local")
    parser.add_argument("--turns", type=int, default=6)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bys-voice-bench-") as tmp:
        workdir = Path(tmp)
        audio = await far_end_audio(workdir, args.turns)
        for mode in args.modes.split(","):
            report(mode, await run_mode(mode.strip(), audio, args.turns, workdir))


if __name__ == "__main__":
    asyncio.run(main())
