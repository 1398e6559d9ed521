"""A full disk in the middle of a session (issue 12, point 2).

SQLite's `PRAGMA max_page_count` on the engine's own connection makes every write past
a size fail with SQLITE_FULL ("database or disk is full"), as a full disk does, but
deterministically and without a tmpfs. The whole program runs: `rhtui --demo --headless`
(the real engine on the simulator over HTTP) through the CLI, in this process.
"""

from __future__ import annotations

import gc
import logging
import sqlite3

import pytest
from typer.testing import CliRunner

from rhtui.commands.cli import app
from rhtui.engine.store import Store, StoreFull

pytestmark = pytest.mark.integration

ROOM_PAGES = 40
"""Pages the database may grow by: a few runs, their events and samples, then it is full."""


def limit_growth(monkeypatch, pages: int) -> None:
    """Every Store opened on a demo database may grow by `pages` pages, then its writes fail."""
    real_open = Store.open.__func__  # type: ignore[attr-defined]

    async def open_limited(cls, path, **kw):
        store = await real_open(cls, path, **kw)
        if str(path).endswith("rhtui-demo.db"):
            used = (await store._one("PRAGMA page_count"))[0]
            await store._db.execute(f"PRAGMA max_page_count = {used + pages}")
        return store

    monkeypatch.setattr(Store, "open", classmethod(open_limited))


def test_a_full_disk_stops_the_session_gracefully_keeps_what_was_saved_and_exits_1(tmp_path, monkeypatch, caplog):
    limit_growth(monkeypatch, ROOM_PAGES)
    caplog.set_level(logging.ERROR, logger="asyncio")
    # a generous timeout (10 s of real time at 60x): on a loaded machine the runs still end ok
    result = CliRunner().invoke(app, ["--demo", "--headless", "--speed", "60", "--max-cycles", "30",
                                      "--timeout", "600", "--data-dir", str(tmp_path)])
    gc.collect()  # a task whose exception nobody retrieved says so when it is collected
    err, out = result.stderr, result.stdout
    assert result.exit_code == 1, (out[-3000:], err[-3000:], result.exception)
    assert f"the disk holding {tmp_path} is full" in err
    assert "Everything saved before is kept" in err and "Free some space" in err
    assert "Traceback" not in err + out and "never retrieved" not in err + out
    assert not [r for r in caplog.records if "never retrieved" in r.getMessage()]
    assert "CRITICAL" in out and "stopping the session" in out  # the log line, as it happened

    db = tmp_path / "rhtui-demo.db"
    with sqlite3.connect(db) as c:
        assert c.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        ended, reason = c.execute("SELECT ended_at, end_reason FROM sessions").fetchone()
        ok = c.execute("SELECT COUNT(*) FROM student_runs WHERE status = 'ok' AND proposal != ''").fetchone()[0]
    if "Even marking the session stopped failed" in err:  # the close itself found no room: said so
        assert ended is None and "closes it as interrupted" in err
    else:
        assert ended is not None and reason == f"the disk holding {tmp_path} is full"
        assert "The session is closed with the reason" in err
    assert ok >= 1  # the runs committed before the disk filled are all there, text included
    # the next start (with room again) finds it as it was left, and carries on
    monkeypatch.undo()
    again = CliRunner().invoke(app, ["--demo", "--headless", "--speed", "60", "--max-cycles", "1",
                                     "--data-dir", str(tmp_path)])
    assert again.exit_code == 0, again.stderr[-3000:]
    with sqlite3.connect(db) as c:
        assert c.execute("SELECT COUNT(*) FROM sessions WHERE ended_at IS NULL").fetchone()[0] == 0
        assert c.execute("SELECT COUNT(*) FROM student_runs WHERE status = 'ok'").fetchone()[0] > ok


async def test_when_even_closing_the_session_fails_the_engine_says_so(tmp_path, monkeypatch):
    """The session's own row cannot be written either: the reason is logged and kept in
    `end_error`, and the session is left for the next start to close as interrupted."""
    from rhtui.commands.cli import _after_session
    from rhtui.commands.context import make_console

    store = await Store.open(tmp_path / "rhtui.db")
    sid = await store.start_session("s", 1.0)

    class Engine:
        session_id = sid
        store_full = StoreFull(str(tmp_path), "database or disk is full")
        end_error = "the disk holding it is full (database or disk is full)"

    console = make_console(stderr=True)
    with console.capture() as captured:
        code = await _after_session(store, Engine(), 0, console)
    assert code == 1
    text = captured.get()
    assert f"the disk holding {tmp_path} is full" in text
    assert "Even marking the session stopped failed" in text and "closes it as interrupted" in text


async def test_store_full_is_raised_for_sqlite_full_and_named_after_the_data_dir(tmp_path):
    store = await Store.open(tmp_path / "rhtui.db")
    try:
        used = (await store._one("PRAGMA page_count"))[0]
        await store._db.execute(f"PRAGMA max_page_count = {used}")
        sid = None
        with pytest.raises(StoreFull) as caught:
            for i in range(200):  # the first page to be added fails
                sid = await store.start_session("x" * 2000, float(i))
        assert caught.value.directory == str(tmp_path) and store.full is caught.value
        assert f"the disk holding {tmp_path} is full (database or disk is full)" == str(caught.value)
        # buffered samples are kept on a failed flush, and given up (not raised) at close
        from rhtui.engine.hardware import HardwareSnapshot

        for t in range(5):
            await store.add_snapshot(HardwareSnapshot(ts=float(t), source="test"), sid)
        with pytest.raises(StoreFull):
            for t in range(5, 3000):
                await store.add_snapshot(HardwareSnapshot(ts=float(t), source="test"), sid)
                await store.flush()
        assert store._pending
    finally:
        await store.close()
    assert store.dropped_samples > 0
