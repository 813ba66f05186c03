"""What a reply is about: the question's words, and the stalls around the answer.

``question_words`` are the content words of the field (name and description)
and of the question asked; ``content_words`` the same for any text, so the two
can be compared. A stall is a clause that only buys time ("hang on", "let me
see", "good question"); ``informative`` is a reply without them, from its last
correction on.
"""

from __future__ import annotations

import re

from byourside_server.agent.understanding.replies import HOLD
from byourside_server.agent.understanding.words import after_last_correction, has_any, sentences, tokens
from byourside_server.domain import FieldSpec

_STOP = frozenset(
    "a an the to for of and or in on at is are be if you your they their them how much many what when where which "
    "who whether please can could would do does did it its this that there with from by about any some we our i me "
    "my will was were has have had tell know find out ask check whether s".split())


_IRREGULAR = {"children": "child", "people": "person", "men": "man", "women": "woman", "kids": "kid", "feet": "foot",
              "teeth": "tooth", "mice": "mouse", "geese": "goose"}


def stem(word: str) -> str:
    word = word.removesuffix("'s")
    if word in _IRREGULAR:
        return _IRREGULAR[word]
    if word.endswith("ies") and len(word) > 4:
        return word[:-3] + "y"
    return word[:-1] if word.endswith("s") and len(word) > 3 and not word.endswith("ss") else word


def content_words(text: str) -> set[str]:
    return {stem(w) for w in tokens(text) if w.isalpha() and w not in _STOP and len(w) > 1}


# Words a callee uses for the same thing the question says.
_SAME = {"close": {"shut", "closing"}, "closing": {"shut", "close"}, "shut": {"close", "closing"},
         "open": {"opening", "start"}, "opening": {"open", "start"}, "price": {"cost", "charge"},
         "cost": {"price", "charge"}, "fee": {"charge", "cost"}, "child": {"kid"}, "kid": {"child"}}


def question_words(field: FieldSpec, question: str | None) -> set[str]:
    name = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", " ", field.name).replace("_", " ").replace("-", " ")
    words = content_words(f"{name} {field.description or ''} {question or ''}")
    return words.union(*(_SAME.get(w, set()) for w in words))


# --- stalls -----------------------------------------------------------------

_STALL = HOLD + (
    "good question", "let me think", "um", "uh", "erm", "hmm", "well", "okay", "ok", "right", "so", "oh", "ah",
    "i'm just finding", "just finding", "just pulling", "pulling it up", "looking it up", "i'm back", "okay i'm back",
    "sorry for the wait", "thanks for waiting", "thanks for holding", "sorry about that", "one moment please",
    "let me see here", "i'm just", "found it", "here we go", "there we go", "got it", "alright")


# Longest first, so "okay i'm back" goes before "okay".
_STALL_PATTERNS = [re.compile(rf"(?<![a-z']){re.escape(' '.join(tokens(phrase)))}(?![a-z'])")
                   for phrase in sorted(_STALL, key=len, reverse=True)]


def is_stall(clause: str) -> bool:
    words = [w for w in tokens(clause) if w not in (",", ".", "!", "?")]
    if not words:
        return True
    remaining = " ".join(words)
    for pattern in _STALL_PATTERNS:
        remaining = pattern.sub(" ", remaining)
    left = [w for w in remaining.split() if w not in _STOP and w not in ("just", "now", "sec", "second", "moment")]
    return not left or (has_any(clause, HOLD) and len(left) <= 3)


def informative(reply: str) -> str:
    """The reply without its stall sentences and clauses, after the last correction."""
    kept = [s for s in sentences(reply) if not is_stall(s)]
    text = " ".join(kept) or reply
    return after_last_correction(text)
