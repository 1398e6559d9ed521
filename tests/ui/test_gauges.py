"""The VRAM gauge's zone is the budget guard's: what the gauge calls an emergency is what
stops the engine, to the megabyte, at the exact boundaries too."""

from __future__ import annotations

import math

import pytest
from textual.app import App, ComposeResult

from rhtui.engine.budget import BudgetGuard
from rhtui.engine.config import BudgetPolicy
from rhtui.engine.hardware import HardwareSnapshot
from rhtui.tui.widgets.gauges import ZONE_WORDS, Gauges, GaugeValues, vram_zone
from tests.ui.fakes import T0, TOTAL_MB, snapshot

POLICY = BudgetPolicy()  # 90 % limit, 95 % emergency, warning from 85 %


def boundaries(total: float) -> list[float]:
    """VRAM used at each boundary as the guard computes it (fraction * total), a hair either side,
    and 1 MB either side."""
    out: list[float] = []
    for fraction in (POLICY.max_fraction - 0.05, POLICY.max_fraction, POLICY.emergency_fraction):
        line = fraction * total
        out += [line, math.nextafter(line, -math.inf), math.nextafter(line, math.inf), line - 1, line + 1]
    return out


@pytest.mark.parametrize("total", [TOTAL_MB, 10_000.0, 12_288.0], ids=lambda t: f"{t:.0f}MB")
def test_the_gauge_zone_is_the_guard_zone_at_every_boundary(total):
    guard = BudgetGuard(POLICY)
    for used in boundaries(total):
        snap = snapshot(T0, used, total_mb=total)
        expected = guard.zone(snap)
        assert GaugeValues.of(snap, "probe", POLICY).zone == expected, (used, total)
        assert vram_zone(used, total, POLICY) == expected, (used, total)


def test_exactly_95_percent_is_over_the_limit_and_just_above_is_an_emergency():
    total = 10_000.0
    assert vram_zone(0.95 * total, total, POLICY) == "limit"  # the engine does not trip at 95.0 %
    assert vram_zone(math.nextafter(0.95 * total, math.inf), total, POLICY) == "emergency"
    assert vram_zone(0.90 * total, total, POLICY) == "warning"
    assert vram_zone(math.nextafter(0.90 * total, math.inf), total, POLICY) == "limit"
    assert vram_zone(0.85 * total, total, POLICY) == "warning"
    assert vram_zone(math.nextafter(0.85 * total, -math.inf), total, POLICY) == "ok"


def test_unknown_vram_is_the_unknown_zone():
    assert vram_zone(None, TOTAL_MB, POLICY) == "unknown"
    assert vram_zone(5000.0, None, POLICY) == "unknown"
    assert vram_zone(float("nan"), TOTAL_MB, POLICY) == "unknown"
    assert GaugeValues.of(None, "probe", POLICY).zone == "unknown"
    no_vram = HardwareSnapshot(ts=T0, source="none")
    assert GaugeValues.of(no_vram, "probe", POLICY).zone == BudgetGuard(POLICY).zone(no_vram) == "unknown"


class OneGauge(App[None]):
    def __init__(self, gauges: Gauges) -> None:
        super().__init__()
        self.gauges = gauges

    def compose(self) -> ComposeResult:
        yield self.gauges


@pytest.mark.parametrize(
    ("fraction", "zone"),
    [(0.95, "limit"), (0.9501, "emergency"), (0.90, "warning"), (0.9001, "limit"), (0.50, "ok")],
)
async def test_the_gauge_says_the_guard_zone_on_screen(fraction, zone):
    total = 10_000.0
    snap = snapshot(T0, fraction * total, total_mb=total)
    assert BudgetGuard(POLICY).zone(snap) == zone
    gauges = Gauges(POLICY)
    app = OneGauge(gauges)
    async with app.run_test(size=(100, 6)) as pilot:
        gauges.show(snap, "probe", POLICY)
        await pilot.pause()
        legend = gauges.render_line(1).text
    assert gauges.values.zone == zone
    assert legend.rstrip().endswith(ZONE_WORDS[zone]), legend
