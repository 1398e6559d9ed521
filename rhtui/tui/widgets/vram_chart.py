"""The VRAM timeline of this session with the reserve, limit and emergency lines."""

from __future__ import annotations

from dataclasses import dataclass

from textual_plotext.plot import Plot

from rhtui.tui.widgets.chart import Chart, nice_ticks, tick_label


@dataclass(frozen=True, slots=True)
class VramSeries:
    minutes: tuple[float, ...]
    used_mb: tuple[float, ...]
    total_mb: float | None
    reserve_mb: float
    max_fraction: float
    emergency_fraction: float
    span_min: float


MIN_SPAN_GB = 1.0
"""The least VRAM range the chart shows when the card's total is unknown (a zero series still has a span)."""


class VramChart(Chart):
    """Max VRAM used per time bucket (GB) against session minutes; the limit and stop lines."""

    TITLE = "VRAM used (GB) over the session"

    def plot(self, plt: Plot, data: VramSeries | None) -> None:
        if data is None or not data.used_mb:
            self.border_title = self.TITLE + " — waiting for the first sample"
            plt.xlim(0, 5)
            plt.ylim(0, 12)
            return
        total_mb = data.total_mb if data.total_mb and data.total_mb > 0 else None
        known = total_mb is not None
        ys = [max(0.0, v) / 1024 for v in data.used_mb]
        # the card's size when it is known; otherwise a quarter above the highest sample, never
        # an empty range (a zero or flat series still gets a span: plotext divides by it)
        top_gb = total_mb / 1024 if total_mb is not None else max(MIN_SPAN_GB, max(ys) * 1.25)
        xs = list(data.minutes)
        span = max(data.span_min, xs[-1] if xs else 1.0, 1.0)
        if len(xs) == 1:  # plotext draws nothing for a single point of a line
            xs, ys = [0.0, xs[0]], [ys[0], ys[0]]
        plt.plot(xs, ys, marker="braille", color="cyan")
        # labelled ticks at least 1.5 rows apart: plotext keeps one of two labels on a row,
        # and which one is not stable
        row_gb = top_gb / max(1, self.size.height - 3)
        marks: list[tuple[float, str]] = []
        if known:
            limit, stop = top_gb * data.max_fraction, top_gb * data.emergency_fraction
            plt.hline(limit, "orange")
            plt.hline(stop, "red")
            marks.append((stop, f"{data.emergency_fraction:.0%}"))
            marks.append((limit, f"{data.max_fraction:.0%}"))
        marks += [(t, tick_label(t)) for t in nice_ticks(top_gb * (0.8 if known else 1.0), 3)]
        kept: list[tuple[float, str]] = []
        for value, label in marks:
            if all(abs(value - k) >= 1.5 * row_gb for k, _ in kept):
                kept.append((value, label))
        kept.sort()
        plt.yticks([v for v, _ in kept], [label for _, label in kept])
        plt.ylim(0, top_gb)
        plt.xlim(0, span)
        if known:
            self.border_title = (f"VRAM used (GB of {top_gb:.1f}) over {span:.0f} min · "
                                 f"lines: {data.max_fraction:.0%} limit, {data.emergency_fraction:.0%} stop")
        else:
            self.border_title = (f"VRAM used (GB, card total N/A) over {span:.0f} min · "
                                 "set gpu_total_mb for the limit lines")
