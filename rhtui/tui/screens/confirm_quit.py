"""Asked before quitting while a student is writing: quitting cancels its proposal."""

from __future__ import annotations

from typing import ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Static

from rhtui.tui.text import one_line


class ConfirmQuit(ModalScreen[bool]):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("y", "answer(True)", "Quit", id="confirm_quit"),
        Binding("n,escape", "answer(False)", "Keep running", id="cancel_quit"),
    ]

    DEFAULT_CSS = """
    ConfirmQuit {
        align: center middle;
        #confirm-box {
            width: 64;
            max-width: 100%;
            height: auto;
            border: thick $warning;
            border-title-style: bold;
            background: $surface;
            padding: 1 2;
        }
        #confirm-buttons { height: auto; margin-top: 1; align-horizontal: center; }
        Button { margin: 0 1; }
    }
    """

    def __init__(self, student: str) -> None:
        super().__init__()
        self.student = student

    def compose(self) -> ComposeResult:
        with Vertical(id="confirm-box") as box:
            box.border_title = "Quit rhtui?"
            yield Static(
                Text(
                    f"{one_line(self.student, 40)} is writing a proposal. Quitting now cancels it "
                    "(recorded as aborted), unloads every model and saves the session.",
                    end="",
                )
            )
            with Horizontal(id="confirm-buttons"):
                yield Button("Quit (y)", id="yes", variant="error")
                yield Button("Keep running (n)", id="no", variant="primary")

    def on_mount(self) -> None:
        self.query_one("#no", Button).focus()

    def action_answer(self, answer: bool) -> None:
        self.dismiss(answer)

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        self.dismiss(event.button.id == "yes")
