"""The base of every chart: a PlotextPlot that redraws only when visible and changed, at most once a second.

Each chart owns its plot object (`self.plt`, never the module-global plotext).
`set_data(data, version)` is cheap: it stores the data. The replot (clear → plot →
refresh) happens when the version changed *and* the chart can be seen (its screen
is current, it is displayed and has a size), and never more often than
`MIN_INTERVAL_S` on the chart's `clock` (`time.monotonic` unless one is passed in, as
the tests do). A chart that was hidden when its data changed redraws when it is
shown again (`wake()`, called on resize, show and screen resume). `render()`
caches the built figure by (size, theme, drawn version), so a repaint that Textual
asks for for another reason does not rebuild the plot.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Any, ClassVar

from rich.text import Text
from textual.timer import Timer
from textual_plotext import PlotextPlot
from textual_plotext.plot import Plot

from rhtui.tui.textual_compat import plotext_theme_name, size_plot


def nice_ticks(top: float, n: int = 4) -> list[float]:
    """0 and round steps (1, 2, 2.5, 5 × 10^k) up to `top`: about n+1 ticks."""
    if not top > 0 or not math.isfinite(top):
        return [0.0]
    raw = top / (max(1, n) + 1)
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw)
    ticks: list[float] = []
    i = 0
    while i * step <= top * 1.0001:
        ticks.append(float(f"{i * step:.12g}"))  # 0.30000000000000004 -> 0.3, at any scale
        i += 1
    return ticks


def tick_label(v: float) -> str:
    if abs(v) >= 10_000:
        return f"{v / 1000:.0f}k"
    if abs(v) >= 1000:
        return f"{v / 1000:.1f}k".replace(".0k", "k")
    if v == int(v):
        return f"{v:.0f}"
    return f"{v:.1f}"


class Chart(PlotextPlot):
    MIN_INTERVAL_S = 1.0
    CLOCK: ClassVar[Callable[[], float]] = time.monotonic
    """The clock a chart throttles its redraws by when none is passed in (seconds, monotonic)."""

    DEFAULT_CSS = """
    Chart {
        height: 1fr;
        width: 1fr;
        min-height: 6;
    }
    """

    TITLE = ""

    def __init__(
        self, *, id: str | None = None, classes: str | None = None, clock: Callable[[], float] | None = None
    ) -> None:
        super().__init__(id=id, classes=classes)
        self.clock: Callable[[], float] = clock if clock is not None else type(self).CLOCK
        self.border_title = self.TITLE
        self._data: Any = None
        self._version: int = -1
        self._drawn_version: int = -2
        self._last_draw = -math.inf
        self._timer: Timer | None = None
        self._cache: tuple[tuple[object, ...], Text] | None = None
        self._plotted_size: tuple[int, int] = (0, 0)
        self.redraws = 0
        """How many times the figure was replotted (tests and the bench read it)."""
        self.builds = 0
        """How many times plotext built the figure text."""

    # -- what subclasses implement -------------------------------------------

    def plot(self, plt: Plot, data: Any) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    # -- data in -----------------------------------------------------------------

    def set_data(self, data: Any, version: int) -> None:
        if version == self._version:
            return
        self._data = data
        self._version = version
        self._schedule()

    def wake(self) -> None:
        """The chart may have become visible: draw if it is stale."""
        if self._drawn_version != self._version:
            self._schedule()

    @property
    def stale(self) -> bool:
        return self._drawn_version != self._version

    def _visible(self) -> bool:
        if not self.is_mounted or not self.display or self.size.width <= 0 or self.size.height <= 0:
            return False
        try:
            return self.screen.is_current
        except Exception:
            return False

    def _schedule(self) -> None:
        if not self.is_mounted:
            return
        wait = self._last_draw + self.MIN_INTERVAL_S - self.clock()
        if wait <= 0:
            if self._timer is not None:  # due already (a late timer): draw now, once
                self._timer.stop()
                self._timer = None
            self._draw()
        elif self._timer is None:
            self._timer = self.set_timer(wait, self._fire, name=f"chart-{self.id}")

    def _fire(self) -> None:
        self._timer = None
        if self.stale:
            self._schedule()  # draws if the chart's clock says the interval is up, else waits the rest

    def _draw(self) -> None:
        if self._drawn_version == self._version or not self._visible():
            return
        self._last_draw = self.clock()
        self._drawn_version = self._version
        self._plotted_size = (self.size.width, self.size.height)
        plt = self.plt
        plt.clear_data()
        plt.clear_figure()
        self.plot(plt, self._data)
        self.redraws += 1
        self._cache = None
        self.refresh()

    # -- Textual hooks -----------------------------------------------------------

    def on_resize(self) -> None:
        if (self.size.width, self.size.height) != self._plotted_size and self._drawn_version >= 0:
            # ticks and labels depend on the size: plot again now (a resize is rare and
            # user-driven, so it skips the once-a-second limit)
            self._drawn_version = -2
            if self._timer is not None:
                self._timer.stop()
                self._timer = None
            self._draw()
        self.wake()

    def on_show(self) -> None:
        self.wake()

    def fit_height(self, height: int) -> int:
        """The height to plot at (a subclass may use fewer rows so its bars line up with labels)."""
        return height

    def render(self) -> Text:
        width, height = self.size.width, self.size.height
        key = (width, height, self.app.theme, self.theme, self._drawn_version)
        if self._cache is not None and self._cache[0] == key:
            return self._cache[1]
        if width <= 0 or height <= 0:
            return Text("")
        rows = max(1, min(height, self.fit_height(height)))
        # as PlotextPlot.render, at the fitted height
        size_plot(self._plot, width, rows)
        self._plot.theme(plotext_theme_name(self, self.app.theme))
        result = Text.from_ansi(self._plot.build())
        self.builds += 1
        self._cache = (key, result)
        return result
