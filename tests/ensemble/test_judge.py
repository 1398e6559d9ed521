"""The judge's rubric: the schema sent as Ollama's format, parsing answers, and averaging a panel."""

from __future__ import annotations

import json

import pytest

from rhtui.engine.ensemble.judge import (
    CRITERIA,
    MAX_REASON_CHARS,
    Criterion,
    JudgeAnswerError,
    Rubric,
    combine,
    judge_prompt,
    mean_score,
    parse_rubric,
    rubric_schema,
    scores_mean,
)


def _answer(**scores: int) -> dict:
    return {name: {"reason": f"{name} reason", "score": scores.get(name, 5)} for name in CRITERIA}


def _walk(value):
    if isinstance(value, dict):
        yield from value
        for v in value.values():
            yield from _walk(v)
    elif isinstance(value, list):
        for v in value:
            yield from _walk(v)


def test_schema_is_flat_and_complete():
    schema = rubric_schema()
    keys = set(_walk(schema))
    assert not keys & {"$defs", "$ref", "definitions", "allOf", "anyOf", "title", "description"}
    assert schema["type"] == "object"
    assert list(schema["properties"]) == list(CRITERIA)
    assert schema["required"] == list(CRITERIA)
    assert schema["additionalProperties"] is False
    for name in CRITERIA:
        crit = schema["properties"][name]
        assert crit["type"] == "object"
        assert list(crit["properties"]) == ["reason", "score"]  # the reason is written first
        assert crit["required"] == ["reason", "score"]
        assert crit["additionalProperties"] is False
        assert crit["properties"]["score"] == {"type": "integer", "minimum": 1, "maximum": 10}
        assert crit["properties"]["reason"] == {"type": "string", "maxLength": MAX_REASON_CHARS}


def test_schema_is_what_ollama_accepts_as_a_format():
    # Ollama takes "json" or a JSON object; the object must survive a JSON round trip
    wire = json.dumps(rubric_schema())
    assert wire.startswith("{")
    assert json.loads(wire) == rubric_schema()


def test_schema_copies_are_independent():
    schema = rubric_schema()
    schema["properties"]["rigour"]["properties"]["score"]["maximum"] = 99
    assert schema["properties"]["novelty"]["properties"]["score"]["maximum"] == 10
    assert rubric_schema()["properties"]["rigour"]["properties"]["score"]["maximum"] == 10


def test_schema_matches_the_model():
    assert tuple(Rubric.model_fields) == CRITERIA
    assert parse_rubric(json.dumps(_answer())) == Rubric.model_validate(_answer())


def test_parse_valid():
    r = parse_rubric(json.dumps(_answer(rigour=7, novelty=3, correctness=10, concreteness=1)))
    assert (r.rigour.score, r.novelty.score, r.correctness.score, r.concreteness.score) == (7, 3, 10, 1)
    assert r.rigour.reason == "rigour reason"


@pytest.mark.parametrize(
    "wrap",
    [
        "```json\n{}\n```",
        "```\n{}\n```",
        "  \n```JSON\n{}```\n ",
        "\n\n{}\n\n",
        "```{}```",
    ],
)
def test_parse_fenced_and_padded(wrap):
    text = wrap.replace("{}", json.dumps(_answer(rigour=8), indent=2))
    assert parse_rubric(text).rigour.score == 8


def test_parse_ignores_extra_keys():
    data = _answer()
    data["overall"] = 9
    data["rigour"]["confidence"] = "high"
    assert parse_rubric(json.dumps(data)).rigour.score == 5


def test_integral_float_and_numeric_string_scores_are_read():
    data = _answer()
    data["rigour"]["score"] = 7.0
    data["novelty"]["score"] = "6"
    r = parse_rubric(json.dumps(data))
    assert (r.rigour.score, r.novelty.score) == (7, 6)


