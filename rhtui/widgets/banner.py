"""A full-width banner for what must not be missed: emergency stop, pause, stopping, the end."""

from __future__ import annotations

from rich.text import Text
from textual.widgets import Static

KINDS = ("emergency", "paused", "stopping", "finished", "error")


class Banner(Static):
    """Hidden unless there is something to say. `show(kind, text)`; `show(None)` hides it.

    The text is built by the app from engine data and shown literally (no markup).
    """

    DEFAULT_CSS = """
    Banner {
        display: none;
        width: 1fr;
        height: auto;
        max-height: 4;
        padding: 0 1;
        text-style: bold;
        &.-shown { display: block; }
        &.emergency { background: $error; color: $text; }
        &.error { background: $error-muted; color: $text; }
        &.paused { background: $warning-muted; color: $text; }
        &.stopping { background: $accent-muted; color: $text; }
        &.finished { background: $primary-muted; color: $text; }
        &:nocolor { text-style: bold reverse; }
    }
    """

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id, markup=False)
        self._shown: tuple[str | None, str] = (None, "")

    def show(self, kind: str | None, text: str = "") -> None:
        if (kind, text) == self._shown:
            return
        self._shown = (kind, text)
        for k in KINDS:
            self.set_class(k == kind, k)
        self.set_class(kind is not None, "-shown")
        self.update(Text(text, end=""))

    @property
    def kind(self) -> str | None:
        return self._shown[0]

    @property
    def text(self) -> str:
        return self._shown[1]
