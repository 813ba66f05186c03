"""What both brains do the same way: saying goodbye, leaving a voicemail message, and
turning a value into the field's type.

The offline brain scripts every line; the LLM brain lets a model talk. Where
the call's manners are fixed (hang up only after a goodbye and a moment for
theirs; leave a message only after the tone or a pause, and say who is calling)
or a value has to be typed, they share this code.
"""

from __future__ import annotations

from contextlib import suppress
from typing import Any

from byourside_server.agent import phrases as say
from byourside_server.agent.understanding.replies import yes_no
from byourside_server.agent.understanding.values import extract_number
from byourside_server.domain import CallTask, FieldSpec
from byourside_server.telephony.base import Beep, CalleeHungUp, HangUp, Line, Silence


async def goodbye(line: Line, text: str, wait_seconds: float) -> None:
    """Say ``text``, give them ``wait_seconds`` to say goodbye too, and hang up."""
    with suppress(CalleeHungUp):
        await line.say(text)
        await line.listen(wait_seconds)
    await line.hangup()


async def leave_voicemail(line: Line, task: CallTask, *, tone_heard: bool, wait_seconds: float) -> bool:
    """When the call asks for a message, wait for the tone (or a pause) and leave it, saying who is
    calling. Returns whether the message was left. Does not hang up."""
    message = task.voicemail_message
    if not message:
        return False
    with suppress(CalleeHungUp):
        for _ in range(4):
            if tone_heard:
                break
            event = await line.listen(wait_seconds)
            if isinstance(event, HangUp):
                return False
            tone_heard = isinstance(event, (Beep, Silence))
        if tone_heard:
            await line.say(f"{say.disclosure(task)} {message.strip()}")
            return True
    return False


def coerce(field: FieldSpec, value: Any) -> Any:
    """``value`` as the field's type, or None when it cannot be one (an empty string, a list)."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if field.type == "boolean":
        return value if isinstance(value, bool) else yes_no(str(value))
    if field.type == "number":
        if isinstance(value, bool):
            return None
        if isinstance(value, (int, float)):
            return int(value) if float(value).is_integer() else float(value)
        return extract_number(str(value), field)
    if isinstance(value, (dict, list)):
        return None
    return str(value).strip()
