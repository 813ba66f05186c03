"""G.711 codecs against the reference coder, resampling, the endpointer and the stereo recorder."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from byourside_server.voice.audio import (
    FRAME_SAMPLES,
    G711,
    alaw_decode,
    alaw_encode,
    resample,
    ulaw_decode,
    ulaw_encode,
)
from byourside_server.voice.pipeline import split_sentences
from byourside_server.voice.recorder import StereoRecorder, read_stereo
from byourside_server.voice.vad import Endpointer

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    import audioop  # the CPython reference G.711 coder (deprecated; gone in 3.13)

EVERY_SAMPLE = np.arange(-32768, 32768, dtype=np.int16)
EVERY_BYTE = bytes(range(256))


def test_ulaw_matches_the_reference_coder_for_every_sample_and_byte():
    assert ulaw_encode(EVERY_SAMPLE) == audioop.lin2ulaw(EVERY_SAMPLE.tobytes(), 2)
    assert ulaw_decode(EVERY_BYTE).tobytes() == audioop.ulaw2lin(EVERY_BYTE, 2)


def test_alaw_matches_the_reference_coder_for_every_sample_and_byte():
    assert alaw_encode(EVERY_SAMPLE) == audioop.lin2alaw(EVERY_SAMPLE.tobytes(), 2)
    assert alaw_decode(EVERY_BYTE).tobytes() == audioop.alaw2lin(EVERY_BYTE, 2)


def test_g711_by_payload_type():
    assert (G711(0).name, G711(8).name) == ("PCMU", "PCMA")
    assert len(G711(0).silence) == FRAME_SAMPLES
    with pytest.raises(ValueError):
        G711(3)


def tone(freq: float, rate: int, seconds: float, amplitude: int = 8000) -> np.ndarray:
    t = np.arange(int(rate * seconds)) / rate
    return (amplitude * np.sin(2 * np.pi * freq * t)).astype(np.int16)


def test_resample_keeps_speech_band_and_removes_what_would_alias():
    kept = resample(tone(1000, 22050, 1.0), 22050, 8000)
    assert len(kept) == 8000
    assert np.abs(kept[100:-100]).max() > 7000
    aliased = resample(tone(6000, 22050, 1.0), 22050, 8000)  # above 4 kHz Nyquist: must not fold back
    assert np.abs(aliased[100:-100]).max() < 1000
    up = resample(tone(440, 8000, 0.5), 8000, 16000)
    assert len(up) == 8000


def test_sentences_split_on_terminal_punctuation():
    assert split_sentences("Hi there. How are you? Fine!  ") == ["Hi there.", "How are you?", "Fine!"]
    assert split_sentences("   ") == []


def frames(pattern: str) -> list[np.ndarray]:
    """'s' = a loud frame, '.' = a silent one."""
    loud, quiet = np.full(FRAME_SAMPLES, 5000, np.int16), np.zeros(FRAME_SAMPLES, np.int16)
    return [loud if c == "s" else quiet for c in pattern]


def run(endpointer: Endpointer, pattern: str):
    return [u for f in frames(pattern) if (u := endpointer.feed(f)) is not None]


def energy(frame: np.ndarray) -> bool:
    return bool(np.abs(frame).mean() > 1000)


def test_endpointer_keeps_pauses_inside_a_turn_and_closes_after_the_end_silence():
    ep = Endpointer(energy, end_silence_ms=200, preroll_ms=40)  # 10 silent frames end a turn
    pattern = "..." + "s" * 20 + "." * 8 + "s" * 20 + "." * 10 + "...."
    utterances = run(ep, pattern)
    assert len(utterances) == 1
    u = utterances[0]
    assert u.start_ms == 20  # the start window's frames are kept as pre-roll (voicing starts at 60 ms)
    assert u.end_ms == (3 + 20 + 8 + 20) * 20  # trailing silence is not part of the turn
    assert len(u.pcm) == (u.end_ms - u.start_ms) // 20 * FRAME_SAMPLES


def test_endpointer_ignores_clicks_and_too_short_sounds():
    ep = Endpointer(energy, end_silence_ms=200, min_speech_ms=200)
    assert run(ep, ".s..s...s....." + "." * 20) == []  # never 3 voiced in 5
    assert run(ep, "ssss" + "." * 20) == []  # voiced but shorter than min_speech_ms


def test_stereo_recorder_keeps_each_side_on_its_channel(tmp_path):
    rec = StereoRecorder(tmp_path / "r" / "call.wav")
    left, right = np.full(FRAME_SAMPLES, 1000, np.int16), np.full(FRAME_SAMPLES, -2000, np.int16)
    for _ in range(50):
        rec.write(left, right)
    rec.close()
    rec.write(left, right)  # after close: ignored
    callee, agent = read_stereo(tmp_path / "r" / "call.wav")
    assert len(callee) == len(agent) == 50 * FRAME_SAMPLES
    assert set(callee.tolist()) == {1000} and set(agent.tolist()) == {-2000}


def test_beep_detector_reports_a_steady_tone_once_and_ignores_voice_like_sound():
    from byourside_server.voice.tones import BeepDetector

    def feed_all(signal: np.ndarray) -> list[int]:
        detector = BeepDetector()
        chunks = [signal[i:i + FRAME_SAMPLES] for i in range(0, len(signal) - FRAME_SAMPLES + 1, FRAME_SAMPLES)]
        return [at for chunk in chunks if (at := detector.feed(chunk)) is not None]

    silence = np.zeros(800, np.int16)
    assert feed_all(np.concatenate([silence, tone(1000, 8000, 0.5)])) == [100]
    assert feed_all(tone(1000, 8000, 0.1)) == []  # too short for a record tone
    assert feed_all(tone(3000, 8000, 0.5)) == []  # outside the beep band
    t = np.arange(8000) / 8000
    pitch = 120 + 30 * np.sin(2 * np.pi * 3 * t)  # a gliding voice with many harmonics
    phase = 2 * np.pi * np.cumsum(pitch) / 8000
    voice = sum(np.sin(k * phase) / k for k in range(1, 25))
    assert feed_all((3000 * voice).astype(np.int16)) == []
