"""Pure parsers that turn what a callee said into a typed field value.

Each parser returns ``None`` when the text holds no answer, so the caller can ask
again. Nothing here guesses beyond the words: a reply without a yes/no cue is not
a boolean, a reply without a number is not a number.

Decisions worth knowing:
- Booleans: the first decisive cue wins ("Yes, sorry for the wait" is yes,
  "Unfortunately we're full" is no); "not sure", "no idea", "can't share" and
  similar make the reply undecided. Weak cues ("we have", "sorry", "closed") only
  count when no decisive cue is present.
- Numbers: a figure marked as money ("$85", "eighty-five dollars") beats any
  other figure in the same reply, so "twenty-four hours' notice, a forty dollar
  fee" reads 40. Two spoken groups side by side are read the way prices are
  said: "twelve fifty" is 12.5, "forty-nine ninety-nine" is 49.99 and
  "twelve oh five" is 12.05 (say "twelve hundred fifty" for 1250). Integral
  values come back as ``int``.
"""

from __future__ import annotations

import re

_TOKEN = re.compile(r"[$€£]|\d+(?:,\d{3})*(?:\.\d+)?|\.\d+|[a-z]+(?:'[a-z]+)*|[.,;:!?]")


def tokens(text: str) -> list[str]:
    """Lower-case word, figure, currency-sign and punctuation tokens."""
    text = text.lower().replace("\u2019", "'").replace("-", " ")
    return _TOKEN.findall(text)


# --- booleans -------------------------------------------------------------

_UNDECIDED = (
    "not sure", "not certain", "don't know", "do not know", "dunno", "no idea", "no clue", "unsure",
    "can't say", "cannot say", "can't tell", "cannot tell", "couldn't tell", "couldn't say", "maybe",
    "perhaps", "possibly", "might", "it depends", "depends", "can't share", "cannot share", "not allowed to share",
    "not allowed to give", "not allowed to say", "not allowed to tell", "not allowed to disclose",
    "no comment", "rather not", "prefer not",
)
_YES = (
    "yes", "yeah", "yep", "yup", "sure", "certainly", "absolutely", "definitely", "correct", "indeed",
    "affirmative", "exactly", "of course", "that's right", "that is right", "you're right", "that's correct",
    "we do", "i do", "it does", "we can", "we are", "we will", "it is", "no problem", "no worries", "you bet",
    "confirmed", "sounds good", "will do", "i think so",
)
_NO = (
    "no", "nope", "nah", "not", "never", "negative", "none", "nothing", "unfortunately", "cannot",
    "fully booked", "booked up", "sold out", "of course not", "absolutely not", "certainly not",
    "definitely not", "afraid not", "not really",
)
_WEAK_YES = ("we have", "we've got", "there is", "there's", "available", "open", "can do", "right")
_WEAK_NO = ("sorry", "closed", "unavailable", "full", "no longer")


def _phrase_table(*groups: tuple[tuple[str, ...], bool | None]) -> list[tuple[tuple[str, ...], bool | None]]:
    table = [(tuple(tokens(p)), value) for phrases, value in groups for p in phrases]
    return sorted(table, key=lambda item: -len(item[0]))


_DECISIVE = _phrase_table((_UNDECIDED, None), (_YES, True), (_NO, False))
_WEAK = _phrase_table((_WEAK_NO, False), (_WEAK_YES, True))
_NO_CUE = object()


def _first_cue(words: list[str], table: list[tuple[tuple[str, ...], bool | None]], contractions: bool) -> object:
    for i, word in enumerate(words):
        for phrase, value in table:
            if tuple(words[i : i + len(phrase)]) == phrase:
                return value
        if contractions and word.endswith("n't"):
            return False
    return _NO_CUE


def parse_boolean(text: str) -> bool | None:
    """Yes/no from a reply: True, False, or None when it holds no clear answer."""
    words = tokens(text)
    cue = _first_cue(words, _DECISIVE, contractions=True)
    if cue is _NO_CUE:
        weak_no = _first_cue(words, [p for p in _WEAK if p[1] is False], contractions=False)
        if weak_no is not _NO_CUE:
            return False
        cue = _first_cue(words, _WEAK, contractions=False)
    return None if cue is _NO_CUE else cue  # type: ignore[return-value]


