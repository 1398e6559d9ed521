"""`rhtui watch`: follow a session that another process runs, through the database.

SQLite in WAL mode lets this process read while the engine writes. `WatchedSession`
rebuilds the engine's typed events from the `events` table (each row keeps the
event's fields as JSON; the engine stores every event there, token progress at
most once a second per run, see rhtui/engine/events.py) and the latest hardware
sample from `hardware_snapshots`, and emits them on its own bus — so the dashboard
cannot tell it from a live engine. Its controls have the orchestrator's names; they are written to the
`controls` table, which the running engine polls once a second.

Given the database's lock file (see rhtui/engine/lock.py), it follows the live session
when none is named (the one whose engine holds the lock, whatever the timestamps say:
a demo's clock runs ahead of the wall's), and it tells a session whose engine is gone:
nothing new for `stale_after_s` and no engine holding the lock for it (or its pid gone)
→ the state "finished" with the reason "stale: the engine stopped writing at HH:MM:SS…".
A session closed meanwhile (by its engine, or by the next engine as interrupted) is
shown finished with the reason its row gives.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import replace
from pathlib import Path
from typing import cast, get_args

from rhtui.engine import events as ev
from rhtui.engine.clock import Clock
from rhtui.engine.lock import Holder, holder_of
from rhtui.engine.store import Store

STALE_AFTER_S = 5.0
"""Real seconds without a new event or sample before a watcher asks whether the engine is gone."""


class NoSession(Exception):
    """There is no session to follow; str() says which was looked for."""


class WatchedSession:
    """The orchestrator's face for a session run by another process."""

    remote = True
    """Quitting the dashboard stops only the watching, never the session (nothing to confirm)."""

    def __init__(self, store: Store, clock: Clock, *, session_name: str | None = None,
                 interval_s: float = 1.0, bus: ev.EventBus | None = None, lock_path: Path | None = None,
                 stale_after_s: float = STALE_AFTER_S) -> None:
        self.store = store
        self.lock_path = lock_path
        """The database's lock file: who runs the live session, and whether its engine is gone."""
        self.stale_after_s = stale_after_s
        self.stale: str | None = None
        """Set when the engine stopped writing and is gone: the reason shown."""
        self._ended = False
        self._last_news = time.monotonic()
        self._last_ts: float | None = None
        self.clock = clock
        self.session_name = session_name
        self.interval_s = interval_s
        self.bus = bus or ev.EventBus()
        self.session_id: int | None = None
        self.state: ev.EngineState = "starting"
        self.current: str | None = None
        self.enabled: dict[str, bool] = {}
        self._last_event_id = 0
        self._last_sample_ts: float | None = None
        self.gpu_name: str | None = None
        """The card's name, from the session's row (samples do not repeat it)."""
        self._stop = asyncio.Event()

    # -- controls: written to the database for the engine to take -------------------------

    def _send(self, command: str, arg: str | None = None) -> None:
        if self.store.read_only:
            self.bus.emit(ev.LogMessage(
                ts=self.clock.now(), level="warning",
                text=f"{command}: not sent: {self.store.path} is read-only here, so keys cannot reach the engine"))
            return
        if self.session_id is not None:
            task = asyncio.ensure_future(self.store.push_control(self.session_id, command, arg, ts=self.clock.now()))
            task.add_done_callback(self._sent)

    def _sent(self, task: asyncio.Task) -> None:
        exc = None if task.cancelled() else task.exception()
        if exc is not None:
            self.bus.emit(ev.LogMessage(ts=self.clock.now(), level="warning",
                                        text=f"a key could not be sent to the engine through {self.store.path}: {exc}"))

    def pause(self) -> None:
        self._send("pause")

    def resume(self) -> None:
        self._send("resume")

    def toggle_pause(self) -> None:
        self._send("toggle_pause")

    def skip_current(self) -> None:
        self._send("skip")

    def set_enabled(self, student: str, enabled: bool) -> None:
        self.enabled[student] = enabled
        self._send("enable" if enabled else "disable", student)

    def release(self, student: str) -> None:
        self._send("release", student)

    def emergency_stop(self, reason: str = "emergency stop by user") -> None:
        self._send("emergency")

    def clear_emergency(self) -> None:
        self._send("clear_emergency")

    def ask(self, question: str, tier: str = "standard") -> None:
        import json

        self._send("ask", json.dumps({"question": question, "tier": tier}))

    def request_stop(self, reason: str = "", *, error: str = "") -> None:
        """Stop watching; the session itself goes on (stop it from its own terminal)."""
        self._stop.set()

    # -- following ------------------------------------------------------------------------

    def live_holder(self) -> Holder | None:
        """The engine holding the database's lock now (None: no engine, or no lock file known)."""
        return holder_of(self.lock_path) if self.lock_path is not None else None

    async def find_session(self) -> int:
        info = None
        live = self.live_holder()
        if live is not None and live.session_id is not None and self.session_name in (None, live.session):
            info = await self.store.get_session(live.session_id)  # the live one, whatever its timestamps
        if info is None:
            info = await self.store.latest_session(self.session_name)
        if info is None:
            which = f"named {self.session_name!r}" if self.session_name else "at all"
            raise NoSession(f"no session {which} in this database yet")
        self.session_id = info.id
        self.gpu_name = (info.meta or {}).get("gpu") or None
        self._last_ts = info.started_at
        self._last_news = time.monotonic()
        return info.id

    async def poll(self) -> int:
        """Emit what was stored since the last poll; returns how many events."""
        session_id = self.session_id if self.session_id is not None else await self.find_session()
        n = 0
        for row in await self.store.events_since(session_id, self._last_event_id):
            self._last_event_id = row.id
            self._last_ts = max(self._last_ts or row.ts, row.ts)
            run = None
            if row.data and "run_id" in row.data:
                run = await self.store.get_run(row.data["run_id"])
            event = ev.event_from_data(row.kind, row.data or {}, run)
            if event is None:
                if not row.message:  # a kind this version cannot rebuild, and no line to show for it
                    continue
                event = ev.LogMessage(ts=row.ts, text=row.message, level=_level(row.level))
            self._track(event)
            self.bus.emit(event)
            n += 1
        snap = await self.store.latest_snapshot(session_id, self._last_sample_ts)
        if snap is not None:
            self._last_sample_ts = snap.ts
            if snap.gpu_name is None and self.gpu_name:
                snap = replace(snap, gpu_name=self.gpu_name)
            # a probe without the card's VRAM ('none': no NVML) is completed from Ollama's /api/ps
            source = "ollama-ps" if snap.source == "none" else "probe"
            self.bus.emit(ev.HardwareSampled(ts=snap.ts, snapshot=snap, vram_source=source))
            self._last_ts = max(self._last_ts or snap.ts, snap.ts)
        if n or snap is not None:
            self._last_news = time.monotonic()
            self.stale = None
        elif not self._ended and self.stale is None and time.monotonic() - self._last_news >= self.stale_after_s:
            await self._check_gone(session_id)
        return n

    async def _check_gone(self, session_id: int) -> None:
        """Nothing new for a while: has the session ended without a word, or is its engine gone?"""
        info = await self.store.get_session(session_id)
        if info is not None and info.ended_at is not None:
            # closed without a SessionFinished stored (a full disk), or stored since: show the row's reason
            cycles, runs, tokens = await self.store.session_totals(session_id)
            event = ev.SessionFinished(ts=info.ended_at, session_id=session_id, cycles=cycles, runs=runs,
                                       tokens=tokens, reason=info.end_reason or "ended")
            self._track(event)
            self.bus.emit(event)
            return
        if self.lock_path is None:
            return  # no way to tell a quiet engine from a dead one
        holder = self.live_holder()
        if holder is None:
            why = f"no engine holds {self.lock_path.name}"
        elif holder.session_id is not None and holder.session_id != session_id:
            why = f"the engine now running ({holder.describe()}) runs another session"
        elif holder.alive() is False:
            why = f"its process (pid {holder.pid}) is gone"
        else:
            return  # its engine is there, just quiet
        at = time.strftime("%H:%M:%S", time.localtime(self._last_ts)) if self._last_ts is not None else "?"
        self.stale = (f"stale: the engine stopped writing at {at} and is gone ({why}); this session is closed as "
                      "interrupted when rhtui next starts on this data dir")
        self.state = "finished"
        self.bus.emit(ev.StateChanged(ts=self.clock.now(), state="finished", reason=self.stale))
        self.bus.emit(ev.LogMessage(ts=self.clock.now(), level="error", text=self.stale))

    def _track(self, event: ev.Event) -> None:
        if isinstance(event, ev.StateChanged):
            self.state = event.state
        elif isinstance(event, ev.StudentStarted):
            self.current = event.student
        elif isinstance(event, ev.StudentFinished):
            self.current = None
        elif isinstance(event, ev.SessionStarted):
            self.enabled = {s: True for s in event.students}
        elif isinstance(event, ev.SessionFinished):
            self._ended = True
            self.current = None

    async def run(self) -> None:
        """Follow until request_stop(); polls never overlap."""
        loop = asyncio.get_running_loop()
        while not self._stop.is_set():
            t0 = loop.time()
            await self.poll()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), max(0.05, self.interval_s - (loop.time() - t0)))


def _level(stored: str) -> ev.Level:
    """A stored level as the event's type; one this version does not know reads as info."""
    for level in get_args(ev.Level):
        if stored == level:
            return cast(ev.Level, level)
    return "info"
