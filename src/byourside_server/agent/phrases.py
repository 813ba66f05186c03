"""What the offline agent says, and the cues it listens for.

Sentences are templates filled from the call task; nothing here is generated or
invented. Recognisers are plain phrase lists over lower-cased text, so their
behaviour can be read (and tested) line by line.
"""

from __future__ import annotations

import re
from datetime import date
from typing import Any, Iterable

from byourside_server.agent.understanding import replies as hear
from byourside_server.agent.understanding.words import sentences, tokens
from byourside_server.domain import CallTask, FieldSpec

# --- what we say ----------------------------------------------------------

_VERBS = frozenset(
    "ask find check confirm book schedule reschedule cancel get see learn request inquire enquire verify "
    "order reserve make tell let determine obtain collect discover arrange update notify remind inform pay "
    "buy follow leave place set change know understand figure compare negotiate report explain".split()
)
_PRONOUNS = {"they": "you", "them": "you", "their": "your", "theirs": "yours", "they're": "you're",
             "they've": "you've", "they'll": "you'll", "they'd": "you'd", "themselves": "yourselves"}
_DETERMINERS = frozenset("whether if how what when where which who why the a an your their its any my our this that these those".split())


# The AI disclosure every call opens with; an account may word it its own way ("{name}" is its display
# name) but never drop it: wording that does not say it is an AI is refused when set, and ignored here.
AI_DISCLOSURE = "Hi, this is an AI assistant calling on behalf of {name}."
RECORDING_NOTICE = "This call is recorded."
# "AI" and its abbreviations in other languages (upper case: "ai" is a word in Italian), or the words in full.
_AI_ABBREVIATION = re.compile(r"\b(?:A\.?I|K\.?I|I\.?A)\b")
_AI_IN_FULL = re.compile(r"\b(?:artificial intelligence|künstliche intelligenz|intelligence artificielle|"
                         r"inteligencia artificial|intelligenza artificiale|inteligência artificial)\b", re.IGNORECASE)
_NAME_SLOT = "{name}"


def says_ai(wording: str) -> bool:
    """Whether disclosure wording tells the callee they speak with an AI (the display name aside)."""
    text = wording.replace(_NAME_SLOT, " ")
    return bool(_AI_ABBREVIATION.search(text) or _AI_IN_FULL.search(text))


def disclosure(task: CallTask) -> str:
    """The AI disclosure in the account's wording, or the standard one when it has none (or none that says AI)."""
    wording = task.ai_disclosure if task.ai_disclosure and says_ai(task.ai_disclosure) else AI_DISCLOSURE
    return " ".join(wording.replace(_NAME_SLOT, task.account_name).split())


def greeting(task: CallTask) -> str:
    """The first words to anyone who answers: the AI disclosure, then the recording notice when it is due."""
    return f"{disclosure(task)} {RECORDING_NOTICE}" if task.recording_notice else disclosure(task)


def _to_second_person(text: str) -> str:
    """The client writes about the callee as "they"; we speak to them as "you"."""
    return re.sub(r"\b(?:they're|they've|they'll|they'd|themselves|theirs|their|them|they)\b",
                  lambda m: _PRONOUNS[m.group(0).lower()], text, flags=re.IGNORECASE)


def _lower_first(text: str) -> str:
    if len(text) > 1 and text[1].isupper():  # an acronym or "I"
        return text
    return text[:1].lower() + text[1:]


def purpose(objective: str) -> str:
    """One sentence stating why we call, from the objective's first sentence."""
    first = (sentences(objective) or [objective.strip()])[0].rstrip(".!? ")
    first = re.sub(r"^please\s+", "", first, flags=re.IGNORECASE)
    first = re.sub(r"^call\b[^,.]*?\b(?:and|to)\s+", "", first, flags=re.IGNORECASE)  # "Call X and ask ..."
    first = _to_second_person(first)
    if first.split(" ", 1)[0].lower() in _VERBS:
        return f"I'm calling to {_lower_first(first)}."
    return f"I'm calling about this: {first}."


def field_words(name: str) -> str:
    """``table_available`` / ``tastingMenuPrice`` -> "table available" / "tasting menu price"."""
    spaced = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", " ", name).replace("_", " ").replace("-", " ")
    return " ".join(spaced.lower().split())


