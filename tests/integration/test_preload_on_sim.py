"""Preloading over real HTTP against the simulator: the next student loads while the current one
writes when the pair fits, never when it does not, never with --no-preload; an emergency during an
overlap unloads both."""

from __future__ import annotations

import asyncio

from rhtui.engine import events as ev
from tests.helpers import until_async


def resident_pairs(world):
    """A subscriber that records, at every event, how many models the simulated Ollama holds."""
    seen: list[int] = []

    def watch(_event) -> None:
        seen.append(len(world.runners()))

    return seen, watch


def overlaps(log) -> int:
    """Loads that began while another model was loaded (from the simulator's own log)."""
    loaded: set[str] = set()
    count = 0
    for e in log:
        if e.action == "load":
            count += bool(loaded)
            loaded.add(e.model)
        elif e.action in ("unload", "evict", "oom"):
            loaded.discard(e.model)
    return count


async def test_the_next_student_loads_while_the_current_one_writes(sim, store, make_engine):
    orch, rec = make_engine()
    seen, watch = resident_pairs(sim.world)
    orch.bus.subscribe(watch)
    await asyncio.wait_for(orch.run(), 120)
    pre = rec.of(ev.Preload)
    assert pre and all(p.overlapped for p in pre), [p.reason for p in pre]
    assert {p.beside for p in pre} <= set(orch.students)
    assert overlaps(sim.world.load_log) == len(pre)
    assert max(seen) == 2  # two students at most, never three
    runs = await store.runs()
    assert [r.status for r in runs] == ["ok"] * 6
    total = sim.world.scenario.gpu.total_mb
    assert sim.world.stats().peak_vram_mb <= 0.90 * total  # the budget held with both resident
    # a preloaded student's run waits only for what was left of its load
    for r in runs[1:]:
        assert r.load_s is not None and r.total_s is not None


async def test_no_overlap_when_the_pair_does_not_fit(sim, store, make_engine):
    total = sim.world.scenario.gpu.total_mb
    # another process holds the card so that one student fits and no two do
    sim.world.add_external(0.90 * total - sim.world.vram_used_mb() - 5_100 - 1_024)
    orch, rec = make_engine()
    seen, watch = resident_pairs(sim.world)
    orch.bus.subscribe(watch)
    await asyncio.wait_for(orch.run(), 120)
    pre = rec.of(ev.Preload)
    assert pre and not any(p.overlapped for p in pre)
    assert all("MB" in p.reason for p in pre)  # the numbers that ruled it out
    assert overlaps(sim.world.load_log) == 0 and max(seen) <= 1
    assert [r.status for r in await store.runs()] == ["ok"] * 6


async def test_no_preload_never_overlaps(sim, store, make_engine):
    orch, rec = make_engine(session={"preload": False})
    seen, watch = resident_pairs(sim.world)
    orch.bus.subscribe(watch)
    await asyncio.wait_for(orch.run(), 120)
    assert not rec.of(ev.Preload)
    assert overlaps(sim.world.load_log) == 0 and max(seen) <= 1
    assert [r.status for r in await store.runs()] == ["ok"] * 6


async def test_an_emergency_during_an_overlap_unloads_both(sim, store, make_engine):
    orch, rec = make_engine(session={"max_cycles": 3})
    total = sim.world.scenario.gpu.total_mb
    fired: list[bool] = []

    def spike_on_overlap(event) -> None:
        if isinstance(event, ev.Preload) and event.overlapped and not fired:
            fired.append(True)
            sim.world.add_external(0.97 * total - sim.world.vram_used_mb(), 30)

    orch.bus.subscribe(spike_on_overlap)
    task = asyncio.ensure_future(orch.run())
    await until_async(lambda: orch.state == "emergency", timeout=60)
    await until_async(lambda: not sim.world.runners(), timeout=30)
    assert rec.of(ev.EmergencyStop)
    orch.request_stop()
    await asyncio.wait_for(task, 60)
    assert not sim.world.runners()
    statuses = {r.status for r in await store.runs()}
    assert "emergency" in statuses
