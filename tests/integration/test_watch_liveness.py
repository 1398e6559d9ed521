"""`rhtui watch` on a session whose engine is gone, and on the live one (issue 12, points 4 and 10).

A session whose engine stopped writing and holds no lock any more is shown stale, with
the time of its last write; one closed without a word (a full disk) shows its row's
reason; with no --session, the session whose engine holds the lock is followed, whatever
the timestamps say (a demo's clock runs ahead of the wall's).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from rhtui.engine import events as ev
from rhtui.engine.clock import SystemClock
from rhtui.engine.config import BudgetPolicy
from rhtui.engine.lock import FileLock, db_lock_path
from rhtui.engine.store import Store
from rhtui.engine.watch import WatchedSession
from rhtui.tui.screens.base import banner_for
from rhtui.tui.state import UiModel
from tests.helpers import until_async

pytestmark = pytest.mark.integration


async def open_session(store: Store, started: float, name: str = "rh_main") -> int:
    sid = await store.start_session(name, started)
    await store.add_event(sid, started + 5, "LogMessage", "info", "hello",
                          {"ts": started + 5, "level": "info", "text": "hello"})
    return sid


def watcher(store: Store, db, seen: list, **kw) -> WatchedSession:
    remote = WatchedSession(store, SystemClock(), lock_path=db_lock_path(db), interval_s=0.05, **kw)
    remote.bus.subscribe(seen.append)
    return remote


async def quiet_for_a_minute(store: Store, db) -> tuple[WatchedSession, list[ev.Event]]:
    """A watcher (stale at once without news) on the session, polled before and after its last
    news is made a minute old: (watcher, the events it gave)."""
    seen: list[ev.Event] = []
    remote = watcher(store, db, seen, stale_after_s=0.0)
    await remote.find_session()
    await remote.poll()
    remote._last_news -= 60
    await remote.poll()
    return remote, seen


@contextmanager
def held_by_a_live_engine(db, session_id: int) -> Iterator[FileLock]:
    """The database's engine lock, held as a live engine (pid 1) running the session holds it."""
    lock = FileLock(db_lock_path(db))
    ok, _ = lock.acquire({"pid": 1, "session_id": session_id, "session": "rh_main"})  # pid 1 is alive
    assert ok
    try:
        yield lock
    finally:
        lock.release()


async def test_a_session_whose_engine_is_gone_is_shown_stale_with_its_last_write(store, tmp_path):
    db = tmp_path / "rhtui.db"
    t0 = time.time() - 3600
    await open_session(store, t0)  # an engine killed an hour ago: never closed, no lock held
    seen: list[ev.Event] = []
    remote = watcher(store, db, seen, stale_after_s=0.3)
    task = asyncio.ensure_future(remote.run())
    try:
        await until_async(lambda: remote.stale is not None, timeout=30, what="the watcher to call it stale")
    finally:
        remote.request_stop()
        await task
    at = time.strftime("%H:%M:%S", time.localtime(t0 + 5))
    assert remote.stale.startswith(f"stale: the engine stopped writing at {at} and is gone")
    assert "no engine holds rhtui.db.lock" in remote.stale
    states = [e for e in seen if isinstance(e, ev.StateChanged)]
    assert states[-1].state == "finished" and states[-1].reason == remote.stale
    # the dashboard says it where it cannot be missed
    model = UiModel(session_name="rh_main", host="http://127.0.0.1:11434", students=[], duration_s=60.0,
                    budget=BudgetPolicy())
    for e in seen:
        model.apply(e)
    kind, text = banner_for(model)
    assert kind == "error" and "stale: the engine stopped writing at" in text


async def test_a_quiet_session_whose_engine_holds_the_lock_is_not_stale(store, tmp_path):
    db = tmp_path / "rhtui.db"
    sid = await open_session(store, time.time())
    with held_by_a_live_engine(db, sid) as lock:
        # a minute without a word (a long load, a pause): the engine is still there
        remote, _seen = await quiet_for_a_minute(store, db)
        assert remote.stale is None and remote.state != "finished"
        lock.release()  # its engine exits without closing the session (kill -9 frees the lock like this)
        await remote.poll()
        assert remote.stale is not None


async def test_a_session_closed_without_a_stored_end_shows_its_rows_reason(store, tmp_path):
    db = tmp_path / "rhtui.db"
    sid = await open_session(store, time.time() - 100)
    await store.end_session(sid, time.time() - 50, f"the disk holding {tmp_path} is full")
    remote, seen = await quiet_for_a_minute(store, db)
    finished = [e for e in seen if isinstance(e, ev.SessionFinished)]
    assert [f.reason for f in finished] == [f"the disk holding {tmp_path} is full"]
    assert remote.stale is None


async def test_without_session_the_watcher_follows_the_live_one_not_the_latest_timestamp(tmp_path):
    db = tmp_path / "rhtui-demo.db"
    store = await Store.open(db)
    try:
        now = time.time()
        live = await open_session(store, now)
        await store.end_session(await open_session(store, now + 86400), now + 90000, "finished")  # a fast demo's
        assert (await WatchedSession(store, SystemClock()).find_session()) != live  # by timestamp alone
        with held_by_a_live_engine(db, live):
            assert await watcher(store, db, []).find_session() == live
            assert await watcher(store, db, [], session_name="rh_main").find_session() == live
    finally:
        await store.close()
