"""Typed values from a reply, read in the context of the question that was asked.

``extract(field, reply, question)`` returns the field's value or None. What it
does, in order:
- stalls and fillers ("hang on a moment", "let me see", "good question") are
  dropped, and words after the last correction ("no wait", "I mean",
  "actually") replace what came before;
- numbers: every figure in the reply is a candidate; the one that answers the
  question wins: money for a price, the figure next to the question's words
  ("eleven seats" for "how many seats"), not a label ("line two", "unit 42"),
  not a time or a duration unless that is what was asked, the figure after a
  correction or a "but". "No charge" and "free" are 0;
- strings (``strings.py``): the kind of value is read from the field's name and description
  (time, day or date, email address, name, anything else) and only the words of
  that value are kept: "after four o'clock tomorrow", "the fifteenth",
  "j.okafor@harbormail.com", "Nguyen" (from "N-G-U-Y-E-N"), "smart casual";
  a date said relative to the call ("tomorrow", "the day after tomorrow") is
  given as the date it means ("2026-12-02"), a weekday as said;
- booleans: ``replies.yes_no``; a statement that repeats the question's words
  without a negation ("I'm free that Saturday" to "whether she is free that
  Saturday") is a yes.
"""

from __future__ import annotations

import re
from datetime import date
from typing import Any

from byourside_server.agent.parsing import number_candidates
from byourside_server.agent.parsing import tokens as number_tokens
from byourside_server.agent.understanding.context import content_words, is_stall, question_words, stem
from byourside_server.agent.understanding.replies import (
    UNKNOWNS, is_refusal, is_unknown, is_who_is_this, varies, yes_no,
)
from byourside_server.agent.understanding.strings import extract_string
from byourside_server.agent.understanding.words import CONTRASTS, CORRECTIONS, fold, has_any, sentences, tokens
from byourside_server.domain import FieldSpec

# --- numbers ----------------------------------------------------------------

_MONEY_FIELD = ("price", "cost", "fee", "charge", "rate", "dollar", "balance", "deposit", "quote", "estimate",
                "how much", "amount", "pay", "owe", "bill", "total", "fare", "rent", "salary", "wage", "tip",
                "refund", "budget", "spend", "premium", "copay", "fine")
_COUNT_FIELD = ("how many", "number of", "count", "seats", "guests", "people", "pairs", "units", "rooms", "spaces",
                "tickets", "places", "slots", "left", "capacity", "maximum", "max", "minimum", "spots")
_LABELS = frozenset("line unit room number no size table flight bus route order ticket platform gate extension ext "
                    "apartment apt suite floor page step option press aisle bay dock lane door channel model "
                    "version level row seat".split())
_NON_MONEY_UNITS = frozenset("hour hours minute minutes min mins day days week weeks month months year years mile "
                             "miles km people guests seats percent pairs person persons o'clock am pm "
                             "inches feet foot kilos metres meters times".split())
_TIME_BEFORE = frozenset("at until till til by before after from between".split())
_UNIT_WORDS = frozenset(
    stem(w) for w in "dollar dollars price cost fee charge amount much pay rate euro pound per number many how".split())
_LIMITS = frozenset("max maximum up cap capped limit minimum min least most".split())
_HAVE = frozenset(("got", "have", "has", "had", "there's", "are", "with"))
_NONE_LEFT = ("none", "none left", "zero", "nothing left", "not a single", "not one", "no more", "fully booked",
              "completely booked", "sold out", "all gone", "booked up", "nothing available", "no spaces",
              "no places", "no seats", "no rooms", "no slots", "no tickets")
_CURRENCY = ("dollar", "dollars", "buck", "bucks", "euro", "euros", "pound", "pounds", "quid", "cents", "cent")
_FREE = ("no charge", "free of charge", "for free", "it's free", "its free", "is free", "are free", "free",
         "on the house", "on us", "doesn't cost anything", "does not cost anything", "costs nothing",
         "cost nothing", "no fee", "no cost", "at no cost", "complimentary", "won't cost you", "nothing at all",
         "no extra charge", "don't charge", "do not charge", "we don't charge", "gratis", "zero dollars",
         "doesn't cost a thing", "not a penny", "nothing extra", "cost a penny", "cost a cent", "cost a thing",
         "cost a dime", "cost anything", "charge anything", "charge a penny", "charge a thing", "free entry",
         "no entry fee", "no admission fee", "gratuit", "gratis", "gratuito", "kostenlos", "go free", "goes free",
         "get in free", "gets in free", "don't pay", "doesn't pay", "do not pay", "don't have to pay", "pay nothing",
         "nothing to pay", "waived", "waive the fee", "on the house")


