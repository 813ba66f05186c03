"""Turning the model's analysis JSON into the client's outcome, keeping only backed values.

A value is kept only when its evidence quote is found (case, spacing and
punctuation aside) in the text of the turn it names; anything else (a guessed
value, a quote from the wrong turn, a quote the model made up) becomes null.
"""

from __future__ import annotations

import json
import re
from typing import Any, Mapping, Sequence

from byourside_server.agent.base import Analysis
from byourside_server.agent.etiquette import coerce
from byourside_server.domain import CallTask, Turn


class AnalysisFormatError(ValueError):
    """The model's analysis was not the JSON object we asked for."""


def _norm(text: str) -> str:
    return " ".join(re.sub(r"[^\w$%.'-]+", " ", text.lower().replace("\u2019", "'")).split()).strip(" .")


def quote_in_turn(quote: str, turn: Turn) -> bool:
    q = _norm(quote)
    return bool(q) and q in _norm(turn.text)


def parse_json_object(text: str) -> dict[str, Any]:
    """The JSON object in ``text``, tolerating a markdown fence or words around it."""
    stripped = text.strip()
    fence = re.match(r"^```(?:json)?\s*(.*?)\s*```$", stripped, re.DOTALL)
    if fence:
        stripped = fence.group(1)
    try:
        data = json.loads(stripped)
    except ValueError:
        start, end = stripped.find("{"), stripped.rfind("}")
        if start < 0 or end <= start:
            raise AnalysisFormatError("no JSON object in the analysis") from None
        try:
            data = json.loads(stripped[start : end + 1])
        except ValueError:
            raise AnalysisFormatError("the analysis is not valid JSON") from None
    if not isinstance(data, dict):
        raise AnalysisFormatError("the analysis is not a JSON object")
    return data


def build_analysis(task: CallTask, turns: Sequence[Turn], data: Mapping[str, Any]) -> Analysis:
    raw_values = data.get("extracted") if isinstance(data.get("extracted"), Mapping) else {}
    raw_evidence = data.get("evidence") if isinstance(data.get("evidence"), Mapping) else {}
    extracted: dict[str, Any] = {}
    evidence: dict[str, dict[str, Any]] = {}
    for field in task.fields:
        value = coerce(field, raw_values.get(field.name))
        backing = _backing(raw_evidence.get(field.name), turns) if value is not None else None
        if backing is None:
            extracted[field.name] = None
            continue
        extracted[field.name] = value
        evidence[field.name] = backing
    met = data.get("objectiveMet")
    summary = data.get("summary")
    return Analysis(
        summary=summary.strip() if isinstance(summary, str) and summary.strip() else "The call ended.",
        extracted=extracted,
        objective_met=met if isinstance(met, bool) else None,
        evidence=evidence,
    )


def _backing(item: Any, turns: Sequence[Turn]) -> dict[str, Any] | None:
    if not isinstance(item, Mapping):
        return None
    quote, index = item.get("quote"), item.get("turnIndex")
    if not isinstance(quote, str) or isinstance(index, bool) or not isinstance(index, int):
        return None
    if not 0 <= index < len(turns) or not quote_in_turn(quote, turns[index]):
        return None
    return {"quote": quote.strip(), "turnIndex": index}
