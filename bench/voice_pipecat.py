"""The pipecat-ai side of bench/voice.py: the same fake-provider turn, built on pipecat-ai 1.14.

    /tmp/bys-bench-pipecat/bin/python bench/voice_pipecat.py --audio callee.ulaw --truth callee.json

Runs only in a separate environment holding ``pipecat-ai[silero]==1.14.*`` (``make bench-voice``
creates one); it does not import byourside. bench/voice.py writes the callee audio (8 kHz mu-law)
and its ground truth (utterance bounds in samples, the fake providers' latencies) and starts this
script in a subprocess; the figures go to stdout as one JSON object, logs to stderr.

The bot is pipecat's telephony shape with its 1.14 defaults: a websocket transport with the
Twilio media-stream serializer (8 kHz mu-law on the wire, resampled to the pipeline rate by the
serializer), ``LLMContextAggregatorPair`` with Silero VAD in the user aggregator and the default
user-turn strategies (VAD / transcription start, ``TurnAnalyzerUserTurnStopStrategy`` with
``LocalSmartTurnAnalyzerV3``, whose ONNX model ships in the wheel), then STT, LLM and TTS. The
three services are fakes of fixed latency: STT answers 100 ms after the VAD closes the segment,
the LLM streams its first token after 200 ms and one more every 20 ms, TTS yields its first
audio 100 ms after it is asked. A far end in a child process (the ``--far-end`` mode) streams the
callee audio over a websocket in real time, 20 ms per message, and notes when each frame left and
when each audible frame of the agent's reply arrived, on the machine's monotonic clock, which
both processes share.

Per callee utterance: ``latency`` is end of callee speech (the far end sending the frame that
holds the utterance's last sample above -40 dBFS) to the first audible reply frame arriving at
the far end; ``model`` is STT + LLM until its sentence is complete + TTS first audio;
``beyond_model`` = latency - model; ``turn_wait`` is the time spent waiting on turn taking (the
end of speech to Silero's stop, plus any Smart Turn inference not hidden behind STT);
``framework`` = beyond_model - turn_wait, pipecat's own share. A reply that the bot starts
while the callee is still inside an utterance (in a pause) is counted as a cut-in.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import socket
import sys
import time
from dataclasses import dataclass, field
from importlib.metadata import version
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # every model ships in the wheel; never reach for a hub

import numpy as np
import websockets
from loguru import logger

logger.remove()  # before pipecat is imported: it logs a banner on import
logger.add(sys.stderr, level="WARNING")

LINE_RATE = 8000
FRAME_SAMPLES = 160  # 20 ms at 8 kHz, one media message
LOUD = 1000  # peak of an audible agent frame; the pipeline's own fill-in frames are silence


def ulaw_decode(data: bytes) -> np.ndarray:
    """G.711 mu-law bytes to int16 samples."""
    codes = ~np.frombuffer(data, dtype=np.uint8)
    sign, exponent, mantissa = codes & 0x80, (codes >> 4) & 0x07, codes & 0x0F
    magnitude = ((mantissa.astype(np.int32) << 3) + 0x84) << exponent
    return np.where(sign, 0x84 - magnitude, magnitude - 0x84).astype(np.int16)


# ---------------------------------------------------------------- far end (a child process)

async def far_end(url: str, audio: Path, lead_s: float, tail_s: float) -> dict:
    """Stream ``audio`` to the bot in real time, one 20 ms media message at a time, after ``lead_s``
    of silence; note when each frame left and when each audible reply frame arrived."""
    data = bytes([0xFF]) * int(lead_s * LINE_RATE) + audio.read_bytes()
    frames = [data[i:i + FRAME_SAMPLES] for i in range(0, len(data), FRAME_SAMPLES)]
    sent: list[float] = []
    loud: list[float] = []
    clears = 0

    async def receive(ws) -> None:
        nonlocal clears
        async for message in ws:
            event = json.loads(message)
            if event.get("event") == "media":
                pcm = ulaw_decode(base64.b64decode(event["media"]["payload"]))
                if len(pcm) and int(np.abs(pcm.astype(np.int32)).max()) >= LOUD:
                    loud.append(time.monotonic())
            elif event.get("event") == "clear":
                clears += 1

    async with websockets.connect(url, max_size=None) as ws:
        listener = asyncio.create_task(receive(ws))
        start = time.monotonic() + 0.05
        for index, frame in enumerate(frames):
            delay = start + index * FRAME_SAMPLES / LINE_RATE - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            payload = base64.b64encode(frame).decode()
            await ws.send(json.dumps({"event": "media", "streamSid": "bench", "media": {"payload": payload}}))
            sent.append(time.monotonic())
        await asyncio.sleep(tail_s)
        listener.cancel()
    return {"lead_frames": int(lead_s * LINE_RATE) // FRAME_SAMPLES, "sent": sent, "loud": loud, "clears": clears}


# ---------------------------------------------------------------- the bot

from pipecat.audio.turn.smart_turn.local_smart_turn_v3 import LocalSmartTurnAnalyzerV3  # noqa: E402
from pipecat.audio.vad.silero import SileroVADAnalyzer  # noqa: E402
from pipecat.audio.vad.vad_analyzer import VAD_STOP_SECS  # noqa: E402
from pipecat.frames.frames import (  # noqa: E402
    AudioRawFrame,
    LLMContextFrame,
    LLMFullResponseEndFrame,
    LLMFullResponseStartFrame,
    LLMTextFrame,
    TranscriptionFrame,
    TTSAudioRawFrame,
    VADUserStoppedSpeakingFrame,
)
from pipecat.pipeline.pipeline import Pipeline  # noqa: E402
from pipecat.pipeline.worker import PipelineParams, PipelineWorker  # noqa: E402
from pipecat.processors.aggregators.llm_context import LLMContext  # noqa: E402
from pipecat.processors.aggregators.llm_response_universal import (  # noqa: E402
    LLMContextAggregatorPair,
    LLMUserAggregatorParams,
)
from pipecat.processors.frame_processor import FrameDirection  # noqa: E402
from pipecat.serializers.twilio import TwilioFrameSerializer  # noqa: E402
from pipecat.services.llm_service import LLMService  # noqa: E402
from pipecat.services.settings import LLMSettings, STTSettings, TTSSettings  # noqa: E402
from pipecat.services.stt_service import SegmentedSTTService  # noqa: E402
from pipecat.services.tts_service import TTSService  # noqa: E402
from pipecat.transports.websocket.server import (  # noqa: E402
    SingleClientWebsocketServerParams,
    SingleClientWebsocketServerTransport,
)
from pipecat.turns.user_stop import TurnAnalyzerUserTurnStopStrategy  # noqa: E402
from pipecat.turns.user_turn_strategies import UserTurnStrategies  # noqa: E402
from pipecat.utils.time import time_now_iso8601  # noqa: E402
from pipecat.workers.runner import WorkerRunner  # noqa: E402


@dataclass
class Reply:
    llm_start: float
    llm_end: float | None = None
    tts_start: float | None = None
    tts_first: float | None = None
    first_sent: float | None = None


@dataclass
class Recorder:
    """Monotonic timestamps of what the bot did, filled in by the instrumented pieces below."""
    vad_stops: list[float] = field(default_factory=list)
    stt: list[tuple[float, float]] = field(default_factory=list)
    analyses: list[tuple[float, float, str]] = field(default_factory=list)
    replies: list[Reply] = field(default_factory=list)


@dataclass(frozen=True)
class Fakes:
    stt_s: float
    llm_first_s: float
    llm_token_s: float
    reply: str
    reply_tokens: int
    tts_first_s: float


def tokens(text: str, count: int) -> list[str]:
    """Split ``text`` into at most ``count`` pieces at word and punctuation boundaries, like an LLM's tokens."""
    pieces = [word if index == 0 else " " + word for index, word in enumerate(text.split(" "))]
    for index in reversed(range(len(pieces))):
        piece = pieces[index]
        if len(pieces) < count and len(piece) > 1 and not piece[-1].isalnum():
            pieces[index:index + 1] = [piece[:-1], piece[-1]]
    while len(pieces) > count:
        pieces[-2:] = ["".join(pieces[-2:])]
    return pieces


