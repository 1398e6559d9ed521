"""Charts redraw only when visible and changed, at most once a second.

The charts' clock is a ManualClock here: a test moves time on instead of waiting it out.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest
from textual.pilot import Pilot

from rhtui.engine import events as ev
from rhtui.engine.clock import ManualClock
from rhtui.tui.app import RhtuiApp
from rhtui.tui.widgets.chart import Chart, nice_ticks
from rhtui.tui.widgets.vram_chart import VramChart
from tests.ui import scenes
from tests.ui.fakes import T0, snapshot


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> ManualClock:
    """The clock every chart throttles its redraws by, for the test's app."""
    manual = ManualClock(start=0.0)
    monkeypatch.setattr(Chart, "CLOCK", manual.monotonic)
    return manual


def sample(i: int, used_mb: float) -> ev.HardwareSampled:
    """A hardware sample in a new timeline bucket (100 s apart), so the VRAM chart has news."""
    ts = T0 + 1e4 + 100 * i
    return ev.HardwareSampled(ts=ts, snapshot=snapshot(ts, used_mb))


@asynccontextmanager
async def wide_dashboard(make_ui) -> AsyncIterator[tuple[RhtuiApp, Pilot, VramChart]]:
    """The dashboard of a mid-cycle session at 160x50 (its VRAM chart shown), after its first
    frame: (app, pilot, the VRAM chart)."""
    app = make_ui(scenes.mid_cycle_events())
    async with app.run_test(size=(160, 50)) as pilot:
        chart = app.screen.query_one("#dash-vram", VramChart)
        await pilot.pause()
        yield app, pilot, chart


def test_nice_ticks():
    assert nice_ticks(9.6, 3) == [0.0, 2.5, 5.0, 7.5]
    assert nice_ticks(19113, 3) == [0.0, 5000.0, 10000.0, 15000.0]
    assert nice_ticks(0) == [0.0]


async def test_hidden_chart_does_not_redraw(make_ui):
    app = make_ui(scenes.mid_cycle_events())
    async with app.run_test(size=(80, 24)) as pilot:  # narrow: the dashboard's VRAM chart is hidden
        chart = app.screen.query_one("#dash-vram", VramChart)
        assert not chart.display or chart.size.width == 0
        for i in range(30):
            app.engine_event(ev.HardwareSampled(ts=T0 + 100 * i, snapshot=snapshot(T0 + 100 * i, 900.0 + 300 * i)))
            await pilot.pause()
        assert chart.redraws == 0 and chart.builds == 0


async def test_visible_chart_redraws_at_most_once_a_second(make_ui, clock):
    async with wide_dashboard(make_ui) as (app, pilot, chart):
        first = chart.redraws
        assert first == 1
        for i in range(20):  # 20 changes in 0.8 s
            clock.advance(0.04)
            app.engine_event(sample(i, 900.0 + 500 * (i % 2)))
            await pilot.pause()
        assert chart.redraws == first and chart.stale  # within the second of the last draw: held back
        clock.advance(0.25)  # the second is up: the next change draws at once
        app.engine_event(sample(20, 900.0))
        await pilot.pause()
        assert chart.redraws == first + 1 and not chart.stale


async def test_a_held_back_redraw_happens_when_its_second_is_up(make_ui, clock):
    async with wide_dashboard(make_ui) as (app, pilot, chart):
        first = chart.redraws
        clock.advance(0.95)
        app.engine_event(sample(0, 5000.0))
        await pilot.pause()
        assert chart.redraws == first and chart.stale  # held back for the last 0.05 s of the second
        await pilot.pause(0.2)  # the chart's timer fires, but its clock says the second is not up yet
        assert chart.redraws == first and chart.stale
        clock.advance(0.05)
        await pilot.pause(0.2)  # the timer (armed again for what was left) fires and draws
        assert chart.redraws == first + 1 and not chart.stale


async def test_charts_on_a_screen_not_shown_wait_until_it_is(make_ui, clock):
    app = make_ui(scenes.mid_cycle_events())
    async with app.run_test(size=(160, 50)) as pilot:
        await pilot.press("2")
        await pilot.pause()
        charts = list(app.screen.query(Chart))
        counts = [c.redraws for c in charts]
        assert all(n == 1 for n in counts)
        await pilot.press("1")
        await pilot.pause()
        for i in range(5):
            app.engine_event(ev.HardwareSampled(ts=T0 + 1e5 * (i + 1), snapshot=snapshot(T0, 9000.0)))
            await pilot.pause()
        assert [c.redraws for c in charts] == counts  # not drawn while hidden
        clock.advance(1.1)
        await pilot.press("2")
        await pilot.pause()
        assert charts[0].redraws == counts[0] + 1  # the VRAM chart caught up when shown


async def test_unchanged_chart_is_not_rebuilt_on_repaint(make_ui):
    async with wide_dashboard(make_ui) as (app, pilot, chart):
        builds = chart.builds
        for _ in range(5):
            app.screen.refresh()
            chart.refresh()
            await pilot.pause()
        assert chart.builds == builds
