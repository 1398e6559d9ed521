"""What the simulated students write: proposals per student and question with the Modelfiles'
headings, answers that quote the proposals a prompt gives, and Ollama's structured outputs
(``format``: "json" or a JSON schema) over real HTTP, with the ``malformed_json`` fault."""

from __future__ import annotations

import json
import re
from typing import Any, Literal

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import BaseModel, Field

from rhtui.engine.clock import ManualClock
from rhtui.sim.faults import FAULT_KINDS
from rhtui.sim.scenario import Scenario
from rhtui.sim.text import END_MARKER, HOSTILE_PIECES, read_prompt, tokenize
from rhtui.sim.world import SimWorld

pytestmark = pytest.mark.integration

HEADINGS = ("TITLE:", "IDEA:", "METHOD:", "EXPECTED EVIDENCE:", "RISKS:")
QUESTION = "Research question: How far can zero-density estimates near the critical line be pushed?"
OTHER_QUESTION = "Research question: What would a spectral operator for the zeros have to satisfy?"


class Aspect(BaseModel):
    score: int = Field(ge=1, le=10)
    reason: str = Field(max_length=120)


class Rubric(BaseModel):
    """What a judge returns; nested, so pydantic's schema has ``$defs`` and ``$ref``."""

    novelty: int = Field(ge=1, le=10)
    rigour: Aspect
    feasibility: float = Field(ge=0, le=1)
    verdict: Literal["reject", "revise", "accept"]
    sound: bool
    concerns: list[str] = Field(min_length=1, max_length=3)
    summary: str = Field(max_length=160)


HAND_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "student": {"type": "string"},
        "scores": {
            "type": "object",
            "properties": {
                "clarity": {"type": "integer", "minimum": 1, "maximum": 10},
                "depth": {"type": "integer", "minimum": 0, "exclusiveMaximum": 5},
            },
            "required": ["clarity", "depth"],
        },
        "weight": {"type": "number", "minimum": 0.5, "maximum": 2},
        "notes": {"type": "array", "items": {"type": "string", "maxLength": 40}, "minItems": 2, "maxItems": 4},
        "label": {"enum": ["weak", "fair", "strong"]},
        "flag": {"type": ["boolean", "null"]},
    },
    "required": ["student", "scores", "weight", "notes", "label", "flag"],
}


def check(value: Any, schema: dict[str, Any]) -> list[str]:
    """The ways `value` breaks the small part of JSON Schema that HAND_SCHEMA uses."""
    errors: list[str] = []
    if "enum" in schema:
        return [] if value in schema["enum"] else [f"{value!r} not in {schema['enum']}"]
    types = schema["type"] if isinstance(schema["type"], list) else [schema["type"]]
    ok = {
        "object": isinstance(value, dict), "array": isinstance(value, list), "string": isinstance(value, str),
        "integer": isinstance(value, int) and not isinstance(value, bool), "boolean": isinstance(value, bool),
        "number": isinstance(value, int | float) and not isinstance(value, bool), "null": value is None,
    }
    if not any(ok[t] for t in types):
        return [f"{value!r} is not {types}"]
    if isinstance(value, dict):
        errors += [f"missing {k}" for k in schema.get("required", []) if k not in value]
        for k, v in value.items():
            errors += check(v, schema["properties"][k])
    if isinstance(value, list):
        if not schema.get("minItems", 0) <= len(value) <= schema.get("maxItems", len(value)):
            errors.append(f"{len(value)} items")
        for item in value:
            errors += check(item, schema["items"])
    if isinstance(value, str) and len(value) > schema.get("maxLength", len(value)):
        errors.append(f"{value!r} longer than {schema['maxLength']}")
    if ok["number"]:
        if value < schema.get("minimum", value) or value > schema.get("maximum", value):
            errors.append(f"{value} out of range")
        if "exclusiveMaximum" in schema and value >= schema["exclusiveMaximum"]:
            errors.append(f"{value} not below {schema['exclusiveMaximum']}")
    return errors


def critique_prompt(proposals: dict[str, str], previous: str | None = None) -> str:
    parts = [QUESTION, "Critique each proposal below: name its weakest step."]
    for name, text in proposals.items():
        parts += [f"--- PROPOSAL by {name} ---", text]
    if previous is not None:
        parts += ["--- PREVIOUS SYNTHESIS ---", previous]
    return "\n".join(parts)


