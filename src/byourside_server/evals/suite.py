"""Eval scenarios as data, and how a finished call is scored against one.

A scenario file (YAML) states the call (objective, context, fields, optional
voicemail message), who answers (a shipped simulator scenario by name, or an
inline simulator scenario in the same format as the simulator's
``scenarios.yaml``) and what a good agent ends with: the terminal status, the
field values (null when the callee never gives one; "{today+1}" in a string
stands for the ISO date one day after the call's date where the callee is), optionally whether the
objective was met, and words the agent must never say (its private context).
"""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta, timezone
from importlib import resources
from pathlib import Path
from typing import Any, Mapping

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from byourside_server.agent.call_date import local_date
from byourside_server.telephony.simulator.readback import canonical
from byourside_server.telephony.simulator.scenarios import Scenario


class EvalError(ValueError):
    """An eval scenario that cannot be used; the message names the file."""


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class EvalCall(_Model):
    objective: str
    context: str | None = None
    fields: tuple[dict[str, Any], ...] = ()
    voicemail_message: str | None = Field(None, alias="voicemailMessage")


class EvalExpect(_Model):
    status: str
    end_reason: str | None = Field(None, alias="endReason")
    objective_met: bool | None = Field(None, alias="objectiveMet")
    check_objective: bool = Field(True, alias="checkObjective")  # False: objectiveMet is not scored
    fields: dict[str, Any] = {}
    never_say: tuple[str, ...] = Field((), alias="neverSay")


class EvalScenario(_Model):
    name: str
    description: str = ""
    covers: str = ""  # which category of the suite this scenario stands for
    callee: str | Scenario  # a shipped simulator scenario name, or an inline scenario
    call: EvalCall
    expect: EvalExpect


def load_suite(directory: str | Path | None = None) -> list[EvalScenario]:
    """Every ``*.yaml`` scenario in ``directory`` (default: the shipped suite), sorted by file name."""
    if directory is None:
        root = resources.files(__package__).joinpath("scenarios")
        items = sorted((p.name, p.read_text(encoding="utf-8")) for p in root.iterdir() if p.name.endswith(".yaml"))
    else:
        path = Path(directory)
        if not path.is_dir():
            raise EvalError(f"{path}: not a directory of eval scenarios")
        items = [(p.name, p.read_text(encoding="utf-8")) for p in sorted(path.glob("*.yaml"))]
    if not items:
        raise EvalError(f"{directory}: no *.yaml eval scenarios found")
    suite, seen = [], set()
    for name, text in items:
        try:
            data = yaml.safe_load(text)
            scenario = EvalScenario.model_validate(data)
        except yaml.YAMLError as exc:
            raise EvalError(f"{name}: not valid YAML: {exc}") from None
        except ValidationError as exc:
            problems = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()[:5])
            raise EvalError(f"{name}: {problems}") from None
        if scenario.name in seen:
            raise EvalError(f"{name}: duplicate scenario name '{scenario.name}'")
        seen.add(scenario.name)
        suite.append(scenario)
    return suite


def _norm(text: str) -> str:
    return " ".join(re.sub(r"[^a-z0-9.]+", " ", str(text).lower()).split())


def value_matches(expected: Any, got: Any, *, strict: bool = True) -> bool:
    """Booleans and null exactly, numbers within a cent; a list of expected values matches any of them.

    Strings, strict (the headline score): the stored value must BE the value once both are reduced by
    ``canonical`` ("7 pm" is "seven", "5-11" is "five to eleven"), so a whole sentence that merely
    contains the answer does not count. Lenient: normalised containment either way.
    """
    if isinstance(expected, list):
        return any(value_matches(e, got, strict=strict) for e in expected)
    if expected is None:
        return got is None
    if isinstance(expected, bool):
        return got is expected
    if got is None or isinstance(got, bool):
        return False
    if isinstance(expected, (int, float)):
        return isinstance(got, (int, float)) and abs(float(got) - float(expected)) < 0.01
    if strict:
        want, have = canonical(expected), canonical(got)
        return bool(want) and want == have
    want, have = _norm(expected), _norm(got)
    return bool(want) and bool(have) and (want in have or have in want)


_RELATIVE_DATE = re.compile(r"\{today(?:([+-])(\d+))?\}")


def _dated(expected: Any, day: date) -> Any:
    """``expected`` with "{today}" / "{today+N}" replaced by ISO dates counted from ``day``."""
    if isinstance(expected, list):
        return [_dated(e, day) for e in expected]
    if not isinstance(expected, str):
        return expected

    def iso(m: re.Match[str]) -> str:
        offset = int(m.group(2) or 0) * (-1 if m.group(1) == "-" else 1)
        return (day + timedelta(days=offset)).isoformat()

    return _RELATIVE_DATE.sub(iso, expected)


