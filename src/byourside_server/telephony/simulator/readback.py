"""How a scripted persona hears a read-back: each value is checked against what it said.

A read-back ("Just to confirm: table time, seven; and price, 85. Is that right?")
is split into items (";"-separated, "and" allowed); each item is matched to the
persona's fact whose keywords its words hit most. The item is wrong when the fact
has a ``value`` the item does not state, when it gives a yes/no the fact
contradicts, or when it names a figure the fact's answer does not contain; a
value said relative to the call ("the day after tomorrow") is stated by an item
naming that day as said or as its date ("Thursday, December 3"). The
first wrong item is corrected with the fact's ``correction`` (else "No, " and
the fact's answer); a read-back with nothing wrong gets "Yes, that's right."

``canonical`` (a value's written form reduced to what it says) is shared with
the eval scorer, so both compare values the same way. It is deliberately
independent of the agent's parsers: the callee must not share the agent's bugs.
"""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta, timezone
from typing import Any

from byourside_server.telephony.simulator.keywords import score, words
from byourside_server.telephony.simulator.scenarios import Fact, Persona

_NUMBER_WORDS = {w: str(i) for i, w in enumerate(
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen "
    "seventeen eighteen nineteen".split())}
_NUMBER_WORDS.update({w: str((i + 2) * 10) for i, w in enumerate(
    "twenty thirty forty fifty sixty seventy eighty ninety".split())})
_NUMBER_WORDS.update({w: str(i + 1) for i, w in enumerate(
    "first second third fourth fifth sixth seventh eighth ninth tenth eleventh twelfth thirteenth fourteenth "
    "fifteenth sixteenth seventeenth eighteenth nineteenth".split())})
_NUMBER_WORDS.update({"twentieth": "20", "thirtieth": "30"})
# Words that change how a value is written, not what it is: "at 7 pm" is "7", "Wednesday the 15th" is "wednesday 15".
_FORM_WORDS = frozenset("a an the at on from by of o'clock oclock clock am pm in morning afternoon evening "
                        "st nd rd th".split())


def canonical(text: Any) -> str:
    """Lower case, no punctuation, number words as digits ("twenty-four" -> "24", "hundred" multiplies),
    times without ":00", "till"/"until" as "to", and no am/pm, "o'clock" or leading "at"/"on"/"the"."""
    low = str(text).lower().replace("\u2019", "'").replace(",", "")
    low = re.sub(r"(\d):00\b", r"\1", low)
    low = re.sub(r"(\d):(\d\d)\b", r"\1 \2", low)  # "7:30" is "seven thirty"
    low = re.sub(r"(\d)(st|nd|rd|th|am|pm)\b", r"\1 \2", low)
    low = re.sub(r"(?<=[a-z])\.(?=\s|$)", " ", low)  # a sentence's full stop, not a decimal point
    low = re.sub(r"(?<=\d)\s*[-\u2013]\s*(?=\d)", " to ", low)  # "5-11" is "5 to 11"
    out: list[str] = []
    spoken = False  # out[-1] is a number said in words, which the next number word may extend
    for word in re.findall(r"[a-z0-9@.$']+", low.replace("-", " ")):
        word = word.strip(".'")
        if not word or word in _FORM_WORDS or (word == "and" and spoken):
            continue
        if word in ("till", "til", "until", "through", "thru"):
            word = "to"  # "eleven till four" is "eleven to four"
        if word in ("hundred", "thousand"):
            scale = 100 if word == "hundred" else 1000
            if spoken:
                last = int(out[-1])
                low_part = last % scale
                out[-1] = str(last - low_part + (low_part or 1) * scale)
            else:
                out.append(str(scale))
            spoken = True
            continue
        digits = _NUMBER_WORDS.get(word)
        if digits and spoken:
            last, value = int(out[-1]), int(digits)
            zeros = len(out[-1]) - len(out[-1].rstrip("0"))
            if zeros and value < 10 ** zeros:
                out[-1] = str(last + value)  # "twenty four" -> 24, "a hundred and forty-nine" -> 149
                continue
        out.append(digits or word)
        spoken = digits is not None
    return " ".join(out)


