"""Keyword matching shared by the scripted personas and their read-back checks:
an utterance as stemmed words, phrase containment, and a fact's keyword score."""

from __future__ import annotations

import re

from byourside_server.telephony.simulator.scenarios import Fact


def words(text: str) -> list[str]:
    return [_stem(w) for w in re.findall(r"[a-z0-9]+(?:'[a-z]+)?", text.lower().replace("\u2019", "'"))]


def _stem(word: str) -> str:
    word = word.removesuffix("'s")
    if word.endswith("ies") and len(word) > 4:
        return word[:-3] + "y"
    return word[:-1] if word.endswith("s") and len(word) > 3 and not word.endswith("ss") else word


def has_phrase(said: list[str], phrase: str) -> bool:
    target = words(phrase)
    return any(said[i : i + len(target)] == target for i in range(len(said) - len(target) + 1))


def score(fact: Fact, said: list[str]) -> int:
    """Keyword overlap: each keyword heard scores its number of words."""
    return sum(len(words(k)) for k in fact.keywords if has_phrase(said, k))
