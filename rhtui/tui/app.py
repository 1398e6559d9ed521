"""The app shell: hosts the engine in a worker, turns its events into messages, binds the keys.

`make_app(...)` builds the app for the CLI and for the tests. Data flows one way:

    Orchestrator.bus --listener--> EngineEvent message (HardwareUpdate / TokensUpdate collapse)
        --> UiModel.apply (plain state, versioned per area)
        --> the current view's `sync` (only widgets whose area changed)

Keys go the other way, as plain calls on the engine (an `EngineHandle`: pause, resume,
skip_current, set_enabled, emergency_stop, clear_emergency, request_stop). The
app holds no engine logic; widgets never see the store or the backend. What it
touches of Textual's internals is in textual_compat.py.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import time
from collections.abc import Callable, Coroutine, Iterable
from types import FrameType
from typing import TYPE_CHECKING, Any, ClassVar

from textual import events, on
from textual.app import App, SystemCommand
from textual.binding import Binding, BindingType
from textual.dom import DOMNode
from textual.message import Message
from textual.notifications import SeverityLevel
from textual.screen import ModalScreen, Screen
from textual.timer import Timer
from textual.worker import Worker, WorkerState

from rhtui.engine import events as ev
from rhtui.engine.backend import LlmBackend
from rhtui.engine.clock import Clock
from rhtui.engine.config import Settings
from rhtui.engine.events import EventBus
from rhtui.engine.handle import EngineHandle
from rhtui.engine.hardware import HardwareProbe
from rhtui.engine.store import Store
from rhtui.tui.idle_gc import IdleCollector
from rhtui.tui.screens.ask import AskScreen
from rhtui.tui.screens.base import RhtuiScreen, ViewHost
from rhtui.tui.screens.charts import ChartsScreen
from rhtui.tui.screens.confirm_quit import ConfirmQuit
from rhtui.tui.screens.dashboard import DashboardScreen
from rhtui.tui.screens.help import HelpScreen, rows_from_bindings
from rhtui.tui.screens.history import HistoryScreen
from rhtui.tui.screens.proposals import ProposalsScreen
from rhtui.tui.state import UiModel
from rhtui.tui.textual_compat import (
    InstantModeSwitch,
    StopOnUnhandledError,
    release_dead_terminal,
    unpin_styles_caches,
    widget_bindings,
)
from rhtui.tui.widgets.cycle_chart import CycleTokens
from rhtui.tui.widgets.score_chart import ScoreSeries
from rhtui.tui.widgets.student_chart import StudentBars
from rhtui.tui.widgets.vram_chart import VramSeries

VIEWS = ("dashboard", "charts", "proposals", "history")
FRIENDLY_NAMES = {"StudentQueue": "Student table", "RunsTable": "Runs table", "ProposalList": "Proposal list"}
ALERT_SEVERITY: dict[str, SeverityLevel] = {"info": "information", "warning": "warning", "error": "error"}
ALERT_TIMEOUT_S = {"info": 8.0, "warning": 15.0, "error": 30.0}
"""How long an alert's notification stays (an error longer: it may need doing something)."""
QUIT_TIMEOUT_S = 60.0
"""How long a graceful quit waits for the engine to cancel, unload and flush before giving up."""
FORCED_STOP_S = 10.0
"""After a forced quit (q twice, or the graceful one timed out): how long the cancelled engine
may take to unload and close the session before the app leaves it."""


# -- messages ----------------------------------------------------------------------


class EngineEvent(Message):
    """An engine event, delivered on the app's message queue."""

    def __init__(self, event: ev.Event) -> None:
        super().__init__()
        self.event = event

    def __repr__(self) -> str:
        return f"{type(self).__name__}({type(self.event).__name__})"


class HardwareUpdate(EngineEvent):
    """A hardware sample; a burst collapses into the latest (`can_replace`)."""

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, HardwareUpdate)


