"""The engine end to end over real loopback HTTP: simulator ↔ ollama.AsyncClient ↔ orchestrator ↔ SQLite."""

from __future__ import annotations

import asyncio

import pytest

from rhtui.engine import events as ev
from rhtui.engine.backend import BackendUnreachable, OllamaBackend
from rhtui.engine.clock import ScaledClock
from rhtui.engine.config import Settings
from rhtui.engine.orchestrator import Orchestrator
from rhtui.sim.scenario import load_scenario
from tests.helpers import until_async
from tests.integration.conftest import spike_when_running

pytestmark = pytest.mark.integration

REFERENCE = {s.name: s for s in load_scenario("rtx4070s").students}
STUDENTS = list(REFERENCE)


def loads(world, model: str) -> list:
    return [e for e in world.load_log if e[1] == "load" and e[2].split(":")[0] == model]


async def test_a_full_cycle_records_six_runs_that_match_the_scenario(sim, store, make_engine):
    orch, rec = make_engine()
    await asyncio.wait_for(orch.run(), 60)
    runs = await store.runs(session_id=orch.session_id)
    assert [r.student for r in runs] == STUDENTS
    for r in runs:
        ref = REFERENCE[r.student]
        assert r.status == "ok", (r.student, r.reason, r.error)
        assert r.vram_mb == pytest.approx(ref.resident_mb, rel=0.02)
        assert abs(r.tokens - ref.tokens_mean) <= 4 * ref.tokens_sd
        assert r.tok_per_s == pytest.approx(r.tokens / r.eval_s)
        assert 80 < r.tok_per_s < 130  # ~100 tok/s decode on the reference card
        assert r.load_s > 0 and r.total_s > r.eval_s
        assert r.proposal.strip()
    # each student was loaded once and unloaded after use
    for name in STUDENTS:
        assert len(loads(sim.world, name)) == 1
    assert (await orch.backend.ps()) == []
    finished = rec.of(ev.CycleFinished)
    assert len(finished) == 1 and set(finished[0].completed) == set(STUDENTS)
    assert finished[0].tokens == sum(r.tokens for r in runs)
    assert rec.of(ev.SessionFinished)[0].runs == 6
    # hardware samples were stored for the session
    assert await store.vram_timeline(session_id=orch.session_id, max_points=50)


async def test_learned_profiles_carry_into_the_next_session(sim, store, make_engine):
    orch, _ = make_engine()
    await asyncio.wait_for(orch.run(), 60)
    orch2, rec2 = make_engine()
    await orch2._learn()
    prof = orch2.latest_profiles["rh-zeta"]
    assert prof.ok_runs == 1
    assert prof.vram_p95_mb == pytest.approx(REFERENCE["rh-zeta"].resident_mb, rel=0.02)


async def test_a_stalled_stream_times_out_and_is_unloaded(sim, store, make_engine):
    sim.world.inject("stall", model="rh-beta", count=1)
    orch, rec = make_engine(budget={"timeout_s": 40})
    await asyncio.wait_for(orch.run(), 60)
    runs = {r.student: r for r in await store.runs(session_id=orch.session_id)}
    assert runs["rh-beta"].status == "timeout"
    assert "40 s" in runs["rh-beta"].reason
    assert runs["rh-gamma"].status == "ok"  # the cycle went on
    unloads = [e for e in sim.world.load_log if e[1] in ("unload", "expire") and e[2].startswith("rh-beta")]
    assert unloads, sim.world.load_log
    assert (await orch.backend.ps()) == []


async def test_an_external_spike_past_95_percent_triggers_the_emergency_path(sim, store, make_engine):
    orch, rec = make_engine()
    total = sim.world.scenario.gpu.total_mb
    baseline = sim.world.scenario.gpu.baseline_used_mb

    def spike(event):
        # another process takes enough that the card stays above 90 % even after our unload
        if isinstance(event, ev.StudentPhaseChanged) and event.phase == "running" and event.student == "rh-alpha":
            sim.world.add_external(0.93 * total - baseline, None)

    orch.bus.subscribe(spike)
    task = asyncio.ensure_future(orch.run())
    stop = await until_async(lambda: rec.of(ev.EmergencyStop), timeout=10)
    assert stop[0].used_mb > 0.95 * total

    async def nothing_loaded() -> bool:
        return orch.current is None and not await orch.backend.ps()

    await until_async(nothing_loaded, timeout=5)
    assert orch.state == "emergency"
    assert await orch.backend.ps() == []  # everything unloaded
    orch.clear_emergency()  # refused: the card is still above the 90 % limit
    assert orch.state == "emergency"
    assert "cannot resume yet" in rec.of(ev.LogMessage)[-1].text
    sim.world.clear_external()
    await asyncio.sleep(0.3)  # a few samples see the card back under the limit
    orch.clear_emergency()
    assert orch.state == "running" and rec.of(ev.EmergencyCleared)
    orch.request_stop()
    await asyncio.wait_for(task, 30)
    runs = await store.runs(session_id=orch.session_id)
    alpha = [r for r in runs if r.student == "rh-alpha"][0]
    assert alpha.status == "emergency" and "95 %" in alpha.reason
    kinds = [type(e).__name__ for e in rec.events]
    assert kinds.index("EmergencyStop") < kinds.index("EmergencyCleared") < kinds.index("SessionFinished")