def question_for(field: FieldSpec) -> str:
    description = _to_second_person((field.description or "").strip().rstrip(". "))
    if description.endswith("?"):
        return description[:1].upper() + description[1:]
    if description:
        first = description.split(" ", 1)[0].lower()
        if first in _DETERMINERS:
            return f"Could you tell me {_lower_first(description)}?"
        if field.type == "boolean":
            return f"Quick yes or no: {_lower_first(description)}?"
        return f"Could you tell me the {_lower_first(description)}?"
    if field.type == "boolean":
        return f"Quick yes or no: {field_words(field.name)}?"
    return f"Could you tell me the {field_words(field.name)}?"


def reask(question: str, they_do_not_know: bool = False) -> str:
    if they_do_not_know:
        return f"No problem. Could you check for me, please? {question}"
    return f"Sorry, I didn't quite get that. {question}"


_ISO_DAY = re.compile(r"(\d{4})-(\d{2})-(\d{2})(?:\s+(.+))?")


def spoken_date(value: str) -> str | None:
    """"2026-12-03 morning" as said aloud, "Thursday, December 3, morning"; None for anything else."""
    found = _ISO_DAY.fullmatch(value.strip())
    if not found:
        return None
    try:
        day = date(int(found.group(1)), int(found.group(2)), int(found.group(3)))
    except ValueError:
        return None
    said = f"{day:%A}, {day:%B} {day.day}"
    return f"{said}, {found.group(4)}" if found.group(4) else said


def format_value(value: Any, aloud: bool = False) -> str:
    """A value in a sentence; ``aloud`` for speech (a date as "Thursday, December 3", not "2026-12-03")."""
    if aloud and isinstance(value, str) and spoken_date(value):
        return spoken_date(value)  # type: ignore[return-value]
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:,.2f}".rstrip("0").rstrip(".")
    if isinstance(value, int):
        return f"{value:,}"
    return f'"{value}"'


def listing(pairs: Iterable[tuple[str, Any]], sep: str = ", ", aloud: bool = False) -> str:
    items = [f"{field_words(name)}{sep}{format_value(value, aloud)}" for name, value in pairs]
    return items[0] if len(items) == 1 else "; ".join(items[:-1]) + "; and " + items[-1]


def confirmation(values: Iterable[tuple[str, Any]]) -> str:
    return f"Just to confirm: {listing(values, aloud=True)}. Is that right?"


SILENT_HELLO = "Hello? Can you hear me?"
NUDGE = "Hello, are you still there?"
RECHECK = "Sorry about that, let me check again."
CONFIRM_AGAIN = "Sorry, so is that right?"
WHO_AGAIN = "I'm an AI assistant, calling on behalf of {account}."
NO_FIELDS_ASK = "Could you help me with that?"
BYE_MET = "That's everything I needed. Thank you so much for your help. Goodbye!"
BYE_PARTIAL = "Thank you for your time, that's all for now. Goodbye!"
BYE_REFUSED = "I understand. Thank you for your time anyway. Goodbye!"
BYE_SILENT = "I can't hear anyone, so I'll hang up now. Goodbye."
BYE_WRONG_NUMBER = "I'm sorry, I must have the wrong number. Sorry to have bothered you. Goodbye!"
BYE_DO_NOT_CALL = "Understood, I'm sorry to have bothered you. We won't call again. Goodbye."
BYE_CALLBACK = "That's fine, thank you. Goodbye!"

_NOT_NAMES = frozenset(
    "i a an the ask call find check confirm book please and or but for to of on in at by with from monday tuesday "
    "wednesday thursday friday saturday sunday january february march april may june july august september "
    "october november december dr mr mrs ms".split())


