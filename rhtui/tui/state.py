"""What the dashboard knows: engine events folded into plain, bounded state. No Textual here.

`UiModel.apply(event)` is the reducer: the handler for the event's type (the
`_HANDLERS` table at the end) updates the state and bumps a version counter per
*area* (status, gauges, queue, log, charts, proposals, history, banner, backend).
A screen remembers the versions it last drew and touches only the widgets whose
area changed, so an idle dashboard does almost nothing per event.

The log lines are the engine's own (`eventlog.format_event`), so the dashboard,
the headless log and the `events` table word every event alike; like the headless
log, the dashboard leaves out the debug-level ones.

Everything that grows with the session is bounded: the log, the rounds, the proposals and
the run history are deques; the VRAM timeline (timeline.py) is a fixed number of
buckets whose width doubles when full; per-student aggregates are running sums.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from rhtui.engine import events as ev
from rhtui.engine.config import BudgetPolicy
from rhtui.engine.cost import cost_of, energy_wh
from rhtui.engine.eventlog import format_event
from rhtui.engine.hardware import HardwareSnapshot
from rhtui.engine.records import RunRecord, StudentStats
from rhtui.tui.timeline import TIMELINE_BUCKETS, Timeline

__all__ = [
    "ACTIVE", "AREAS", "CYCLES_KEPT", "HISTORY_KEPT", "LOG_LINES", "PROPOSALS_KEPT", "ROUNDS_KEPT",
    "TIMELINE_BUCKETS", "Answer", "HistoryRow", "LogLine", "Round", "StudentRow", "Timeline", "UiModel",
]

AREAS = (
    "status",
    "gauges",
    "queue",
    "log",
    "vram",
    "students",
    "cycles",
    "proposals",
    "scores",
    "history",
    "banner",
    "backend",
)

LOG_LINES = 1000
PROPOSALS_KEPT = 200
HISTORY_KEPT = 500
"""Runs the history view keeps (about 4 hours at the reference pace); the store keeps them all."""
CYCLES_KEPT = 500
VRAM_SAMPLES_PER_STUDENT = 200
ROUNDS_KEPT = 40
"""Research rounds the proposals view keeps (each a question and its answers); the store keeps them all."""
SCORES_PER_STUDENT = 200
"""Scored answers per student the score chart keeps."""
SCORED_RUNS_KEPT = 2000
"""Run ids whose score was counted: a repeated score (a rescore, a replay) replaces, never adds twice."""
ACTIVE = ("loading", "running", "unloading")
"""A student's phases on the card: with preloading, one student loads while another writes."""

RUN_STATUS_TO_ROW = {
    "ok": "done",
    "timeout": "timeout",
    "error": "failed",
    "aborted": "aborted",
    "emergency": "emergency",
    "skipped": "skipped",
}


@dataclass(frozen=True, slots=True)
class LogLine:
    seq: int
    ts: float
    level: str
    text: str