def title_of(text: str) -> str:
    return next(line for line in text.splitlines() if line.startswith("TITLE:"))[len("TITLE:"):].strip()


async def answer(world: SimWorld, model: str, prompt: str, **kw: Any) -> tuple[str, str, int]:
    async with world.generation(model, prompt, **kw) as g:
        text = "".join([t async for t in g.stream()])
    return text, g.done_reason, g.eval_count


# -- proposals ----------------------------------------------------------------------------------


async def test_students_and_questions_give_different_proposals_with_the_headings(sim) -> None:
    world, _, client = sim
    texts = {}
    for model, prompt in (("rh-alpha", QUESTION), ("rh-gamma", QUESTION), ("rh-alpha", OTHER_QUESTION)):
        r = await client.generate(model=model, prompt=prompt)
        assert r.done_reason == "stop"
        assert 1500 < r.eval_count < 4500 and 3.0 < len(r.response) / r.eval_count < 6.0
        texts[model, prompt] = r.response
    assert len(set(texts.values())) == 3
    for text in texts.values():
        at = [text.index(h) for h in HEADINGS]
        assert at == sorted(at) and text.startswith("TITLE: ")
        assert END_MARKER not in text
    assert '"How far can zero-density estimates near the critical line be pushed?"' in texts["rh-alpha", QUESTION]
    assert "spectral operator" in texts["rh-alpha", OTHER_QUESTION]


async def test_the_end_line_is_written_only_when_asked_and_not_a_stop(manual_world: SimWorld) -> None:
    w = manual_world
    system = f"You are rh-alpha. Write one proposal.\nEnd with the line: {END_MARKER}"
    w.create_model("rh-stopped", from_="nous-hermes:7b", system=system,
                   parameters={"stop": ["### Instruction:", END_MARKER]})
    w.create_model("rh-unstopped", from_="nous-hermes:7b", system=system)
    text, reason, _ = await answer(w, "rh-stopped", QUESTION)
    assert END_MARKER not in text and reason == "stop" and text.rstrip().endswith(".")
    text, reason, _ = await answer(w, "rh-unstopped", QUESTION)
    assert text.endswith("\n\n" + END_MARKER) and reason == "stop"
    text, _, _ = await answer(w, "rh-unstopped", QUESTION, options={"stop": ["METHOD:"]})
    assert "IDEA:" in text and "METHOD:" not in text  # a request's stop cuts the answer there


async def test_hostile_proposals_keep_their_headings(scenario: Scenario) -> None:
    w = SimWorld(scenario, ManualClock(), seed=2, hostile_text=True)
    text, _, _ = await answer(w, "rh-delta", QUESTION)
    assert sum(text.count(p) for p in HOSTILE_PIECES if len(p) > 2) >= 3
    assert all(h in text for h in ("IDEA:", "METHOD:", "RISKS:"))


async def test_a_critique_quotes_the_title_of_every_proposal_it_is_given(sim) -> None:
    world, _, client = sim
    given = {name: (await client.generate(model=name, prompt=QUESTION)).response for name in ("rh-alpha", "rh-gamma")}
    titles = {name: title_of(text) for name, text in given.items()}
    assert titles["rh-alpha"] != titles["rh-gamma"]
    critique = (await client.generate(model="rh-zeta", prompt=critique_prompt(given))).response
    method = critique[critique.index("METHOD:"): critique.index("EXPECTED EVIDENCE:")]
    assert f'Check 1 (rh-alpha\'s TITLE "{titles["rh-alpha"]}")' in method
    assert f'Check 2 (rh-gamma\'s TITLE "{titles["rh-gamma"]}")' in method
    assert all(h in critique for h in HEADINGS)
    # a synthesis that is given the last one builds on it, by its title
    previous = "TITLE: Mollifiers and spacings, merged\n\nIDEA: The last round's plan."
    prompt = critique_prompt(given, previous).replace("Critique each proposal", "Write a synthesis of")
    synthesis = (await client.generate(model="rh-delta", prompt=prompt)).response
    idea = synthesis[synthesis.index("IDEA:"): synthesis.index("METHOD:")]
    assert "the previous synthesis: Mollifiers and spacings, merged" in idea
    assert f'rh-gamma\'s TITLE "{titles["rh-gamma"]}"' in synthesis


