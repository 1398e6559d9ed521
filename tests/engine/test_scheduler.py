"""The adaptive scheduler: learning, estimates, order and every planning rule, plus properties.

Numbers are the reference card's (RTX 4070 Super, 12282 MB, 900 MB baseline) and
the six students' measured resident MB / seconds per proposal / tokens.
"""

from __future__ import annotations

import statistics
import time

import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st

from rhtui.engine.budget import BudgetGuard
from rhtui.engine.config import BudgetPolicy, SessionOptions
from rhtui.engine.hardware import HardwareSnapshot
from rhtui.engine.records import RUN_STATUSES, RunRecord, RunStatus
from rhtui.engine.scheduler import (
    PROFILE_WINDOW,
    AdaptiveScheduler,
    Candidate,
    RunOrSkip,
    StudentProfile,
    p95_nearest_rank,
    profiles_from_history,
    trend_mb_per_min,
)
from rhtui.sim.reference import MEASURED

TOTAL = 12282.0
BASELINE = 900.0
REF = MEASURED  # resident MB, seconds per proposal, tokens
NAMES = list(REF)
SKIP_KINDS = {"budget", "trend", "time", "disabled", "unknown"}


def snap(used: float | None = BASELINE, total: float | None = TOTAL) -> HardwareSnapshot:
    return HardwareSnapshot(ts=0.0, source="sim", vram_total_mb=total, vram_used_mb=used)


def rec(
    student: str,
    i: int,
    status: RunStatus = "ok",
    vram: float | None = None,
    secs: float | None = None,
    tokens: int | None = None,
) -> RunRecord:
    mb, s, tok = REF.get(student, (4000.0, 30.0, 3000))
    vram = mb if vram is None else vram
    secs = s if secs is None else secs
    tokens = tok if tokens is None else tokens
    if status != "ok":
        return RunRecord(1, i, student, student, status, float(i), float(i) + 60, reason=status)
    return RunRecord(
        1, i, student, student, "ok", float(i), float(i) + secs,
        total_s=secs, eval_s=secs * 0.9, tokens=tokens, tok_per_s=tokens / (secs * 0.9), vram_mb=vram,
    )


def decided(step: RunOrSkip | None) -> RunOrSkip:
    """What plan() decided (it decides while an enabled student is left)."""
    assert step is not None
    return step


def ref_profiles(n: int = 5) -> dict[str, StudentProfile]:
    return profiles_from_history({name: [rec(name, i) for i in range(n)] for name in NAMES})


def candidates(**disabled: bool) -> list[Candidate]:
    return [Candidate(n, n, enabled=not disabled.get(n.removeprefix("rh-"), False)) for n in NAMES]


def scheduler(budget: BudgetPolicy | None = None, **opts) -> AdaptiveScheduler:
    return AdaptiveScheduler(budget or BudgetPolicy(), SessionOptions(**opts))


def cycle(s: AdaptiveScheduler, cands, profiles, hw, remaining=None, trend=None) -> list[RunOrSkip]:
    done: list[str] = []
    steps: list[RunOrSkip] = []
    while (step := s.plan(cands, profiles, done, hw, remaining, trend)) is not None:
        steps.append(step)
        done.append(step.student)
        assert len(steps) <= len(cands)
    return steps


# -- learning ---------------------------------------------------------------------


def test_p95_is_nearest_rank():
    assert p95_nearest_rank([]) is None
    assert p95_nearest_rank([7.0]) == 7.0
    assert p95_nearest_rank([float(v) for v in range(1, 21)]) == 19.0  # ceil(0.95*20) = 19th
    assert p95_nearest_rank([float(v) for v in range(100, 0, -1)]) == 95.0


def test_profile_learns_from_ok_runs_and_counts_failures():
    runs = [rec("rh-zeta", i, vram=5000 + i) for i in range(20)]
    runs += [rec("rh-zeta", 20, "timeout"), rec("rh-zeta", 21, "error"), rec("rh-zeta", 22, "skipped")]
    runs += [rec("rh-zeta", 23, "aborted"), rec("rh-zeta", 24, "emergency")]
    p = StudentProfile.from_runs("rh-zeta", runs)
    assert (p.runs, p.ok_runs, p.failures) == (24, 20, 4)
    assert p.failure_rate == pytest.approx(4 / 24)
    assert p.vram_p95_mb == 5018.0
    assert p.vram_max_mb == 5019.0
    assert p.vram_mean_mb == pytest.approx(5009.5)
    assert p.seconds_mean == pytest.approx(38.9)
    assert p.seconds_p95 == pytest.approx(38.9)
    assert p.tokens_mean == pytest.approx(3800)
    assert p.efficiency == pytest.approx(3800 / 38.9)
    assert p.last_status == "emergency"