@dataclass(slots=True)
class StudentRow:
    """One line of the student queue."""

    name: str
    model: str
    enabled: bool = True
    status: str = "waiting"
    """waiting, loading, running, unloading, done, timeout, failed, aborted, emergency,
    skipped, disabled, missing."""
    reason: str = ""
    position: int | None = None
    in_cycle: bool = False
    need_mb: float | None = None
    fits: bool | None = None
    fit_reason: str = ""
    tokens: int = 0
    tok_s: float | None = None
    elapsed_s: float | None = None
    timeout_s: float | None = None
    learned: StudentStats | None = None
    """The scheduler's learned profile (all sessions), when the engine shares it."""
    health: str = "healthy"
    """healthy, degraded (failed its last tries) or quarantined (the engine's StudentHealthChanged)."""
    health_reason: str = ""
    role: str = ""
    """Its role this cycle (proposal, critique, synthesis or judge; "" none), from CycleStarted."""
    kind: str = ""
    """What its current (or last) run of this cycle is: a student may critique, then judge."""
    preload_beside: str | None = None
    """Loading early, beside this student that is writing (a Preload that overlapped)."""
    # this session's aggregates (bounded)
    runs: int = 0
    failures: int = 0
    ok_runs: int = 0
    seconds_sum: float = 0.0
    seconds_n: int = 0
    tps_sum: float = 0.0
    tps_n: int = 0
    tokens_sum: int = 0
    vram: deque[float] = field(default_factory=lambda: deque(maxlen=VRAM_SAMPLES_PER_STUDENT))
    score_sum: float = 0.0
    score_n: int = 0
    score_points: deque[tuple[int, int | None, float]] = field(
        default_factory=lambda: deque(maxlen=SCORES_PER_STUDENT))
    """(cycle, run id, score) of its scored answers, oldest first (the score chart)."""

    @property
    def mean_score(self) -> float | None:
        """The mean of the judges' scores of its answers seen this session (None: none scored yet)."""
        return self.score_sum / self.score_n if self.score_n else None

    def session_stats(self) -> StudentStats:
        vram = sorted(self.vram)
        return StudentStats(
            student=self.name,
            runs=self.runs,
            failures=self.failures,
            vram_mean_mb=(sum(vram) / len(vram)) if vram else None,
            vram_p95_mb=_p95(vram),
            seconds_mean=(self.seconds_sum / self.seconds_n) if self.seconds_n else None,
            tokens_mean=(self.tokens_sum / self.ok_runs) if self.ok_runs else None,
            tok_per_s_mean=(self.tps_sum / self.tps_n) if self.tps_n else None,
        )

    def profile(self) -> StudentStats:
        """The learned profile when the engine gave one, else this session's numbers."""
        return self.learned if self.learned is not None else self.session_stats()


def _p95(sorted_values: list[float]) -> float | None:
    if not sorted_values:
        return None
    k = max(0, math.ceil(0.95 * len(sorted_values)) - 1)
    return sorted_values[k]


@dataclass(slots=True)
class Answer:
    """One run of a research round as the proposals view shows it: the run, and its score once a
    judge gave one (`RunScored` arrives after the run finished)."""

    seq: int
    run: RunRecord
    score: float | None = None
    scores: dict | None = None
    """{criterion: {"score": float, "reason": str}}"""
    judges: tuple[str, ...] = ()
    scored: bool = False
    """A judge's answer arrived (or the run carried its score): `score` None then means unscored."""
    score_reason: str = ""
    """Why it is unscored (the judges' answers were malformed), in the engine's words."""


@dataclass(slots=True)
class Round:
    """One cycle's research round: its question, who holds which role, and its runs by kind."""

    cycle: int
    question: str = ""
    roles: tuple[tuple[str, str], ...] = ()
    runs: dict[str, list[Answer]] = field(default_factory=dict)
    """kind (proposal, critique, synthesis, judge) -> its runs, in the order they finished."""

    def answers(self) -> list[Answer]:
        """What the round answered, in reading order: the proposals, the critique, the synthesis
        (a judge's run is not an answer: its score shows on the answer it scored)."""
        out: list[Answer] = []
        for kind in ("proposal", "critique", "synthesis"):
            out += self.runs.get(kind, [])
        for kind, items in self.runs.items():  # a kind this version does not know, last
            if kind not in ("proposal", "critique", "synthesis", "judge"):
                out += items
        return out

    def find(self, run_id: int | None, student: str, kind: str) -> Answer | None:
        """The answer with `run_id`; without an id, the student's latest of that kind."""
        for items in self.runs.values():
            for a in items:
                if run_id is not None and a.run.id == run_id:
                    return a
        if run_id is None:
            for a in reversed(self.runs.get(kind, [])):
                if a.run.student == student:
                    return a
        return None


@dataclass(frozen=True, slots=True)
class HistoryRow:
    seq: int
    cycle: int
    student: str
    status: str
    started_at: float
    seconds: float | None = None
    tokens: int | None = None
    tok_s: float | None = None
    vram_mb: float | None = None
    reason: str = ""


