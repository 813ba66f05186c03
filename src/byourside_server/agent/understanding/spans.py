"""The words of a string value inside a reply: a time, a day or date, an email address,
a name, or (for anything else) the informative part of the answering clause.

Each finder returns candidate spans with the clause they sit in; ``best_span``
picks the one whose clause shares most words with the question, preferring
what follows a correction or a "but", then the earliest.
"""

from __future__ import annotations

import re
from datetime import date, timedelta
from typing import Callable, Iterable

from byourside_server.agent.understanding.replies import yes_no
from byourside_server.agent.understanding.words import fold, tokens

_HOUR_WORDS = "one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve"
_MINUTE_WORDS = r"oh[ -](?:one|two|three|four|five|six|seven|eight|nine)|fifteen|thirty|forty[ -]five|forty|twenty|" \
                r"twenty[ -]five|ten|fifty|fifty[ -]five|forty[ -]five|thirty[ -]five|twenty[ -]five"
_H = rf"(?:\d{{1,2}}(?:[:.]\d{{2}})?|{_HOUR_WORDS}|noon|midday|midnight)"
_SUFFIX = r"(?:\s*(?:a\.?m\.?|p\.?m\.?)|\s+o'clock|\s+in the (?:morning|afternoon|evening)|\s+at night|\s+sharp)"
_FRACTION = (rf"(?:(?:half|quarter|ten|twenty|five|twenty[ -]five)\s+(?:past|to|after|til|till)\s+{_H}"
             rf"|half\s+(?:{_HOUR_WORDS}))")  # "half seven" is 7:30
_CLOCK = rf"(?:{_FRACTION}|{_H}(?:(?:\s+|-)(?:{_MINUTE_WORDS}))?)"  # "four thirty", "four-thirty"
_DAY = r"(?:monday|tuesday|wednesday|thursday|friday|saturday|sunday)s?"
_WHEN_AFTER = rf"(?:\s+(?:today|tomorrow|tonight|this (?:morning|afternoon|evening)|on {_DAY}|{_DAY}))?"
_RANGE = (rf"(?:from\s+)?{_CLOCK}{_SUFFIX}?\s*(?:to|till|til|until|through|-|\u2013)\s*{_CLOCK}{_SUFFIX}?"
          rf"|between\s+{_CLOCK}{_SUFFIX}?\s+and\s+{_CLOCK}{_SUFFIX}?")
_LEAD = (r"(?:(?:after|before|around|about|by|from|at|until|till|til|not until|no later than|opens? at|"
         r"close[sd]? at)\s+)")
_TIME = re.compile(
    rf"(?<![\w'])(?:{_RANGE}|(?:{_LEAD})?{_FRACTION}{_SUFFIX}?|{_LEAD}{_CLOCK}{_SUFFIX}?|{_CLOCK}{_SUFFIX}|"
    rf"\d{{1,2}}[:.]\d{{2}}{_SUFFIX}?|(?:{_HOUR_WORDS})[ -](?:{_MINUTE_WORDS}){_SUFFIX}?|noon|midday|midnight)"
    rf"{_WHEN_AFTER}(?![\w'])")
_ORDINAL = (r"(?:\d{1,2}(?:st|nd|rd|th)|first|second|third|fourth|fifth|sixth|seventh|eighth|ninth|tenth|eleventh|"
            r"twelfth|thirteenth|fourteenth|fifteenth|sixteenth|seventeenth|eighteenth|nineteenth|twentieth|"
            r"twenty[ -](?:first|second|third|fourth|fifth|sixth|seventh|eighth|ninth)|thirtieth|thirty[ -]first)")
