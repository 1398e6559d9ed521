"""The simulator on a loopback port, served from a thread of its own, so that the `rhtui`
command (which runs its own event loop) can be invoked against it with typer's CliRunner."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner, Result

from rhtui.commands.cli import app
from rhtui.engine.clock import ScaledClock
from rhtui.engine.modelfile import discover_students, load_modelfile
from rhtui.sim.scenario import load_scenario
from rhtui.sim.server import SimServer
from rhtui.sim.world import SimWorld

SPEED = 200.0
STUDENTS = ["rh-alpha", "rh-beta", "rh-gamma", "rh-delta", "rh-epsilon", "rh-zeta"]


@dataclass
class ThreadedSim:
    world: SimWorld
    url: str
    loop: asyncio.AbstractEventLoop

    def call(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """Run `fn` (sync or async) on the simulator's loop and return its result."""

        async def run() -> Any:
            out = fn(*args, **kwargs)
            if asyncio.iscoroutine(out):
                out = await out
            return out

        return asyncio.run_coroutine_threadsafe(run(), self.loop).result(30)

    def requests(self) -> list[dict[str, Any]]:
        return self.call(lambda: [json.loads(json.dumps(r)) for r in self.world.create_requests])


@pytest.fixture
def sim():
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="sim-loop", daemon=True)
    thread.start()

    async def start():
        world = SimWorld(load_scenario("rtx4070s"), ScaledClock(SPEED), seed=3, faults_enabled=False)
        server = SimServer(world, host="127.0.0.1", port=0)
        url = await server.start()
        return world, server, url

    world, server, url = asyncio.run_coroutine_threadsafe(start(), loop).result(30)
    try:
        yield ThreadedSim(world, url, loop)
    finally:
        asyncio.run_coroutine_threadsafe(server.stop(), loop).result(30)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()


@pytest.fixture
def rhtui(tmp_path) -> Callable[..., Result]:
    """Invoke the real `rhtui` command: rhtui("--host", url, "models", "create")."""
    runner = CliRunner()

    def invoke(*args: str, input: str | None = None) -> Result:
        argv = list(args)
        if "--data-dir" not in argv:
            argv = ["--data-dir", str(tmp_path / "data"), *argv]
        # a wide terminal, so that table cells do not wrap the text the tests look for
        return runner.invoke(app, argv, input=input, catch_exceptions=False, env={"COLUMNS": "300"})

    return invoke


@pytest.fixture(scope="session")
def shipped():
    return {s.name: load_modelfile(s.modelfile) for s in discover_students()}


def write_modelfiles(folder: Path, files: dict[str, str]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (folder / f"{name}.Modelfile").write_text(text, encoding="utf-8")
    return folder