# --- numbers --------------------------------------------------------------

_UNITS = {w: i for i, w in enumerate("zero one two three four five six seven eight nine".split())}
_TEENS = {w: i + 10 for i, w in enumerate("ten eleven twelve thirteen fourteen fifteen sixteen seventeen eighteen nineteen".split())}
_TENS = {w: (i + 2) * 10 for i, w in enumerate("twenty thirty forty fifty sixty seventy eighty ninety".split())}
_SCALES = {"thousand": 1_000, "million": 1_000_000, "billion": 1_000_000_000}
_NUMBER_WORDS = set(_UNITS) | set(_TEENS) | set(_TENS) | set(_SCALES) | {"hundred", "dozen", "oh", "point"}
_RUN_STARTS = _NUMBER_WORDS - {"oh", "point", "dozen"}
_CURRENCY_SIGNS = {"$", "€", "£"}
_CURRENCY_WORDS = {"dollar", "dollars", "buck", "bucks", "usd", "euro", "euros", "pound", "pounds", "cents", "cent"}


def _tidy(value: float) -> int | float:
    value = round(value, 6)
    return int(value) if float(value).is_integer() else value


def _groups(words: list[str]) -> list[tuple[int, str, int]] | None:
    """Split number words into spoken groups: (value, kind of first word, word count)."""
    groups: list[tuple[int, str, int]] = []
    total = current = count = 0
    last = first = ""
    for word in words:
        kind = ("unit" if word in _UNITS else "teen" if word in _TEENS else "tens" if word in _TENS
                else "hundred" if word == "hundred" else "dozen" if word == "dozen" else "oh" if word == "oh"
                else "scale" if word in _SCALES else "")
        joins = (
            (kind == "unit" and last in ("", "tens", "hundred", "scale", "oh"))
            or (kind in ("teen", "tens") and last in ("", "hundred", "scale"))
            or (kind in ("hundred", "dozen") and last in ("", "unit", "teen", "tens"))
            or (kind == "scale" and last in ("", "unit", "teen", "tens", "hundred", "dozen"))
            or (kind == "oh" and last == "")
        )
        if not joins:
            if last == "":
                return None
            groups.append((total + current, first, count))
            total = current = count = 0
            last = ""
        first = first if last else kind
        count += 1
        if kind == "unit":
            current += _UNITS[word]
        elif kind in ("teen", "tens"):
            current += _TEENS.get(word, 0) + _TENS.get(word, 0)
        elif kind == "hundred":
            current = (current or 1) * 100
        elif kind == "dozen":
            current = (current or 1) * 12
        elif kind == "scale":
            total += (current or 1) * _SCALES[word]
            current = 0
        last = kind
    if last == "oh":
        return None
    groups.append((total + current, first, count))
    return groups


def words_to_number(text: str) -> int | float | None:
    """Spoken number words to a value: "eighty-five" -> 85, "two hundred and five" -> 205,
    "a dozen" -> 12, "twelve point five" -> 12.5, "twelve fifty" -> 12.5 (price reading)."""
    words = [w for w in tokens(text) if w not in ("and", "a", "an")]
    if not words or any(w not in _NUMBER_WORDS for w in words):
        return None
    if "point" in words:
        cut = words.index("point")
        whole = words_to_number(" ".join(words[:cut])) if cut else 0
        digits = words[cut + 1 :]
        if whole is None or not digits or any(d not in _UNITS and d != "oh" for d in digits):
            return None
        return _tidy(float(f"{whole}.{''.join(str(_UNITS.get(d, 0)) for d in digits)}"))
    groups = _groups(words)
    if not groups:
        return None
    if len(groups) == 1:
        return groups[0][0]
    if len(groups) == 2 and 1 <= groups[1][0] <= 99 and groups[1][1] in ("teen", "tens", "oh"):
        return _tidy(groups[0][0] + groups[1][0] / 100)
    if all(kind == "unit" and n == 1 for _, kind, n in groups):
        return int("".join(str(v) for v, _, _ in groups))  # digits read one by one
    return groups[0][0]


