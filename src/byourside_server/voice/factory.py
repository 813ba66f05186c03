"""Building each call's voice parts from settings: the models, loaded once per process, and the endpointer.

An audio line needs three things per call: a TTS to speak, an STT to hear and
a fresh endpointer (VAD state is per call). Models are loaded once per process
(lazily, in a thread, on the first answered call) and shared by every call;
so is the turn detector that lets an endpointer end a finished turn early.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import Executor
from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from byourside_server.voice.ports import RecognitionStream, SpeechToText, TextToSpeech
from byourside_server.voice.turn import (
    PACKAGED_SMART_TURN,
    TurnDetector,
    smart_turn_available,
)
from byourside_server.voice.vad import Endpointer


class VoiceConfig(BaseSettings):
    """``BYS_STT*``, ``BYS_TTS*``, ``BYS_VAD_*`` and the cloud providers' settings (docs/configuration.md)."""

    model_config = SettingsConfigDict(env_prefix="BYS_", extra="ignore")

    # Who hears the callee for the cascaded engine (BYS_STT): "local" (faster-whisper, BYS_STT_MODEL, with our
    # endpointer) or "deepgram" (Deepgram's live streaming API, docs/providers.md).
    stt: Literal["local", "deepgram"] = "local"
    deepgram_api_key: str | None = None
    deepgram_model: str = "nova-3"
    deepgram_url: str = "wss://api.deepgram.com/v1/listen"
    deepgram_endpointing_ms: int = Field(300, ge=10, le=10_000)  # Deepgram's silence before ``speech_final``
    deepgram_utterance_end_ms: int = Field(1000, ge=1000, le=5000)  # the gap after the last word: UtteranceEnd
    stt_model: str = "packaged:whisper-base"  # faster-whisper model name, directory, or the packaged copy
    stt_language: str = "en"
    stt_threads: int = Field(2, ge=1)
    stt_workers: int = Field(2, ge=1, le=8)  # transcriptions at once on one copy of the model (voice/stt.py)
    tts_voice: str = "packaged:joe"  # Piper .onnx path, or the packaged en_US joe voice
    tts_engine: Literal["auto", "piper", "espeak"] = "auto"  # auto: Piper, espeak-ng if Piper cannot load
    # Who speaks for the cascaded engine (BYS_TTS): "local" (BYS_TTS_ENGINE above), or a cloud service:
    # "elevenlabs", "cartesia" or "openai" (docs/providers.md).
    tts: Literal["local", "elevenlabs", "cartesia", "openai"] = "local"
    elevenlabs_api_key: str | None = None
    elevenlabs_voice_id: str = "21m00Tcm4TlvDq8ikWAM"  # a premade voice every account has ("Rachel")
    elevenlabs_model: str = "eleven_flash_v2_5"
    elevenlabs_url: str = "wss://api.elevenlabs.io/v1/text-to-speech"
    cartesia_api_key: str | None = None
    cartesia_voice_id: str = "f786b574-daa5-4673-aa0c-cbe3e8534c02"  # "Katie", a stable voice for agents
    cartesia_model: str = "sonic-3"
    cartesia_url: str = "wss://api.cartesia.ai/tts/websocket"
    cartesia_version: str = "2025-04-16"  # the Cartesia-Version our client and its fake follow
    openai_api_key: str | None = None  # the same BYS_OPENAI_API_KEY as the OpenAI Realtime brain's
    openai_tts_model: str = "gpt-4o-mini-tts"
    openai_tts_voice: str = "alloy"
    openai_tts_url: str = "https://api.openai.com/v1/audio/speech"
    vad_engine: Literal["webrtc", "silero"] = "webrtc"  # the frame classifier under the endpointer
    vad_aggressiveness: int = Field(2, ge=0, le=3)  # webrtcvad's mode
    # Frames quieter than this (RMS, dBFS) are never speech, whatever the VAD says: it ends the VAD's hang-over
    # after the last word. None = no gate.
    vad_level_gate_dbfs: float | None = Field(-50.0, ge=-90, le=-20)
    # End-of-turn model: "smart-turn", or "off" (silence alone ends a turn). Default: smart-turn when installed.
    turn_detector: Literal["smart-turn", "off"] | None = None
    turn_model: str = PACKAGED_SMART_TURN  # Smart Turn v3 .onnx path, or the copy an installed package ships
    turn_threshold: float = Field(0.5, gt=0, lt=1)  # probability of "complete" that ends the turn
    vad_turn_silence_ms: int = Field(500, ge=20, le=5000)  # silence after which a complete turn may close
    # Silence that ends a callee's turn at the latest (without a turn detector: always).
    vad_end_silence_ms: int = Field(700, ge=100, le=10_000)
    # Callee speech over ours that stops the reply at once; shorter sounds wait for their words. 0 = never.
    barge_in_ms: int = Field(500, ge=0, le=5000)
    # Callee speech over ours that pauses it: resumed if it was a backchannel ("uh-huh") or noise. 0 = no pause.
    barge_in_pause_ms: int = Field(120, ge=0, le=5000)
    # Silence after which the turn so far is transcribed early, in case the turn ends there. 0 = off.
    stt_early_ms: int = Field(100, ge=0, le=5000)
    # Speculative turn-taking: the early transcript goes to the brain at once; the reply's first audio waits for
    # the turn to close (the turn detector's verdict or the silence fallback) and is dropped if the callee goes on.
    turn_speculate: bool = True
    model_cache_dir: Path | None = None  # default: <data_dir>/models

    @model_validator(mode="after")
    def _resolve_turn_detector(self) -> VoiceConfig:
        if self.turn_detector is None:
            self.turn_detector = "smart-turn" if smart_turn_available() else "off"
        return self