async def test_emergency_clears_after_the_cooldown(sim, store, make_engine):
    # the other process leaves after 10 s; the guard waits 30 s under the limit before resuming
    orch, rec = make_engine(budget={"cooldown_s": 30}, session={"max_cycles": 1})
    orch.bus.subscribe(spike_when_running(sim, "rh-alpha", 0.97, 10))  # 10 simulated seconds
    await asyncio.wait_for(orch.run(), 60)
    assert rec.of(ev.EmergencyStop) and rec.of(ev.EmergencyCleared)
    got = await store.runs(session_id=orch.session_id)
    runs = {r.student: r.status for r in got}
    assert runs["rh-alpha"] == "emergency" and runs["rh-zeta"] == "ok", [(r.student, r.status, r.reason) for r in got]


async def test_a_student_that_cannot_fit_is_skipped_with_its_reason_and_never_loaded(sim, store, make_engine):
    sim.world.add_external(6000, 10_000)
    orch, rec = make_engine()
    await asyncio.wait_for(orch.run(), 60)
    runs = {r.student: r for r in await store.runs(session_id=orch.session_id)}
    zeta = runs["rh-zeta"]
    assert zeta.status == "skipped" and "MB" in zeta.reason
    assert loads(sim.world, "rh-zeta") == []
    assert runs["rh-alpha"].status == "ok"
    skipped = {e.student: e for e in rec.of(ev.StudentSkipped)}
    assert skipped["rh-zeta"].kind == "budget" and skipped["rh-zeta"].reason
    summary = rec.of(ev.CycleFinished)[0]
    assert "rh-zeta" in dict(summary.skipped)


async def test_pause_skip_and_disable_controls(sim, store, make_engine):
    orch, rec = make_engine(session={"max_cycles": 2})
    orch.set_enabled("rh-gamma", False)

    def on_event(event):
        if isinstance(event, ev.StudentPhaseChanged) and event.phase == "running" and event.student == "rh-beta":
            orch.skip_current()

    orch.bus.subscribe(on_event)
    await asyncio.wait_for(orch.run(), 90)
    runs = await store.runs(session_id=orch.session_id)
    beta = [r for r in runs if r.student == "rh-beta"]
    assert [r.status for r in beta] == ["skipped", "skipped"]
    assert beta[0].reason == "skipped by user"
    gamma = [r for r in runs if r.student == "rh-gamma"]
    assert [r.status for r in gamma] == ["skipped", "skipped"] and "disabled" in gamma[0].reason
    assert loads(sim.world, "rh-gamma") == []
    assert (await orch.backend.ps()) == []


async def test_request_stop_mid_run_records_aborted_and_unloads(sim, store, make_engine):
    orch, rec = make_engine()

    def on_event(event):
        if isinstance(event, ev.StudentPhaseChanged) and event.phase == "running" and event.student == "rh-alpha":
            orch.request_stop()

    orch.bus.subscribe(on_event)
    await asyncio.wait_for(orch.run(), 30)
    runs = await store.runs(session_id=orch.session_id)
    assert [r.status for r in runs] == ["aborted"]
    assert (await orch.backend.ps()) == []
    session = await store.get_session(orch.session_id)
    assert session.ended_at is not None


async def test_server_down_at_start_names_the_host(store, tmp_path):
    settings = Settings(ollama_host="127.0.0.1:9", data_dir=tmp_path)
    backend = OllamaBackend(settings.ollama_host)
    clock = ScaledClock(1)
    from rhtui.engine.hardware import NoGpuProbe

    orch = Orchestrator(settings, backend, NoGpuProbe(), store, clock, retry_backend=False)
    with pytest.raises(BackendUnreachable) as e:
        await orch.run()
    assert "http://127.0.0.1:9" in str(e.value) and "ollama serve" in str(e.value)
    await backend.close()