_MONTH = r"(?:january|february|march|april|may|june|july|august|september|october|november|december)"
_PART = r"(?:\s+(?:morning|afternoon|evening|night|lunchtime))?"
# An ordinal in words is a date only with "the" or a month ("the fifth", "fifth of May"): "first thing" is none.
_DATE = re.compile(
    rf"(?<![\w'])(?:(?:(?:this|next|on)\s+)?{_DAY}{_PART}(?:,?\s+(?:the\s+)?{_ORDINAL}(?:\s+of\s+{_MONTH})?)?"
    rf"|the\s+{_ORDINAL}(?:\s+of\s+{_MONTH})?|\d{{1,2}}(?:st|nd|rd|th)(?:\s+of\s+{_MONTH})?"
    rf"|{_ORDINAL}\s+of\s+{_MONTH}|{_MONTH}\s+(?:the\s+)?{_ORDINAL}|{_MONTH}\s+\d{{1,2}}"
    rf"|the day after tomorrow|tomorrow{_PART}|today|tonight|next week|this week|end of (?:the )?(?:day|week|month)"
    rf"|\d{{4}}-\d{{2}}-\d{{2}}|\d{{1,2}}/\d{{1,2}}(?:/\d{{2,4}})?)(?!\w|'(?!s\b))")  # "Friday's the earliest"
_LETTERS = re.compile(r"(?<![\w'])([a-z])(?:\s*[-,.]?\s*(?:as in \w+\s*[-,.]?\s*)?([a-z])(?![\w']))+")


def _spans(pattern: re.Pattern[str], text: str) -> list[tuple[int, int, str]]:
    low = fold(text)
    return [(m.start(), m.end(), text[m.start() : m.end()]) for m in pattern.finditer(low)]


def times(text: str) -> list[tuple[int, int, str]]:
    return _spans(_TIME, text)


def dates(text: str) -> list[tuple[int, int, str]]:
    return _spans(_DATE, text)


_DROPPED_LEAD = re.compile(
    r"^(?:(?:opens?|close[sd]?|shuts?)\s+at|not until|until|till|til|around|about|at|on|from)\s+", re.IGNORECASE)


def clean(span: str, wanted: set[str] = frozenset()) -> str:  # type: ignore[assignment]
    """A span without a lead that does not change the value ("at", "on", "from", "until", "opens at"),
    without a trailing day the question already names ("eight to four on Saturday" for Saturday hours,
    "eight tonight" for tonight's closing time), and without trailing punctuation."""
    span = _DROPPED_LEAD.sub("", span.strip())
    trailing = re.search(rf"\s+(?:on\s+)?({_DAY})$", span, flags=re.IGNORECASE)
    if trailing and trailing.start() > 0 and fold(trailing.group(1)).rstrip("s") in wanted:
        span = span[: trailing.start()]
    # "eight tonight" when the question asked about tonight: the time is "eight"
    when = re.search(r"\s+(today|tonight|tomorrow|this (?:morning|afternoon|evening))$", span, flags=re.IGNORECASE)
    if when and when.start() > 0 and fold(when.group(1)).split()[-1] in wanted:
        span = span[: when.start()]
    return span.strip(" ,.;:!?")


def best_span(spans: Iterable[tuple[int, int, str]], text: str, wanted: set[str], stem,  # noqa: ANN001
              known: set[str] | None = None) -> str | None:
    """The span whose clause shares most words with the question; later after a correction or "but".
    ``known``: words the call already said, whose trailing day the span need not repeat."""
    from byourside_server.agent.understanding.words import clauses

    spans_list = list(spans)
    spans = spans_list
    parts = clauses(text)
    low = fold(text)
    offsets: list[tuple[int, int, object]] = []
    cursor = 0
    for part in parts:
        at = low.find(fold(part.text), cursor)
        if at < 0:
            continue
        offsets.append((at, at + len(part.text), part))
        cursor = at
    best, best_score = None, -1.0
    for start, end, span in spans:
        clause = next((p for a, b, p in offsets if a <= start < b), None)
        span_words = {stem(w) for w in tokens(span) if w.isalpha() and w not in ("at", "on", "the", "of")}
        score = 3.0 * len(span_words & wanted)  # "close at six" for a closing time
        if span_words and span_words <= wanted and len(spans_list) > 1:
            score -= 8  # only repeats the question ("the next free Saturday is ..."): not the answer
        if clause is not None:
            clause_words = {stem(w) for w in tokens(clause.text)}  # type: ignore[attr-defined]
            score += 2 * len(clause_words & wanted)
            if yes_no(clause.text) is False:  # type: ignore[attr-defined]
                score -= 3  # "we're fully booked this week, so next Tuesday": not the negated one
            score += 3 if clause.corrected else 0  # type: ignore[attr-defined]
            score += 1 if clause.contrasted else 0  # type: ignore[attr-defined]
        score += _nearness(low[:start], wanted, stem)
        if score > best_score:
            best, best_score = span, score
    return clean(best, known if known is not None else wanted) if best else None


