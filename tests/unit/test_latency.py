"""Per-turn latency bookkeeping (voice/latency.py) and its Prometheus rendering (api/metrics.py)."""

from __future__ import annotations

from byourside_server.api.metrics import render
from byourside_server.store.calls import CallMetrics
from byourside_server.voice.latency import LatencyLog, percentile


def test_a_reply_to_something_heard_is_one_turn_with_every_stage():
    log = LatencyLog()
    log.spoke(500, 80)  # the greeting answers nothing: not a turn
    log.heard(speech_end_ms=4000, endpointing_ms=300, stt_ms=120)
    log.model_replied(210.4)
    log.model_replied(999)  # a second model call for the same reply (a tool call) keeps the first figure
    log.spoke(first_audio_at_ms=4760, tts_first_audio_ms=95.6)
    assert log.report()["turns"] == [{"speechEndMs": 4000, "endpointingMs": 300, "sttMs": 120,
                                      "llmFirstTokenMs": 210, "ttsFirstAudioMs": 96, "totalMs": 760}]


def test_heard_without_a_reply_is_dropped_and_no_turns_is_no_report():
    log = LatencyLog()
    assert log.report() is None
    log.heard(1000, 200, 100)
    log.forget_pending()  # the next thing was a beep, or silence
    log.spoke(3000, 50)
    assert log.report() is None


def test_report_has_percentiles_per_stage_and_null_for_stages_never_measured():
    log = LatencyLog()
    for i, total in enumerate([400, 800, 600, 1200]):
        log.heard(10_000 * i, 100 + i, 50)
        log.spoke(10_000 * i + total, 40)
    report = log.report()
    assert report["p50"]["totalMs"] == percentile([400, 800, 600, 1200], 50) == 800
    assert report["p90"]["totalMs"] == 1200
    assert report["p50"]["llmFirstTokenMs"] is None  # an offline brain has no model


def test_metrics_text_is_prometheus_exposition_with_quantiles_sum_and_count():
    reports = [{"turns": [{"totalMs": 700, "sttMs": 100, "endpointingMs": 200, "llmFirstTokenMs": None,
                           "ttsFirstAudioMs": 50}]},
               {"turns": [{"totalMs": 900, "sttMs": 140, "endpointingMs": 220, "llmFirstTokenMs": 300,
                           "ttsFirstAudioMs": 60}]},
               {"turns": "garbage"}]
    text = render(CallMetrics(active={"queued": 2}, ended={"completed": 3, "no_answer": 1}, latencies=reports), 3600)
    lines = text.splitlines()
    assert 'byourside_calls_active{status="queued"} 2' in lines
    assert 'byourside_calls_active{status="in_progress"} 0' in lines
    assert 'byourside_calls_ended{status="no_answer"} 1' in lines
    assert 'byourside_voice_turn_latency_ms{stage="total",quantile="0.5"} 700' in lines
    assert 'byourside_voice_turn_latency_ms{stage="total",quantile="0.9"} 900' in lines
    assert 'byourside_voice_turn_latency_ms_sum{stage="total"} 1600' in lines
    assert 'byourside_voice_turn_latency_ms_count{stage="llm_first_token"} 1' in lines
    assert "# TYPE byourside_voice_turn_latency_ms summary" in lines
    for line in lines:  # every sample line is "name{labels} number"
        if not line.startswith("#"):
            name, value = line.rsplit(" ", 1)
            float(value)


def test_a_turn_notes_when_the_gate_opened_and_when_the_audio_was_ready_and_the_report_leaves_them_out():
    log = LatencyLog()
    log.heard(speech_end_ms=4000, endpointing_ms=500, stt_ms=100, gate_open_ms=4500)  # the turn closed at 4500
    log.spoke(first_audio_at_ms=4700, tts_first_audio_ms=100, gate_open_ms=4560, audio_ready_ms=4683.5)
    turn = log.turns[0]
    assert (turn.gate_open_ms, turn.audio_ready_ms) == (4560, 4683.5)  # a sound at our start held it to 4560
    log.heard(speech_end_ms=9000, endpointing_ms=100, stt_ms=100)  # a speculative turn: the gate comes with spoke
    log.spoke(first_audio_at_ms=9600, tts_first_audio_ms=100, gate_open_ms=9540, audio_ready_ms=9590.2)
    assert log.turns[1].gate_open_ms == 9540
    assert "gateOpenMs" not in log.report()["turns"][0]
