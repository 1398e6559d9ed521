"""`rhtui watch`: a second process's view of a session, rebuilt from the database, and
its keys reaching the engine through the controls table."""

from __future__ import annotations

import asyncio

import pytest

from rhtui.engine import events as ev
from rhtui.engine.clock import SystemClock
from rhtui.engine.store import Store
from rhtui.engine.watch import NoSession, WatchedSession
from rhtui.tui.state import UiModel
from tests.helpers import until_async

pytestmark = pytest.mark.integration


async def test_a_follower_rebuilds_the_typed_event_stream(sim, store, make_engine, tmp_path):
    orch, rec = make_engine()
    await asyncio.wait_for(orch.run(), 60)
    other = await Store.open(tmp_path / "rhtui.db")  # a second connection, as another process would
    try:
        remote = WatchedSession(other, SystemClock(), session_name="it")
        seen: list[ev.Event] = []
        remote.bus.subscribe(seen.append)
        await remote.poll()
    finally:
        await other.close()
    kinds = [type(e) for e in seen]
    # what the engine said before the session's row existed is stored with it, first
    assert kinds[:2] == [ev.BackendUp, ev.SessionStarted] and ev.SessionFinished in kinds
    finished = [e for e in seen if isinstance(e, ev.StudentFinished)]
    live = rec.of(ev.StudentFinished)
    assert [f.run for f in finished] == [f.run for f in live]  # the same runs, proposals included
    assert [e for e in seen if isinstance(e, ev.CycleFinished)] == rec.of(ev.CycleFinished)
    assert any(isinstance(e, ev.HardwareSampled) for e in seen)
    # what the queue shows beyond the log: places, "fits now" and the learned profiles
    for kind in (ev.StudentQueued, ev.FitsChecked, ev.ProfilesUpdated):
        assert [e for e in seen if isinstance(e, kind)] == rec.of(kind), kind.__name__
    assert any(e.profiles for e in seen if isinstance(e, ev.ProfilesUpdated))


async def test_keys_of_a_watcher_reach_the_running_engine(sim, store, make_engine, tmp_path):
    orch, rec = make_engine(session={"max_cycles": 3})
    task = asyncio.ensure_future(orch.run())
    other = await Store.open(tmp_path / "rhtui.db")
    try:
        remote = WatchedSession(other, SystemClock())
        await until_async(lambda: orch.session_id is not None and orch.current is not None, timeout=4)
        await remote.poll()
        assert remote.session_id == orch.session_id
        remote.pause()
        await until_async(lambda: orch.state == "paused", timeout=4, what="the engine paused by the watcher")
        remote.set_enabled("rh-zeta", False)
        await until_async(lambda: orch.enabled["rh-zeta"] is False, timeout=4, what="rh-zeta disabled by the watcher")
        await remote.poll()
        assert remote.state == "paused"
    finally:
        orch.request_stop()
        await asyncio.wait_for(task, 30)
        await other.close()


async def test_no_session_to_watch_says_so(tmp_path):
    s = await Store.open(tmp_path / "empty.db")
    try:
        with pytest.raises(NoSession, match="named 'nope'"):
            await WatchedSession(s, SystemClock(), session_name="nope").find_session()
    finally:
        await s.close()


async def test_a_watcher_shows_the_card_and_quits_without_touching_the_session(sim, store, make_engine, tmp_path):
    from rhtui.tui.app import make_app
    from rhtui.tui.screens.confirm_quit import ConfirmQuit
    from rhtui.tui.widgets.gauges import Gauges

    orch, _rec = make_engine(session={"max_cycles": 3})
    task = asyncio.ensure_future(orch.run())
    other = await Store.open(tmp_path / "rhtui.db")
    try:
        await until_async(lambda: orch.session_id is not None and orch.current is not None, timeout=6)
        remote = WatchedSession(other, SystemClock(), interval_s=0.05)
        await remote.find_session()
        app = make_app(orch.settings, None, None, other, SystemClock(), orchestrator=remote)
        async with app.run_test(size=(120, 40)) as pilot:
            # a student is writing in the other "process"
            await until_async(lambda: app.model.current is not None and app.model.snapshot is not None,
                              timeout=5, wait=pilot.pause)
            gauges = app.screen.query_one(Gauges)
            assert gauges.values.gpu_name == sim.world.scenario.gpu.name
            await pilot.press("q")
            await pilot.pause(0.1)
            assert not any(isinstance(s, ConfirmQuit) for s in app.screen_stack)
        assert app.return_code == 0
        assert orch.state == "running" and not task.done()  # the session goes on
    finally:
        orch.request_stop()
        await asyncio.wait_for(task, 30)
        await other.close()


