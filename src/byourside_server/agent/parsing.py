"""Spoken and written numbers: the figures in what a callee said.

``words_to_number`` reads number words ("eighty-five", "two hundred and five",
"a dozen"); ``number_candidates`` lists every figure in a token list with its
position and whether it was marked as money ("$85", "eighty-five dollars"). Two
spoken groups side by side are read the way prices are said: "twelve fifty" is
12.5, "forty-nine ninety-nine" is 49.99 and "twelve oh five" is 12.05 (say
"twelve hundred fifty" for 1250). Choosing which figure answers a question is
the understanding layer's job (``agent/understanding/values.py``).
"""

from __future__ import annotations

import re

_TOKEN = re.compile(r"[$€£]|\d+(?:,\d{3})*(?:\.\d+)?|\.\d+|[a-z]+(?:'[a-z]+)*|[.,;:!?]")


def tokens(text: str) -> list[str]:
    """Lower-case word, figure, currency-sign and punctuation tokens."""
    text = text.lower().replace("\u2019", "'").replace("-", " ")
    return _TOKEN.findall(text)


# --- numbers --------------------------------------------------------------

_UNITS = {w: i for i, w in enumerate("zero one two three four five six seven eight nine".split())}
_TEENS = {w: i + 10 for i, w in enumerate("ten eleven twelve thirteen fourteen fifteen sixteen seventeen eighteen nineteen".split())}
_TENS = {w: (i + 2) * 10 for i, w in enumerate("twenty thirty forty fifty sixty seventy eighty ninety".split())}
_SCALES = {"thousand": 1_000, "million": 1_000_000, "billion": 1_000_000_000}
_NUMBER_WORDS = set(_UNITS) | set(_TEENS) | set(_TENS) | set(_SCALES) | {"hundred", "dozen", "oh", "point"}
_RUN_STARTS = _NUMBER_WORDS - {"oh", "point", "dozen"}
_CURRENCY_SIGNS = {"$", "€", "£"}
_CURRENCY_WORDS = {"dollar", "dollars", "buck", "bucks", "usd", "euro", "euros", "pound", "pounds", "cents", "cent", "quid",
                   "dolares", "dollari", "eur", "gbp"}


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


_PERIODS = frozenset(("night", "week", "month", "year", "term", "semester", "season"))


def _hundreds_per_period(words: list[str], start: int, end: int) -> bool:
    """"one-forty a night", "two-fifty a week": a digit and a round ten said for a rate per night, week or
    month is hundreds (140, 250); "three fifty an hour" stays 3.50."""
    run = words[start:end]
    return (len(run) == 2 and run[0] in _UNITS and _UNITS[run[0]] > 0 and run[1] in _TENS
            and end + 1 < len(words) and words[end] in ("a", "per", "each") and words[end + 1] in _PERIODS)


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
            if _hundreds_per_period(words, start, i):
                value = _UNITS[words[start]] * 100 + _TENS[words[start + 1]]
        else:
            i += 1
        if value is None:
            continue
        money = (start > 0 and words[start - 1] in _CURRENCY_SIGNS) or (i < len(words) and words[i] in _CURRENCY_WORDS)
        if i < len(words) and words[i] in ("cents", "cent"):
            value /= 100
        found.append((value, start, i, money))
    return found


def number_candidates(words: list[str]) -> list[tuple[float, int, int, bool]]:
    """Every figure in a ``tokens`` list as (value, first index, end index, marked as money)."""
    return _candidates(words)
