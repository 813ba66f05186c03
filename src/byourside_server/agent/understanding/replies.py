"""What kind of reply the callee gave: yes, no, a refusal, "I don't know", or a situation
(hold, transfer, a call-back promise, wrong number, "don't call me", a spelling request).

Yes/no reads the whole reply, not its first word: a correction ("Yep, we do...
actually no") or a "but" that turns negative ("We used to, but we don't any more")
wins over an earlier cue, and reassurances that open with "no" ("no problem",
"oh no, don't worry") are not a no. "Mm-hmm" and the yes/no words of the common
European languages are understood.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Literal

from byourside_server.agent.parsing import number_candidates
from byourside_server.agent.parsing import tokens as number_tokens
from byourside_server.agent.understanding.words import (
    CLAUSE_CORRECTIONS, clauses, find_phrase, fold, has_any, sentences, tokens,
)

Verdict = Literal["yes", "no", "refusal", "unknown"]

REFUSALS = (
    "can't share", "cannot share", "can not share", "not allowed to share", "not allowed to give",
    "not allowed to say", "not allowed to tell", "not allowed to disclose", "no comment", "can't give out",
    "cannot give out", "can't give that", "not able to share", "unable to share", "can't disclose",
    "cannot disclose", "don't give out", "do not give out", "not at liberty", "prefer not to say",
    "rather not say", "can't tell you that", "can't provide", "cannot provide", "not permitted", "confidential",
    "none of your business", "not telling", "won't tell", "not going to tell", "privacy reasons", "data protection",
    "not something i can share", "can't discuss", "cannot discuss", "can't give you that", "i'd rather not",
    "against our policy", "against company policy", "against policy", "our policy is not to", "policy doesn't allow",
    "not allowed to discuss", "not able to discuss", "unable to discuss", "can't talk about", "cannot talk about",
    "can't go into", "cannot go into", "only discuss that with", "only with the account holder",
    "need to speak to the account holder", "can't release", "cannot release", "not authorised", "not authorized",
    # unwilling to talk to an AI
    "don't deal with robots", "don't talk to robots", "not talking to a robot", "not telling a robot",
    "don't talk to machines", "don't speak to machines", "not talking to a machine", "have a real person",
    "get a real person", "want a real person", "speak to a real person", "talk to a real person", "speak to a human",
    "talk to a human", "put a human on", "don't deal with machines")
UNKNOWNS = (
    "not sure", "don't know", "do not know", "no idea", "not certain", "couldn't tell you", "can't tell you",
    "don't have that information", "don't have that info", "no clue", "unsure", "can't help you with that",
    "didn't catch", "didn't understand", "don't understand", "did not understand", "didn't get that",
    "didn't hear", "couldn't hear", "can't hear you", "not a valid option", "what was that", "say that again", "pardon", "dunno", "haven't a clue", "beats me",
    "couldn't say", "can't say", "no way of knowing", "not my department", "i'd have to check", "i would have to check",
    "i'll have to check", "i will have to check", "need to check", "have to ask")
# Words that open a reply with "no" without meaning no.
_REASSURANCES = ("no problem", "no problem at all", "no worries", "not a problem", "no trouble", "not at all",
                 "don't worry", "no need to worry", "no bother", "oh no", "no no", "no rush", "never mind",
                 "no harm", "not a bother")
_YES = ("yes", "yeah", "yep", "yup", "ya", "yah", "sure", "certainly", "absolutely", "definitely", "correct",
        "indeed", "affirmative", "exactly", "of course", "that's right", "that is right", "you're right",
        "that's correct", "we do", "i do", "it does", "it is", "we can", "we are", "we will", "they do", "they are",
        "there is", "you bet", "confirmed", "sounds good", "will do", "i think so", "mm hmm", "mhm", "mmhmm",
        "uh huh", "aye", "right", "sure thing", "we have", "we've got", "we still do", "still do", "yes please",
        "go ahead", "that works", "can do", "we offer", "we accept", "we take", "available", "open",
        "afraid so", "i'm afraid so", "happy to", "glad to", "we'd love to", "still on", "it's on", "fine",
        "allowed", "permitted", "welcome", "okay", "ok",
        # a booking confirmed in the words people use for it
        "booked in", "all set", "all sorted", "in the diary", "good to go", "you're booked", "you are booked",
        # other languages
        "si", "claro", "por supuesto", "oui", "bien sur", "ja", "jawohl", "sim", "certo", "certamente", "da",
        "abrimos", "abierto", "ouvert", "geoffnet", "aperto")
_NO = ("no", "nope", "nah", "not", "never", "of course not", "absolutely not", "certainly not", "definitely not",
       "sure not", "not at all sure", "negative", "none", "nothing", "unfortunately", "cannot", "can't",
       "fully booked", "booked up", "sold out", "afraid not", "not really", "no longer", "any more", "anymore",
       "stopped", "discontinued", "closed", "unavailable", "full", "uh uh", "nuh uh", "used to",
       "dropped", "scrapped", "axed", "got rid of", "gave up", "phased out", "no more", "i'm afraid",
       "sadly", "too late", "out of stock", "ran out", "run out", "we're out of", "we are out of", "all out of",
       "haven't had", "not since", "haven't got", "hasn't been",
       # full up, in the words people use for it
       "booked solid", "solidly booked", "chock a block", "chocka", "full up", "rammed",
       "no availability", "no space", "no room", "nothing free", "nothing available", "nothing left",
       # other languages
       "non", "nein", "nao", "cerrado", "cerramos", "ferme", "fermes", "geschlossen", "chiuso", "lo siento")
_UNDECIDED = ("maybe", "perhaps", "possibly", "might", "it depends", "depends", "sometimes", "not sure")
# Weak cues count only in a clause with no other cue: "we have no tables left" is a no, and regret
# ("sadly", "unfortunately") colours an answer without being one: "sadly yes, visitors pay" is a yes.
_WEAK_YES = frozenset(("we have", "we've got", "there is", "available", "open", "right", "we offer", "we accept",
                       "we take", "can do", "abierto", "abrimos", "ouvert", "geoffnet", "aperto", "fine", "allowed",
                       "permitted", "welcome", "okay", "ok", "booked in", "in the diary"))
_WEAK_NO = frozenset(("sadly", "unfortunately", "i'm afraid", "lo siento"))
_YES_NO_TABLE = sorted([(tuple(tokens(p)), True) for p in _YES] + [(tuple(tokens(p)), False) for p in _NO],
                       key=lambda item: -len(item[0]))
_WEAK = frozenset(tuple(tokens(p)) for p in _WEAK_YES | _WEAK_NO)


def _cues(words: list[str]) -> list[tuple[int, bool]]:
    """(position, yes?) of every yes/no cue, longest phrase first at each position; weak cues
    ("we have", "open", "sadly") only when the clause has no other cue."""
    found: list[tuple[int, bool, bool]] = []
    i = 0
    while i < len(words):
        for phrase, value in _YES_NO_TABLE:
            if tuple(words[i : i + len(phrase)]) == phrase:
                found.append((i, value, phrase in _WEAK))
                i += len(phrase) - 1
                break
        else:
            if words[i].endswith("n't"):
                found.append((i, False, False))
        i += 1
    strong = [(at, value) for at, value, weak in found if not weak]
    return strong or [(at, value) for at, value, _ in found]


_REGRET = frozenset(tuple(tokens(p)) for p in _WEAK_NO)


_MARKERS = frozenset(("right", "okay", "ok", "alright", "so", "well", "oh", "um", "uh", "now", "all", "then"))


def _tentative(words: list[str]) -> bool:
    """The clause's only cues are regret ("Unfortunately," or "Sadly,"), or it is only a discourse
    marker ("Right," "Okay, so"): a later clause with a plain answer decides."""
    cues = _cues(words)
    if not cues:
        return False
    if all(w in _MARKERS for w in words if w[0].isalnum()):
        return True
    return all(any(tuple(words[at : at + len(w)]) == w for w in _REGRET) for at, _ in cues)


_SOOTHING = r"(?:don't worry|no worries|no problem|not at all|it's fine|that's fine|that's okay|it's okay|no trouble)"


def _neutralised(text: str) -> str:
    """``text`` with reassurances ("no problem", "oh no, don't worry") and "don't know"-style
    phrases blanked out, so their "no"/"not" is not read as an answer."""
    low = fold(text)
    low = re.sub(r"\b(?:yeah|yes|yep)[\s,.]+(?:nah|no)\b", " nah ", low)  # "yeah, nah" is a no
    low = re.sub(r"\b(?:nah|no)[\s,.]+(?:yeah|yep)\b", " yeah ", low)  # "nah, yeah" is a yes
    low = re.sub(rf"\b(?:oh no|no no|no)\b(?=[\s,.!]*{_SOOTHING})", " ~ ", low)
    for pattern in _neutral_patterns():
        low = pattern.sub(" ~ ", low)
    return low


@lru_cache(maxsize=1)
def _neutral_patterns() -> list[re.Pattern[str]]:
    """The phrases ``_neutralised`` blanks, longest first, compiled once."""
    return [re.compile(rf"(?<![a-z']){re.escape(phrase)}(?![a-z'])")
            for phrase in sorted(_REASSURANCES + UNKNOWNS + _UNDECIDED + REFUSALS, key=len, reverse=True)]


# An answer that says it varies is no yes/no, whatever cues it also holds.
_VARIES = ("it depends", "depends on", "that depends", "not always", "sometimes", "some do", "some have",
           "some are", "some of them", "it varies", "varies", "can't guarantee", "cannot guarantee", "no guarantee",
           "hit and miss", "now and then", "every now and then", "from time to time")


def varies(text: str) -> bool:
    """The answer is "it depends" / "sometimes": neither yes nor no."""
    return has_any(text, _VARIES)


def yes_no(text: str) -> bool | None:
    """True, False, or None when the reply holds no clear yes or no."""
    if varies(text):
        return None
    parts = clauses(_neutralised(text))
    if not parts:
        return None
    verdict: bool | None = None
    tentative = False  # the verdict so far rests on regret or a marker alone ("Unfortunately," "Right,")
    for part in parts:
        words = tokens(part.text)
        cues = _cues(words)
        if not cues:
            continue
        weak = _tentative(words)
        if tentative and not weak:
            verdict, tentative = None, False  # "Unfortunately, we do": the plain answer decides
        if verdict is None:
            tentative = weak
        # "don't worry" etc. were removed; a clause of "no ... but yes" keeps its last decisive cue
        value = cues[0][1]
        if any(find_phrase(words, c) >= 0 for c in ("but", "however", "though")):
            value = cues[-1][1] if not cues[-1][1] or cues[0][1] else cues[0][1]
        if verdict is None:
            verdict = value
        elif part.corrected and any(find_phrase(tokens(part.text), c) >= 0 for c in CLAUSE_CORRECTIONS):
            verdict = value  # "actually no": the correction wins
        elif part.contrasted and value is False:
            verdict = False  # "we used to, yes, but we don't any more"
        elif part.corrected and value != verdict:
            verdict = value
    if verdict is None and has_any(text, _REASSURANCES) and not has_any(text, UNKNOWNS + REFUSALS):
        return True  # "That's no problem, we do them all the time": glad to
    return verdict


def is_refusal(text: str) -> bool:
    return has_any(text, REFUSALS)


def is_unknown(text: str) -> bool:
    """The callee answered without an answer: they don't know, or didn't hear."""
    return has_any(text, UNKNOWNS) or all(s.endswith("?") for s in sentences(text))


def classify(text: str) -> Verdict | None:
    """The reply to a yes/no question: "yes", "no", "refusal", "unknown", or None (no cue at all)."""
    if is_refusal(text):
        return "refusal"
    value = yes_no(text)
    if value is None:
        return "unknown" if is_unknown(text) else None
    return "yes" if value else "no"


# --- situations -------------------------------------------------------------

HOLD = ("please hold", "hold on", "hold please", "stay on the line", "one moment", "just a moment", "one second",
        "just a second", "one sec", "just a sec", "give me a moment", "give me a second", "give me a sec",
        "give me a minute", "give me two minutes", "give me a couple of minutes", "bear with me", "hang on",
        "let me check", "let me see", "let me look", "let me just check", "let me just look", "let me find",
        "let me pull", "let me have a look", "let me take a look", "let me just", "i'll just check",
        "i'll check", "i'll have a look", "while i check", "while i see if", "while i look", "just checking",
        "just looking", "checking now", "looking now", "bear with", "won't be a moment", "won't be long",
        "just a tick", "two ticks", "just a minute", "momentito", "un momento", "un moment")
TRANSFER = ("put you through", "putting you through", "transfer you", "transferring you", "connect you",
            "connecting you", "pass you over", "pass you on", "passing you over", "hand you over", "put you over",
            "let me get", "i'll get", "i will get", "i'll fetch", "let me fetch", "she'll pick up",
            "he'll pick up", "transferring your call", "put you on to", "put you onto")
CALLBACK = ("call you back", "ring you back", "get back to you", "give you a call back", "give you a ring back",
            "call back later", "try again later", "call again later", "call back tomorrow", "phone you back",
            "return your call", "come back to you", "call back in", "ring back later", "ring back in",
            "give you a call later", "call you later", "ring you later", "try again", "call back", "ring back",
            "phone back", "can't talk", "cannot talk", "not a good time", "bad time", "in the middle of something",
            "call another time", "call tomorrow", "ring tomorrow", "busy right now", "can't talk right now",
            "give you a ring", "give you a call", "take a number", "take your number", "take your details",
            "leave it with me", "phone you", "let you know", "get back to you", "be in touch", "i'll find out",
            "get him to call", "get her to call", "get them to call", "have him call", "have her call",
            "have them call", "get him to ring", "get her to ring", "ring you tomorrow", "call you tomorrow",
            "try tomorrow", "try back", "try later", "try us later", "try us tomorrow", "try her tomorrow",
            "try him tomorrow")
_WRONG_WHAT = ("number", "person", "place", "business", "house", "company", "office", "line")
WRONG_NUMBER = (
    "wrong number", "wrong place", "wrong business", "wrong person", "dialled wrong", "dialed wrong", "misdialed",
    "misdialled", "no one here by that name", "nobody here by that name", "no one by that name",
    "nobody by that name", "nobody of that name", "no one of that name", "private home", "private number",
    "private residence", "private house", "not who you think", "nobody called", "no one called",
    "doesn't live here", "does not live here", "don't live here", "not at this number", "had this number",
    "no longer at this number", "never heard of him", "never heard of her", "never heard of them",
    "never heard of that company", "never heard of that business", "doesn't work here", "does not work here",
    "no longer works here", "left the company", "not with us any more", "not with us anymore", "isn't with us",
    "no longer with us", "left the business", "left the practice", "left the firm", "he's left", "she's left",
    "has left us", "he retired", "she retired", "has retired", "check your number", "check the number",
    "it's a house", "this is a house", "it's a private", "this is a private",
    *(f"{verb} the wrong {what}" for verb in ("got", "have", "dialled", "dialed", "called", "reached")
      for what in _WRONG_WHAT))
DO_NOT_CALL = ("don't call", "do not call", "stop calling", "off your list", "remove me", "remove this number",
               "remove my number", "not interested", "never call", "don't ring", "stop ringing", "don't phone",
               "quit calling", "lose this number", "do not ring", "put me on your do not call")
SPELLING = ("spell", "spelling", "letter by letter")
WHO = ("who is this", "who's this", "who is calling", "who's calling", "who are you", "who did you say",
       "who am i speaking", "who am i talking", "who is it", "what company", "what's this about",
       "what is this about", "what is this regarding", "what's this regarding", "what's this for",
       "who are you with", "where are you calling from")
_THANKS = ("thank you", "thanks", "okay", "alright", "ok")


# "I'll go and look in the storeroom", "let me just ask my manager": the speaker goes to find out
_GOING_TO_CHECK = re.compile(
    r"\b(?:i'll|i will|let me|i'm going to|i am going to|i need to|i'd have to|i have to|i'm just going to)\s+"
    r"(?:just\s+)?(?:quickly\s+)?(?:go\s+(?:and\s+)?|pop\s+(?:and\s+)?|run\s+(?:and\s+)?)?"
    r"(?:check|look|see|find|grab|pull|ask|dig|have a look|take a look|find out|pop|nip|go)\b")


# A clause that opens by asking for a moment: "two secs", "half a sec", "a few seconds", "just a mo"
# (only at the start: "it's two seconds from the station" is no hold).
_MOMENT_OPENING = re.compile(
    r"^(?:(?:oh|okay|ok|right|um|er|erm|uh|just|give me|gimme)[\s,]+)*(?:(?:a|one|half a)\s+(?:sec|mo|tick)|"
    r"(?:two|a few|a couple of|couple of)\s+(?:secs|seconds|mos|moments|ticks))\b")


def _asks_for_a_moment(part: str) -> bool:
    return bool(_MOMENT_OPENING.search(fold(part).strip()))


def _stalls(part: str, cues: tuple[str, ...]) -> bool:
    return has_any(part, cues) or bool(_GOING_TO_CHECK.search(fold(part))) or _asks_for_a_moment(part)


def _clauses_all(text: str, cues: tuple[str, ...], also: tuple[str, ...] = ()) -> bool:
    parts = [c.text for c in clauses(text)]
    return bool(parts) and any(_stalls(p, cues) for p in parts) and all(
        _stalls(p, cues + also + _THANKS) or len(tokens(p)) <= 1 for p in parts)


_STRONG_HOLD = ("bear with me", "please hold", "hold on", "hang on", "one moment", "just a moment", "one sec",
                "just a sec", "one second", "just a second", "give me a sec", "give me a second", "give me a minute",
                "give me a moment", "just a tick", "won't be a moment", "won't be long", "just a minute")


def is_hold(text: str) -> bool:
    """Every clause is "please hold" / "let me check" / "thanks", or it opens with a plain "bear with
    me" and says nothing answer-like after it ("the diary's just loading"): more is coming."""
    stall_only = ("i'm just", "just finding", "just pulling", "pulling it up", "finding", "looking it up",
                  "i'm back", "checking", "just grabbing", "while i", "out back", "in the back", "the system",
                  "loading", "coming up", "booting", "is slow", "being slow")
    if _clauses_all(text, HOLD, stall_only + TRANSFER) or _clauses_all(text, TRANSFER, HOLD + stall_only):
        return True
    parts = [c.text for c in clauses(text)]
    if not parts or not (has_any(parts[0], _STRONG_HOLD) or _asks_for_a_moment(parts[0])):
        return False
    rest = " ".join(parts[1:])
    answer_like = re.search(r"\d", rest) or number_candidates(number_tokens(rest)) or yes_no(rest) is not None
    return not answer_like and "?" not in rest


