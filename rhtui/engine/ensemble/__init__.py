"""The research round's pure parts: the agenda of questions, who plays which role, the prompts and
their fitting to a context window, the deterministic verifier and the judge's rubric.

No I/O here except reading a question file; the orchestrator runs the round with these.
"""

from __future__ import annotations

from rhtui.engine.ensemble.agenda import MAX_QUESTION_CHARS, Agenda, AgendaError, load_questions
from rhtui.engine.ensemble.judge import (
    CRITERIA,
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
from rhtui.engine.ensemble.prompts import (
    TRIMMED,
    CharsPerToken,
    budget_chars,
    critique_prompt,
    proposal_prompt,
    student_num_ctx,
    synthesis_prompt,
    trim,
)
from rhtui.engine.ensemble.roles import TIERS, Roles, assign_roles, role_of
from rhtui.engine.ensemble.verifier import Verdict, end_marker, required_sections, rh_claim, verify

__all__ = [
    "CRITERIA",
    "MAX_QUESTION_CHARS",
    "TIERS",
    "TRIMMED",
    "Agenda",
    "AgendaError",
    "CharsPerToken",
    "Criterion",
    "JudgeAnswerError",
    "Roles",
    "Rubric",
    "Verdict",
    "assign_roles",
    "budget_chars",
    "combine",
    "critique_prompt",
    "end_marker",
    "judge_prompt",
    "load_questions",
    "mean_score",
    "parse_rubric",
    "proposal_prompt",
    "required_sections",
    "rh_claim",
    "role_of",
    "rubric_schema",
    "scores_mean",
    "student_num_ctx",
    "synthesis_prompt",
    "trim",
    "verify",
]
