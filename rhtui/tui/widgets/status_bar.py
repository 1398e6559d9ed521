"""The two-line header: engine state, session, cycle, time; the views; the backend."""

from __future__ import annotations

from dataclasses import dataclass

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.widget import Widget
from textual.widgets import Static

from rhtui.engine.cost import fmt_energy, fmt_money
from rhtui.tui.text import fmt_hms, fmt_int, one_line

VIEWS: tuple[tuple[str, str, str], ...] = (
    ("1", "dashboard", "Dashboard"),
    ("2", "charts", "Charts"),
    ("3", "proposals", "Proposals"),
    ("4", "history", "History"),
)

STATE_LABELS = {
    "starting": ("◌ STARTING", "starting"),
    "running": ("● RUNNING", "running"),
    "paused": ("❚❚ PAUSED", "paused"),
    "emergency": ("■ EMERGENCY", "emergency"),
    "backend_down": ("✖ BACKEND DOWN", "down"),
    "stopping": ("◌ STOPPING", "stopping"),
    "finished": ("✔ FINISHED", "finished"),
}


@dataclass(frozen=True, slots=True)
class StatusInfo:
    state: str
    session: str
    session_id: int | None
    cycle: int
    elapsed_s: float | None
    remaining_s: float | None
    runs: int
    tokens: int
    current: str | None
    host: str
    backend_version: str | None
    backend_down: bool
    speed: float = 1.0
    energy_wh: float | None = None
    """The session's energy so far; None: no power measured (shown N/A)."""
    cost: float | None = None
    """What that energy cost (None: no price set, cost.price_per_kwh; not shown)."""
    currency: str = ""


class StatusBar(Widget):
    """Engine state and session clock (line 1); view switcher and backend (line 2).

    `show(info)` redraws only the parts whose text changed.
    """

    DEFAULT_CSS = """
    StatusBar {
        height: 2;
        width: 1fr;
        background: $panel;
        #sb-top, #sb-bottom { height: 1; width: 1fr; }
        #sb-state { width: auto; padding: 0 1; text-style: bold; }
        #sb-state.running { background: $success; color: $text; }
        #sb-state.paused { background: $warning; color: $text; }
        #sb-state.emergency { background: $error; color: $text; }
        #sb-state.down { background: $error; color: $text; }
        #sb-state.stopping { background: $accent; color: $text; }
        #sb-state.finished { background: $primary; color: $text; }
        #sb-state.starting { background: $secondary; color: $text; }
        #sb-info { width: 1fr; padding: 0 1; text-wrap: nowrap; text-overflow: ellipsis; }
        #sb-views { width: auto; padding: 0 0 0 1; }
        #sb-backend { width: 1fr; text-align: right; padding: 0 1; color: $text-muted;
                      text-wrap: nowrap; text-overflow: ellipsis; }
        #sb-backend.down { color: $text-error; text-style: bold; }
        &:nocolor #sb-state { text-style: bold reverse; }
    }
    """

    def __init__(self, view: str, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self._view = view
        self._shown: dict[str, object] = {}
        self._last: StatusInfo | None = None

    def compose(self) -> ComposeResult:
        with Horizontal(id="sb-top"):
            yield Static(id="sb-state", markup=False)
            yield Static(id="sb-info", markup=False)
        with Horizontal(id="sb-bottom"):
            yield Static(self._views_markup(), id="sb-views")
            yield Static(id="sb-backend", markup=False)

    def _views_markup(self) -> str:
        parts = []
        for key, name, label in VIEWS:
            if name == self._view:
                parts.append(f"[reverse b] {key} {label} [/]")
            else:
                parts.append(f"[@click=app.switch_view('{name}')] [b]{key}[/b] {label} [/]")
        return "".join(parts)

    def on_resize(self) -> None:
        self._shown.pop("info", None)
        if self._last is not None:
            self.show(self._last)

    def _set(self, wid: str, value: object, render) -> None:
        if self._shown.get(wid) == value:
            return
        self._shown[wid] = value
        render()

    def show(self, info: StatusInfo) -> None:
        self._last = info
        label, cls = STATE_LABELS.get(info.state, (info.state.upper(), "starting"))

        def state() -> None:
            w = self.query_one("#sb-state", Static)
            w.set_classes(cls)
            w.update(label)

        self._set("state", (label, cls), state)

        sid = f" #{info.session_id}" if info.session_id is not None else ""
        speed = f" ×{info.speed:g}" if info.speed != 1.0 else ""
        parts = [f"{info.session}{sid}{speed}", f"cycle {info.cycle or '–'}",
                 f"{fmt_hms(info.elapsed_s)} elapsed", f"{fmt_hms(info.remaining_s)} left", f"{info.runs} runs"]
        room = self.size.width - len(label) - 4 if self.size.width else 200
        if info.tokens and len(" · ".join(parts)) + len(fmt_int(info.tokens)) + 10 <= room:
            parts.append(f"{fmt_int(info.tokens)} tokens")
        # the session's energy, then its cost, each where it fits
        for extra in (fmt_energy(info.energy_wh) if info.energy_wh is not None else "energy N/A",
                      f"cost {fmt_money(info.cost, info.currency)}" if info.cost is not None else ""):
            if extra and len(" · ".join(parts)) + len(extra) + 3 <= room:
                parts.append(extra)
        line = " · ".join(parts)
        # fixed-size lines: update without a layout pass (this one changes every second)
        self._set("info", line, lambda: self.query_one("#sb-info", Static).update(Text(line, end=""), layout=False))

        host = info.host.removeprefix("http://")
        if info.backend_down:
            backend = f"Ollama unreachable @ {host}"
        else:
            backend = f"Ollama {one_line(info.backend_version, 20) or '?'} @ {host}"

        def backend_render() -> None:
            w = self.query_one("#sb-backend", Static)
            w.set_class(info.backend_down, "down")
            w.update(Text(backend, end=""), layout=False)

        self._set("backend", (backend, info.backend_down), backend_render)
