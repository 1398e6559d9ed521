"""The simulator on a loopback port, and the real engine talking to it over HTTP
through the official `ollama` client."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pytest

from rhtui.engine import events as ev
from rhtui.engine.backend import OllamaBackend
from rhtui.engine.clock import ScaledClock
from rhtui.engine.config import Settings
from rhtui.engine.orchestrator import Orchestrator
from rhtui.engine.store import Store
from rhtui.sim.probe import SimProbe
from rhtui.sim.scenario import load_scenario
from rhtui.sim.server import SimServer
from rhtui.sim.world import SimWorld

SPEED = 50.0  # a 28 s proposal takes ~0.6 s; the 60 s timeout is 1.2 s of real time


@dataclass
class Sim:
    world: SimWorld
    server: SimServer
    url: str
    clock: ScaledClock


@dataclass
class Recorder:
    events: list = field(default_factory=list)

    def __call__(self, event) -> None:
        if not event.high_rate:
            self.events.append(event)

    def of(self, kind):
        return [e for e in self.events if isinstance(e, kind)]


class Timeline:
    """Every event but the high-rate ones, with the world's elapsed seconds when it was emitted."""

    def __init__(self, world) -> None:
        self.world = world
        self.items: list[tuple[float, ev.Event]] = []

    def __call__(self, event: ev.Event) -> None:
        if not event.high_rate:
            self.items.append((self.world.elapsed(), event))

    def of(self, kind) -> list[tuple[float, ev.Event]]:
        return [(t, e) for t, e in self.items if isinstance(e, kind)]

    def first(self, kind, after: float = -1.0) -> tuple[float, ev.Event]:
        return next((t, e) for t, e in self.of(kind) if t >= after)

    def index(self, event: ev.Event) -> int:
        return next(i for i, (_, e) in enumerate(self.items) if e is event)


def engine_on_sim(sim: Sim, store: Store, data_dir: Path, *, budget: dict | None = None,
                  session: dict | None = None, retry_backend: bool = True, session_seconds: float | None = None,
                  **overrides) -> tuple[Orchestrator, Recorder, OllamaBackend]:
    """An Orchestrator on the simulator over HTTP, no cooldown unless `budget` sets one, its events
    recorded: (orchestrator, recorder, backend); the caller closes the backend."""
    # the tests of the engine's mechanics run six proposers a cycle (no critique, synthesis or judge);
    # those of the research round pass ensemble={"mode": "full"}
    overrides.setdefault("ensemble", {"mode": "proposals-only"})
    settings = Settings(
        ollama_host=sim.url, data_dir=data_dir, sample_interval_s=0.05,
        budget={"cooldown_s": 0, **(budget or {})}, session=session or {}, **overrides,
    )
    backend = OllamaBackend(settings.ollama_host)
    orch = Orchestrator(settings, backend, SimProbe(sim.world), store, sim.clock, retry_backend=retry_backend,
                        session_seconds=session_seconds)
    rec = Recorder()
    orch.bus.subscribe(rec)
    return orch, rec, backend


@pytest.fixture
def scenario_name():
    return "rtx4070s"


@pytest.fixture
def sim_speed():
    return SPEED


@pytest.fixture
async def sim(scenario_name, sim_speed):
    clock = ScaledClock(sim_speed)
    world = SimWorld(load_scenario(scenario_name), clock, seed=7)
    world.faults_enabled = False
    server = SimServer(world, host="127.0.0.1", port=0)
    url = await server.start()
    try:
        yield Sim(world, server, url, clock)
    finally:
        await server.stop()


@pytest.fixture
async def store(tmp_path):
    s = await Store.open(tmp_path / "rhtui.db")
    try:
        yield s
    finally:
        await s.close()


@pytest.fixture
async def make_engine(sim, store, tmp_path):
    """Build an Orchestrator on the simulator; returns (orchestrator, recorder)."""
    backends: list[OllamaBackend] = []

    def build(**overrides):
        session = {"name": "it", "max_cycles": 1, "prompt_seed": 1, **overrides.pop("session", {})}
        orch, rec, backend = engine_on_sim(sim, store, tmp_path, session=session, retry_backend=False, **overrides)
        backends.append(backend)
        return orch, rec

    yield build
    for b in backends:
        await b.close()


def spike_when_running(sim, student: str = "rh-alpha", fraction: float = 0.97, seconds: float = 10):
    """An event subscriber: once `student` is running, another process takes the card to `fraction`
    of its total for `seconds` simulated seconds."""
    total = sim.world.scenario.gpu.total_mb

    def spike(event) -> None:
        if isinstance(event, ev.StudentPhaseChanged) and event.phase == "running" and event.student == student:
            sim.world.add_external(fraction * total - sim.world.vram_used_mb(), seconds)

    return spike
