"""A fake orchestrator that records every control call (Pilot key tests), and seeded events.

The fake has the Orchestrator's interface: `bus`, `state`, `current`, `enabled`,
`session_id`, `async run()` and the sync controls. `run()` waits until
`request_stop()` and then finishes like the real one (StateChanged stopping,
SessionFinished). The lead's pilot tests against the real orchestrator can use
`make_app(..., orchestrator=real)` the same way.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from rhtui.engine import events as ev
from rhtui.engine.hardware import HardwareSnapshot
from rhtui.engine.records import RunKind, RunRecord, RunStatus, StudentStats
from rhtui.sim.reference import MEASURED

T0 = 1_700_000_000.0
"""The fixed start of every seeded session (ManualClock's default)."""
TOTAL_MB = 12282.0
STUDENTS = ("rh-alpha", "rh-beta", "rh-gamma", "rh-delta", "rh-epsilon", "rh-zeta")
# resident MB / seconds / tokens per proposal, from the reference scenario
REFERENCE = {name: (int(mb), secs, tokens) for name, (mb, secs, tokens) in MEASURED.items()}
"""Resident MB, seconds, tokens per student on the reference card (as ints, as the screens show them)."""


@dataclass
class FakeOrchestrator:
    bus: ev.EventBus = field(default_factory=ev.EventBus)
    state: str = "running"
    current: str | None = None
    enabled: dict[str, bool] = field(default_factory=lambda: dict.fromkeys(STUDENTS, True))
    session_id: int = 7
    calls: list[tuple] = field(default_factory=list)
    stop_delay_s: float = 0.0
    _stop: asyncio.Event | None = None

    async def run(self) -> None:
        self._stop = asyncio.Event()
        await self._stop.wait()
        if self.stop_delay_s:
            await asyncio.sleep(self.stop_delay_s)
        self.bus.emit(ev.StateChanged(ts=T0 + 100, state="stopping", reason="quit"))
        if self.current is not None:
            self.bus.emit(ev.StudentFinished(ts=T0 + 100, cycle=3, student=self.current,
                                             run=run_record(self.current, 3, status="aborted")))
            self.current = None
        self.bus.emit(ev.SessionFinished(ts=T0 + 101, session_id=self.session_id, cycles=3, runs=13,
                                         tokens=36000, reason="stopped by user"))
        self.state = "finished"

    def pause(self) -> None:
        self.calls.append(("pause",))
        self.state = "paused"
        self.bus.emit(ev.StateChanged(ts=T0, state="paused", reason="by user"))

    def resume(self) -> None:
        self.calls.append(("resume",))
        self.state = "running"
        self.bus.emit(ev.StateChanged(ts=T0, state="running"))

    def toggle_pause(self) -> None:
        if self.state == "paused":
            self.resume()
        else:
            self.pause()

    def skip_current(self) -> None:
        self.calls.append(("skip_current",))

    def set_enabled(self, student: str, enabled: bool) -> None:
        self.calls.append(("set_enabled", student, enabled))
        self.enabled[student] = enabled

    def release(self, student: str) -> None:
        self.calls.append(("release", student))

    def emergency_stop(self, reason: str = "emergency stop by user") -> None:
        self.calls.append(("emergency_stop", reason))
        self.state = "emergency"
        self.bus.emit(ev.EmergencyStop(ts=T0, used_mb=None, total_mb=None, reason=reason))

    def clear_emergency(self) -> None:
        self.calls.append(("clear_emergency",))
        self.state = "running"
        self.bus.emit(ev.EmergencyCleared(ts=T0, reason="by user"))

    def ask(self, question: str, tier: str = "standard") -> None:
        self.calls.append(("ask", question, tier))

    def request_stop(self, reason: str = "stopped by user", *, error: str = "") -> None:
        self.calls.append(("request_stop",))
        if self._stop is not None:
            self._stop.set()


# -- seeded events ---------------------------------------------------------------------


def snapshot(ts: float, used_mb: float | None, *, util=87.0, temp=64.0, power=182.0, cpu=12.0,
             ram_used=18_600.0, total_mb: float | None = TOTAL_MB) -> HardwareSnapshot:
    return HardwareSnapshot(
        ts=ts, source="sim", gpu_name="NVIDIA GeForce RTX 4070 SUPER",
        vram_total_mb=total_mb, vram_used_mb=used_mb, gpu_util_pct=util, temp_c=temp, power_w=power,
        ram_used_mb=ram_used, ram_total_mb=65_536.0, cpu_pct=cpu,
    )


def run_record(student: str, cycle: int, *, status: RunStatus = "ok", start: float | None = None,
               proposal: str | None = None, reason: str = "", kind: RunKind = "proposal", question: str = "",
               verifier: tuple[str, ...] | None = None, run_id: int | None = None,
               target_id: int | None = None) -> RunRecord:
    """A run as the engine reports it once stored: its `id` is the row's (one per student per cycle
    unless `run_id` is given: a student that critiques and then judges runs several times)."""
    vram, secs, tokens = REFERENCE[student]
    start = T0 + 30 * cycle if start is None else start
    ok = status == "ok"
    return RunRecord(
        session_id=7, cycle=cycle, student=student, model=student, status=status,
        started_at=start, ended_at=start + secs, reason=reason,
        load_s=1.9, prompt_s=0.4, eval_s=secs - 2.3 if ok else None, total_s=secs if ok else secs / 2,
        wall_s=secs if ok else secs / 2, prompt_tokens=420, tokens=tokens if ok else tokens // 3,
        tok_per_s=round(tokens / (secs - 2.3), 1), vram_mb=vram, vram_peak_mb=vram + 900,
        vram_delta_mb=vram - 12, energy_j=round(177.0 * (secs if ok else secs / 2), 1),  # ~177 W while it ran
        id=run_id if run_id is not None else (cycle - 1) * len(STUDENTS) + STUDENTS.index(student) + 1,
        proposal=proposal if proposal is not None else (
            f"# {student}: cycle {cycle}\n\nA proposal on the zeros of ζ(s) on the critical line.\n\n"
            "1. Study the explicit formula.\n2. Bound the error term.\n" if ok else ""),
        kind=kind, question=question, verifier=verifier, target_id=target_id,
    )


def session_start(duration_min: float = 480.0) -> list[ev.Event]:
    return [
        ev.SessionStarted(ts=T0, session_id=7, name="rh_main", duration_s=duration_min * 60,
                          backend_host="http://127.0.0.1:11434", backend_version="0.6.3",
                          probe="sim: NVIDIA GeForce RTX 4070 SUPER", students=STUDENTS, policy="fair"),
        ev.StateChanged(ts=T0, state="running"),
    ]


def hardware_ramp(t_from: float, t_to: float, used: float, step: float = 5.0) -> list[ev.Event]:
    out: list[ev.Event] = []
    t = t_from
    while t <= t_to:
        out.append(ev.HardwareSampled(ts=t, snapshot=snapshot(t, used)))
        t += step
    return out


def mid_cycle() -> list[ev.Event]:
    """Cycle 3 half done: alpha and beta finished, gamma running, zeta will not fit."""
    events: list[ev.Event] = list(session_start())
    t = T0
    # two finished cycles of history (timeline, charts, history table)
    for cycle in (1, 2):
        events.append(ev.CycleStarted(ts=t, cycle=cycle, order=STUDENTS))
        total = 0
        for s in STUDENTS:
            vram, secs, tokens = REFERENCE[s]
            events.append(ev.StudentStarted(ts=t, cycle=cycle, student=s, model=s, need_mb=vram, timeout_s=60))
            events += hardware_ramp(t, t + secs, 900 + vram, step=secs / 3)
            t += secs
            events.append(ev.StudentFinished(ts=t, cycle=cycle, student=s, run=run_record(s, cycle, start=t - secs)))
            total += tokens
        events.append(ev.CycleFinished(ts=t, cycle=cycle, completed=STUDENTS, skipped=(), failed=(),
                                       seconds=sum(v[1] for v in REFERENCE.values()), tokens=total))
    events.append(ev.CycleStarted(ts=t, cycle=3, order=STUDENTS))
    for pos, s in enumerate(STUDENTS, 1):
        vram = REFERENCE[s][0]
        fits = s != "rh-zeta"
        events.append(ev.StudentQueued(ts=t, cycle=3, student=s, position=pos, need_mb=vram + 80, fits=fits,
                                       reason="" if fits else "needs 5 092 MB + 1 024 reserve; 4 300 free"))
    for s in ("rh-alpha", "rh-beta"):
        vram, secs, _ = REFERENCE[s]
        events.append(ev.StudentStarted(ts=t, cycle=3, student=s, model=s, need_mb=vram, timeout_s=60))
        t += secs
        events.append(ev.StudentFinished(ts=t, cycle=3, student=s, run=run_record(s, 3, start=t - secs)))
    events.append(ev.StudentStarted(ts=t, cycle=3, student="rh-gamma", model="rh-gamma", need_mb=4481, timeout_s=60))
    events.append(ev.StudentPhaseChanged(ts=t + 2, cycle=3, student="rh-gamma", phase="running"))
    events.append(ev.TokensProgress(ts=t + 12, cycle=3, student="rh-gamma", tokens=1034, elapsed_s=12.4,
                                    tok_per_s=98.6, timeout_s=60))
    events += hardware_ramp(t, t + 12, 900 + 4401, step=4)
    events.append(ev.HardwareSampled(ts=t + 12.5, snapshot=snapshot(t + 12.5, 5301.0)))
    return events


MID_CYCLE_NOW = T0 + 2 * sum(v[1] for v in REFERENCE.values()) + 28.5 + 31.2 + 12.5
"""The clock reading that goes with `mid_cycle()`."""


def learned_profiles() -> dict[str, StudentStats]:
    out = {}
    for s, (vram, secs, tokens) in REFERENCE.items():
        out[s] = StudentStats(student=s, runs=14, failures=0, vram_mean_mb=vram, vram_p95_mb=vram + 54,
                              seconds_mean=secs, tokens_mean=tokens, tok_per_s_mean=round(tokens / (secs - 2.3), 1))
    return out


# -- a research round ------------------------------------------------------------------------

QUESTION = ("Can the explicit formula for ψ(x) bound the gaps between consecutive zeros of ζ(s) on the "
            "critical line, and what would such a bound need from the error term?")
PROPOSERS = ("rh-alpha", "rh-beta", "rh-gamma", "rh-epsilon")
ROUND_ORDER = (*PROPOSERS, "rh-zeta", "rh-delta")
ROUND_ROLES = (*((s, "proposal") for s in PROPOSERS), ("rh-zeta", "critique"), ("rh-zeta", "judge"),
               ("rh-delta", "synthesis"))
ROUND_SCORES = {"rh-alpha": 7.4, "rh-gamma": 6.3, "rh-epsilon": 5.8, "rh-delta": 8.1}
"""The judge's mean score of each answer scored (rh-beta fails the verifier, so it is not judged)."""
VERIFIER_FAILURES = ("no formula or equation in the answer", "under 150 words (92)")
CRITERIA = ("rigour", "novelty", "correctness", "concreteness")


REASONS = ("each step follows, but the error term is assumed, not bounded",
           "a known route (Selberg's) restated", "the explicit formula is quoted correctly",
           "names the sums to compute and the range of x")


def rubric(score: float, why: str = "") -> dict:
    """A judge's rubric whose mean is `score`: {criterion: {"score", "reason"}} (`why`: every reason)."""
    offsets = (0.6, -0.9, 0.3, 0.0)
    return {c: {"score": round(score + d, 1), "reason": why or reason}
            for c, d, reason in zip(CRITERIA, offsets, REASONS, strict=True)}


def research_round(cycle: int = 1, start: float = T0, *, question: str = QUESTION,
                   scores: dict[str, float] | None = None, failing: str | None = "rh-beta",
                   reasons: dict[str, str] | None = None,
                   failures: tuple[str, ...] = VERIFIER_FAILURES) -> tuple[list[ev.Event], float]:
    """One whole round as the engine reports it, and the clock at its end: the question; four
    proposals (`failing` fails the verifier, so it is not judged); rh-zeta's critique, then its
    judge runs, each followed by the score of the answer it judged; rh-delta's synthesis, scored.
    `reasons` (by student) replaces a judge's reasons (hostile text)."""
    scores = ROUND_SCORES if scores is None else scores
    reasons = reasons or {}
    events: list[ev.Event] = [ev.CycleStarted(ts=start, cycle=cycle, order=ROUND_ORDER, question=question,
                                              roles=ROUND_ROLES)]
    t = start
    next_id = 100 * cycle

    def run(student: str, kind: RunKind, *, verifier: tuple[str, ...] | None = (),
            target: RunRecord | None = None) -> RunRecord:
        nonlocal t, next_id
        next_id += 1
        secs = REFERENCE[student][1] if kind != "judge" else 6.0
        text = None
        if kind == "judge" and target is not None:
            text = '{"rigour": 8, "novelty": 6, "correctness": 8, "concreteness": 7}'
        elif kind != "proposal":
            text = f"# {kind} by {student}, cycle {cycle}\n\nWhat the round's proposals share, and where they differ.\n"
        rec = run_record(student, cycle, start=t, kind=kind, question=question, verifier=verifier, run_id=next_id,
                         target_id=target.id if target is not None else None, proposal=text)
        events.append(ev.StudentStarted(ts=t, cycle=cycle, student=student, model=student,
                                        need_mb=REFERENCE[student][0], timeout_s=60, kind=kind))
        events.append(ev.StudentPhaseChanged(ts=t + 1.9, cycle=cycle, student=student, phase="running"))
        t += secs
        events.append(ev.StudentFinished(ts=t, cycle=cycle, student=student, run=rec))
        return rec

    def judged(answer: RunRecord) -> None:
        if answer.student not in scores:
            return
        run("rh-zeta", "judge", verifier=None, target=answer)
        score = scores[answer.student]
        events.append(ev.RunScored(ts=t, cycle=cycle, student=answer.student, run_id=answer.id, kind=answer.kind,
                                   score=score, scores=rubric(score, reasons.get(answer.student, "")),
                                   judges=("rh-zeta",)))

    proposals = [run(s, "proposal", verifier=failures if s == failing else ()) for s in PROPOSERS]
    run("rh-zeta", "critique")
    for p in proposals:
        if p.verifier == ():
            judged(p)
    judged(run("rh-delta", "synthesis"))
    tokens = sum(REFERENCE[s][2] for s in ROUND_ORDER)
    events.append(ev.CycleFinished(ts=t, cycle=cycle, completed=ROUND_ORDER, skipped=(), failed=(),
                                   seconds=t - start, tokens=tokens))
    return events, t


def round_under_way() -> tuple[list[ev.Event], float]:
    """Round 1 done and scored; round 2 started: rh-alpha writes while rh-beta preloads beside it."""
    events: list[ev.Event] = list(session_start())
    events += hardware_ramp(T0, T0 + 10, 900.0)
    done, t = research_round(1, T0)
    events += done
    question = "Which spectral statistics of the zeros would falsify a Hilbert–Pólya operator built from xp?"
    events.append(ev.CycleStarted(ts=t, cycle=2, order=ROUND_ORDER, question=question, roles=ROUND_ROLES))
    events.append(ev.StudentStarted(ts=t, cycle=2, student="rh-alpha", model="rh-alpha", need_mb=3847, timeout_s=60,
                                    kind="proposal"))
    events.append(ev.StudentPhaseChanged(ts=t + 1.9, cycle=2, student="rh-alpha", phase="running"))
    events.append(ev.Preload(ts=t + 2, cycle=2, student="rh-beta", beside="rh-alpha", overlapped=True,
                             reason="both fit: 3,847 + 4,389 MB of 12,282 MB"))
    events.append(ev.StudentPhaseChanged(ts=t + 2, cycle=2, student="rh-beta", phase="loading"))
    events.append(ev.TokensProgress(ts=t + 8, cycle=2, student="rh-alpha", tokens=655, elapsed_s=8.0,
                                    tok_per_s=109.2, timeout_s=60))
    events += hardware_ramp(t, t + 8, 900 + 3847 + 4389, step=4)
    return events, t + 8.5
