"""Plain records shared by the engine's parts (store, scheduler, orchestrator, UI)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

RunStatus = Literal["ok", "timeout", "error", "skipped", "aborted", "emergency"]
RUN_STATUSES: tuple[str, ...] = ("ok", "timeout", "error", "skipped", "aborted", "emergency")
RunKind = Literal["proposal", "critique", "synthesis", "judge"]
"""What a run is in a research round: a proposer's answer to the round's question, the critic's
critique of this round's proposals, the synthesis that merges them, or a judge's scoring of one answer."""
RUN_KINDS: tuple[str, ...] = ("proposal", "critique", "synthesis", "judge")
Health = Literal["healthy", "degraded", "quarantined"]
"""A student's health: no failure in a row; one or two (each followed by a back-off); three or more
(quarantined: skipped, with a probe run now and then, until a run succeeds or a person releases it)."""


@dataclass(frozen=True, slots=True)
class RunRecord:
    """One student's turn in one cycle, as measured and stored."""

    session_id: int
    cycle: int
    student: str
    model: str
    status: RunStatus
    started_at: float
    ended_at: float
    reason: str = ""
    load_s: float | None = None
    prompt_s: float | None = None
    eval_s: float | None = None
    total_s: float | None = None
    wall_s: float | None = None
    prompt_tokens: int | None = None
    tokens: int | None = None
    tok_per_s: float | None = None
    vram_mb: float | None = None
    """Resident VRAM of the model while loaded (Ollama's /api/ps size_vram)."""
    vram_peak_mb: float | None = None
    """Peak card VRAM use seen during the run (probe)."""
    vram_delta_mb: float | None = None
    """Card VRAM used after load minus before (probe cross-check)."""
    energy_j: float | None = None
    proposal: str = ""
    """The answer's text (a proposal, critique, synthesis, or a judge's JSON), as generated, capped."""
    error: str = ""
    id: int | None = None
    # -- provenance (a research round; see rhtui.engine.ensemble) --------------------------------
    kind: RunKind = "proposal"
    question: str = ""
    """The round's research question this run answered (or critiqued, merged, judged)."""
    system: str | None = None
    """The system prompt that applied: the model's own (its Modelfile's SYSTEM, from /api/show)."""
    prompt: str = ""
    """The exact user prompt sent to Ollama (question, context and instructions)."""
    context_ids: tuple[int, ...] = ()
    """Runs whose text was given in the prompt (previous synthesis and critique, this round's proposals)."""
    target_id: int | None = None
    """A judge run: the run it scored."""
    digest: str | None = None
    """The model's digest in Ollama when it ran."""
    options: dict | None = None
    """Options sent with the request (None: the model's own parameters applied)."""
    ollama_version: str | None = None
    done_reason: str | None = None
    """Ollama's done_reason: "stop", or "length" when num_predict/num_ctx cut the answer."""
    verifier: tuple[str, ...] | None = None
    """The deterministic checks: None not verified, () passed, else each failure's reason."""
    scores: dict | None = None
    """The judges' rubric: {criterion: {"score": mean 1-10, "reason": str}}; None unscored."""
    score: float | None = None
    """Mean of the rubric's scores (the panel's mean); None unscored."""


@dataclass(frozen=True, slots=True)
class StudentStats:
    """Per-student averages for `rhtui report` and the queue's learned profile."""

    student: str
    runs: int
    failures: int
    vram_mean_mb: float | None
    vram_p95_mb: float | None
    seconds_mean: float | None
    tokens_mean: float | None
    tok_per_s_mean: float | None


@dataclass(frozen=True, slots=True)
class StudentAnalysis:
    """Per student, what `rhtui report` adds to the averages: success, seconds percentiles, the
    highest VRAM peak, tokens and energy (`Store.student_analysis`)."""

    student: str
    attempts: int
    """Runs that were tried: every status but skipped."""
    ok_runs: int
    skipped: int
    success_rate: float | None
    """ok_runs / attempts (None without an attempt)."""
    seconds_p50: float | None
    """Nearest-rank percentiles of total_s over the ok runs: a value that was measured."""
    seconds_p95: float | None
    seconds_p99: float | None
    vram_peak_max_mb: float | None
    """The highest card VRAM seen during any of its runs (the max of vram_peak_mb, never a mean)."""
    tokens: int
    """Tokens of its ok runs."""
    energy_j: float | None
    """Energy of all its runs (failed ones cost power too); None when no run had power readings."""
    energy_runs: int
    """How many of its runs have an energy figure."""


@dataclass(frozen=True, slots=True)
class CycleSummary:
    """One cycle of a session, counted from its runs (`Store.cycle_summary`)."""

    session_id: int
    cycle: int
    started_at: float
    seconds: float | None
    """How long the cycle took (engine clock); None while it runs or if it was never closed."""
    completed: int
    skipped: int
    failed: int
    """Runs that ended timeout, error, aborted or emergency."""
    tokens: int
    """Tokens of its ok runs."""
    energy_j: float | None
    """Energy of its runs; None when none had power readings."""


@dataclass(frozen=True, slots=True)
class TimelinePoint:
    ts: float
    vram_used_mb: float | None
    """Mean VRAM used over the samples of this point's time bucket."""
    vram_total_mb: float | None
    vram_used_max_mb: float | None = None
    """Max VRAM used in the bucket, so downsampling never hides a spike."""


@dataclass(frozen=True, slots=True)
class SessionInfo:
    id: int
    name: str
    started_at: float
    ended_at: float | None = None
    end_reason: str = ""
    meta: dict = field(default_factory=dict)