class TokensUpdate(EngineEvent):
    """Token progress of one student; a burst collapses into the latest."""

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, TokensUpdate) and message.event.student == self.event.student  # type: ignore[attr-defined]


def engine_message(event: ev.Event) -> EngineEvent:
    if isinstance(event, ev.HardwareSampled):
        return HardwareUpdate(event)
    if isinstance(event, ev.TokensProgress):
        return TokensUpdate(event)
    return EngineEvent(event)


# -- the app -------------------------------------------------------------------------


FULL_GC_EVERY_S = 30.0
"""At most one full garbage collection per this many seconds unless allocations flood in
(`IdleCollector.min_interval_s`): at idle they were a tenth of the dashboard's CPU."""

SESSION_KEYS = ("toggle_pause", "skip", "emergency_stop", "clear_emergency", "ask")
"""The session's one-letter controls: off while the question box is open."""

NO_SIGNALS = (AttributeError, NotImplementedError, RuntimeError, ValueError)
"""What installing a signal handler raises off the main thread or on Windows: run without them."""


class RhtuiApp(StopOnUnhandledError, InstantModeSwitch, App[int]):
    """The rhtui dashboard. Build it with `make_app`."""

    CSS_PATH = "app.tcss"
    TITLE = "rhtui"
    MODES: ClassVar[dict[str, str | Callable[[], Screen[Any]]]] = {
        "dashboard": DashboardScreen,
        "charts": ChartsScreen,
        "proposals": ProposalsScreen,
        "history": HistoryScreen,
    }
    DEFAULT_MODE = "dashboard"
    HORIZONTAL_BREAKPOINTS = [(0, "-narrow"), (120, "-wide")]
    VERTICAL_BREAKPOINTS = [(0, "-short"), (36, "-tall")]

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("p", "toggle_pause", "Pause", id="pause",
                tooltip="Pause (no new student starts; the running one finishes) or resume"),
        Binding("s", "skip", "Skip", id="skip",
                tooltip="Skip the running student: cancel its stream, unload it, record it skipped"),
        Binding("e", "emergency_stop", "E-stop", id="emergency_stop",
                tooltip="Emergency stop: abort the generation, unload every model, pause"),
        Binding("r", "clear_emergency", "Resume", id="clear_emergency",
                tooltip="Resume after an emergency stop"),
        Binding("a", "ask", "Ask", id="ask",
                tooltip="Ask a question: its research round (tier quick, standard or deep) runs next, between cycles"),
        Binding("question_mark,f1", "help", "Help", id="help",
                tooltip="Show every key and what it does"),
        Binding("q", "quit", "Quit", id="quit",
                tooltip="Quit gracefully: cancel, unload, save (asks first while a student runs)"),
        Binding("ctrl+q", "quit", "Quit", id="ctrl_quit", show=False, priority=True,
                tooltip="Quit gracefully (as q)"),
    ]

    def __init__(
        self,
        *,
        settings: Settings,
        clock: Clock,
        orchestrator: EngineHandle | None = None,
        start_engine: bool = True,
        backend: LlmBackend | None = None,
        probe: HardwareProbe | None = None,
    ) -> None:
        super().__init__()
        unpin_styles_caches()
        self.settings = settings
        self.clock = clock
        self.orchestrator = orchestrator
        self.start_engine = start_engine and orchestrator is not None
        self.backend = backend
        self.probe = probe
        self.bus: EventBus = orchestrator.bus if orchestrator is not None else EventBus()
        self.model = UiModel(
            session_name=settings.session.name,
            host=(backend.host if backend is not None else "") or settings.ollama_host,
            students=[(s.name, s.tag, s.enabled) for s in settings.students],
            duration_s=settings.session.duration_min * 60.0 * float(clock.speed or 1.0),
            budget=settings.budget,
            sample_interval_s=settings.sample_interval_s,
            price_per_kwh=settings.cost.price_per_kwh,
            currency=settings.cost.currency,
        )
        self.quitting = False
        self.hung_up = False
        """The terminal went away (SIGHUP): the session is being stopped with nobody watching."""
        self._previous_sighup: Callable[[int, FrameType | None], Any] | int | None = None
        self._engine_worker: Worker[None] | None = None
        self._engine_task: asyncio.Future[None] | None = None
        """The engine's run(), shielded from the worker's cancel (see `_run_engine`)."""
        self.crash: BaseException | None = None
        """The first unhandled exception of the dashboard: the session was stopped for it."""
        self._forced = False
        self._unsubscribe: Callable[[], None] | None = None
        self._sync_pending = False
        self._binding_sig: tuple[bool, ...] = ()
        self.views: dict[str, RhtuiScreen] = {}
        """The view screens mounted so far, by mode name (each registers itself on mount)."""
        self.events_seen = 0
        self.idle_gc = IdleCollector(self._gc_due, min_interval_s=FULL_GC_EVERY_S)
        """Full garbage collections wait for a pause in the input (see rhtui/tui/idle_gc.py)."""
        self._gc_timer: asyncio.TimerHandle | None = None
        self._clock_timer: Timer | None = None
        """Moves the status line's clock when no hardware sample did in the last second."""
        self._ui_loop: asyncio.AbstractEventLoop | None = None
        self.alerts_since = time.time()
        """Alerts raised before this (wall clock) are in the log but not notified: `rhtui watch` replays the past."""
        """The loop the app runs on, for callbacks from other threads (set on mount)."""

    # -- life cycle --------------------------------------------------------------

    def on_mount(self) -> None:
        self._ui_loop = asyncio.get_running_loop()
        self._unsubscribe = self.bus.subscribe(self.engine_event)
        self._install_signal_handlers()
        self.idle_gc.install()
        self._pull_orchestrator_state()
        self._clock_timer = self.set_interval(1.0, self._tick, name="clock")
        self._tick()
        if self.start_engine:
            self._engine_worker = self.run_worker(
                self._run_engine, name="engine", group="engine", exclusive=True, exit_on_error=False
            )

    async def on_unmount(self) -> None:
        self.idle_gc.uninstall()  # first: CPython's thresholds come back whatever fails below
        if self._gc_timer is not None:
            self._gc_timer.cancel()
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
        self._remove_signal_handlers()
        await self._stop_engine_before_exit()

    async def _stop_engine_before_exit(self) -> None:
        """The app is closing with the engine still running: after an unhandled exception (the
        app's message loop may be gone, so no key or worker message is handled any more), a
        forced quit, or a test that ends. Textual awaits this (the app's Unmount) after it has
        given the terminal back and before it prints a traceback; the caller closes the store
        after that, so the engine must be done by then. Stopped as `q` stops it (cancel the
        stream, record the run aborted, unload, close the session), or after a forced quit
        cancelled, with a bound either way."""
        task = self._engine_task
        if task is None or task.done():
            return
        if not self._forced:
            if self.crash is not None:
                self._say(f"rhtui: the dashboard failed ({_describe(self.crash)}); stopping the session: "
                          "cancel, record the running proposal aborted, unload, save…")
            self._request_engine_stop()
            await asyncio.wait({task}, timeout=QUIT_TIMEOUT_S)
        if not task.done():
            self._say("rhtui: quitting at once: the engine is cancelled…")
            task.cancel()
            await asyncio.wait({task}, timeout=FORCED_STOP_S)
        if task.done() and not task.cancelled():
            task.exception()  # seen here (the worker that would report it is gone), not "never retrieved"

    def _request_engine_stop(self) -> None:
        orch = self.orchestrator
        if orch is None:
            return
        with contextlib.suppress(Exception):  # already stopping, or a stop that fails: the wait is bounded
            if self.crash is not None:
                what = f"the dashboard failed: {_describe(self.crash)}"
                orch.request_stop(what, error=what)
            else:
                orch.request_stop("the terminal was closed (SIGHUP)" if self.hung_up else "stopped by user")

    def _say(self, text: str) -> None:
        """A line on the terminal once the dashboard is gone (nothing while headless, as in tests)."""
        if not self.is_headless:
            with contextlib.suppress(Exception):
                self.error_console.print(text, markup=False, highlight=False)

    # -- an unhandled exception anywhere in the app ----------------------------------------

    def unhandled_exception(self, error: Exception) -> None:
        """Nothing handled `error` (a widget's render or compose, a message or event handler, a
        timer, a callback, a worker with exit_on_error); Textual closes the app with return code
        1 and prints the traceback next (see `StopOnUnhandledError`). A bug in the dashboard must
        not lose the session: the engine is told to stop first, with the error as the reason,
        and `on_unmount` waits for it."""
        if self.crash is None:
            self.crash = error
            if self._engine_task is not None and not self._engine_task.done():
                self._request_engine_stop()

    async def on_event(self, event: events.Event) -> None:
        if isinstance(event, events.InputEvent):
            self.idle_gc.note_input()
        await super().on_event(event)

    def _gc_due(self) -> None:
        """From inside the garbage collector, on any thread: run the collection from the loop."""
        loop = self._ui_loop
        if loop is None:
            return
        with contextlib.suppress(RuntimeError):  # the loop is closing
            loop.call_soon_threadsafe(self._gc_step)

    def _gc_step(self) -> None:
        # plain loop callbacks, not Textual timers: this may have been scheduled from another
        # thread's context (the input or writer thread), which has no active app
        if self._gc_timer is not None:
            self._gc_timer.cancel()
            self._gc_timer = None
        delay = self.idle_gc.step()
        if delay is not None and self.idle_gc.installed and self._ui_loop is not None:
            self._gc_timer = self._ui_loop.call_later(delay, self._gc_step)

    def _install_signal_handlers(self) -> None:
        """A kill (SIGTERM) or a dropped SSH session / closed terminal (SIGHUP) stops the engine
        gracefully: cancel, unload, flush, then exit, as q does (without asking)."""
        if self.is_headless or not self.start_engine:
            return
        loop = asyncio.get_running_loop()
        with contextlib.suppress(*NO_SIGNALS):
            loop.add_signal_handler(signal.SIGTERM, self.graceful_quit)
            # an outside `kill -INT` (Ctrl-C itself arrives as a key): as q without asking; again: at once
            loop.add_signal_handler(signal.SIGINT, self._on_interrupt)
            # not through the loop: it must run before Textual's SIGCONT handler, and even
            # while a write to the dead terminal holds the loop (see terminal_hung_up)
            self._previous_sighup = signal.signal(signal.SIGHUP, self._on_hangup)

    def _remove_signal_handlers(self) -> None:
        if self.is_headless or not self.start_engine:
            return
        with contextlib.suppress(*NO_SIGNALS):
            asyncio.get_running_loop().remove_signal_handler(signal.SIGTERM)
            asyncio.get_running_loop().remove_signal_handler(signal.SIGINT)
            if self._previous_sighup is not None:
                signal.signal(signal.SIGHUP, self._previous_sighup)

    def _on_interrupt(self) -> None:
        if self.quitting:  # a second SIGINT: the engine is cancelled, the session closed "cancelled"
            self._forced = True
            self.exit(130)
            return
        self.graceful_quit()

    def _on_hangup(self, _signum: int, _frame: FrameType | None) -> None:
        self.hung_up = True
        terminal_hung_up(self)
        loop = self._ui_loop
        with contextlib.suppress(RuntimeError):  # the loop is closed: we are exiting anyway
            if loop is not None:
                loop.call_soon_threadsafe(self.graceful_quit)

    async def _run_engine(self) -> None:
        # run() is a task of its own, shielded: when the app closes, Textual cancels its workers,
        # and a cancel would leave the running proposal unrecorded and the session open; the app
        # stops the engine as q does instead, and waits for it (`_stop_engine_before_exit`)
        orch = self.orchestrator
        if orch is None:
            raise RuntimeError("no engine to run")
        self._engine_task = asyncio.ensure_future(orch.run())
        await asyncio.shield(self._engine_task)

    @property
    def engine_running(self) -> bool:
        w = self._engine_worker
        return w is not None and w.state in (WorkerState.PENDING, WorkerState.RUNNING)

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        if event.worker is not self._engine_worker or not self.is_running:
            return  # not the engine, or the app is closing (its screens may be gone already)
        if event.state == WorkerState.ERROR:
            err = event.worker.error
            self.model.engine_failed(self.clock.now(), f"{type(err).__name__}: {err}")
            self._schedule_sync()
        if event.state in (WorkerState.SUCCESS, WorkerState.ERROR, WorkerState.CANCELLED):
            if self.model.state not in ("finished",) and self.model.finished is None and not self.model.engine_error:
                self.model.state = "finished"
                self.model.bump("status", "banner")
            self.refresh_bindings()
            if self.crash is not None:
                return  # Textual is closing the app with the error's return code
            if self.quitting:
                self.exit(1 if self.model.engine_error else 0)
            else:
                self._schedule_sync()

    # -- engine events in ----------------------------------------------------------

    def engine_event(self, event: ev.Event) -> None:
        """Feed one engine event (the bus listener; tests call it directly). Thread-safe."""
        self.post_message(engine_message(event))

    def apply_events(self, events: Iterable[ev.Event]) -> None:
        """Fold events into the state at once, without collapsing any (seeding tests and replays)."""
        for event in events:
            self.model.apply(event)
        self._schedule_sync()

    @on(EngineEvent)
    def _handle_engine_event(self, message: EngineEvent) -> None:
        self.events_seen += 1
        event = message.event
        self.model.apply(event)
        if isinstance(event, ev.HardwareSampled):
            self._tick_with_sample()
        self._schedule_sync()
        if isinstance(event, ev.Alert) and event.raised_at >= self.alerts_since:
            self.notify(event.message, title=event.title, severity=ALERT_SEVERITY[event.severity],
                        timeout=ALERT_TIMEOUT_S[event.severity], markup=False)

    def _schedule_sync(self) -> None:
        if not self._sync_pending:
            self._sync_pending = True
            self.call_later(self._sync_views)

    def _sync_views(self) -> None:
        self._sync_pending = False
        for screen in self._visible_views():
            screen.sync(self.model)
        m = self.model
        # only what check_action looks at: a changed footer is recomposed, which is not free
        sig = (m.current is None, m.emergency is None, m.finished is None, m.engine_error is None, self.quitting)
        if sig != self._binding_sig:
            self._binding_sig = sig
            self.refresh_bindings()

    def _visible_views(self) -> list[RhtuiScreen]:
        try:
            stack = self.screen_stack
        except Exception:
            return []
        for screen in reversed(stack):
            if isinstance(screen, RhtuiScreen):
                return [screen]
            if not isinstance(screen, ModalScreen):
                break
        return []

    def sync_screen(self, screen: RhtuiScreen) -> None:
        """A view was shown or mounted: bring it up to date now."""
        screen.sync(self.model)

    def _tick_with_sample(self) -> None:
        """A hardware sample is drawn now: move the clock in the same frame and start its second
        again, so samples at 1 Hz cost one repaint a second, not two (the clock's and theirs)."""
        self._tick()
        if self._clock_timer is not None:
            self._clock_timer.reset()

    def _tick(self) -> None:
        before = self.model.versions["status"]
        self.model.set_now(self.clock.now())
        if self.model.versions["status"] != before:
            self._schedule_sync()

    # -- what the engine may share beyond events (duck-typed, optional) ----------------

    def _pull_orchestrator_state(self) -> None:
        """Which students the engine has enabled (a watcher may start after a key changed one)."""
        if self.orchestrator is None:
            return
        for name, enabled in self.orchestrator.enabled.items():
            self.model.set_enabled(name, bool(enabled))

    # -- data for the charts (plain tuples) -------------------------------------------

    def vram_series(self) -> VramSeries:
        m = self.model
        xs, ys = m.timeline.points()
        total = m.timeline.total_mb or (m.snapshot.vram_total_mb if m.snapshot else None)
        return VramSeries(
            minutes=tuple(xs), used_mb=tuple(ys), total_mb=total, reserve_mb=m.budget.reserve_mb,
            max_fraction=m.budget.max_fraction, emergency_fraction=m.budget.emergency_fraction,
            span_min=m.timeline.span_min,
        )

    def student_bars(self, metric: str) -> StudentBars:
        names, values = [], []
        for r in self.model.students.values():
            s = r.session_stats()
            v = s.tok_per_s_mean if metric == "tps" else s.seconds_mean
            if v is not None:
                names.append(r.name)
                values.append(v)
        return StudentBars(tuple(names), tuple(values))

    def cycle_tokens(self) -> CycleTokens:
        items = list(self.model.cycle_tokens)
        return CycleTokens(tuple(c for c, _ in items), tuple(t for _, t in items))

    def score_series(self) -> ScoreSeries:
        """Per student with a score, the mean of its scored answers in each cycle."""
        names, points = [], []
        for r in self.model.students.values():
            by_cycle: dict[int, list[float]] = {}
            for cycle, _run_id, score in r.score_points:
                by_cycle.setdefault(cycle, []).append(score)
            if by_cycle:
                names.append(r.name)
                points.append(tuple((c, sum(v) / len(v)) for c, v in sorted(by_cycle.items())))
        return ScoreSeries(tuple(names), tuple(points))

    # -- actions -------------------------------------------------------------------

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        m = self.model
        live = self.orchestrator is not None and m.finished is None and not m.engine_error and not self.quitting
        if action in SESSION_KEYS and self.asking:
            return False  # typing a question: a stray key never pauses, skips or stops the session
        if action == "clear_emergency":
            return bool(live and m.emergency is not None)
        if action == "skip":
            return True if (live and m.current is not None) else None
        if action in ("toggle_pause", "emergency_stop", "ask"):
            return True if live else None
        return True

    def _control(self, what: str, call: Callable[[EngineHandle], object]) -> bool:
        orch = self.orchestrator
        if orch is None:
            self.notify("The engine is not running here: this view is read-only.", severity="warning")
            return False
        try:
            call(orch)
        except Exception as exc:  # a control must never crash the dashboard
            self.notify(f"{what} failed: {exc}", severity="error", markup=False)
            return False
        return True

    def action_toggle_pause(self) -> None:
        orch = self.orchestrator
        state = (orch.state if orch is not None else None) or self.model.state
        # no toast: the state badge and the banner say it (and a toast costs a layout)
        if state == "paused":
            self._control("resume", lambda o: o.resume())
        else:
            self._control("pause", lambda o: o.pause())

    def action_skip(self) -> None:
        student = self.model.current or (self.orchestrator.current if self.orchestrator is not None else None)
        if self._control("skip", lambda o: o.skip_current()):
            self.notify(f"Skipping {student or 'the running student'}: cancel, unload, record skipped.",
                        markup=False, timeout=3)

    def action_emergency_stop(self) -> None:
        # the banner says what happened once the engine reports it
        self._control("emergency stop", lambda o: o.emergency_stop("emergency stop by user"))

    def action_clear_emergency(self) -> None:
        self._control("resume after emergency", lambda o: o.clear_emergency())

    @property
    def asking(self) -> bool:
        """The question box is open."""
        try:
            return any(isinstance(s, AskScreen) for s in self.screen_stack)
        except Exception:  # no screen yet
            return False

    def action_ask(self) -> None:
        if self.asking:
            return
        self.push_screen(AskScreen(), callback=self._asked)

    def _asked(self, answer: tuple[str, str] | None) -> None:
        if answer is None:
            return
        question, tier = answer
        if self._control("ask", lambda o: o.ask(question, tier)):
            self.notify(f"Asked ({tier}): its round runs next, between cycles; see the proposals view (3).",
                        markup=False, timeout=5)

    def toggle_student(self, student: str) -> None:
        row = self.model.students.get(student)
        if row is None:
            return
        new = not row.enabled
        if self._control("enable/disable", lambda o: o.set_enabled(student, new)):
            self.model.set_enabled(student, new)
            self.notify(f"{student} {'enabled' if new else 'disabled'} from its next turn.", markup=False)
            self._schedule_sync()

    def release_student(self, student: str) -> None:
        row = self.model.students.get(student)
        if row is None:
            return
        if row.health == "healthy":
            self.notify(f"{student} is healthy: nothing to release (u releases a failing student).",
                        markup=False, timeout=3)
            return
        if self._control("release", lambda o: o.release(student)):
            self.notify(f"Releasing {student}: it runs again at its next turn.", markup=False, timeout=3)

    def action_switch_view(self, view: str) -> None:
        if view not in VIEWS or self.current_mode == view:
            return
        screen = self.views.get(view)
        if screen is None or not screen.is_mounted:
            self.switch_mode(view)  # first time: mounted now, behind Textual's short anti-flicker delay
            return
        # Shown before: bring it up to date while hidden, then swap in the same frame. Textual
        # holds every mode switch back 50 ms to hide a half-mounted screen; there is none here.
        screen.sync(self.model)
        self.switch_mode_now(view)

    def action_next_view(self) -> None:
        i = VIEWS.index(self.current_mode) if self.current_mode in VIEWS else 0
        self.action_switch_view(VIEWS[(i + 1) % len(VIEWS)])

    def action_previous_view(self) -> None:
        i = VIEWS.index(self.current_mode) if self.current_mode in VIEWS else 0
        self.action_switch_view(VIEWS[(i - 1) % len(VIEWS)])

    def action_help(self) -> None:
        if isinstance(self.screen, HelpScreen):
            self.screen.dismiss()
            return
        self.push_screen(HelpScreen(self.help_sections()))

    def help_sections(self) -> list[tuple[str, list[tuple[str, str, str]]]]:
        key = self.get_key_display
        sections = [
            ("Session", rows_from_bindings(_bindings(RhtuiApp.BINDINGS), key)),
            ("Views", rows_from_bindings(_bindings(RhtuiScreen.BINDINGS), key)),
        ]
        screen = self._visible_views()
        if screen:
            own = screen[0].__class__.__dict__.get("BINDINGS", [])
            sections.append((f"{screen[0].VIEW.capitalize()}", rows_from_bindings(_bindings(own), key)))
            focused = screen[0].focused
            if focused is not None:
                bindings = widget_bindings(focused)
                name = FRIENDLY_NAMES.get(type(focused).__name__, type(focused).__name__)
                sections.append((f"{name} (focused)", rows_from_bindings(bindings, key)))
        sections.append(("Anywhere", [("^p", "Command palette", "Every action here, and Theme to change colours")]))
        return sections

    def action_quit(self) -> None:  # type: ignore[override]
        if self.quitting:  # second q: do not wait any longer
            self._forced = True
            self.exit(1)
            return
        if any(isinstance(s, ConfirmQuit) for s in self.screen_stack):
            return
        orch = self.orchestrator
        if orch is not None and getattr(orch, "remote", False):  # a watcher: the session goes on without us
            orch.request_stop()
            self.exit(0)
            return
        if self.engine_running and self.model.current is not None:
            self.push_screen(ConfirmQuit(self.model.current), callback=self._confirmed_quit)
            return
        self.graceful_quit()

    def _confirmed_quit(self, answer: bool | None) -> None:
        if answer:
            self.graceful_quit()

    def graceful_quit(self) -> None:
        """Ask the engine to stop (cancel, record aborted, unload, flush) and exit when run() returns."""
        if not self.engine_running:
            self.exit(1 if self.model.engine_error else 0)
            return
        if self.quitting:
            return
        self.quitting = True
        reason = "the terminal was closed (SIGHUP)" if self.hung_up else "stopped by user"
        self._control("stop", lambda o: o.request_stop(reason))
        self.model.bump("banner", "status")
        self._schedule_sync()
        self.set_timer(QUIT_TIMEOUT_S, self._quit_timed_out, name="quit-timeout")

    def _quit_timed_out(self) -> None:
        if self.quitting:
            self._forced = True
            self.exit(1, message=f"rhtui: the engine did not stop within {QUIT_TIMEOUT_S:.0f} s; quitting anyway.")

    # -- the command palette -----------------------------------------------------------

    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        seen: set[str] = set()
        base = self._visible_views()
        target = base[0] if base else screen
        for _key, (_node, binding, enabled, tooltip) in target.active_bindings.items():
            if not binding.description or binding.system or binding.action in seen or not enabled:
                continue
            if binding.action in ("quit", "help"):
                continue
            seen.add(binding.action)
            node = _node
            yield SystemCommand(
                binding.description,
                tooltip or binding.tooltip or binding.description,
                _runner(self, node, binding.action),
            )
        yield SystemCommand("Help", "Show every key and what it does", self.action_help)
        yield SystemCommand("Quit", "Quit gracefully: cancel, unload, save", self.action_quit)
        for cmd in super().get_system_commands(screen):
            if cmd.title not in ("Quit", "Keys"):
                yield cmd


