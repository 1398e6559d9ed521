"""The judges' score per student over cycles (this session): one line per student, on the rubric's 1–10."""

from __future__ import annotations

from dataclasses import dataclass

from textual_plotext.plot import Plot

from rhtui.tui.widgets.chart import Chart, nice_ticks, tick_label
from rhtui.tui.widgets.student_chart import short

SHOWN = 40
"""The most recent cycles drawn."""
COLORS: tuple[tuple[int, int, int], ...] = (
    (76, 175, 80), (66, 133, 244), (233, 30, 99), (0, 188, 212), (255, 152, 0), (156, 39, 176),
    (141, 110, 99), (158, 158, 158),
)
"""One colour per student, apart on dark and light themes alike (named ANSI colours depend on the
terminal's palette, where two may look the same)."""
TITLE = "judges' score per student by cycle (1–10)"
LEGEND_AT = (50, 12)
"""The least (width, height) with room for a legend; a smaller chart draws each student's line with its
initial instead (the legend would cover the lines)."""


def initials(names: tuple[str, ...]) -> list[str]:
    """One letter per student (its short name's first), or its place (1–9) when two would share one."""
    firsts = [short(n)[:1] or "?" for n in names]
    return [f if firsts.count(f) == 1 else str((i % 9) + 1) for i, f in enumerate(firsts)]


@dataclass(frozen=True, slots=True)
class ScoreSeries:
    names: tuple[str, ...]
    points: tuple[tuple[tuple[int, float], ...], ...]
    """Per student (as `names`), (cycle, mean score of its answers in that cycle), oldest first."""


def cycle_ticks(lo: int, hi: int, n: int = 5) -> list[int]:
    """Whole cycle numbers from `lo` to `hi`, about `n` of them (a cycle is never 2.5)."""
    step = max(1, -(-(hi - lo) // max(1, n - 1)))
    ticks = list(range(lo, hi + 1, step))
    return ticks or [lo]


class ScoreChart(Chart):
    TITLE = TITLE

    def plot(self, plt: Plot, data: ScoreSeries | None) -> None:
        if data is None or not any(data.points):
            self.border_title = "score per student — none judged yet"
            return
        cycles = sorted({c for pts in data.points for c, _ in pts})[-SHOWN:]
        lo, hi = cycles[0], cycles[-1]
        top = 10.0
        legend = self.size.width >= LEGEND_AT[0] and self.size.height >= LEGEND_AT[1]
        marks = initials(data.names)
        for i, (name, pts) in enumerate(zip(data.names, data.points, strict=False)):
            shown = [(c, v) for c, v in pts if c >= lo]
            if not shown:
                continue
            xs, ys = [c for c, _ in shown], [v for _, v in shown]
            top = max(top, *ys)
            color = COLORS[i % len(COLORS)]
            label = short(name) if legend else None
            if len(shown) == 1:  # one point draws no line: a mark instead
                plt.scatter(xs, ys, label=label, color=color, marker="●" if legend else marks[i])
            else:
                plt.plot(xs, ys, label=label, color=color, marker="braille" if legend else marks[i])
        if lo == hi:  # one cycle: a range around it, never an empty one
            plt.xlim(lo - 1, hi + 1)
            ticks = [lo]
        else:
            plt.xlim(lo, hi)
            ticks = cycle_ticks(lo, hi)
        plt.xticks([float(t) for t in ticks], [str(t) for t in ticks])
        y = nice_ticks(top, 2)
        plt.ylim(0, max(top, y[-1]))
        plt.yticks(y, [tick_label(t) for t in y])
        key = "" if legend else " · " + " ".join(f"{m}={short(n)}" for m, n in zip(marks, data.names, strict=False))
        self.border_title = f"{TITLE} · last {len(cycles)} cycle{'' if len(cycles) == 1 else 's'}{key}"
