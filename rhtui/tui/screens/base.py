"""What every view shares: the status bar, the banner, the footer, view keys and syncing.

A view screen draws from the app's `UiModel`. `sync(model)` compares the model's
per-area versions with the ones this screen last drew and updates only those
widgets; a screen that is not current is not synced at all and catches up when
it is shown again (`on_screen_resume`).
"""

from __future__ import annotations

from typing import ClassVar, Protocol, TypeVar, cast

from textual import events
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.screen import Screen
from textual.widget import Widget

from rhtui.tui.state import StudentRow, UiModel
from rhtui.tui.text import fmt_mb, one_line
from rhtui.tui.textual_compat import cap_query_one_cache, stylesheet_generation
from rhtui.tui.widgets.banner import Banner
from rhtui.tui.widgets.cycle_chart import CycleTokens
from rhtui.tui.widgets.footer import RhFooter
from rhtui.tui.widgets.score_chart import ScoreSeries
from rhtui.tui.widgets.status_bar import StatusBar, StatusInfo
from rhtui.tui.widgets.student_chart import StudentBars
from rhtui.tui.widgets.vram_chart import VramSeries

VIEW_GROUP = Binding.Group("Views", compact=True)
# The view keys are not in the footer: the header's view bar shows them (and takes clicks).


class ViewHost(Protocol):
    """What a view needs of the app that shows it (`rhtui.tui.app.RhtuiApp` is the one)."""

    model: UiModel
    quitting: bool
    views: dict[str, RhtuiScreen]
    """The view screens mounted so far, by mode name (each registers itself on mount)."""

    def sync_screen(self, screen: RhtuiScreen) -> None:
        """A view was shown or mounted: bring it up to date now."""
        ...

    def toggle_student(self, student: str) -> None: ...

    def release_student(self, student: str) -> None: ...

    def vram_series(self) -> VramSeries: ...

    def student_bars(self, metric: str) -> StudentBars: ...

    def cycle_tokens(self) -> CycleTokens: ...

    def score_series(self) -> ScoreSeries: ...


def status_info(m: UiModel) -> StatusInfo:
    return StatusInfo(
        state=m.state,
        session=m.session_name,
        session_id=m.session_id,
        cycle=m.cycle,
        elapsed_s=m.elapsed_s,
        remaining_s=m.remaining_s,
        runs=m.runs_total,
        tokens=m.tokens_total,
        current=m.current,
        host=m.host,
        backend_version=m.backend_version,
        backend_down=m.backend_down is not None,
        speed=m.speed,
        energy_wh=m.energy_wh,
        cost=m.cost,
        currency=m.currency,
    )


def banner_for(m: UiModel, *, quitting: bool = False, on_dashboard: bool = False) -> tuple[str, str]:
    """What the banner line says now: the most urgent thing, or what the engine is doing."""
    if m.emergency is not None:
        e = m.emergency
        vram = ""
        if e.used_mb is not None and e.total_mb:
            vram = f" VRAM {fmt_mb(e.used_mb, unit=False)}/{fmt_mb(e.total_mb)} ({e.used_mb / e.total_mb:.1%})."
        auto = (
            f" It resumes by itself once VRAM stays under {m.budget.max_fraction:.0%} for "
            f"{m.budget.cooldown_s:.0f} s."
            if m.budget.cooldown_s > 0 and not e.manual
            else ""
        )
        return "emergency", (
            f"■ EMERGENCY STOP — {one_line(e.reason, 160)}.{vram} The proposal was aborted, every model "
            f"unloaded, the engine paused. Press r to resume.{auto}"
        )
    if m.engine_error is not None:
        return "error", (
            f"✖ The engine stopped with an error: {one_line(m.engine_error, 200)}. "
            "The dashboard stays open (see the log); press q to quit."
        )
    if quitting or m.state == "stopping":
        return "stopping", (
            "◌ Stopping: cancelling the running proposal (recorded as aborted), unloading every model, "
            "saving the session… Press q again to quit at once."
        )
    if m.finished is not None and m.backend_down is not None:  # ended by an outage of Ollama
        f = m.finished
        return "error", (
            f"✖ Session ended: {one_line(f.reason, 120)}. {f.cycles} cycles, {f.runs} runs are saved. "
            "Start Ollama (ollama serve), then a new session. Press q to quit."
        )
    if m.finished is not None:
        f = m.finished
        return "finished", (
            f"✔ Session finished ({one_line(f.reason, 80)}): {f.cycles} cycles, {f.runs} runs, "
            f"{f.tokens:,} tokens. Everything is unloaded and saved. Press q to quit, 3 for the proposals."
        )
    if m.state == "finished" and m.state_reason.startswith("stale:"):  # `rhtui watch`: the engine is gone
        return "error", f"✖ The session is {one_line(m.state_reason, 240)}. Press q to stop watching."
    if m.backend_down is not None:
        where = "how to fix it is below" if on_dashboard else "press 1 for the dashboard: it says how to fix it"
        return "error", f"✖ Ollama is not reachable at {one_line(m.backend_down.host, 80)} — retrying; {where}."
    if m.state == "paused":
        why = f" ({one_line(m.state_reason, 80)})" if m.state_reason else ""
        return "paused", f"❚❚ Paused{why} — no new student starts. Press p to resume."
    return "info", activity(m)