def _describe(error: BaseException) -> str:
    text = str(error)
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


def terminal_hung_up(app: App[Any]) -> None:
    """The terminal is gone: make sure nothing waits on it while the engine stops.

    The terminal's descriptors now lead to /dev/null (a read would fail or block, a write
    fail), then Textual's driver lets go of it (`release_dead_terminal`: no restart of
    application mode on the kernel's SIGCONT, the input thread stopped, a dead writer
    thread's queue drained), so the graceful stop runs.
    """
    devnull = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        with contextlib.suppress(OSError):
            os.dup2(devnull, fd)
    os.close(devnull)
    release_dead_terminal(app)


def _runner(app: App[Any], node: DOMNode, action: str) -> Callable[[], Coroutine[Any, Any, None]]:
    async def run() -> None:
        await app.run_action(action, node)

    return run


def _bindings(spec: Iterable[BindingType]) -> list[Binding]:
    return list(Binding.make_bindings(spec))


def make_app(
    settings: Settings,
    backend: LlmBackend | None,
    probe: HardwareProbe | None,
    store: Store | None,
    clock: Clock,
    *,
    orchestrator: EngineHandle | None = None,
    start_engine: bool = True,
) -> RhtuiApp:
    """Build the dashboard. With `start_engine` (the CLI) an Orchestrator is made if none is
    given (from `backend`, `probe` and `store`, which it then needs) and its `run()` becomes the
    app's "engine" worker; without it (snapshot tests) nothing runs and events are fed with
    `app.engine_event(event)`. An engine that runs elsewhere (a watcher) needs none of them."""
    if orchestrator is None and start_engine:
        from rhtui.engine.orchestrator import Orchestrator

        if backend is None or probe is None or store is None:
            raise TypeError("make_app: an engine to start needs a backend, a probe and a store")
        orchestrator = Orchestrator(settings, backend, probe, store, clock)
    return RhtuiApp(
        settings=settings,
        clock=clock,
        orchestrator=orchestrator,
        start_engine=start_engine,
        backend=backend,
        probe=probe,
    )


if TYPE_CHECKING:
    _VIEW_HOST: type[ViewHost] = RhtuiApp  # mypy checks that the app is what its views need
