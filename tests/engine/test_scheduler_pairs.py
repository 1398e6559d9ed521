"""Round ordering for two students resident at once: `AdaptiveScheduler.order_for_pairs`.

The reference card (12282 MB) and the students' measured resident MB; with 900 MB used by
others every pair of them fits, with 2000 MB rh-zeta fits only next to rh-alpha or rh-delta.
"""

from __future__ import annotations

import itertools

from hypothesis import given, settings
from hypothesis import strategies as st

from rhtui.engine.config import BudgetPolicy, SessionOptions
from rhtui.engine.scheduler import PAIR_SEARCH_MAX, AdaptiveScheduler
from rhtui.sim.reference import MEASURED

TOTAL = 12282.0
NEEDS: dict[str, float | None] = {name: mb for name, (mb, _s, _tok) in MEASURED.items()}
NAMES = list(NEEDS)


def scheduler(budget: BudgetPolicy | None = None) -> AdaptiveScheduler:
    return AdaptiveScheduler(budget or BudgetPolicy(), SessionOptions())


def fitting(s: AdaptiveScheduler, order: list[str], needs, base, total) -> int:
    return sum(s.guard.pair_fits(needs.get(a), needs.get(b), base, total).ok for a, b in itertools.pairwise(order))


def test_every_pair_fits_on_an_idle_reference_card():
    assert scheduler().order_for_pairs(NAMES, NEEDS, 900, TOTAL) == (NAMES, "order kept: every consecutive pair fits")


def test_zeta_is_moved_away_from_a_neighbour_it_does_not_fit_with():
    order, why = scheduler().order_for_pairs(NAMES, NEEDS, 2000, TOTAL)
    assert order == ["rh-alpha", "rh-beta", "rh-gamma", "rh-epsilon", "rh-delta", "rh-zeta"]
    assert why == (
        "reordered so consecutive pairs fit (5 of 5, was 4): rh-zeta (5,012 MB) no longer follows rh-epsilon (4,098 MB)"
    )


def test_the_given_order_is_kept_when_no_order_fits_more():
    s = scheduler()
    assert s.order_for_pairs(["rh-gamma", "rh-beta", "rh-zeta"], NEEDS, 2000, TOTAL) == (
        ["rh-gamma", "rh-beta", "rh-zeta"],
        "order kept: 1 of 2 consecutive pairs fit, no order fits more",
    )
    order, why = s.order_for_pairs(["rh-gamma", "rh-zeta", "rh-beta"], NEEDS, 2000, TOTAL)
    assert order == ["rh-gamma", "rh-beta", "rh-zeta"]
    assert why == (
        "reordered so consecutive pairs fit (1 of 2, was 0): rh-zeta (5,012 MB) no longer follows rh-gamma (4,401 MB)"
    )


def test_a_student_without_an_estimate_pairs_with_no_one():
    s = scheduler()
    needs = {**NEEDS, "rh-beta": None}
    order, why = s.order_for_pairs(NAMES, needs, 900, TOTAL)
    assert sorted(order) == sorted(NAMES)
    assert fitting(s, order, needs, 900, TOTAL) == 4  # every pair but beta's two neighbours
    assert order[0] == "rh-beta" or order[-1] == "rh-beta"
    assert "rh-beta (no estimate)" in why
    # a name missing from the needs is a student without an estimate too
    assert s.order_for_pairs(NAMES, {n: v for n, v in needs.items() if v is not None}, 900, TOTAL)[0] == order
    # with an estimate (say, its model size + KV cache) it pairs again
    assert s.order_for_pairs(NAMES, {**NEEDS, "rh-beta": 4300.0}, 900, TOTAL)[0] == NAMES


def test_nothing_is_reordered_on_an_unmeasured_card():
    s = scheduler()
    for base, total in ((None, TOTAL), (900, None), (900, 0.0), (float("nan"), TOTAL)):
        order, why = s.order_for_pairs(NAMES, NEEDS, base, total)
        assert order == NAMES
        assert why.startswith("order kept: VRAM is not measured")


def test_no_students_or_one():
    s = scheduler()
    assert s.order_for_pairs([], NEEDS, 900, TOTAL)[0] == []
    assert s.order_for_pairs(["rh-zeta"], NEEDS, 900, TOTAL)[0] == ["rh-zeta"]
    assert s.order_for_pairs(["rh-zeta"], NEEDS, 900, TOTAL)[1].startswith("order kept")


def test_when_no_pair_fits_at_all_the_order_is_kept():
    s = scheduler()
    order, why = s.order_for_pairs(NAMES, NEEDS, 9000, TOTAL)
    assert order == NAMES
    assert why == "order kept: 0 of 5 consecutive pairs fit, no order fits more"


def test_long_rounds_are_reordered_greedily_and_never_for_the_worse():
    s = scheduler()
    names = [f"s{i:02d}" for i in range(PAIR_SEARCH_MAX + 4)]
    # big students fit only next to small ones: given big, big, small, small, … the pairs break
    needs: dict[str, float | None] = {n: (5500.0 if i % 4 < 2 else 3000.0) for i, n in enumerate(names)}
    given_fit = fitting(s, names, needs, 900, TOTAL)
    order, why = s.order_for_pairs(names, needs, 900, TOTAL)
    assert sorted(order) == names
    assert fitting(s, order, needs, 900, TOTAL) > given_fit
    assert why.startswith("reordered so consecutive pairs fit")
    assert s.order_for_pairs(names, needs, 900, TOTAL) == (order, why)


# -- properties -------------------------------------------------------------------


@st.composite
def rounds(draw):
    n = draw(st.integers(0, 6))
    names = [f"rh-{i}" for i in range(n)]
    needs = {name: draw(st.none() | st.floats(500, 9000)) for name in names if draw(st.integers(0, 5))}
    return names, needs, draw(st.floats(0, 6000))


@settings(max_examples=200, deadline=None)
@given(rounds())
def test_the_reordered_round_fits_the_most_pairs_any_order_can(round_):
    names, needs, base = round_
    s = scheduler()
    order, why = s.order_for_pairs(names, needs, base, TOTAL)
    assert sorted(order) == sorted(names)  # everyone, exactly once
    assert why
    best = max((fitting(s, list(p), needs, base, TOTAL) for p in itertools.permutations(names)), default=0)
    assert fitting(s, order, needs, base, TOTAL) == best
    if fitting(s, names, needs, base, TOTAL) == best:
        assert order == names and why.startswith("order kept")
    else:
        assert why.startswith("reordered")
    assert s.order_for_pairs(list(names), dict(needs), base, TOTAL) == (order, why)
