"""The espeak-ng fallback TTS with the real espeak-ng program (tests/sip has it heard back by Whisper)."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from byourside_server.voice.audio import TELEPHONE_RATE
from byourside_server.voice.espeak import EspeakError, EspeakTTS, _wav_samples
from byourside_server.voice.tts import load_tts
from support import IN_CI

needs_espeak = pytest.mark.skipif(shutil.which("espeak-ng") is None and not IN_CI,
                                  reason="espeak-ng is not installed: run `make system-packages` (Debian espeak-ng)")


@needs_espeak
async def test_espeak_speaks_8khz_telephone_audio():
    pcm = await EspeakTTS().synthesize("We have a table for two tonight.")
    assert pcm.dtype == np.int16
    assert 1.0 < len(pcm) / TELEPHONE_RATE < 4.0  # about two seconds of speech
    assert np.sqrt(np.mean(pcm.astype(np.float64) ** 2)) > 500


@needs_espeak
def test_auto_falls_back_to_espeak_when_the_piper_voice_cannot_load(tmp_path):
    assert isinstance(load_tts("auto", str(tmp_path / "missing.onnx")), EspeakTTS)
    with pytest.raises(Exception):
        load_tts("piper", str(tmp_path / "missing.onnx"))  # asked for Piper only: no silent substitution


def test_a_streamed_wav_header_is_read_to_the_end_and_garbage_is_an_error():
    header = b"RIFF" + b"\xff\xff\xff\x7f" + b"WAVEfmt " + (16).to_bytes(4, "little")
    header += (1).to_bytes(2, "little") + (1).to_bytes(2, "little") + (22050).to_bytes(4, "little")
    header += (44100).to_bytes(4, "little") + (2).to_bytes(2, "little") + (16).to_bytes(2, "little")
    header += b"data" + b"\xff\xff\xff\x7f"
    samples = np.array([1, -2, 300], dtype="<i2")
    pcm, rate = _wav_samples(header + samples.tobytes() + b"\x01")  # an odd trailing byte is dropped
    assert rate == 22050 and pcm.tolist() == [1, -2, 300]
    with pytest.raises(EspeakError):
        _wav_samples(b"not a wav at all, not at all, not at all, not at all")
