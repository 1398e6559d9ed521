"""Who does what in a research round: proposers, the critic, the synthesiser and the judges.

Pure: the orchestrator passes the students, which are enabled now, and the recent scores.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from rhtui.engine.config import StudentSpec

DEFAULT_CRITIC = "rh-zeta"
"""The student that critiques when no student has a role in the config."""

TIERS: tuple[str, ...] = ("quick", "standard", "deep")
"""How much of the ensemble a person's question (`rhtui ask`) gets: quick = two proposers and a
synthesis; standard = four proposers, the critic and a synthesis; deep = a full round with judges."""

_TIER_PROPOSERS = {"quick": 2, "standard": 4}


@dataclass(frozen=True)
class Roles:
    """One round's cast, every name an enabled student, proposers in config order."""

    proposers: tuple[str, ...]
    critic: str | None
    synthesiser: str | None
    """May also be a proposer (the best-scoring one): it proposes, then merges."""
    judges: tuple[str, ...]


def _role(spec: StudentSpec) -> str:
    if spec.role is not None:
        return spec.role
    return "critic" if spec.name == DEFAULT_CRITIC else "proposer"


def assign_roles(
    students: Sequence[StudentSpec],
    enabled: Mapping[str, bool],
    *,
    judges: Sequence[str] = (),
    scores: Mapping[str, float] | None = None,
    tier: str | None = None,
) -> Roles:
    """The cast of a round.

    `enabled`: a student's switch now (a student it does not name keeps its config's `enabled`).
    `judges`: the configured panel (`ensemble.judges`); names that are unknown or disabled are left
    out, and a panel with nobody left falls back as if none were configured: the students with role
    "judge", else the critic, else the synthesiser.
    `scores`: each student's mean judge score over recent rounds; the best-scoring proposer
    synthesises when no enabled student has role "synthesis" (ties and no scores: the first).
    `tier`: None for a normal cycle, or one of `TIERS` for a person's question.
    """
    if tier is not None and tier not in TIERS:
        raise ValueError(f"unknown tier {tier!r}: use one of {', '.join(TIERS)}")
    active = [s for s in students if enabled.get(s.name, s.enabled)]
    by_role: dict[str, list[str]] = {"proposer": [], "critic": [], "synthesis": [], "judge": []}
    for s in active:
        by_role[_role(s)].append(s.name)
    proposers = by_role["proposer"]
    critic = by_role["critic"][0] if by_role["critic"] else None
    synthesiser = by_role["synthesis"][0] if by_role["synthesis"] else _best(proposers, scores or {})
    names = {s.name for s in active}
    panel = list(dict.fromkeys(j for j in judges if j in names))
    if not panel:
        panel = by_role["judge"] or [x for x in (critic, synthesiser) if x is not None][:1]
    if tier == "quick":
        return Roles(tuple(proposers[: _TIER_PROPOSERS[tier]]), None, synthesiser, ())
    if tier == "standard":
        return Roles(tuple(proposers[: _TIER_PROPOSERS[tier]]), critic, synthesiser, ())
    return Roles(tuple(proposers), critic, synthesiser, tuple(panel))


def _best(proposers: Sequence[str], scores: Mapping[str, float]) -> str | None:
    """The proposer with the highest score; a proposer without a score ranks below any score."""
    best: str | None = None
    best_score: float | None = None
    for name in proposers:
        score = scores.get(name)
        if score is not None and not math.isfinite(score):
            score = None
        if best is None or (score is not None and (best_score is None or score > best_score)):
            best, best_score = name, score
    return best


def role_of(roles: Roles, student: str) -> str:
    """What the queue shows for a student this round: "proposal", "critique", "synthesis" or
    "judge", the first that applies; "" for a student without a part."""
    if student in roles.proposers:
        return "proposal"
    if student == roles.critic:
        return "critique"
    if student == roles.synthesiser:
        return "synthesis"
    if student in roles.judges:
        return "judge"
    return ""
