"""Help (? or F1): every key of rhtui with what it does, and the keys of the focused widget."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import DataTable, Static

HelpRow = tuple[str, str, str]
"""(keys as shown, description, what it does in more words)."""


def rows_from_bindings(bindings: Iterable[Binding], key_display: Callable[[Binding], str]) -> list[HelpRow]:
    """One row per action; keys bound to the same action are joined (``? / F1``)."""
    by_action: dict[str, list[Binding]] = {}
    for b in bindings:
        if not b.description or b.system:
            continue
        by_action.setdefault(b.action, []).append(b)
    rows = []
    for same in by_action.values():
        keys = " / ".join(dict.fromkeys(key_display(b) for b in same))
        rows.append((keys, same[0].description, same[0].tooltip or ""))
    return rows


class HelpScreen(ModalScreen[None]):
    """A modal table of keys, grouped: session controls, views, this view, the focused widget."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,q,question_mark,f1", "dismiss", "Close help", id="close_help"),
    ]

    DEFAULT_CSS = """
    HelpScreen {
        align: center middle;
        #help-box {
            width: 96;
            max-width: 100%;
            height: auto;
            max-height: 100%;
            border: thick $primary;
            border-title-style: bold;
            background: $surface;
            padding: 0 1;
        }
        #help-table { height: auto; max-height: 1fr; }
        #help-foot { color: $text-muted; height: auto; }
    }
    """

    def __init__(self, sections: list[tuple[str, list[HelpRow]]]) -> None:
        super().__init__()
        self.sections = sections

    def compose(self) -> ComposeResult:
        with Vertical(id="help-box") as box:
            box.border_title = "rhtui keys"
            box.border_subtitle = "esc / q / ? closes"
            yield DataTable(id="help-table", cursor_type="none", zebra_stripes=False, show_cursor=False)
            yield Static(
                Text(
                    "Mouse: click a view name, a footer key or a row. Ctrl+P opens the command palette "
                    "(every action above, and Theme to change the colours). NO_COLOR is honoured.",
                    end="",
                ),
                id="help-foot",
            )

    def on_mount(self) -> None:
        table = self.query_one(DataTable)
        box = min(96, self.app.size.width) - 4  # border and padding
        more = max(16, box - 11 - 18 - 3 * 2 - 1)  # the other columns, cell padding, scrollbar
        table.add_column(Text("Key", style="bold"), key="key", width=11)
        table.add_column(Text("Action", style="bold"), key="action", width=18)
        table.add_column(Text("What it does", style="bold"), key="more", width=more)
        accent = self.app.theme_variables.get("text-accent", "")
        for title, rows in self.sections:
            if not rows:
                continue
            table.add_row(Text(""), Text(title, style=f"bold underline {accent}".strip()), Text(""))
            for keys, desc, more_text in rows:
                table.add_row(Text(keys, style="bold"), Text(desc), Text(more_text, overflow="fold"),
                              height=None)
