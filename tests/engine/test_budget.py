"""The budget guard: every rule on the reference card (RTX 4070 Super, 12282 MB), plus properties."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rhtui.engine.budget import BudgetGuard, Decision
from rhtui.engine.config import BudgetPolicy
from rhtui.engine.hardware import HardwareSnapshot

TOTAL = 12282.0
BASELINE = 900.0
ZETA = 5012.0


def snap(
    used: float | None,
    total: float | None = TOTAL,
    ram_used: float | None = None,
    ram_total: float | None = None,
) -> HardwareSnapshot:
    return HardwareSnapshot(
        ts=0.0, source="sim", vram_total_mb=total, vram_used_mb=used,
        ram_used_mb=ram_used, ram_total_mb=ram_total,
    )


@pytest.fixture
def guard() -> BudgetGuard:
    return BudgetGuard(BudgetPolicy())


# -- admit ----------------------------------------------------------------------


def test_largest_student_fits_on_an_idle_card(guard):
    d = guard.admit(ZETA, snap(BASELINE))
    assert d.ok
    assert "fits" in d.reason


def test_reserve_rule_refuses_with_numbers():
    guard = BudgetGuard(BudgetPolicy(max_fraction=0.99, emergency_fraction=1.0))
    # 5500 MB free: zeta itself fits, zeta + the reserve does not; 11794 MB is under 99 %.
    d = guard.admit(ZETA, snap(TOTAL - 5500))
    assert d == Decision(False, "needs 5012 MB + 1024 MB reserve, only 5500 MB free")


def test_reserve_rule_boundary_is_inclusive():
    guard = BudgetGuard(BudgetPolicy(max_fraction=0.99, emergency_fraction=1.0))
    free = ZETA + 1024
    assert guard.admit(ZETA, snap(TOTAL - free)).ok
    assert not guard.admit(ZETA + 1, snap(TOTAL - free)).ok


def test_max_fraction_rule_refuses_even_when_the_reserve_fits(guard):
    # 6900 + 4300 = 11200 MB: 5382 MB free covers 4300 + 1024, but 11200 > 90 % of 12282.
    d = guard.admit(4300, snap(6900))
    assert d == Decision(False, "would reach 11200 of 12282 MB (91.2 %), above the 90 % limit")


def test_max_fraction_rule_alone_with_no_reserve():
    guard = BudgetGuard(BudgetPolicy(reserve_mb=0))
    d = guard.admit(4900, snap(7000))
    assert not d.ok
    assert d.reason == "would reach 11900 of 12282 MB (96.9 %), above the 90 % limit"


def test_both_rules_broken_name_both(guard):
    d = guard.admit(ZETA, snap(TOTAL - 4800))
    assert not d.ok
    assert "needs 5012 MB + 1024 MB reserve, only 4800 MB free" in d.reason
    assert "above the 90 % limit" in d.reason


def test_max_fraction_boundary_is_inclusive():
    guard = BudgetGuard(BudgetPolicy(reserve_mb=0))
    max_mb, _ = guard.limits_mb(TOTAL)
    assert guard.admit(max_mb - 7000, snap(7000)).ok
    assert not guard.admit(max_mb - 7000 + 1, snap(7000)).ok


def test_ram_reserve_refuses_when_ram_is_short(guard):
    d = guard.admit(3847, snap(BASELINE, ram_used=31_500, ram_total=32_000))
    assert not d.ok
    assert d.reason == "only 500 MB of RAM free, 1024 MB must stay free"


def test_ram_reserve_boundary_and_absence(guard):
    assert guard.admit(3847, snap(BASELINE, ram_used=32_000 - 1024, ram_total=32_000)).ok
    assert guard.admit(3847, snap(BASELINE, ram_used=None, ram_total=32_000)).ok
    assert guard.admit(3847, snap(BASELINE)).ok


@pytest.mark.parametrize("used,total", [(None, None), (None, TOTAL), (BASELINE, None)])
def test_unknown_vram_is_admitted_on_ollamas_checks(guard, used, total):
    d = guard.admit(ZETA, snap(used, total))
    assert d.ok
    assert "not measured" in d.reason
    assert "Ollama" in d.reason


def test_unknown_vram_still_checks_ram(guard):
    d = guard.admit(ZETA, snap(None, None, ram_used=31_900, ram_total=32_000))
    assert not d.ok
    assert "RAM" in d.reason


@pytest.mark.parametrize("need", [float("nan"), float("inf"), -1.0])
def test_unusable_need_is_refused(guard, need):
    d = guard.admit(need, snap(BASELINE))
    assert not d.ok and d.reason


# -- emergency, zones, resume -----------------------------------------------------


def test_limits_of_the_reference_card(guard):
    max_mb, emergency_mb = guard.limits_mb(TOTAL)
    assert max_mb == pytest.approx(11053.8)
    assert emergency_mb == pytest.approx(11667.9)


def test_emergency_threshold_is_strictly_above(guard):
    _, emergency_mb = guard.limits_mb(TOTAL)
    assert not guard.is_emergency(snap(emergency_mb))
    assert guard.is_emergency(snap(emergency_mb + 0.5))
    assert guard.is_emergency(snap(TOTAL))
    assert not guard.is_emergency(snap(None))


def test_zone_boundaries(guard):
    max_mb, emergency_mb = guard.limits_mb(TOTAL)
    warn_mb = guard.warning_fraction * TOTAL
    assert guard.zone(snap(BASELINE)) == "ok"
    assert guard.zone(snap(warn_mb - 0.5)) == "ok"
    assert guard.zone(snap(warn_mb)) == "warning"
    assert guard.zone(snap(max_mb)) == "warning"
    assert guard.zone(snap(max_mb + 0.5)) == "limit"
    assert guard.zone(snap(emergency_mb)) == "limit"
    assert guard.zone(snap(emergency_mb + 0.5)) == "emergency"
    assert guard.zone(snap(None)) == "unknown"
    assert guard.zone(snap(BASELINE, total=None)) == "unknown"
    assert guard.zone(snap(BASELINE, total=0.0)) == "unknown"


def test_warning_starts_five_points_below_max(guard):
    assert guard.warning_fraction == pytest.approx(0.85)


def test_may_resume_only_under_the_max(guard):
    max_mb, _ = guard.limits_mb(TOTAL)
    assert guard.may_resume(snap(BASELINE))
    assert guard.may_resume(snap(max_mb))
    assert not guard.may_resume(snap(max_mb + 1))
    assert not guard.may_resume(snap(None))  # unknown is not a confirmation


# -- properties -------------------------------------------------------------------


@st.composite
def policies(draw) -> BudgetPolicy:
    max_fraction = draw(st.floats(0.5, 0.95))
    emergency = draw(st.floats(max_fraction + 0.005, 1.0))
    return BudgetPolicy(
        reserve_mb=draw(st.integers(0, 4096)),
        max_fraction=max_fraction,
        emergency_fraction=emergency,
        ram_reserve_mb=draw(st.integers(0, 4096)),
    )


@st.composite
def snapshots(draw) -> HardwareSnapshot:
    total = draw(st.floats(4000, 48000))
    used = draw(st.floats(0, 1)) * total
    ram_total = draw(st.none() | st.floats(4000, 256_000))
    ram_used = None if ram_total is None else draw(st.floats(0, 1)) * ram_total
    return snap(used, total, ram_used, ram_total)


@settings(max_examples=300)
@given(policy=policies(), s=snapshots(), need=st.floats(500, 20000))
def test_admit_is_exactly_the_fit_rule(policy, s, need):
    guard = BudgetGuard(policy)
    d = guard.admit(need, s)
    fits_vram = (
        need + policy.reserve_mb <= s.vram_free_mb
        and s.vram_used_mb + need <= policy.max_fraction * s.vram_total_mb
    )
    fits_ram = s.ram_total_mb is None or s.ram_total_mb - s.ram_used_mb >= policy.ram_reserve_mb
    assert d.ok == (fits_vram and fits_ram)
    assert d.reason  # refusals always, admissions too


@given(policy=policies(), s=snapshots())
def test_zone_agrees_with_emergency_and_resume(policy, s):
    guard = BudgetGuard(policy)
    zone = guard.zone(s)
    assert (zone == "emergency") == guard.is_emergency(s)
    assert guard.may_resume(s) == (zone in ("ok", "warning"))
