"""What a simulated callee can do, and the interface every simulated callee implements.

A responder never sees time or the line: it is told what happened (the call was
answered, the caller said something, pressed digits, or was quiet for a while)
and answers with a list of actions. The line lays the actions out on its
virtual timeline, one after another.
"""

from __future__ import annotations

from dataclasses import dataclass, replace


@dataclass(frozen=True)
class Say:
    text: str
    pause: float = 0.4  # seconds of thinking before speaking


@dataclass(frozen=True)
class Tone:
    """The answering machine's record tone."""

    pause: float = 0.4


@dataclass(frozen=True)
class Hang:
    pause: float = 0.3


@dataclass(frozen=True)
class Flush:
    """Stop talking: drop whatever was queued and not yet heard (an IVR on a key press)."""


Action = Say | Tone | Hang | Flush


def after(seconds: float, actions: list[Action]) -> list[Action]:
    """``actions`` with the first one delayed by ``seconds`` instead of its own pause."""
    if actions and isinstance(actions[0], (Say, Tone, Hang)):
        actions = [replace(actions[0], pause=seconds), *actions[1:]]
    return actions


class Responder:
    """A simulated callee. Every hook returns the actions it takes in response."""

    def on_answer(self) -> list[Action]:
        return []

    def on_speech(self, text: str) -> list[Action]:
        return []

    def on_digits(self, digits: str) -> list[Action]:
        return []

    def idle_after(self) -> float | None:
        """Seconds of quiet (nobody speaking) after which ``on_idle`` fires; None = never."""
        return None

    def on_idle(self) -> list[Action]:
        return []