_GREETING = ("speaking", "how can i help", "how may i help", "what can i do for you", "how can i help you",
             "hello", "hi", "hey", "good morning", "good afternoon", "good evening", "here", "this is",
             "you're through to",
             "welcome to", "thanks for calling", "thank you for calling")


def is_greeting(text: str) -> bool:
    """Only a greeting ("Appointments, Ana speaking.", "Hello?"): someone new has just picked up."""
    parts = [c.text for c in clauses(text)]
    if not parts or not has_any(text, _GREETING):
        return False
    return all(has_any(p, _GREETING) or len(tokens(p)) <= 3 for p in parts) and len(tokens(text)) <= 14


def is_transfer(text: str) -> bool:
    """The callee is passing the call to someone else ("let me put you through to accounts")."""
    return has_any(text, TRANSFER)


def is_callback(text: str) -> bool:
    return has_any(text, CALLBACK)


def is_wrong_number(text: str) -> bool:
    words = tokens(text)
    if has_any(words, WRONG_NUMBER):
        return True
    low = " ".join(w for w in words if w[0].isalnum() or w == ",")
    # "there's no Helen at this number", "there's no one called Sam here" (a name, not "no parking here")
    if re.search(r"\b(?:[Tt]here's|[Tt]here is) no (?:one|body|[A-Z][\w'.]*)(?: (?:called|named|by|[A-Z][\w'.]*)){0,3}"
                 r" (?:here|at this number|at this address|on this line|living here|working here|by that name)\b",
                 text.replace("\u2019", "'")):
        return True
    # "she hasn't been at this surgery for years", "he's not worked here since the spring": long gone
    if re.search(r"\b(?:he|she|they)(?:'s|'ve| has| have| is| are)?(?: not|n't| no longer)"
                 r"(?: been| worked)? (?:here|with us|at this \w+|in this \w+|at the \w+)"
                 r"(?: for (?:a |an |about |over |nearly |almost |some |a good )?(?:few |couple of |couple |two |three |"
                 r"several |many )?(?:years?|months?|ages|a while|some time|donkey's years)| any ?more| since)\b", low):
        return True
    # "this is a Chinese takeaway, we don't do any dentist things": a business disowning the whole field
    if re.search(r"\b(?:this is|we're|we are|it's) (?:just )?(?:a|an) [\w' ]{2,30}?(?: , | \. | )(?:and |so )?"
                 r"(?:we (?:don't|do not) do (?:anything (?:with|like)|any [\w' ]{1,20}? (?:things|stuff)|any of that)|"
                 r"we have nothing to do with|nothing to do with)\b", low):
        return True
    # "we're a takeaway, not a dentist"
    return bool(re.search(r"\b(?:we're|we are|this is|this here is) (?:just )?(?:a|an|the) [\w' ]{2,30}?"
                          r"(?: , [\w']+)? , not (?:a|an|the) \w+", low))


