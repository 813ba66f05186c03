"""Words and clauses of what a callee said: the shared ground of the understanding layer.

Text is lower-cased, accents are folded ("sí" is "si", "désolé" is "desole") and
hyphens split words ("mm-hmm" is "mm hmm"), so phrase lists stay plain ASCII.
A reply is cut into clauses at sentence ends, commas and "..." and each clause
knows whether it follows a correction ("no wait", "I mean", "actually") or a
contrast ("but"): later words then outrank earlier ones.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from functools import lru_cache
from typing import Iterable

_TOKEN = re.compile(r"[$€£]|\d+(?:,\d{3})*(?:\.\d+)?|\.\d+|[a-z]+(?:'[a-z]+)*|@|[.,;:!?]")


# Phrase lists are constant and a callee's turn is read many times over (each question, each field,
# the evidence pass), so folding and tokenising are memoised; the bounds keep memory flat.
@lru_cache(maxsize=16384)
def fold(text: str) -> str:
    """Lower case, accents folded, curly quotes straightened."""
    text = text.replace("\u2019", "'").replace("\u2018", "'").replace("\u2026", "...")
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(c for c in decomposed if not unicodedata.combining(c)).lower()


@lru_cache(maxsize=16384)
def _token_tuple(text: str) -> tuple[str, ...]:
    return tuple(_TOKEN.findall(fold(text).replace("-", " ")))


def tokens(text: str) -> list[str]:
    """Word, figure, currency-sign and punctuation tokens of folded text."""
    return list(_token_tuple(text))


def has_phrase(words: list[str], phrase: str) -> bool:
    return find_phrase(words, phrase) >= 0


def find_phrase(words: list[str], phrase: str) -> int:
    """Index of the first occurrence of ``phrase`` in ``words``, or -1."""
    target = _token_tuple(phrase)
    n = len(target)
    if n == 0:
        return 0
    first = target[0]
    for i in range(len(words) - n + 1):
        if words[i] == first and (n == 1 or tuple(words[i : i + n]) == target):
            return i
    return -1


def has_any(text_or_words: str | list[str], phrases: Iterable[str]) -> bool:
    words = tokens(text_or_words) if isinstance(text_or_words, str) else text_or_words
    return any(has_phrase(words, p) for p in phrases)


# A correction replaces what came before it; a contrast ("but") usually carries the answer that counts.
CORRECTIONS = ("no wait", "no sorry", "sorry no", "wait no", "i mean", "i meant", "actually", "or rather",
               "scratch that", "make that", "correction", "let me correct", "my mistake", "my bad",
               "to be honest", "on second thought", "hang on no", "sorry i mean", "that's wrong", "not quite",
               "no hold on", "i tell a lie", "i got that wrong", "i was wrong", "i misspoke", "let me correct that",
               "scratch that", "sorry i'm wrong", ", no,", "no no", ", sorry,", "or should i say")
CONTRASTS = ("but", "however", "though", "except", "although", "otherwise", "whereas", "while")
# At the start of a clause these take back what came before ("yes we are, oh wait, no ...").
CLAUSE_CORRECTIONS = CORRECTIONS + ("wait", "oh wait", "hang on", "hold on")

_ABBREVIATION = re.compile(r"\b(?:dr|mr|mrs|ms|st|jr|sr|mt|vs|approx|ave|inc|ltd)\.$", re.IGNORECASE)


def sentences(text: str) -> list[str]:
    """Sentences of ``text``; "Dr. Patel" and "St. Mary" stay whole."""
    merged: list[str] = []
    for part in re.split(r"(?<=[.!?\u2026])\s+", text.strip()):
        if merged and _ABBREVIATION.search(merged[-1]):
            merged[-1] = f"{merged[-1]} {part}"
        elif part.strip():
            merged.append(part.strip())
    return merged


@dataclass(frozen=True)
class Clause:
    text: str  # the clause as said (original case)
    index: int  # position in the reply
    corrected: bool  # a correction came at or before this clause: it replaces what came earlier
    contrasted: bool  # "but" / "however" came at or before this clause


def clauses(text: str) -> list[Clause]:
    """The reply cut at sentence ends, ";", "...", dashes and commas, each marked for corrections
    and contrasts heard so far."""
    raw = re.split(r"(?<=[.!?;\u2026])\s+|\.\.\.+\s*|\s+[-\u2013\u2014]+\s+|,\s*", text.strip())
    out: list[Clause] = []
    corrected = contrasted = False
    for part in raw:
        part = part.strip(" .")
        if not part:
            continue
        words = tokens(part)
        corrected = corrected or any(find_phrase(words, c) == 0 for c in CLAUSE_CORRECTIONS) or has_any(
            words, ("no wait", "i mean", "or rather", "scratch that", "make that"))
        contrasted = contrasted or any(find_phrase(words, c) == 0 for c in CONTRASTS)
        out.append(Clause(part, len(out), corrected, contrasted))
    return out


def after_last_correction(text: str) -> str:
    """The words after the last correction marker ("the 14th, no wait, the 15th" -> "the 15th"),
    or the whole text when there is none."""
    low = fold(text)
    best = -1
    for marker in CORRECTIONS:
        before = r"(?<![a-z'])" if marker[0].isalnum() else ""
        after = r"(?![a-z'])" if marker[-1].isalnum() else ""
        for m in re.finditer(rf"{before}{re.escape(marker)}{after}", low):
            best = max(best, m.end())
    if best < 0:
        return text
    rest = text[best:].lstrip(" ,.;:-\u2014")
    return rest or text
