"""The store: migrations, refusals that leave a file untouched, round trips, reports, batching, controls."""

from __future__ import annotations

import asyncio
import math
import os
import sqlite3
from dataclasses import fields, replace
from pathlib import Path
from typing import Any

import aiosqlite
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rhtui.engine.hardware import HardwareSnapshot
from rhtui.engine.records import RunRecord, RunStatus
from rhtui.engine.store import (
    APPLICATION_ID,
    MIGRATIONS,
    SCHEMA_VERSION,
    Store,
    StoreError,
    migrate,
)


def run(session_id: int, student: str = "rh-alpha", status: RunStatus = "ok", t: float = 0.0, **kw) -> RunRecord:
    return RunRecord(session_id=session_id, cycle=kw.pop("cycle", 1), student=student, model=f"{student}:latest",
                     status=status, started_at=t, ended_at=t + 1, **kw)


def snap(ts: float, used: float | None, total: float = 12282.0) -> HardwareSnapshot:
    return HardwareSnapshot(ts=ts, source="sim", vram_used_mb=used, vram_total_mb=total)


def count(path: Path, table: str) -> int:
    with sqlite3.connect(path) as conn:
        return conn.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0]


@pytest.fixture
async def store():
    s = await Store.open(":memory:")
    yield s
    await s.close()


# -- opening and migrations -----------------------------------------------------------------