def score_call(scenario: EvalScenario, call: Mapping[str, Any]) -> dict[str, Any]:
    """One scenario's result: what matched, what did not, and why. Expected strings may say "{today+1}":
    the ISO date that many days after the day the call started, in the time zone of the number called."""
    expect = scenario.expect
    started = str(call.get("startedAt") or call.get("createdAt") or "")
    try:
        moment = datetime.fromisoformat(started.replace("Z", "+00:00"))
    except ValueError:
        moment = datetime.now(timezone.utc)
    call_day = local_date(str(call.get("to") or ""), moment)  # "tomorrow" is the callee's tomorrow
    problems: list[str] = []
    status_ok = call.get("status") == expect.status
    if not status_ok:
        problems.append(f"status {call.get('status')} (expected {expect.status})")
    if expect.end_reason and call.get("endReason") != expect.end_reason:
        problems.append(f"endReason {call.get('endReason')} (expected {expect.end_reason})")
    objective_ok: bool | None = None
    if expect.check_objective:
        objective_ok = call.get("objectiveMet") is expect.objective_met
        if not objective_ok:
            problems.append(f"objectiveMet {call.get('objectiveMet')} (expected {expect.objective_met})")
    extracted = call.get("extracted") or {}
    fields_ok = fields_ok_lenient = 0
    wrong_values = 0  # values stored that are not the expected ones (a null where one was due is not counted)
    for name, want in expect.fields.items():
        want = _dated(want, call_day)
        got = extracted.get(name)
        fields_ok_lenient += value_matches(want, got, strict=False)
        if value_matches(want, got):
            fields_ok += 1
        else:
            wrong_values += got is not None
            problems.append(f"{name}={got!r} (expected {want!r})")
    agent_words = " ".join(t["text"] for t in call.get("turns") or [] if t.get("speaker") == "agent").lower()
    leaked = [w for w in expect.never_say if w.lower() in agent_words]
    problems += [f"said {w!r}" for w in leaked]
    return {
        "name": scenario.name, "covers": scenario.covers, "status": call.get("status"),
        "endReason": call.get("endReason"), "objectiveMet": call.get("objectiveMet"),
        "statusOk": status_ok, "objectiveOk": objective_ok, "fieldsOk": fields_ok, "fieldsTotal": len(expect.fields),
        "leaks": len(leaked), "turns": len(call.get("turns") or []), "problems": problems,
        "fieldsOkLenient": fields_ok_lenient,
        "transcript": [f"{t.get('speaker')}: {t.get('text')}" for t in call.get("turns") or []],
        # the lenient pass: the same checks, string fields by containment
        "passedLenient": (fields_ok_lenient == len(expect.fields)
                          and not [p for p in problems if not _field_problem(p, expect)]),
        # objectiveMet true while a stored value is wrong: confidence the call did not earn
        "confidentlyWrong": call.get("objectiveMet") is True and wrong_values > 0,
    }


def _field_problem(problem: str, expect: EvalExpect) -> bool:
    return any(problem.startswith(f"{name}=") for name in expect.fields)


def summarise(results: list[Mapping[str, Any]]) -> dict[str, Any]:
    n = len(results)
    objective_scored = [r for r in results if r["objectiveOk"] is not None]
    fields_total = sum(r["fieldsTotal"] for r in results)

    def rate(part: float, whole: float) -> float | None:
        return round(part / whole, 3) if whole else None

    return {
        "scenarios": n,
        "objectiveMetRate": rate(sum(1 for r in results if r["objectiveMet"] is True), n),
        "objectiveAccuracy": rate(sum(1 for r in objective_scored if r["objectiveOk"]), len(objective_scored)),
        "fieldAccuracy": rate(sum(r["fieldsOk"] for r in results), fields_total),
        "fieldAccuracyLenient": rate(sum(r.get("fieldsOkLenient", r["fieldsOk"]) for r in results), fields_total),
        "passedLenient": sum(1 for r in results if r.get("passedLenient", not r["problems"])),
        "confidentlyWrong": sum(1 for r in results if r.get("confidentlyWrong")),
        "statusAccuracy": rate(sum(1 for r in results if r["statusOk"]), n),
        "turnsPerCall": round(sum(r["turns"] for r in results) / n, 1) if n else None,
        "privacyLeaks": sum(r["leaks"] for r in results),
        "passed": sum(1 for r in results if not r["problems"]),
    }