_SEGMENT_END = frozenset((",", ".", ";", ":", "!", "?", "and", "but", "then", "or"))


def _nearness(before: str, wanted: set[str], stem: Callable[[str], str]) -> float:
    """How close before a span the question's words are said, within its part of the sentence:
    "we open at ten and shut the doors at four" gives "four" to the closing time, "ten" to the opening."""
    score = 0.0
    for distance, word in enumerate(reversed(tokens(before)[-5:]), start=1):
        if word in _SEGMENT_END:
            break
        if stem(word) in wanted:
            score += (6 - distance) * 0.3
    return score


_RELATIVE_DAYS = {"today": 0, "tonight": 0, "tomorrow": 1, "the day after tomorrow": 2, "day after tomorrow": 2,
                  "yesterday": -1}


def absolute_date(span: str, today: date) -> str:
    """"tomorrow morning" -> "2026-12-02 morning" when today is 2026-12-01; other spans unchanged."""
    low = fold(span).strip()
    for words, offset in sorted(_RELATIVE_DAYS.items(), key=lambda item: -len(item[0])):
        if low == words or low.startswith(words + " "):
            rest = span.strip()[len(words):].strip()
            iso = (today + timedelta(days=offset)).isoformat()
            return f"{iso} {rest}".strip()
    return span


# --- email addresses --------------------------------------------------------

_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
_SPOKEN_SEPARATORS = {"dot": ".", "period": ".", "point": ".", "underscore": "_", "dash": "-", "hyphen": "-"}


# Words before the digits of an address that are not part of it ("it's 72 at ...", "email 72 at ...").
_NOT_LOCAL = frozenset("it s is its me to email mail address the at on send number was be".split())


def email(text: str) -> str | None:
    """A written or spoken email address: "j dot okafor at harbor mail dot com" -> "j.okafor@harbormail.com"."""
    written = _EMAIL.search(text)
    if written:
        return written.group(0).lower().rstrip(".")
    # "all one word", "that's all lower case": how it is written, not part of it
    plain = re.sub(r"\b(?:(?:that's|that is|it's|it is|all|written|as|in)\s+){0,3}"
                   r"(?:one word|lower ?case|no spaces|small letters)\b", " ", fold(text))
    words = re.findall(r"[a-z0-9]+|-", plain)
    for i, word in enumerate(words):
        if word != "at" or i == 0 or i + 1 >= len(words) or "dot" not in words[i + 1 : i + 9]:
            continue
        # local part: the word before "at", extended leftwards over "<word> dot" pairs and spelled letters
        j = i - 1
        local = [words[j]]
        while j - 1 >= 0:
            if j - 2 >= 0 and words[j - 1] in _SPOKEN_SEPARATORS:
                local = [words[j - 2], _SPOKEN_SEPARATORS[words[j - 1]], *local]
                j -= 2
            elif len(words[j - 1]) == 1 and len(local[0]) == 1 and words[j - 1] not in ("a", "i"):
                local = [words[j - 1], *local]  # "z. k. at ..." spells "zk"
                j -= 1
            elif local[0].isdigit() and words[j - 1].isalpha() and words[j - 1] not in _NOT_LOCAL:
                local = [words[j - 1], *local]  # "baker 72 at ..." is "baker72"
                j -= 1
            else:
                break
        # domain: up to three words before the first separator, then "dot/dash <word>" pairs
        k = i + 1
        label: list[str] = []
        # spelled letters ("K L M builders", "k-l-m builders") count as one word of the name
        while k < len(words) and words[k] not in _SPOKEN_SEPARATORS and len([w for w in label if len(w) > 1]) < 3:
            if words[k] != "-" or not label or len(label[-1]) != 1:
                label.append(words[k])
            k += 1
        domain = "".join(label)
        while k + 1 < len(words) and words[k] in _SPOKEN_SEPARATORS and words[k + 1] not in _SPOKEN_SEPARATORS:
            if words[k] != "dot" and "." in domain:
                break  # "dash" after the top-level domain is not part of it
            domain += _SPOKEN_SEPARATORS[words[k]] + words[k + 1]
            k += 2
        if label and "." in domain:
            return "".join(local) + "@" + domain
    return None