def test_read_prompt_finds_blocks_titles_and_the_question() -> None:
    prompt = ("Question: Is Li's criterion within reach?\nMerge these into one synthesis.\n"
              "--- PROPOSAL by rh-beta ---\n\n**TITLE:** Moments, again\nIDEA: x\n"
              "--- PROPOSAL by rh-epsilon:latest ---\nNo heading here\nmore\n"
              "--- END OF PROPOSALS ---\nThanks.")
    ctx = read_prompt(prompt)
    assert ctx.question == "Is Li's criterion within reach?" and ctx.role == "synthesis"
    assert [(g.author, g.title) for g in ctx.proposals] == [("rh-beta", "Moments, again"),
                                                            ("rh-epsilon:latest", "No heading here")]
    assert ctx.proposals[1].body == "No heading here\nmore" and ctx.previous_title is None
    assert read_prompt(prompt.replace("Merge these into one synthesis.", "Review them.")).role == "critique"
    critique = prompt.replace("Merge these into one synthesis.", "Critique them; a synthesis follows.")
    assert read_prompt(critique).role == "critique"
    assert read_prompt(QUESTION).role == "proposal" and read_prompt("").question == ""


@given(st.text())
def test_tokens_put_together_are_the_text(text: str) -> None:
    assert "".join(tokenize(text)) == text
    assert "".join(tokenize(text, json=True)) == text


# -- structured outputs -----------------------------------------------------------------------


async def test_a_schema_gives_valid_json_deterministic_per_seed_and_prompt(sim, make_world) -> None:
    world, _, client = sim
    schema = Rubric.model_json_schema()
    assert "$defs" in schema  # the nested model comes as a reference
    prompt = critique_prompt({"rh-alpha": "TITLE: Mollifiers beyond 4/7\nIDEA: Longer mollifiers."})
    r = await client.generate(model="rh-zeta", prompt=prompt, format=schema)
    rubric = Rubric.model_validate_json(r.response)
    assert r.done_reason == "stop" and 40 <= r.eval_count <= 250
    assert 2.5 < len(r.response) / r.eval_count < 6.0  # about four characters a token
    assert "\n" not in rubric.summary and "\n" not in rubric.rigour.reason
    again = await client.generate(model="rh-zeta", prompt=prompt, format=schema)
    assert again.response == r.response  # per (seed, model, prompt): the same
    other = await client.generate(model="rh-zeta", prompt=prompt.replace("4/7", "1/2"), format=schema)
    assert Rubric.model_validate_json(other.response) != rubric  # another answer, another judgement
    async with world.generation("rh-zeta", prompt, format=schema) as g:  # a world of the same seed agrees
        same = "".join([t async for t in g.stream()])
    assert same == r.response
    fresh = make_world(seed=world.seed + 1)
    async with fresh.generation("rh-zeta", prompt, format=schema) as g:
        assert "".join([t async for t in g.stream()]) != r.response


async def test_scores_spread_across_answers_and_fit_a_hand_written_schema(manual_world: SimWorld) -> None:
    clarity = []
    for i in range(24):
        prompt = critique_prompt({f"rh-{i % 3}": f"TITLE: Plan number {i}\nIDEA: Idea {i}."})
        text, reason, tokens = await answer(manual_world, "rh-beta", prompt, format=HAND_SCHEMA)
        value = json.loads(text)
        assert check(value, HAND_SCHEMA) == [] and reason == "stop" and tokens <= 250
        assert value["student"] == f"rh-{i % 3}"
        clarity.append(value["scores"]["clarity"])
    assert len(set(clarity)) >= 4 and min(clarity) >= 1 and max(clarity) <= 10


async def test_two_judges_of_one_answer_roughly_agree(manual_world: SimWorld) -> None:
    gaps, spread = [], []
    for i in range(12):
        prompt = critique_prompt({"rh-gamma": f"TITLE: Zeros near height 10^{i + 12}\nIDEA: Compute."})
        a, _, _ = await answer(manual_world, "rh-alpha", prompt, format=Rubric.model_json_schema())
        b, _, _ = await answer(manual_world, "rh-beta", prompt, format=Rubric.model_json_schema())
        na, nb = Rubric.model_validate_json(a).novelty, Rubric.model_validate_json(b).novelty
        gaps.append(abs(na - nb))
        spread.append(na)
    assert sum(gaps) / len(gaps) < (max(spread) - min(spread))  # judges agree more than answers do


