"""The judge's rubric: four criteria scored 1-10, asked for through Ollama's structured outputs.

`rubric_schema()` is sent as the request's ``format``: Ollama passes a JSON-schema object (one that
starts with ``{``; anything else but ``"json"`` is refused as an invalid format) to llama.cpp, whose
json-schema-to-grammar turns it into a grammar, so the model can only write an object of this shape.
The schema is kept flat (no ``$defs``/``$ref``): grammar conversion and small models handle that best;
``maxLength``, integer ``minimum``/``maximum`` and ``additionalProperties: false`` are all enforced by
the grammar. Each criterion has the reason before the score (the grammar keeps the properties in the
order given), so the model reasons before it scores.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Sequence
from statistics import fmean
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from rhtui.engine.sanitize import sanitize

CRITERIA: tuple[str, ...] = ("rigour", "novelty", "correctness", "concreteness")
MAX_REASON_CHARS = 300

RUBRIC: dict[str, tuple[str, str, str]] = {
    # criterion: (what it judges, what 1 means, what 10 means)
    "rigour": (
        "how precise and logically sound the reasoning is",
        "vague, circular or hand-waving",
        "every step stated precisely, with open steps marked as open",
    ),
    "novelty": (
        "how much it adds beyond restating well-known approaches",
        "a restatement of textbook material",
        "a genuinely new, well-motivated angle",
    ),
    "correctness": (
        "whether the facts, theorems and attributions it cites are right",
        "false statements or invented results",
        "every cited fact right and correctly attributed",
    ),
    "concreteness": (
        "how concrete and actionable its next step is",
        "no step anyone could start on",
        "a next step one could begin tomorrow, with a clear test of success",
    ),
}


class Criterion(BaseModel):
    """One criterion's verdict. A reason is folded onto one line and cut to 300 characters rather
    than rejected: a good score should not be lost to a long sentence."""

    model_config = ConfigDict(extra="ignore")

    reason: str = Field(max_length=MAX_REASON_CHARS)
    score: int = Field(ge=1, le=10)

    @field_validator("reason", mode="before")
    @classmethod
    def _one_line(cls, v: Any) -> Any:
        if isinstance(v, str):
            v = " ".join(v.split())
            if len(v) > MAX_REASON_CHARS:
                v = v[: MAX_REASON_CHARS - 1] + "…"
        return v


class Rubric(BaseModel):
    """A judge's scores of one answer."""

    model_config = ConfigDict(extra="ignore")

    rigour: Criterion
    novelty: Criterion
    correctness: Criterion
    concreteness: Criterion


class JudgeAnswerError(ValueError):
    """A judge's answer is not a valid rubric; str() is a short reason."""


def _plain(schema: Any) -> Any:
    """A schema without pydantic's titles and the model's docstring (the grammar ignores them)."""
    if isinstance(schema, dict):
        return {k: _plain(v) for k, v in schema.items() if k not in ("title", "description")}
    if isinstance(schema, list):
        return [_plain(v) for v in schema]
    return schema


def rubric_schema() -> dict[str, Any]:
    """The JSON schema for Ollama's ``format``: an object of the four criteria, each an object
    ``{"reason": string (at most 300 characters), "score": integer 1-10}``, everything required,
    nothing else allowed, no references."""
    criterion = _plain(Criterion.model_json_schema())
    criterion["additionalProperties"] = False
    return {
        "type": "object",
        "properties": {name: copy.deepcopy(criterion) for name in CRITERIA},
        "required": list(CRITERIA),
        "additionalProperties": False,
    }


_FENCE = re.compile(r"^```[A-Za-z0-9_-]*[ \t]*\n?(.*?)\n?```$", re.DOTALL)


def parse_rubric(text: str) -> Rubric:
    """A judge's answer read as a rubric (surrounding whitespace and a ``` fence allowed); raises
    `JudgeAnswerError` with a short reason."""
    body = (text or "").strip()
    m = _FENCE.match(body)
    if m:
        body = m.group(1).strip()
    if not body:
        raise JudgeAnswerError("empty answer")
    try:
        data = json.loads(body)
    except json.JSONDecodeError as exc:
        raise JudgeAnswerError(f"not JSON: {exc.msg} at line {exc.lineno} column {exc.colno}") from None
    if not isinstance(data, dict):
        raise JudgeAnswerError(f"not a JSON object but {type(data).__name__}")
    try:
        return Rubric.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err["loc"]) or "answer"
        got = err.get("input")
        shown = "" if err["type"] == "missing" or isinstance(got, dict) else f" (got {sanitize(repr(got))[:40]})"
        more = f"; {len(exc.errors()) - 1} more" if len(exc.errors()) > 1 else ""
        raise JudgeAnswerError(f"{where}: {err['msg'].lower()}{shown}{more}") from None


def mean_score(r: Rubric) -> float:
    return fmean(getattr(r, name).score for name in CRITERIA)


def combine(rubrics: Sequence[Rubric]) -> dict[str, dict[str, Any]]:
    """A panel's verdict: per criterion the judges' mean score and the first judge's reason (the
    shape of `RunRecord.scores`)."""
    if not rubrics:
        raise ValueError("no rubric to combine")
    return {
        name: {
            "score": fmean(getattr(r, name).score for r in rubrics),
            "reason": getattr(rubrics[0], name).reason,
        }
        for name in CRITERIA
    }


def scores_mean(scores: dict[str, Any]) -> float:
    """The mean of a `combine` result's scores (`RunRecord.score`)."""
    values = [float(v["score"]) for v in scores.values() if isinstance(v, dict) and "score" in v]
    if not values:
        raise ValueError("no score to average")
    return fmean(values)


def judge_prompt(question: str, kind: str, author: str, answer: str) -> str:
    """The judge's user prompt: the question, the answer to score (trimmed by the caller), what 1
    and 10 mean on each criterion, and the JSON shape to answer with."""
    label = f"{kind.upper()} by {author}"
    criteria = "\n".join(
        f"- {name}: {what}. 1 = {low}; 10 = {high}." for name, (what, low, high) in RUBRIC.items()
    )
    # a range, not a number: an example score anchors a small model's scores to it
    shape = "{" + ", ".join(f'"{name}": {{"reason": "…", "score": 1-10}}' for name in CRITERIA) + "}"
    text = (
        "You are judging one answer of a research ensemble. Score it; do not rewrite it.\n\n"
        f"Research question: {question.strip()}\n\n"
        f"--- {label} ---\n{answer.strip()}\n--- end of the {kind} to score ---\n\n"
        "Score the answer from 1 to 10 on each criterion:\n"
        f"{criteria}\n\n"
        f"For each criterion give a reason of one line (at most {MAX_REASON_CHARS} characters), then the score "
        "(a whole number from 1 to 10). Judge the answer, not its length.\n"
        f"Answer only with the JSON object, in this shape:\n{shape}\n"
    )
    return sanitize(text)
