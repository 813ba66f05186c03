"""Smart Turn v3 on real speech: the packaged Piper voice speaks, over G.711, into the shipped endpointer.

Piper renders deterministically here (no sampling noise), so each sentence is
the same audio on every run. The endpointer is the one ``local_voice`` builds
(webrtcvad, the settings' defaults) with the model's answer taken on the frame
it is asked, so the tests count frames, never wall-clock time.
"""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest
from inline_executor import InlineExecutor
from speech import piper_renderer, silence
from support import IN_CI

from byourside_server.voice.audio import FRAME_MS, FRAME_SAMPLES, TELEPHONE_RATE, resample
from byourside_server.voice.pipeline import VoiceConfig, make_endpointer
from byourside_server.voice.turn import SmartTurnV3, smart_turn_available
from byourside_server.voice.vad import Utterance

pytestmark = [
    pytest.mark.voice,
    # Under CI=true the model must be there (make setup installs it), so a missing model fails instead.
    pytest.mark.skipif(not smart_turn_available() and not IN_CI,
                       reason="no installed package ships the Smart Turn v3 model: run `make setup`"),
]


@pytest.fixture(scope="module")
def detector() -> SmartTurnV3:
    detector = SmartTurnV3()
    detector.load()
    return detector


@pytest.fixture(scope="module")
def say():
    return piper_renderer()


def endpoint(detector: SmartTurnV3, *pieces: np.ndarray) -> list[tuple[int, Utterance]]:
    """(ms of silence heard after the utterance's end when it closed, utterance) for each utterance."""
    config = VoiceConfig(turn_detector="smart-turn")
    endpointer = make_endpointer(config, detector, executor=InlineExecutor())
    audio = np.concatenate([silence(300), *pieces, silence(3000)])
    closed = []
    for i in range(len(audio) // FRAME_SAMPLES):
        utterance = endpointer.feed(audio[i * FRAME_SAMPLES:(i + 1) * FRAME_SAMPLES])
        if utterance is not None:
            closed.append(((i + 1) * FRAME_MS - utterance.end_ms, utterance))
    return closed


def test_features_match_the_reference_preprocessing_shipped_beside_the_model(detector, say):
    reference_file = detector.path.parent.parent / "_whisper_features.py"
    if not reference_file.is_file():
        pytest.skip("the package that ships this model has no reference feature code beside it")
    spec = importlib.util.spec_from_file_location("smart_turn_reference_features", reference_file)
    reference = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(reference)

    pcm = np.concatenate([say("Let me check the book, um,"), silence(300)])
    audio = resample(pcm, TELEPHONE_RATE, 16_000).astype(np.float32) / 32768.0
    audio = np.pad(audio, (16_000 * 8 - len(audio), 0))
    expected = reference.compute_whisper_log_mel_features(audio, do_normalize=True)
    ours = detector.features(pcm)
    assert ours.shape == (1, 80, 800)
    np.testing.assert_allclose(ours[0], expected, atol=1e-4)


def test_a_complete_sentence_ends_the_turn_at_the_first_question(detector, say):
    closed = endpoint(detector, say("We are open until six tomorrow."))
    assert len(closed) == 1
    waited, utterance = closed[0]
    assert utterance.ended_by == "turn"
    assert waited == VoiceConfig(turn_detector="smart-turn").vad_turn_silence_ms  # not the 1500 ms fallback


def test_a_sentence_with_a_pause_inside_is_heard_as_one_turn(detector, say):
    config = VoiceConfig(turn_detector="smart-turn")
    pause = config.vad_end_silence_ms - 100  # the detector is asked in it; only the fallback would not be
    assert pause > config.vad_turn_silence_ms
    first, rest = say("Let me check the book, um,"), say("we have a slot at ten.")
    closed = endpoint(detector, first, silence(pause), rest)
    assert len(closed) == 1  # not cut at the pause
    _, utterance = closed[0]
    assert utterance.end_ms - utterance.start_ms > (len(first) + len(rest)) * 1000 // TELEPHONE_RATE + pause


def test_pauses_piper_puts_inside_a_sentence_do_not_split_it(detector, say):
    for text in ("Let me check the book, um, we have a slot at ten.",
                 "Let me check the book... we have a slot at ten, or one at half past two.",
                 "We have a slot at ten, and, hmm, maybe one later."):
        assert len(endpoint(detector, say(text))) == 1, text


def test_the_silence_fallback_ends_a_turn_the_model_finds_unfinished(detector, say):
    closed = endpoint(detector, say("Let me check the book, um,"))
    assert len(closed) == 1
    waited, utterance = closed[0]
    assert utterance.ended_by == "silence"
    assert waited == VoiceConfig(turn_detector="smart-turn").vad_end_silence_ms
