"""The panel shown while Ollama cannot be reached: where rhtui looked and what to do."""

from __future__ import annotations

from rich.text import Text
from textual.widgets import Static

from rhtui.tui.text import one_line


class BackendPanel(Static):
    """Hidden while the backend answers. `show(host, error, source)` / `hide()`."""

    DEFAULT_CSS = """
    BackendPanel {
        display: none;
        height: auto;
        width: 1fr;
        border: heavy $error;
        border-title-color: $text-error;
        border-title-style: bold;
        padding: 0 1;
        &.-shown { display: block; }
    }
    """

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id, markup=False)
        self.border_title = "Ollama is not reachable"
        self._shown: tuple | None = None

    def show(self, host: str, error: str, source: str) -> None:
        key = (host, error, source)
        if key == self._shown:
            return
        self._shown = key
        t = Text(end="")
        t.append("Looked at ", style="bold")
        t.append(host, style="bold")
        t.append(f" ({source})\n")
        t.append("Error: ", style="bold")
        t.append(one_line(error, 160) + "\n")
        t.append("Fix: ", style="bold")
        t.append("start Ollama here: ")
        t.append("ollama serve", style="bold")
        t.append(" (or systemctl start ollama)\n")
        t.append("     or point rhtui at it: ")
        t.append("OLLAMA_HOST=host:port", style="bold")
        t.append(" or ")
        t.append("--host host:port", style="bold")
        t.append("\n     or use the simulator: ")
        t.append("rhtui --demo", style="bold")
        t.append("\nrhtui keeps retrying and carries on by itself when Ollama answers.", style="italic")
        self.update(t)
        self.add_class("-shown")

    def hide(self) -> None:
        if self._shown is None:
            return
        self._shown = None
        self.remove_class("-shown")

    @property
    def shown(self) -> bool:
        return self._shown is not None
