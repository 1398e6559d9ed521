"""Every chart and gauge renders whatever the engine can give it: an empty series, a zero
series, a single point and an all-equal series, with the card's total known, unknown (no
NVML and no `gpu_total_mb`) or reported as zero. Nothing divides by zero, no chart asks
plotext for an empty range, and what is not known reads N/A.
"""

from __future__ import annotations

from collections import deque

import pytest
from textual.app import App, ComposeResult
from textual.widget import Widget

from rhtui.engine import events as ev
from rhtui.engine.config import BudgetPolicy
from rhtui.engine.hardware import HardwareSnapshot
from rhtui.engine.records import StudentStats
from rhtui.tui.screens.base import status_info
from rhtui.tui.state import HistoryRow, StudentRow
from rhtui.tui.widgets.chart import Chart, nice_ticks
from rhtui.tui.widgets.cycle_chart import CycleChart, CycleTokens
from rhtui.tui.widgets.gauges import Gauges
from rhtui.tui.widgets.runs_table import RunsTable
from rhtui.tui.widgets.score_chart import ScoreChart, ScoreSeries
from rhtui.tui.widgets.status_bar import StatusBar, StatusInfo
from rhtui.tui.widgets.student_chart import StudentBars, StudentChart
from rhtui.tui.widgets.student_queue import StudentQueue
from rhtui.tui.widgets.vram_chart import VramChart, VramSeries
from tests.ui.fakes import T0, session_start

SERIES: dict[str, tuple[float, ...]] = {
    "empty": (),
    "zero": (0.0, 0.0, 0.0),
    "single": (4200.0,),
    "equal": (4200.0, 4200.0, 4200.0),
}
TOTALS: dict[str, float | None] = {"total-unknown": None, "total-zero": 0.0, "total-known": 12282.0}
SIZES = [(80, 24), (40, 8)]


def snap(ts: float, used: float | None, total: float | None) -> HardwareSnapshot:
    return HardwareSnapshot(ts=ts, source="none", vram_used_mb=used, vram_total_mb=total,
                            ram_used_mb=used, ram_total_mb=total, cpu_pct=None if used is None else 0.0)


def stats(name: str, values: tuple[float, ...]) -> StudentStats | None:
    if not values:
        return None
    mean = sum(values) / len(values)
    return StudentStats(student=name, runs=len(values), failures=0, vram_mean_mb=mean, vram_p95_mb=max(values),
                        seconds_mean=mean, tokens_mean=mean, tok_per_s_mean=mean)


# -- how each widget is fed a series --------------------------------------------------------


def feed_vram_chart(w: VramChart, values, total) -> None:
    minutes = tuple(0.5 * i for i in range(len(values)))
    w.set_data(VramSeries(minutes=minutes, used_mb=values, total_mb=total, reserve_mb=1024.0,
                          max_fraction=0.9, emergency_fraction=0.95, span_min=0.5 * len(values)), 1)


def feed_cycle_chart(w: CycleChart, values, total) -> None:
    w.set_data(CycleTokens(tuple(range(1, len(values) + 1)), tuple(int(v) for v in values)), 1)


def feed_student_chart(w: StudentChart, values, total) -> None:
    w.set_data(StudentBars(tuple(f"rh-{i}" for i in range(len(values))), values), 1)


def feed_score_chart(w: ScoreChart, values, total) -> None:
    """One student scored `values` over cycles 1..n, and one scored only in the last of them."""
    points = tuple((i + 1, v) for i, v in enumerate(values))
    w.set_data(ScoreSeries(("rh-alpha", "rh-beta"), (points, points[-1:])), 1)


def feed_gauges(w: Gauges, values, total) -> None:
    budget = BudgetPolicy()
    w.show(None, "ollama-ps", budget)
    for i, v in enumerate(values):
        w.show(snap(T0 + i, v, total), "ollama-ps", budget)


def feed_status_bar(w: StatusBar, values, total) -> None:
    last = values[-1] if values else None
    w.show(StatusInfo(state="running", session="rh_main", session_id=None, cycle=len(values), elapsed_s=last,
                      remaining_s=last, runs=len(values), tokens=int(sum(values)), current=None,
                      host="http://127.0.0.1:11434", backend_version=None, backend_down=False))


def feed_student_queue(w: StudentQueue, values, total) -> None:
    row = StudentRow(name="rh-alpha", model="rh-alpha", need_mb=values[-1] if values else None,
                     fits=None if not values else bool(total), learned=stats("rh-alpha", values),
                     vram=deque(values), tokens=int(sum(values)), tok_s=values[-1] if values else None)
    running = StudentRow(name="rh-beta", model="rh-beta", status="running", elapsed_s=values[-1] if values else None,
                         timeout_s=values[-1] if values else None, tokens=0)
    w.show([row, running], "rh-alpha")


