"""Two students resident at once: `BudgetGuard.admit_pair` and `BudgetGuard.pair_fits`.

Numbers are the reference card's (RTX 4070 Super, 12282 MB, 900 MB used by others) and
the students' measured resident MB (alpha 3847, gamma 4401, zeta 5012).
"""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rhtui.engine.budget import BudgetGuard, Decision
from rhtui.engine.config import BudgetPolicy
from rhtui.engine.hardware import HardwareSnapshot
from tests.engine.test_budget import BASELINE, TOTAL, ZETA, snap

ALPHA, GAMMA = 3847.0, 4401.0


@pytest.fixture
def guard() -> BudgetGuard:
    return BudgetGuard(BudgetPolicy())


# -- admit_pair -------------------------------------------------------------------


def test_two_reference_students_fit_together_with_numbers(guard):
    # alpha is resident at its full need: used = 900 + 3847
    d = guard.admit_pair(ALPHA, GAMMA, snap(BASELINE + ALPHA), running_resident_mb=ALPHA)
    assert d == Decision(
        True,
        "both fit: 3,847 + 4,401 MB + 1,024 MB reserve of 11,382 MB free, reaches 9,148 of 12,282 MB (74.5 %)",
    )


def test_the_running_student_may_still_grow_to_its_need(guard):
    # alpha holds 3,500 MB now; 347 MB more may come: 2,955 MB of others + 3,500 + 347 + 4,401 = 11,203 > 11,053.8
    used = 2955 + 3500
    d = guard.admit_pair(ALPHA, GAMMA, snap(used), running_resident_mb=3500)
    assert not d.ok
    assert d.reason == (
        "both resident would reach 11,203 of 12,282 MB (91.2 %), above the 90 % limit; "
        "the running one holds 3,500 MB now and may grow to 3,847 MB"
    )
    # at its full need already, the same card admits the pair
    assert guard.admit_pair(3500, GAMMA, snap(used), running_resident_mb=3500).ok


def test_reserve_rule_for_a_pair_says_both_needs_and_what_is_free():
    guard = BudgetGuard(BudgetPolicy(max_fraction=0.99, emergency_fraction=1.0))
    # others 2,000 MB, alpha resident: 12,282 - 2,000 = 10,282 MB free of others; 3,847 + 5,012 + 1,024 = 9,883 fits
    assert guard.admit_pair(ALPHA, ZETA, snap(2000 + ALPHA), running_resident_mb=ALPHA).ok
    # others 2,500 MB: 9,782 MB free of others is short of 9,883
    d = guard.admit_pair(ALPHA, ZETA, snap(2500 + ALPHA), running_resident_mb=ALPHA)
    assert d == Decision(False, "both resident: 3,847 + 5,012 MB + 1,024 MB reserve, 9,782 MB free")


def test_reserve_rule_for_a_pair_is_inclusive_at_the_boundary():
    guard = BudgetGuard(BudgetPolicy(max_fraction=0.99, emergency_fraction=1.0))
    others = TOTAL - (ALPHA + ZETA + 1024)
    assert guard.admit_pair(ALPHA, ZETA, snap(others + ALPHA), running_resident_mb=ALPHA).ok
    assert not guard.admit_pair(ALPHA, ZETA + 1, snap(others + ALPHA), running_resident_mb=ALPHA).ok


def test_unreported_resident_size_counts_the_whole_running_need(guard):
    # 900 + 3,847 used with alpha loaded: known, the pair fits; unknown, alpha is counted again
    s = snap(BASELINE + ALPHA)
    assert guard.admit_pair(ALPHA, GAMMA, s, running_resident_mb=ALPHA).ok
    d = guard.admit_pair(ALPHA, GAMMA, s, running_resident_mb=None)
    assert not d.ok
    assert "resident size is not reported" in d.reason


def test_a_resident_size_above_the_cards_use_counts_only_the_cards_use(guard):
    # /api/ps says 6,000 MB but the card reports 4,000 used: only 4,000 can be counted as already loaded
    assert guard.admit_pair(6000, 4000, snap(4000), running_resident_mb=6000) == guard.admit_pair(
        6000, 4000, snap(4000), running_resident_mb=4000
    )


