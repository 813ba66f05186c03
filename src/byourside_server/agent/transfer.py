"""Handing a call to a person (the request's ``transferTo``): what every brain shares.

The brain never chooses a number: the ``transfer_call`` tool takes only the
words of the brief, and the numbers are the request's, already through the
guardrails, tried in order until one takes the call. ``transferMode`` says
whether the person hears a one-sentence brief before being connected (warm)
or is connected at once (cold). A transfer that reaches nobody leaves the
callee on the line with the brain, which says so and carries on.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from typing import Any

import structlog

from byourside_server.domain import CallTask
from byourside_server.telephony.base import TransferFailed

log = structlog.get_logger(__name__)

HANDING_OVER = "Of course. I'll connect you with a person now, please hold on."
NOBODY_REACHED = "I'm sorry, I couldn't reach anyone to take your call just now."
TRANSFER_FAILED_NOTE = ("[The transfer did not go through: nobody could be reached. Tell them briefly, then carry on "
                        "with the call or end it.]")
MAX_BRIEF_CHARS = 300

TRANSFER_TOOL: dict[str, Any] = {"type": "function", "function": {
    "name": "transfer_call",
    "description": ("Hand the call to a person on our side. Use it when they ask to speak with a human, a real "
                    "person or someone in charge, or when the objective needs a person to take over. In the same "
                    "reply, tell them in one short sentence that you are connecting them."),
    "parameters": {"type": "object", "properties": {
        "brief": {"type": "string", "description": ("One sentence for the person you connect them to: who is on "
                                                    "the line and what they need.")},
        "reason": {"type": "string", "description": "One short sentence: why the call is handed over now."},
    }, "required": ["brief"]},
}}

TRANSFER_RULE = ("- A person on our side can take this call: when they ask to speak with a human or a real person, "
                 "or the objective needs a person, say in one short sentence that you are connecting them and call "
                 "transfer_call in the same reply.")

_ASKS_FOR_A_PERSON = re.compile(
    r"\b(?:real|actual|live) (?:person|human|people|agent)\b"
    r"|\b(?:speak|talk|chat) (?:to|with) (?:a |an |some )?(?:human|person|someone real|somebody real|people)\b"
    r"|\b(?:a|an) human(?: being)?\b"
    r"|\b(?:put|transfer|connect) me (?:through )?(?:to|with) (?:a |an )?(?:human|person|someone|somebody)\b"
    r"|\bnot (?:talking|speaking) (?:to|with) (?:a |an )?(?:machine|robot|bot|computer|ai)\b",
    re.IGNORECASE)


def tools_for(task: CallTask, tools: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The brain's tools, with ``transfer_call`` when the request named someone to transfer to."""
    return [*tools, TRANSFER_TOOL] if task.transfer_to else tools


def rules_for(task: CallTask) -> str:
    """What to add to the system prompt's rules when the call may be handed over ("" otherwise)."""
    return "\n" + TRANSFER_RULE if task.transfer_to else ""


def asks_for_a_person(text: str) -> bool:
    """The callee asks to speak with a human ("can I talk to a real person?")."""
    return bool(_ASKS_FOR_A_PERSON.search(text))


def default_brief(task: CallTask) -> str:
    """The offline agent's one-sentence brief: who is calling, for whom, and about what."""
    about = " ".join(task.objective.split())
    first = re.split(r"(?<=[.!?])\s", about, maxsplit=1)[0].rstrip(".!?")
    if len(first) > 160:
        first = first[:160].rsplit(" ", 1)[0]
    return (f"Hello, this is an AI assistant calling for {task.account_name}: the person I'm connecting you with "
            f"asked for a human, about this: {first}.")


def clean_brief(text: Any) -> str | None:
    """A model's brief as one short line of words (None: it gave none)."""
    words = " ".join(str(text or "").split())[:MAX_BRIEF_CHARS].strip()
    return words or None


async def hand_over(transfer: Callable[[str, str | None], Awaitable[None]], task: CallTask,
                    brief: str | None) -> bool:
    """Transfer to the request's numbers in order until one takes the call; False when none did.

    ``brief`` is said to the person only in warm mode (a cold transfer connects at once).
    """
    said = (brief or default_brief(task)) if task.transfer_mode == "warm" else None
    for attempt, number in enumerate(task.transfer_to, start=1):
        try:
            await transfer(number, said)
        except TransferFailed as exc:
            log.info("transfer_not_taken", call_id=task.call_id, attempt=attempt, reason=exc.reason)
            if exc.reason in ("unsupported", "call_ended"):
                return False
            continue
        log.info("call_transferred", call_id=task.call_id, attempt=attempt, warm=said is not None)
        return True
    return False
