"""`rhtui watch`: follow a session that another process runs, through the database.

SQLite in WAL mode lets this process read while the engine writes. `WatchedSession`
rebuilds the engine's typed events from the `events` table (each row keeps the
event's fields as JSON; the engine stores every event there, token progress at
most once a second per run, see rhtui/engine/events.py) and the latest hardware
sample from `hardware_snapshots`, and emits them on its own bus — so the dashboard
cannot tell it from a live engine. Its controls have the orchestrator's names; they are written to the
`controls` table, which the running engine polls once a second.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import replace
from typing import cast, get_args

from rhtui.engine import events as ev
from rhtui.engine.clock import Clock
from rhtui.engine.store import Store


class NoSession(Exception):
    """There is no session to follow; str() says which was looked for."""


class WatchedSession:
    """The orchestrator's face for a session run by another process."""

    remote = True
    """Quitting the dashboard stops only the watching, never the session (nothing to confirm)."""

    def __init__(self, store: Store, clock: Clock, *, session_name: str | None = None,
                 interval_s: float = 1.0, bus: ev.EventBus | None = None) -> None:
        self.store = store
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
        if self.session_id is not None:
            task = asyncio.ensure_future(self.store.push_control(self.session_id, command, arg, ts=self.clock.now()))
            task.add_done_callback(lambda t: t.exception())

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

    def emergency_stop(self, reason: str = "emergency stop by user") -> None:
        self._send("emergency")

    def clear_emergency(self) -> None:
        self._send("clear_emergency")

    def request_stop(self, reason: str = "", *, error: str = "") -> None:
        """Stop watching; the session itself goes on (stop it from its own terminal)."""
        self._stop.set()

    # -- following ------------------------------------------------------------------------

    async def find_session(self) -> int:
        info = await self.store.latest_session(self.session_name)
        if info is None:
            which = f"named {self.session_name!r}" if self.session_name else "at all"
            raise NoSession(f"no session {which} in this database yet")
        self.session_id = info.id
        self.gpu_name = (info.meta or {}).get("gpu") or None
        return info.id

    async def poll(self) -> int:
        """Emit what was stored since the last poll; returns how many events."""
        session_id = self.session_id if self.session_id is not None else await self.find_session()
        n = 0
        for row in await self.store.events_since(session_id, self._last_event_id):
            self._last_event_id = row.id
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
        return n

    def _track(self, event: ev.Event) -> None:
        if isinstance(event, ev.StateChanged):
            self.state = event.state
        elif isinstance(event, ev.StudentStarted):
            self.current = event.student
        elif isinstance(event, ev.StudentFinished):
            self.current = None
        elif isinstance(event, ev.SessionStarted):
            self.enabled = {s: True for s in event.students}

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