def activity(m: UiModel) -> str:
    """The calm line: what the engine is doing. It changes when a student starts or ends, not every second."""
    if m.state == "starting" or not m.cycle:
        return f"◌ Starting: checking Ollama at {one_line(m.host or '?', 80)}, the card and the students…"
    cycle = f"Cycle {m.cycle}"
    if m.current is not None:
        row = m.students.get(m.current)
        doing = _doing(row)
        place = ""
        if row is not None and row.position and m.order:
            place = f" ({row.position} of {len(m.order)})"
        beside = "".join(f"; {other} {_doing(m.students.get(other))} beside it" for other in m.active[1:])
        nxt = m.next_student
        then = f"; next {nxt}" if nxt else ""
        return f"▶ {cycle}: {m.current}{place} {doing}{beside}{then}."
    nxt = m.next_student
    if nxt:
        return f"▶ {cycle}: {nxt} is next."
    return f"▶ {cycle} done: waiting for the next cycle."


WRITING = {"proposal": "is writing", "critique": "is critiquing", "synthesis": "is writing the synthesis",
           "judge": "is judging"}


def _doing(row: StudentRow | None) -> str:
    """What a student on the card is doing, in words: loading, writing (what), unloading."""
    status = row.status if row is not None else ""
    if status in ("loading", "unloading"):
        return f"is {status}"
    return WRITING.get(row.kind if row is not None else "", "is writing")


W = TypeVar("W", bound=Widget)


def titled(widget: W, title: str) -> W:
    """`widget` with `title` on its border."""
    widget.border_title = title
    return widget


class RhtuiScreen(Screen):
    """A view: status bar, banner, the body (`compose_body`), footer."""

    VIEW: ClassVar[str] = "dashboard"
    TITLE_TEXT: ClassVar[str] = ""
    FOCUS: ClassVar[type[Widget] | None] = None
    """The widget of the body that has the focus when the view is mounted."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("tab", "app.next_view", "Next view", id="next_view", show=False,
                tooltip="Show the next view (Dashboard → Charts → Proposals → History)"),
        Binding("shift+tab", "app.previous_view", "Previous view", id="previous_view", show=False,
                tooltip="Show the previous view"),
        Binding("1", "app.switch_view('dashboard')", "Dashboard", id="view_dashboard", group=VIEW_GROUP, show=False,
                tooltip="Gauges, student queue and log"),
        Binding("2", "app.switch_view('charts')", "Charts", id="view_charts", group=VIEW_GROUP, show=False,
                tooltip="VRAM timeline, tokens per cycle, score per student, tok/s and seconds per student"),
        Binding("3", "app.switch_view('proposals')", "Proposals", id="view_proposals", group=VIEW_GROUP, show=False,
                tooltip="The research rounds: question, proposals, critique, synthesis, with scores"),
        Binding("4", "app.switch_view('history')", "History", id="view_history", group=VIEW_GROUP, show=False,
                tooltip="Every run of this session"),
    ]

    def __init__(self) -> None:
        super().__init__()
        # Textual keys query_one results by a count of changes to the screen's children and
        # keeps 1,024 of them (with the widgets they point to); the proposals screen filled
        # hundreds over a simulated session. A few dozen cover every query a view makes.
        cap_query_one_cache(self, 64)
        self._seen: dict[str, int] = {}
        self._hidden_with: tuple[object, ...] | None = None

    @property
    def rh_app(self) -> ViewHost:
        """The app, as what a view needs of it (a view is only ever mounted by that app)."""
        return cast(ViewHost, self.app)

    def compose(self) -> ComposeResult:
        yield StatusBar(self.VIEW, id="status")
        yield Banner(id="banner")
        with Vertical(id="body"):
            yield from self.compose_body()
        yield RhFooter(compact=True)

    def compose_body(self) -> ComposeResult:  # pragma: no cover - abstract
        yield from ()

    def changed(self, model: UiModel, area: str) -> bool:
        """True (once) when `area` changed since this screen last drew it."""
        v = model.versions[area]
        if self._seen.get(area) == v:
            return False
        self._seen[area] = v
        return True

    def sync(self, model: UiModel) -> None:
        if not self.is_mounted:
            return
        if self.changed(model, "status"):
            self.query_one(StatusBar).show(status_info(model))
        quitting = self.rh_app.quitting
        banner = banner_for(model, quitting=quitting, on_dashboard=self.VIEW == "dashboard")
        self.query_one(Banner).show(*banner)
        self.sync_body(model)

    def sync_body(self, model: UiModel) -> None:
        """Update the body's widgets from the areas that changed."""

    def _style_inputs(self) -> tuple[object, ...]:
        """What the stylesheet's result depends on beyond the screen's own nodes."""
        app = self.app
        return (app.size, app.theme, app.app_focus, app.ansi_color, stylesheet_generation(app))

    def on_screen_suspend(self) -> None:
        self._hidden_with = self._style_inputs()

    def on_screen_resume(self, event: events.ScreenResume) -> None:
        # Textual re-applies the whole stylesheet to every node when a mode is shown again
        # (~15 ms for the dashboard, and it drops the tables' render caches). Nothing a style
        # depends on changes while a view is hidden unless the terminal, the theme or the
        # focus did, so skip it then, as Textual itself does when a modal is popped.
        if self._hidden_with is not None and self._hidden_with == self._style_inputs():
            event.refresh_styles = False
        self.rh_app.sync_screen(self)

    def on_mount(self) -> None:
        if self.FOCUS is not None:
            self.query_one(self.FOCUS).focus()
        self.rh_app.views[self.VIEW] = self
        self.rh_app.sync_screen(self)
