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
