"""What happens to a student after each kind of Ollama error, over real loopback HTTP to the
simulator: a runner failure (a 500, whatever its text, or an ``{"error"}`` line mid-stream) and
an out-of-memory are tried again next cycle; only a 404 drops a student for the session; a 503
"server busy" is retried after a back-off on the engine clock and then succeeds. Also: names
compare as Ollama keys them, and an emergency unloads everything /api/ps shows resident."""

from __future__ import annotations

import asyncio

import pytest

from rhtui.engine import events as ev
from rhtui.engine.runs import BUSY_RETRY_S, BUSY_TRIES
from rhtui.sim.faults import LOAD_ERROR_TEXT, STREAM_ERROR_TEXT, STREAM_OOM_TEXT
from rhtui.sim.scenario import load_scenario
from tests.integration.conftest import Timeline

pytestmark = pytest.mark.integration

STUDENTS = [s.name for s in load_scenario("rtx4070s").students]


@pytest.fixture
def sim_speed():
    return 150.0


def by_cycle(runs, student: str) -> dict[int, object]:
    return {r.cycle: r for r in runs if r.student == student}


# -- runner failures and OOM: tried again next cycle --------------------------------------------


RETRIED = {
    # (kind, text or None for the kind's own): what the reason must say
    ("load_error", None): (LOAD_ERROR_TEXT, "HTTP 500", "journalctl -u ollama", "~/.ollama/logs/server.log",
                           "tried again next cycle"),
    ("stream_error", None): (STREAM_ERROR_TEXT, "in the middle of its stream", "server log",
                             "partial answer is discarded", "tried again next cycle"),
    ("stream_error", "model 'rh-beta' not found"): ("not found", "server log", "tried again next cycle"),
    ("stream_oom", None): (STREAM_OOM_TEXT, "ran out of memory running it", "num_ctx", "tried again next cycle"),
}


@pytest.mark.parametrize(("kind", "text"), list(RETRIED))
async def test_a_runner_failure_is_tried_again_next_cycle(kind, text, sim, store, make_engine):
    sim.world.fault_book.inject(kind, model="rh-beta", text=text)
    orch, rec = make_engine(budget={"timeout_s": 600}, session={"max_cycles": 2})
    await asyncio.wait_for(orch.run(), 60)
    runs = await store.runs(session_id=orch.session_id)
    beta = by_cycle(runs, "rh-beta")
    assert beta[1].status == "error", beta[1]
    for words in RETRIED[(kind, text)]:
        assert words in beta[1].reason, (words, beta[1].reason)
    assert "model missing" not in beta[1].reason
    assert beta[2].status == "ok", beta[2]  # run again, and it works
    assert "rh-beta" not in orch._missing
    assert not [e for e in rec.of(ev.StudentSkipped) if e.student == "rh-beta"]
    assert all(r.status == "ok" for r in runs if r.student != "rh-beta")
    assert not rec.of(ev.BackendDown)
    assert sim.world.loaded_names() == [] and sim.world.fault_book.pending() == []


async def test_only_a_404_drops_a_student_for_the_session(sim, store, make_engine):
    orch, rec = make_engine(session={"max_cycles": 2})

    def delete_beta(event) -> None:  # listed at the start; gone from Ollama by its turn
        if isinstance(event, ev.StudentStarted) and event.student == "rh-alpha" and sim.world.find_model("rh-beta"):
            sim.world.delete_model("rh-beta")

    orch.bus.subscribe(delete_beta)
    await asyncio.wait_for(orch.run(), 60)
    beta = by_cycle(await store.runs(session_id=orch.session_id), "rh-beta")
    assert beta[1].status == "error" and "model missing; fix: `rhtui models create rh-beta`" in beta[1].reason
    assert beta[2].status == "skipped" and beta[2].reason.startswith("missing:")
    assert [e.kind for e in rec.of(ev.StudentSkipped) if e.student == "rh-beta"] == ["missing"]


# -- 503 busy: retried after a back-off ------------------------------------------------------------