class UiModel:
    """The dashboard's state, built only from engine events (plus the settings it starts from)."""

    def __init__(
        self,
        *,
        session_name: str,
        host: str,
        students: Iterable[tuple[str, str, bool]],
        duration_s: float,
        budget: BudgetPolicy,
        sample_interval_s: float = 1.0,
        price_per_kwh: float | None = None,
        currency: str = "",
    ) -> None:
        self.versions: dict[str, int] = dict.fromkeys(AREAS, 0)
        self.session_name = session_name
        self.session_id: int | None = None
        self.host = host
        self.backend_version: str | None = None
        self.probe_name: str | None = None
        self.policy: str | None = None
        self.speed: float = 1.0
        """How much faster than real time the engine clock runs (the simulator's --speed)."""
        self.duration_s = duration_s
        self.budget = budget
        self.started_ts: float | None = None
        self.finished_ts: float | None = None
        self.now: float | None = None
        self.state: str = "starting"
        self.state_reason: str = ""
        self.cycle: int = 0
        self.order: tuple[str, ...] = ()
        self.question: str = ""
        """This cycle's research question (untrusted text: sanitise before showing it)."""
        self._active: dict[str, None] = {}
        """Students in a phase on the card (loading, running, unloading), in the order they began."""
        self.students: dict[str, StudentRow] = {}
        for name, model, enabled in students:
            self.students[name] = StudentRow(name=name, model=model, enabled=enabled)
            if not enabled:
                self.students[name].status = "disabled"
        self.snapshot: HardwareSnapshot | None = None
        self.vram_source: str = "probe"
        self.emergency: ev.EmergencyStop | None = None
        self.backend_down: ev.BackendDown | None = None
        self.finished: ev.SessionFinished | None = None
        self.engine_error: str | None = None
        self.alarm: ev.BudgetAlarm | None = None
        self.log: deque[LogLine] = deque(maxlen=LOG_LINES)
        self.log_seq = 0
        self.proposals: deque[tuple[int, RunRecord]] = deque(maxlen=PROPOSALS_KEPT)
        """The answers with text (proposals, critiques, syntheses; no judge's run), oldest first."""
        self.proposal_seq = 0
        self.answer_seq = 0
        self.rounds: deque[Round] = deque(maxlen=ROUNDS_KEPT)
        """This session's research rounds, oldest first."""
        self._scored: dict[int, tuple[str, float]] = {}
        """run id -> (student, score) counted in the student's mean (bounded: SCORED_RUNS_KEPT)."""
        self.history: deque[HistoryRow] = deque(maxlen=HISTORY_KEPT)
        self.history_seq = 0
        self.cycle_tokens: deque[tuple[int, int]] = deque(maxlen=CYCLES_KEPT)
        self.timeline = Timeline(width_s=max(1.0, 2.5 * sample_interval_s))
        self.runs_total = 0
        self.tokens_total = 0
        self.energy_j_total = 0.0
        """Energy of this session's runs (their energy_j), as `rhtui report` sums it."""
        self.power_measured = False
        """A run had an energy figure, or a sample a power reading: else the energy is N/A."""
        self.price_per_kwh = price_per_kwh
        """`cost.price_per_kwh` (None: no cost shown)."""
        self.currency = currency

    # -- helpers -------------------------------------------------------------

    def bump(self, *areas: str) -> None:
        for a in areas:
            self.versions[a] += 1

    def add_log(self, ts: float, level: str, text: str) -> None:
        self.log_seq += 1
        self.log.append(LogLine(self.log_seq, ts, level, text))
        self.bump("log")

    def log_event(self, e: ev.Event) -> None:
        """The engine's line for the event, as the headless log prints it (debug lines left out)."""
        line = format_event(e)
        if line is None:
            return
        level, text = line
        if level != "debug":
            self.add_log(e.ts, level, text)

    def row(self, name: str) -> StudentRow:
        r = self.students.get(name)
        if r is None:  # a student the settings did not list (e.g. `watch` of another config)
            r = self.students[name] = StudentRow(name=name, model=name)
        return r

    @property
    def elapsed_s(self) -> float | None:
        if self.started_ts is None:
            return None
        end = self.finished_ts if self.finished_ts is not None else self.now
        if end is None:
            return 0.0
        return max(0.0, end - self.started_ts)

    @property
    def energy_wh(self) -> float | None:
        """The session's energy so far (Wh); None while no power was measured."""
        return energy_wh(self.energy_j_total) if self.power_measured else None

    @property
    def cost(self) -> float | None:
        """What the session's energy cost at `price_per_kwh`; None without a price or a measure."""
        return cost_of(self.energy_wh, self.price_per_kwh)

    @property
    def remaining_s(self) -> float | None:
        e = self.elapsed_s
        return None if e is None else max(0.0, self.duration_s - e)

    @property
    def active(self) -> list[str]:
        """The students on the card now, the writer first: with preloading, one may load while
        another writes."""
        writers = [s for s in self._active if (r := self.students.get(s)) is not None and r.status == "running"]
        return writers + [s for s in self._active if s not in writers]

    @property
    def current(self) -> str | None:
        """The student writing now (else the one loading or unloading); None when none is active."""
        active = self.active
        return active[0] if active else None

    def _activate(self, student: str) -> None:
        self._active.pop(student, None)
        self._active[student] = None

    def _deactivate(self, student: str) -> None:
        self._active.pop(student, None)

    def round(self, cycle: int, question: str = "") -> Round:
        """The round of `cycle` (made when a run arrives for a cycle whose start was not seen)."""
        for r in reversed(self.rounds):
            if r.cycle == cycle:
                if question and not r.question:
                    r.question = question
                return r
        rnd = Round(cycle=cycle, question=question)
        self.rounds.append(rnd)
        return rnd

    def find_answer(self, seq: int) -> Answer | None:
        for rnd in reversed(self.rounds):
            for items in rnd.runs.values():
                for a in items:
                    if a.seq == seq:
                        return a
        return None

    @property
    def next_student(self) -> str | None:
        for name in self.order:
            r = self.students.get(name)
            if r is not None and r.enabled and r.status == "waiting" and r.in_cycle:
                return name
        return None

    def set_now(self, now: float) -> None:
        """The UI clock ticked; the status line changes only if the shown seconds do."""
        old = self.elapsed_s
        self.now = now
        new = self.elapsed_s
        if old is None or new is None or int(old) != int(new):
            self.bump("status")

    def set_enabled(self, student: str, enabled: bool) -> None:
        r = self.row(student)
        if r.enabled == enabled:
            return
        r.enabled = enabled
        if not enabled and r.status in ("waiting",):
            r.status = "disabled"
            r.reason = "disabled by user"
        elif enabled and r.status == "disabled":
            r.status = "waiting"
            r.reason = ""
        self.bump("queue")

    def set_profiles(self, profiles: dict[str, StudentStats]) -> None:
        changed = False
        for name, stats in profiles.items():
            r = self.row(name)
            if r.learned != stats:
                r.learned = stats
                changed = True
        if changed:
            self.bump("queue")

    # -- folding events --------------------------------------------------------

    def apply(self, e: ev.Event) -> None:
        handler = _HANDLERS.get(type(e))
        if handler is not None:
            handler(self, e)
        self.log_event(e)

    def _hardware(self, e: ev.HardwareSampled) -> None:
        s = e.snapshot
        self.snapshot = s
        if s.power_w is not None and not self.power_measured:
            self.power_measured = True
            self.bump("status")
        self.vram_source = e.vram_source
        self.bump("gauges")
        if self.timeline.add(s.ts, s.vram_used_mb, s.vram_total_mb):
            self.bump("vram")

    def _session_started(self, e: ev.SessionStarted) -> None:
        self.session_id = e.session_id
        self.session_name = e.name
        self.duration_s = e.duration_s
        self.host = e.backend_host or self.host
        self.backend_version = e.backend_version or self.backend_version
        self.probe_name = e.probe
        self.policy = e.policy
        self.speed = float(getattr(e, "speed", 1.0) or 1.0)
        self.started_ts = e.ts
        self.now = max(self.now or e.ts, e.ts)
        self.finished_ts = None
        self.finished = None
        for name in e.students:
            self.row(name)
        self.bump("status", "queue", "banner")

    def _state(self, e: ev.StateChanged) -> None:
        if e.state == self.state and e.reason == self.state_reason:
            return
        self.state = e.state
        self.state_reason = e.reason
        if e.state == "running" and self.emergency is not None:
            self.emergency = None
        if e.state == "running" and self.backend_down is not None:
            self.backend_down = None
            self.bump("backend")
        self.bump("status", "banner")

    def _cycle_started(self, e: ev.CycleStarted) -> None:
        self.cycle = e.cycle
        self.order = tuple(e.order)
        self.question = e.question
        roles: dict[str, str] = {}
        for student, role in e.roles:
            roles.setdefault(student, role)  # the first listed is the one the queue shows
            self.row(student)
        rnd = self.round(e.cycle, e.question)
        rnd.roles = tuple(e.roles)
        for name, r in self.students.items():
            r.in_cycle = name in self.order
            r.position = self.order.index(name) + 1 if r.in_cycle else None
            r.role, r.kind = roles.get(name, ""), ""
            if name in self._active:  # loading early for this cycle, or still unloading: its phase stands
                continue
            r.preload_beside = None
            r.tokens, r.tok_s, r.elapsed_s, r.timeout_s = 0, None, None, None
            r.reason = ""
            if r.enabled:
                r.status = "waiting" if r.in_cycle else "idle"
            else:
                r.status = "disabled"
                r.reason = "disabled by user"
        self.bump("status", "queue", "proposals")

    def _queued(self, e: ev.StudentQueued) -> None:
        r = self.row(e.student)
        r.position = e.position
        r.in_cycle = True
        r.need_mb = e.need_mb
        r.fits = e.fits
        r.fit_reason = e.reason
        self.bump("queue")

    def _fits_checked(self, e: ev.FitsChecked) -> None:
        changed = False
        for name, need, fits, reason in e.fits:
            r = self.row(name)
            new = (need, fits, reason)
            if (r.need_mb, r.fits, r.fit_reason) != new:
                r.need_mb, r.fits, r.fit_reason = new
                changed = True
        if changed:
            self.bump("queue")

    def _profiles(self, e: ev.ProfilesUpdated) -> None:
        self.set_profiles({s.student: s for s in e.profiles})

    def _started(self, e: ev.StudentStarted) -> None:
        r = self.row(e.student)
        self._activate(e.student)
        r.status = "loading"
        r.reason = ""
        r.kind = e.kind
        r.role = r.role or e.kind
        r.preload_beside = None
        r.need_mb = e.need_mb if e.need_mb is not None else r.need_mb
        r.fits = True
        r.tokens, r.tok_s, r.elapsed_s, r.timeout_s = 0, None, 0.0, e.timeout_s
        self.bump("queue", "status")

    def _phase(self, e: ev.StudentPhaseChanged) -> None:
        r = self.row(e.student)
        before = self.current
        if e.phase in ACTIVE:
            self._activate(e.student)
        if r.status != e.phase:
            r.status = e.phase
            self.bump("queue")
        if self.current != before:
            self.bump("status")

    def _preload(self, e: ev.Preload) -> None:
        """The next student loads beside the writer (overlapped): both are on the card now."""
        r = self.row(e.student)
        if not e.overlapped:
            if r.preload_beside is not None:
                r.preload_beside = None
                self.bump("queue")
            return
        r.preload_beside = e.beside
        if r.status not in ACTIVE:
            r.status = "loading"
            r.tokens, r.tok_s, r.elapsed_s = 0, None, None
        self._activate(e.student)
        self.bump("queue", "status")

    def _tokens(self, e: ev.TokensProgress) -> None:
        r = self.row(e.student)
        self._activate(e.student)
        # the row is redrawn when the shown second changes (or the status): at most about once
        # a second however fast the engine reports tokens; the numbers are the latest then
        shown_before = (r.status, int(r.elapsed_s or 0), r.tok_s is None)
        r.status = "running"
        r.tokens, r.tok_s, r.elapsed_s, r.timeout_s = e.tokens, e.tok_per_s, e.elapsed_s, e.timeout_s
        if shown_before != (r.status, int(r.elapsed_s or 0), r.tok_s is None):
            self.bump("queue")

    def _finished(self, e: ev.StudentFinished) -> None:
        run = e.run
        r = self.row(e.student)
        self._deactivate(e.student)
        r.preload_beside = None
        r.status = RUN_STATUS_TO_ROW.get(run.status, run.status)
        r.reason = run.reason or run.error
        r.tokens = run.tokens or r.tokens
        r.tok_s = run.tok_per_s if run.tok_per_s is not None else r.tok_s
        r.elapsed_s = run.wall_s if run.wall_s is not None else r.elapsed_s
        r.runs += 1
        if run.status in ("error", "timeout", "emergency"):
            r.failures += 1
        seconds = run.total_s if run.total_s is not None else run.wall_s
        if run.status == "ok":
            r.ok_runs += 1
            r.tokens_sum += run.tokens or 0
            if seconds is not None:
                r.seconds_sum += seconds
                r.seconds_n += 1
            if run.tok_per_s is not None:
                r.tps_sum += run.tok_per_s
                r.tps_n += 1
        if run.vram_mb is not None:
            r.vram.append(run.vram_mb)
        self.runs_total += 1
        self.tokens_total += run.tokens or 0
        if run.energy_j is not None:
            self.energy_j_total += run.energy_j
            self.power_measured = True
        self.history_seq += 1
        self.history.append(
            HistoryRow(
                seq=self.history_seq,
                cycle=run.cycle,
                student=run.student,
                status=run.status,
                started_at=run.started_at,
                seconds=seconds,
                tokens=run.tokens,
                tok_s=run.tok_per_s,
                vram_mb=run.vram_mb,
                reason=run.reason or run.error,
            )
        )
        self._add_to_round(run)
        self.bump("queue", "history", "students", "status")

    def _add_to_round(self, run: RunRecord) -> None:
        if run.status == "skipped":
            return
        self.answer_seq += 1
        answer = Answer(seq=self.answer_seq, run=run)
        if run.score is not None or run.scores:  # a run read back after it was judged (`rhtui watch`)
            answer.scored, answer.score, answer.scores = True, run.score, run.scores
            if run.score is not None:
                self._count_score(run.id, run.student, run.cycle, run.score)
        self.round(run.cycle, run.question).runs.setdefault(run.kind, []).append(answer)
        if run.proposal and run.kind != "judge":
            self.proposal_seq += 1
            self.proposals.append((answer.seq, run))
        self.bump("proposals")

    def _count_score(self, run_id: int | None, student: str, cycle: int, score: float) -> None:
        """Add a score to the student's mean and chart; a run scored again replaces its old score."""
        if not math.isfinite(score):
            return
        if run_id is not None and run_id in self._scored:
            old_student, old = self._scored.pop(run_id)
            o = self.row(old_student)
            o.score_sum -= old
            o.score_n -= 1
            kept = [p for p in o.score_points if p[1] != run_id]
            o.score_points.clear()
            o.score_points.extend(kept)
        r = self.row(student)
        r.score_sum += score
        r.score_n += 1
        r.score_points.append((cycle, run_id, score))
        if run_id is not None:
            self._scored[run_id] = (student, score)
            while len(self._scored) > SCORED_RUNS_KEPT:
                del self._scored[next(iter(self._scored))]
        self.bump("scores", "queue")

    def _run_scored(self, e: ev.RunScored) -> None:
        """A judge scored an answer (after it finished): on the answer, and in its author's mean."""
        answer = None
        for rnd in reversed(self.rounds):
            if rnd.cycle == e.cycle:
                answer = rnd.find(e.run_id, e.student, e.kind)
                break
        if answer is not None:
            answer.scored = True
            answer.score, answer.scores, answer.judges = e.score, e.scores, tuple(e.judges)
            answer.score_reason = e.reason
            self.bump("proposals")
        if e.score is not None:
            self._count_score(e.run_id, e.student, e.cycle, float(e.score))

    def _skipped(self, e: ev.StudentSkipped) -> None:
        r = self.row(e.student)
        self._deactivate(e.student)
        r.preload_beside = None
        r.status = {"disabled": "disabled", "missing": "missing"}.get(e.kind, "skipped")
        r.reason = e.reason
        if e.kind == "budget":
            r.fits = False
            r.fit_reason = e.reason
        self.history_seq += 1
        self.history.append(
            HistoryRow(
                seq=self.history_seq, cycle=e.cycle, student=e.student, status="skipped", started_at=e.ts,
                reason=f"{e.kind}: {e.reason}",
            )
        )
        self.bump("queue", "history")

    def _health(self, e: ev.StudentHealthChanged) -> None:
        r = self.row(e.student)
        r.health, r.health_reason = e.health, e.reason
        self.bump("queue")

    def _cycle_finished(self, e: ev.CycleFinished) -> None:
        self.cycle_tokens.append((e.cycle, e.tokens))
        self.bump("cycles", "queue")

    def _alarm(self, e: ev.BudgetAlarm) -> None:
        self.alarm = e
        self.bump("banner")

    def _emergency(self, e: ev.EmergencyStop) -> None:
        self.emergency = e
        self.state = "emergency"
        self.state_reason = e.reason
        self.bump("banner", "status")

    def _emergency_cleared(self, e: ev.EmergencyCleared) -> None:
        self.emergency = None
        if self.state == "emergency":
            self.state = "running"
            self.state_reason = ""
        self.bump("banner", "status")

    def _backend_down(self, e: ev.BackendDown) -> None:
        self.backend_down = e
        self.host = e.host or self.host
        self.bump("backend", "status")

    def _backend_up(self, e: ev.BackendUp) -> None:
        self.backend_down = None
        self.host = e.host or self.host
        self.backend_version = e.version or self.backend_version
        self.bump("backend", "status")

    def _session_finished(self, e: ev.SessionFinished) -> None:
        self.finished = e
        self.finished_ts = e.ts
        self._active.clear()
        self.state = "finished"
        self.bump("banner", "status", "queue")

    def engine_failed(self, ts: float, error: str) -> None:
        """The engine's task raised: not an event, so this line is the dashboard's own."""
        self.engine_error = error
        self.state = "finished"
        self._active.clear()
        self.add_log(ts, "critical", f"the engine stopped with an error: {error}")
        self.bump("banner", "status")


