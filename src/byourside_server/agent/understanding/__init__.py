"""Answer understanding shared by both brains' deterministic parts.

- ``words``: folding, tokens, clauses that know about corrections and contrasts;
- ``replies``: yes / no / refusal / unknown, and the situations a reply can
  signal (hold, transfer, call-back, wrong number, "don't call me", a spelling
  request, "who is this?");
- ``values``: the typed value of a field in a reply, read against the question
  (numbers and yes/no there; ``strings`` for text, ``spans`` for the words of a
  time, a date, an email address, a name, an address, a duration or a code);
- ``context``: the question's words and the stalls around an answer.

Everything here is plain rules over the words, so each decision can be read and
tested line by line; nothing is guessed beyond what was said.
"""

from byourside_server.agent.understanding.replies import (
    after_dispute, classify, is_callback, is_do_not_call, is_greeting, is_hold, is_refusal, is_spelling_request,
    is_transfer, is_unknown, is_voicemail_greeting, is_who_is_this, is_wrong_number, readback_verdict, situation,
    yes_no,
)
from byourside_server.agent.understanding.context import content_words, question_words
from byourside_server.agent.understanding.strings import string_kind
from byourside_server.agent.understanding.values import extract

__all__ = [
    "after_dispute", "classify", "content_words", "extract", "is_callback", "is_do_not_call", "is_greeting", "is_hold",
    "is_refusal", "is_spelling_request", "is_transfer", "is_unknown", "is_voicemail_greeting", "is_who_is_this",
    "is_wrong_number",
    "question_words", "readback_verdict", "situation", "string_kind", "yes_no",
]
