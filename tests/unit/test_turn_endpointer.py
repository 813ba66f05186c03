"""The endpointer with a turn detector: when it asks, what it does with the answer, and the silence fallback.

The detectors here are small real classes with scripted answers; the executor
runs the question at once (``InlineExecutor``) or when the test says so
(``HeldExecutor``), so every decision lands on a known frame.
"""

from __future__ import annotations

import threading
import time
from concurrent.futures import Executor

import numpy as np
from inline_executor import HeldExecutor, InlineExecutor

from byourside_server.voice.audio import FRAME_MS, FRAME_SAMPLES
from byourside_server.voice.pipeline import VoiceConfig, make_endpointer
from byourside_server.voice.turn import TurnDetector
from byourside_server.voice.vad import Endpointer


class ScriptedDetector(TurnDetector):
    """Answers the n-th question with ``answers[n]`` (the last answer repeats) and keeps what it was asked."""

    def __init__(self, *answers: float) -> None:
        self.answers = list(answers)
        self.asked: list[np.ndarray] = []

    def probability(self, pcm: np.ndarray) -> float:
        self.asked.append(pcm)
        return self.answers[min(len(self.asked), len(self.answers)) - 1]


class BrokenDetector(TurnDetector):
    def probability(self, pcm: np.ndarray) -> float:
        raise RuntimeError("model failed")


LOUD, QUIET = np.full(FRAME_SAMPLES, 5000, np.int16), np.zeros(FRAME_SAMPLES, np.int16)


def energy(frame: np.ndarray) -> bool:
    return bool(np.abs(frame).mean() > 1000)


def feed(endpointer: Endpointer, pattern: str) -> list[tuple[int, object]]:
    """Feeds 's' (speech) / '.' (silence) frames; returns (index of the closing frame, utterance) pairs."""
    out = []
    for i, c in enumerate(pattern):
        utterance = endpointer.feed(LOUD if c == "s" else QUIET)
        if utterance is not None:
            out.append((i, utterance))
    return out


def endpointer(detector: TurnDetector | None, executor: Executor | None = None, **kwargs) -> Endpointer:
    options = dict(end_silence_ms=1000, turn_silence_ms=200, preroll_ms=40, turn_detector=detector,
                   executor=executor or InlineExecutor())
    options.update(kwargs)
    return Endpointer(energy, **options)


def test_a_turn_the_detector_finds_complete_closes_after_the_short_silence():
    detector = ScriptedDetector(0.9)
    closed = feed(endpointer(detector), "s" * 30 + "." * 60)
    assert len(closed) == 1
    index, utterance = closed[0]
    assert index == 30 + 10 - 1  # the 10th silent frame (200 ms), not the 50th (1000 ms)
    assert utterance.ended_by == "turn"
    assert (utterance.start_ms, utterance.end_ms) == (0, 30 * FRAME_MS)  # the silence is not part of the turn
    assert len(detector.asked) == 1
    # The whole turn so far with its silence, asked 60 ms ahead so the answer is in when the 200 ms are up.
    assert len(detector.asked[0]) == (30 + 7) * FRAME_SAMPLES


def test_an_unfinished_turn_waits_through_its_pause_and_the_silence_fallback_ends_it():
    detector = ScriptedDetector(0.2)  # "incomplete", every time
    pattern = "s" * 30 + "." * 30 + "s" * 20 + "." * 60
    closed = feed(endpointer(detector), pattern)
    assert len(closed) == 1  # the 600 ms pause did not cut the turn
    index, utterance = closed[0]
    assert index == 30 + 30 + 20 + 50 - 1  # ended by the 1000 ms fallback
    assert utterance.ended_by == "silence"
    assert utterance.end_ms == (30 + 30 + 20) * FRAME_MS
    assert len(detector.asked) == 2  # once per silence, not on every further silent frame


def test_the_answer_is_compared_with_the_threshold():
    assert feed(endpointer(ScriptedDetector(0.6), turn_threshold=0.7), "s" * 30 + "." * 60)[0][1].ended_by == "silence"
    assert feed(endpointer(ScriptedDetector(0.7), turn_threshold=0.7), "s" * 30 + "." * 60)[0][1].ended_by == "turn"


def test_pauses_shorter_than_the_turn_silence_do_not_end_the_turn_whatever_the_answer():
    detector = ScriptedDetector(0.9)
    closed = feed(endpointer(detector), "s" * 20 + "." * 9 + "s" * 20 + "." * 5 + "s" * 20 + "." * 20)
    assert len(closed) == 1 and closed[0][1].end_ms == 74 * FRAME_MS
    assert closed[0][0] == 74 + 10 - 1
    # The 180 ms pause was asked about (ahead of time) but the callee went on; the 100 ms one never was.
    assert len(detector.asked) == 2


