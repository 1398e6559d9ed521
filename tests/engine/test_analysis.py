"""The original system's analysis on a recorded database: its two queries run as written (on a
database migrated from the previous schema, on one repaired, on one only read), the p50/p95/p99
seconds and success rate per student, the highest VRAM peak never averaged away, the per-cycle
summary, and the report that shows them."""

from __future__ import annotations

import io
import json
import shutil
import sqlite3
import subprocess
from pathlib import Path

import aiosqlite
import pytest
from rich.console import Console

from rhtui.commands.report import print_report
from rhtui.engine.config import CostPolicy
from rhtui.engine.records import RunRecord, RunStatus
from rhtui.engine.store import MIGRATIONS, MIN_READ_VERSION, SCHEMA_VERSION, Store, migrate
from tests.engine.test_store_media import deny_writes

PER_STUDENT = "SELECT student, AVG(time_seconds), AVG(vram_used_mb), COUNT(*) FROM student_runs GROUP BY student"
LATEST_SAMPLES = "SELECT timestamp, vram_used, vram_total FROM hardware_snapshots ORDER BY timestamp DESC LIMIT 20"
T0 = 1_738_332_309.25  # 2025-01-31T14:05:09.250Z


def run(session_id: int, student: str, status: RunStatus = "ok", t: float = 0.0, **kw) -> RunRecord:
    return RunRecord(session_id=session_id, cycle=kw.pop("cycle", 1), student=student, model=student, status=status,
                     started_at=t, ended_at=t + 1, **kw)


async def v3_database(path: Path) -> None:
    """A database as the previous release (schema v3) left it: two students' runs, 30 samples."""
    async with aiosqlite.connect(path, isolation_level=None) as db:
        assert await migrate(db, target=3) == 3
        await db.execute("INSERT INTO sessions (id, name, started_at) VALUES (1, 'rh_main', ?)", (T0,))
        rows = [("rh-alpha", "ok", 28.5, 3847.0), ("rh-alpha", "ok", 30.5, 3849.0), ("rh-alpha", "timeout", None, None),
                ("rh-beta", "ok", 31.2, 4389.0), ("rh-beta", "skipped", None, None)]
        for i, (student, status, total_s, vram) in enumerate(rows):
            await db.execute(
                "INSERT INTO student_runs (session_id, cycle, student, model, status, started_at, ended_at, total_s, "
                "vram_mb) VALUES (1, 1, ?, ?, ?, ?, ?, ?, ?)", (student, student, status, T0 + i, T0 + i + 1, total_s,
                                                                 vram))
        for i in range(30):
            await db.execute("INSERT INTO hardware_snapshots (ts, session_id, vram_used_mb, vram_total_mb, source) "
                             "VALUES (?, 1, ?, 12282, 'nvml')", (T0 + i, 900.0 + i))


def original_queries(path: Path) -> tuple[list, list]:
    with sqlite3.connect(path) as conn:
        return conn.execute(PER_STUDENT).fetchall(), conn.execute(LATEST_SAMPLES).fetchall()


def check_answers(per_student: list, latest: list) -> None:
    # time_seconds is total_s, vram_used_mb the model's resident vram_mb; COUNT(*) counts every row
    assert per_student == [("rh-alpha", 29.5, 3848.0, 3), ("rh-beta", 31.2, 4389.0, 2)]
    assert len(latest) == 20
    assert latest[0] == ("2025-01-31T14:05:38.250Z", 929.0, 12282.0)  # the newest first, ISO 8601 in UTC
    assert latest[-1] == ("2025-01-31T14:05:19.250Z", 910.0, 12282.0)
    assert [r[0] for r in latest] == sorted((r[0] for r in latest), reverse=True)


async def test_the_original_queries_run_as_written_on_a_database_of_the_previous_version(tmp_path):
    db = tmp_path / "rhtui.db"
    await v3_database(db)
    with pytest.raises(sqlite3.OperationalError, match="no such column: time_seconds"):
        original_queries(db)
    async with await Store.open(db) as s:
        assert await s.schema_version() == SCHEMA_VERSION >= 4
        assert s.repaired == []  # generated columns are seen as there (table_xinfo), not re-added
        await s.record_run(run(1, "rh-beta", total_s=33.2, vram_mb=4391.0, t=T0 + 10))  # new rows get them too
    per_student, latest = original_queries(db)
    assert per_student[1] == ("rh-beta", pytest.approx(32.2), 4390.0, 3)
    check_answers(per_student[:1] + [("rh-beta", 31.2, 4389.0, 2)], latest)
    async with await Store.open(db) as s:
        assert s.repaired == []  # a second open changes nothing