async def test_format_json_and_chat_and_a_bad_format(sim) -> None:
    world, server, client = sim
    r = await client.generate(model="rh-alpha", prompt="Summarise RH in one line.", format="json")
    value = json.loads(r.response)
    assert isinstance(value, dict) and value and r.done_reason == "stop"
    msgs = [{"role": "system", "content": "You are a judge."}, {"role": "user", "content": QUESTION}]
    c = await client.chat(model="rh-beta", messages=msgs, format=Rubric.model_json_schema())
    Rubric.model_validate_json(c.message.content)
    parts = [p async for p in await client.chat(model="rh-beta", messages=msgs, stream=True,
                                                format=Rubric.model_json_schema())]
    assert len(parts) >= 2 and parts[-1].done and parts[-1].done_reason == "stop"
    streamed = "".join(p.message.content for p in parts)
    assert streamed == c.message.content and parts[-1].eval_count == c.eval_count
    async with httpx.AsyncClient(base_url=server.url) as http:
        r2 = await http.post("/api/generate", json={"model": "rh-alpha", "prompt": "x", "format": "xml",
                                                     "stream": False})
        assert r2.status_code == 500
        assert r2.json() == {"error": 'invalid format: "\\"xml\\""; expected "json" or a valid JSON Schema object'}
        plain = await http.post("/api/generate", json={"model": "rh-alpha", "prompt": QUESTION, "format": "",
                                                        "stream": False, "options": {"num_predict": 40}})
        assert plain.json()["response"].startswith("TITLE:")  # "" is no format


async def test_malformed_json_once_then_valid_again(sim) -> None:
    world, _, client = sim
    assert "malformed_json" in FAULT_KINDS
    schema = Rubric.model_json_schema()
    world.inject("malformed_json", model="rh-beta", count=1)
    plain = await client.generate(model="rh-beta", prompt=QUESTION, options={"num_predict": 30})
    assert plain.response.startswith("TITLE:")  # a request without format leaves it for the next one
    assert world.fault_book.pending() == [("malformed_json", "rh-beta:latest", 1)]
    prompt = critique_prompt({"rh-alpha": "TITLE: A plan\nIDEA: x"})
    bad = await client.generate(model="rh-beta", prompt=prompt, format=schema)
    with pytest.raises(ValueError):
        json.loads(bad.response)
    assert bad.done and bad.done_reason == "stop" and bad.eval_count > 5
    good = await client.generate(model="rh-beta", prompt=prompt, format=schema)
    Rubric.model_validate_json(good.response)
    assert world.fault_book.pending() == []


async def test_malformed_json_is_cut_short_or_wrapped_in_prose(manual_world: SimWorld) -> None:
    kinds = set()
    for i in range(12):
        manual_world.inject("malformed_json")
        text, _, _ = await answer(manual_world, "rh-alpha", f"Judge answer {i}.", format=HAND_SCHEMA)
        with pytest.raises(ValueError):
            json.loads(text)
        kinds.add("prose" if text.startswith("Here is") else "cut")
    assert kinds == {"prose", "cut"}


async def test_scenarios_without_a_rate_never_malform_json(hostile: Scenario) -> None:
    w = SimWorld(hostile, ManualClock(), seed=4)
    for i in range(30):
        assert not w.fault_book.malformed_json("rh-alpha"), i


async def test_hostile_text_stays_valid_json(scenario: Scenario) -> None:
    w = SimWorld(scenario, ManualClock(), seed=9, hostile_text=True)
    strings = []
    for i in range(12):
        text, _, _ = await answer(w, "rh-gamma", f"Judge answer {i}.", format=Rubric.model_json_schema())
        rubric = Rubric.model_validate_json(text)
        strings += [rubric.summary, rubric.rigour.reason, *rubric.concerns]
    assert any(re.search(r"\x1b|\[/?(bold|blink|link)", s) for s in strings)