def _is_kind(words: set[str], text: str, cues: tuple[str, ...]) -> bool:
    return any(c in text for c in cues if " " in c) or bool(words & {c for c in cues if " " not in c})


def _boundary(words: list[str], markers: tuple[str, ...]) -> int:
    best = -1
    for marker in markers:
        target = number_tokens(marker)
        for i in range(len(words) - len(target) + 1):
            if words[i : i + len(target)] == target:
                best = max(best, i + len(target))
    return best


_NUMBER_WORD = ("one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|fifteen|twenty|thirty|forty|fifty"
                "|hundred")
_SLANG = ((r"\ba tenner\b", "ten dollars"), (r"\ba fiver\b", "five dollars"), (r"\ba score\b", "twenty dollars"),
          (r"\bhalf a dozen\b", "six"), (r"\ba couple(?: of)?\b", "two"), (r"\ba pair of\b", "two"),
          (rf"\b(\d+|a|{_NUMBER_WORD}) grand\b", r"\1 thousand dollars"), (r"\b(\d+)\s?k\b", r"\1 thousand"))


def _spoken_money(text: str) -> str:
    """Everyday names for sums as figures: "a tenner" is ten dollars, "two grand" two thousand."""
    for pattern, replacement in _SLANG:
        text = re.sub(pattern, replacement, text, flags=re.IGNORECASE)
    return text


_TAKE_BACK = ("hang on", "hold on", "wait", "oh wait", "just a sec", "one sec")
_OPENERS = frozenset((",", ".", ";", ":", "!", "?", "oh", "ah", "um", "er", "no"))
_RESULT = frozenset(("so", "leaves", "leaving", "makes", "making", "now"))


def _update_boundary(words: list[str], found: list[tuple[float, int, int, bool]]) -> int:
    """Where a clause opening with "hang on" / "wait" takes back a figure already said ("We've got six.
    Oh, hang on, ..."): the end of that marker, or -1. Before any figure it is only a stall."""
    best = -1
    for marker in _TAKE_BACK:
        target = number_tokens(marker)
        for i in range(1, len(words) - len(target) + 1):
            if words[i : i + len(target)] == target and words[i - 1] in _OPENERS and any(c[2] <= i for c in found):
                best = max(best, i + len(target))
    return best


def _is_result(words: list[str], start: int) -> bool:
    """The figure at ``start`` is a conclusion: "so four", "which leaves three", "so that's ten"."""
    before = words[max(0, start - 2) : start]
    return bool(before) and (before[-1] in _RESULT or (len(before) == 2 and before[0] == "so"))


# A total asked for ("the total price including VAT") versus a part of it ("a hundred plus VAT").
_TOTAL = ("total", "including", "inclusive", "all in", "altogether", "overall", "in all", "inc", "incl",
          "with vat", "with tax", "after tax", "grand total")
_PART_AFTER = ("plus", "+", "before", "excluding", "exclusive", "ex", "not including", "without", "on top")
_WHOLE_AFTER = ("all in", "in total", "altogether", "total", "in all", "including", "inclusive", "inc", "with vat",
                "with tax", "all told")
_WHOLE_BEFORE = ("comes to", "total of", "total is", "altogether", "all in", "in total", "grand total")


_BASE = ("before vat", "before tax", "excluding", "exclusive of", "ex vat", "without vat", "without tax", "net",
         "base price", "plus vat", "plus tax")


def _sum_kind(words: list[str], start: int, end: int, total_asked: bool, base_asked: bool) -> float:
    """How a money figure fits a question about a total or a base price: "a hundred and twenty plus VAT" is
    a part, "so a hundred and forty-four all in" the whole. Positive when the figure is the kind asked for,
    negative when it is the other kind (a part alone is no answer to "the total"); 0 for a plain price."""
    while end < len(words) and words[end] in _CURRENCY:
        end += 1  # "ninety-nine dollars plus tax"
    after = " ".join(_within_clause(words[end : end + 3]))
    before = " ".join(_within_clause(words[max(0, start - 3) : start], backwards=True)[::-1])
    part = any(re.match(rf"{re.escape(p)}\b", after) for p in _PART_AFTER)
    whole = any(re.match(rf"{re.escape(w)}\b", after) for w in _WHOLE_AFTER) or any(
        before.endswith(w) for w in _WHOLE_BEFORE)
    if total_asked and not base_asked:
        return 3.0 if whole and not part else -5.0 if part else 0.0
    if base_asked and not total_asked:
        return 3.0 if part and not whole else -5.0 if whole else 0.0
    return 0.0


def _within_clause(window: list[str], backwards: bool = False) -> list[str]:
    """The words of ``window`` up to the nearest punctuation (looking back from its end when ``backwards``)."""
    items = list(reversed(window)) if backwards else window
    kept: list[str] = []
    for word in items:
        if word in (",", ".", ";", ":", "!", "?"):
            break
        kept.append(word)
    return kept