def test_unknown_vram_refuses_a_pair_and_says_why(guard):
    for s in (snap(None, None), snap(None), snap(BASELINE, None), snap(BASELINE, 0.0)):
        d = guard.admit_pair(ALPHA, GAMMA, s, running_resident_mb=ALPHA)
        assert not d.ok
        assert d.reason.startswith("VRAM is not measured: two students are resident at once only when")
        assert guard.admit(GAMMA, s).ok  # one student alone is admitted on Ollama's own checks


def test_ram_rule_applies_to_a_pair(guard):
    d = guard.admit_pair(ALPHA, GAMMA, snap(BASELINE + ALPHA, ram_used=31_500, ram_total=32_000),
                         running_resident_mb=ALPHA)
    assert d == Decision(False, "only 500 MB of RAM free, 1024 MB must stay free")


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf"), -1.0])
def test_unusable_needs_are_refused(guard, bad):
    s = snap(BASELINE + ALPHA)
    d = guard.admit_pair(ALPHA, bad, s, running_resident_mb=ALPHA)
    assert not d.ok and "no usable VRAM estimate" in d.reason
    d = guard.admit_pair(bad, GAMMA, s, running_resident_mb=ALPHA)
    assert not d.ok and "running student" in d.reason


def test_a_card_used_beyond_its_size_admits_nothing(guard):
    assert not guard.admit_pair(0.0, 0.0, snap(TOTAL + 1), running_resident_mb=0.0).ok
    assert not guard.admit_pair(ALPHA, 1.0, snap(TOTAL + 100), running_resident_mb=ALPHA).ok


# -- pair_fits --------------------------------------------------------------------


def test_pair_fits_on_the_reference_card(guard):
    d = guard.pair_fits(ZETA, GAMMA, BASELINE, TOTAL)
    assert d == Decision(
        True,
        "together 5,012 + 4,401 MB + 1,024 MB reserve of 11,382 MB free, reaches 10,313 of 12,282 MB (84.0 %)",
    )
    d = guard.pair_fits(ZETA, GAMMA, 2000, TOTAL)
    assert d == Decision(
        False,
        "together 5,012 + 4,401 MB + 1,024 MB reserve, 10,282 MB free; "
        "together would reach 11,413 of 12,282 MB (92.9 %), above the 90 % limit",
    )
    # 2,000 MB of others leaves room for zeta with alpha
    assert guard.pair_fits(ZETA, ALPHA, 2000, TOTAL).ok


@pytest.mark.parametrize("a,b", [(None, GAMMA), (ZETA, None), (float("nan"), GAMMA), (ZETA, float("inf")), (-1.0, 1.0)])
def test_pair_fits_refuses_unusable_needs(guard, a, b):
    d = guard.pair_fits(a, b, BASELINE, TOTAL)
    assert not d.ok and "no usable VRAM estimate" in d.reason


@pytest.mark.parametrize("base,total", [(None, TOTAL), (BASELINE, None), (BASELINE, 0.0), (float("nan"), TOTAL),
                                        (BASELINE, float("inf"))])
def test_pair_fits_refuses_an_unmeasured_card(guard, base, total):
    d = guard.pair_fits(ALPHA, GAMMA, base, total)
    assert not d.ok and "not measured" in d.reason


def test_pair_fits_is_refused_when_others_use_more_than_the_card(guard):
    assert not guard.pair_fits(0.0, 0.0, TOTAL + 1, TOTAL).ok


# -- properties -------------------------------------------------------------------


@st.composite
def policies(draw) -> BudgetPolicy:
    max_fraction = draw(st.floats(0.5, 0.95))
    return BudgetPolicy(
        reserve_mb=draw(st.integers(0, 4096)),
        max_fraction=max_fraction,
        emergency_fraction=draw(st.floats(max_fraction + 0.005, 1.0)),
        ram_reserve_mb=draw(st.integers(0, 4096)),
    )


def needs() -> st.SearchStrategy[float]:
    return st.floats(0, 25_000) | st.sampled_from([0.0, float("nan"), float("inf"), -float("inf"), -1.0, -0.0])


