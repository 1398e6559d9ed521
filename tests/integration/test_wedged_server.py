"""A wedged Ollama — it accepts connections, then stops answering mid-session — is the
backend-down state (one BackendDown, then a wait), not every student timing out in turn: the
student that was running is recorded as lost to the outage, and the session goes on once Ollama
answers again. Over real loopback HTTP: the simulator behind a TCP relay that can be wedged."""

from __future__ import annotations

import asyncio
from urllib.parse import urlsplit

import pytest

from rhtui.engine import events as ev
from rhtui.engine.backend import OllamaBackend
from rhtui.engine.config import Settings
from rhtui.engine.orchestrator import Orchestrator
from rhtui.sim.probe import SimProbe
from tests.fault_servers import TcpPlug
from tests.helpers import until_async

pytestmark = pytest.mark.integration


@pytest.fixture
def sim_speed():
    return 50.0  # the 60 s proposal timeout is 1.2 s of real time


async def test_a_wedged_server_is_the_backend_down_state(sim, store, tmp_path):
    target = urlsplit(sim.url)
    plug = TcpPlug((target.hostname, target.port))
    url = await plug.start()
    backend = OllamaBackend(url, request_timeout_s=2.0)  # cheap calls not answered in 2 s: not answering
    settings = Settings(ollama_host=url, data_dir=tmp_path, sample_interval_s=0.05,
                        budget={"cooldown_s": 0, "timeout_s": 60},
                        session={"name": "wedged", "max_cycles": 1, "prompt_seed": 1})
    orch = Orchestrator(settings, backend, SimProbe(sim.world), store, sim.clock, retry_backend=False)
    seen: list[ev.Event] = []
    orch.bus.subscribe(lambda e: None if e.high_rate else seen.append(e))

    wedged: list[bool] = []

    def wedge_after_alpha(event: ev.Event) -> None:  # its proposal, not its synthesis later in the round
        if isinstance(event, ev.StudentFinished) and event.student == "rh-alpha" and not wedged:
            wedged.append(True)
            plug.wedge()

    orch.bus.subscribe(wedge_after_alpha)
    task = asyncio.ensure_future(orch.run())
    try:
        down = await until_async(lambda: [e for e in seen if isinstance(e, ev.BackendDown)], timeout=60,
                                 what="BackendDown after the server was wedged")
        assert "did not answer /api/version within 2 s" in down[0].error and "hung" in down[0].error, down[0].error
        assert orch.state == "backend_down"
        # while wedged, nobody else is started (and so nobody else times out)
        started = [e.student for e in seen if isinstance(e, ev.StudentStarted)]
        assert started == ["rh-alpha", "rh-beta"], started
        plug.unwedge()
        await asyncio.wait_for(task, 120)
    finally:
        if not task.done():
            orch.request_stop()
            await asyncio.wait_for(task, 30)
        await backend.close()
        await plug.stop()

    runs = {r.student: r for r in await store.runs(session_id=orch.session_id)}
    beta = runs["rh-beta"]
    assert beta.status == "error" and "went down during the run" in beta.reason, beta
    assert "no complete answer within 60 s" in beta.error and "did not answer /api/version" in beta.error, beta
    others = {n: r.status for n, r in runs.items() if n != "rh-beta"}
    assert set(others.values()) == {"ok"}, others  # nobody else is charged with the outage
    assert not [r for r in runs.values() if r.status == "timeout"]
    kinds = [type(e).__name__ for e in seen if isinstance(e, ev.BackendDown | ev.BackendUp)]
    assert kinds == ["BackendUp", "BackendDown", "BackendUp"], kinds
    assert sim.world.loaded_names() == []
