"""The banner line under the status bar: what must not be missed (emergency stop, pause,
stopping, the end, Ollama down), or, when all is well, what the engine is doing.

It is always one row (more only for a long emergency text on a narrow terminal), so
pausing or resuming never moves the rest of the screen: no second layout pass, no jump.
"""

from __future__ import annotations

from rich.text import Text
from textual.widgets import Static

KINDS = ("emergency", "paused", "stopping", "finished", "error", "info")


class Banner(Static):
    """`show(kind, text)`: the kind picks the colours ("info" is the calm line).

    The text is built by the app from engine data and shown literally (no markup).
    """

    DEFAULT_CSS = """
    Banner {
        width: 1fr;
        height: auto;
        max-height: 4;
        padding: 0 1;
        text-style: bold;
        &.emergency { background: $error; color: $text; }
        &.error { background: $error-muted; color: $text; }
        &.paused { background: $warning-muted; color: $text; }
        &.stopping { background: $accent-muted; color: $text; }
        &.finished { background: $primary-muted; color: $text; }
        &.info { text-style: none; color: $text-muted; }
        &:nocolor { text-style: bold reverse; }
        &.info:nocolor { text-style: none; }
    }
    """

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id, markup=False)
        self._shown: tuple[str | None, str] = (None, "")

    def show(self, kind: str, text: str = "") -> None:
        if (kind, text) == self._shown:
            return
        self._shown = (kind, text)
        for k in KINDS:
            self.set_class(k == kind, k)
        # the calm kinds stay on their one row; an emergency or error may wrap to be read whole
        wrap = kind in ("emergency", "error")
        self.update(Text(text, end="", no_wrap=not wrap, overflow="fold" if wrap else "ellipsis"))

    @property
    def kind(self) -> str | None:
        return self._shown[0]

    @property
    def text(self) -> str:
        return self._shown[1]
