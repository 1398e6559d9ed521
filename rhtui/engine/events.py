"""The typed events the engine emits, on one stream, to every face of the program.

Frozen dataclasses with a timestamp `ts` (the engine's clock). The live
dashboard turns them into Textual messages, `--headless` into log lines, and
`rhtui watch` rebuilds them from the database. High-rate events
(`HardwareSampled`, `TokensProgress`) are marked `high_rate` so a consumer may
collapse a burst into the latest one.

What the `events` table keeps, so that a watcher sees what the live dashboard sees
(`store_every_s` on each class; `StoreCoalescer` applies it):

- every event, with or without a log line (phase changes, queue places, "fits now",
  learned profiles...), including those emitted before the session's row exists (stored
  when it does): `store_every_s = 0`;
- `TokensProgress` (about four a second per run): at most one a second per run, the
  latest held back stored when its second is up, so the last figure is never lost;
  `StudentFinished` carries the final numbers and drops a held one;
- `HardwareSampled`: never here; the samples are rows of `hardware_snapshots`, from
  which the follower rebuilds the event (`store_every_s = None`).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import ClassVar, Literal

from rhtui.engine.hardware import HardwareSnapshot
from rhtui.engine.records import Health, RunKind, RunRecord, StudentStats

Level = Literal["debug", "info", "warning", "error", "critical"]
EngineState = Literal["starting", "running", "paused", "emergency", "backend_down", "stopping", "finished"]
StudentPhase = Literal["loading", "running", "unloading"]


@dataclass(frozen=True, slots=True)
class Event:
    ts: float
    high_rate = False
    store_every_s: ClassVar[float | None] = 0.0
    """How often the `events` table keeps one of these per run: 0 every one, None never."""


@dataclass(frozen=True, slots=True)
class SessionStarted(Event):
    session_id: int
    name: str
    duration_s: float
    """Session length in seconds of the engine clock."""
    backend_host: str
    backend_version: str
    probe: str
    students: tuple[str, ...]
    policy: str
    speed: float = 1.0
    """How much faster than real time the engine clock runs (the simulator's --speed)."""


@dataclass(frozen=True, slots=True)
class HardwareSampled(Event):
    snapshot: HardwareSnapshot
    vram_source: str = "probe"
    """'probe' (the card measured it) or 'ollama-ps' (judged from Ollama's /api/ps)."""
    high_rate = True
    store_every_s: ClassVar[float | None] = None


@dataclass(frozen=True, slots=True)
class StateChanged(Event):
    state: EngineState
    reason: str = ""


@dataclass(frozen=True, slots=True)
class CycleStarted(Event):
    cycle: int
    order: tuple[str, ...]
    question: str = ""
    """The round's research question (every proposer of the cycle answers it)."""
    roles: tuple[tuple[str, str], ...] = ()
    """(student, role) this cycle: proposal, critique, synthesis or judge (a student may hold several
    roles; the first listed is the one the queue shows)."""
    """The students in the order this cycle will try them."""


@dataclass(frozen=True, slots=True)
class StudentQueued(Event):
    cycle: int
    student: str
    position: int
    """1-based place in this cycle's order."""
    need_mb: float | None
    fits: bool
    reason: str = ""


@dataclass(frozen=True, slots=True)
class StudentStarted(Event):
    cycle: int
    student: str
    model: str
    need_mb: float | None
    timeout_s: float
    kind: RunKind = "proposal"


@dataclass(frozen=True, slots=True)
class StudentPhaseChanged(Event):
    cycle: int
    student: str
    phase: StudentPhase


@dataclass(frozen=True, slots=True)
class TokensProgress(Event):
    cycle: int
    student: str
    tokens: int
    elapsed_s: float
    tok_per_s: float | None
    timeout_s: float
    high_rate = True
    store_every_s: ClassVar[float | None] = 1.0


@dataclass(frozen=True, slots=True)
class StudentFinished(Event):
    cycle: int
    student: str
    run: RunRecord
    """The stored run (status ok|timeout|error|aborted|emergency)."""


@dataclass(frozen=True, slots=True)
class StudentSkipped(Event):
    cycle: int
    student: str
    reason: str
    kind: str = "budget"
    """'budget' (does not fit), 'time' (not enough session left), 'trend', 'disabled', 'user', 'missing',
    'backoff' (failed a moment ago: waits its back-off), 'quarantined' (failed too often in a row)."""


@dataclass(frozen=True, slots=True)
class StudentHealthChanged(Event):
    """A student's health changed: a failure (degraded, then quarantined after three in a row), a
    failed probe run of a quarantined student, a success, or a release by a person."""

    cycle: int
    student: str
    health: Health
    failures: int
    """Failures in a row, since its last ok run or its release."""
    reason: str = ""
    """What happened and what happens next, in words."""
    released: bool = False
    """Released by a person (`u` in the queue, `rhtui students release`), not by a run that succeeded."""


@dataclass(frozen=True, slots=True)
class CycleFinished(Event):
    cycle: int
    completed: tuple[str, ...]
    skipped: tuple[tuple[str, str], ...]
    """(student, reason) for each student skipped this cycle."""
    failed: tuple[str, ...]
    seconds: float
    tokens: int


@dataclass(frozen=True, slots=True)
class BudgetAlarm(Event):
    level: Level
    used_mb: float
    total_mb: float
    message: str


@dataclass(frozen=True, slots=True)
class EmergencyStop(Event):
    used_mb: float | None
    total_mb: float | None
    reason: str
    manual: bool = False
    """Stopped by a person (`e`): it clears only by key, never by the cooldown."""


@dataclass(frozen=True, slots=True)
class EmergencyCleared(Event):
    reason: str


@dataclass(frozen=True, slots=True)
class BackendDown(Event):
    host: str
    error: str


@dataclass(frozen=True, slots=True)
class BackendUp(Event):
    host: str
    version: str


@dataclass(frozen=True, slots=True)
class FitsChecked(Event):
    """Whether each student still waiting in this cycle fits the card now.

    Sent after every run and whenever a sample changes an answer (another process took
    or freed VRAM), so "fits now" stays current between cycle starts. The running
    student's own VRAM counts as free: the question is whether it fits once that is unloaded.
    """

    cycle: int
    fits: tuple[tuple[str, float | None, bool, str], ...]
    """(student, need MB, fits, reason) per waiting student."""


@dataclass(frozen=True, slots=True)
class RunScored(Event):
    """A judge (or a panel) scored one answer of the round: a proposal or the synthesis.

    `score` is the rubric's mean (None: the judges' answers were malformed twice and the answer is
    recorded unscored, `reason` says why)."""

    cycle: int
    student: str
    """Whose answer was scored."""
    run_id: int | None
    kind: RunKind
    score: float | None
    scores: dict | None = None
    """{criterion: {"score": float, "reason": str}}"""
    judges: tuple[str, ...] = ()
    reason: str = ""


@dataclass(frozen=True, slots=True)
class Preload(Event):
    """Whether the next student is loaded while the current one writes (overlapped), or after it
    (sequential), and why."""

    cycle: int
    student: str
    """The student that would be preloaded."""
    beside: str | None
    """The student running while it loads (None: nobody was running)."""
    overlapped: bool
    reason: str


@dataclass(frozen=True, slots=True)
class ProfilesUpdated(Event):
    """What the scheduler has learned (all sessions): every student at the start, then the one that just ran."""

    profiles: tuple[StudentStats, ...]


@dataclass(frozen=True, slots=True)
class LogMessage(Event):
    level: Level
    text: str


@dataclass(frozen=True, slots=True)
class SessionFinished(Event):
    session_id: int
    cycles: int
    runs: int
    tokens: int
    reason: str


AlertSeverity = Literal["info", "warning", "error"]


@dataclass(frozen=True, slots=True)
class Alert(Event):
    """Something a person should hear about now (the rules: rhtui/engine/alerts.py). A notification in the
    dashboard, a log line, a row of the events table, and `alerts.command` with it as JSON on stdin."""

    kind: str
    """'vram' (within 5 % of the limit), 'emergency', 'quarantined', 'degraded' (tok/s down against its
    learned profile), 'backend_down', 'temperature', 'session_end'."""
    severity: AlertSeverity
    title: str
    """A few words: a notification's title."""
    message: str
    """What happened, where, and what to do."""
    student: str | None = None
    session: str = ""
    host: str = ""
    """The Ollama the engine talks to."""
    value: float | None = None
    """The figure that raised it, when there is one: VRAM %, °C, tok/s, seconds down."""
    threshold: float | None = None
    """The line it passed, in the same unit."""
    raised_at: float = 0.0
    """Wall-clock time it was raised (epoch seconds): a watcher notifies only alerts raised after it started
    (the engine's `ts` runs ahead of the wall clock in the demo)."""


Listener = Callable[[Event], None]


@dataclass
class EventBus:
    """One stream of events, many listeners. Listeners are plain callables run in order;
    a listener that raises is reported once to the others as a LogMessage, never kills the engine."""

    listeners: list[Listener] = field(default_factory=list)

    def subscribe(self, listener: Listener) -> Callable[[], None]:
        self.listeners.append(listener)

        def unsubscribe() -> None:
            if listener in self.listeners:
                self.listeners.remove(listener)

        return unsubscribe

    def emit(self, event: Event) -> None:
        for listener in list(self.listeners):
            try:
                listener(event)
            except Exception as exc:  # a broken face must not stop the engine
                if not isinstance(event, LogMessage):
                    self.emit(LogMessage(ts=event.ts, level="error", text=f"event listener failed: {exc!r}"))


# -- the events table: what a follower (`rhtui watch`) rebuilds the stream from ----------------


class StoreCoalescer:
    """Which events go to the `events` table, and when (see the module's docstring).

    Pure: the caller passes the time (any monotonic seconds) and does the writing.
    `offer(event, now)` returns the events to store now and, when it held one back, in
    how many seconds to call `due(now)` for it. Throttled events are keyed per run
    (type, cycle, student); a run's finish forgets its keys, so the maps stay small.
    """

    def __init__(self) -> None:
        self._last: dict[tuple, float] = {}
        self._held: dict[tuple, Event] = {}

    @staticmethod
    def _key(event: Event) -> tuple:
        return (type(event).__name__, getattr(event, "cycle", None), getattr(event, "student", None))

    def offer(self, event: Event, now: float) -> tuple[list[Event], float | None]:
        every = type(event).store_every_s
        if isinstance(event, StudentFinished):  # the final figures: nothing held for the run matters now
            for key in [k for k in self._last if k[1:] == (event.cycle, event.student)]:
                self._last.pop(key, None)
                self._held.pop(key, None)
        if every is None:
            return [], None
        if not every:
            return [event], None
        key = self._key(event)
        last = self._last.get(key)
        if last is None or now - last >= every:
            self._last[key] = now
            self._held.pop(key, None)
            return [event], None
        first = key not in self._held
        self._held[key] = event  # the newest replaces an older one held back
        return [], (last + every - now) if first else None

    def due(self, now: float) -> list[Event]:
        """The held-back events whose time has come (the newest of each run)."""
        out = []
        for key, event in list(self._held.items()):
            every = type(event).store_every_s or 0.0
            if now - self._last.get(key, -math.inf) >= every - 1e-6:
                out.append(event)
                self._last[key] = now
                del self._held[key]
        return out

    @property
    def held(self) -> int:
        return len(self._held)


_BY_NAME: dict[str, type[Event]] = {}


def _register() -> None:
    for obj in list(globals().values()):
        if isinstance(obj, type) and issubclass(obj, Event) and obj is not Event:
            _BY_NAME[obj.__name__] = obj


def event_data(event: Event) -> dict:
    """The event's fields as JSON-safe data; a run is stored as its id (the row holds the rest)."""
    from dataclasses import fields

    out: dict = {}
    for f in fields(event):
        value = getattr(event, f.name)
        if isinstance(value, RunRecord):
            out["run_id"] = value.id
        elif isinstance(value, HardwareSnapshot):
            continue  # samples live in hardware_snapshots
        elif isinstance(value, tuple):
            out[f.name] = [_plain(v) for v in value]
        else:
            out[f.name] = value
    return out


def _plain(value: object) -> object:
    if isinstance(value, tuple):
        return list(value)
    if isinstance(value, StudentStats):
        from dataclasses import asdict

        return asdict(value)
    return value


def event_from_data(kind: str, data: dict, run: RunRecord | None = None) -> Event | None:
    """Rebuild a stored event (None for kinds this version does not know or cannot rebuild)."""
    if not _BY_NAME:
        _register()
    cls = _BY_NAME.get(kind)
    if cls is None or cls is HardwareSampled:
        return None
    data = dict(data)
    if "run_id" in data:
        if run is None:
            return None
        data.pop("run_id")
        data["run"] = run
    try:
        if cls is CycleFinished:
            data["skipped"] = tuple(tuple(x) for x in data.get("skipped", ()))
        elif cls is FitsChecked:
            data["fits"] = tuple(tuple(x) for x in data.get("fits", ()))
        elif cls is CycleStarted:
            data["roles"] = tuple(tuple(x) for x in data.get("roles", ()))
        elif cls is ProfilesUpdated:
            data["profiles"] = tuple(StudentStats(**x) for x in data.get("profiles", ()))
        for key in ("order", "completed", "failed", "students", "judges"):
            if key in data and isinstance(data[key], list):
                data[key] = tuple(data[key])
        return cls(**data)
    except TypeError:
        return None