def test_profile_follows_time_order_and_ignores_skips_for_last_status():
    runs = [rec("rh-beta", 5, "timeout"), rec("rh-beta", 9, "skipped"), rec("rh-beta", 1)]
    p = StudentProfile.from_runs("rh-beta", runs)
    assert p.last_status == "timeout"
    assert p.runs == 2


def test_profile_adapts_to_the_most_recent_runs():
    old = [rec("rh-gamma", i, vram=9000) for i in range(30)]
    new = [rec("rh-gamma", 30 + i, vram=4401) for i in range(PROFILE_WINDOW)]
    p = StudentProfile.from_runs("rh-gamma", old + new)
    assert p.ok_runs == 30 + PROFILE_WINDOW
    assert p.vram_p95_mb == 4401.0
    assert p.vram_max_mb == 4401.0


def test_profile_of_a_never_run_student_is_empty():
    p = StudentProfile.from_runs("rh-alpha", [rec("rh-alpha", 0, "skipped")])
    assert (p.runs, p.ok_runs, p.failures, p.failure_rate) == (0, 0, 0, 0.0)
    assert p.vram_p95_mb is None and p.seconds_p95 is None and p.efficiency is None
    assert p.last_status is None


def test_efficiency_is_total_tokens_over_total_seconds():
    runs = [rec("rh-alpha", 0, secs=10, tokens=1000), rec("rh-alpha", 1, secs=30, tokens=1000)]
    p = StudentProfile.from_runs("rh-alpha", runs)
    assert p.efficiency == pytest.approx(2000 / 40)  # not the mean of 100 and 33.3


def test_profiles_from_history_keys_by_student():
    profiles = ref_profiles()
    assert set(profiles) == set(NAMES)
    assert profiles["rh-zeta"].vram_p95_mb == 5012.0


# -- estimates --------------------------------------------------------------------


def test_need_is_learned_p95_for_a_student_that_ran():
    s = scheduler()
    runs = [rec("rh-beta", i, vram=4389 + (400 if i == 19 else 0)) for i in range(20)]
    p = StudentProfile.from_runs("rh-beta", runs)
    c = Candidate("rh-beta", "rh-beta", size_mb=4100)
    assert s.estimate_need(c, p) == 4389.0  # 19th of 20 sorted: the outlier is above p95
    runs.append(rec("rh-beta", 20, vram=4789))
    assert s.estimate_need(c, StudentProfile.from_runs("rh-beta", runs)) == 4789.0


def test_need_of_a_never_run_student_is_size_plus_kv_cache():
    s = scheduler()
    c = Candidate("rh-zeta", "rh-zeta", size_mb=4692)
    assert s.estimate_need(c, None) == 4692 + 320
    never = StudentProfile.from_runs("rh-zeta", [rec("rh-zeta", 0, "error")])
    assert s.estimate_need(c, never) == 4692 + 320
    assert s.estimate_need(Candidate("rh-zeta", "rh-zeta"), None) is None


def test_expected_seconds_learned_else_the_timeout():
    s = scheduler()
    profiles = ref_profiles()
    c = Candidate("rh-zeta", "rh-zeta")
    assert s.estimate_seconds(c, profiles["rh-zeta"]) == pytest.approx(38.9)
    assert s.estimate_seconds(c, None) == 60.0
    slow = StudentProfile.from_runs("rh-zeta", [rec("rh-zeta", 0, secs=90)])
    assert s.estimate_seconds(c, slow) == 60.0  # a run never outlasts the timeout


# -- order ------------------------------------------------------------------------


def test_fair_order_is_the_given_order_of_enabled_students():
    s = scheduler()
    assert s.order(candidates(beta=True), ref_profiles()) == [n for n in NAMES if n != "rh-beta"]


