"""The cycle log: the engine's events as readable lines, newest at the bottom, capped."""

from __future__ import annotations

import itertools
from collections.abc import Sequence

from rich.text import Text
from textual.widgets import RichLog

from rhtui.tui.state import LOG_LINES, LogLine
from rhtui.tui.text import fmt_clock, sanitize, theme_color
from rhtui.tui.textual_compat import cap_rich_log_cache

LEVEL_TAG = {
    "debug": ("·", ""),
    "info": ("·", ""),
    "warning": ("▲", "text-warning"),
    "error": ("✖", "text-error"),
    "critical": ("■", "text-error"),
}
"""A one-cell mark per severity (readable without colour), and the colour of the line."""


class CycleLog(RichLog):
    """`append(lines)` writes the lines it has not written yet (by sequence number).

    Lines are Rich `Text` built without markup and the engine's text is sanitised,
    so a reason that quotes model output cannot style or control the terminal.
    Memory is bounded by `max_lines` (the model's log is bounded the same way).
    """

    DEFAULT_CSS = """
    CycleLog {
        height: 1fr;
        min-height: 3;
        scrollbar-size-vertical: 1;
        background: $surface;
    }
    """

    def __init__(self, *, id: str | None = None, max_lines: int = LOG_LINES) -> None:
        super().__init__(id=id, max_lines=max_lines, wrap=True, markup=False, highlight=False, min_width=20)
        cap_rich_log_cache(self, 256)  # keyed by line number: a new entry per line written
        self.last_seq = 0
        self._source: Sequence[LogLine] = ()
        self._width = 0
        self._at_end = True
        self._theme: str | None = None

    def on_mount(self) -> None:
        self._theme = self.app.theme
        self.app.theme_changed_signal.subscribe(self, self._theme_changed)

    def _theme_changed(self, theme) -> None:
        if theme.name != self._theme:
            self._theme = theme.name
            self._rewrite()

    def _rewrite(self) -> None:
        """Lines carry the theme's colours: write them again (bounded by max_lines)."""
        if self._width:
            self.clear()
            self.last_seq = 0
            self.append(self._source)

    def watch_scroll_y(self, old_value: float, new_value: float) -> None:
        super().watch_scroll_y(old_value, new_value)
        self._at_end = new_value >= self.max_scroll_y - 1

    def on_resize(self, event) -> None:
        region = self.scrollable_content_region.width
        width = region - (0 if self.show_vertical_scrollbar else self.styles.scrollbar_size_vertical)
        if width > 0 and width != self._width:
            # lines are wrapped when written: rewrite them for the new width (bounded by max_lines)
            self._width = width
            self.clear()
            self.last_seq = 0
            self.append(self._source)
        if self._at_end:  # a banner or panel took rows: keep the newest line in view
            self.scroll_end(animate=False, immediate=False)

    def append(self, lines: Sequence[LogLine]) -> int:
        """Write the lines newer than the last one written; returns how many were written."""
        self._source = lines
        if not self._width or not lines or lines[-1].seq <= self.last_seq:
            return 0
        new = min(len(lines), lines[-1].seq - self.last_seq)
        colors = self.app.theme_variables
        n = 0
        for line in itertools.islice(lines, len(lines) - new, None):
            if line.seq <= self.last_seq:
                continue
            self.last_seq = line.seq
            tag, color_var = LEVEL_TAG.get(line.level, ("?", ""))
            color = theme_color(colors, color_var, "") if color_var else ""
            bold = "bold " if line.level in ("error", "critical") else ""
            t = Text(end="", no_wrap=False)
            t.append(fmt_clock(line.ts) + " ", style="dim")
            t.append(tag + " ", style=(bold + color).strip() or None)
            if line.level == "critical":
                t.append(sanitize(line.text), style=f"bold reverse {color}".strip())
            else:
                t.append(sanitize(line.text), style=(bold + color).strip() or None)
            self.write(t, width=self._width, scroll_end=False)
            n += 1
        if n and self._at_end:
            # now, not after the next refresh: the new line shows in the same frame as the
            # rest of the update (and a reader who scrolled up is left where they are)
            self.scroll_end(animate=False, immediate=True, x_axis=False)
        return n
