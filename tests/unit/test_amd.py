"""Answering-machine detection from cadence (voice/amd.py), on synthetic 20 ms frames."""

from __future__ import annotations

import numpy as np

from byourside_server.voice.amd import AnsweringMachineDetector
from byourside_server.voice.audio import FRAME_SAMPLES

RNG = np.random.default_rng(7)
VOICE = (RNG.standard_normal(FRAME_SAMPLES) * 3000).astype(np.int16)
QUIET = (RNG.standard_normal(FRAME_SAMPLES) * 30).astype(np.int16)  # line noise, not silence in bits


def run(pattern: list[tuple[bool, int]]):
    """Feed (voiced?, ms) segments; the verdict, or None if undecided."""
    amd = AnsweringMachineDetector()
    for voiced, ms in pattern:
        for _ in range(ms // 20):
            amd.feed(VOICE if voiced else QUIET)
    return amd.verdict


def test_a_short_hello_then_waiting_is_a_human_within_three_seconds():
    verdict = run([(False, 400), (True, 600), (False, 2000)])
    assert (verdict.kind, verdict.cause) == ("human", "greeting_then_silence")
    assert verdict.decided_ms == 400 + 600 + 800


def test_a_long_unbroken_greeting_is_a_machine():
    verdict = run([(False, 300), (True, 4000)])
    assert (verdict.kind, verdict.cause) == ("machine", "long_greeting")
    assert verdict.decided_ms <= 300 + 1500 + 40


def test_many_words_before_any_pause_is_a_machine():
    words = [(True, 200), (False, 100)] * 5  # five words, short gaps, all inside 1.5 s
    assert run([(False, 200), *words, (False, 2000)]).cause == "max_words"


def test_dead_air_is_not_a_verdict_of_machine():
    assert (run([(False, 3000)]).kind, run([(False, 3000)]).cause) == ("unknown", "initial_silence")


def test_a_record_tone_decides_machine_and_the_first_verdict_stands():
    amd = AnsweringMachineDetector()
    amd.beep()
    assert (amd.verdict.kind, amd.verdict.cause) == ("machine", "beep")
    assert amd.beep() is None and amd.feed(VOICE) is None and amd.verdict.cause == "beep"


def test_pauses_inside_a_long_greeting_do_not_make_it_human():
    # "Hi, you've reached Chris... (0.3 s) ...please leave a message": the gap is shorter than 800 ms.
    verdict = run([(False, 200), (True, 1000), (False, 300), (True, 2500)])
    assert verdict.kind == "machine"
