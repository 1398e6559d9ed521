"""The dashboard: gauges (and, when there is room, the VRAM timeline), the student queue, the log."""

from __future__ import annotations

import os
from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical

from rhtui.tui.screens.base import RhtuiScreen, titled
from rhtui.tui.state import UiModel
from rhtui.tui.widgets.backend_panel import BackendPanel
from rhtui.tui.widgets.cycle_log import CycleLog
from rhtui.tui.widgets.gauges import Gauges
from rhtui.tui.widgets.student_queue import StudentQueue
from rhtui.tui.widgets.vram_chart import VramChart


def host_source() -> str:
    if os.environ.get("RHTUI_OLLAMA_HOST"):
        return "from RHTUI_OLLAMA_HOST"
    if os.environ.get("OLLAMA_HOST"):
        return "from OLLAMA_HOST"
    return "from --host, rhtui.toml or the default"


def _phase(model: UiModel, student: str) -> str:
    """running, loading or unloading: two students may be on the card at once (preloading)."""
    row = model.students.get(student)
    return row.status if row is not None and row.status in ("loading", "unloading") else "running"


class DashboardScreen(RhtuiScreen):
    VIEW = "dashboard"

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("space", "toggle_student", "Toggle", id="toggle_student",
                tooltip="Enable or disable the student under the cursor for the next turns"),
        # not in the footer (it matters only for a failing student, whose row says "u releases")
        Binding("u", "release_student", "Release", id="release_student", show=False,
                tooltip="Release the quarantined student under the cursor"),
    ]

    FOCUS = StudentQueue

    def compose_body(self) -> ComposeResult:
        model = self.rh_app.model
        yield BackendPanel(id="backend-panel")
        with Horizontal(id="dash-top"):
            with Vertical(id="gauges-box", classes="panel") as box:
                box.border_title = "Hardware"
                yield Gauges(model.budget, id="gauges")
            yield VramChart(id="dash-vram", classes="panel")
        yield titled(StudentQueue(id="queue"), "Students")
        yield titled(CycleLog(id="log"), "Log")

    def _cursor_student(self) -> str | None:
        """The student under the queue's cursor (None, said in a notification, when there is none)."""
        student = self.query_one(StudentQueue).cursor_student
        if student is None:
            self.notify("No student under the cursor.", severity="warning")
        return student

    def action_toggle_student(self) -> None:
        if (student := self._cursor_student()) is not None:
            self.rh_app.toggle_student(student)

    def action_release_student(self) -> None:
        if (student := self._cursor_student()) is not None:
            self.rh_app.release_student(student)

    def sync_body(self, model: UiModel) -> None:
        if self.changed(model, "gauges"):
            self.query_one(Gauges).show(model.snapshot, model.vram_source, model.budget)
        if self.changed(model, "queue"):
            queue = self.query_one(StudentQueue)
            queue.show(list(model.students.values()), model.next_student)
            policy = f" · policy {model.policy}" if model.policy else ""
            running = "".join(f" · {_phase(model, name)} {name}" for name in model.active)
            queue.border_title = f"Students · cycle {model.cycle or '–'}{policy}{running}"
        if self.changed(model, "log"):
            self.query_one(CycleLog).append(model.log)
        if self.changed(model, "backend"):
            self.set_class(model.backend_down is not None, "-backend-down")
            panel = self.query_one(BackendPanel)
            if model.backend_down is not None:
                panel.show(model.backend_down.host, model.backend_down.error, host_source())
            else:
                panel.hide()
        if self.changed(model, "vram"):
            self.query_one(VramChart).set_data(self.rh_app.vram_series(), model.versions["vram"])
        self.query_one(VramChart).wake()
