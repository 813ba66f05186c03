"""String values: the words of the value inside a reply, by the kind of value asked for.

The kind is read from the field's name and description (an email address, a
reference code, an address, a duration, a name, a time, a day or date, or any
other text); the finders in ``spans`` pick the value's own words, and anything
else falls back to the informative part of the answering clause ("smart
casual" from "It's smart casual, there's no strict dress code").
"""

from __future__ import annotations

import re
from datetime import date

from byourside_server.agent.understanding.context import content_words, is_stall, question_words, stem
from byourside_server.agent.understanding.replies import is_greeting, yes_no
from byourside_server.agent.understanding.words import after_last_correction, fold, has_any, sentences, tokens
from byourside_server.domain import FieldSpec

_KINDS = (
    ("email", ("email", "e-mail", "mail address")),
    ("code", ("reference", "code", "confirmation number", "booking number", "order number", "tracking number",
              "ticket number", "reference number", "booking id", "order id", "policy number", "account number")),
    ("address", ("address", "located", "location", "where")),
    ("duration", ("how long", "wait", "duration", "waiting time", "turnaround", "lead time", "take")),
    ("name", ("name", "surname", "who", "technician", "contact person", "person", "manager", "doctor")),
    ("time", ("time", "hours", "hour", "open", "opens", "opening", "close", "closes", "closing", "until",
              "ready", "when", "arrive", "arrival", "start", "starts", "leave", "leaves", "departure", "pickup",
              "check-in", "check in", "check-out")),
    ("date", ("day", "date", "when", "which day", "weekday", "deadline", "due", "appointment")),
)
_LEAD_IN = re.compile(
    r"^(?:(?:oh|ah|um+|uh+|well|okay|ok|so|sure|right|yes|yeah|yep|no|alright|great|good|of course)[\s,.!]+)*"
    r"(?:it's|it is|that's|that is|that would be|that'd be|they're|they are|we're|we are|it'll be|it will be|"
    r"you're looking at|you'd be looking at|i'd say|i think|i believe|"
    r"(?:i'd|i would|we'd|we would|i'll|we'll)\s+(?:go with|recommend|suggest|say|choose|pick|go for)|"
    r"(?:you'd|you'll|you would|you will)\s+(?:want|need)|you want|you need|go with|go for)?\s*", re.IGNORECASE)
_TOPIC_LEAD = re.compile(r"^(?:for|with|on|in|about|regarding)\s+([\w' -]{1,40}?),?\s+(?=(?:i'd|i would|we'd|we would|"
                         r"you'd|you'll|you|it's|it is|that's|we|i|they|the)\b)", re.IGNORECASE)
_COPULA = re.compile(r"^(.{3,60}?)\s+(?:is|are|was|will be|would be|'s|comes to|costs?)\s+(.+)$", re.IGNORECASE)


def string_kind(field: FieldSpec) -> str:
    about = fold(f"{re.sub(r'(?<=[a-z0-9])(?=[A-Z])', ' ', field.name).replace('_', ' ')} {field.description or ''}")
    words = set(tokens(about))
    for kind, cues in _KINDS:
        if any((c in about) if " " in c or "-" in c else (c in words) for c in cues):
            return kind
    return "text"


def _generic(text: str, wanted: set[str]) -> str | None:
    parts = [s for s in sentences(text) if not is_stall(s)]
    if not parts:
        return None
    scored = sorted(parts, key=lambda s: -len(content_words(s) & wanted))
    sentence = scored[0] if content_words(scored[0]) & wanted else parts[0]
    sentence = sentence.strip().rstrip(".!?\u2026 ")
    if ":" in sentence and not re.search(r"\d:\d", sentence):
        sentence = sentence.split(":", 1)[1].strip() or sentence
    pieces = re.split(r",\s*", sentence)
    while len(pieces) > 1 and (is_stall(pieces[0]) or is_greeting(pieces[0])):  # "Ooh, good question, um, it's ..."
        pieces.pop(0)
    if len(pieces) == 1 and is_greeting(pieces[0]):
        return None
    sentence = ", ".join(pieces)
    topic = _TOPIC_LEAD.match(sentence)
    if topic and (content_words(topic.group(1)) <= wanted or _LEAD_IN.match(sentence[topic.end():]).group(0)):
        sentence = sentence[topic.end():]  # "For garden waste I'd go with the midi skip"
    sentence = _LEAD_IN.sub("", sentence, count=1).strip()
    copula = _COPULA.match(sentence)
    if copula and content_words(copula.group(1)) & wanted:
        sentence = copula.group(2)
    first = re.split(r",\s+|\s+[-\u2013\u2014]\s+", sentence, maxsplit=1)[0].strip()
    value = first if len(first.split()) >= 1 else sentence
    return value.strip(" ,.;:!?") or None


