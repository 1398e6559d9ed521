"""The engine's core: one session on one card, from connecting to Ollama to closing the session.

Connect (and wait while Ollama is down), learn the profiles and the students' Modelfiles, open the
session, sample the hardware once per interval and watch the budget on each sample, enter and
leave emergencies, shut down (cancel, unload, flush, close). Every event goes to `self.bus` and
to the store.

The controls (`rhtui.engine.controls`) and the cycle loop (`rhtui.engine.rounds`) build on it;
`rhtui.engine.orchestrator.Orchestrator` is the whole.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
from collections import deque

from rhtui.engine import events as ev
from rhtui.engine.alerts import AlertRunner
from rhtui.engine.backend import BackendError, BackendUnreachable, LlmBackend, model_key
from rhtui.engine.budget import BudgetGuard
from rhtui.engine.clock import Clock
from rhtui.engine.config import Settings, StudentSpec
from rhtui.engine.ensemble import prompts as pr
from rhtui.engine.ensemble.agenda import Agenda, load_questions
from rhtui.engine.ensemble.round import Round
from rhtui.engine.eventlog import format_event
from rhtui.engine.hardware import HardwareProbe, HardwareSnapshot
from rhtui.engine.records import RunRecord
from rhtui.engine.runs import Preloading, RunExecutor
from rhtui.engine.sampler import BudgetWatch, Sampler
from rhtui.engine.scheduler import AdaptiveScheduler, Candidate, HealthBook, StudentProfile, stats_of
from rhtui.engine.store import Store, StoreFull

PROFILE_WINDOW = 200  # runs per student a learned profile is computed from
BACKEND_RETRY_S = (1.0, 10.0)  # engine-clock seconds between tries while Ollama is down: first, most
PRESESSION_EVENTS_KEPT = 200  # events from before the session's row exists, stored once it does


class EngineCore:
    def __init__(
        self,
        settings: Settings,
        backend: LlmBackend,
        probe: HardwareProbe,
        store: Store,
        clock: Clock,
        *,
        bus: ev.EventBus | None = None,
        agenda: Agenda | None = None,
        retry_backend: bool = True,
        session_seconds: float | None = None,
        only_asks: bool = False,
    ) -> None:
        """`agenda`: the research questions (default: `session.questions`, else the shipped bank);
        `only_asks`: run the rounds of the questions asked (`ask`) and end (the `rhtui ask` command)."""
        self.settings = settings
        self.backend = backend
        self.probe = probe
        self.store = store
        self.clock = clock
        self.bus = bus or ev.EventBus()
        self.agenda = agenda or Agenda(load_questions(settings.session.questions), settings.session.prompt_seed)
        self.only_asks = only_asks
        self.retry_backend = retry_backend
        # Session length on the engine clock: wall-clock minutes, times the clock's speed.
        self.session_seconds = session_seconds or settings.session.duration_min * 60.0 * clock.speed
        self.guard = BudgetGuard(settings.budget)
        # the alert rules see every event emitted (see `emit`); their alerts are events too
        self.alerts = AlertRunner(settings.alerts, self.guard, clock, self.emit, host=backend.host,
                                  session=settings.session.name)
        self.scheduler = AdaptiveScheduler(settings.budget, settings.session, self.guard,
                                           weights=settings.policy.weights)
        self.students: dict[str, StudentSpec] = {s.name: s for s in settings.students}
        self.enabled: dict[str, bool] = {s.name: s.enabled for s in settings.students}
        self.state: ev.EngineState = "starting"
        self.session_id: int | None = None
        self.cycle = 0
        self.latest_profiles: dict[str, StudentProfile] = {}
        # this cycle's students in order, those done, and the last "fits now" sent (FitsChecked)
        self._waiting: list[Candidate] = []
        self._waiting_done: set[str] = set()
        self._fits_shown: tuple[tuple[str, bool], ...] = ()
        self._stop_reason = "stopped by user"
        self.backend_version = "?"
        self._history: dict[str, list[RunRecord]] = {}
        self._sizes: dict[str, float | None] = {}
        self._missing: dict[str, str] = {}
        # what /api/show and /api/tags say of each student: its system prompt, num_ctx and num_predict,
        # its digest (a run records them: its provenance)
        self._systems: dict[str, str | None] = {}
        self._ctx: dict[str, tuple[int | None, int | None]] = {}
        self._digests: dict[str, str | None] = {}
        self._chars = pr.CharsPerToken()
        self.sampler = Sampler(probe, backend, clock, student_models=[s.tag for s in settings.students],
                               gpu_total_mb=settings.gpu_total_mb)
        self.runs = RunExecutor(settings, backend, clock, self.sampler, self.emit, version=lambda: self.backend_version)
        self.watch = BudgetWatch(settings.budget, self.guard, clock.monotonic)
        self._said_unmeasured = False  # "no overlap: VRAM is not measured" is said once a session
        self._pre: Preloading | None = None
        """The next student, loading (or loaded) while the current one writes."""
        self._previous: tuple[RunRecord | None, RunRecord | None] = (None, None)
        """The last round's synthesis and critique: the next round's proposers are given them."""
        self.last_round: Round | None = None
        """The last research round run (`rhtui ask` prints its synthesis)."""
        self._asks: deque[tuple[str, str]] = deque()
        self._runnable = asyncio.Event()
        self._runnable.set()
        self._stop = asyncio.Event()
        self._emergency_manual = False
        self._paused_before_emergency = False
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
        """A background coroutine or task of the engine's: awaited at shutdown; a full disk in it stops the
        session (`_bg_done`)."""
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
                    "kind": "ask" if self.only_asks else "session",
                    "preload": self.settings.session.preload,
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

    @property
    def current(self) -> str | None:
        """The student writing now, if any."""
        return self.runs.current

    @property
    def latest_snapshot(self) -> HardwareSnapshot | None:
        return self.sampler.latest

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

    async def _learn(self) -> None:
        """Learned profiles from every past session; model sizes and missing models from Ollama."""
        self._history = {k: [r for r in v if r.kind != "judge"]
                         for k, v in (await self.store.recent_runs_by_student(PROFILE_WINDOW)).items()}
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
        for spec in self.students.values():
            info = models.get(model_key(spec.tag))
            self._digests[spec.name] = info.digest if info else None
            if info is None:
                continue
            try:
                details = await self.backend.show(spec.tag)
            except BackendError:
                continue
            self._systems[spec.name] = details.system
            self._ctx[spec.name] = pr.student_num_ctx(details.parameters)

    async def _unload_students(self, *, everything: bool = False, also: str | None = None) -> None:
        """Unload every student model Ollama holds (shutdown), or in an emergency (`everything`)
        every model /api/ps shows resident, ours or not: Ollama keys a runner by its weights file,
        so a student may be resident under another name that shares its weights. The running
        student's model is unloaded too, listed or not, and `also` (a preloaded student's); each name at most once."""
        ours = {model_key(s.tag) for s in self.students.values()}
        try:
            listed = [m.name for m in await self.backend.ps()]
        except BackendError:
            listed = []
        names = [name for name in listed if everything or model_key(name) in ours]
        if everything and self.current is not None and self.current in self.students:
            names.append(self.students[self.current].tag)
        if also is not None:
            names.append(also)
        seen: set[str] = set()
        for name in names:
            if model_key(name) not in seen:
                seen.add(model_key(name))
                await self.runs.unload(name)
        for student in list(self.sampler.resident):
            self.sampler.settled(student, None)

    # -- sampling, budget and emergency --------------------------------------------------

    async def _gpu_name(self) -> str | None:
        """The card's name for the session's row (a watcher shows it; samples do not repeat it)."""
        try:
            return (await self.probe.sample()).gpu_name
        except Exception:  # a probe that fails here fails again, and is reported, in the sampler
            return None

    async def _fresh_snapshot(self) -> HardwareSnapshot:
        return await self.sampler.snapshot()

    async def _sample_loop(self) -> None:
        interval = self.settings.sample_interval_s
        loop = asyncio.get_running_loop()
        ticks = 0
        while True:
            t0 = loop.time()
            try:
                snap = await self.sampler.snapshot()
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
        result = self.watch.check(snap, in_emergency=self.state == "emergency", manual=self._emergency_manual,
                                  active=self.state in ("running", "paused"))
        if result.action == "leave":
            self._leave_emergency(result.message, by_user=False)
        elif result.action == "enter":
            await self._enter_emergency(result.message, snap)
        elif result.action == "alarm" and snap.vram_used_mb is not None:
            self.emit(ev.BudgetAlarm(ts=snap.ts, level=result.level, used_mb=snap.vram_used_mb,
                                     total_mb=snap.vram_total_mb or 0.0, message=result.message))

    async def _enter_emergency(self, reason: str, snap: HardwareSnapshot | None) -> None:
        if self.state in ("emergency", "stopping", "finished"):
            return
        self._paused_before_emergency = self.state == "paused"
        self._runnable.clear()
        self._set_state("emergency", reason)
        self.watch.calm_since = None
        self.emit(ev.EmergencyStop(ts=self.clock.now(), used_mb=snap.vram_used_mb if snap else None,
                                   total_mb=snap.vram_total_mb if snap else None, reason=reason,
                                   manual=self._emergency_manual))
        if self.current is not None:
            self.runs.cancel("emergency", reason)
        pre, self._pre = self._pre, None  # a student loading beside the running one is unloaded too
        if pre is not None and not pre.task.done():
            pre.task.cancel()
        await self._unload_students(everything=True, also=pre.model if pre else None)

    def _leave_emergency(self, reason: str, *, by_user: bool = True) -> None:
        self._emergency_manual = False
        self.watch.reset()
        self.emit(ev.EmergencyCleared(ts=self.clock.now(), reason=reason))
        if self._paused_before_emergency and not by_user:
            # the cooldown ends the emergency, not the user's pause: only resume() does that
            self._set_state("paused", f"{reason}; still paused by user")
            return
        self._runnable.set()
        self._set_state("running", reason)

    # -- what the cycle loop and the controls provide (rhtui.engine.rounds, rhtui.engine.controls) ----

    async def _cycles(self) -> str:
        """Run the cycles until the session ends; returns why it ended."""
        raise NotImplementedError

    def _check_fits(self, snap: HardwareSnapshot, *, always: bool = False) -> None:
        """Tell the faces who of the waiting students fits the card now."""

    async def _take_controls(self) -> None:
        """Apply the controls another process wrote to the store."""

    def request_stop(self, reason: str = "stopped by user", *, error: str = "") -> None:
        """Stop gracefully (the controls provide it; the core calls it on a full disk or an outage)."""
        raise NotImplementedError

    async def _shutdown(self, reason: str) -> None:
        """Cancel, unload, flush, close the session. Runs whatever happened before."""
        if self.store_full is not None:
            reason = self._stop_reason  # the disk filled up, whatever else was under way
        self._set_state("stopping", reason)
        pre, self._pre = self._pre, None
        if pre is not None and not pre.task.done():
            pre.task.cancel()
        with contextlib.suppress(Exception):
            await self._unload_students(everything=False, also=pre.model if pre else None)
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