async def test_open_creates_directory_and_current_schema(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "er" / "rhtui.db"
    async with await Store.open(path) as s:
        assert await s.schema_version() == SCHEMA_VERSION == len(MIGRATIONS)
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert conn.execute("PRAGMA application_id").fetchone()[0] == APPLICATION_ID
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert {"sessions", "cycles", "student_runs", "hardware_snapshots", "events", "controls"} <= tables


async def test_reopen_is_a_no_op(tmp_path: Path) -> None:
    path = tmp_path / "rhtui.db"
    async with await Store.open(path) as s:
        sid = await s.start_session("a", 1.0, {})
    async with await Store.open(path) as s:
        got = await s.get_session(sid)
        assert got is not None and got.name == "a"
        assert await s.schema_version() == SCHEMA_VERSION


def _schema(path: Path) -> dict[str, list[tuple]]:
    with sqlite3.connect(path) as conn:
        names = [r[0] for r in conn.execute(
            "SELECT name FROM sqlite_master WHERE name NOT LIKE 'sqlite_%' ORDER BY name")]
        return {n: conn.execute(f"PRAGMA index_info({n})").fetchall() or conn.execute(
            f"PRAGMA table_info({n})").fetchall() for n in names}


@pytest.mark.parametrize("old", range(SCHEMA_VERSION))
async def test_opens_a_database_from_every_older_version(tmp_path: Path, old: int) -> None:
    path = tmp_path / f"v{old}.db"
    async with aiosqlite.connect(path, isolation_level=None) as db:
        assert await migrate(db, target=old) == old
        if old >= 1:  # rows as a v1 (or later) program wrote them
            await db.execute("INSERT INTO sessions (id, name, started_at, meta) VALUES (1, 'old', 10.0, '{\"k\": 1}')")
            await db.execute(
                "INSERT INTO student_runs (session_id, cycle, student, model, status, started_at, ended_at, "
                "vram_mb, tokens, total_s, proposal) VALUES (1, 1, 'rh-beta', 'm', 'ok', 11.0, 40.0, 4389, 3156, "
                "29.0, 'zeros')")
            await db.execute("INSERT INTO hardware_snapshots (ts, session_id, vram_used_mb, vram_total_mb, source) "
                             "VALUES (12.0, 1, 5000, 12282, 'nvml')")
            await db.execute("INSERT INTO events (session_id, ts, kind, level, message) "
                             "VALUES (1, 13.0, 'LogMessage', 'info', 'hello')")
        if old >= 2:
            await db.execute("UPDATE student_runs SET energy_j = 1234.5, vram_delta_mb = 4400")

    async with await Store.open(path) as s:
        assert await s.schema_version() == SCHEMA_VERSION
        if old >= 1:
            session = await s.get_session(1)
            assert session is not None
            assert (session.name, session.started_at, session.meta) == ("old", 10.0, {"k": 1})
            [r] = await s.runs(session_id=1)
            assert (r.student, r.vram_mb, r.tokens, r.total_s, r.proposal) == ("rh-beta", 4389, 3156, 29.0, "zeros")
            assert r.energy_j == (1234.5 if old >= 2 else None)
            [p] = await s.vram_timeline(session_id=1)
            assert p.vram_used_mb == 5000
            [e] = await s.events_since(1)
            assert e.message == "hello"
            sid = 1
        else:
            sid = await s.start_session("new", 1.0, {})
        # what the newer steps brought works on the migrated file
        await s.record_run(run(sid, energy_j=9.0, vram_delta_mb=1.0))
        await s.push_control(sid, "pause")
        assert [c[1] for c in await s.take_controls(sid)] == ["pause"]

    fresh = tmp_path / "fresh.db"
    async with await Store.open(fresh):
        pass
    assert _schema(path) == _schema(fresh)


async def test_a_failing_step_rolls_back_entirely(tmp_path: Path) -> None:
    path = tmp_path / "broken.db"
    steps = (*MIGRATIONS[:1], ("CREATE TABLE half_done (x)", "THIS IS NOT SQL"))
    async with aiosqlite.connect(path, isolation_level=None) as db:
        with pytest.raises(sqlite3.OperationalError):
            await migrate(db, target=2, steps=steps)
        row = await (await db.execute("PRAGMA user_version")).fetchone()
        assert row is not None and row[0] == 1
        names = [r[0] for r in await db.execute_fetchall("SELECT name FROM sqlite_master")]
        assert "half_done" not in names and "sessions" in names


# -- refusing files, leaving them byte for byte as they were ---------------------------------


async def _real_db(path: Path, runs: int = 300) -> None:
    async with await Store.open(path) as s:
        sid = await s.start_session("s", 0.0, {})
        for i in range(runs):
            await s.record_run(run(sid, t=float(i), proposal="x" * 500))


def _not_a_db(path: Path) -> None:
    path.write_text("[session]\nname = 'this is a TOML file, not a database'\n")


def _garbage_page(path: Path) -> None:
    asyncio.run(_real_db(path))
    data = bytearray(path.read_bytes())
    page = int.from_bytes(data[16:18], "big")
    data[page * 3: page * 4] = bytes((i * 7 + 3) % 256 for i in range(page))  # page 4 becomes noise
    path.write_bytes(bytes(data))


def _truncated(path: Path) -> None:
    asyncio.run(_real_db(path))
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def _newer(path: Path) -> None:
    asyncio.run(_real_db(path, runs=3))
    with sqlite3.connect(path) as conn:
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    conn.close()


def _foreign(path: Path) -> None:
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE invoices (id INTEGER PRIMARY KEY, total REAL)")
        conn.execute("INSERT INTO invoices (total) VALUES (12.5)")
    conn.close()


@pytest.mark.parametrize(
    ("make", "says"),
    [
        (_not_a_db, "not a SQLite database"),
        (_garbage_page, "damaged"),
        (_truncated, "damaged"),
        (_newer, "newer rhtui"),
        (_foreign, "not rhtui's"),
    ],
)
async def test_refuses_a_file_and_leaves_it_untouched(tmp_path: Path, make, says: str) -> None:
    path = tmp_path / "rhtui.db"
    await asyncio.to_thread(make, path)
    before = path.read_bytes()
    listing = sorted(os.listdir(tmp_path))
    with pytest.raises(StoreError) as info:
        await Store.open(path)
    message = str(info.value)
    assert str(path) in message and says in message and "--data-dir" in message
    assert path.read_bytes() == before
    assert sorted(os.listdir(tmp_path)) == listing  # no -wal / -shm left next to it


async def test_newer_schema_message_names_both_versions(tmp_path: Path) -> None:
    path = tmp_path / "rhtui.db"
    await asyncio.to_thread(_newer, path)
    with pytest.raises(StoreError, match=rf"schema v{SCHEMA_VERSION + 1}.*up to v{SCHEMA_VERSION}"):
        await Store.open(path)


async def test_refuses_a_newer_database_that_is_open_elsewhere(tmp_path: Path) -> None:
    path = tmp_path / "rhtui.db"
    await asyncio.to_thread(_newer, path)
    with sqlite3.connect(path) as newer_rhtui:  # still running: its -wal and -shm are there
        newer_rhtui.execute("SELECT COUNT(*) FROM student_runs").fetchone()
        before = path.read_bytes()
        with pytest.raises(StoreError, match="newer rhtui"):
            await Store.open(path)
        assert path.read_bytes() == before
    newer_rhtui.close()


async def test_an_empty_file_becomes_a_database(tmp_path: Path) -> None:
    path = tmp_path / "rhtui.db"
    path.touch()
    async with await Store.open(path) as s:
        assert await s.schema_version() == SCHEMA_VERSION


# -- sessions, cycles and runs ----------------------------------------------------------------


async def test_sessions_and_cycles(tmp_path: Path) -> None:
    path = tmp_path / "rhtui.db"
    async with await Store.open(path) as s:
        assert await s.latest_session() is None
        a = await s.start_session("nightly", 100.0, {"policy": "fair", "duration_s": 28800})
        b = await s.start_session("demo", 200.0, {})
        c = await s.start_session("nightly", 300.0, {})
        await s.end_session(a, 150.0, "finished")
        got = await s.get_session(a)
        assert got is not None
        assert (got.name, got.started_at, got.ended_at, got.end_reason) == ("nightly", 100.0, 150.0, "finished")
        assert got.meta == {"policy": "fair", "duration_s": 28800}
        assert await s.get_session(999) is None
        latest, demo = await s.latest_session(), await s.latest_session("demo")
        assert latest is not None and latest.id == c
        assert demo is not None and demo.id == b
        assert await s.latest_session("nope") is None
        assert [x.id for x in await s.list_sessions()] == [a, b, c]
        cycle = await s.start_cycle(a, 1, 101.0)
        await s.end_cycle(cycle, 140.0, completed=5, skipped=1, tokens=15000, seconds=39.0)
    with sqlite3.connect(path) as conn:
        row = conn.execute("SELECT session_id, n, started_at, ended_at, completed, skipped, tokens, seconds "
                           "FROM cycles").fetchone()
    assert row == (a, 1, 101.0, 140.0, 5, 1, 15000, 39.0)


async def test_a_run_round_trips_field_for_field(store: Store) -> None:
    sid = await store.start_session("s", 0.0, {})
    values: dict[str, Any] = {"session_id": sid, "cycle": 7, "student": "rh-gamma", "model": "rh-gamma:latest",
              "status": "ok", "started_at": 1000.25, "ended_at": 1023.5, "reason": "fits: 4401 MB",
              "load_s": 1.5, "prompt_s": 0.25, "eval_s": 20.5, "total_s": 22.1, "wall_s": 23.25,
              "prompt_tokens": 312, "tokens": 2200, "tok_per_s": 107.3, "vram_mb": 4401.0,
              "vram_peak_mb": 8900.5, "vram_delta_mb": 4380.0, "energy_j": 4567.8,
              "proposal": "Consider the zeros of ζ(s)…\nline two", "error": "",
              "kind": "synthesis", "question": "Why σ = 1/2?", "system": "You merge.", "prompt": "Merge these:\n…",
              "context_ids": (3, 5, 8), "target_id": 2, "digest": "sha256:ab12", "options": {"num_ctx": 8192},
              "ollama_version": "0.12.3", "done_reason": "length", "verifier": ("no proof sketch",),
              "scores": {"rigor": {"score": 6.5, "reason": "gaps"}}, "score": 6.5}
    assert set(values) == {f.name for f in fields(RunRecord)} - {"id"}  # every field is exercised
    record = RunRecord(**values)
    rid = await store.record_run(record)
    [back] = await store.runs(session_id=sid)
    assert back == replace(record, id=rid)
    assert (await store.recent_runs_by_student(with_text=True))["rh-gamma"] == [back]
    assert (await store.recent_runs_by_student())["rh-gamma"] == [replace(back, proposal="", prompt="")]  # costs
    assert await store.proposals(session_id=sid) == [back]


async def test_statuses_are_checked(store: Store, tmp_path: Path) -> None:
    sid = await store.start_session("s", 0.0, {})
    with pytest.raises(ValueError, match="unknown run status"):
        await store.record_run(run(sid, status="exploded"))  # type: ignore[arg-type]  # not a status, on purpose
    path = tmp_path / "rhtui.db"
    async with await Store.open(path) as s:
        sid = await s.start_session("s", 0.0, {})
    with sqlite3.connect(path) as conn, pytest.raises(sqlite3.IntegrityError, match="CHECK"):
        conn.execute("INSERT INTO student_runs (session_id, cycle, student, model, status, started_at, ended_at) "
                     "VALUES (?, 1, 'a', 'm', 'exploded', 0, 1)", (sid,))


async def test_runs_filters_and_limit(store: Store) -> None:
    a = await store.start_session("nightly", 0.0, {})
    b = await store.start_session("nightly", 1000.0, {})
    c = await store.start_session("demo", 2000.0, {})
    for sid, base in ((a, 0), (b, 1000), (c, 2000)):
        for i, who in enumerate(["rh-alpha", "rh-beta"] * 3):
            await store.record_run(run(sid, who, t=base + i))
    assert len(await store.runs()) == 18
    assert {r.session_id for r in await store.runs(session_name="nightly")} == {a, b}
    only = await store.runs(session_id=c, student="rh-beta")
    assert [r.started_at for r in only] == [2001, 2003, 2005]
    latest = await store.runs(limit=4)
    assert [r.started_at for r in latest] == [2002, 2003, 2004, 2005]  # the latest, oldest first


async def test_proposals_are_ok_runs_with_text(store: Store) -> None:
    sid = await store.start_session("s", 0.0, {})
    await store.record_run(run(sid, t=1, proposal="first idea"))
    await store.record_run(run(sid, t=2, proposal=""))
    await store.record_run(run(sid, status="timeout", t=3, proposal="half an idea"))
    await store.record_run(run(sid, t=4, proposal="second idea"))
    assert [p.proposal for p in await store.proposals(session_name="s")] == ["first idea", "second idea"]


async def test_recent_runs_by_student_keeps_the_latest_per_student(store: Store) -> None:
    old = await store.start_session("yesterday", 0.0, {})
    new = await store.start_session("today", 10_000.0, {})
    for i in range(150):
        await store.record_run(run(old, "rh-alpha", t=float(i), tokens=i))
        await store.record_run(run(new, "rh-alpha", t=10_000.0 + i, tokens=1000 + i))
    for i in range(3):
        await store.record_run(run(new, "rh-zeta", status="error" if i == 1 else "ok", t=10_000.0 + i))
    await store.record_run(run(new, "rh-zeta", status="skipped", t=20_000.0))
    await store.record_run(run(new, "rh-eta", status="skipped", t=20_000.0))

    got = await store.recent_runs_by_student(limit_per_student=200)
    assert sorted(got) == ["rh-alpha", "rh-zeta"]
    alpha = got["rh-alpha"]
    assert len(alpha) == 200  # across both sessions, the latest 200, oldest first
    assert [r.tokens for r in alpha] == list(range(100, 150)) + list(range(1000, 1150))
    assert [r.status for r in got["rh-zeta"]] == ["ok", "error", "ok"]
    with_skips = await store.recent_runs_by_student(2, include_skipped=True)
    assert [r.status for r in with_skips["rh-zeta"]] == ["ok", "skipped"]
    assert [r.status for r in with_skips["rh-eta"]] == ["skipped"]


# -- reports --------------------------------------------------------------------------------


async def test_student_stats_with_known_numbers(store: Store) -> None:
    sid = await store.start_session("nightly", 0.0, {})
    for v in range(100, 0, -1):  # inserted out of order on purpose
        await store.record_run(run(sid, "rh-alpha", t=float(v), vram_mb=float(v), total_s=v / 10,
                                   tokens=v * 10, tok_per_s=100.0))
    for status in ("timeout", "timeout", "error", "aborted", "emergency", "skipped"):
        await store.record_run(run(sid, "rh-alpha", status=status, vram_mb=99_999.0, total_s=60.0))
    await store.record_run(run(sid, "rh-beta", vram_mb=4389.0, total_s=31.2, tokens=3156, tok_per_s=101.0))
    for v in range(1, 21):
        await store.record_run(run(sid, "rh-gamma", vram_mb=float(v)))
    await store.record_run(run(sid, "rh-zeta", status="skipped", reason="budget: does not fit"))
    other = await store.start_session("demo", 0.0, {})
    await store.record_run(run(other, "rh-alpha", vram_mb=1e6))

    stats = {s.student: s for s in await store.student_stats("nightly")}
    alpha = stats["rh-alpha"]
    assert (alpha.runs, alpha.failures) == (105, 5)  # skipped turns are not runs
    assert alpha.vram_mean_mb == pytest.approx(50.5)  # ok runs only
    assert alpha.vram_p95_mb == 95.0  # nearest-rank: ceil(0.95 * 100) = 95th smallest
    assert alpha.seconds_mean == pytest.approx(5.05)
    assert alpha.tokens_mean == pytest.approx(505.0)
    assert alpha.tok_per_s_mean == pytest.approx(100.0)
    beta = stats["rh-beta"]
    assert (beta.runs, beta.failures, beta.vram_mean_mb, beta.vram_p95_mb) == (1, 0, 4389.0, 4389.0)
    assert (beta.seconds_mean, beta.tokens_mean, beta.tok_per_s_mean) == (31.2, 3156, 101.0)
    assert stats["rh-gamma"].vram_p95_mb == 19.0  # ceil(0.95 * 20) = 19
    zeta = stats["rh-zeta"]
    assert (zeta.runs, zeta.failures, zeta.vram_mean_mb, zeta.vram_p95_mb) == (0, 0, None, None)
    everything = {s.student: s for s in await store.student_stats()}
    assert everything["rh-alpha"].runs == 106 and everything["rh-alpha"].vram_p95_mb == 96.0  # 101 values
    assert {s.student for s in await store.student_stats("demo")} == {"rh-alpha"}


def _nearest_rank_p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[math.ceil(0.95 * len(ordered)) - 1]


@settings(max_examples=40, deadline=None)
@given(st.lists(st.integers(min_value=0, max_value=24_000), min_size=1, max_size=300))
def test_p95_is_nearest_rank(values: list[int]) -> None:
    async def check() -> None:
        async with await Store.open(":memory:") as s:
            sid = await s.start_session("s", 0.0, {})
            for i, v in enumerate(values):
                await s.record_run(run(sid, t=float(i), vram_mb=float(v)))
            [stats] = await s.student_stats()
            assert stats.vram_p95_mb == _nearest_rank_p95([float(v) for v in values])

    asyncio.run(check())


async def test_timeline_downsamples_with_correct_means(store: Store) -> None:
    sid = await store.start_session("s", 0.0, {})
    other = await store.start_session("other", 0.0, {})
    for i in range(1000):  # ten buckets of 100 samples; bucket k holds k*100 .. k*100+99
        await store.add_snapshot(snap(float(i), float(i)), sid)
        await store.add_snapshot(snap(float(i), 1e6), other)
    points = await store.vram_timeline(session_id=sid, max_points=10)
    assert len(points) == 10
    for k, p in enumerate(points):
        assert p.vram_used_mb == pytest.approx(k * 100 + 49.5)
        assert p.vram_used_max_mb == k * 100 + 99
        assert p.ts == pytest.approx(k * 100 + 49.5)
        assert p.vram_total_mb == 12282.0
    assert len(await store.vram_timeline(max_points=500)) == 500
    window = await store.vram_timeline(session_name="s", start_ts=100.0, end_ts=299.0, max_points=2)
    assert [p.vram_used_mb for p in window] == [pytest.approx(149.5), pytest.approx(249.5)]


async def test_timeline_keeps_every_sample_when_few(store: Store) -> None:
    await store.add_snapshot(snap(5.0, 100.0), None)
    await store.add_snapshot(snap(6.0, None), None)  # no VRAM reading: a gap, not a zero
    await store.add_snapshot(snap(7.0, 300.0), None)
    points = await store.vram_timeline(max_points=500)
    assert [(p.ts, p.vram_used_mb) for p in points] == [(5.0, 100.0), (6.0, None), (7.0, 300.0)]
    assert await store.vram_timeline(session_id=1) == []
    [one] = await store.vram_timeline(max_points=1)
    assert (one.vram_used_mb, one.vram_used_max_mb) == (200.0, 300.0)
    with pytest.raises(ValueError):
        await store.vram_timeline(max_points=0)


@settings(max_examples=40, deadline=None)
@given(
    st.lists(st.tuples(st.floats(0, 1e5, allow_nan=False), st.floats(0, 24_000, allow_nan=False)),
             min_size=1, max_size=400),
    st.integers(min_value=1, max_value=600),
)
def test_timeline_never_exceeds_max_points(samples: list[tuple[float, float]], max_points: int) -> None:
    async def check() -> None:
        async with await Store.open(":memory:", snapshot_batch=64) as s:
            for ts, used in samples:
                await s.add_snapshot(snap(ts, used), None)
            points = await s.vram_timeline(max_points=max_points)
            assert 1 <= len(points) <= max_points
            assert len(points) <= len({ts for ts, _ in samples})
            all_used = [u for _, u in samples]
            maxima = [m for p in points if (m := p.vram_used_max_mb) is not None]
            assert len(maxima) == len(points) and max(maxima) == max(all_used)
            for p in points:
                assert p.vram_used_mb is not None and p.vram_used_max_mb is not None
                assert min(all_used) - 1e-6 <= p.vram_used_mb <= p.vram_used_max_mb + 1e-6
            assert [p.ts for p in points] == sorted(p.ts for p in points)

    asyncio.run(check())


# -- snapshots, events, controls ---------------------------------------------------------------


async def test_snapshots_are_batched_and_never_lost_on_close(tmp_path: Path) -> None:
    path = tmp_path / "rhtui.db"
    s = await Store.open(path, snapshot_batch=10)
    sid = await s.start_session("s", 0.0, {})
    for i in range(9):
        await s.add_snapshot(snap(float(i), 1.0), sid)
    assert count(path, "hardware_snapshots") == 0  # buffered
    await s.add_snapshot(snap(9.0, 1.0), sid)
    assert count(path, "hardware_snapshots") == 10  # the batch went in one write
    for i in range(5):
        await s.add_snapshot(snap(10.0 + i, 1.0), sid)
    await s.flush()
    assert count(path, "hardware_snapshots") == 15
    for i in range(3):
        await s.add_snapshot(snap(20.0 + i, 1.0), None)
    await s.close()
    await s.close()  # twice is fine
    assert count(path, "hardware_snapshots") == 18


async def test_purge_snapshots(store: Store) -> None:
    for i in range(10):
        await store.add_snapshot(snap(float(i), 1.0), None)  # still buffered: purge flushes first
    assert await store.purge_snapshots(older_than_ts=4.0) == 4
    assert [p.ts for p in await store.vram_timeline()] == [4.0, 5.0, 6.0, 7.0, 8.0, 9.0]


async def test_events_since_follows_by_id(store: Store) -> None:
    sid = await store.start_session("s", 0.0, {})
    other = await store.start_session("o", 0.0, {})
    ids = [await store.add_event(sid, float(i), "LogMessage", "info", f"line {i}", {"i": i}) for i in range(5)]
    await store.add_event(other, 9.0, "LogMessage", "info", "elsewhere")
    first = await store.events_since(sid, 0, limit=3)
    assert [e.message for e in first] == ["line 0", "line 1", "line 2"]
    rest = await store.events_since(sid, first[-1].id, limit=100)
    assert [e.data for e in rest] == [{"i": 3}, {"i": 4}]
    assert await store.events_since(sid, ids[-1]) == []
    assert len(await store.events_since(None, 0)) == 6


async def test_controls_are_taken_once(tmp_path: Path) -> None:
    path = tmp_path / "rhtui.db"
    engine = await Store.open(path)
    watcher = await Store.open(path)  # `rhtui watch` in another process: its own connection
    try:
        sid = await engine.start_session("s", 0.0, {})
        other = await engine.start_session("o", 0.0, {})
        a = await watcher.push_control(sid, "pause", ts=1.0)
        b = await watcher.push_control(sid, "disable", "rh-zeta", ts=2.0)
        await watcher.push_control(other, "stop")
        assert await engine.take_controls(sid, now=3.0) == [(a, "pause", None), (b, "disable", "rh-zeta")]
        assert await engine.take_controls(sid) == []
        for i in range(20):
            await watcher.push_control(sid, "skip", str(i))
        taken = await asyncio.gather(engine.take_controls(sid), watcher.take_controls(sid),
                                     engine.take_controls(sid), watcher.take_controls(sid))
        ids = [c[0] for batch in taken for c in batch]
        assert len(ids) == len(set(ids)) == 20
        assert [c[1] for c in await engine.take_controls(other)] == ["stop"]
    finally:
        await watcher.close()
        await engine.close()