def spelling(request: str, objective: str) -> str:
    """Spell the name they asked about, taken from the objective: the surname when they ask for the
    surname or last name, the first name when they ask for that, else the whole name."""
    words = re.findall(r"[A-Za-z][A-Za-z'-]*", objective)
    names: list[list[str]] = []
    for i, word in enumerate(words):
        bare = re.sub(r"'s$", "", word)
        if i > 0 and bare[:1].isupper() and bare.lower() not in _NOT_NAMES:
            if names and words[i - 1] == names[-1][-1][1]:
                names[-1].append((bare, word))  # type: ignore[arg-type]
            else:
                names.append([(bare, word)])  # type: ignore[list-item]
    if not names:
        return "Sorry, I don't have a name to spell. Could you help me without it?"
    person = [bare for bare, _ in names[-1]]  # type: ignore[misc]
    low = request.lower()
    if "first name" in low or "given name" in low:
        chosen = person[:1]
    elif "surname" in low or "last name" in low or "family name" in low:
        chosen = person[-1:]
    else:
        chosen = person
    spelled = "; ".join(f"{w}: {', '.join(c.upper() for c in w if c.isalpha())}" for w in chosen)
    return f"Of course. {spelled}."


# --- the summary ----------------------------------------------------------

VOICEMAIL_NO_MESSAGE = "The agent hung up without leaving a message."
_ENDINGS = {
    "objective_met": "The call ended politely once everything asked for was obtained.",
    "objective_unreachable": "The agent thanked them and hung up without getting everything asked for.",
    "callee_hung_up": "The other side hung up before the agent had finished.",
    "no_response": "Nobody responded, so the agent hung up.",
    "voicemail": VOICEMAIL_NO_MESSAGE,
    "max_duration": "The call was cut off at its maximum duration.",
    "canceled": "The call was canceled before it finished.",
}


def _who(answered_by: str, route: list[str], reached: bool) -> str:
    pressed = ", ".join(step.split(":", 1)[1] for step in route if step.startswith("ivr:"))
    if pressed:
        then = ("reached a person" if reached else
                "reached a voicemail greeting" if answered_by == "voicemail" else "never reached a person")
        return f"An automated phone menu answered; the agent pressed {pressed} and {then}."
    if "screening" in route:
        put = "was put through to a person" if reached else "was never put through to a person"
        return f"A call-screening service answered; the agent introduced itself and {put}."
    if answered_by == "voicemail":
        return "A voicemail greeting answered."
    return "A person answered." if reached else "The call was answered, but nobody spoke."


_SITUATIONS = {
    "wrong_number": "They said this was the wrong number, or that who the call was for is not there, so the "
                    "agent apologised and ended the call; nothing they said is recorded.",
    "do_not_call": "They asked not to be called again, so the agent apologised and ended the call.",
    "callback": "They offered to call back later instead of answering now.",
    "transferred_to_voicemail": "They transferred the call to a colleague's voicemail, so the agent hung up.",
}


def summary(*, reason: str, answered_by: str, reached_human: bool, route: list[str], extracted: dict[str, Any],
            refused: list[str], confirmed: bool | None, reply: str | None, situation: str | None = None,
            disputed: list[str] | None = None) -> str:
    """A plain-English outcome built only from what happened on the call."""
    parts = [_who(answered_by, route, reached_human)]
    if situation in _SITUATIONS:
        parts.append(_SITUATIONS[situation])
    got = [(name, value) for name, value in extracted.items() if value is not None]
    if got:
        parts.append(f"Obtained: {listing(got, ': ')}.")
        if confirmed is True:
            parts.append("They confirmed these when read back.")
        elif confirmed is False:
            parts.append("They disputed the first answers, so the agent asked again.")
    missing = [name for name, value in extracted.items() if value is None]
    if missing:
        described = [field_words(n) + (" (they declined to share it)" if n in refused else
                                        " (they contradicted it when read back)" if n in (disputed or []) else "")
                     for n in missing]
        parts.append(f"Not obtained: {', '.join(described)}.")
    if reply:
        parts.append(f'Their answer: "{reply}"')
    parts.append(_ENDINGS.get(reason) or ("The call ended early because of a technical problem."
                                          if reason.startswith("error") else f"The call ended ({reason})."))
    return " ".join(parts)


# --- what we listen for ---------------------------------------------------


def _has(text: str, cues: Iterable[str]) -> bool:
    low = " ".join(tokens(text))
    return any(re.search(rf"(?<![a-z']){re.escape(cue)}(?![a-z'])", low) for cue in cues)


