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


def _simulator(settings: Settings, clock: Clock) -> Telephony:
    from byourside_server.telephony.simulator.provider import SimulatorTelephony
    from byourside_server.telephony.simulator.scenarios import load_scenarios

    return SimulatorTelephony(load_scenarios(settings.sim_scenarios_file), clock, time_scale=settings.sim_time_scale)


def _offline(settings: Settings) -> Brain:
    from byourside_server.agent.offline import OfflineBrain

    return OfflineBrain()


TELEPHONY: dict[str, Callable[[Settings, Clock], Telephony]] = {"simulator": _simulator}
BRAINS: dict[str, Callable[[Settings], Brain]] = {"offline": _offline}


def build_telephony(settings: Settings, clock: Clock) -> Telephony:
    factory = TELEPHONY.get(settings.telephony)
    if factory is None:
        raise ProviderError(f"Unknown BYS_TELEPHONY '{settings.telephony}'. Known: {', '.join(sorted(TELEPHONY))}.")
    return factory(settings, clock)


def build_brain(settings: Settings) -> Brain:
    factory = BRAINS.get(settings.brain)
    if factory is None:
        raise ProviderError(f"Unknown BYS_BRAIN '{settings.brain}'. Known: {', '.join(sorted(BRAINS))}.")
    return factory(settings)
