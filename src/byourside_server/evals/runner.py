"""``byourside eval``: run the suite as real calls and print the scores.

Every scenario becomes one call placed through the normal placement path on a
private SQLite store, dialled on the phone simulator (instant time) and
conducted by the configured brain through the real runtime and worker. Each
scenario's callee is mapped to its own simulator number, so calls run
concurrently without interfering.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
from pathlib import Path
from typing import Any

import yaml

from byourside_server.api.requests import validate_call_request
from byourside_server.wire import call_to_json
from byourside_server.evals.suite import EvalError, EvalScenario, load_suite, score_call, summarise
from byourside_server.guardrails.numbers import check_destination
from byourside_server.settings import Settings

EVAL_ACCOUNT = "Acme Assistant"
CALLER_ID = "+14155550100"


def _numbers(services: Any, count: int) -> list[str]:
    """Distinct simulator-range numbers the destination guard accepts, one per scenario."""
    found = []
    for area in range(201, 1000):
        number = f"+1{area}5550199"
        try:
            check_destination(number, services.destination_policy)
        except Exception:  # noqa: BLE001 - skip area codes the guard blocks
            continue
        found.append(number)
        if len(found) == count:
            return found
    raise EvalError(f"too many scenarios ({count}) for the simulator number plan")


def _operator_file(suite: list[EvalScenario], numbers: list[str], directory: Path) -> Path:
    scenarios: dict[str, Any] = {}
    mapping: dict[str, str] = {}
    for scenario, number in zip(suite, numbers):
        if isinstance(scenario.callee, str):
            mapping[number] = scenario.callee
        else:
            key = f"eval_{scenario.name}"
            scenarios[key] = scenario.callee.model_dump(mode="json", exclude_none=True)
            mapping[number] = key
    path = directory / "eval-scenarios.yaml"
    path.write_text(yaml.safe_dump({"scenarios": scenarios, "numbers": mapping}, sort_keys=False), encoding="utf-8")
    return path


async def run_suite(settings: Settings, suite: list[EvalScenario], *, timeout_seconds: float = 900) -> dict[str, Any]:
    """Run every scenario as a call; returns {"summary": ..., "results": [...]}."""
    from byourside_server.server import build_worker
    from byourside_server.services import build_services

    with tempfile.TemporaryDirectory(prefix="byourside-eval-") as tmp:
        base = settings.model_copy(update={
            "data_dir": Path(tmp), "database_url": None, "sim_time_scale": 0.0, "poll_seconds": 0.05,
            "heartbeat_seconds": 0.5, "run_workers": True, "telephony": "simulator",
            # simulated callees answer at any hour: the scenarios' area codes span every US time zone
            "calling_hours_start": "00:00", "calling_hours_end": "24:00"})
        probe = build_services(base)
        numbers = _numbers(probe, len(suite))
        await probe.aclose()
        scenario_file = _operator_file(suite, numbers, Path(tmp))
        services = build_services(base.model_copy(update={"sim_scenarios_file": scenario_file}))
        try:
            await services.db.migrate()
            worker = build_worker(services)
        except BaseException:
            await services.aclose()
            raise
        account = await services.accounts.create(EVAL_ACCOUNT, services.default_limits)
        await services.accounts.set_limits(account.id, calls_per_minute=100_000, max_concurrent_calls=100_000,
                                           monthly_minutes=10_000_000)
        await services.accounts.add_number(account.id, CALLER_ID, make_default=True)
        key, _ = await services.accounts.create_key(account.id)
        account = await services.accounts.get(account.id)
        task = asyncio.create_task(worker.run())
        try:
            from byourside_server.placement import place_call

            ids = []
            for scenario, number in zip(suite, numbers):
                body: dict[str, Any] = {"to": number, "objective": scenario.call.objective,
                                        "fields": list(scenario.call.fields)}
                if scenario.call.context:
                    body["context"] = scenario.call.context
                if scenario.call.voicemail_message:
                    body["voicemailMessage"] = scenario.call.voicemail_message
                created = await place_call(services, account, key, validate_call_request(body))
                ids.append(created.call.id)
            calls = await _wait_all(services, account.id, ids, timeout_seconds)
        finally:
            worker.stop()
            await asyncio.wait_for(task, timeout=60)
            await services.aclose()
    results = [score_call(s, c) for s, c in zip(suite, calls)]
    return {"summary": summarise(results), "results": results}


async def _wait_all(services: Any, account_id: str, ids: list[str], timeout: float) -> list[dict[str, Any]]:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        calls = [await services.calls.get(account_id, i) for i in ids]
        if all(c.status.terminal for c in calls):
            return [call_to_json(c) for c in calls]
        if loop.time() > deadline:
            raise EvalError(f"{sum(not c.status.terminal for c in calls)} calls did not finish in {timeout:.0f}s")
        await asyncio.sleep(0.1)


def format_report(report: dict[str, Any], brain: str) -> str:
    s = report["summary"]

    def pct(value: float | None) -> str:
        return "n/a" if value is None else f"{value * 100:.0f}%"

    lines = [f"{'scenario':30} {'status':10} {'obj.met':8} {'fields':7} {'turns':5}  problems"]
    for r in report["results"]:
        met = {True: "yes", False: "no", None: "-"}[r["objectiveMet"]]
        fields = f"{r['fieldsOk']}/{r['fieldsTotal']}"
        lines.append(f"{r['name'][:30]:30} {str(r['status']):10} {met:8} {fields:7} {r['turns']:<5}  "
                     + ("; ".join(r["problems"]) or "ok"))
    lines += [
        "",
        f"brain: {brain}   scenarios: {s['scenarios']}   passed (strict): {s['passed']}",
        f"objective-met rate: {pct(s['objectiveMetRate'])}   objective accuracy: {pct(s['objectiveAccuracy'])}",
        f"field accuracy: {pct(s['fieldAccuracy'])}   status accuracy: {pct(s['statusAccuracy'])}   "
        f"turns per call: {s['turnsPerCall']}   privacy leaks: {s['privacyLeaks']}",
        f"objective met with a wrong value: {s['confidentlyWrong']}",
        f"lenient (a string field may be a sentence containing the value): passed: {s['passedLenient']}   "
        f"field accuracy: {pct(s['fieldAccuracyLenient'])}",
    ]
    return "\n".join(lines)


async def run_cli(settings: Settings, args: argparse.Namespace) -> int:
    from byourside_server.errors import CliError

    overrides: dict[str, Any] = {}
    if getattr(args, "brain", None):
        overrides["brain"] = args.brain
    if getattr(args, "personas", None):
        overrides["sim_personas"] = args.personas
    settings = settings.model_copy(update=overrides)
    try:
        suite = load_suite(args.scenarios)
        if args.only:
            unknown = sorted(set(args.only) - {s.name for s in suite})
            if unknown:
                raise EvalError(f"no scenario named {', '.join(unknown)}")
            suite = [s for s in suite if s.name in args.only]
        report = await run_suite(settings, suite)
    except EvalError as exc:
        raise CliError(str(exc)) from None
    if args.json:
        print(json.dumps({"brain": settings.effective_brain, **report}, indent=2))
    else:
        print(format_report(report, settings.effective_brain))
    return 0
