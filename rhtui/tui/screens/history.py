"""History: every run (and skip) of this session, oldest first, following the newest."""

from __future__ import annotations

from textual.app import ComposeResult

from rhtui.tui.screens.base import RhtuiScreen, titled
from rhtui.tui.state import UiModel
from rhtui.tui.widgets.runs_table import RunsTable


class HistoryScreen(RhtuiScreen):
    VIEW = "history"
    FOCUS = RunsTable

    def compose_body(self) -> ComposeResult:
        yield titled(RunsTable(id="runs"), "Runs of this session")

    def sync_body(self, model: UiModel) -> None:
        if self.changed(model, "history"):
            table = self.query_one(RunsTable)
            table.show(model.history)
            n, kept = model.history_seq, len(model.history)
            shown = f"{n}" if n == kept else f"{n}; the latest {kept} shown, `rhtui export runs` has all"
            table.border_title = f"Runs and skips of this session ({shown})"
