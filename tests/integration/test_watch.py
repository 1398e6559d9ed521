"""`rhtui watch`: a second process's view of a session, rebuilt from the database, and
its keys reaching the engine through the controls table."""

from __future__ import annotations

import asyncio

import pytest

from rhtui.engine import events as ev
from rhtui.engine.clock import SystemClock
from rhtui.engine.follower import NoSession, RemoteSession
from rhtui.engine.store import Store

pytestmark = pytest.mark.integration


async def test_a_follower_rebuilds_the_typed_event_stream(sim, store, make_engine, tmp_path):
    orch, rec = make_engine()
    await asyncio.wait_for(orch.run(), 60)
    other = await Store.open(tmp_path / "rhtui.db")  # a second connection, as another process would
    try:
        remote = RemoteSession(other, SystemClock(), session_name="it")
        seen: list[ev.Event] = []
        remote.bus.subscribe(seen.append)
        await remote.poll()
    finally:
        await other.close()
    kinds = [type(e) for e in seen]
    assert kinds[0] is ev.SessionStarted and ev.SessionFinished in kinds
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
        remote = RemoteSession(other, SystemClock())
        for _ in range(200):
            if orch.session_id is not None and orch.current is not None:
                break
            await asyncio.sleep(0.02)
        await remote.poll()
        assert remote.session_id == orch.session_id
        remote.pause()
        for _ in range(200):
            if orch.state == "paused":
                break
            await asyncio.sleep(0.02)
        assert orch.state == "paused"
        remote.set_enabled("rh-zeta", False)
        for _ in range(200):
            if orch.enabled["rh-zeta"] is False:
                break
            await asyncio.sleep(0.02)
        assert orch.enabled["rh-zeta"] is False
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
            await RemoteSession(s, SystemClock(), session_name="nope").find_session()
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
        for _ in range(300):
            if orch.session_id is not None and orch.current is not None:
                break
            await asyncio.sleep(0.02)
        remote = RemoteSession(other, SystemClock(), interval_s=0.05)
        await remote.find_session()
        app = make_app(orch.settings, None, None, other, SystemClock(), orchestrator=remote)
        async with app.run_test(size=(120, 40)) as pilot:
            for _ in range(100):
                await pilot.pause(0.05)
                if app.model.current is not None and app.model.snapshot is not None:
                    break
            assert app.model.current is not None  # a student is writing in the other "process"
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
