"""End-of-turn detection: has the callee finished speaking, or only paused?

Silence alone cannot tell "Ten is fine." from "Let me check the book, um..."
followed by the same pause. A ``TurnDetector`` hears the turn so far (its
last seconds and the silence after them: intonation, a trailing "and", a
filler) and returns the probability that the turn is complete. The endpointer
(voice/vad.py) asks it after a short silence, so a finished turn closes long
before the plain-silence fallback.

``SmartTurnV3`` runs Smart Turn v3 (pipecat-ai's BSD-2 model: a Whisper-tiny
encoder and a classifier, 8 MB of ONNX) with onnxruntime on one CPU thread.
Its input is what the model was trained on: 16 kHz audio, the last 8 s
(zero-padded at the front when shorter), normalised to zero mean and unit
variance, as an 80 x 800 Whisper log-mel spectrogram (faster-whisper's numpy
``FeatureExtractor``, no transformers). ``packaged:smart-turn`` is the copy
that ships in the pipecat-ai wheel, located by file without importing pipecat.
"""

from __future__ import annotations

import importlib.util
import threading
from abc import ABC, abstractmethod
from pathlib import Path

import numpy as np

from byourside_server.voice.audio import TELEPHONE_RATE, resample, to_float
from byourside_server.voice.models import file_in_distributions

PACKAGED_SMART_TURN = "packaged:smart-turn"
# (distribution, file inside it) of the packages known to ship the model, preferred first.
_SMART_TURN_PACKAGES = (
    ("pipecat-ai", "pipecat/audio/turn/smart_turn/data/smart-turn-v3.2-cpu.onnx"),
)
MODEL_RATE = 16_000
WINDOW_SECONDS = 8
N_MELS = 80


class TurnDetectorError(RuntimeError):
    pass


class TurnDetector(ABC):
    """Probability that a callee's turn is complete, from its audio."""

    def load(self) -> None:
        """Load the model now rather than on the first question (called in a worker thread)."""

    @abstractmethod
    def probability(self, pcm: np.ndarray) -> float:
        """``pcm``: 8 kHz int16 audio of the turn so far, ending with the silence after it.

        Blocking and CPU bound: the endpointer calls it in a worker thread.
        """


def packaged_smart_turn() -> Path:
    """The Smart Turn v3 ONNX file of an installed package (see ``_SMART_TURN_PACKAGES``)."""
    path = file_in_distributions(_SMART_TURN_PACKAGES)
    if path is not None:
        return path
    names = ", ".join(d for d, _ in _SMART_TURN_PACKAGES)
    raise TurnDetectorError(f"no installed package ships the Smart Turn v3 model (looked in: {names}); "
                            "install one, give BYS_TURN_MODEL a path, or set BYS_TURN_DETECTOR=off")


def smart_turn_available() -> bool:
    """True when onnxruntime and a package shipping the model are installed (imports nothing)."""
    if importlib.util.find_spec("onnxruntime") is None:
        return False
    try:
        packaged_smart_turn()
    except TurnDetectorError:
        return False
    return True


class SmartTurnV3(TurnDetector):
    def __init__(self, model: str | Path = PACKAGED_SMART_TURN, threads: int = 1) -> None:
        self.path = packaged_smart_turn() if str(model) == PACKAGED_SMART_TURN else Path(model)
        if not self.path.is_file():
            raise TurnDetectorError(f"Smart Turn model not found: {self.path}")
        self.threads = threads
        self._session = None
        self._mel = None
        self._lock = threading.Lock()

    def load(self) -> None:
        with self._lock:
            if self._session is not None:
                return
            import onnxruntime as ort
            from faster_whisper.feature_extractor import FeatureExtractor

            options = ort.SessionOptions()
            options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
            options.inter_op_num_threads = 1
            options.intra_op_num_threads = self.threads
            options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
            session = ort.InferenceSession(str(self.path), sess_options=options,
                                           providers=["CPUExecutionProvider"])
            inputs = session.get_inputs()
            if len(inputs) != 1 or inputs[0].name != "input_features" or list(inputs[0].shape[1:]) != [N_MELS, 800]:
                raise TurnDetectorError(f"{self.path} is not a Smart Turn v3 model (inputs: "
                                        f"{[(i.name, i.shape) for i in inputs]})")
            self._mel = FeatureExtractor(feature_size=N_MELS, sampling_rate=MODEL_RATE, chunk_length=WINDOW_SECONDS)
            self._session = session

    def features(self, pcm: np.ndarray) -> np.ndarray:
        """The model's input for 8 kHz int16 ``pcm``: float32, shape (1, 80, 800)."""
        self.load()
        audio = to_float(resample(pcm[-TELEPHONE_RATE * WINDOW_SECONDS:], TELEPHONE_RATE, MODEL_RATE))
        window = MODEL_RATE * WINDOW_SECONDS
        audio = audio[-window:]
        audio = np.pad(audio, (window - len(audio), 0))  # older audio is silence, as in training
        audio = (audio - audio.mean()) / np.sqrt(audio.var() + 1e-7)
        log_mel = self._mel(audio.astype(np.float32), padding=0)  # exactly 800 frames
        return log_mel[np.newaxis].astype(np.float32)

    def probability(self, pcm: np.ndarray) -> float:
        self.load()
        output = self._session.run(None, {"input_features": self.features(pcm)})[0]
        return float(np.asarray(output).reshape(-1)[0])  # the model ends in a sigmoid