async def test_learned_profiles_and_fits_now_are_shared_as_events(sim, store, make_engine):
    orch, rec = make_engine()
    await asyncio.wait_for(orch.run(), 60)
    # at the start every profile (none yet on a fresh database), then the one that just ran
    shared = rec.of(ev.ProfilesUpdated)
    assert shared[0].profiles == ()
    after_runs = shared[1:]
    assert [p.profiles[0].student for p in after_runs] == STUDENTS
    assert all(p.profiles[0].runs == 1 for p in after_runs)
    zeta = after_runs[-1].profiles[0]
    assert zeta.vram_mean_mb == pytest.approx(REFERENCE["rh-zeta"].resident_mb, rel=0.02)
    # after each run: the students still waiting, in order, each with its need and answer
    checks = [c for c in rec.of(ev.FitsChecked) if c.cycle == 1]
    waiting_lists = [[name for name, *_ in c.fits] for c in checks]
    for k in range(1, len(STUDENTS)):
        assert STUDENTS[k:] in waiting_lists
    assert all(ok for c in checks for _name, _need, ok, _why in c.fits)  # the reference card has room


async def test_fits_now_follows_vram_taken_by_another_process_mid_cycle(sim, store, make_engine):
    orch, rec = make_engine()

    def on_event(e: ev.Event) -> None:
        if isinstance(e, ev.StudentFinished) and e.student == "rh-alpha":
            sim.world.add_external(5500)  # a game starts while rh-beta is next (loaded beside: 88 %, no emergency)

    orch.bus.subscribe(on_event)
    await asyncio.wait_for(orch.run(), 60)
    queued = {e.student: e for e in rec.of(ev.StudentQueued)}
    assert queued["rh-zeta"].fits  # it fitted when the cycle started
    verdicts = [dict((name, ok) for name, _need, ok, _why in c.fits) for c in rec.of(ev.FitsChecked)]
    assert any(v.get("rh-zeta") is False for v in verdicts)
    reasons = [why for c in rec.of(ev.FitsChecked) for name, _need, ok, why in c.fits if name == "rh-zeta" and not ok]
    assert reasons and "MB" in reasons[0]


async def test_a_student_left_resident_after_a_timeout_is_not_another_processs_vram_trend(sim, store, make_engine):
    """A timed-out load may finish after our unload and stay for its keep_alive: that memory is ours.
    After a timeout the sampler also reads /api/ps, and the trend series excludes every student model."""
    orch, _ = make_engine(session={"max_cycles": 1}, budget={"timeout_s": 0.5},
                          students=[{"name": "rh-alpha"}])
    await asyncio.wait_for(orch.run(), 60)
    runs = await store.runs()
    assert [r.status for r in runs] == ["timeout"]
    assert orch.sampler.strays_until is not None  # the sampler now watches /api/ps for what the load left behind

    # the load finished behind our back: rh-alpha is resident again, as Ollama would keep it
    await orch.backend.preload("rh-alpha", None, 600)
    alpha = next(m.vram_mb for m in await orch.backend.ps() if m.name.startswith("rh-alpha"))
    snap = await orch._fresh_snapshot()
    assert orch.sampler.window[-1][1] == pytest.approx(snap.vram_used_mb - alpha)

    orch.sampler.strays_until = None  # without the watch (and with NVML) the student would count as external growth
    snap = await orch._fresh_snapshot()
    assert orch.sampler.window[-1][1] == pytest.approx(snap.vram_used_mb)


async def test_the_engine_keeps_costs_not_proposals_in_memory(sim, store, make_engine, monkeypatch):
    """A week-long session must not hold every proposal: the profiles' window keeps costs only."""
    monkeypatch.setattr("rhtui.engine.rounds.PROFILE_WINDOW", 1)
    orch, _ = make_engine(session={"max_cycles": 2}, students=[{"name": "rh-alpha"}])
    await asyncio.wait_for(orch.run(), 60)
    stored = await store.runs(session_id=orch.session_id)
    assert [r.status for r in stored] == ["ok", "ok"] and all(r.proposal for r in stored)
    kept = orch._history["rh-alpha"]
    assert len(kept) == 1 and kept[0].id == stored[-1].id and kept[0].proposal == ""
    assert orch.latest_profiles["rh-alpha"].runs == 1


async def test_a_card_held_by_another_process_is_retried_ever_less_often(sim, store, make_engine):
    """Cycle after cycle in which nobody fits: the wait doubles (15, 30, 60, 120, 120 s), so a card
    held for hours leaves a few skips an hour in the database, not six every 15 s."""
    sim.world.add_external(0.8 * sim.world.scenario.gpu.total_mb, 3600)  # an hour of a card too full for anyone
    orch, rec = make_engine(session={"max_cycles": 6})
    await asyncio.wait_for(orch.run(), 60)
    waits = [e.text for e in rec.of(ev.LogMessage) if "no student could run" in e.text]
    assert [w.split("next try in ")[1].split(" s")[0] for w in waits] == ["15", "30", "60", "120", "120", "120"]
    runs = await store.runs(session_id=orch.session_id)
    assert runs and all(r.status == "skipped" for r in runs)