async def test_a_busy_answer_is_retried_and_then_succeeds(sim, store, make_engine):
    sim.world.inject("busy", model="rh-beta", count=2)
    orch, rec = make_engine(budget={"timeout_s": 600})
    timeline = Timeline(sim.world)
    orch.bus.subscribe(timeline)
    await asyncio.wait_for(orch.run(), 60)
    runs = await store.runs(session_id=orch.session_id)
    assert [(r.student, r.status) for r in runs] == [(s, "ok") for s in STUDENTS]  # one record each
    retries = [(t, e.text) for t, e in timeline.of(ev.LogMessage) if e.text.startswith("[rh-beta]")]
    assert len(retries) == 2, retries
    assert all("busy" in text and "maximum pending requests exceeded" in text for _, text in retries)
    assert f"try 2 of {BUSY_TRIES} in {BUSY_RETRY_S[0]:g} s" in retries[0][1]
    assert f"try 3 of {BUSY_TRIES} in {2 * BUSY_RETRY_S[0]:g} s" in retries[1][1]
    # the back-offs passed on the engine clock before rh-beta was loaded
    (beta_load,) = [e for e in sim.world.load_log if e.action == "load" and e.model.startswith("rh-beta")]
    assert beta_load.ts - retries[0][0] >= 0.9 * 3 * BUSY_RETRY_S[0]
    assert sim.world.fault_book.pending() == []


async def test_busy_past_the_bound_is_one_error_then_the_next_cycle(sim, store, make_engine):
    sim.world.inject("busy", model="rh-beta", count=BUSY_TRIES)
    orch, rec = make_engine(session={"max_cycles": 2})
    await asyncio.wait_for(orch.run(), 60)
    beta = by_cycle(await store.runs(session_id=orch.session_id), "rh-beta")
    assert beta[1].status == "error"
    assert "busy" in beta[1].reason and f"{BUSY_TRIES} tries" in beta[1].reason
    assert "tried again next cycle" in beta[1].reason
    assert beta[2].status == "ok"
    retries = [e for e in rec.of(ev.LogMessage) if e.text.startswith("[rh-beta]") and "busy" in e.text]
    assert len(retries) == BUSY_TRIES - 1


async def test_a_skip_during_the_busy_back_off_ends_the_wait(sim, store, make_engine):
    sim.world.inject("busy", model="rh-beta", count=BUSY_TRIES)
    orch, rec = make_engine()

    def skip_on_retry(event) -> None:
        if isinstance(event, ev.LogMessage) and event.text.startswith("[rh-beta]") and "busy" in event.text:
            orch.skip_current()

    orch.bus.subscribe(skip_on_retry)
    await asyncio.wait_for(orch.run(), 60)
    beta = by_cycle(await store.runs(session_id=orch.session_id), "rh-beta")
    assert beta[1].status == "skipped" and "skipped by user" in beta[1].reason
    sim.world.clear_injections()


# -- names as Ollama keys them -----------------------------------------------------------------------


async def test_a_name_spelled_differently_is_found_and_measured(sim, store, make_engine):
    orch, rec = make_engine(students=[{"name": "alpha", "model": "RH-Alpha"}])
    await asyncio.wait_for(orch.run(), 60)
    (run,) = await store.runs(session_id=orch.session_id)
    assert run.status == "ok" and not orch._missing
    assert run.vram_mb and run.vram_mb > 3000  # matched in /api/ps as rh-alpha:latest
    assert sim.world.loaded_names() == []


# -- the emergency unloads what Ollama really holds --------------------------------------------------


async def test_an_emergency_unloads_every_resident_model_once(sim, store, make_engine):
    world = sim.world
    orch, rec = make_engine()
    assert await orch._connect()
    await world.load("nous-hermes:7b", keep_alive=-1)  # not ours: another name, another client
    await world.load("rh-alpha", keep_alive=-1)
    orch.runs.current = "rh-alpha"  # ours, listed by /api/ps as rh-alpha:latest
    unloads: list[str] = []
    real_unload = orch.backend.unload

    async def counting(model: str) -> None:
        unloads.append(model)
        await real_unload(model)

    orch.backend.unload = counting
    await orch._enter_emergency("test", None)
    assert world.loaded_names() == []
    assert sorted(unloads) == ["nous-hermes:7b", "rh-alpha:latest"]
    orch.runs.current = None


async def test_shutdown_unloads_only_our_students(sim, store, make_engine):
    world = sim.world
    await world.load("nous-hermes:7b", keep_alive=-1)
    orch, _ = make_engine(session={"max_cycles": 1})
    await asyncio.wait_for(orch.run(), 60)
    assert world.loaded_names() == ["nous-hermes:7b"]
