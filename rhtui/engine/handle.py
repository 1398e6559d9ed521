"""`EngineHandle`: what a face of the program (the dashboard, the headless log, the watcher) may
call on a running engine, and nothing more.

Two engines have it: `rhtui.engine.orchestrator.Orchestrator` runs the session in this process;
`rhtui.engine.watch.WatchedSession` follows one that another process runs, rebuilding its
events from the database and writing the controls to it. A face holds either through this
type and cannot tell them apart.

Events flow out through `bus` (subscribe a listener: ``handle.bus.subscribe(fn)`` returns the
unsubscribe function); controls flow in as plain synchronous calls, safe from the event loop
the engine runs on; they return at once and the engine answers with events
(`rhtui.engine.events.StateChanged`, `EmergencyStop`, …). `state`, `current` and `enabled`
are the engine's own view, for a face that starts after the session did.

A face may also look for ``remote`` (true on a watched session, absent on the orchestrator): quitting a
remote face stops only the watching, never the session.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol, runtime_checkable

from rhtui.engine.events import EngineState, EventBus

__all__ = ["EngineHandle"]


@runtime_checkable
class EngineHandle(Protocol):
    """A running engine as a face sees it (see the module docstring)."""

    @property
    def bus(self) -> EventBus:
        """The one event stream every face reads."""
        ...

    @property
    def state(self) -> EngineState:
        ...

    @property
    def current(self) -> str | None:
        """The student running now, if any."""
        ...

    @property
    def enabled(self) -> Mapping[str, bool]:
        """Which students take their turns (a key toggles one from its next turn)."""
        ...

    async def run(self) -> None:
        """Run (or follow) the session until it ends or `request_stop` is called."""
        ...

    def pause(self) -> None:
        """No new student starts until `resume`; the running one finishes."""
        ...

    def resume(self) -> None:
        ...

    def toggle_pause(self) -> None:
        ...

    def skip_current(self) -> None:
        """Cancel the running student: unloaded, recorded skipped."""
        ...

    def set_enabled(self, student: str, enabled: bool) -> None:
        ...

    def release(self, student: str) -> None:
        """Release a failing (quarantined) student: healthy again, it runs at its next turn."""
        ...

    def emergency_stop(self, reason: str = ...) -> None:
        """Abort the running student, unload, pause until cleared."""
        ...

    def clear_emergency(self) -> None:
        """Resume after an emergency (once VRAM is back under the limit)."""
        ...

    def ask(self, question: str, tier: str = "standard") -> None:
        """A person's own question: its round (tier quick, standard or deep) runs next, between cycles."""
        ...

    def request_stop(self, reason: str = ..., *, error: str = ...) -> None:
        """Stop gracefully: cancel, record, unload, flush; `run` returns. `error`: the stop comes
        from a failure (e.g. of the dashboard) and the running proposal records it."""
        ...
