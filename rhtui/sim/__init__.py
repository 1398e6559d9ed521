"""The simulator: a GPU + Ollama world served over Ollama's real HTTP API, on loopback.

    from rhtui.engine.clock import ScaledClock
    from rhtui.sim import SimServer, SimWorld, load_scenario

    world = SimWorld(load_scenario("rtx4070s"), ScaledClock(20), seed=0)
    async with SimServer(world) as server:      # server.url -> "http://127.0.0.1:PORT"
        ...                                      # any Ollama client, e.g. OllamaBackend(server.url)

Never imports Textual (an import-linter contract checks it). Names are imported lazily so
that ``rhtui.sim.scenario`` can be used without loading aiohttp.
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = [
    "FaultPlan",
    "Generation",
    "LogEntry",
    "Runner",
    "Scenario",
    "ScenarioError",
    "SimError",
    "SimModel",
    "SimProbe",
    "SimServer",
    "SimWorld",
    "list_scenarios",
    "load_scenario",
    "serve",
]

_WHERE = {
    "FaultPlan": "faults",
    "Generation": "generation",
    "LogEntry": "world",
    "Runner": "placement",
    "Scenario": "scenario",
    "ScenarioError": "scenario",
    "SimError": "errors",
    "SimModel": "catalog",
    "SimProbe": "probe",
    "SimServer": "server",
    "SimWorld": "world",
    "list_scenarios": "scenario",
    "load_scenario": "scenario",
    "serve": "server",
}


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        return getattr(importlib.import_module(f"{__name__}.{_WHERE[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)