def test_long_or_multiline_reason_is_folded_and_cut():
    data = _answer()
    data["rigour"]["reason"] = "line one\nline two\t" + "x" * 400
    reason = parse_rubric(json.dumps(data)).rigour.reason
    assert "\n" not in reason
    assert reason.startswith("line one line two x")
    assert len(reason) == MAX_REASON_CHARS
    assert reason.endswith("…")


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("", "empty answer"),
        ("```\n```", "empty answer"),
        ("The answer is good.", "not JSON"),
        ('{"rigour": {"reason": "x", "score": 5}', "not JSON"),  # cut off
        ("[1, 2]", "not a JSON object but list"),
        ('"text"', "not a JSON object but str"),
    ],
)
def test_parse_malformed(text, reason):
    with pytest.raises(JudgeAnswerError) as info:
        parse_rubric(text)
    assert str(info.value).startswith(reason)


@pytest.mark.parametrize(
    ("change", "where"),
    [
        ({"rigour": {"reason": "r", "score": 11}}, "rigour.score"),
        ({"novelty": {"reason": "r", "score": 0}}, "novelty.score"),
        ({"correctness": {"reason": "r", "score": -3}}, "correctness.score"),
        ({"concreteness": {"reason": "r", "score": 6.5}}, "concreteness.score"),
        ({"rigour": {"reason": "r", "score": "high"}}, "rigour.score"),
        ({"rigour": {"reason": "r"}}, "rigour.score"),
        ({"rigour": {"score": 4}}, "rigour.reason"),
        ({"rigour": {"reason": 42, "score": 4}}, "rigour.reason"),
        ({"rigour": 7}, "rigour"),
    ],
)
def test_parse_invalid_values(change, where):
    data = {**_answer(), **change}
    with pytest.raises(JudgeAnswerError) as info:
        parse_rubric(json.dumps(data))
    assert str(info.value).startswith(where + ":")


def test_parse_missing_criterion_and_counts_the_rest():
    data = _answer()
    del data["novelty"], data["concreteness"]
    with pytest.raises(JudgeAnswerError) as info:
        parse_rubric(json.dumps(data))
    assert str(info.value) == "novelty: field required; 1 more"


def test_out_of_range_reason_shows_the_value():
    data = {**_answer(), "rigour": {"reason": "r", "score": 11}}
    with pytest.raises(JudgeAnswerError) as info:
        parse_rubric(json.dumps(data))
    assert "(got 11)" in str(info.value)
    assert "less than or equal to 10" in str(info.value)


def test_mean_score():
    assert mean_score(Rubric.model_validate(_answer(rigour=10, novelty=1, correctness=6, concreteness=3))) == 5.0


def test_combine_a_panel():
    a = Rubric.model_validate(_answer(rigour=8, novelty=3))
    b = Rubric.model_validate(_answer(rigour=5, novelty=4))
    b.rigour.reason = "second judge"
    combined = combine([a, b])
    assert set(combined) == set(CRITERIA)
    assert combined["rigour"] == {"score": 6.5, "reason": "rigour reason"}
    assert combined["novelty"] == {"score": 3.5, "reason": "novelty reason"}
    assert combined["correctness"]["score"] == 5.0
    assert scores_mean(combined) == pytest.approx((6.5 + 3.5 + 5 + 5) / 4)
    assert combine([a]) == {n: {"score": float(getattr(a, n).score), "reason": getattr(a, n).reason} for n in CRITERIA}
    assert json.loads(json.dumps(combined)) == combined  # stored as JSON


def test_combine_and_mean_need_something():
    with pytest.raises(ValueError):
        combine([])
    with pytest.raises(ValueError):
        scores_mean({})


def test_criterion_model():
    assert Criterion(reason="ok", score=1).score == 1
    with pytest.raises(ValueError):
        Criterion(reason="ok", score=11)


def test_judge_prompt():
    prompt = judge_prompt("Is the zero-free region sharp?", "synthesis", "rh-beta", "TITLE: x\x1b]52;c;aGk=\x07\n")
    assert "Research question: Is the zero-free region sharp?" in prompt
    assert "--- SYNTHESIS by rh-beta ---\nTITLE: x^[]52;c;aGk=^G\n" in prompt
    assert "\x1b" not in prompt and "\x07" not in prompt
    for name in CRITERIA:
        assert f"- {name}: " in prompt
    assert prompt.count("1 = ") == 4 and prompt.count("10 = ") == 4
    assert "Answer only with the JSON object" in prompt