_VOICEMAIL = ("leave a message", "leave your message", "leave me a message", "after the tone", "after the beep",
              "at the tone", "not available", "unavailable", "can't come to the phone", "cannot come to the phone",
              "can't take your call", "cannot take your call", "voicemail", "voice mail", "mailbox",
              "record your message", "can't get to the phone", "can't get to my phone", "cannot get to the phone",
              "can't answer", "not in right now", "not here right now", "not home right now", "away from the phone",
              "away from my phone", "away from my desk", "ring you back", "call you back", "get back to you",
              "return your call", "drop me a text", "send me a text", "text me", "try me again", "try again later",
              "say who you are", "leave your name", "leave your number", "after the signal", "we're out right now",
              "i'm out right now", "out of the office", "out of office", "you've reached the voicemail",
              "no one is available", "nobody is available", "speak after", "start speaking",
              "closed for the day", "office is closed", "offices are closed", "we are currently closed",
              "we're currently closed", "outside of business hours", "outside business hours",
              "outside our opening hours", "outside of our opening hours", "our hours are", "our opening hours are",
              "please call back during", "call back during", "during business hours", "during office hours",
              "now closed", "out of hours", "hang up and dial", "hang up and call", "if it's urgent",
              "if this is an emergency", "in an emergency", "our office hours", "surgery is closed",
              # other languages
              "deja tu mensaje", "deje su mensaje", "dejar un mensaje", "despues de la senal", "despues del tono",
              "no puedo atender", "buzon de voz", "laissez un message", "laissez votre message", "apres le bip",
              "apres le signal", "messagerie", "hinterlassen sie", "nach dem signalton", "nach dem piepton",
              "mailbox von", "lascia un messaggio", "dopo il segnale", "segreteria", "deixe sua mensagem",
              "deixe a sua mensagem", "apos o sinal", "caixa postal")
_SCREENING = ("screening", "state your name", "say your name", "record your name", "reason for your call",
              "reason for calling", "why you're calling", "why you are calling", "before i connect",
              "see if this person is available")


_INVITES_MESSAGE = ("message", "tone", "beep", "record", "signal", "after the", "mensaje", "nachricht", "messaggio",
                    "mensagem")


def invites_message(text: str) -> bool:
    """A voicemail greeting that asks for a message (rather than only saying nobody is there)."""
    return _has(text, _INVITES_MESSAGE)


def is_who_is_this(text: str) -> bool:
    return hear.is_who_is_this(text)


def is_refusal(text: str) -> bool:
    return hear.is_refusal(text)


def is_unknown(text: str) -> bool:
    """The callee answered without an answer: they don't know or didn't hear."""
    return hear.is_unknown(text)


def is_hold(text: str) -> bool:
    """Every clause is "please hold" / "let me check" / "thank you": more is coming."""
    return hear.is_hold(text)


_DIGIT_WORDS = {w: str(i) for i, w in enumerate("zero one two three four five six seven eight nine".split())}
_DIGIT_WORDS.update({"oh": "0", "star": "*", "pound": "#", "hash": "#"})
# "press 1", "dial 1", "say or press 1", "press or say 1"
_KEY = r"(?:(?:say|speak)\s+or\s+)?(?:press|dial|select)(?:\s+or\s+say)?"
_LABEL_FIRST = re.compile(rf"(?<![a-z])(?:for|to|if)\s+((?:(?!\bpress\b|\bfor\b|\bsay or\b)[^.;:!?])+?),?\s+"
                          rf"(?:please\s+)?{_KEY}\s+([0-9*#]|[a-z]+)")
_KEY_FIRST = re.compile(rf"{_KEY}\s+([0-9*#]|[a-z]+)\s+(?:for|to)\s+((?:(?!\bpress\b|\bsay or\b)[^.;:!?])+)")


