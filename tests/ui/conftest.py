"""Fixtures for the dashboard's tests: a fixed clock and time zone, no cursor blink, no
config discovery, seeded settings, and a helper that builds the app without an engine."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable

import pytest

from rhtui.engine.clock import ManualClock
from rhtui.engine.config import Settings
from rhtui.engine.events import Event
from rhtui.tui.app import RhtuiApp, make_app
from tests.ui.fakes import T0, FakeOrchestrator, learned_profiles


@pytest.fixture(autouse=True)
def _deterministic(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    """UTC clock display, no NO_COLOR/OLLAMA_HOST/RHTUI_* from the developer's shell, no blink."""
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    for name in list(os.environ):
        if name.startswith("RHTUI_") or name in ("NO_COLOR", "OLLAMA_HOST"):
            monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    from textual.widgets import Input

    monkeypatch.setattr(Input, "_toggle_cursor", lambda self: None)


@pytest.fixture
def settings(tmp_path) -> Settings:
    return Settings(data_dir=tmp_path / "data")


AppFactory = Callable[..., RhtuiApp]


@pytest.fixture
def make_ui(settings: Settings) -> AppFactory:
    """make_ui(events=..., now=..., orchestrator=None, start_engine=False, profiles=True) -> app.

    The events are folded in before the first frame (a seeded state); `now` fixes the clock.
    Without an orchestrator a FakeOrchestrator is attached (not run), so the controls are live.
    """

    def factory(
        events: Iterable[Event] = (),
        *,
        now: float = T0,
        orchestrator=None,
        start_engine: bool = False,
        profiles: bool = True,
        settings_: Settings | None = None,
    ) -> RhtuiApp:
        clock = ManualClock(start=now)
        if orchestrator is None:
            orchestrator = FakeOrchestrator()
        app = make_app(settings_ or settings, None, None, None, clock, orchestrator=orchestrator,
                       start_engine=start_engine)
        seeded = list(events)
        if profiles:
            app.model.set_profiles(learned_profiles())
        for e in seeded:
            app.model.apply(e)
        return app

    return factory