# --- names ------------------------------------------------------------------


def spelled_word(text: str) -> str | None:
    """A word spelled out letter by letter ("N-G-U-Y-E-N", "B as in bravo, O, ..."), as the reply
    wrote it when it also says the word, else capitalised."""
    found = _spelled(text)
    return found[0] if found else None


def _spelled(text: str) -> tuple[str, int, int, bool] | None:
    """The spelled word, where its letters start and end in ``text``, and whether the word itself was
    said before them ("Siobhan, that's S, I, O, ...")."""
    low = fold(text)
    best, best_start, best_end = "", -1, -1
    for m in _LETTERS.finditer(low):
        letters = "".join(re.findall(r"(?<![\w'])([a-z])(?![\w'])", re.sub(r"as in \w+", " ", m.group(0))))
        if len(letters) >= 3 and len(letters) > len(best):
            best, best_start, best_end = letters, m.start(), m.end()
    if not best:
        return None
    said = re.search(rf"\b({best})\b", low)
    if said:
        return text[said.start(1) : said.end(1)], best_start, best_end, said.start(1) < best_start
    return best.capitalize(), best_start, best_end, False


# "Siobhan, that's S, I, O, B, H, A, N, Kelleher": the surname said straight after the spelling
_SURNAME_AFTER = re.compile(r"^\s*,?\s*([A-Z][\w'-]+)\b(?!\s*[.?!]?\s*[a-z])")


_TITLE_NAME = re.compile(r"\b((?:Dr|Doctor|Mr|Mrs|Ms|Miss|Professor|Prof)\.?\s+[A-Z][\w'-]+)")
_NAME_CUE = re.compile(
    r"(?:surname|last name|family name|first name|name)(?:\s+is|'s|:)?\s+([A-Z][\w'-]+(?:\s+[A-Z][\w'-]+)?)")
_IS_NAME = re.compile(r"(?i:\bis|it's|this is|speaking to|ask for|called|named|call it|goes by|that'll be|that will be|"
                      r"that would be|that'd be|it'll be|you want|talk to|speak to|see|be with|booked in with|"
                      r"booked with|you're with|you are with|seeing|looked after by|handled by|dealt with by)\s+"
                      r"([A-Z][\w'-]+(?:\s+[A-Z][\w'-]+)*)")


_NOT_SURNAME = frozenset("is was will would she he they speaking here there".split())