def turn_detector(config: VoiceConfig) -> TurnDetector | None:
    """The configured turn detector (its model loads on first use, or in ``VoiceFactory.load``)."""
    if config.turn_detector == "off":
        return None
    from byourside_server.voice.turn import SmartTurnV3

    return SmartTurnV3(config.turn_model)


def make_endpointer(config: VoiceConfig, detector: TurnDetector | None,
                    executor: Executor | None = None) -> Endpointer:
    """One call's endpointer: webrtcvad or Silero VAD, plus the shared turn detector when there is one.

    ``executor`` runs the detector (default: the shared worker thread, see voice/vad.py).
    """
    if config.vad_engine == "silero":
        from byourside_server.voice.silero_vad import silero_classifier

        classifier = silero_classifier()
    else:
        from byourside_server.voice.vad import webrtc_classifier

        classifier = webrtc_classifier(config.vad_aggressiveness)
    if config.vad_level_gate_dbfs is not None:
        from byourside_server.voice.vad import LevelGate

        classifier = LevelGate(classifier, config.vad_level_gate_dbfs)
    return Endpointer(classifier, end_silence_ms=config.vad_end_silence_ms,
                      turn_detector=detector, turn_silence_ms=config.vad_turn_silence_ms,
                      turn_threshold=config.turn_threshold, executor=executor)


class VoiceFactory:
    """Builds each call's voice parts; the models behind them are shared and loaded once."""

    def __init__(self, stt: Callable[[], SpeechToText], tts: Callable[[], TextToSpeech],
                 endpointer: Callable[[], Endpointer], barge_in_ms: int = 500,
                 turn_detector: TurnDetector | None = None, stt_early_ms: int = 0,
                 barge_in_pause_ms: int = 0, speculate: bool = False,
                 recognition: Callable[[VoiceFactory, bool, str | None], RecognitionStream] | None = None) -> None:
        self._stt_factory, self._tts_factory, self._endpointer = stt, tts, endpointer
        self._recognition = recognition  # None: ``stt`` lifted by our endpointer (voice/listening.py)
        self.barge_in_ms = barge_in_ms
        self.barge_in_pause_ms = barge_in_pause_ms
        self.speculate = speculate and stt_early_ms > 0  # speculation rides on the early transcript
        self.stt_early_ms = stt_early_ms
        self.turn_detector = turn_detector  # the one ``endpointer`` builds in, loaded with the models
        self._turn_loaded = False
        self._stt: SpeechToText | None = None
        self._tts: TextToSpeech | None = None
        self._lock = asyncio.Lock()

    async def load(self) -> tuple[SpeechToText, TextToSpeech]:
        async with self._lock:
            if self._stt is None:
                self._stt = await asyncio.to_thread(self._stt_factory)
            if self._tts is None:
                self._tts = await asyncio.to_thread(self._tts_factory)
            if self.turn_detector is not None and not self._turn_loaded:
                await asyncio.to_thread(self.turn_detector.load)
                self._turn_loaded = True
        return self._stt, self._tts

    @property
    def loaded_stt(self) -> SpeechToText | None:
        """The STT once ``load`` has run (for work that must not wait for models to load)."""
        return self._stt

    def endpointer(self) -> Endpointer:
        return self._endpointer()

    def recognition(self, *, detect_tones: bool = False, language: str | None = None) -> RecognitionStream:
        """One call's streaming recogniser: ``BatchRecognition`` over ``stt``, or a streaming service's adapter.

        With ``detect_tones`` it also reports an answering machine's record tone (``ToneHeard``);
        ``language`` is the call's BCP-47 tag (None: the configured one).
        """
        if self._recognition is not None:
            return self._recognition(self, detect_tones, language)
        # Imported here: voice/listening.py builds on this factory.
        from byourside_server.voice.listening import BatchRecognition

        return BatchRecognition(self, detect_tones=detect_tones, language=language)