class FixedSTT(SegmentedSTTService):
    """Transcribes each VAD segment after a fixed delay; notes when the VAD stopped and the STT ran."""

    def __init__(self, fakes: Fakes, recorder: Recorder, **kwargs) -> None:
        # Its transcripts are final (segmented STT), so the p99 only matters if one never came:
        # speech end to transcript is the VAD's stop wait plus the STT's own time.
        super().__init__(ttfs_p99_latency=VAD_STOP_SECS + fakes.stt_s,
                         settings=STTSettings(model=None, language=None), **kwargs)
        self._fakes, self._recorder = fakes, recorder

    async def process_frame(self, frame, direction: FrameDirection) -> None:
        if isinstance(frame, VADUserStoppedSpeakingFrame):
            # The frame carries the wall-clock instant of the VAD's decision; keep it on the monotonic clock.
            self._recorder.vad_stops.append(time.monotonic() - (time.time() - frame.timestamp))
        await super().process_frame(frame, direction)

    async def run_stt(self, audio: bytes):
        start = time.monotonic()
        await asyncio.sleep(self._fakes.stt_s)
        self._recorder.stt.append((start, time.monotonic()))
        yield TranscriptionFrame("callee speech", "", time_now_iso8601())


class FixedLLM(LLMService):
    """Streams a fixed reply: the first token after ``llm_first_s``, then one every ``llm_token_s``."""

    def __init__(self, fakes: Fakes, recorder: Recorder, **kwargs) -> None:
        settings = LLMSettings(model=None, system_instruction=None, temperature=None, max_tokens=None, top_p=None,
                               top_k=None, frequency_penalty=None, presence_penalty=None, seed=None,
                               filter_incomplete_user_turns=False, user_turn_completion_config=None)
        super().__init__(settings=settings, **kwargs)
        self._fakes, self._recorder = fakes, recorder

    async def process_frame(self, frame, direction: FrameDirection) -> None:
        await super().process_frame(frame, direction)
        if not isinstance(frame, LLMContextFrame):
            await self.push_frame(frame, direction)
            return
        reply = Reply(llm_start=time.monotonic())
        self._recorder.replies.append(reply)
        await self.push_frame(LLMFullResponseStartFrame())
        await asyncio.sleep(self._fakes.llm_first_s)
        pieces = tokens(self._fakes.reply, self._fakes.reply_tokens)
        for index in range(self._fakes.reply_tokens):  # the same token count (and time) as our side
            if index:
                await asyncio.sleep(self._fakes.llm_token_s)
            if index < len(pieces):
                await self.push_frame(LLMTextFrame(pieces[index]))
        reply.llm_end = time.monotonic()
        await self.push_frame(LLMFullResponseEndFrame())


