"""Tokens written per cycle (the most recent cycles)."""

from __future__ import annotations

from dataclasses import dataclass

from textual_plotext.plot import Plot

from rhtui.tui.widgets.chart import Chart, nice_ticks, tick_label

SHOWN = 40


@dataclass(frozen=True, slots=True)
class CycleTokens:
    cycles: tuple[int, ...]
    tokens: tuple[int, ...]


class CycleChart(Chart):
    TITLE = "tokens per cycle"

    def plot(self, plt: Plot, data: CycleTokens | None) -> None:
        if data is None or not data.cycles:
            self.border_title = "tokens per cycle — no cycle finished yet"
            return
        cycles, tokens = list(data.cycles[-SHOWN:]), list(data.tokens[-SHOWN:])
        plt.bar([str(c) for c in cycles], tokens, color="magenta", width=0.6)
        ticks = nice_ticks(max(tokens) * 1.05 or 1.0, 3)
        plt.yticks(ticks, [tick_label(t) for t in ticks])
        self.border_title = f"tokens per cycle (last {len(cycles)})"
