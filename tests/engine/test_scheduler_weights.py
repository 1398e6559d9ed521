"""The efficiency policy's weighted score (`[policy.weights]`) and the lines that explain the order."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rhtui.engine.budget import BudgetGuard
from rhtui.engine.config import BudgetPolicy, PolicyWeights, SessionOptions
from rhtui.engine.records import RunRecord, RunStatus
from rhtui.engine.scheduler import PROFILE_WINDOW, AdaptiveScheduler, Candidate, StudentProfile, profiles_from_history
from rhtui.sim.reference import MEASURED

NAMES = list(MEASURED)


def rec(student: str, i: int, status: RunStatus = "ok", *, vram: float | None = None, secs: float | None = None,
        tokens: int | None = None, score: float | None = None) -> RunRecord:
    mb, s, tok = MEASURED.get(student, (4000.0, 30.0, 3000))
    vram = mb if vram is None else vram
    secs = s if secs is None else secs
    tokens = tok if tokens is None else tokens
    if status != "ok":
        return RunRecord(1, i, student, student, status, float(i), float(i) + 60, reason=status, score=score)
    return RunRecord(1, i, student, student, "ok", float(i), float(i) + secs, total_s=secs, tokens=tokens,
                     vram_mb=vram, score=score)


def ref_profiles(n: int = 3) -> dict[str, StudentProfile]:
    return profiles_from_history({name: [rec(name, i) for i in range(n)] for name in NAMES})


def efficiency(**weights: float) -> AdaptiveScheduler:
    w = PolicyWeights(**{"quality": 0.0, "throughput": 0.0, "vram": 0.0, "failures": 0.0, **weights})
    return AdaptiveScheduler(BudgetPolicy(), SessionOptions(policy="efficiency"), weights=w)


def cands(names=NAMES) -> list[Candidate]:
    return [Candidate(n, n) for n in names]


# -- the profile's score ----------------------------------------------------------


def test_score_mean_is_the_mean_of_the_scored_runs():
    runs = [rec("rh-delta", 0, score=8.0), rec("rh-delta", 1), rec("rh-delta", 2, score=7.8),
            rec("rh-delta", 3, "error", score=2.0)]
    p = StudentProfile.from_runs("rh-delta", runs)
    assert p.score_mean == pytest.approx((8.0 + 7.8 + 2.0) / 3)
    assert p.scored_runs == 3


def test_unusable_scores_are_ignored_and_no_score_is_none():
    runs = [rec("rh-delta", 0, score=float("nan")), rec("rh-delta", 1, score=11.0), rec("rh-delta", 2, score=-1.0),
            rec("rh-delta", 3, "skipped", score=9.0)]
    p = StudentProfile.from_runs("rh-delta", runs)
    assert p.score_mean is None and p.scored_runs == 0
    assert StudentProfile.from_runs("rh-delta", []).score_mean is None


def test_score_mean_follows_the_most_recent_scored_runs():
    old = [rec("rh-delta", i, score=2.0) for i in range(PROFILE_WINDOW)]
    new = [rec("rh-delta", PROFILE_WINDOW + i, score=9.0) for i in range(PROFILE_WINDOW)]
    p = StudentProfile.from_runs("rh-delta", list(reversed(old + new)))
    assert p.score_mean == 9.0 and p.scored_runs == PROFILE_WINDOW


# -- weighted order ---------------------------------------------------------------


def test_the_log_says_why_each_student_is_where_it_is():
    s = AdaptiveScheduler(BudgetPolicy(), SessionOptions(policy="efficiency"))  # default weights 1, 1, 0.5, 1
    profiles = profiles_from_history({
        "rh-a": [rec("rh-a", 0, vram=4096, secs=100, tokens=10_000, score=9.0)],
        "rh-b": [rec("rh-b", 0, vram=2048, secs=100, tokens=5_000, score=6.0), rec("rh-b", 1, "error")],
    })
    # a: (0.9 + 1 + 0.5 * 0 + 1) / 3.5 = 0.83; b: (0.6 + 0.5 + 0.5 * 0.5 + 0.5) / 3.5 = 0.53
    assert s.order_explained(cands(["rh-b", "rh-a"]), profiles) == [
        ("rh-a", "rh-a first: score 9.0, 100 tok/s, 4.0 GB, 0 % failed (weighted 0.83)"),
        ("rh-b", "rh-b 2nd: score 6.0, 50 tok/s, 2.0 GB, 50 % failed (weighted 0.53)"),
    ]
    assert s.order(cands(["rh-b", "rh-a"]), profiles) == ["rh-a", "rh-b"]


def test_never_run_first_and_never_succeeded_last_are_explained():
    s = AdaptiveScheduler(BudgetPolicy(), SessionOptions(policy="efficiency"))
    profiles = profiles_from_history({
        "rh-a": [rec("rh-a", 0)],
        "rh-b": [rec("rh-b", 0, "timeout"), rec("rh-b", 1, "error")],
    })
    lines = dict(s.order_explained(cands(["rh-b", "rh-a", "rh-c"]), profiles))
    assert list(lines) == ["rh-c", "rh-a", "rh-b"]
    assert lines["rh-c"] == "rh-c first: never ran, runs early so its cost is learned"
    assert lines["rh-a"].startswith("rh-a 2nd: no score yet, 100 tok/s, 3.9 GB, 0 % failed (weighted ")
    assert lines["rh-b"] == "rh-b 3rd: 2 runs, none succeeded (2 failed): after every student that has"


def test_quality_alone_orders_by_the_judges_score_with_unknown_in_the_middle():
    profiles = profiles_from_history({
        "rh-alpha": [rec("rh-alpha", 0, score=3.0)],
        "rh-beta": [rec("rh-beta", 0)],  # no score: neutral, as a 5
        "rh-gamma": [rec("rh-gamma", 0, score=8.0)],
        "rh-delta": [rec("rh-delta", 0, score=5.5)],
    })
    order = efficiency(quality=1).order(cands(NAMES[:4]), profiles)
    assert order == ["rh-gamma", "rh-delta", "rh-beta", "rh-alpha"]


def test_throughput_alone_orders_by_tokens_per_gpu_second():
    # beta 101.2, alpha 99.9, gamma 99.5, delta 99.0, epsilon 98.5, zeta 97.7 tokens per second
    order = efficiency(throughput=1).order(cands(), ref_profiles())
    assert order == ["rh-beta", "rh-alpha", "rh-gamma", "rh-delta", "rh-epsilon", "rh-zeta"]


def test_vram_alone_puts_the_smallest_first():
    order = efficiency(vram=1).order(cands(), ref_profiles())
    assert order == ["rh-delta", "rh-alpha", "rh-epsilon", "rh-beta", "rh-gamma", "rh-zeta"]


def test_vram_of_a_student_without_a_learned_size_comes_from_its_model_size():
    profiles = profiles_from_history({
        "rh-a": [rec("rh-a", 0, vram=0.0)], "rh-b": [rec("rh-b", 0, vram=3000.0)], "rh-c": [rec("rh-c", 0, vram=0.0)],
    })
    c = [Candidate("rh-a", "a", size_mb=1000.0), Candidate("rh-b", "b"), Candidate("rh-c", "c")]
    # a: 1000 + 320 KV cache -> 0.56; b: 3000 -> 0; c: nothing known -> neutral 0.5
    assert efficiency(vram=1).order(c, profiles) == ["rh-a", "rh-c", "rh-b"]


def test_failures_alone_puts_the_most_reliable_first():
    profiles = profiles_from_history({
        "rh-alpha": [rec("rh-alpha", 0), rec("rh-alpha", 1, "error")],
        "rh-beta": [rec("rh-beta", 0)],
        "rh-gamma": [rec("rh-gamma", 0), rec("rh-gamma", 1, "timeout"), rec("rh-gamma", 2, "error")],
    })
    assert efficiency(failures=1).order(cands(NAMES[:3]), profiles) == ["rh-beta", "rh-alpha", "rh-gamma"]


def test_weights_trade_quality_against_speed():
    profiles = profiles_from_history({
        "rh-fast": [rec("rh-fast", 0, secs=10, tokens=2000, score=4.0)],
        "rh-good": [rec("rh-good", 0, secs=10, tokens=1000, score=9.0)],
    })
    c = cands(["rh-fast", "rh-good"])
    assert efficiency(quality=1, throughput=0.2).order(c, profiles) == ["rh-good", "rh-fast"]
    assert efficiency(quality=0.2, throughput=1).order(c, profiles) == ["rh-fast", "rh-good"]


def test_all_weights_zero_orders_by_name():
    assert efficiency().order(cands(list(reversed(NAMES))), ref_profiles()) == sorted(NAMES)


def test_fair_policy_is_unchanged_and_explained():
    s = AdaptiveScheduler(BudgetPolicy(), SessionOptions(), weights=PolicyWeights(quality=5))
    c = [Candidate(n, n, enabled=n != "rh-beta") for n in NAMES]
    assert s.order(c, ref_profiles()) == [n for n in NAMES if n != "rh-beta"]
    assert s.order_explained(c, ref_profiles())[0] == ("rh-alpha", "rh-alpha first: fair policy, the configured order")
    assert s.order_explained(c, ref_profiles())[1] == ("rh-gamma", "rh-gamma 2nd: fair policy, the configured order")


def test_the_old_positional_constructor_still_works():
    policy = BudgetPolicy()
    guard = BudgetGuard(policy)
    s = AdaptiveScheduler(policy, SessionOptions(policy="efficiency"), guard)
    assert s.guard is guard and s.weights == PolicyWeights()


# -- properties -------------------------------------------------------------------


@st.composite
def worlds(draw):
    names = draw(st.permutations(NAMES))[: draw(st.integers(0, 6))]
    history = {}
    for n in names:
        if draw(st.booleans()):
            history[n] = [
                rec(n, i, draw(st.sampled_from(["ok", "ok", "error", "timeout", "skipped"])),
                    vram=draw(st.floats(0, 9000)), secs=draw(st.floats(0.5, 90)), tokens=draw(st.integers(0, 5000)),
                    score=draw(st.none() | st.floats(0, 10)))
                for i in range(draw(st.integers(0, 5)))
            ]
    weights = PolicyWeights(**{k: draw(st.floats(0, 100)) for k in ("quality", "throughput", "vram", "failures")})
    c = [Candidate(n, n, enabled=draw(st.integers(0, 4)) > 0, size_mb=draw(st.none() | st.floats(500, 9000)))
         for n in names]
    return AdaptiveScheduler(BudgetPolicy(), SessionOptions(policy="efficiency"), weights=weights), c, \
        profiles_from_history(history)


@settings(max_examples=200, deadline=None)
@given(worlds())
def test_the_explained_order_is_the_order_and_every_line_names_its_student(world):
    s, c, profiles = world
    explained = s.order_explained(c, profiles)
    assert [name for name, _ in explained] == s.order(c, profiles)
    assert sorted(name for name, _ in explained) == sorted(x.name for x in c if x.enabled)
    for pos, (name, line) in enumerate(explained):
        assert line.startswith(f"{name} {'first' if pos == 0 else ''}")
        if "(weighted " in line:
            assert 0.0 <= float(line.rsplit("(weighted ", 1)[1].rstrip(")")) <= 1.0
    assert explained == s.order_explained(list(c), dict(profiles))