def _words(text: str) -> set[str]:
    return set(re.findall(r"[a-z0-9]+", text.lower()))


def _figures(text: str) -> set[str]:
    return {w.lstrip("$") for w in canonical(text).split() if re.fullmatch(r"\$?\d+(?:\.\d+)?", w)}


def _items(readback: str) -> list[str]:
    body = re.split(r"\bconfirm\b:?|\bread that back\b:?", readback, maxsplit=1, flags=re.IGNORECASE)[-1]
    body = re.split(r"[.?!]\s+(?:is that|did i|have i|is this|right\?)", body, flags=re.IGNORECASE)[0]
    parts = [re.sub(r"^\s*and\s+", "", p, flags=re.IGNORECASE).strip(" .") for p in body.split(";")]
    return [p for p in parts if p]


def _fact_for(persona: Persona, item: str) -> Fact | None:
    said = words(item)
    best, best_score = None, 0
    for fact in persona.facts:
        points = score(fact, said)
        if points > best_score:
            best, best_score = fact, points
    return best


def _yes_no(item: str) -> bool | None:
    said = _words(item.rsplit(",", 1)[-1])
    if said & {"yes", "true", "confirmed", "available"}:
        return True
    if said & {"no", "false", "not", "unavailable"}:
        return False
    return None


_RELATIVE_DAYS = (("the day after tomorrow", 2), ("day after tomorrow", 2), ("tomorrow", 1), ("today", 0),
                  ("tonight", 0), ("yesterday", -1))
_MONTHS = ("january february march april may june july august september october november december").split()


def _local_days(now: datetime) -> set[date]:
    """Every date it is somewhere on Earth at ``now`` (UTC-12 to UTC+14): the callee's "today" is one of them."""
    return {(now + timedelta(hours=hours)).date() for hours in (-12, 0, 14)}


def _states_relative_day(truth: str, item: str, now: datetime) -> bool | None:
    """For a value said relative to the call ("the day after tomorrow"): whether the read-back names that
    day (as said, as an ISO date, or as "December 3"); None when ``truth`` is not relative."""
    low = truth.lower()
    offset = next((days for words, days in _RELATIVE_DAYS if re.search(rf"\b{words}\b", low)), None)
    if offset is None:
        return None
    said = canonical(item)
    if canonical(truth) in said:
        return True
    for today in _local_days(now):
        day = today + timedelta(days=offset)
        if day.isoformat() in item or f"{_MONTHS[day.month - 1]} {day.day}" in said \
                or f"{day.day} {_MONTHS[day.month - 1]}" in said:
            return True
    return False


def item_is_wrong(fact: Fact, item: str, now: datetime | None = None) -> bool:
    """Whether a read-back item misstates ``fact`` (``now``: the time of the call, for "tomorrow")."""
    truth = fact.value if fact.value is not None else fact.yes_no
    if isinstance(truth, bool):
        said = _yes_no(item)
        return said is not None and said is not truth
    if truth is not None:
        if isinstance(truth, (int, float)):
            return not any(abs(float(f) - float(truth)) < 0.005 for f in _figures(item))
        relative = _states_relative_day(str(truth), item, now or datetime.now(timezone.utc))
        if relative is not None:
            return not relative
        return canonical(truth) not in canonical(item)
    return False  # no stated value: the persona cannot tell, so it does not object


def answer_readback(persona: Persona, readback: str) -> str:
    """The persona's reply to a read-back of values."""
    if persona.readback == "agree":
        return "Yes, that's right."
    for item in _items(readback):
        fact = _fact_for(persona, item)
        if fact is not None and item_is_wrong(fact, item):
            return fact.correction or f"No, that's not right. {fact.answer}"
    return "Yes, that's right."