def _near_overlap(words: list[str], start: int, end: int, wanted: set[str], span: int = 4) -> int:
    """How close the question's words are said to ``words[start:end]`` within its clause: each one found
    within ``span`` words scores more the nearer it is."""
    before = _within_clause(words[max(0, start - span) : start], backwards=True)  # nearest first
    after = _within_clause(words[end : end + span])
    return sum(span - distance for side in (before, after) for distance, word in enumerate(side)
               if stem(word) in wanted)


def extract_number(reply: str, field: FieldSpec, question: str | None = None) -> int | float | None:
    wanted = question_words(field, question)
    about = fold(f"{field.name.replace('_', ' ')} {field.description or ''} {question or ''}")
    about_words = set(tokens(about)) | {stem(w) for w in tokens(about)}
    money_field = _is_kind(about_words, about, _MONEY_FIELD)
    count_field = _is_kind(about_words, about, _COUNT_FIELD) and not money_field
    time_field = bool(about_words & {"time", "hour", "hours", "o'clock", "clock"})
    text = " ".join(s for s in sentences(reply) if not is_stall(s)) or reply
    text = _spoken_money(text)
    words = number_tokens(text)
    found = number_candidates(words)
    corrected_from = max(_boundary(words, CORRECTIONS), _update_boundary(words, found))
    contrast_from = _boundary(words, CONTRASTS)
    # "free" is a price of 0 only where a price was asked ("four pitches free" is a count)
    free_ends = [(_boundary(words, (f,)), len(number_tokens(f))) for f in _FREE] if not count_field else []
    free_at, free_len = max(free_ends, default=(-1, 0))
    if not found:
        if free_at >= 0 or (count_field and has_any(words, _NONE_LEFT)):
            return 0
        return None
    best, best_score = None, -99.0
    for value, start, end, money in found:
        before = words[start - 1] if start > 0 else ""
        after = words[end : end + 3]
        score = 0.0
        if money_field:
            score += 4 if money else 0
            if not money and not float(value).is_integer() and not words[start][0].isdigit():
                score += 3  # "two fifty", "twelve ninety-nine": said the way prices are
            if after and (after[0] in _NON_MONEY_UNITS or after[0] in ("o'clock",)):
                score -= 3
        if not money_field and not count_field and money:
            score += 2  # a figure said as money is what people usually ask for
        if count_field:
            score -= 3 if money else 0
            if any(stem(w) in wanted - _WHEN_WORDS for w in after):
                score += 3  # "eleven seats": the figure names what was counted (not "eight tomorrow")
        if before in _LABELS:
            score -= 4
        timeish = before in _TIME_BEFORE or (after and after[0] in ("o'clock", "am", "pm", "thirty", "fifteen"))
        if timeish and not time_field:
            # "from eight tomorrow", "at nine tonight": a time, however "from" usually reads
            said_when = bool(after) and after[0] in ("tomorrow", "today", "tonight", "onwards", "sharp", "o'clock",
                                                     "am", "pm")
            score -= 2 if before not in ("by", "from", "between") or said_when else 1
        if count_field and (before in _HAVE or (after and after[0] == "of" and not money)):
            score += 1  # "I've got three of the big ones", "we have eleven": the count held
        if after and after[0] in ("minute", "minutes", "mins", "hour", "hours", "sec", "seconds") and not (
                wanted & {"minute", "hour", "long", "duration", "wait", "time"}):
            score -= 3
        near = _within_clause(words[max(0, start - 4) : start], backwards=True) + _within_clause(words[end : end + 4])
        score += 1.5 * len({stem(w) for w in near} & (wanted - _UNIT_WORDS))
        if money_field and set(words[max(0, start - 3) : start]) & _LIMITS and not wanted & _LIMITS:
            score -= 2  # "up to a daily max of eighteen dollars": a limit, not what was asked
        if money_field:
            score += _sum_kind(words, start, end, total_asked=_is_kind(about_words, about, _TOTAL),
                               base_asked=_is_kind(about_words, about, _BASE))
        if 0 <= corrected_from <= start:
            # a correction replaces the figure before it; its first figure is the replacement
            score += 10 + (1 if not any(corrected_from <= c[1] < start for c in found) else 0)
            if _is_result(words, start):
                score += 2  # "hang on, Tom's just sold two, so four": the conclusion is the new figure
        if 0 <= contrast_from <= start:
            score += 2
        if score > best_score:
            best, best_score = (value, start, end), score
    assert best is not None
    value, start, end = best
    if best_score < 0 and free_at < 0:
        return None  # only a label, a time or a duration: "that's line two", "try again after nine"
    topic = wanted - _UNIT_WORDS
    after_contrast = free_at <= contrast_from <= start
    if free_at >= 0 and (best_score < 1 or (0 <= corrected_from <= free_at and start < corrected_from)
                         or (not after_contrast and _near_overlap(words, free_at - free_len, free_at, topic)
                             > _near_overlap(words, start, end, topic))):
        # "there's no charge": nothing figure-like answers the question, the free came as a correction, or
        # the free clause is the one about what was asked ("for children it's free, adults pay eight")
        return 0
    # "forty-nine dollars and ninety-nine cents", "four dollars eighty": the cents follow the dollars
    following = [c for c in found if c[1] > end]
    if following and end < len(words) and words[end] in ("dollar", "dollars", "buck", "bucks", "euro", "euros",
                                                         "pound", "pounds", "quid"):
        cents, start, cents_end, _ = following[0]
        said_cents = cents_end < len(words) and words[cents_end] in ("cents", "cent")
        bare = start == end + 1 and float(cents).is_integer() and 1 <= cents <= 99 and (
            cents_end >= len(words) or words[cents_end] not in _NON_MONEY_UNITS | set(_CURRENCY))
        if (start in (end + 1, end + 2) and said_cents) or bare:
            value += cents if said_cents else cents / 100
    value = round(value, 6)
    return int(value) if float(value).is_integer() else value


