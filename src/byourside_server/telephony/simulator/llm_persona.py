"""Simulator personas played by a language model, so two AIs talk through the real runtime.

The persona's data (name, organisation, role, facts, temperament, refusal,
patience) becomes the model's instructions; the model then answers whatever the
caller says, in character. The scripted rules that make a scenario what it is
stay deterministic: greetings, the hang-up turn (``hangs_up_after_turns``),
idle behaviour and a spelling request (asked, and the answer held back, until
the caller spells the name) come from ``PersonaResponder``; a fact's hold line
is said before the model's answer, and a fact that transfers the call hands it,
after the model's answer, to the colleague, played by the model too. When the
model fails, the scripted persona answers instead, so a simulated call never
stalls.
"""

from __future__ import annotations

import inspect
import re
from typing import Any, Callable

import structlog

from byourside_server.telephony.simulator.personas import PersonaResponder, best_fact
from byourside_server.telephony.simulator.scenarios import Persona
from byourside_server.telephony.simulator.script import Action, Hang, Say, after

log = structlog.get_logger(__name__)

HANG_UP_MARK = "[HANG UP]"
_STYLES = {"plain": "You are friendly and to the point.", "terse": "You are busy and terse: a few words per reply.",
           "chatty": "You are warm and chatty, with a little small talk."}


def persona_prompt(persona: Persona) -> str:
    lines = [
        f"You are {persona.name}, the {persona.role} at {persona.organisation}, answering a phone call.",
        _STYLES[persona.style],
        "Reply with only the words you say on the phone: one to three short sentences, no stage directions.",
        f"When you want to end the call (the caller said goodbye, or you are done), end your reply with {HANG_UP_MARK}.",
        "What you know (say these facts when asked; do not invent other facts, say you don't know instead):",
    ]
    lines += [f"- {fact.answer}" for fact in persona.facts] or ["- nothing specific"]
    for fact in persona.facts:
        if isinstance(fact.transfer_to, Persona):
            lines.append(f"When asked about {', '.join(fact.keywords)}, say \"{fact.answer}\" and nothing more: "
                         f"{fact.transfer_to.name} ({fact.transfer_to.organisation}) takes the call from there.")
    if persona.refuses:
        lines.append(f"You never share any information on the phone; you answer questions with: \"{persona.refusal}\"")
    if persona.asks_who_first:
        lines.append("Before answering anything, ask who is calling.")
    return "\n".join(lines)


class LlmPersonaResponder(PersonaResponder):
    """A persona whose replies come from a chat model (``on_speech`` is async)."""

    def __init__(self, persona: Persona, provider: Any) -> None:
        super().__init__(persona)
        self.provider = provider
        self.messages: list[dict[str, Any]] = [{"role": "system", "content": persona_prompt(persona)},
                                               {"role": "assistant", "content": persona.greeting}]

    async def on_speech(self, text: str) -> list[Action]:  # type: ignore[override]
        if self.colleague is not None:  # after a transfer the colleague answers
            reply = self.colleague.on_speech(text)
            return await reply if inspect.isawaitable(reply) else reply
        if self.gone:
            return []
        self.nudged = False
        p = self.persona
        fact = None if p.refuses else best_fact(p, text)
        spelling_due = bool(p.spelling_request and p.spelling) and (
            self.spelling_question is not None or (self.spelling_asks == 0 and fact is not None))
        if spelling_due or (p.hangs_up_after_turns is not None and self.turns + 1 >= p.hangs_up_after_turns):
            return super().on_speech(text)
        self.messages.append({"role": "user", "content": text})
        try:
            result = await self.provider.chat(self.messages, max_tokens=120)
            reply = result.content
        except Exception:  # noqa: BLE001 - the scripted persona stands in so the call goes on
            log.warning("llm_persona_fallback", persona=p.name)
            self.messages.pop()
            return super().on_speech(text)
        self.turns += 1
        hang = HANG_UP_MARK.lower() in reply.lower()
        words = " ".join(re.sub(r"\[[^\]]*\]|\*+", " ", reply).split()).strip('" ') or "Sorry?"
        self.messages.append({"role": "assistant", "content": words})
        actions: list[Action] = [Say(words)]
        if fact is not None and fact.hold:
            actions = [Say(fact.hold), *after(fact.hold_seconds, actions)]
        if hang:
            self.gone = True
            actions.append(Hang())
        elif fact is not None and isinstance(fact.transfer_to, Persona):
            self.colleague = LlmPersonaResponder(fact.transfer_to, self.provider)
            actions += after(fact.transfer_seconds, self.colleague.on_answer())
        return actions


def llm_persona_factory(provider: Any) -> Callable[[Persona], PersonaResponder]:
    return lambda persona: LlmPersonaResponder(persona, provider)