def local_voice(config: VoiceConfig, data_dir: Path) -> VoiceFactory:
    """faster-whisper + Piper + webrtcvad (+ Smart Turn), all offline; or Deepgram hearing (BYS_STT), a cloud voice (BYS_TTS)."""
    from byourside_server.voice.stt import FasterWhisperSTT
    from byourside_server.voice.tts import load_tts

    cache = config.model_cache_dir or (data_dir / "models")
    detector = turn_detector(config)
    speaker = cloud_tts(config) if config.tts != "local" else None
    hearing = deepgram_stt(config) if config.stt == "deepgram" else None
    if hearing is not None:
        stt, recognition = hearing
    else:
        stt = lambda: FasterWhisperSTT.load(config.stt_model, cache, config.stt_language,
                                          config.stt_threads, config.stt_workers)
        recognition = None
    return VoiceFactory(
        stt=stt,
        recognition=recognition,
        tts=(lambda: speaker) if speaker is not None else (lambda: load_tts(config.tts_engine, config.tts_voice)),
        endpointer=lambda: make_endpointer(config, detector),
        barge_in_ms=config.barge_in_ms,
        barge_in_pause_ms=config.barge_in_pause_ms,
        turn_detector=detector,
        stt_early_ms=config.stt_early_ms,
        speculate=config.turn_speculate,
    )


def deepgram_stt(config: VoiceConfig) -> tuple[Callable[[], SpeechToText],
                                                 Callable[[VoiceFactory, bool, str | None], RecognitionStream]]:
    """BYS_STT=deepgram: the batch recogniser (speech heard over ours) and each call's live stream.

    ValueError (at start-up) says what is missing.
    """
    if not config.deepgram_api_key:
        raise ValueError("BYS_STT=deepgram needs BYS_DEEPGRAM_API_KEY")
    try:
        import websockets  # noqa: F401 - the provider's client
    except ImportError:
        raise ValueError("BYS_STT=deepgram needs websockets. "
                         "Install: pip install 'byourside-server[realtime]'") from None
    from byourside_server.voice.providers.deepgram import (
        DeepgramOptions,
        DeepgramRecognition,
        DeepgramSTT,
    )
    from byourside_server.voice.tones import BeepDetector

    options = DeepgramOptions(config.deepgram_api_key, model=config.deepgram_model, url=config.deepgram_url,
                              language=config.stt_language, endpointing_ms=config.deepgram_endpointing_ms,
                              utterance_end_ms=config.deepgram_utterance_end_ms)

    def recognition(voice: VoiceFactory, detect_tones: bool, language: str | None) -> RecognitionStream:
        return DeepgramRecognition(options.for_language(language), voice.endpointer(),
                                   tones=BeepDetector() if detect_tones else None,
                                   guess_after_ms=voice.stt_early_ms if voice.speculate else 0)

    return (lambda: DeepgramSTT(options)), recognition


def cloud_tts(config: VoiceConfig) -> TextToSpeech:
    """The cloud TTS BYS_TTS names; ValueError (at start-up) says what is missing."""
    key = {"elevenlabs": config.elevenlabs_api_key, "cartesia": config.cartesia_api_key,
           "openai": config.openai_api_key}[config.tts]
    if not key:
        raise ValueError(f"BYS_TTS={config.tts} needs BYS_{config.tts.upper()}_API_KEY")
    if config.tts == "openai":  # plain HTTP: httpx is a core dependency
        from byourside_server.voice.providers.openai_tts import OpenAITTS

        return OpenAITTS(key, voice=config.openai_tts_voice, model=config.openai_tts_model,
                         url=config.openai_tts_url, language=config.stt_language)
    try:
        import websockets  # noqa: F401 - the provider's client
    except ImportError:
        raise ValueError(f"BYS_TTS={config.tts} needs websockets. "
                         "Install: pip install 'byourside-server[realtime]'") from None
    if config.tts == "cartesia":
        from byourside_server.voice.providers.cartesia import CartesiaTTS

        return CartesiaTTS(key, voice_id=config.cartesia_voice_id, model=config.cartesia_model,
                           url=config.cartesia_url, language=config.stt_language, version=config.cartesia_version)
    from byourside_server.voice.providers.elevenlabs import ElevenLabsTTS

    return ElevenLabsTTS(config.elevenlabs_api_key, voice_id=config.elevenlabs_voice_id,
                         model=config.elevenlabs_model, url=config.elevenlabs_url)


def check_voice_installed() -> None:
    """Fail at start-up (the registry adds the install hint) when the voice extra is missing."""
    missing = []
    for module in ("numpy", "webrtcvad", "faster_whisper", "piper"):
        try:
            __import__(module)
        except ImportError:
            missing.append(module)
    if missing:
        raise ImportError(f"the voice extra is missing (modules: {', '.join(missing)})")