def name(text: str, surname: bool, first_name: bool = False) -> str | None:
    spelled = _spelled(text)
    if spelled:
        word, _, end, said_first = spelled
        then = _SURNAME_AFTER.match(text[end:])
        if said_first and then and fold(then.group(1)) not in _NOT_SURNAME and not first_name:
            return then.group(1) if surname else f"{word} {then.group(1)}"
        return word
    found = [(m.start(1), m.group(1)) for pattern in (_TITLE_NAME, _NAME_CUE, _IS_NAME) for m in pattern.finditer(text)
             if not re.fullmatch(r"(?:Dr|Doctor|Mr|Mrs|Ms|Miss|Professor|Prof)\.?", m.group(1))]
    if not found:
        return None
    found.sort(key=lambda item: (item[0], -len(item[1])))  # the fullest name at each place
    # "Mrs. Patel had it last year, but this year it's Mr. Osei": a later name after "but" or a correction wins
    turn = max((m.end() for m in re.finditer(r"\b(?:but|however|actually|now|no wait|i mean|sorry)\b", fold(text))),
               default=-1)
    after_turn = [item for item in found if item[0] >= turn] if turn >= 0 else []
    chosen = (after_turn or found)[0][1]
    # "Priya, Priya Raman": a name said again in full right after is the fuller answer
    fuller = re.search(rf"\b{re.escape(chosen)},?\s+{re.escape(chosen)}\s+([A-Z][\w'-]+)", text)
    if fuller and fold(fuller.group(1)) not in _NOT_SURNAME:
        chosen = f"{chosen} {fuller.group(1)}"
    if not _TITLE_NAME.fullmatch(chosen) and surname and " " in chosen:
        return chosen.split()[-1]
    return chosen


# --- addresses, durations, codes ----------------------------------------------

_STREET = (r"(?:Street|St|Road|Rd|Avenue|Ave|Lane|Ln|Way|Drive|Boulevard|Blvd|Place|Pl|Square|Sq|Court|Ct|"
           r"Terrace|Close|Crescent|Parade|Highway|Hwy|Row|Walk|Hill|Park|Gardens|Mews|Quay|Wharf)")
_ADDRESS = re.compile(rf"\b\d+[A-Za-z]?,?\s+(?:[A-Z][\w'-]*\s+){{1,3}}{_STREET}\b\.?")
_DURATION = re.compile(
    r"(?<![\w'])(?:(?:about|around|roughly|maybe|at least|at most|up to)\s+)?"
    r"(?:half an hour|an hour and a half|an hour|a couple of (?:minutes|hours|days|weeks)"
    r"|a few (?:minutes|hours|days|weeks)"
    r"|(?:\d+|[a-z]+(?:-[a-z]+)?)(?:\s*(?:to|-|or)\s*(?:\d+|[a-z]+(?:-[a-z]+)?))?(?: and a half)?\s+"
    r"(?:minutes?|mins?|hours?|hrs?|days?|working days|weeks?|months?))"
    r"(?![\w'])", re.IGNORECASE)
_CODE = re.compile(r"(?<![\w'])((?:[A-Za-z0-9](?:\s*[-.,]\s*|\s+)){2,}[A-Za-z0-9])(?![\w'])")


def address(text: str) -> str | None:
    found = _ADDRESS.search(text)
    return found.group(0).strip(" .,") if found else None


def duration(text: str) -> str | None:
    found = [m.group(0) for m in _DURATION.finditer(text) if re.search(
        r"\d|half|hour|minute|day|week|month|one|two|three|four|five|six|seven|eight|nine|ten|twenty|thirty|forty"
        r"|fifty|sixty|couple|few", m.group(0), re.IGNORECASE)]
    return found[-1] if found else None


def code(text: str) -> str | None:
    """A reference read out character by character ("B-K-7-4-2" -> "BK742"), or a written one ("BK742")."""
    for m in _CODE.finditer(text):
        chars = re.findall(r"[A-Za-z0-9]", m.group(1))
        if len(chars) >= 3 and all(len(part) == 1 for part in re.split(r"[\s,.-]+", m.group(1).strip()) if part):
            return "".join(chars).upper()
    written = re.search(r"\b(?=[A-Z0-9]*\d)(?=[A-Z0-9]*[A-Z])[A-Z0-9]{4,}\b", text)
    return written.group(0) if written else None
