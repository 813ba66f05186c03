"""``byourside eval``: the shipped suite, scoring, the CLI, and an LLM run against the fake server."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from byourside_server.evals.runner import format_report, run_suite
from byourside_server.evals.suite import EvalError, load_suite, summarise, value_matches
from byourside_server.settings import Settings
from fake_openai import FakeOpenAI, analysis, say, tool

BIN = Path(sys.executable).parent


def run_cli(*args: str, tmp_path: Path, **env: str) -> subprocess.CompletedProcess:
    base = {"PATH": "/usr/bin:/bin", "BYS_DATA_DIR": str(tmp_path), "BYS_LOG_LEVEL": "warning", **env}
    return subprocess.run([str(BIN / "byourside"), "eval", *args], env=base, capture_output=True, text=True, timeout=120)


def test_shipped_suite_covers_the_required_situations():
    suite = load_suite()
    assert len(suite) >= 20
    covers = " ".join(s.covers for s in suite)
    for topic in ("booking", "appointment confirmation", "price", "opening hours", "reschedule", "refusal",
                  "wrong number", "voicemail", "IVR", "screening", "context", "hostile", "instructions"):
        assert topic in covers, topic
    assert any(s.call.voicemail_message for s in suite)
    assert any(s.expect.never_say for s in suite)


@pytest.mark.parametrize("expected,got,ok", [
    (85, 85.0, True), (149.99, 149.99, True), (85, 95, False), (True, True, True), (True, 1, False),
    (None, None, True), (None, "x", False), ("thursday", "Thursday", True), (["ten", "10"], "10 am", True),
    ("nine to five", "Fine", False), (85, None, False), ("five to eleven", "5-11", True),
    ("the fifteenth", "15th", True), (["seven", "7"], "7:00 pm", True),
])
def test_value_matching(expected, got, ok):
    assert value_matches(expected, got) is ok


@pytest.mark.parametrize("expected,got,strict,lenient", [
    ("five to eleven", "We're open from five to eleven, Tuesday to Sunday", False, True),
    (["seven", "7"], "Yes, we have a table for two available tonight at seven", False, True),
    ("half past six", "Today we close at half past six, there's a swim meet tonight", False, True),
    ("wednesday", "Wednesday", True, True),
    ("j.smith@gmail.com", "j dot smith at gmail dot com", False, False),
])
def test_strict_scoring_wants_the_value_not_a_sentence_containing_it(expected, got, strict, lenient):
    assert value_matches(expected, got) is strict
    assert value_matches(expected, got, strict=False) is lenient


def test_cli_runs_the_shipped_suite_with_the_offline_brain(tmp_path):
    result = run_cli("--json", tmp_path=tmp_path)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    summary = report["summary"]
    assert report["brain"] == "offline" and summary["scenarios"] == len(load_suite())
    assert summary["statusAccuracy"] == 1.0  # every terminal status is right with the offline agent
    assert 0 < summary["fieldAccuracy"] <= 1 and summary["turnsPerCall"] > 0 and summary["privacyLeaks"] == 0
    # the bar of issue 16, strict scoring: >= 90% of scenarios and fields, never objectiveMet with a wrong value
    assert summary["passed"] >= 0.9 * summary["scenarios"] and summary["fieldAccuracy"] >= 0.9
    assert summary["confidentlyWrong"] == 0
    assert summary["passedLenient"] >= summary["passed"] and summary["fieldAccuracyLenient"] >= summary["fieldAccuracy"]
    by_name = {r["name"]: r for r in report["results"]}
    assert by_name["voicemail_leave_message"]["status"] == "voicemail"
    assert by_name["no_answer"]["turns"] == 0
    text = run_cli("--only", "tasting_menu_price", "--only", "no_answer", tmp_path=tmp_path)
    assert "objective-met rate: 50%" in text.stdout and "status accuracy: 100%" in text.stdout
    assert "turns per call:" in text.stdout and "field accuracy: 100%" in text.stdout


def test_cli_reports_failed_expectations_and_bad_files(tmp_path):
    suite = tmp_path / "suite"
    suite.mkdir()
    (suite / "a.yaml").write_text(
        "name: wrong_price\ncallee: copper_pot\ncall:\n  objective: Ask the tasting menu price.\n"
        "  fields: [{name: menu_price, type: number}]\nexpect:\n  status: completed\n  objectiveMet: true\n"
        "  fields: {menu_price: 99}\n")
    result = run_cli("--scenarios", str(suite), tmp_path=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "menu_price=85 (expected 99)" in result.stdout and "field accuracy: 0%" in result.stdout
    (suite / "b.yaml").write_text("name: broken\ncallee: copper_pot\n")
    result = run_cli("--scenarios", str(suite), tmp_path=tmp_path)
    assert result.returncode == 1 and "error: b.yaml: call" in result.stderr and "Traceback" not in result.stderr
    result = run_cli("--scenarios", str(tmp_path / "missing"), tmp_path=tmp_path)
    assert result.returncode == 1 and "not a directory" in result.stderr


async def test_suite_runs_against_an_llm_brain(tmp_path):
    fake = FakeOpenAI().start()
    try:
        fake.chat += [
            say("Hi, this is an AI assistant calling on behalf of Acme Assistant. How much is the tasting menu?"),
            tool("end_call", "Eighty-five dollars, thank you. Goodbye!", outcome="objective_met", reason="Got it."),
        ]
        fake.analysis.append(analysis("The tasting menu is $85.", True, {"menu_price": 85},
                                      {"menu_price": {"quote": "eighty-five dollars per person", "turnIndex": 2}}))
        settings = Settings(_env_file=None, data_dir=tmp_path, llm_base_url=fake.base_url, llm_model="fake",
                            llm_backoff_seconds=0)
        suite = [s for s in load_suite() if s.name == "tasting_menu_price"]
        report = await run_suite(settings, suite, timeout_seconds=60)
    finally:
        fake.stop()
    assert report["summary"]["fieldAccuracy"] == 1.0 and report["summary"]["objectiveMetRate"] == 1.0
    assert report["results"][0]["problems"] == [] and report["results"][0]["turns"] == 5
    assert "tasting menu" in fake.chat_requests[0]["messages"][0]["content"]


def test_load_suite_rejects_duplicates(tmp_path):
    text = "name: same\ncallee: copper_pot\ncall: {objective: x}\nexpect: {status: completed}\n"
    (tmp_path / "a.yaml").write_text(text)
    (tmp_path / "b.yaml").write_text(text)
    with pytest.raises(EvalError, match="duplicate"):
        load_suite(tmp_path)


async def test_held_out_scenarios_meet_the_bar_with_the_offline_agent(tmp_path):
    """Scenarios the offline agent was not tuned on (tests/evals_holdout, not shipped)."""
    suite = load_suite(Path(__file__).resolve().parents[1] / "evals_holdout")
    report = await run_suite(Settings(_env_file=None, data_dir=tmp_path), suite, timeout_seconds=300)
    summary = report["summary"]
    assert summary["statusAccuracy"] == 1.0 and summary["confidentlyWrong"] == 0
    assert summary["passed"] >= 0.9 * summary["scenarios"] and summary["fieldAccuracy"] >= 0.9


def test_report_prints_strict_and_lenient_figures():
    results = [{"name": "a", "covers": "", "status": "completed", "endReason": "objective_met", "objectiveMet": True,
                "statusOk": True, "objectiveOk": True, "fieldsOk": 0, "fieldsTotal": 1, "leaks": 0, "turns": 5,
                "problems": ["time='We open at nine' (expected 'nine')"], "fieldsOkLenient": 1, "passedLenient": True,
                "confidentlyWrong": True, "transcript": []}]
    text = format_report({"summary": summarise(results), "results": results}, "offline")
    assert "passed (strict): 0" in text and "objective met with a wrong value: 1" in text
    assert "lenient (a string field may be a sentence containing the value): passed: 1   field accuracy: 100%" in text