def test_efficiency_order_puts_never_run_first_then_best_tokens_per_second():
    s = scheduler(policy="efficiency")
    profiles = ref_profiles()
    del profiles["rh-delta"]  # never ran
    profiles["rh-epsilon"] = StudentProfile.from_runs("rh-epsilon", [rec("rh-epsilon", 0, "timeout")])
    profiles["rh-alpha"] = StudentProfile.from_runs("rh-alpha", [rec("rh-alpha", 0, secs=20, tokens=2000)])
    profiles["rh-beta"] = StudentProfile.from_runs("rh-beta", [rec("rh-beta", 0, secs=20, tokens=2000)])
    order = s.order(candidates(), profiles)
    # zeta 97.7 tok/s, gamma 99.5, alpha = beta 100 (tie: by name); epsilon only failed: last.
    assert order == ["rh-delta", "rh-alpha", "rh-beta", "rh-gamma", "rh-zeta", "rh-epsilon"]


def test_efficiency_order_keeps_never_run_in_given_order():
    s = AdaptiveScheduler(BudgetPolicy(), SessionOptions(policy="efficiency"))
    cands = [Candidate("rh-zeta", "z"), Candidate("rh-alpha", "a")]
    assert s.order(cands, {}) == ["rh-zeta", "rh-alpha"]


# -- plan -------------------------------------------------------------------------


def test_idle_card_runs_everyone_in_fair_order_with_learned_needs():
    steps = cycle(scheduler(), candidates(), ref_profiles(), snap())
    assert [st.student for st in steps] == NAMES
    assert all(st.action == "run" and st.kind == "" for st in steps)
    assert steps[-1].need_mb == 5012.0
    assert steps[-1].expected_s == pytest.approx(38.9)


def test_plan_is_none_when_all_are_done_or_none_enabled():
    s = scheduler()
    assert s.plan(candidates(), ref_profiles(), set(NAMES), snap(), None) is None
    off = [Candidate(n, n, enabled=False) for n in NAMES]
    assert s.plan(off, ref_profiles(), (), snap(), None) is None


def test_disabled_students_are_never_returned():
    steps = cycle(scheduler(), candidates(beta=True, zeta=True), ref_profiles(), snap())
    assert {st.student for st in steps} == set(NAMES) - {"rh-beta", "rh-zeta"}


def test_unknown_need_is_skipped_when_vram_is_measured():
    cands = [Candidate("rh-new", "rh-new")]
    step = decided(scheduler().plan(cands, {}, (), snap(), None))
    assert step.action == "skip" and step.kind == "unknown"
    assert "rh-new" in step.reason and step.need_mb is None


def test_unknown_need_runs_when_vram_is_not_measured():
    cands = [Candidate("rh-new", "rh-new")]
    step = decided(scheduler().plan(cands, {}, (), snap(None, None), None))
    assert step.action == "run" and step.need_mb is None
    assert "Ollama" in step.reason


def test_never_run_student_is_planned_from_its_size():
    cands = [Candidate("rh-zeta", "rh-zeta", size_mb=4692)]
    step = decided(scheduler().plan(cands, {}, (), snap(), None))
    assert step.action == "run" and step.need_mb == 5012
    assert step.expected_s == 60.0


def test_time_budget_skips_the_slowest():
    steps = cycle(scheduler(), candidates(), ref_profiles(), snap(), remaining=32.0)
    skipped = {st.student for st in steps if st.action == "skip"}
    assert skipped == {"rh-epsilon", "rh-zeta"}  # 33.5 s and 38.9 s do not fit in 32 s
    assert all(st.kind == "time" for st in steps if st.action == "skip")


def test_time_skip_reason_has_the_numbers():
    step = decided(scheduler().plan(candidates(), ref_profiles(), NAMES[:5], snap(), 20.0))
    assert step == RunOrSkip("rh-zeta", "skip", 5012.0, step.expected_s,
                             "needs ~38.9 s, 20.0 s of the session left", "time")
    assert step.expected_s == pytest.approx(38.9)


def test_never_run_students_are_not_skipped_for_time_on_the_assumed_timeout():
    # A fresh database and a session shorter than the timeout: `--headless --duration 1`.
    cands = [Candidate(n, n, size_mb=REF[n][0] - 320) for n in NAMES]
    steps = cycle(scheduler(), cands, {}, snap(), remaining=59.9)
    assert [(st.student, st.action) for st in steps] == [(n, "run") for n in NAMES]
    assert all(st.expected_s == 60.0 for st in steps)  # still shown as the timeout
    # VRAM not measured (no NVML, no gpu_total_mb): the same
    steps = cycle(scheduler(), cands, {}, snap(None, None), remaining=1.0)
    assert all(st.action == "run" for st in steps)


