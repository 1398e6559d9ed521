"""Where the database lives (issue 12, point 10): read-only media read as they are, a private
data dir and file whatever the umask, a schema missing a table repaired at open."""

from __future__ import annotations

import io
import os
import sqlite3
from pathlib import Path

import pytest
from rich.console import Console

from rhtui.commands.report import export_data, print_report
from rhtui.engine import store as store_mod
from rhtui.engine.records import RunRecord
from rhtui.engine.store import MIN_READ_VERSION, SCHEMA_VERSION, Store, StoreError, open_mode


def deny_writes(monkeypatch, *paths: Path) -> None:
    """As read-only media (or 0555/0444 for a user who is not root) look to `os.access`: the tests
    run as root, for whom chmod does not stop writes, so the decision is tested through os.access."""
    denied = {str(p) for p in paths}
    real_access = os.access

    def access(path, mode, *a, **kw):
        if mode & os.W_OK and str(path) in denied:
            return False
        return real_access(path, mode, *a, **kw)

    monkeypatch.setattr(store_mod.os, "access", access)


async def a_database(path: Path) -> None:
    s = await Store.open(path)
    sid = await s.start_session("s", 1.0)
    await s.record_run(RunRecord(session_id=sid, cycle=1, student="rh-alpha", model="rh-alpha", status="ok",
                                 started_at=1.0, ended_at=2.0, total_s=1.0, tokens=10, vram_mb=4000.0,
                                 proposal="text"))
    await s.close()


def sidecars(path: Path) -> list[str]:
    return [s for s in ("-wal", "-shm") if Path(f"{path}{s}").exists()]


def test_open_mode_follows_what_this_user_may_write(tmp_path, monkeypatch):
    db = tmp_path / "rhtui.db"
    db.write_bytes(b"")
    assert open_mode(db) == "rw"
    deny_writes(monkeypatch, db)
    assert open_mode(db) == "ro"  # the file is read-only, its directory is not: -shm can be made
    deny_writes(monkeypatch, db, tmp_path)
    assert open_mode(db) == "immutable"  # nothing can be made next to it
    Path(f"{db}-wal").write_bytes(b"x" * 100)
    Path(f"{db}-shm").write_bytes(b"")
    assert open_mode(db) == "ro"  # a -wal with writes in it is read through its -shm


async def test_report_export_and_watch_read_a_database_on_read_only_media(tmp_path, monkeypatch, capsys):
    db = tmp_path / "rhtui.db"
    await a_database(db)
    assert sidecars(db) == []  # a clean close leaves the file alone
    before = db.read_bytes()
    os.chmod(db, 0o444)
    os.chmod(tmp_path, 0o555)
    try:
        deny_writes(monkeypatch, db, tmp_path)
        store = await Store.open(db, mode="auto")
        try:
            assert store.read_only
            assert [r.proposal for r in await store.runs()] == ["text"]
            with pytest.raises(sqlite3.OperationalError, match="readonly"):
                await store.push_control(1, "pause")
        finally:
            await store.close()
        report = io.StringIO()
        assert await print_report(db, None, "json", 10, Console(file=report, width=200)) == 0
        assert '"student": "rh-alpha"' in report.getvalue()
        runs = io.StringIO()
        assert await export_data(db, "runs", None, "csv", runs) == 0
        assert "rh-alpha" in runs.getvalue() and "move it aside" not in capsys.readouterr().err
        assert sidecars(db) == [] and db.read_bytes() == before  # not a byte written, nothing made next to it
    finally:
        os.chmod(tmp_path, 0o755)
        os.chmod(db, 0o644)


async def test_a_read_only_database_of_an_older_schema_is_refused_with_what_to_do(tmp_path, monkeypatch):
    db = tmp_path / "rhtui.db"
    await a_database(db)
    with sqlite3.connect(db) as c:
        c.execute(f"PRAGMA user_version = {MIN_READ_VERSION - 1}")
    deny_writes(monkeypatch, db, tmp_path)
    with pytest.raises(StoreError, match="copy it to a writable place and point --data-dir there"):
        await Store.open(db, mode="auto")


async def test_the_data_dir_and_the_database_are_private_whatever_the_umask(tmp_path):
    old = os.umask(0)
    try:
        db = tmp_path / "deep" / "data" / "rhtui.db"
        s = await Store.open(db)
        await s.start_session("s", 1.0)
        try:
            assert db.parent.stat().st_mode & 0o777 == 0o700
            assert db.stat().st_mode & 0o777 == 0o600
            assert Path(f"{db}-wal").stat().st_mode & 0o777 == 0o600  # SQLite copies the file's mode
        finally:
            await s.close()
        # an existing directory keeps its mode: rhtui only decides for what it creates
        shared = tmp_path / "shared"
        shared.mkdir(mode=0o755)
        os.chmod(shared, 0o755)
        s = await Store.open(shared / "rhtui.db")
        await s.close()
        assert shared.stat().st_mode & 0o777 == 0o755
        assert (shared / "rhtui.db").stat().st_mode & 0o777 == 0o600
    finally:
        os.umask(old)


async def test_a_database_missing_controls_or_a_column_is_repaired_at_open(tmp_path):
    db = tmp_path / "rhtui.db"
    await a_database(db)
    with sqlite3.connect(db) as c:
        c.execute("DROP TABLE controls")
        c.execute("ALTER TABLE student_runs DROP COLUMN energy_j")
        assert c.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    s = await Store.open(db)
    try:
        assert s.repaired == ["controls", "controls_pending", "student_runs.energy_j"]
        await s.push_control(1, "pause")  # the engine's poll of controls works again: no error a second
        assert [c for _id, c, _arg in await s.take_controls(1)] == ["pause"]
        assert [r.proposal for r in await s.runs()] == ["text"]  # the data is still there
    finally:
        await s.close()
    s = await Store.open(db)
    try:
        assert s.repaired == []  # once is enough
    finally:
        await s.close()


def test_the_schema_expected_follows_drops_and_later_columns():
    steps = (
        ("CREATE TABLE a (x)", "CREATE INDEX a_x ON a(x)", "CREATE TABLE gone (y)"),
        ("ALTER TABLE a ADD COLUMN z REAL", "DROP TABLE gone", "UPDATE a SET x = 1"),
    )
    creates, columns = store_mod._expected_schema(steps)
    assert list(creates) == ["a", "a_x"]
    assert columns == {"a": [("z", "ALTER TABLE a ADD COLUMN z REAL")]}