def _ui_model(settings) -> UiModel:
    return UiModel(
        session_name=settings.session.name, host=settings.ollama_host,
        students=[(s.name, s.tag, s.enabled) for s in settings.students],
        duration_s=settings.session.duration_min * 60.0,
        budget=settings.budget,
        sample_interval_s=settings.sample_interval_s,
    )


class StatusTrail:
    """Each student's row status as it changes (waiting, loading, running, unloading, done...)."""

    def __init__(self, model: UiModel) -> None:
        self.model = model
        self.trail: list[tuple[str, str]] = []
        self._last: dict[str, str] = {}

    def __call__(self, event: ev.Event) -> None:
        self.model.apply(event)
        for name, row in self.model.students.items():
            if self._last.get(name) != row.status:
                self._last[name] = row.status
                self.trail.append((name, row.status))


def _shown(m: UiModel) -> dict:
    """Everything the dashboard draws from, except the hardware timeline (samples are rows of
    hardware_snapshots; the follower replays the newest of them at each poll)."""
    rows = {
        name: (r.enabled, r.status, r.reason, r.position, r.in_cycle, r.need_mb, r.fits, r.fit_reason, r.tokens,
               r.tok_s, r.elapsed_s, r.timeout_s, r.learned, r.runs, r.failures, r.ok_runs, r.seconds_sum,
               r.tps_sum, r.tokens_sum, list(r.vram))
        for name, r in m.students.items()
    }
    return {
        "rows": rows, "state": (m.state, m.state_reason), "cycle": (m.cycle, m.order, m.current),
        "session": (m.session_id, m.session_name, m.started_ts, m.finished_ts, m.finished, m.duration_s, m.speed,
                    m.policy, m.probe_name, m.backend_version, m.host),
        "totals": (m.runs_total, m.tokens_total), "alarms": (m.emergency, m.backend_down, m.engine_error, m.alarm),
        "log": [(line.ts, line.level, line.text) for line in m.log],
        "history": list(m.history), "proposals": list(m.proposals), "cycles": list(m.cycle_tokens),
        "vram_source": m.vram_source,
    }


async def test_the_watchers_dashboard_shows_what_the_live_one_shows(sim, store, make_engine, tmp_path):
    orch, rec = make_engine(session={"max_cycles": 1})
    live = StatusTrail(_ui_model(orch.settings))
    orch.bus.subscribe(live)
    await asyncio.wait_for(orch.run(), 60)
    other = await Store.open(tmp_path / "rhtui.db")
    try:
        remote = WatchedSession(other, SystemClock(), session_name="it")
        watched = StatusTrail(_ui_model(orch.settings))
        remote.bus.subscribe(watched)
        while await remote.poll():
            pass
    finally:
        await other.close()
    assert _shown(watched.model) == _shown(live.model)
    # the phases too, in order: loading, running, unloading (not only the log lines' events)
    assert watched.trail == live.trail
    assert ("rh-alpha", "running") in live.trail and ("rh-alpha", "unloading") in live.trail
    assert watched.model.snapshot is not None


async def test_token_progress_is_stored_at_most_once_a_second_per_run_and_samples_not_at_all(
        sim, store, make_engine):
    orch, rec = make_engine(session={"max_cycles": 1})
    seen: list[ev.Event] = []
    orch.bus.subscribe(seen.append)
    await asyncio.wait_for(orch.run(), 60)
    rows = await store.events_since(orch.session_id, 0, limit=100_000)
    kinds = [r.kind for r in rows]
    assert "HardwareSampled" not in kinds and "StudentPhaseChanged" in kinds
    emitted = [e for e in seen if not isinstance(e, (ev.HardwareSampled, ev.TokensProgress))]
    assert len([k for k in kinds if k != "TokensProgress"]) == len(emitted)  # every other event, once
    live = [e for e in seen if isinstance(e, ev.TokensProgress)]
    stored = [r for r in rows if r.kind == "TokensProgress"]
    assert live and len(stored) < len(live)
    for student in {r.data["student"] for r in stored}:
        ts = [r.ts for r in stored if r.data["student"] == student]
        # engine-clock seconds at the simulator's speed: one a real second at most
        assert all(b - a >= 0.9 * sim.clock.speed for a, b in zip(ts, ts[1:], strict=False)), ts