def test_an_answer_that_arrives_after_the_callee_spoke_again_is_ignored():
    detector, executor = ScriptedDetector(0.9, 0.1), HeldExecutor()
    ep = endpointer(detector, executor)
    assert feed(ep, "s" * 30 + "." * 12 + "s" * 5) == []  # asked at the pause; the model is still thinking
    executor.answer()  # "complete", about a pause the callee has since ended
    assert feed(ep, "s" * 15 + "." * 12) == []  # second pause: asked again, not answered yet
    executor.answer()  # "incomplete"
    closed = feed(ep, "." * 40)
    assert len(closed) == 1 and closed[0][1].ended_by == "silence"
    assert len(detector.asked) == 2


def test_a_slow_answer_closes_the_turn_on_the_first_frame_after_it_arrives():
    detector, executor = ScriptedDetector(0.9), HeldExecutor()
    ep = endpointer(detector, executor)
    assert feed(ep, "s" * 30 + "." * 15) == []  # asked at the 10th silent frame, no answer yet
    executor.answer()
    closed = feed(ep, ".")
    assert len(closed) == 1 and closed[0][1].ended_by == "turn"
    assert closed[0][1].end_ms == 30 * FRAME_MS


def test_a_failing_detector_leaves_the_silence_fallback_in_charge():
    closed = feed(endpointer(BrokenDetector()), "s" * 30 + "." * 60)
    assert len(closed) == 1 and closed[0][1].ended_by == "silence" and closed[0][0] == 30 + 50 - 1


def test_too_short_sounds_are_not_asked_about_and_yield_nothing():
    detector = ScriptedDetector(0.9)
    assert feed(endpointer(detector, min_speech_ms=200), "ssss" + "." * 60) == []
    assert detector.asked == []


def test_the_default_executor_asks_off_the_calling_thread():
    class Gate(TurnDetector):
        def __init__(self) -> None:
            self.release, self.threads = threading.Event(), []

        def probability(self, pcm: np.ndarray) -> float:
            self.threads.append(threading.current_thread())
            self.release.wait(10)
            return 0.9

    gate = Gate()
    ep = Endpointer(energy, end_silence_ms=5000, turn_silence_ms=200, turn_detector=gate)
    assert feed(ep, "s" * 30 + "." * 20) == []  # feed does not wait for the model
    gate.release.set()
    for _ in range(200):  # the answer lands on a later frame
        utterance = ep.feed(QUIET)
        if utterance is not None:
            break
        time.sleep(0.005)
    assert utterance is not None and utterance.ended_by == "turn"
    assert gate.threads and gate.threads[0] is not threading.current_thread()


def test_without_a_detector_silence_alone_ends_the_turn():
    closed = feed(endpointer(None), "s" * 30 + "." * 60)
    assert len(closed) == 1 and closed[0][0] == 30 + 50 - 1 and closed[0][1].ended_by == "silence"


def test_settings_build_the_endpointer_local_voice_ships(monkeypatch):
    monkeypatch.setenv("BYS_TURN_DETECTOR", "off")
    config = VoiceConfig()
    assert (config.turn_detector, config.vad_end_silence_ms) == ("off", 700)
    assert make_endpointer(config, None).turn_detector is None
    monkeypatch.setenv("BYS_TURN_DETECTOR", "smart-turn")
    monkeypatch.setenv("BYS_VAD_TURN_SILENCE_MS", "240")
    monkeypatch.setenv("BYS_VAD_END_SILENCE_MS", "900")
    monkeypatch.setenv("BYS_TURN_THRESHOLD", "0.6")
    config = VoiceConfig()
    detector = ScriptedDetector(0.9)
    ep = make_endpointer(config, detector)
    assert ep.turn_detector is detector
    assert (ep.turn_frames, ep.end_frames, ep.turn_threshold) == (12, 45, 0.6)


def test_pending_is_the_turn_as_it_would_close_now_without_closing_it():
    endpointer = Endpointer(energy, end_silence_ms=200)
    assert endpointer.pending() is None and endpointer.silent_ms == 0
    feed(endpointer, "." * 5 + "s" * 15 + "...")
    assert endpointer.in_speech and endpointer.silent_ms == 3 * FRAME_MS
    guess = endpointer.pending()
    closed = [u for _, u in feed(endpointer, "." * 7)]
    assert len(closed) == 1 and closed[0] is not None
    assert (guess.start_ms, guess.end_ms) == (closed[0].start_ms, closed[0].end_ms)  # the same audio span
    assert np.array_equal(guess.pcm, closed[0].pcm)
    assert endpointer.pending() is None and endpointer.silent_ms == 0