class FixedTTS(TTSService):
    """Yields a tone (as long as bench/voice.py's fake TTS makes it) ``tts_first_s`` after each request."""

    def __init__(self, fakes: Fakes, recorder: Recorder, **kwargs) -> None:
        super().__init__(push_start_frame=True, push_stop_frames=True,
                         settings=TTSSettings(model=None, voice=None, language=None), **kwargs)
        self._fakes, self._recorder = fakes, recorder

    def can_generate_metrics(self) -> bool:
        return True

    async def run_tts(self, text: str, context_id: str):
        reply = self._recorder.replies[-1] if self._recorder.replies else None
        start = time.monotonic()
        await asyncio.sleep(self._fakes.tts_first_s)
        if reply is not None and reply.tts_first is None:
            reply.tts_start, reply.tts_first = start, time.monotonic()
        rate = self.sample_rate
        t = np.arange(int(0.06 * len(text) * rate / 10)) / rate
        tone = (6000 * np.sin(2 * np.pi * 440 * t)).astype(np.int16)
        yield TTSAudioRawFrame(audio=tone.tobytes(), sample_rate=rate, num_channels=1, context_id=context_id)


class TimedSmartTurn(LocalSmartTurnAnalyzerV3):
    """pipecat's default turn analyzer (bundled smart-turn v3 model, default parameters), timed."""

    def __init__(self, recorder: Recorder, **kwargs) -> None:
        super().__init__(**kwargs)
        self._recorder = recorder

    async def analyze_end_of_turn(self):
        start = time.monotonic()
        state, metrics = await super().analyze_end_of_turn()
        self._recorder.analyses.append((start, time.monotonic(), state.name))
        return state, metrics


