"""The simulator's hardware probe, `serve()`, the no-Textual rule and world invariants."""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
import sys

import ollama
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rhtui.engine.clock import ManualClock
from rhtui.engine.hardware import HardwareProbe, HardwareSnapshot
from rhtui.sim.errors import SimError
from rhtui.sim.probe import SimProbe
from rhtui.sim.server import serve
from rhtui.sim.world import SimWorld
from tests.processes import free_port


async def test_probe_reports_the_world(manual_world: SimWorld) -> None:
    w = manual_world
    probe: HardwareProbe = SimProbe(w)
    assert probe.has_vram and "RTX 4070 SUPER" in probe.name
    idle = await probe.sample()
    assert isinstance(idle, HardwareSnapshot) and idle.source == "sim"
    assert (idle.vram_total_mb, idle.vram_used_mb) == (12282, 900) and idle.process_vram_mb == ()
    assert idle.gpu_util_pct == 0 and idle.power_w == pytest.approx(15) and idle.ts == w.clock.now()
    assert idle.ram_total_mb == 32768 and idle.ram_used_mb == pytest.approx(6144)
    await w.load("rh-alpha")
    w.add_external(2000, for_s=60)
    snap = await probe.sample()
    assert snap.vram_used_mb == pytest.approx(900 + 3847 + 2000)
    assert snap.process_vram_mb is not None
    pids = dict(snap.process_vram_mb)
    alpha = w.runner("rh-alpha")
    assert alpha is not None and pids[alpha.pid] == pytest.approx(3847) and 2000 in pids.values()
    assert snap.ram_used_mb == pytest.approx(6144 + 250)
    async with w.generation("rh-alpha", "Go.") as g:
        stream = g.stream()
        await stream.__anext__()
        busy = await probe.sample()
        await stream.aclose()
    assert busy.gpu_util_pct is not None and busy.power_w is not None and busy.temp_c is not None
    assert idle.temp_c is not None
    assert busy.gpu_util_pct > 90 and busy.power_w > 150 and busy.temp_c > idle.temp_c
    await probe.close()


async def test_serve_prints_the_url_and_runs_until_cancelled(capsys) -> None:
    port = free_port()
    task = asyncio.create_task(serve("rtx4070s", "127.0.0.1", port, 500.0, 1))
    try:
        for _ in range(100):
            await asyncio.sleep(0.02)
            if f"http://127.0.0.1:{port}" in capsys.readouterr().out:
                break
        client = ollama.AsyncClient(host=f"http://127.0.0.1:{port}")
        assert len((await client.list()).models) == 12
        await client.close()
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    with pytest.raises(ConnectionError):
        await ollama.AsyncClient(host=f"http://127.0.0.1:{port}").list()


def test_the_simulator_never_imports_textual() -> None:
    code = (
        "import sys, rhtui.sim.server, rhtui.sim.probe, rhtui.sim.scenario, rhtui.sim.world;"
        "bad = [m for m in sys.modules if m.split('.')[0] in ('textual', 'textual_plotext')];"
        "print(bad); sys.exit(1 if bad else 0)"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr


_STUDENTS = ["rh-alpha", "rh-beta", "rh-gamma", "rh-delta", "rh-epsilon", "rh-zeta"]
_steps = st.lists(
    st.one_of(
        st.tuples(st.just("load"), st.sampled_from(_STUDENTS), st.sampled_from([None, 0, -1, "30s"])),
        st.tuples(st.just("advance"), st.floats(0, 400)),
        st.tuples(st.just("external"), st.floats(0, 12000), st.floats(1, 600)),
        st.tuples(st.just("unload"), st.sampled_from(_STUDENTS)),
    ),
    max_size=25,
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(steps=_steps)
def test_invariants_hold_for_any_sequence(scenario, steps) -> None:
    """Whatever happens: used VRAM within the card, at most max_loaded_models runners, every
    runner's GPU part within its size, and each load logged."""

    async def run() -> None:
        clock = ManualClock()
        w = SimWorld(scenario, clock, seed=0)
        for step in steps:
            if step[0] == "load":
                with contextlib.suppress(SimError):
                    await w.load(step[1], keep_alive=step[2])
            elif step[0] == "advance":
                clock.advance(step[1])
            elif step[0] == "external":
                w.add_external(step[1], for_s=step[2])
            else:
                await w.unload(step[1])
            runners = w.runners()
            assert 0 <= w.vram_used_mb() <= w.vram_total_mb
            assert len(runners) <= scenario.ollama.max_loaded_models
            assert all(0 <= r.gpu_mb <= r.size_mb for r in runners)
            assert w.ram_used_mb() <= scenario.host.ram_total_mb
            loads = sum(1 for e in w.load_log if e.action == "load")
            gone = sum(1 for e in w.load_log if e.action in ("unload", "evict", "expire"))
            assert loads - gone == len(runners)

    asyncio.run(run())
