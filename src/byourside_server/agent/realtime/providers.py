"""Realtime models by name (BYS_REALTIME), built from settings; the runtime's registry calls ``build_realtime_model``.

Each needs the ``realtime`` extra (``websockets``, ``numpy``) and its key; a
missing one fails at start-up with what to do, never mid-call.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from byourside_server.agent.realtime import RealtimeModel

if TYPE_CHECKING:
    from byourside_server.settings import Settings

INSTALL_HINT = "pip install 'byourside-server[realtime]'"


def _openai(settings: Settings) -> RealtimeModel:
    from byourside_server.agent.realtime.openai import OpenAIRealtime

    if not settings.openai_api_key:
        raise ValueError("BYS_REALTIME=openai needs BYS_OPENAI_API_KEY (an OpenAI API key, sk-...)")
    return OpenAIRealtime(settings.openai_api_key, model=settings.openai_realtime_model,
                          url=settings.openai_realtime_url)


def _gemini(settings: Settings) -> RealtimeModel:
    from byourside_server.agent.realtime.gemini import GeminiLive

    if not settings.gemini_api_key:
        raise ValueError("BYS_REALTIME=gemini needs BYS_GEMINI_API_KEY (a Google AI Studio API key)")
    return GeminiLive(settings.gemini_api_key, model=settings.gemini_live_model, url=settings.gemini_live_url)


REALTIME_MODELS: dict[str, Callable[[Settings], RealtimeModel]] = {"openai": _openai, "gemini": _gemini}


def realtime_enabled(settings: Settings) -> bool:
    return settings.realtime.strip().lower() not in ("", "off", "none")


def build_realtime_model(settings: Settings) -> RealtimeModel:
    """The model BYS_REALTIME names; ValueError says what is missing (the extra, the key, the name)."""
    name = settings.realtime.strip().lower()
    factory = REALTIME_MODELS.get(name)
    if factory is None:
        raise ValueError(f"unknown BYS_REALTIME '{settings.realtime}'. Known: off, {', '.join(sorted(REALTIME_MODELS))}")
    missing = [m for m in ("websockets", "numpy") if not _importable(m)]
    if missing:
        raise ValueError(f"BYS_REALTIME={name} needs {', '.join(missing)}. Install: {INSTALL_HINT}")
    return factory(settings)


def _importable(module: str) -> bool:
    try:
        __import__(module)
    except ImportError:
        return False
    return True