_WHEN_WORDS = frozenset(stem(w) for w in (
    "today tonight tomorrow yesterday morning afternoon evening night week weekend month year next last this "
    "monday tuesday wednesday thursday friday saturday sunday day time now later soon").split())


# "Is breakfast included?" - "Breakfast is extra": charged on top of what was asked about is a no.
_INCLUSION_ASKED = ("include", "included", "includes", "including", "inclusive", "come with", "comes with",
                    "part of", "covered", "cover", "covers", "complimentary")
_CHARGED_ON_TOP = ("extra", "on top", "additional charge", "additional cost", "additional fee", "separately",
                   "separate charge", "surcharge", "supplement", "add on", "charged for", "costs more",
                   "pay for it", "pay for that", "pay for those", "pay extra", "at a cost", "for a fee")
_INCLUDED = ("included", "includes", "including", "inclusive", "comes with", "come with", "part of")


def _charged_on_top(body: str, field: FieldSpec, question: str | None) -> bool:
    about = tokens(f"{field.name.replace('_', ' ')} {field.description or ''} {question or ''}")
    return has_any(about, _INCLUSION_ASKED) and has_any(body, _CHARGED_ON_TOP) and not has_any(body, _INCLUDED)


def extract_boolean(reply: str, field: FieldSpec, question: str | None = None) -> bool | None:
    body = " ".join(s for s in sentences(reply) if not is_stall(s)) or reply
    value = yes_no(body)
    if value is not None:
        return value
    if _charged_on_top(body, field, question):
        return False
    # "I'm free that Saturday" to "whether she is free that Saturday": the question's own words, not negated.
    # Words that only say when ("next week", "Saturday") do not count: "next week we're booked solid" is no yes.
    shared = content_words(body) & question_words(field, question) - _WHEN_WORDS
    negated = re.search(r"n't\b|\b(?:not|no|never|nobody|nothing|none)\b", fold(body))
    if shared and not negated and "?" not in body and not varies(body):
        return True
    return None


def extract(field: FieldSpec, reply: str, question: str | None = None, today: date | None = None,
            named: str = "") -> Any:
    """The field's value in ``reply`` (an answer to ``question``), or None when it holds none. With
    ``today`` (the call's date), a date said relative to it ("tomorrow") is given as a date. ``named``
    is what the call already said (its objective): a time's trailing "tomorrow" it named is dropped."""
    if is_refusal(reply) or is_who_is_this(reply):
        return None
    if is_unknown(reply) and not re.search(r"\d", reply) and field.type != "boolean":
        # "Fifty-five dollars? For two hours?" is an answer said like a question; "For how many?" is not
        said_as_money = field.type == "number" and any(c[3] for c in number_candidates(number_tokens(reply)))
        if has_any(reply, UNKNOWNS) or not said_as_money:
            return None
    if field.type == "boolean":
        if is_unknown(reply):
            # "I'm not sure, I'm afraid": only sentences that are not "I don't know" may answer
            rest = " ".join(s for s in sentences(reply) if not is_unknown(s))
            return extract_boolean(rest, field, question) if rest and yes_no(rest) is not None else None
        return extract_boolean(reply, field, question)
    if field.type == "number":
        return extract_number(reply, field, question)
    return extract_string(reply, field, question, today, named)