class TimedTwilioSerializer(TwilioFrameSerializer):
    """The Twilio media-stream serializer; notes when the first audible frame of each reply is sent."""

    def __init__(self, recorder: Recorder, **kwargs) -> None:
        super().__init__(**kwargs)
        self._recorder = recorder

    async def serialize(self, frame):
        payload = await super().serialize(frame)
        if payload is not None and isinstance(frame, AudioRawFrame) and frame.audio:
            replies = self._recorder.replies
            if replies and replies[-1].tts_first is not None and replies[-1].first_sent is None:
                if int(np.abs(np.frombuffer(frame.audio, dtype=np.int16).astype(np.int32)).max()) >= LOUD:
                    replies[-1].first_sent = time.monotonic()
        return payload


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


async def run_bot(audio: Path, truth: dict, in_rate: int, tail_s: float) -> tuple[dict, Recorder]:
    fake = truth["fake"]
    fakes = Fakes(fake["stt_s"], fake["llm_first_s"], fake["llm_token_s"], fake["reply"], fake["reply_tokens"],
                  fake["tts_first_s"])
    recorder = Recorder()
    port = free_port()
    serializer = TimedTwilioSerializer(
        recorder, stream_sid="bench", params=TwilioFrameSerializer.InputParams(auto_hang_up=False))
    transport = SingleClientWebsocketServerTransport(
        params=SingleClientWebsocketServerParams(
            audio_in_enabled=True, audio_out_enabled=True, add_wav_header=False, serializer=serializer),
        host="127.0.0.1", port=port)
    stt, llm, tts = FixedSTT(fakes, recorder), FixedLLM(fakes, recorder), FixedTTS(fakes, recorder)
    user_aggregator, assistant_aggregator = LLMContextAggregatorPair(
        LLMContext(),
        user_params=LLMUserAggregatorParams(
            vad_analyzer=SileroVADAnalyzer(),
            # The default stop strategy, with the analyzer timed: UserTurnStrategies() builds exactly
            # [TurnAnalyzerUserTurnStopStrategy(turn_analyzer=LocalSmartTurnAnalyzerV3())].
            user_turn_strategies=UserTurnStrategies(
                stop=[TurnAnalyzerUserTurnStopStrategy(turn_analyzer=TimedSmartTurn(recorder))]),
        ),
    )
    pipeline = Pipeline([transport.input(), stt, user_aggregator, llm, tts, transport.output(),
                         assistant_aggregator])
    worker = PipelineWorker(pipeline, params=PipelineParams(
        audio_in_sample_rate=in_rate, audio_out_sample_rate=LINE_RATE, enable_metrics=True,
        enable_usage_metrics=True))
    ready = asyncio.Event()

    @transport.event_handler("on_websocket_ready")
    async def on_websocket_ready(_transport) -> None:
        ready.set()

    runner = WorkerRunner(handle_sigint=False)
    await runner.add_workers(worker)
    running = asyncio.create_task(runner.run())
    try:
        await asyncio.wait_for(ready.wait(), 60)
        child = await asyncio.create_subprocess_exec(
            sys.executable, __file__, "--far-end", f"ws://127.0.0.1:{port}", "--audio", str(audio),
            "--tail", str(tail_s), stdout=asyncio.subprocess.PIPE)
        out, _ = await child.communicate()
        if child.returncode != 0:
            raise RuntimeError(f"the far end failed with exit code {child.returncode}")
        far = json.loads(out)
    finally:
        await worker.cancel()
        await asyncio.wait_for(running, 30)
    return far, recorder