Handler = Callable[[UiModel, Any], None]
"""A reducer step: folds one kind of event into the model (the event's type is the table's key)."""

_HANDLERS: dict[type[ev.Event], Handler] = {
    ev.HardwareSampled: UiModel._hardware,
    ev.SessionStarted: UiModel._session_started,
    ev.StateChanged: UiModel._state,
    ev.CycleStarted: UiModel._cycle_started,
    ev.StudentQueued: UiModel._queued,
    ev.FitsChecked: UiModel._fits_checked,
    ev.ProfilesUpdated: UiModel._profiles,
    ev.StudentStarted: UiModel._started,
    ev.StudentPhaseChanged: UiModel._phase,
    ev.TokensProgress: UiModel._tokens,
    ev.StudentFinished: UiModel._finished,
    ev.RunScored: UiModel._run_scored,
    ev.Preload: UiModel._preload,
    ev.StudentSkipped: UiModel._skipped,
    ev.StudentHealthChanged: UiModel._health,
    ev.CycleFinished: UiModel._cycle_finished,
    ev.BudgetAlarm: UiModel._alarm,
    ev.EmergencyStop: UiModel._emergency,
    ev.EmergencyCleared: UiModel._emergency_cleared,
    ev.BackendDown: UiModel._backend_down,
    ev.BackendUp: UiModel._backend_up,
    ev.SessionFinished: UiModel._session_finished,
}
