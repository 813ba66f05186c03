"""Providers picked by name from settings, through one explicit registry.

An adapter whose optional dependencies are missing fails at start-up with the
exact ``pip install`` hint instead of failing mid-call.
"""

from __future__ import annotations

from typing import Callable

from byourside_server.agent.base import Brain
from byourside_server.clock import Clock
from byourside_server.settings import Settings
from byourside_server.telephony.base import Telephony


class ProviderError(RuntimeError):
    pass


def persona_factory(settings: Settings):
    """Who plays simulator personas (BYS_SIM_PERSONAS): the scripted responder or the configured model."""
    from byourside_server.telephony.simulator.personas import PersonaResponder

    if settings.sim_personas == "llm":
        from byourside_server.agent.llm.provider import provider_from_settings
        from byourside_server.telephony.simulator.llm_persona import llm_persona_factory

        try:
            provider = provider_from_settings(settings)
        except ValueError as exc:
            raise ProviderError(f"BYS_SIM_PERSONAS=llm: {exc}") from None
        return llm_persona_factory(provider)
    if settings.sim_personas != "scripted":
        raise ProviderError(f"Unknown BYS_SIM_PERSONAS '{settings.sim_personas}'. Known: llm, scripted.")
    return PersonaResponder


def _simulator(settings: Settings, clock: Clock) -> Telephony:
    from byourside_server.telephony.simulator.provider import SimulatorTelephony
    from byourside_server.telephony.simulator.scenarios import load_scenarios

    return SimulatorTelephony(load_scenarios(settings.sim_scenarios_file), clock, time_scale=settings.sim_time_scale,
                              persona_factory=persona_factory(settings))


def _offline(settings: Settings) -> Brain:
    from byourside_server.agent.offline import OfflineBrain

    if settings.offline_extractor != "model":
        return OfflineBrain()
    from byourside_server.agent.understanding.small_model import (
        SmallModelError,
        fallback_for,
    )

    try:
        fallback = fallback_for(settings.data_dir / "models", settings.offline_model_path,
                                threads=settings.offline_model_threads)
    except SmallModelError as exc:
        raise ProviderError(str(exc)) from None
    return OfflineBrain(fallback=fallback)


def _llm(settings: Settings) -> Brain:
    from byourside_server.agent.llm.brain import LLMBrain
    from byourside_server.agent.llm.provider import provider_from_settings

    try:
        provider = provider_from_settings(settings)
    except ValueError as exc:
        raise ProviderError(str(exc)) from None
    return LLMBrain(provider, stream=settings.llm_stream)


def _carrier(name: str, install_hint: str, build: Callable[[Settings], Telephony], settings: Settings) -> Telephony:
    """A carrier's telephony, its missing extra or bad setting named as a start-up error."""
    try:
        return build(settings)
    except ImportError as exc:
        raise ProviderError(f"BYS_TELEPHONY={name}: {exc}. Install: {install_hint}") from None
    except ValueError as exc:
        raise ProviderError(f"BYS_TELEPHONY={name}: {exc}") from None


def _sip(settings: Settings, clock: Clock) -> Telephony:
    from byourside_server.telephony.sip import INSTALL_HINT, build_sip_telephony

    return _carrier("sip", INSTALL_HINT, build_sip_telephony, settings)


def _twilio(settings: Settings, clock: Clock) -> Telephony:
    from byourside_server.telephony.twilio import INSTALL_HINT, build_twilio_telephony

    return _carrier("twilio", INSTALL_HINT, build_twilio_telephony, settings)


def _telnyx(settings: Settings, clock: Clock) -> Telephony:
    from byourside_server.telephony.telnyx import INSTALL_HINT, build_telnyx_telephony

    return _carrier("telnyx", INSTALL_HINT, build_telnyx_telephony, settings)


TELEPHONY: dict[str, Callable[[Settings, Clock], Telephony]] = {
    "simulator": _simulator, "sip": _sip, "twilio": _twilio, "telnyx": _telnyx,
}
BRAINS: dict[str, Callable[[Settings], Brain]] = {"offline": _offline, "llm": _llm}


def build_telephony(settings: Settings, clock: Clock) -> Telephony:
    factory = TELEPHONY.get(settings.telephony)
    if factory is None:
        raise ProviderError(f"Unknown BYS_TELEPHONY '{settings.telephony}'. Known: {', '.join(sorted(TELEPHONY))}.")
    telephony = factory(settings, clock)
    from byourside_server.agent.realtime.providers import realtime_enabled

    return _for_realtime(settings, telephony) if realtime_enabled(settings) else telephony


def build_brain(settings: Settings) -> Brain:
    factory = BRAINS.get(settings.effective_brain)
    if factory is None:
        raise ProviderError(f"Unknown BYS_BRAIN '{settings.brain}'. Known: auto, {', '.join(sorted(BRAINS))}.")
    from byourside_server.agent.realtime.providers import realtime_enabled

    return _realtime(settings, factory(settings)) if realtime_enabled(settings) else factory(settings)


def _realtime(settings: Settings, analyst: Brain) -> Brain:
    """BYS_REALTIME: a realtime model conducts the calls; the configured brain analyses them afterwards."""
    from byourside_server.agent.realtime.conversation import RealtimeBrain
    from byourside_server.agent.realtime.providers import build_realtime_model

    try:
        model = build_realtime_model(settings)
    except ValueError as exc:
        raise ProviderError(str(exc)) from None
    return RealtimeBrain(model, analyst, retries=settings.realtime_retries)


def _for_realtime(settings: Settings, telephony: Telephony) -> Telephony:
    """An audio carrier whose calls a realtime model conducts (no cascaded voice engine between them)."""
    from byourside_server.voice.telephony import VoicedTelephony

    if not isinstance(telephony, VoicedTelephony):
        raise ProviderError(f"BYS_REALTIME={settings.realtime} needs an audio carrier: set BYS_TELEPHONY=sip "
                            f"(BYS_TELEPHONY={settings.telephony} gives text lines)")
    from byourside_server.voice.realtime_line import RealtimeTelephony, local_speech_renderer

    return RealtimeTelephony(telephony.carrier, telephony.recordings_dir, local_speech_renderer(settings.voice))