def extract_string(reply: str, field: FieldSpec, question: str | None = None, today: date | None = None,
                   named: str = "") -> str | None:
    from byourside_server.agent.understanding import spans

    wanted = question_words(field, question)
    kind = string_kind(field)
    body = " ".join(s for s in sentences(reply) if not is_stall(s)) or reply
    focus = after_last_correction(body)
    if kind == "email":
        return spans.email(focus) or spans.email(reply)
    simple = {"code": spans.code, "address": spans.address, "duration": spans.duration}.get(kind)
    if simple is not None:
        found = simple(focus) or simple(body)
        if found:
            return found
    if kind == "name":
        about = fold(f"{field.name.replace('_', ' ')} {field.description or ''}")
        first_name = "first name" in about or "given name" in about
        surname = "surname" in about or "last name" in about
        found = (spans.name(focus, surname=surname, first_name=first_name)
                 or spans.name(reply, surname=surname, first_name=first_name))
        if found:
            return found
        rest = _generic(focus, wanted)
        # no name was said the way names are ("She's away this week"): nothing, rather than a sentence
        return rest if rest and _looks_like_a_name(rest) else None
    about = set(tokens(f"{field.name.replace('_', ' ')} {field.description or ''}"))
    clock_only = kind == "time" and bool(about & {"time", "o'clock", "hour", "hours"}) and not about & {"day", "date"}
    # "the day the suit will be ready": a day asked, though "ready" usually asks for a time
    day_only = kind == "time" and bool(about & {"day", "date", "weekday"}) and not about & {
        "time", "o'clock", "hour", "hours"}
    finders = {"time": (spans.times,) if clock_only else (spans.dates, spans.times) if day_only
               else (spans.times, spans.dates),
               "date": (spans.dates, spans.times)}.get(kind, ())
    for finder in finders:
        for text in (focus, body) if focus != body else (body,):
            found = spans.best_span(finder(text), text, wanted, stem, known=wanted | content_words(named))
            if found:
                if finder is spans.times:
                    return _opening_to_closing(text, field) or _range_end(found, field)
                return spans.absolute_date(found, today) if today else found
    if finders and yes_no(focus) is False:
        return None  # "we won't be opening tomorrow at all": no time to give
    rest = _generic(focus, wanted)
    asks_when = bool(about & {"time", "day", "date", "when", "hours", "weekday", "deadline"})
    if finders and asks_when and rest and not has_any(rest, _WHEN_WORDS):
        return None  # a time or a day was asked and none was said ("Two secs, I'm just pulling it up")
    return rest


# What a time or a day said without a clock or a date sounds like ("after lunch", "first thing next week").
_WHEN_WORDS = ("morning", "afternoon", "evening", "night", "tonight", "today", "tomorrow", "lunch", "lunchtime",
               "noon", "midday", "midnight", "week", "weekend", "month", "year", "soon", "later", "now", "asap",
               "first thing", "end of", "close of", "start of", "beginning of", "middle of", "early", "late",
               "dinner", "breakfast", "teatime", "o'clock", "anytime", "any time", "whenever", "open", "close",
               "closing", "opening", "dawn", "dusk", "spring", "summer", "autumn", "fall", "winter", "christmas",
               "easter", "holiday", "holidays", "fortnight", "hour", "hours", "minute", "minutes", "day", "days",
               "ish")


_NAME_WORD = re.compile(r"(?:[A-Z][\w'-]*|(?:de|van|von|da|di|le|la|bin|al)\b)")


def _looks_like_a_name(text: str) -> bool:
    """One to four words, each written the way a name is ("Siobhan", "Mary Ann", "Ludwig van Beethoven")."""
    parts = text.split()
    return 1 <= len(parts) <= 4 and all(_NAME_WORD.fullmatch(p) for p in parts) and not parts[0].startswith("I'")


def _opening_to_closing(text: str, field: FieldSpec) -> str | None:
    """Hours asked, and said as "we open at nine and close at six": "nine to six"."""
    from byourside_server.agent.understanding import spans

    about = set(tokens(f"{field.name.replace('_', ' ')} {field.description or ''}"))
    if not about & {"hours", "hour"}:
        return None
    found = spans.times(text)
    opening = [s for _, _, s in found if re.match(r"opens?\b", s, flags=re.IGNORECASE)]
    closing = [s for _, _, s in found if re.match(r"(?:close[sd]?|shuts?)\b", s, flags=re.IGNORECASE)]
    if not opening or not closing:
        return None
    return f"{spans.clean(opening[0])} to {spans.clean(closing[0])}"


def _range_end(span: str, field: FieldSpec) -> str:
    """From "five to eleven", the closing time when that is what was asked, the opening time likewise."""
    about = set(tokens(f"{field.name.replace('_', ' ')} {field.description or ''}"))
    parts = re.split(r"\s+(?:to|till|til|until|through)\s+|\s*[-\u2013]\s*", span, maxsplit=1)
    if len(parts) != 2 or about & {"hours", "hour", "range"}:
        return span
    if re.search(r"(?:quarter|half|twenty|twenty[ -]five)$", parts[0].strip(), flags=re.IGNORECASE):
        return span  # "quarter to eight" is one time
    if about & {"close", "closes", "closing", "shut", "shuts", "end", "ends", "finish", "finishes", "until"}:
        return spans_clean(parts[1])
    if about & {"open", "opens", "opening", "start", "starts", "begin", "begins"}:
        return spans_clean(parts[0])
    return span


def spans_clean(text: str) -> str:
    from byourside_server.agent.understanding.spans import clean

    return clean(re.sub(r"^from\s+", "", text.strip(), flags=re.IGNORECASE))