def test_failures_other_than_timeouts_teach_no_time():
    s = scheduler()
    runs = [rec("rh-beta", 0, "error"), rec("rh-beta", 1, "aborted"), rec("rh-beta", 2, "emergency")]
    p = StudentProfile.from_runs("rh-beta", runs)
    assert p.runs == 3 and not p.knows_seconds and p.timeouts == 0
    step = decided(s.plan([Candidate("rh-beta", "rh-beta", size_mb=4000)], {"rh-beta": p}, (), snap(), 10.0))
    assert step.action == "run"


def test_a_timeout_is_evidence_the_student_needs_the_whole_timeout():
    s = scheduler()
    p = StudentProfile.from_runs("rh-beta", [rec("rh-beta", 0, "timeout")])
    assert p.knows_seconds and p.timeouts == 1
    step = decided(s.plan([Candidate("rh-beta", "rh-beta", size_mb=4000)], {"rh-beta": p}, (), snap(), 59.0))
    assert (step.action, step.kind, step.reason) == ("skip", "time", "needs ~60.0 s, 59.0 s of the session left")


def test_learned_and_never_run_students_in_one_short_session():
    profiles = ref_profiles()
    del profiles["rh-zeta"]  # never ran
    cands = [Candidate(n, n, size_mb=4000) for n in NAMES]
    steps = cycle(scheduler(), cands, profiles, snap(), remaining=32.0)
    by = {st.student: st for st in steps}
    assert by["rh-epsilon"].kind == "time"  # learned 33.5 s > 32 s
    assert by["rh-zeta"].action == "run"  # never ran: its run is how the scheduler learns


def test_with_no_time_left_everyone_is_skipped_for_time():
    cands = [Candidate(n, n, size_mb=4000) for n in NAMES]
    for profiles in ({}, ref_profiles()):
        steps = cycle(scheduler(), cands, profiles, snap(), remaining=0.0)
        assert all(st.action == "skip" and st.kind == "time" for st in steps)
    step = decided(scheduler().plan(cands, {}, (), snap(), 0.0))
    assert step.reason == "no time left in the session"


def test_time_rule_can_be_turned_off():
    steps = cycle(scheduler(skip_slowest_when_short=False), candidates(), ref_profiles(), snap(), remaining=5.0)
    assert all(st.action == "run" for st in steps)


def test_trend_skips_the_largest_first():
    # +3000 MB/min from 5600 MB used: zeta, gamma, beta, epsilon fit now but not by the end of
    # their runs; alpha and delta still fit. The skips come largest first, before fair order.
    steps = cycle(scheduler(), candidates(), ref_profiles(), snap(5600), trend=3000.0)
    assert [(st.student, st.action, st.kind) for st in steps] == [
        ("rh-zeta", "skip", "trend"),
        ("rh-gamma", "skip", "trend"),
        ("rh-beta", "skip", "trend"),
        ("rh-epsilon", "skip", "trend"),
        ("rh-alpha", "run", ""),
        ("rh-delta", "run", ""),
    ]


def test_trend_skip_reason():
    step = decided(scheduler().plan(candidates(), ref_profiles(), (), snap(5900), None, 450.0))
    assert step.student == "rh-zeta" and step.kind == "trend"
    assert step.reason.startswith(
        "VRAM trending up +450 MB/min: rh-zeta (5012 MB) would not fit by the end of its run"
    )
    nxt = decided(scheduler().plan(candidates(), ref_profiles(), ("rh-zeta",), snap(5900), None, 450.0))
    assert nxt.student == "rh-alpha" and nxt.action == "run"


@pytest.mark.parametrize("trend", [None, 90.0, -500.0])
def test_no_trend_skip_below_the_threshold(trend):
    step = decided(scheduler().plan(candidates(), ref_profiles(), (), snap(5900), None, trend))
    assert step.student == "rh-alpha" and step.action == "run"


def test_trend_rule_can_be_turned_off():
    s = scheduler(skip_largest_on_trend=False)
    step = decided(s.plan(candidates(), ref_profiles(), (), snap(5900), None, 450.0))
    assert step.student == "rh-alpha" and step.action == "run"


def test_budget_skip_carries_the_guards_reason():
    # 6500 MB used: 5782 MB free, zeta needs 5012 + 1024.
    s = scheduler()
    steps = cycle(s, candidates(), ref_profiles(), snap(6500))
    by = {st.student: st for st in steps}
    assert by["rh-zeta"].action == "skip" and by["rh-zeta"].kind == "budget"
    assert by["rh-zeta"].reason == s.guard.admit(5012.0, snap(6500)).reason
    assert by["rh-zeta"].reason.startswith("needs 5012 MB + 1024 MB reserve, only 5782 MB free")
    assert all(by[n].action == "run" for n in NAMES if n != "rh-zeta")


