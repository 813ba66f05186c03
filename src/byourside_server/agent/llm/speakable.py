"""A model's streamed reply, released for speaking a clause at a time, and only what may be said.

Tokens arrive in arbitrary pieces. ``SpeakableStream`` holds them until a
clause is complete (a comma, colon or sentence end) and releases the new
words of the cleaned text (``clean_utterance``: no labels, markdown or
bracketed stage directions; text inside a bracket still open is held back).
Before each release the whole text so far is checked for repeating the
private context (``leaks_context``); from the first clause that would, nothing
more is released and ``withheld`` is set, so the brain says its refusal
instead.
"""

from __future__ import annotations

import re
from collections.abc import Callable

_CLAUSE_END = re.compile(r"[.!?;:,](?=\s)")


class SpeakableStream:
    def __init__(self, clean: Callable[[str], str], leaks: Callable[[str], bool]) -> None:
        self._clean, self._leaks = clean, leaks
        self._raw = ""
        self.released = ""  # everything handed out for speaking, in order
        self.withheld = False

    def feed(self, piece: str) -> str:
        """Add a streamed piece; the newly speakable words ("" when no clause has completed)."""
        self._raw += piece
        return self._release(final=False)

    def finish(self) -> str:
        """The stream is complete: whatever is left that may be said."""
        return self._release(final=True)

    def _release(self, *, final: bool) -> str:
        if self.withheld:
            return ""
        raw = self._raw
        if not final:
            open_bracket = raw.rfind("[")
            if open_bracket > raw.rfind("]"):
                raw = raw[:open_bracket]  # a stage direction still being written
        if not final:  # up to the last clause end the next token has confirmed (a space after it: not "3.5")
            ends = [m.end() for m in _CLAUSE_END.finditer(raw)]
            raw = raw[:ends[-1]] if ends else ""
        text = self._clean(raw)
        if len(text) <= len(self.released) or not text.startswith(self.released):
            return ""
        if self._leaks(text):
            self.withheld = True
            return ""
        new = text[len(self.released):]
        self.released = text
        return new
