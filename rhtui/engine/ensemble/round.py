"""One research round under way: its question, its cast, and what it produced so far."""

from __future__ import annotations

from dataclasses import dataclass, field

from rhtui.engine.ensemble.roles import Roles
from rhtui.engine.records import RunRecord

TIER_SECONDS = {"quick": 300.0, "standard": 900.0, "deep": 1800.0}
"""Engine-clock seconds a person's round may take by tier; steps that would start later are skipped."""


@dataclass
class Round:
    """One research round under way."""

    n: int
    question: str
    roles: Roles
    kind: str = "cycle"
    tier: str | None = None
    judged: bool = True
    deadline: float | None = None
    deadline_said: bool = False
    """The log said that the tier's time is up (once)."""
    order: list[str] = field(default_factory=list)
    """The proposers in the order they run."""
    proposals: list[RunRecord] = field(default_factory=list)
    """This round's ok proposals, verified or not (see `valid`)."""
    critique: RunRecord | None = None
    synthesis: RunRecord | None = None
    completed: list[str] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)
    skip_kinds: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    attempted: int = 0
    tokens: int = 0

    @property
    def valid(self) -> list[RunRecord]:
        return [r for r in self.proposals if r.verifier == ()]