@pytest.mark.skipif(shutil.which("sqlite3") is None, reason="no sqlite3 command-line shell here")
async def test_the_original_queries_in_the_sqlite3_shell(tmp_path):
    db = tmp_path / "rhtui.db"
    await v3_database(db)
    async with await Store.open(db):
        pass
    out = subprocess.run(["sqlite3", "-readonly", str(db), PER_STUDENT, LATEST_SAMPLES], capture_output=True,
                         text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[:2] == ["rh-alpha|29.5|3848.0|3", "rh-beta|31.2|4389.0|2"]
    assert lines[2] == "2025-01-31T14:05:38.250Z|929|12282" and len(lines) == 22  # the shell drops ".0"


async def test_a_missing_generated_column_is_repaired_and_the_queries_run(tmp_path):
    db = tmp_path / "rhtui.db"
    await v3_database(db)
    async with await Store.open(db):
        pass
    with sqlite3.connect(db) as conn:
        conn.execute("ALTER TABLE hardware_snapshots DROP COLUMN timestamp")
        conn.execute("ALTER TABLE student_runs DROP COLUMN time_seconds")
    async with await Store.open(db) as s:
        assert sorted(s.repaired) == ["hardware_snapshots.timestamp", "student_runs.time_seconds"]
    check_answers(*original_queries(db))
    assert len(MIGRATIONS[3]) == 5  # every column the original queries name comes from v4


async def test_a_read_only_database_of_the_previous_version_is_still_reported(tmp_path, monkeypatch):
    """v4 only adds generated columns rhtui never reads: a v3 file that cannot be written is read as it is."""
    db = tmp_path / "rhtui.db"
    await v3_database(db)
    assert MIN_READ_VERSION == 3
    before = db.read_bytes()
    deny_writes(monkeypatch, db, tmp_path)
    buf = io.StringIO()
    assert await print_report(db, None, "json", 10, Console(file=buf, width=200)) == 0
    data = json.loads(buf.getvalue())
    assert [s["student"] for s in data["students"]] == ["rh-alpha", "rh-beta"]
    assert db.read_bytes() == before


# -- percentiles, success, peaks, cycles ------------------------------------------------------


@pytest.fixture
async def recorded(tmp_path):
    """Two sessions: rh-alpha's 100 ok runs take 1..100 s (plus failures and skips), rh-beta's
    highest VRAM peak is in the run the budget guard stopped."""
    s = await Store.open(tmp_path / "rhtui.db")
    a = await s.start_session("rh_main", T0)
    b = await s.start_session("other", T0 + 10_000)
    t = T0
    for n in range(1, 11):  # ten cycles of session a, each with ten of alpha's runs
        cid = await s.start_cycle(a, n, t)
        for k in range(10):
            secs = float((n - 1) * 10 + k + 1)
            await s.record_run(run(a, "rh-alpha", t=t, cycle=n, total_s=secs, tokens=100, energy_j=360.0,
                                   vram_peak_mb=5000.0))
            t += 1
        if n <= 4:
            await s.record_run(run(a, "rh-alpha", "error", t=t, cycle=n, energy_j=36.0))
        await s.record_run(run(a, "rh-alpha", "skipped", t=t, cycle=n))
        if n < 10:  # the last cycle is still open
            await s.end_cycle(cid, t + 1, 10, 1, 1000, 12.5)
    cid = await s.start_cycle(b, 1, T0 + 10_000)
    for status, peak in (("ok", 6000.0), ("ok", 6100.0), ("emergency", 11_800.0), ("timeout", 6200.0)):
        await s.record_run(run(b, "rh-beta", status, t=T0 + 10_001, total_s=40.0 if status == "ok" else None,
                               tokens=500 if status == "ok" else 7, vram_peak_mb=peak, vram_mb=5000.0))
    await s.end_cycle(cid, T0 + 10_100, 2, 0, 1000, 99.0)
    yield s
    await s.close()


async def test_percentiles_success_rate_and_the_highest_peak(recorded):
    alpha, beta = await recorded.student_analysis()
    assert (alpha.student, alpha.attempts, alpha.ok_runs, alpha.skipped) == ("rh-alpha", 104, 100, 10)
    assert alpha.success_rate == pytest.approx(100 / 104)
    assert (alpha.seconds_p50, alpha.seconds_p95, alpha.seconds_p99) == (50.0, 95.0, 99.0)  # nearest rank
    assert alpha.tokens == 10_000 and alpha.energy_runs == 104
    assert alpha.energy_j == pytest.approx(100 * 360.0 + 4 * 36.0)  # failed runs drew power too
    assert (beta.attempts, beta.ok_runs, beta.success_rate) == (4, 2, 0.5)
    assert beta.vram_peak_max_mb == 11_800.0  # the emergency's peak, not a mean of peaks
    assert beta.energy_j is None and beta.energy_runs == 0
    [only] = await recorded.student_analysis(session_name="other")
    assert only.student == "rh-beta"


async def test_the_per_cycle_summary(recorded):
    cycles = await recorded.cycle_summary()
    assert [(c.session_id, c.cycle) for c in cycles] == [(1, n) for n in range(1, 11)] + [(2, 1)]
    first = cycles[0]
    assert (first.seconds, first.completed, first.skipped, first.failed, first.tokens) == (12.5, 10, 1, 1, 1000)
    assert first.energy_j == pytest.approx(10 * 360.0 + 36.0)
    assert cycles[9].seconds is None and cycles[9].failed == 0  # still open: no length yet
    assert (cycles[10].completed, cycles[10].failed, cycles[10].tokens, cycles[10].energy_j) == (2, 2, 1000, None)
    latest = await recorded.cycle_summary(session_name="rh_main", limit=3)
    assert [c.cycle for c in latest] == [8, 9, 10]


async def test_the_report_shows_them_in_every_format(recorded, tmp_path):
    await recorded.close()
    db = tmp_path / "rhtui.db"
    prices = CostPolicy(price_per_kwh=0.5, api_price_per_mtok=1.0, currency="EUR")

    buf = io.StringIO()
    assert await print_report(db, None, "json", 10, Console(file=buf, width=200), cost=prices) == 0
    data = json.loads(buf.getvalue())
    alpha, beta = data["students"]
    assert (alpha["seconds_p50"], alpha["seconds_p95"], alpha["seconds_p99"]) == (50.0, 95.0, 99.0)
    assert alpha["success_rate"] == pytest.approx(100 / 104) and beta["vram_peak_max_mb"] == 11_800.0
    assert beta["vram_mean_mb"] == 5000.0  # the resident mean is still there, beside the peak
    assert alpha["energy_wh"] == pytest.approx(36_144 / 3600) and beta["energy_wh"] is None
    assert data["totals"]["vram_peak_max_mb"] == 11_800.0 and data["totals"]["runs"] == 108
    assert len(data["cycles"]) == 11 and data["cycles"][0]["energy_wh"] == pytest.approx(3636 / 3600)

    buf = io.StringIO()
    assert await print_report(db, "rh_main", "table", 10, Console(file=buf, width=160), cost=prices) == 0
    out = buf.getvalue()
    assert "Per-student runs" in out and "96%" in out and "99.0" in out
    assert "Energy: 10.0 Wh over the 104 runs measured, 996 tokens per Wh; cost 0.00502 EUR at 0.500 EUR per kWh" in out
    assert "local: 0.502 EUR per Mtok vs API: 1.00 EUR per Mtok, 2.0× cheaper" in out
    assert "Cycles" in out and "12.5" in out

    buf = io.StringIO()
    assert await print_report(db, None, "csv", 10, Console(file=buf, width=200), cost=prices) == 0
    sections = buf.getvalue().split("\n\n")
    assert sections[0].splitlines()[0].startswith("student,runs,failures,") and "seconds_p95" in sections[0]
    assert sections[2].splitlines()[0].startswith("session_id,cycle,started_at,seconds,completed,skipped,failed")
    assert sections[3].splitlines()[0].startswith("runs,ok_runs,skipped,success_rate")