def ivr_options(text: str) -> list[tuple[str, str]]:
    """Menu options heard in an IVR prompt, as (digit, label) in the order spoken.

    "For sales, press 1", "If you are a new patient, press 1" and "Press 1 for sales" are all
    understood; whichever
    style the menu starts with wins where the two readings overlap.
    """
    low = text.lower().replace("\u2019", "'")
    label_first = [(m.start(), m.end(), m.group(2), m.group(1)) for m in _LABEL_FIRST.finditer(low)]
    key_first = [(m.start(), m.end(), m.group(1), m.group(2)) for m in _KEY_FIRST.finditer(low)]
    if key_first and (not label_first or key_first[0][0] < label_first[0][0]):
        label_first, key_first = key_first, label_first
    chosen = list(label_first)
    for match in key_first:
        if all(match[1] <= start or match[0] >= end for start, end, _, _ in chosen):
            chosen.append(match)
    options: list[tuple[str, str]] = []
    for _, _, key, label in sorted(chosen):
        digit = key if key in "0123456789*#" else _DIGIT_WORDS.get(key)
        if digit and all(d != digit for d, _ in options):
            options.append((digit, re.sub(r"(?:,\s*)?\b(?:or|and)$", "", label.strip().rstrip(",")).strip()))
    return options


_MENU_REFUSED = ("not a valid option", "not a valid selection", "invalid option", "invalid selection",
                 "invalid entry", "not a valid entry", "option is not available", "did not recognise that option",
                 "did not recognize that option", "didn't recognise that option", "didn't recognize that option")


def classify_answer(text: str) -> str:
    """What is speaking: "screening", "ivr", "voicemail", "hold" or "human"."""
    options = ivr_options(text)
    if _has(text, _SCREENING):
        return "screening"
    if len(options) >= 2 or _has(text, _MENU_REFUSED):  # "Sorry, that is not a valid option." is the menu
        return "ivr"
    if _has(text, _VOICEMAIL):
        return "voicemail"
    if options or re.search(r"\bpress\s+(?:[0-9]|one|two|zero)\b", text.lower()):
        return "ivr"
    if is_hold(text):
        return "hold"
    return "human"


_SYNONYMS = {
    "reservation": "table book booking reserve reservation seat seating tonight party",
    "booking": "table book booking reserve reservation seat appointment",
    "hour": "open opening close closing hours time today tomorrow weekend",
    "appointment": "appointment schedule reschedule book booking cancel confirm visit",
    "billing": "bill billing pay payment invoice charge balance refund",
    "payment": "bill billing pay payment invoice charge balance",
    "order": "order delivery deliver shipping track package",
    "delivery": "order delivery deliver shipping track",
    "sale": "buy price cost purchase quote stock",
    "support": "help problem repair broken issue fix",
    # a service that is down or faulty: what callers about outages and faults want
    "down": "outage outages fault faults broken problem issue offline disruption interruption working",
    "fault": "outage outages down broken problem issue offline disruption repair working",
    "outage": "outage outages down fault faults broken problem disruption offline",
    "technical": "outage fault down broken problem issue offline working",
    "pharmacy": "prescription refill medication pharmacy",
    "event": "event events party private catering wedding group",
}
_OPERATOR = ("operator", "representative", "anything else", "all other", "other", "receptionist", "front desk",
             "someone", "a person", "staff", "agent", "speak to", "talk to")
_STOP = frozenset("a an the to for of and or in on at is are be if you your they their how much many what when "
                  "ask find out check whether please can could would do does".split())


def _stem(word: str) -> str:
    word = word.removesuffix("'s")
    if word.endswith("ies") and len(word) > 4:
        return word[:-3] + "y"
    return word[:-1] if word.endswith("s") and len(word) > 3 and not word.endswith("ss") else word


def choose_ivr_digit(options: list[tuple[str, str]], topic: str) -> str:
    """The option whose label best matches the call's topic; else the operator; else 0."""
    wanted = {_stem(w) for w in tokens(topic) if w not in _STOP}
    best, best_score = None, 0
    for digit, label in options:
        label_words = {_stem(w) for w in tokens(label) if w not in _STOP}
        related = set(label_words)
        for word in label_words:
            related |= {_stem(s) for s in _SYNONYMS.get(word, "").split()}
        score = 2 * len(label_words & wanted) + len(related & wanted)
        if score > best_score:
            best, best_score = digit, score
    if best is not None:
        return best
    for digit, label in options:
        if _has(label, _OPERATOR):
            return digit
    return "0"