# A recorded greeting heard after the caller has started talking (the machine was not recognised at once):
# words only a recording says, or two kinds of greeting words together ("you've reached ..." and "leave
# your name and number"), not about someone else. A person who says one of them ("she's not available,
# can I take a message?") is not taken for a machine.
_RECORDING_ONLY = (
    "after the tone", "after the beep", "at the tone", "at the beep", "after the signal", "voicemail",
    "voice mail", "mailbox", "record your message", "leave a message", "leave me a message", "leave us a message",
    "leave your message", "not available to take your call", "unable to take your call", "can't come to the phone",
    "cannot come to the phone", "can't get to the phone",
    "can't get to my phone", "cannot get to the phone", "the person you are calling", "the person you're calling",
    "the customer you are calling", "the subscriber you are calling", "the number you have dialled",
    "the number you have dialed", "can't answer the phone", "can't answer your call", "no one is available to take",
    "nobody is available to take", "our office is closed", "our offices are closed", "office is now closed",
    "outside business hours", "outside of business hours", "outside our opening hours")
_GREETING_KINDS = (
    ("you've reached", "you have reached", "this is the voicemail"),
    ("not available right now", "not available at the moment", "not available at this time", "currently unavailable",
     "unavailable right now", "unavailable at the moment", "not here right now", "not in right now",
     "not around right now", "not home right now", "not at home right now", "away from the phone",
     "away from my phone", "out of the office", "all out on jobs", "we're out right now", "i'm out right now",
     "can't talk right now", "can't take your call", "cannot take your call", "not able to take your call",
     "not around to take your call"),
    ("leave your name", "leave your number", "leave your details", "leave a number", "text this number",
     "send me a text", "drop me a text", "text me", "send us a text"),
    ("call you back", "get back to you", "return your call", "ring you back", "call you right back",
     "try again later", "try me again", "try us again"))


