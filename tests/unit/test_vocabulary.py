"""The shared vocabulary (domain.py, settings.py) and the one-way road between packages."""

from __future__ import annotations

import subprocess
import sys

import pytest

from byourside_server.agent import base as brain_port
from byourside_server.agent.llm.brain import LLM_UNAVAILABLE
from byourside_server.agent.phrases import _ENDINGS
from byourside_server.api.metrics import percentile as metrics_percentile
from byourside_server.domain import LATENCY_STAGES, EndReason
from byourside_server.settings import Settings
from byourside_server.voice.latency import STAGES, percentile


def test_end_reasons_the_brains_report_are_members_of_the_one_vocabulary():
    reported = [brain_port.OBJECTIVE_MET, brain_port.OBJECTIVE_UNREACHABLE, brain_port.CALLEE_HUNG_UP,
                brain_port.NO_RESPONSE, brain_port.VOICEMAIL_DETECTED, LLM_UNAVAILABLE]
    values = {reason.value for reason in EndReason}
    assert set(reported) <= values
    assert set(_ENDINGS) <= values  # every reason the offline summary words exists


def test_an_end_reason_is_its_wire_string():
    assert EndReason.CANCELED == "canceled" and f"{EndReason.WORKER_LOST}" == "worker_lost"
    assert {"max_duration": 1}[EndReason.MAX_DURATION] == 1
    assert EndReason.error("sip_timeout") == "error:sip_timeout"


def test_latency_stages_and_percentile_match_the_voice_engines_report():
    assert LATENCY_STAGES == STAGES
    samples = [120, 80, 400, 95, 1000, 60, 333]
    for p in (0, 50, 90, 99, 100):
        assert metrics_percentile(samples, p) == percentile(samples, p)


def test_overrides_and_the_environment_reach_every_part_of_the_settings_tree(monkeypatch):
    monkeypatch.setenv("BYS_SIP_PORT", "5070")
    monkeypatch.setenv("BYS_STT_LANGUAGE", "he")
    settings = Settings(port=9001, sip_overrides={"trunk_uri": "sip:trunk.example"},
                        voice_overrides={"barge_in_ms": 0})
    assert settings.port == 9001
    assert (settings.sip.port, settings.sip.trunk_uri) == (5070, "sip:trunk.example")
    assert (settings.voice.stt_language, settings.voice.barge_in_ms) == ("he", 0)
    monkeypatch.setenv("BYS_VAD_END_SILENCE_MS", "900")
    assert Settings(voice_overrides={"vad_end_silence_ms": 800}).voice.vad_end_silence_ms == 800
    assert Settings().voice.vad_end_silence_ms == 900


@pytest.mark.parametrize("module, never", [
    ("byourside_server.store.calls", ("byourside_server.webhooks", "byourside_server.api")),
    ("byourside_server.placement", ("byourside_server.api", "byourside_server.cli")),
    ("byourside_server.webhooks.delivery", ("byourside_server.api", "byourside_server.cli")),
    ("byourside_server.api.app", ("byourside_server.voice", "byourside_server.runtime")),
])
def test_importing_a_layer_does_not_pull_in_the_layers_above_it(module, never):
    code = (f"import sys, {module}; "
            f"print(sorted(m for m in sys.modules if any(m == p or m.startswith(p + '.') for p in {never!r})))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]", f"{module} imports {out.strip()}"
