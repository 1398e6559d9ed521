"""A per-student bar chart: mean tokens/s or mean seconds per proposal in this session."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from textual_plotext.plot import Plot

from rhtui.tui.widgets.chart import Chart, nice_ticks, tick_label

Metric = Literal["tps", "secs"]
TITLES = {"tps": "tokens/s per student (mean, this session)", "secs": "seconds per proposal (mean, this session)"}
COLORS = {"tps": "green", "secs": "blue"}


@dataclass(frozen=True, slots=True)
class StudentBars:
    names: tuple[str, ...]
    values: tuple[float, ...]


def short(name: str) -> str:
    return name.removeprefix("rh-")


class StudentChart(Chart):
    def __init__(
        self, metric: Metric, *, id: str | None = None, classes: str | None = None,
        clock: Callable[[], float] | None = None,
    ) -> None:
        super().__init__(id=id, classes=classes, clock=clock)
        self.metric = metric

    def on_mount(self) -> None:
        self.border_title = TITLES[self.metric]

    def fit_height(self, height: int) -> int:
        """Whole rows per bar, so every bar sits on its label (frame and x labels take 3 rows)."""
        n = len(self._data.names) if isinstance(self._data, StudentBars) else 0
        rows = height - 3
        if n == 0 or rows < n:
            return height
        return n * (rows // n) + 3

    def plot(self, plt: Plot, data: StudentBars | None) -> None:
        self.border_title = TITLES[self.metric]
        if data is None or not data.names:
            self.border_title = TITLES[self.metric] + " — no runs yet"
            return
        plt.bar([short(n) for n in data.names], list(data.values), orientation="horizontal",
                color=COLORS[self.metric], width=1.0)
        top = max(1.0, max(data.values) * 1.1)
        ticks = nice_ticks(top, 4)
        plt.xticks(ticks, [tick_label(t) for t in ticks])
        plt.xlim(0, max(top, ticks[-1]))