def feed_runs_table(w: RunsTable, values, total) -> None:
    w.show([HistoryRow(seq=i + 1, cycle=1, student="rh-alpha", status="ok", started_at=T0, seconds=v, tokens=int(v),
                       tok_s=v, vram_mb=v) for i, v in enumerate(values)])


WIDGETS = {
    "vram_chart": (lambda: VramChart(id="w"), feed_vram_chart),
    "cycle_chart": (lambda: CycleChart(id="w"), feed_cycle_chart),
    "student_chart_tps": (lambda: StudentChart("tps", id="w"), feed_student_chart),
    "student_chart_secs": (lambda: StudentChart("secs", id="w"), feed_student_chart),
    "score_chart": (lambda: ScoreChart(id="w"), feed_score_chart),
    "gauges": (lambda: Gauges(BudgetPolicy(), id="w"), feed_gauges),
    "status_bar": (lambda: StatusBar("dashboard", id="w"), feed_status_bar),
    "student_queue": (lambda: StudentQueue(id="w"), feed_student_queue),
    "runs_table": (lambda: RunsTable(id="w"), feed_runs_table),
}


class OneWidget(App[None]):
    def __init__(self, widget: Widget) -> None:
        super().__init__()
        self.widget = widget

    def compose(self) -> ComposeResult:
        yield self.widget


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
@pytest.mark.parametrize("total", TOTALS, ids=str)
@pytest.mark.parametrize("series", SERIES, ids=str)
@pytest.mark.parametrize("kind", WIDGETS, ids=str)
async def test_every_chart_and_gauge_renders_degenerate_data(kind, series, total, size, monkeypatch):
    monkeypatch.setattr(Chart, "MIN_INTERVAL_S", 0.0)  # draw each change at once
    make, feed = WIDGETS[kind]
    widget = make()
    widget.styles.height = "1fr"
    app = OneWidget(widget)
    async with app.run_test(size=size) as pilot:
        await pilot.pause()
        feed(widget, SERIES[series], TOTALS[total])
        await pilot.pause()
        await pilot.pause()
        screen = app.export_screenshot()  # renders every widget now
        if isinstance(widget, Chart):
            assert widget.redraws >= 1 and not widget.stale and widget.builds >= 1
            widget.render()
    assert app.return_code in (None, 0)  # run_test re-raises anything the app caught
    assert screen
    if kind in ("gauges", "vram_chart") and series != "empty" and TOTALS[total] in (None, 0.0):
        assert "N/A" in widget_text(widget, screen), "an unknown card total must read N/A"


def widget_text(widget: Widget, screen_svg: str) -> str:
    if isinstance(widget, Chart):
        return str(widget.border_title)
    return screen_svg.replace("&#160;", " ")


def test_nice_ticks_never_divides_by_zero():
    for top in (0.0, -1.0, 1e-12, 0.004, 1.0):
        ticks = nice_ticks(top)
        assert ticks[0] == 0.0 and all(b > a for a, b in zip(ticks, ticks[1:], strict=False))


# -- the whole dashboard, as `rhtui` shows it without NVML and without gpu_total_mb ----------


def no_gpu_events(used: tuple[float, ...], total: float | None) -> list[ev.Event]:
    events = session_start()
    for i, v in enumerate(used):
        events.append(ev.HardwareSampled(ts=T0 + 2.5 * i, snapshot=snap(T0 + 2.5 * i, v, total),
                                         vram_source="ollama-ps"))
    return events


@pytest.mark.parametrize("size", [(80, 24), (160, 50)], ids=lambda s: f"{s[0]}x{s[1]}")
@pytest.mark.parametrize("total", TOTALS, ids=str)
@pytest.mark.parametrize("series", SERIES, ids=str)
async def test_the_dashboard_and_the_charts_view_without_a_card_total(make_ui, series, total, size, monkeypatch):
    monkeypatch.setattr(Chart, "MIN_INTERVAL_S", 0.0)
    app = make_ui(no_gpu_events(SERIES[series], TOTALS[total]), profiles=False)
    async with app.run_test(size=size) as pilot:
        await pilot.pause()
        dashboard = app.export_screenshot()
        await pilot.press("2")
        await pilot.pause()
        await pilot.pause()
        charts = app.export_screenshot()
        for chart in app.screen.query(Chart):
            assert not chart.stale
    assert app.return_code in (None, 0)
    if SERIES[series] and not TOTALS[total]:
        assert "N/A" in dashboard.replace("&#160;", " ")
    assert status_info(app.model).state == "running" and charts
