"""Ask a question (`a`): its research round runs next, between cycles, at the tier chosen.

The modal returns (question, tier), or None when cancelled; the app passes it to the engine's
`ask`. An empty question is refused here, with a line that says what to do.
"""

from __future__ import annotations

from typing import ClassVar

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Input, RadioButton, RadioSet, Static

from rhtui.engine.ensemble.agenda import MAX_QUESTION_CHARS

TIERS: tuple[tuple[str, str], ...] = (
    ("quick", "quick: a few proposers and a synthesis; at most about 5 min"),
    ("standard", "standard: more proposers, a critique, a synthesis; at most about 15 min"),
    ("deep", "deep: every student, with the judges' scores; at most about 30 min"),
)
"""The tiers a person's round may take (the engine's `ask`), with what each costs in words."""
DEFAULT_TIER = "standard"
QUESTION_MAX_CHARS = MAX_QUESTION_CHARS
"""The longest question the engine takes."""


class AskScreen(ModalScreen[tuple[str, str] | None]):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "cancel", "Cancel", id="cancel_ask"),
    ]

    DEFAULT_CSS = """
    AskScreen {
        align: center middle;
        #ask-box {
            width: 76;
            max-width: 100%;
            height: auto;
            max-height: 100%;
            border: thick $primary;
            border-title-style: bold;
            background: $surface;
            padding: 0 1;
        }
        #ask-intro, #ask-tier-help, #ask-keys { color: $text-muted; height: auto; }
        #ask-tier-row { height: auto; margin-top: 1; }
        #ask-tier-label { width: auto; padding: 0 1 0 0; text-style: bold; }
        RadioSet { width: auto; height: auto; layout: horizontal; }
        RadioSet > RadioButton { width: auto; margin: 0 2 0 0; }
        /* the cursor shows only while the tiers have the focus (else it looks like a second choice) */
        RadioSet:blur > RadioButton.-selected > .toggle--label { background: transparent; }
        #ask-error { color: $text-error; text-style: bold; height: auto; }
        #ask-error.-empty { display: none; }
        #ask-buttons { height: auto; align-horizontal: right; }
        Button { margin: 0 0 0 1; }
    }
    """

    def __init__(self, tier: str = DEFAULT_TIER) -> None:
        super().__init__()
        self.tier = tier if tier in dict(TIERS) else DEFAULT_TIER

    def compose(self) -> ComposeResult:
        with Vertical(id="ask-box") as box:
            box.border_title = "Ask the students a question"
            box.border_subtitle = "enter asks · esc cancels"
            yield Static(Text("Its research round runs next, between cycles: the students answer it, "
                              "and the answers show in the proposals view (3).", end=""), id="ask-intro")
            yield Input(placeholder="Your research question", max_length=QUESTION_MAX_CHARS, id="ask-question")
            with Horizontal(id="ask-tier-row"):
                yield Static("Tier", id="ask-tier-label", markup=False)
                with RadioSet(id="ask-tier", compact=True):
                    for name, _ in TIERS:
                        yield RadioButton(name, value=name == self.tier, id=f"tier-{name}")
            yield Static(id="ask-tier-help", markup=False)
            yield Static(Text("Tab reaches the tiers: ←/→ and space choose one.", end=""), id="ask-keys")
            yield Static(id="ask-error", classes="-empty", markup=False)
            with Horizontal(id="ask-buttons"):
                yield Button("Ask (enter)", id="ask", variant="primary")
                yield Button("Cancel (esc)", id="cancel")

    def on_mount(self) -> None:
        self._show_tier()
        self.query_one(Input).focus()

    def _show_tier(self) -> None:
        self.query_one("#ask-tier-help", Static).update(Text(dict(TIERS)[self.tier], end=""))

    @on(RadioSet.Changed)
    def _tier_changed(self, event: RadioSet.Changed) -> None:
        event.stop()
        pressed = event.pressed.id or ""
        self.tier = pressed.removeprefix("tier-") if pressed.removeprefix("tier-") in dict(TIERS) else self.tier
        self._show_tier()
        self.query_one(Input).focus()  # back to the question: enter asks

    @on(Input.Submitted)
    def _submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.submit()

    @on(Input.Changed)
    def _typed(self, event: Input.Changed) -> None:
        event.stop()
        if event.value.strip():
            self._say("")

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        if event.button.id == "ask":
            self.submit()
        else:
            self.dismiss(None)

    def submit(self) -> None:
        """Ask, unless the question is empty (then say so and stay open)."""
        question = " ".join(self.query_one(Input).value.split())
        if not question:
            self._say("Type a question first (or press Escape to cancel).")
            self.query_one(Input).focus()
            return
        self.dismiss((question, self.tier))

    def _say(self, message: str) -> None:
        error = self.query_one("#ask-error", Static)
        error.update(Text(message, end=""))
        error.set_class(not message, "-empty")

    def action_cancel(self) -> None:
        self.dismiss(None)