def test_every_skip_has_a_reason_and_a_kind():
    s = scheduler()
    cands = candidates() + [Candidate("rh-new", "rh-new")]
    for hw, rem, trend in [(snap(6500), None, None), (snap(5600), None, 3000.0), (snap(), 30.0, None),
                           (snap(11000), 100.0, 500.0)]:
        for st_ in cycle(s, cands, ref_profiles(), hw, rem, trend):
            if st_.action == "skip":
                assert st_.reason and st_.kind in SKIP_KINDS
            else:
                assert st_.kind == ""


def test_a_custom_guard_is_used():
    class Never(BudgetGuard):
        def admit(self, need_mb, snap):
            from rhtui.engine.budget import Decision

            return Decision(False, "never")

    s = AdaptiveScheduler(BudgetPolicy(), SessionOptions(), guard=Never(BudgetPolicy()))
    step = decided(s.plan(candidates(), ref_profiles(), (), snap(), None))
    assert (step.action, step.kind, step.reason) == ("skip", "budget", "never")


def test_plan_is_fast_with_profiles_learned_from_10000_runs():
    history = {n: [rec(n, i * 6 + k) for i in range(10_000 // 6 + 1)] for k, n in enumerate(NAMES)}
    profiles = profiles_from_history(history)
    s = scheduler()
    cands = candidates()
    times = []
    for i in range(300):
        t0 = time.perf_counter()
        s.plan(cands, profiles, NAMES[: i % 6], snap(5600), 100.0, 450.0)
        times.append(time.perf_counter() - t0)
    assert statistics.median(times) < 1e-3


# -- trend helper -----------------------------------------------------------------


def test_trend_slope_in_mb_per_minute():
    samples = [(1_700_000_000.0 + t, 900.0 + 10.0 * t) for t in range(0, 31)]
    assert trend_mb_per_min(samples) == pytest.approx(600.0)
    assert trend_mb_per_min([(t, 5000.0) for t in range(20)]) == pytest.approx(0.0)
    assert AdaptiveScheduler.trend_mb_per_min(samples) == pytest.approx(600.0)


def test_trend_needs_three_samples_and_ten_seconds():
    assert trend_mb_per_min([(0.0, 1.0), (20.0, 2.0)]) is None
    assert trend_mb_per_min([(0.0, 1.0), (4.0, 2.0), (9.0, 3.0)]) is None
    assert trend_mb_per_min([(0.0, 1.0), (5.0, 2.0), (10.0, 3.0)]) == pytest.approx(12.0)


# -- properties -------------------------------------------------------------------


@st.composite
def policies(draw) -> BudgetPolicy:
    max_fraction = draw(st.floats(0.5, 0.95))
    return BudgetPolicy(
        reserve_mb=draw(st.integers(0, 4096)),
        max_fraction=max_fraction,
        emergency_fraction=draw(st.floats(max_fraction + 0.005, 1.0)),
        timeout_s=draw(st.floats(5, 600)),
        kv_cache_mb=draw(st.integers(0, 2048)),
    )


@st.composite
def hardware(draw) -> HardwareSnapshot:
    if draw(st.integers(0, 9)) == 0:
        return snap(None, None)
    total = draw(st.floats(4000, 48000))
    return snap(draw(st.floats(0, 1)) * total, total)


@st.composite
def runs_for(draw, student: str, max_runs: int = 80) -> list[RunRecord]:
    out = []
    for _ in range(draw(st.integers(0, max_runs))):
        status = draw(st.sampled_from(RUN_STATUSES))
        out.append(rec(student, draw(st.integers(0, 1000)), status,
                       vram=draw(st.floats(500, 20000)), secs=draw(st.floats(0.5, 300)),
                       tokens=draw(st.integers(0, 8000))))
    return out


@st.composite
def worlds(draw):
    names = draw(st.permutations(NAMES))[: draw(st.integers(0, 6))]
    cands = [
        Candidate(n, n, enabled=draw(st.integers(0, 4)) > 0, size_mb=draw(st.none() | st.floats(500, 20000)))
        for n in names
    ]
    history = {n: draw(runs_for(n, 12)) for n in names if draw(st.booleans())}
    options = SessionOptions(
        policy=draw(st.sampled_from(["fair", "efficiency"])),
        skip_largest_on_trend=draw(st.booleans()),
        skip_slowest_when_short=draw(st.booleans()),
    )
    s = AdaptiveScheduler(draw(policies()), options)
    done = {n for n in names if draw(st.integers(0, 3)) == 0} | draw(st.sets(st.sampled_from(NAMES), max_size=1))
    return (
        s, cands, profiles_from_history(history), done, draw(hardware()),
        draw(st.none() | st.floats(0, 600)), draw(st.none() | st.floats(-2000, 5000)),
    )


@settings(max_examples=300, deadline=None)
@given(worlds())
def test_plan_never_runs_a_student_that_does_not_fit(world):
    s, cands, profiles, done, hw, remaining, trend = world
    pol = s.policy
    by_name = {c.name: c for c in cands}
    done = set(done)
    seen = []
    while (step := s.plan(cands, profiles, done, hw, remaining, trend)) is not None:
        assert step.student not in done
        assert by_name[step.student].enabled
        if step.action == "run":
            assert step.kind == ""
            if hw.vram_total_mb is not None:
                need = s.estimate_need(by_name[step.student], profiles.get(step.student))
                assert need is not None and step.need_mb == need
                assert need + pol.reserve_mb <= hw.vram_free_mb
                assert hw.vram_used_mb + need <= pol.max_fraction * hw.vram_total_mb
        else:
            assert step.reason and step.kind in SKIP_KINDS
        event(f"{step.action} {step.kind}".strip())
        seen.append(step.student)
        done.add(step.student)
    expected = {c.name for c in cands if c.enabled} - set(world[3])
    assert sorted(seen) == sorted(expected)  # every pending enabled student decided exactly once


@settings(max_examples=300, deadline=None)
@given(worlds())
def test_a_time_skip_rests_on_learned_time_never_on_a_guess(world):
    s, cands, profiles, done, hw, remaining, trend = world
    by_name = {c.name: c for c in cands}
    done = set(done)
    while (step := s.plan(cands, profiles, done, hw, remaining, trend)) is not None:
        p = profiles.get(step.student)
        if step.kind == "time":
            assert remaining is not None and s.options.skip_slowest_when_short
            if remaining > 0:
                assert p is not None and p.knows_seconds and p.runs > 0
                assert s.estimate_seconds(by_name[step.student], p) > remaining
        if remaining is not None and remaining > 0 and not any(
            s.knows_seconds(profiles.get(c.name)) for c in cands if c.name not in done
        ):
            # no learned time anywhere: decided as if the session had all the time in the world
            assert step == s.plan(cands, profiles, done, hw, None, trend)
        event(f"{step.action} {step.kind}".strip())
        done.add(step.student)


@settings(max_examples=200, deadline=None)
@given(worlds())
def test_plan_is_deterministic_and_order_is_a_permutation(world):
    s, cands, profiles, done, hw, remaining, trend = world
    assert s.plan(cands, profiles, done, hw, remaining, trend) == s.plan(
        cands, profiles, set(done), hw, remaining, trend
    )
    order = s.order(cands, profiles)
    assert sorted(order) == sorted(c.name for c in cands if c.enabled)
    assert order == s.order(list(cands), dict(profiles))


@settings(max_examples=300, deadline=None)
@given(runs_for("rh-alpha"))
def test_profile_stats_lie_within_the_inputs(runs):
    p = StudentProfile.from_runs("rh-alpha", runs)
    ok = [r for r in runs if r.status == "ok"]
    attempted = [r for r in runs if r.status != "skipped"]
    assert p.ok_runs == len(ok) and p.runs == len(attempted)
    assert 0.0 <= p.failure_rate <= 1.0
    if not ok:
        assert p.vram_p95_mb is None and p.seconds_mean is None and p.efficiency is None
        return
    vram = [r.vram_mb for r in ok]
    secs = [r.total_s for r in ok]
    toks = [r.tokens for r in ok]
    mean, p95, most = p.vram_mean_mb, p.vram_p95_mb, p.vram_max_mb
    assert mean is not None and p95 is not None and most is not None
    for v in (mean, p95, most):
        assert min(vram) <= v <= max(vram)
    assert mean <= most and p95 <= most
    for s in (p.seconds_mean, p.seconds_p95):
        assert s is not None and min(secs) <= s <= max(secs)
    assert p.tokens_mean is not None and min(toks) <= p.tokens_mean <= max(toks)
    rates = [r.tokens / r.total_s for r in ok]
    assert p.efficiency is not None and min(rates) * (1 - 1e-9) <= p.efficiency <= max(rates) * (1 + 1e-9)
