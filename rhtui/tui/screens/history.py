"""History: every run (and skip) of this session, oldest first, following the newest."""

from __future__ import annotations

from textual.app import ComposeResult

from rhtui.tui.screens.base import RhtuiScreen
from rhtui.tui.state import UiModel
from rhtui.tui.widgets.runs_table import RunsTable


class HistoryScreen(RhtuiScreen):
    VIEW = "history"

    def compose_body(self) -> ComposeResult:
        table = RunsTable(id="runs")
        table.border_title = "Runs of this session"
        yield table

    def on_mount(self) -> None:
        self.query_one(RunsTable).focus()
        super().on_mount()

    def sync_body(self, model: UiModel) -> None:
        if self.changed(model, "history"):
            table = self.query_one(RunsTable)
            table.show(model.history)
            n, kept = model.history_seq, len(model.history)
            shown = f"{n}" if n == kept else f"{n}; the latest {kept} shown, `rhtui export runs` has all"
            table.border_title = f"Runs and skips of this session ({shown})"