@st.composite
def snapshots(draw) -> HardwareSnapshot:
    total = draw(st.sampled_from([None, 0.0, -1.0, float("nan"), float("inf")]) | st.floats(1000, 48_000))
    used = draw(st.sampled_from([None, float("nan"), -5.0]) | st.floats(0, 60_000))
    ram_total = draw(st.none() | st.floats(4000, 256_000))
    ram_used = None if ram_total is None else draw(st.floats(0, 1)) * ram_total
    return snap(used, total, ram_used, ram_total)


def measured(s: HardwareSnapshot) -> bool:
    t, u = s.vram_total_mb, s.vram_used_mb
    return t is not None and u is not None and math.isfinite(t) and math.isfinite(u) and t > 0


@settings(max_examples=500, deadline=None)
@given(policy=policies(), s=snapshots(), running=needs(), nxt=needs(),
       resident=st.none() | st.floats(0, 25_000) | st.sampled_from([float("nan"), -1.0]))
def test_admit_pair_never_admits_a_pair_that_does_not_fit(policy, s, running, nxt, resident):
    guard = BudgetGuard(policy)
    d = guard.admit_pair(running, nxt, s, running_resident_mb=resident)
    assert d.reason
    if not d.ok:
        return
    assert measured(s)
    assert math.isfinite(running) and running >= 0 and math.isfinite(nxt) and nxt >= 0
    total, used = s.vram_total_mb, s.vram_used_mb
    assert total is not None and used is not None
    free = s.vram_free_mb
    assert free is not None
    # what the running student may still take on top of what it holds now
    held = min(resident, max(0.0, used)) if resident is not None and math.isfinite(resident) and resident >= 0 else 0.0
    headroom = max(0.0, running - held)
    assert nxt + policy.reserve_mb <= free  # the reserve stays free
    assert nxt + headroom + policy.reserve_mb <= free  # …even once the running one reaches its need
    assert used + headroom + nxt <= policy.max_fraction * total  # never above the max fraction
    assert used <= total
    if s.ram_total_mb is not None and s.ram_used_mb is not None:
        assert s.ram_total_mb - s.ram_used_mb >= policy.ram_reserve_mb


@settings(max_examples=500, deadline=None)
@given(policy=policies(), s=snapshots(), nxt=needs(), resident=st.none() | st.floats(0, 25_000))
def test_admit_pair_agrees_with_admit_when_the_running_need_is_zero(policy, s, nxt, resident):
    guard = BudgetGuard(policy)
    pair = guard.admit_pair(0.0, nxt, s, running_resident_mb=resident)
    alone = guard.admit(nxt, s)
    if measured(s):
        assert pair.ok == alone.ok
    else:
        assert not pair.ok  # one student alone may load on Ollama's own checks, a pair never


@settings(max_examples=500, deadline=None)
@given(policy=policies(), total=st.integers(1000, 48_000), base=st.integers(0, 48_000),
       a=st.integers(0, 25_000), b=st.integers(0, 25_000), held=st.floats(0, 1))
def test_a_planned_pair_is_admitted_while_the_first_one_loads(policy, total, base, a, b, held):
    """pair_fits before the round is admit_pair during it, whatever part of its need the first holds yet."""
    guard = BudgetGuard(policy)
    resident = float(math.floor(a * held))
    planned = guard.pair_fits(a, b, base, total)
    live = guard.admit_pair(a, b, snap(base + resident, float(total)), running_resident_mb=resident)
    assert planned.ok == live.ok
    assert planned.reason and live.reason


@settings(max_examples=300, deadline=None)
@given(policy=policies(), total=st.floats(1000, 48_000), base=st.floats(0, 60_000), a=needs(), b=needs())
def test_pair_fits_is_symmetric_and_within_the_rules(policy, total, base, a, b):
    guard = BudgetGuard(policy)
    d = guard.pair_fits(a, b, base, total)
    assert d.ok == guard.pair_fits(b, a, base, total).ok
    if d.ok:
        assert a + b + policy.reserve_mb <= total - base
        assert base + a + b <= policy.max_fraction * total
