"""`EngineHandle`: the orchestrator, the watcher's session and the dashboard tests' fake engine
all offer what a face may call (checked by mypy through the annotated assignments, and at run
time through the runtime-checkable Protocol)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from rhtui.engine.backend import OllamaBackend
from rhtui.engine.clock import ManualClock
from rhtui.engine.config import Settings
from rhtui.engine.handle import EngineHandle
from rhtui.engine.hardware import NoGpuProbe
from rhtui.engine.orchestrator import Orchestrator
from rhtui.engine.store import Store
from rhtui.engine.watch import WatchedSession
from tests.ui.fakes import FakeOrchestrator


def missing(engine: object) -> list[str]:
    """The members of EngineHandle that `engine` lacks."""
    return [name for name in dir(EngineHandle) if not name.startswith("_") and not hasattr(engine, name)]


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    s = await Store.open(tmp_path / "rhtui.db")
    try:
        yield s
    finally:
        await s.close()


async def test_the_orchestrator_is_an_engine_handle(store: Store, tmp_path: Path) -> None:
    backend = OllamaBackend("http://127.0.0.1:9")  # never called: the engine is only built
    try:
        clock = ManualClock()
        handle: EngineHandle = Orchestrator(Settings(data_dir=tmp_path), backend, NoGpuProbe(clock=clock.now),
                                            store, clock)
        assert isinstance(handle, EngineHandle), missing(handle)
    finally:
        await backend.close()


async def test_the_watchers_session_is_an_engine_handle(store: Store) -> None:
    handle: EngineHandle = WatchedSession(store, ManualClock())
    assert isinstance(handle, EngineHandle), missing(handle)


def test_the_dashboard_tests_fake_engine_is_an_engine_handle() -> None:
    fake = FakeOrchestrator()
    assert isinstance(fake, EngineHandle), missing(fake)
