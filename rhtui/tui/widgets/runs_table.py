"""The runs of this session as a table (history view)."""

from __future__ import annotations

from collections.abc import Sequence

from rich.text import Text
from textual.widgets import DataTable

from rhtui.tui.state import HistoryRow
from rhtui.tui.text import fmt_clock, fmt_int, fmt_num, one_line, theme_color
from rhtui.tui.textual_compat import bound_render_caches

STATUS_COLOR = {
    "ok": "text-success",
    "timeout": "text-warning",
    "error": "text-error",
    "aborted": "text-warning",
    "emergency": "text-error",
    "skipped": "text-warning",
}
COLUMNS = (
    ("time", "Time", 8),
    ("cycle", "Cycle", 5),
    ("student", "Student", 10),
    ("status", "Status", 9),
    ("secs", "Secs", 6),
    ("tokens", "Tokens", 7),
    ("tps", "tok/s", 6),
    ("vram", "VRAM MB", 7),
    ("reason", "Reason", 0),
)
NARROW_DROPS = ("tps", "vram")
"""Columns left out below 100 cells, so the reason keeps some room."""


class RunsTable(DataTable):
    """`show(rows)` appends rows it has not shown (by sequence) and drops the ones the
    model dropped, so the table is bounded like the model's history."""

    DEFAULT_CSS = """
    RunsTable { height: 1fr; }
    """

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id, cursor_type="row", zebra_stripes=True)
        bound_render_caches(self, rows=64, columns=12)  # a screenful of a tall terminal
        self.last_seq = 0
        self._keys: list[int] = []
        self._width: int | None = None
        self._rows: Sequence[HistoryRow] = ()

    def on_mount(self) -> None:
        self.app.theme_changed_signal.subscribe(self, lambda _theme: self._rebuild())

    def _rebuild(self) -> None:
        self._width = None
        self.on_resize()

    def on_resize(self) -> None:
        if self.size.width != self._width:
            self._width = self.size.width
            self.clear(columns=True)
            cols = [c for c in COLUMNS if self.size.width >= 100 or c[0] not in NARROW_DROPS]
            used = sum(w + 2 * self.cell_padding for _, _, w in cols) + 1
            for key, label, width in cols:
                self.add_column(Text(label, style="bold"), key=key, width=width or max(10, self.size.width - used))
            self.last_seq = 0
            self._keys.clear()
            self.show(self._rows)

    def show(self, rows: Sequence[HistoryRow]) -> None:
        self._rows = rows
        if self._width is None:
            return
        follow = self.row_count == 0 or self.cursor_row >= self.row_count - 1
        colors = self.app.theme_variables
        first = rows[0].seq if rows else self.last_seq + 1
        while self._keys and self._keys[0] < first:
            self.remove_row(str(self._keys.pop(0)))
        added = False
        for r in rows:
            if r.seq <= self.last_seq:
                continue
            color = theme_color(colors, STATUS_COLOR.get(r.status, ""))
            cells = {
                "time": Text(fmt_clock(r.started_at)),
                "cycle": Text(str(r.cycle), justify="right"),
                "student": Text(r.student),
                "status": Text(r.status, style=color),
                "secs": Text(fmt_num(r.seconds), justify="right"),
                "tokens": Text(fmt_int(r.tokens), justify="right"),
                "tps": Text(fmt_num(r.tok_s), justify="right"),
                "vram": Text(fmt_int(r.vram_mb), justify="right"),
                "reason": Text(one_line(r.reason, 300), no_wrap=True, overflow="ellipsis"),
            }
            self.add_row(*(cells[k.value or ""] for k in self.columns), key=str(r.seq))  # every column has a key
            self._keys.append(r.seq)
            self.last_seq = r.seq
            added = True
        if added and follow:
            self.move_cursor(row=self.row_count - 1, animate=False)
