"""Fixtures for the simulator's tests: a world on a fast clock, a server on loopback, a client."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

import ollama
import pytest

from rhtui.engine.clock import ManualClock, ScaledClock
from rhtui.sim.scenario import Scenario, load_scenario
from rhtui.sim.server import SimServer
from rhtui.sim.world import SimWorld


@pytest.fixture(scope="session")
def scenario() -> Scenario:
    return load_scenario("rtx4070s")


@pytest.fixture(scope="session")
def hostile() -> Scenario:
    return load_scenario("rtx4070s-hostile")


@pytest.fixture
def manual_world(scenario: Scenario) -> SimWorld:
    """A world on a ManualClock: time moves only by sleeping or `world.clock.advance()`."""
    return SimWorld(scenario, ManualClock(), seed=7)


@pytest.fixture
def make_world(scenario: Scenario) -> Callable[..., SimWorld]:
    def make(speed: float = 500.0, *, sc: Scenario | None = None, **kw) -> SimWorld:
        return SimWorld(sc or scenario, ScaledClock(speed), seed=kw.pop("seed", 3), **kw)

    return make


@pytest.fixture
async def sim(make_world) -> AsyncIterator[tuple[SimWorld, SimServer, ollama.AsyncClient]]:
    """A world at 200x, its server on 127.0.0.1 and the official client pointed at it."""
    world = make_world(200.0)
    async with SimServer(world) as server:
        client = ollama.AsyncClient(host=server.url)
        try:
            yield world, server, client
        finally:
            await client.close()