def _candidates(words: list[str]) -> list[tuple[float, int, int, bool]]:
    """Numbers in a token list as (value, first index, end index, marked as money)."""
    found: list[tuple[float, int, int, bool]] = []
    i = 0
    while i < len(words):
        word, start = words[i], i
        value: float | None = None
        if word[0].isdigit() or (word[0] == "." and len(word) > 1):
            value, i = float(word.replace(",", "")), i + 1
            if i < len(words) and words[i] in _SCALES:
                value, i = value * _SCALES[words[i]], i + 1
        elif word in _RUN_STARTS or (
            word in ("a", "an") and i + 1 < len(words) and words[i + 1] in ("hundred", "thousand", "million", "dozen")
        ):
            j = i + 1
            while j < len(words) and (
                words[j] in _NUMBER_WORDS
                or (words[j] == "and" and j + 1 < len(words) and words[j + 1] in _NUMBER_WORDS
                    and words[j - 1] in ("hundred", *_SCALES))  # "two hundred and five"
            ):
                j += 1
            value, i = words_to_number(" ".join(words[start:j])), j
        else:
            i += 1
        if value is None:
            continue
        money = (start > 0 and words[start - 1] in _CURRENCY_SIGNS) or (i < len(words) and words[i] in _CURRENCY_WORDS)
        if i < len(words) and words[i] in ("cents", "cent"):
            value /= 100
        found.append((value, start, i, money))
    return found


def parse_number(text: str) -> int | float | None:
    """The number a reply gives: money first, else the first figure; None when there is none."""
    words = tokens(text)
    found = _candidates(words)
    if not found:
        return None
    money = [c for c in found if c[3]]
    value, _, end, _ = chosen = (money or found)[0]
    # "forty-nine dollars and ninety-nine cents": the cents follow the dollars
    following = found[found.index(chosen) + 1 :]
    if following and end < len(words) and words[end] in ("dollar", "dollars", "buck", "bucks"):
        cents, start, cents_end, _ = following[0]
        if start in (end + 1, end + 2) and cents_end < len(words) and words[cents_end] in ("cents", "cent"):
            value += cents
    return _tidy(value)


# --- strings --------------------------------------------------------------

_FILLER = re.compile(
    r"^(oh|ah|um+|uh+|hmm+|well|okay|ok|so|sure|right|of course|let me (just )?(check|see)|good question"
    r"|one (moment|second|sec)|hold on|just a (moment|second|sec)|anything else\b.*|let me see)[\s.,!?…]*$",
    re.IGNORECASE,
)
_LEAD_IN = re.compile(r"^(?:it's|it is|that's|that is|that would be|that'd be)\s+", re.IGNORECASE)


_ABBREVIATION = re.compile(r"\b(?:dr|mr|mrs|ms|st|jr|sr|mt|vs|approx|ave|inc|ltd)\.$", re.IGNORECASE)


def sentences(text: str) -> list[str]:
    """Sentences of ``text``; "Dr. Patel" and "St. Mary" stay whole."""
    merged: list[str] = []
    for part in re.split(r"(?<=[.!?…])\s+", text.strip()):
        if merged and _ABBREVIATION.search(merged[-1]):
            merged[-1] = f"{merged[-1]} {part}"
        elif part.strip():
            merged.append(part.strip())
    return merged


def parse_string(text: str) -> str | None:
    """The informative part of a reply: fillers dropped, a leading "it's" or a
    label before a colon removed, trailing punctuation trimmed."""
    for sentence in sentences(text):
        if _FILLER.match(sentence):
            continue
        if ":" in sentence and not re.search(r"\d:\d", sentence):
            sentence = sentence.split(":", 1)[1].strip() or sentence
        sentence = _LEAD_IN.sub("", sentence).strip().rstrip(".!?… ").strip()
        return sentence or None
    return None
