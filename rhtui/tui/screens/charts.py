"""Charts: the VRAM timeline, tokens per cycle, the judges' score per student over cycles, tok/s and
seconds per student."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import Grid

from rhtui.tui.screens.base import RhtuiScreen
from rhtui.tui.state import UiModel
from rhtui.tui.widgets.chart import Chart
from rhtui.tui.widgets.cycle_chart import CycleChart
from rhtui.tui.widgets.score_chart import ScoreChart
from rhtui.tui.widgets.student_chart import StudentChart
from rhtui.tui.widgets.vram_chart import VramChart


class ChartsScreen(RhtuiScreen):
    VIEW = "charts"

    def compose_body(self) -> ComposeResult:
        with Grid(id="charts-grid"):
            yield VramChart(id="chart-vram", classes="panel")
            yield CycleChart(id="chart-cycles", classes="panel")
            yield ScoreChart(id="chart-scores", classes="panel")
            yield StudentChart("tps", id="chart-tps", classes="panel")
            yield StudentChart("secs", id="chart-secs", classes="panel")

    def sync_body(self, model: UiModel) -> None:
        app = self.rh_app
        if self.changed(model, "vram"):
            self.query_one("#chart-vram", VramChart).set_data(app.vram_series(), model.versions["vram"])
        if self.changed(model, "students"):
            v = model.versions["students"]
            self.query_one("#chart-tps", StudentChart).set_data(app.student_bars("tps"), v)
            self.query_one("#chart-secs", StudentChart).set_data(app.student_bars("secs"), v)
        if self.changed(model, "scores"):
            self.query_one("#chart-scores", ScoreChart).set_data(app.score_series(), model.versions["scores"])
        if self.changed(model, "cycles"):
            self.query_one("#chart-cycles", CycleChart).set_data(app.cycle_tokens(), model.versions["cycles"])
        for chart in self.query(Chart):
            chart.wake()