def is_voicemail_greeting(text: str) -> bool:
    """Words of a recorded greeting: "Hi, you've reached Sam, leave your name and number", "I'm not
    available to take your call right now" (no tone or "beep" needed)."""
    words = tokens(text)
    if has_any(words, _RECORDING_ONLY):
        return True
    # "he's not available, try again later" is a person speaking for someone else
    about_someone_else = has_any(words, ("he", "she", "him", "her", "he's", "she's", "he'll", "she'll"))
    return not about_someone_else and sum(1 for kind in _GREETING_KINDS if has_any(words, kind)) >= 2


def is_do_not_call(text: str) -> bool:
    return has_any(text, DO_NOT_CALL)


def is_spelling_request(text: str) -> bool:
    """They ask the caller to spell something ("Could you spell the surname?")."""
    return has_any(text, SPELLING) and ("?" in text or has_any(text, ("could you", "can you", "please")))


def is_who_is_this(text: str) -> bool:
    return has_any(text, WHO)


# --- read-backs and situations -----------------------------------------------------


def situation(reply: str) -> str | None:
    """A reply that ends the questions: "wrong_number", "do_not_call", "callback", or None."""
    if is_wrong_number(reply):
        return "wrong_number"
    if is_do_not_call(reply):
        return "do_not_call"
    if is_callback(reply):
        return "callback"
    return None


def readback_verdict(reply: str) -> bool | None:
    """Their answer to a read-back, from its first sentence ("No, that's not right. It's ten.")."""
    # "Right, it left the warehouse yesterday...": a marker that opens more words is no "that's right"
    reply = _OPENING_MARKER.sub("", reply.strip(), count=1) or reply
    first = (sentences(reply) or [reply])[0]
    verdict = yes_no(first)
    return verdict if verdict is not None else yes_no(reply)


_OPENING_MARKER = re.compile(r"^(?:right|okay|ok|alright|all right|so|well|now|oh|um|uh|er)\s*,\s*(?=\w)",
                             re.IGNORECASE)


def after_dispute(reply: str) -> str:
    """What follows "No, that's not right." in a reply that disputes a read-back."""
    parts = sentences(reply)
    rest = " ".join(parts[1:]) if len(parts) > 1 else ""
    if not rest:
        first = parts[0] if parts else reply
        tail = first.split(",", 1)[1].strip() if "," in first else ""
        rest = tail if tail and yes_no(tail) is None else ""
    return rest