# ---------------------------------------------------------------- figures

def last(values, before: float, after: float):
    """The last item whose time (the item, or its second field) lies in [after, before]."""
    found = None
    for value in values:
        at = value if isinstance(value, float) else value[1]
        if after <= at <= before:
            found = value
    return found


def measure(truth: dict, far: dict, recorder: Recorder) -> dict:
    sent, lead = far["sent"], far["lead_frames"]
    utterances = truth["utterances"]

    def frame_time(sample: int) -> float:
        return sent[min(len(sent) - 1, lead + sample // FRAME_SAMPLES)]

    turns, cut_ins, missed, held, verdicts = [], 0, 0, 0, []
    for index, utterance in enumerate(utterances):
        begin, end = frame_time(utterance["start"]), frame_time(utterance["end"] - 1)
        following = frame_time(utterances[index + 1]["start"]) if index + 1 < len(utterances) else float("inf")
        cut_ins += sum(begin <= r.llm_start < end for r in recorder.replies)
        held += sum(begin <= a[1] < end and a[2] != "COMPLETE" for a in recorder.analyses)
        # Smart Turn's verdicts on this utterance, ms after its end (negative: inside a pause).
        verdicts.append([(a[2], round((a[1] - end) * 1000)) for a in recorder.analyses if begin <= a[1] < following])
        reply = next((r for r in recorder.replies if end <= r.llm_start < following and r.first_sent), None)
        heard = next((t for t in far["loud"] if reply and t >= reply.first_sent), None)
        if reply is None or heard is None or reply.llm_end is None or reply.tts_first is None:
            missed += 1
            continue
        stt = last(recorder.stt, reply.llm_start, begin)
        vad_stop = last(recorder.vad_stops, reply.llm_start, begin)
        analysis = last(recorder.analyses, reply.llm_start, begin)
        if stt is None or vad_stop is None:
            missed += 1
            continue
        latency = heard - end
        model = (stt[1] - stt[0]) + (reply.llm_end - reply.llm_start) + (reply.tts_first - reply.tts_start)
        turn_wait = (vad_stop - end) + (max(0.0, analysis[1] - stt[1]) if analysis else 0.0)
        turns.append({
            "text": utterance["text"],
            "latency": latency * 1000,
            "model": model * 1000,
            "beyond_model": (latency - model) * 1000,
            "turn_wait": turn_wait * 1000,
            "framework": (latency - model - turn_wait) * 1000,
            "vad_stop": (vad_stop - end) * 1000,
            "smart_turn": (analysis[1] - analysis[0]) * 1000 if analysis else 0.0,
            "stt": (stt[1] - stt[0]) * 1000,
            "tts_first": (reply.tts_first - reply.tts_start) * 1000,
        })
    return {"turns": turns, "cut_ins": cut_ins, "missed": missed, "held_in_pause": held,
            "replies": len(recorder.replies), "clears": far["clears"], "verdicts": verdicts}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--audio", type=Path, required=True, help="callee audio, raw 8 kHz mu-law")
    parser.add_argument("--truth", type=Path, help="ground truth JSON written by bench/voice.py")
    parser.add_argument("--in-rate", type=int, default=LINE_RATE, choices=(8000, 16000),
                        help="pipeline input rate (pipecat's telephony template uses 8000)")
    parser.add_argument("--tail", type=float, default=3.0, help="seconds to keep listening after the audio")
    parser.add_argument("--far-end", metavar="URL", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.far_end:
        print(json.dumps(asyncio.run(far_end(args.far_end, args.audio, lead_s=1.0, tail_s=args.tail))))
        return
    if args.truth is None:
        parser.error("--truth is required")
    truth = json.loads(args.truth.read_text())
    far, recorder = asyncio.run(run_bot(args.audio, truth, args.in_rate, args.tail))
    result = measure(truth, far, recorder)
    result.update(pipecat=version("pipecat-ai"), in_rate=args.in_rate)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
