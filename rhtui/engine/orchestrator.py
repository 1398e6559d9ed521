"""The orchestrator: the async cycle loop that runs the students.

plan (AdaptiveScheduler) → admit (BudgetGuard) → preload → generate (streamed, with
timeout) → measure → record (Store) → unload → next. A sampler reads the probe
once per interval (never overlapping), feeds the budget guard and trips the
emergency path. Controls (pause, resume, skip, toggle, emergency, stop) are plain
method calls, safe from the same event loop; `rhtui watch` sends them through the
store's `controls` table, which the sampler polls.

Everything it does is an event on `self.bus` and a row in the store.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import re
import time
from collections import deque
from dataclasses import replace
from itertools import pairwise
from typing import Any

from rhtui.engine import events as ev
from rhtui.engine.alerts import AlertRunner
from rhtui.engine.backend import (
    BackendBusy,
    BackendError,
    BackendUnreachable,
    LlmBackend,
    LoadedModel,
    ModelMissing,
    OutOfMemory,
    RunnerFailed,
    StreamBroken,
    model_key,
)
from rhtui.engine.budget import BudgetGuard
from rhtui.engine.clock import Clock
from rhtui.engine.config import Settings, StudentSpec
from rhtui.engine.eventlog import format_event
from rhtui.engine.hardware import HardwareProbe, HardwareSnapshot
from rhtui.engine.prompts import PromptBank
from rhtui.engine.records import RunRecord, RunStatus
from rhtui.engine.scheduler import (
    BACKEND_LOST_PREFIX,
    AdaptiveScheduler,
    Candidate,
    HealthBook,
    HealthState,
    RunOrSkip,
    StudentProfile,
    stats_of,
)
from rhtui.engine.store import Store, StoreFull

PROPOSAL_CAP_CHARS = 200_000
PROGRESS_EVERY_S = 0.25  # real seconds between TokensProgress events
FAILED = ("timeout", "error", "aborted", "emergency")
# After an unload, wait up to UNLOAD_WAIT_S (engine clock) for Ollama to free the memory, polling
# every UNLOAD_POLL_S (real) at most. On the engine clock, so that at the simulator's high speeds a
# card that never shows the memory freed (another process took it meanwhile) cannot hold a run
# for a thousand simulated seconds.
UNLOAD_WAIT_S, UNLOAD_POLL_S = 5.0, 0.05
PROFILE_WINDOW = 200  # runs per student a learned profile is computed from
TREND_WINDOW_S = 180.0  # engine-clock seconds of samples the VRAM trend is fitted on
IDLE_RETRY_S = 15.0  # engine-clock seconds to wait after a cycle in which no student could run
IDLE_RETRY_MAX_S = 120.0  # the wait doubles while cycle after cycle nobody can run, up to this
BACKEND_RETRY_S = (1.0, 10.0)  # engine-clock seconds between tries while Ollama is down: first, most
PRESESSION_EVENTS_KEPT = 200  # events from before the session's row exists, stored once it does
# Ollama answers HTTP 503 "server busy" when its queue is full (OLLAMA_MAX_QUEUE): the student is
# tried again after a back-off (engine clock; first, most), up to BUSY_TRIES tries in all.
BUSY_RETRY_S = (2.0, 16.0)
BUSY_TRIES = 4


class _Cancelled(Exception):
    """The running student was stopped by a control; `status` says how it is recorded."""

    def __init__(self, status: RunStatus, reason: str, error: str = "") -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason
        self.error = error


class Orchestrator:
    def __init__(
        self,
        settings: Settings,
        backend: LlmBackend,
        probe: HardwareProbe,
        store: Store,
        clock: Clock,
        *,
        bus: ev.EventBus | None = None,
        prompts: PromptBank | None = None,
        retry_backend: bool = True,
        session_seconds: float | None = None,
    ) -> None:
        self.settings = settings
        self.backend = backend
        self.probe = probe
        self.store = store
        self.clock = clock
        self.bus = bus or ev.EventBus()
        self.prompts = prompts or PromptBank(seed=settings.session.prompt_seed)
        self.retry_backend = retry_backend
        # Session length on the engine clock: wall-clock minutes, times the clock's speed.
        self.session_seconds = session_seconds or settings.session.duration_min * 60.0 * clock.speed
        self.guard = BudgetGuard(settings.budget)
        # the alert rules see every event emitted (see `emit`); their alerts are events too
        self.alerts = AlertRunner(settings.alerts, self.guard, clock, self.emit, host=backend.host,
                                  session=settings.session.name)
        self.scheduler = AdaptiveScheduler(settings.budget, settings.session, self.guard)
        self.students: dict[str, StudentSpec] = {s.name: s for s in settings.students}
        self.enabled: dict[str, bool] = {s.name: s.enabled for s in settings.students}
        self.state: ev.EngineState = "starting"
        self.current: str | None = None
        self.session_id: int | None = None
        self.cycle = 0
        self.latest_snapshot: HardwareSnapshot | None = None
        self.latest_profiles: dict[str, StudentProfile] = {}
        # this cycle's students in order, those done, and the last "fits now" sent (FitsChecked)
        self._waiting: list[Candidate] = []
        self._waiting_done: set[str] = set()
        self._fits_shown: tuple[tuple[str, bool], ...] = ()
        self._stop_reason = "stopped by user"
        self.backend_version = "?"
        self._unreachable = ""  # what the last failed `_reachable` found
        self._history: dict[str, list[RunRecord]] = {}
        self._sizes: dict[str, float | None] = {}
        self._missing: dict[str, str] = {}
        # (t, VRAM used by everything but our own loaded student): the trend the scheduler
        # watches is other processes growing, not our loads and unloads.
        self._vram_window: deque[tuple[float, float]] = deque(maxlen=600)
        self._ours_mb: float | None = 0.0  # None while a load or unload is in flight
        # After a timed-out load Ollama may finish loading after our unload and keep the model for its
        # keep_alive: until then the sampler also asks /api/ps, so that memory counts as ours, not as
        # another process's "VRAM trending up" (without NVML it asks anyway).
        self._strays_until: float | None = None
        self._runnable = asyncio.Event()
        self._runnable.set()
        self._stop = asyncio.Event()
        self._gen_task: asyncio.Task | None = None
        self._cancel: _Cancelled | None = None
        self._emergency_manual = False
        self._paused_before_emergency = False
        self._calm_since: float | None = None
        self._last_zone = "ok"
        self._sample_lock = asyncio.Lock()
        self._run_power: list[tuple[float, float]] | None = None
        self._run_peak: float | None = None
        self._totals = {"runs": 0, "tokens": 0}
        self._bg: set[asyncio.Task] = set()
        self._to_store = ev.StoreCoalescer()
        self._unstored: list[ev.Event] = []  # emitted before the session's row exists
        # each student's failures in a row, back-off and quarantine (this session's; see HealthBook)
        self.health = HealthBook()
        self._wake = asyncio.Event()  # ends a wait between cycles early (a student was released)
        self.exit_code = 0
        """What the process should exit with: 1 when the session ended because Ollama stayed unreachable."""
        self.store_full: StoreFull | None = None
        """The disk holding the database filled up: the session was stopped for it."""
        self.end_error: str | None = None
        """Why the session's row could not be closed (it then reads as open until the next start)."""

    # -- events --------------------------------------------------------------------------

    def emit(self, event: ev.Event) -> None:
        """To every listener now; to the `events` table as `ev.StoreCoalescer` decides (every event,
        log line or not, so a watcher sees what the dashboard sees; token progress at most once a
        second per run; hardware samples not, they are rows of their own). Events from before the
        session's row exists are stored as soon as it does. Then the alert rules see it: an Alert
        it raises follows it on the bus and in the table."""
        self.bus.emit(event)
        self._store_or_hold(event)
        self.alerts.feed(event)

    def _store_or_hold(self, event: ev.Event) -> None:
        store, wait = self._to_store.offer(event, time.monotonic())
        if self.session_id is None:
            room = PRESESSION_EVENTS_KEPT - len(self._unstored)
            self._unstored.extend(store[: max(0, room)])
            return
        if self._unstored:
            store = [*self._unstored, *store]
            self._unstored.clear()
        for e in store:
            self._store_event(e)
        if wait is not None:
            asyncio.get_running_loop().call_later(wait, self._store_held)

    def _store_event(self, event: ev.Event) -> None:
        if self.store_full is not None:
            return  # each write would fail again; the bus still carries the event
        level, text = format_event(event) or ("debug", "")
        self._spawn(self.store.add_event(self.session_id, event.ts, type(event).__name__, level, text,
                                         ev.event_data(event)))

    def _store_held(self) -> None:
        """A held-back progress event's second is up (none once stopping: the run's finish says it all)."""
        if self.session_id is None or self.state in ("stopping", "finished"):
            return
        for e in self._to_store.due(time.monotonic()):
            self._store_event(e)

    def _spawn(self, coro) -> None:
        task = asyncio.ensure_future(coro)
        self._bg.add(task)
        task.add_done_callback(self._bg_done)

    def _bg_done(self, task: asyncio.Task) -> None:
        """A background write ended: its failure is looked at here (never "exception was never
        retrieved"); a full disk stops the session, any other failure costs that one row."""
        self._bg.discard(task)
        if task.cancelled():
            return
        exc = task.exception()
        if isinstance(exc, StoreFull):
            self._on_store_full(exc)

    def _on_store_full(self, exc: StoreFull) -> None:
        """The disk holding the database is full: stop gracefully, the session closed with that reason."""
        if self.store_full is not None:
            return
        self.store_full = exc
        reason = f"the disk holding {exc.directory} is full"
        self.log("critical", f"{exc}: stopping the session; what was saved before is kept. Free some space "
                 "(or use another --data-dir) and start again")
        self.request_stop(reason)
        self._stop_reason = reason  # even when a stop was already under way: this is why it ends

    def log(self, level: ev.Level, text: str) -> None:
        self.emit(ev.LogMessage(ts=self.clock.now(), level=level, text=text))

    def _set_state(self, state: ev.EngineState, reason: str = "") -> None:
        if state != self.state:
            self.state = state
            self.emit(ev.StateChanged(ts=self.clock.now(), state=state, reason=reason))

    # -- controls (sync; safe from the UI on the same loop) ------------------------------

    def pause(self) -> None:
        """No new student starts until resume(); the running one finishes."""
        if self.state == "running":
            self._runnable.clear()
            self._set_state("paused", "by user")

    def resume(self) -> None:
        if self.state == "paused":
            self._runnable.set()
            self._set_state("running", "resumed by user")
        elif self.state == "emergency":
            self.clear_emergency()

    def toggle_pause(self) -> None:
        self.resume() if self.state == "paused" else self.pause()

    def skip_current(self) -> None:
        """Cancel the running student's generation; it is unloaded and recorded `skipped`."""
        if self.current is not None:
            self._cancel_current("skipped", "skipped by user")

    def set_enabled(self, student: str, enabled: bool) -> None:
        if student in self.enabled and self.enabled[student] != enabled:
            self.enabled[student] = enabled
            self.log("info", f"[{student}] {'enabled' if enabled else 'disabled'} for the next cycles")

    def release(self, student: str) -> None:
        """A person releases a quarantined (or backing-off) student: healthy again, run at its next turn."""
        if student not in self.students:
            self.log("warning", f"cannot release {student!r}: not a student of this session "
                     f"({', '.join(self.students)})")
            return
        if not self.health.release(student):
            self.log("info", f"[{student}] is healthy: nothing to release")
            return
        self.emit(ev.StudentHealthChanged(ts=self.clock.now(), cycle=self.cycle, student=student, health="healthy",
                                          failures=0, reason="released by user; it runs at its next turn",
                                          released=True))
        self._wake.set()

    def emergency_stop(self, reason: str = "emergency stop by user") -> None:
        self._emergency_manual = True
        self._spawn(self._enter_emergency(reason, self.latest_snapshot))

    def clear_emergency(self) -> None:
        """Resume after an emergency, if VRAM is back under the max fraction."""
        if self.state != "emergency":
            return
        snap = self.latest_snapshot
        if snap is not None and snap.vram_total_mb and not self.guard.may_resume(snap):
            self.log("warning", f"cannot resume yet: VRAM still at {100 * (snap.vram_fraction or 0):.1f} %")
            return
        self._leave_emergency("resumed by user")

    def ask(self, question: str, tier: str = "standard") -> None:
        """A person's own question: its round runs next, between cycles (see rhtui.engine.ensemble)."""
        self.log("warning", "asking a question is not available in this version")

    def request_stop(self, reason: str = "stopped by user", *, error: str = "") -> None:
        """Graceful stop: cancel the running student (recorded `aborted`, with `error` if the stop
        comes from a failure, e.g. of the dashboard), unload, flush; the session is closed with
        `reason`; run() returns."""
        if not self._stop.is_set():
            self._stop_reason = reason
            self._stop.set()
            self._set_state("stopping", "stop requested")
            self._runnable.set()
            if self.current is not None:
                self._cancel_current("aborted", "session stopped", error)

    def _cancel_current(self, status: RunStatus, reason: str, error: str = "") -> None:
        if self._gen_task is not None and not self._gen_task.done():
            self._cancel = _Cancelled(status, reason, error)
            self._gen_task.cancel()

    # -- the session ---------------------------------------------------------------------

    async def run(self) -> None:
        """Run the whole session: until the duration ends, max_cycles, or request_stop()."""
        reason = "finished"
        try:
            if not await self._connect():
                return
            await self._learn()
            gpu = await self._gpu_name()
            self.session_id = await self.store.start_session(
                self.settings.session.name,
                self.clock.now(),
                {
                    "host": self.backend.host,
                    "backend_version": self.backend_version,
                    "probe": self.probe.name,
                    "policy": self.settings.session.policy,
                    "duration_s": self.session_seconds,
                    "gpu": gpu,
                },
            )
            self._deadline = self.clock.monotonic() + self.session_seconds
            self.emit(
                ev.SessionStarted(
                    ts=self.clock.now(),
                    session_id=self.session_id,
                    name=self.settings.session.name,
                    duration_s=self.session_seconds,
                    backend_host=self.backend.host,
                    backend_version=self.backend_version,
                    probe=self.probe.name,
                    students=tuple(self.students),
                    policy=self.settings.session.policy,
                    speed=self.clock.speed,
                )
            )
            self._share_profiles()
            if not self.probe.has_vram:
                self.log("warning", f"no NVML ({getattr(self.probe, 'reason', 'no GPU')}): "
                         "VRAM is judged from Ollama's /api/ps")
            self._set_state("running")
            sampler = asyncio.ensure_future(self._sample_loop())
            try:
                reason = await self._cycles()
            finally:
                sampler.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await sampler
        except asyncio.CancelledError:
            reason = "cancelled"
            raise
        except StoreFull as exc:
            self._on_store_full(exc)
            reason = self._stop_reason
        finally:
            await self._shutdown(reason)

    def _session_row(self) -> int:
        """The session's row id: run() opens the session before any cycle, so every cycle and run has one."""
        if self.session_id is None:
            raise RuntimeError("no session yet: run() opens it before the first cycle")
        return self.session_id

    def remaining_s(self) -> float | None:
        deadline = getattr(self, "_deadline", None)
        return None if deadline is None else max(0.0, deadline - self.clock.monotonic())

    async def _connect(self, initial: bool = True) -> bool:
        """Check the backend. While it is down: at start, keep retrying (the dashboard) or raise
        (headless, retry_backend=False); during a session, wait for it to come back until the
        session's time is up or `session.give_up_after_s` has passed, then end the session with
        the outage as the reason (False)."""
        delay, most = BACKEND_RETRY_S
        since: tuple[float, float] | None = None  # (now, monotonic) when it was first found down
        while not self._stop.is_set():
            try:
                self.backend_version = await self.backend.version()
                self.emit(ev.BackendUp(ts=self.clock.now(), host=self.backend.host, version=self.backend_version))
                return True
            except BackendUnreachable as exc:
                if self.state != "backend_down":  # say it once, not at every retry
                    self._set_state("backend_down", str(exc))
                    self.emit(ev.BackendDown(ts=self.clock.now(), host=self.backend.host, error=str(exc)))
                if initial and not self.retry_backend:
                    raise
            if since is None:
                since = (self.clock.now(), self.clock.monotonic())
            wait = delay
            if not initial:
                left, why = self._outage_left(since[1])
                if left <= 0:
                    self._give_up(since[0], why)
                    return False
                wait = min(delay, left)
            with contextlib.suppress(asyncio.TimeoutError):
                # engine-clock seconds, like every other wait: at the simulator's 300x a 1 s real
                # wait would miss 300 s of the session after Ollama is back
                await asyncio.wait_for(self._stop.wait(), max(0.005, wait / self.clock.speed))
            delay = min(delay * 2, most)
        return False

    def _outage_left(self, since: float) -> tuple[float, str]:
        """Engine seconds left to wait for Ollama in an outage that began at `since` (monotonic), and
        what ends the wait then: the session's time, or `session.give_up_after_s`."""
        left, why = math.inf, ""
        remaining = self.remaining_s()
        if remaining is not None:
            left, why = remaining, "the session's time ran out while waiting for it"
        give_up = self.settings.session.give_up_after_s
        if give_up is not None:
            gave = give_up * self.clock.speed - (self.clock.monotonic() - since)
            if gave < left:
                left, why = gave, f"rhtui gave up waiting after {give_up:g} s (session.give_up_after_s)"
        return left, why

    def _give_up(self, since: float, why: str) -> None:
        """End the session: Ollama has been unreachable since `since` (the engine clock's time)."""
        at = time.strftime("%H:%M:%S", time.localtime(since))
        reason = f"Ollama at {self.backend.host} was unreachable since {at}"
        self.log("error", f"{reason}; {why}. Start Ollama (`ollama serve`, or `systemctl start ollama`) "
                 "and run the session again; everything up to the outage is saved")
        self.exit_code = 1
        self.request_stop(reason)

    async def _reachable(self) -> bool:
        """Does Ollama still answer /api/version? (What it found otherwise is `self._unreachable`.)"""
        try:
            await self.backend.version()
        except BackendUnreachable as exc:
            self._unreachable = str(exc)
            return False
        except BackendError:
            pass
        return True

    async def _learn(self) -> None:
        """Learned profiles from every past session; model sizes and missing models from Ollama."""
        self._history = {k: list(v) for k, v in (await self.store.recent_runs_by_student(PROFILE_WINDOW)).items()}
        self.latest_profiles = self.scheduler.profiles_from_history(self._history)
        await self._refresh_models()

    def _share_profiles(self, *names: str) -> None:
        """Tell every face what the scheduler has learned (all students when no name is given)."""
        order = [n for n in (names or self.students) if n in self.latest_profiles]
        profiles = tuple(stats_of(self.latest_profiles[n]) for n in order)
        self.emit(ev.ProfilesUpdated(ts=self.clock.now(), profiles=profiles))

    async def _refresh_models(self) -> None:
        try:
            models = {model_key(m.name): m for m in await self.backend.list_models()}
        except BackendError as exc:
            self.log("warning", f"could not list Ollama's models: {exc}")
            return
        self._missing.clear()
        for spec in self.students.values():
            info = models.get(model_key(spec.tag))
            self._sizes[spec.name] = info.size_mb if info else None
            if info is None:
                ours = spec.modelfile or spec.name.startswith("rh-")
                fix = f"rhtui models create {spec.name}" if ours else f"ollama pull {spec.tag}"
                self._missing[spec.name] = f"model {spec.tag} is not in Ollama; fix: `{fix}`"
        for name, why in self._missing.items():
            self.log("error", f"[{name}] {why}")

    async def _cycles(self) -> str:
        max_cycles = self.settings.session.max_cycles
        idle_streak = 0  # cycles in a row in which no student could run
        while True:
            await self._runnable.wait()
            if self._stop.is_set():
                return self._stop_reason
            if self.remaining_s() == 0.0:
                return "session time is up"
            if max_cycles is not None and self.cycle >= max_cycles:
                return f"{max_cycles} cycles done"
            attempted, skip_kinds = await self._one_cycle()
            if self._stop.is_set():
                continue
            if skip_kinds and all(k == "time" for k in skip_kinds):
                return "session time is up (no student's expected time fits in what is left)"
            eligible = [n for n in self.students if self.enabled[n] and n not in self._missing]
            if self.health.all_failing(eligible):
                # every student failed its last try (a broken Ollama, say): never a busy loop
                wait = self.health.next_engine_wait()
                last = max(eligible, key=lambda n: self.health.get(n).failures)
                self.log("warning", (
                    f"every student is failing ({len(eligible)} students; {last}: "
                    f"{self.health.get(last).last_error}); the engine waits {wait:g} s before cycle {self.cycle + 1} "
                    "(doubling while it lasts, until a run succeeds or a student is released); "
                    "Ollama's server log says why (`journalctl -u ollama`, ~/.ollama/logs/server.log)"))
                await self._idle(wait)
                continue
            if attempted:
                idle_streak = 0
                continue
            # nobody could run (the card is taken, every student disabled or missing): wait, then retry;
            # the wait doubles while it lasts, so a card held for hours is not a row of skips every 15 s
            wait = min(IDLE_RETRY_S * 2**idle_streak, IDLE_RETRY_MAX_S)
            idle_streak += 1
            self.log("warning", f"no student could run in cycle {self.cycle}; next try in {wait:.0f} s"
                     + (" (doubling while nobody can run)" if idle_streak > 1 else ""))
            await self._idle(wait)

    async def _idle(self, seconds: float) -> None:
        """Wait between cycles, `seconds` of the engine clock at most (never past the session's end);
        a stop or a released student ends the wait early."""
        remaining = self.remaining_s()
        if remaining is not None:
            seconds = min(seconds, remaining)
        self._wake.clear()
        waits = [asyncio.ensure_future(self._stop.wait()), asyncio.ensure_future(self._wake.wait())]
        try:
            await asyncio.wait(waits, timeout=max(0.0, seconds) / self.clock.speed,
                               return_when=asyncio.FIRST_COMPLETED)
        finally:
            for w in waits:
                w.cancel()

    async def _one_cycle(self) -> tuple[int, list[str]]:
        """One pass over the students; returns (students attempted, kinds of the skips)."""
        self.cycle += 1
        n = self.cycle
        started, t0 = self.clock.now(), self.clock.monotonic()
        cycle_id = await self.store.start_cycle(self._session_row(), n, started)
        candidates = [
            Candidate(s.name, s.tag, self.enabled[s.name] and s.name not in self._missing, self._sizes.get(s.name))
            for s in self.students.values()
        ]
        order = self.scheduler.order(candidates, self.latest_profiles)
        self.emit(ev.CycleStarted(ts=self.clock.now(), cycle=n, order=tuple(order)))
        snap = await self._fresh_snapshot()
        by_name = {c.name: c for c in candidates}
        fits = self._fits([by_name[name] for name in order], snap)
        for pos, (name, need, ok, why) in enumerate(fits):
            self.emit(ev.StudentQueued(ts=self.clock.now(), cycle=n, student=name, position=pos + 1,
                                       need_mb=need, fits=ok, reason=why))
        done: set[str] = set()
        self._waiting = [by_name[name] for name in order]
        self._waiting_done = done
        self._fits_shown = tuple((name, ok) for name, _need, ok, _why in fits if self._still_waiting(by_name[name]))
        completed: list[str] = []
        skipped: list[tuple[str, str]] = []
        skip_kinds: list[str] = []
        attempted = 0
        failed: list[str] = []
        tokens = 0
        for c in candidates:
            if not c.enabled:
                why = self._missing.get(c.name) or "disabled by user"
                kind = "missing" if c.name in self._missing else "disabled"
                await self._record_skip(n, c, why, kind)
                skipped.append((c.name, why))
        ran = False  # a run just ended: tell who still fits, on the snapshot the next plan reads
        while True:
            await self._runnable.wait()
            if self._stop.is_set():
                break
            for c in candidates:  # disabled by the user during this cycle, before its turn
                if c.enabled and c.name not in done and not self.enabled[c.name]:
                    done.add(c.name)
                    await self._record_skip(n, c, "disabled by user", "disabled")
                    skipped.append((c.name, "disabled by user"))
            snap = await self._fresh_snapshot()
            if ran:
                self._check_fits(snap, always=True)
                ran = False
            step = self.scheduler.plan(
                candidates, self.latest_profiles, done, snap, self.remaining_s(),
                self._trend(),
            )
            if step is None:
                break
            done.add(step.student)
            c = by_name[step.student]
            if step.action == "skip":
                await self._record_skip(n, c, step.reason, step.kind or "budget", step)
                skipped.append((c.name, step.reason))
                skip_kinds.append(step.kind or "budget")
                continue
            held = self.health.hold(c.name, self.clock.monotonic(), n)
            if held is not None:  # failing: waits its back-off, or sits out its quarantine
                kind, why = held[0], self._held_reason(c.name, *held)
                await self._record_skip(n, c, why, kind, step)
                skipped.append((c.name, why))
                skip_kinds.append(kind)
                continue
            if self.health.is_probe(c.name, n):
                h = self.health.get(c.name)
                self.log("info", f"[{c.name}] quarantined after {h.failures} failures in a row: its probe run now")
            attempted += 1
            run = await self._run_student(n, c, step)
            ran = True
            if run.status == "ok":
                completed.append(c.name)
                tokens += run.tokens or 0
            elif run.status == "skipped":
                skipped.append((c.name, run.reason))
            else:
                failed.append(c.name)
        self._waiting = []
        seconds = self.clock.monotonic() - t0
        await self.store.end_cycle(cycle_id, self.clock.now(), len(completed), len(skipped), tokens, seconds)
        self.emit(
            ev.CycleFinished(
                ts=self.clock.now(), cycle=n, completed=tuple(completed), skipped=tuple(skipped),
                failed=tuple(failed), seconds=seconds, tokens=tokens,
            )
        )
        return attempted, skip_kinds

    def _fits(self, candidates: list[Candidate], snap: HardwareSnapshot) -> list[tuple[str, float | None, bool, str]]:
        """(student, need, fits, reason) for each candidate, judged on `snap`."""
        out = []
        for c in candidates:
            need = self.scheduler.estimate_need(c, self.latest_profiles.get(c.name))
            decision = self.guard.admit(need, snap) if need is not None else None
            why = decision.reason if decision else "no estimate yet"
            out.append((c.name, need, bool(decision and decision.ok), why))
        return out

    def _still_waiting(self, c: Candidate) -> bool:
        return c.enabled and self.enabled[c.name] and c.name not in self._waiting_done and c.name != self.current

    def _check_fits(self, snap: HardwareSnapshot, *, always: bool = False) -> None:
        """Send FitsChecked for the students still waiting in this cycle: after every run
        (`always`), and from the sampler when an answer changed."""
        waiting = [c for c in self._waiting if self._still_waiting(c)]
        if not waiting or self._ours_mb is None or snap.vram_used_mb is None:
            return  # between cycles, or a load/unload in flight: the figure is not settled
        if self._ours_mb:  # our running student's memory is freed before the next one loads
            snap = snap.with_vram(max(0.0, snap.vram_used_mb - self._ours_mb), snap.vram_total_mb)
        fits = self._fits(waiting, snap)
        shown = tuple((name, ok) for name, _need, ok, _why in fits)
        if always or shown != self._fits_shown:
            self._fits_shown = shown
            self.emit(ev.FitsChecked(ts=self.clock.now(), cycle=self.cycle, fits=tuple(fits)))

    def _trend(self) -> float | None:
        """VRAM trend of everything but our students, over the last TREND_WINDOW_S."""
        horizon = self.clock.monotonic() - TREND_WINDOW_S
        return self.scheduler.trend_mb_per_min([p for p in self._vram_window if p[0] >= horizon])

    def _held_reason(self, name: str, kind: str, h: HealthState) -> str:
        """Why a failing student sits out its turn, and what happens next."""
        times = "time" if h.failures == 1 else "times"
        if kind == "backoff":
            left = max(0.0, (h.retry_at or 0.0) - self.clock.monotonic())
            return (f"failed {h.failures} {times} in a row (last: {h.last_error}); waits a {h.backoff_s:g} s back-off "
                    f"({left:.0f} s left), then is tried at its next turn")
        cycles = max(1, (h.probe_cycle or 0) - self.cycle)
        return (f"{h.failures} failures in a row (last: {h.last_error}); one probe run in "
                f"{cycles} {'cycle' if cycles == 1 else 'cycles'}; release it with `u` on its row or "
                f"`rhtui students release {name}`")

    def _health_changed(self, n: int, name: str, before: HealthState, after: HealthState) -> ev.StudentHealthChanged:
        """The event for a change of a student's health after a run."""
        if after.failures == 0:
            what = "its probe run succeeded" if before.health == "quarantined" else "a run succeeded"
            reason = f"{what} after {before.failures} {'failure' if before.failures == 1 else 'failures'} in a row"
        elif after.health == "quarantined":
            probe = f"one probe run in {after.probe_every} {'cycle' if after.probe_every == 1 else 'cycles'}"
            first = "its probe run failed too; " if before.health == "quarantined" else ""
            reason = (f"{first}{after.failures} failures in a row (last: {after.last_error}); skipped from now on, "
                      f"with {probe}; a success releases it, or `u` on its row, or `rhtui students release {name}`")
        else:
            reason = (f"{after.failures} {'failure' if after.failures == 1 else 'failures'} in a row "
                      f"(last: {after.last_error}); tried again after a {after.backoff_s:g} s back-off; "
                      f"quarantined after {self.health.quarantine_after}")
        return ev.StudentHealthChanged(ts=self.clock.now(), cycle=n, student=name, health=after.health,
                                       failures=after.failures, reason=reason)

    async def _record_skip(self, n: int, c: Candidate, reason: str, kind: str, step: RunOrSkip | None = None) -> None:
        now = self.clock.now()
        run = RunRecord(
            session_id=self._session_row(), cycle=n, student=c.name, model=c.model, status="skipped",
            started_at=now, ended_at=now, reason=f"{kind}: {reason}",
        )
        await self.store.record_run(run)
        self.emit(ev.StudentSkipped(ts=now, cycle=n, student=c.name, reason=reason, kind=kind))

    # -- one student ---------------------------------------------------------------------

    async def _run_student(self, n: int, c: Candidate, step: RunOrSkip) -> RunRecord:
        timeout_s = self.settings.budget.timeout_s
        self.current = c.name
        self._cancel = None
        started, t0 = self.clock.now(), self.clock.monotonic()
        self.emit(ev.StudentStarted(ts=started, cycle=n, student=c.name, model=c.model, need_mb=step.need_mb,
                                    timeout_s=timeout_s))
        before = self.latest_snapshot.vram_used_mb if self.latest_snapshot else None
        self._run_power, self._run_peak = [], None
        fields: dict[str, Any] = {}
        status: RunStatus = "ok"
        reason, error = "", ""
        backend_lost = False
        try:
            await self._attempts(n, c, fields, before, timeout_s)
        except TimeoutError:
            if (task := self._gen_task) is not None:  # the try under way (see _attempts)
                task.cancel()
                await asyncio.wait({task})  # let it finish cancelling; a cancel of run() itself still propagates
            status, reason = "timeout", f"no complete proposal within {timeout_s:.0f} s"
            # a server that accepts and then stops answering (hung) is an outage, not this student's
            # failure: to the backend-down wait, instead of every student timing out in turn
            if not await self._reachable():
                status, error, reason, backend_lost = "error", f"{reason}; {self._unreachable}", _BACKEND_LOST, True
        except asyncio.CancelledError:
            if self._cancel is None:  # the orchestrator itself is being cancelled
                if self._gen_task is not None:
                    self._gen_task.cancel()
                raise
            status, reason, error = self._cancel.status, self._cancel.reason, self._cancel.error
        except ModelMissing as exc:  # HTTP 404 only: dropped for the rest of the session
            status, reason, error = "error", f"model missing; fix: `{exc.fix}`", str(exc)
            self._missing[c.name] = str(exc)
        except OutOfMemory as exc:
            status, error = "error", str(exc)
            reason = (
                f"Ollama ran out of memory {'running' if exc.mid_stream else 'loading'} it ({exc.detail}); "
                f"free RAM or VRAM, or lower its num_ctx in {c.name}'s Modelfile; it is tried again next cycle"
            )
        except BackendBusy as exc:
            status, error = "error", str(exc)
            tries = exc.tries
            reason = f"{exc}, {tries} {'try' if tries == 1 else 'tries'}; {c.name} is tried again next cycle"
        except RunnerFailed as exc:
            status, error = "error", str(exc)
            partial = "; the partial proposal is discarded" if exc.mid_stream else ""
            reason = f"{exc}{partial}; {c.name} is tried again next cycle"
        except BackendUnreachable as exc:
            status, reason, error = "error", _BACKEND_LOST, str(exc)
            backend_lost = True
        except BackendError as exc:
            status, error = "error", str(exc)
            # A stream cut mid-way may be Ollama itself going away: ask it, so the run is charged
            # to the outage (BackendDown, wait) instead of the next student failing on a dead host.
            if not await self._reachable():
                reason, backend_lost = _BACKEND_LOST, True
            elif isinstance(exc, StreamBroken):
                reason = f"{exc}; the partial proposal is discarded and {c.name} is tried again next cycle"
            else:
                reason = f"{exc}; {c.name} is tried again next cycle (if it repeats, see Ollama's server log)"
        finally:
            self._gen_task = None
        # with Ollama gone there is nothing to ask (a hung one would hold each call for its timeout):
        # what the run left loaded is unloaded once Ollama is back
        if (status != "ok" or self.settings.keep_alive_s == 0) and not backend_lost:
            self.emit(ev.StudentPhaseChanged(ts=self.clock.now(), cycle=n, student=c.name, phase="unloading"))
            loaded_used = self.latest_snapshot.vram_used_mb if self.latest_snapshot else None
            self._ours_mb = None
            await self._unload(c.model)
            await self._wait_freed(loaded_used, fields.get("vram_mb"))
        self._ours_mb = 0.0 if status != "ok" or self.settings.keep_alive_s == 0 else None
        if status == "timeout":
            self._strays_until = self.clock.monotonic() + max(TREND_WINDOW_S, 2 * timeout_s)
        ended = self.clock.now()
        wall = self.clock.monotonic() - t0
        tokens = fields.get("tokens")
        run = RunRecord(
            session_id=self._session_row(), cycle=n, student=c.name, model=c.model, status=status,
            started_at=started, ended_at=ended, reason=reason, error=error, wall_s=wall,
            vram_peak_mb=self._run_peak, energy_j=_integrate(self._run_power),
            **{k: v for k, v in fields.items() if k != "tokens"}, tokens=tokens,
        )
        if status == "ok" and run.total_s is None:
            run = replace(run, total_s=wall)
        changed = self.health.record(c.name, run, self.clock.monotonic(), n)
        if changed is not None and changed[1].health == "quarantined":
            # the run's own reason said it is tried again next cycle: not while it is quarantined
            note = f"quarantined after {changed[1].failures} failures in a row"
            run = replace(run, reason=_TRIED_AGAIN.sub(note, run.reason))
        try:
            run_id = await self.store.record_run(run)
        except StoreFull as exc:  # the row without its text may still fit: keep what the run cost
            self._on_store_full(exc)
            run = replace(run, proposal="", reason=f"{run.reason}; its text was not kept: {exc}".lstrip("; "))
            run_id = await self.store.record_run(run)
        run = replace(run, id=run_id)
        # what the profile learns from: costs, not prose, and only the window it reads (a week-long
        # session would otherwise keep every proposal in memory)
        history = self._history.setdefault(c.name, [])
        history.append(replace(run, proposal=""))
        del history[:-PROFILE_WINDOW]
        self.latest_profiles[c.name] = StudentProfile.from_runs(c.name, history)
        self._run_power = self._run_peak = None
        self.current = None
        self._totals["runs"] += status == "ok"
        self._totals["tokens"] += (tokens or 0) if status == "ok" else 0
        self.emit(ev.StudentFinished(ts=ended, cycle=n, student=c.name, run=run))
        if changed is not None:
            self.emit(self._health_changed(n, c.name, *changed))
        self._share_profiles(c.name)
        if backend_lost:
            if await self._connect(initial=False):
                await self._unload_students()
            if not self._stop.is_set():
                self._set_state("running" if self._runnable.is_set() else "paused")
        return run

    async def _attempts(
        self, n: int, c: Candidate, fields: dict[str, Any], before: float | None, timeout_s: float
    ) -> None:
        """Run `_generate` under the timeout; while Ollama answers busy (HTTP 503), wait a back-off
        on the engine clock and try again, up to BUSY_TRIES tries. Each try and each wait is
        `self._gen_task`, so skip, stop and emergency cancel whichever is under way; a try that is
        answered busy started nothing in Ollama, and each try has the whole timeout."""
        delay, most = BUSY_RETRY_S
        for attempt in range(1, BUSY_TRIES + 1):
            t0 = self.clock.monotonic()
            self._gen_task = asyncio.ensure_future(self._generate(n, c, fields, before, t0, timeout_s))
            try:
                await asyncio.wait_for(asyncio.shield(self._gen_task), timeout_s / self.clock.speed)
                return
            except BackendBusy as exc:
                if attempt == BUSY_TRIES or self._stop.is_set():
                    exc.tries = attempt
                    raise
                fields.clear()
                self._gen_task = asyncio.ensure_future(self.clock.sleep(delay))
                self.log("warning", f"[{c.name}] {exc}; try {attempt + 1} of {BUSY_TRIES} in {delay:g} s")
                await asyncio.shield(self._gen_task)
                delay = min(delay * 2, most)

    async def _generate(
        self, n: int, c: Candidate, fields: dict[str, Any], before: float | None, t0: float, timeout_s: float
    ) -> None:
        """Load, measure, stream. Fills `fields` as it goes, so a cancelled run keeps what it had."""
        keep_alive = max(self.settings.keep_alive_s, timeout_s * 2)
        self.emit(ev.StudentPhaseChanged(ts=self.clock.now(), cycle=n, student=c.name, phase="loading"))
        self._ours_mb = None
        load_t0 = self.clock.monotonic()
        # No options on either call (the model's own parameters apply), so Ollama never reloads the
        # model between preload and generate.
        reported = await self.backend.preload(c.model, None, keep_alive)
        fields["load_s"] = reported if reported else self.clock.monotonic() - load_t0
        key = model_key(c.model)
        for m in await self.backend.ps():
            if model_key(m.name) == key:
                fields["vram_mb"] = m.vram_mb
        self._ours_mb = fields.get("vram_mb")
        after = await self._fresh_snapshot()
        if before is not None and after.vram_used_mb is not None:
            fields["vram_delta_mb"] = after.vram_used_mb - before
        self.emit(ev.StudentPhaseChanged(ts=self.clock.now(), cycle=n, student=c.name, phase="running"))
        prompt = self.prompts.next_for(c.name)
        parts: list[str] = []
        size = chunks = 0
        gen_t0 = self.clock.monotonic()
        last_progress = 0.0
        loop = asyncio.get_running_loop()
        async for chunk in self.backend.generate(c.model, prompt, None, keep_alive):
            if chunk.text and size < PROPOSAL_CAP_CHARS:  # the text kept stops at the cap, mid-chunk if need be
                parts.append(chunk.text[: PROPOSAL_CAP_CHARS - size])
                size += len(parts[-1])
            chunks += 1
            # Ollama streams one token a chunk; a server that batches (the simulator at high speed)
            # is estimated from the text (~4 characters a token). The final count is Ollama's own.
            fields["tokens"] = max(chunks, round(size / 4))
            if chunk.done:
                fields.update(
                    prompt_s=chunk.prompt_s, eval_s=chunk.eval_s, prompt_tokens=chunk.prompt_tokens,
                    tokens=chunk.eval_tokens if chunk.eval_tokens is not None else fields["tokens"],
                    total_s=(fields.get("load_s") or 0.0) + (chunk.total_s or 0.0),
                )
                if chunk.eval_tokens and chunk.eval_s:
                    fields["tok_per_s"] = chunk.eval_tokens / chunk.eval_s
                break
            now = loop.time()
            if now - last_progress >= PROGRESS_EVERY_S:
                last_progress = now
                elapsed = self.clock.monotonic() - gen_t0
                self.emit(
                    ev.TokensProgress(
                        ts=self.clock.now(), cycle=n, student=c.name, tokens=fields["tokens"],
                        elapsed_s=self.clock.monotonic() - t0,
                        tok_per_s=fields["tokens"] / elapsed if elapsed > 0 else None, timeout_s=timeout_s,
                    )
                )
            fields["proposal"] = "".join(parts)
        fields["proposal"] = "".join(parts)

    async def _unload(self, model: str) -> None:
        """Unload and wait until Ollama no longer lists the model: Ollama answers keep_alive=0
        at once and frees the memory a moment later, and the next admit must see it free."""
        try:
            await self.backend.unload(model)
            key = model_key(model)
            deadline = self.clock.monotonic() + UNLOAD_WAIT_S
            while any(model_key(m.name) == key for m in await self.backend.ps()):
                if self.clock.monotonic() >= deadline:
                    self.log("warning", f"{model} is still listed by Ollama after unload")
                    return
                await asyncio.sleep(self._unload_poll_s())
        except BackendError as exc:
            self.log("warning", f"could not unload {model}: {exc}")

    async def _wait_freed(self, loaded_used: float | None, model_mb: float | None) -> None:
        """After an unload, wait (up to UNLOAD_WAIT_S on the engine clock) until the card shows the
        memory released, so the next admit sees it free and the VRAM trend is not fooled by memory
        still being freed. It may never show: the reading before was capped at the card's size, or
        another process took the memory meanwhile; the bound is what ends the wait then."""
        if loaded_used is None or not model_mb:
            return
        deadline = self.clock.monotonic() + UNLOAD_WAIT_S
        while True:
            snap = await self._fresh_snapshot()
            if snap.vram_used_mb is None or snap.vram_used_mb <= loaded_used - 0.8 * model_mb:
                return
            if self.clock.monotonic() >= deadline:
                return
            await asyncio.sleep(self._unload_poll_s())

    def _unload_poll_s(self) -> float:
        """Real seconds between polls while waiting for an unload: a tenth of the wait, at most 50 ms."""
        return max(0.001, min(UNLOAD_POLL_S, UNLOAD_WAIT_S / self.clock.speed / 10))

    async def _unload_students(self, *, everything: bool = False) -> None:
        """Unload every student model Ollama holds (shutdown), or in an emergency (`everything`)
        every model /api/ps shows resident, ours or not: Ollama keys a runner by its weights file,
        so a student may be resident under another name that shares its weights. The running
        student's model is unloaded too, listed or not; each name at most once."""
        ours = {model_key(s.tag) for s in self.students.values()}
        try:
            listed = [m.name for m in await self.backend.ps()]
        except BackendError:
            listed = []
        names = [name for name in listed if everything or model_key(name) in ours]
        if everything and self.current is not None and self.current in self.students:
            names.append(self.students[self.current].tag)
        seen: set[str] = set()
        for name in names:
            if model_key(name) not in seen:
                seen.add(model_key(name))
                await self._unload(name)

    # -- sampling, budget and emergency --------------------------------------------------

    async def _gpu_name(self) -> str | None:
        """The card's name for the session's row (a watcher shows it; samples do not repeat it)."""
        try:
            return (await self.probe.sample()).gpu_name
        except Exception:  # a probe that fails here fails again, and is reported, in the sampler
            return None

    async def _fresh_snapshot(self) -> HardwareSnapshot:
        async with self._sample_lock:
            snap = await self.probe.sample()
            listed: list[LoadedModel] | None = None
            watch_strays = self._strays_until is not None and self.clock.monotonic() < self._strays_until
            if not self.probe.has_vram or watch_strays:
                try:
                    listed = await self.backend.ps()
                except BackendError:
                    listed = None
            if not self.probe.has_vram and listed is not None:
                snap = snap.with_vram(sum(m.vram_mb or 0.0 for m in listed), self.settings.gpu_total_mb)
            self.latest_snapshot = snap
            if snap.vram_used_mb is not None and self._ours_mb is not None:
                ours = self._ours_mb
                if listed is not None:  # every student model resident is ours, not only the running one
                    keys = {model_key(s.tag) for s in self.students.values()}
                    ours = max(ours, sum(m.vram_mb or 0.0 for m in listed if model_key(m.name) in keys))
                self._vram_window.append((self.clock.monotonic(), snap.vram_used_mb - ours))
                if self._run_peak is not None or self._run_power is not None:
                    self._run_peak = max(self._run_peak or 0.0, snap.vram_used_mb)
            if self._run_power is not None and snap.power_w is not None:
                self._run_power.append((self.clock.monotonic(), snap.power_w))
            return snap

    async def _sample_loop(self) -> None:
        interval = self.settings.sample_interval_s
        loop = asyncio.get_running_loop()
        ticks = 0
        while True:
            t0 = loop.time()
            try:
                snap = await self._fresh_snapshot()
                if self.store_full is None:
                    await self.store.add_snapshot(snap, self.session_id)
                source = "probe" if self.probe.has_vram else "ollama-ps"
                self.emit(ev.HardwareSampled(ts=snap.ts, snapshot=snap, vram_source=source))
                await self._watch_budget(snap)
                self._check_fits(snap)
                ticks += 1
                if self.store_full is None:
                    await self._take_controls()  # keys from `rhtui watch`, within a second
                if ticks % 2 == 0 and self.store_full is None:  # samples reach the database (and a watcher)
                    await self.store.flush()  # every two ticks
            except asyncio.CancelledError:
                raise
            except StoreFull as exc:
                self._on_store_full(exc)
            except Exception as exc:  # a bad sample must not end the session
                self.log("warning", f"hardware sample failed: {exc!r}")
            # the next sample is scheduled when this one finished: samples never overlap
            await asyncio.sleep(max(0.0, interval - (loop.time() - t0)))

    async def _watch_budget(self, snap: HardwareSnapshot) -> None:
        zone = self.guard.zone(snap)
        if self.state == "emergency":
            if self._emergency_manual or self.settings.budget.cooldown_s <= 0:
                return
            if self.guard.may_resume(snap):
                now = self.clock.monotonic()
                self._calm_since = self._calm_since if self._calm_since is not None else now
                if now - self._calm_since >= self.settings.budget.cooldown_s:
                    self._leave_emergency(
                        f"VRAM back under the limit for {self.settings.budget.cooldown_s:.0f} s", by_user=False
                    )
            else:
                self._calm_since = None
            return
        if zone == "emergency" and self.state in ("running", "paused"):
            await self._enter_emergency(
                f"VRAM above {100 * self.settings.budget.emergency_fraction:.0f} % of the card", snap
            )
            return
        if zone != self._last_zone and zone in ("warning", "limit") and snap.vram_used_mb is not None:
            limit = f"above the {100 * self.settings.budget.max_fraction:.0f} % limit"
            msg = "near the limit" if zone == "warning" else limit
            self.emit(ev.BudgetAlarm(ts=snap.ts, level="warning" if zone == "warning" else "error",
                                     used_mb=snap.vram_used_mb, total_mb=snap.vram_total_mb or 0.0, message=msg))
        self._last_zone = zone

    async def _enter_emergency(self, reason: str, snap: HardwareSnapshot | None) -> None:
        if self.state in ("emergency", "stopping", "finished"):
            return
        self._paused_before_emergency = self.state == "paused"
        self._runnable.clear()
        self._set_state("emergency", reason)
        self._calm_since = None
        self.emit(ev.EmergencyStop(ts=self.clock.now(), used_mb=snap.vram_used_mb if snap else None,
                                   total_mb=snap.vram_total_mb if snap else None, reason=reason,
                                   manual=self._emergency_manual))
        if self.current is not None:
            self._cancel_current("emergency", reason)
        await self._unload_students(everything=True)

    def _leave_emergency(self, reason: str, *, by_user: bool = True) -> None:
        self._emergency_manual = False
        self._calm_since = None
        self._last_zone = "ok"
        self.emit(ev.EmergencyCleared(ts=self.clock.now(), reason=reason))
        if self._paused_before_emergency and not by_user:
            # the cooldown ends the emergency, not the user's pause: only resume() does that
            self._set_state("paused", f"{reason}; still paused by user")
            return
        self._runnable.set()
        self._set_state("running", reason)

    async def _take_controls(self) -> None:
        if self.session_id is None:
            return
        for _id, command, arg in await self.store.take_controls(self.session_id):
            handler = {
                "pause": self.pause, "resume": self.resume, "toggle_pause": self.toggle_pause,
                "skip": self.skip_current, "emergency": self.emergency_stop,
                "clear_emergency": self.clear_emergency, "stop": self.request_stop,
            }.get(command)
            if handler is not None:
                handler()
            elif command in ("enable", "disable") and arg:
                self.set_enabled(arg, command == "enable")
            elif command == "release" and arg:
                self.release(arg)
            else:
                self.log("warning", f"unknown control {command!r} ignored")

    async def _shutdown(self, reason: str) -> None:
        """Cancel, unload, flush, close the session. Runs whatever happened before."""
        if self.store_full is not None:
            reason = self._stop_reason  # the disk filled up, whatever else was under way
        self._set_state("stopping", reason)
        with contextlib.suppress(Exception):
            await self._unload_students()
        if self._bg:
            await asyncio.gather(*list(self._bg), return_exceptions=True)
        if self.session_id is not None:
            now = self.clock.now()
            self.emit(ev.SessionFinished(ts=now, session_id=self.session_id, cycles=self.cycle,
                                         runs=self._totals["runs"], tokens=self._totals["tokens"], reason=reason))
            await self.alerts.aclose()  # the session's end ran alerts.command: let it finish (bounded)
            if self._bg:
                await asyncio.gather(*list(self._bg), return_exceptions=True)
            if self.store_full is not None:
                self.store.drop_pending()  # the samples would be written first, and fail first
            try:
                try:
                    await self.store.end_session(self.session_id, now, reason)
                except StoreFull as exc:  # once more, with the buffer given up and the pages it freed
                    self._on_store_full(exc)
                    self.store.drop_pending()
                    await self.store.end_session(self.session_id, now, self._stop_reason)
            except Exception as exc:  # the session reads as open; the next start closes it as interrupted
                self.end_error = str(exc)
                self.log("critical", f"could not close session #{self.session_id} in the database ({exc}); "
                         "it reads as running until rhtui next starts on this data dir, which closes it as "
                         "interrupted")
            if self.store_full is None:
                with contextlib.suppress(Exception):
                    await self.store.flush()
        await self.alerts.aclose()
        self._set_state("finished", reason)


_BACKEND_LOST = (f"{BACKEND_LOST_PREFIX}; the engine waits for it to come back (at most until the session ends), "
                 "then goes on")


_TRIED_AGAIN = re.compile(r"\bit is tried again next cycle|\S+ is tried again next cycle")


def _integrate(samples: list[tuple[float, float]] | None) -> float | None:
    """Energy (J) from (t, W) samples by the trapezoid rule."""
    if not samples or len(samples) < 2:
        return None
    return sum((t1 - t0) * (p0 + p1) / 2 for (t0, p0), (t1, p1) in pairwise(samples))
