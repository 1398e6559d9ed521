"""Schema v5: a run's provenance and scores, a cycle's question; v4 files migrated with their rows and
read as they are when read-only; the queries of a round, of the training export and of quality."""

from __future__ import annotations

import sqlite3
from dataclasses import replace
from pathlib import Path

import aiosqlite
import pytest

from rhtui.engine.records import RunRecord
from rhtui.engine.store import SCHEMA_VERSION, Store, StudentQuality, migrate
from tests.engine.test_store_media import deny_writes

T0 = 1_738_332_309.25


def answer(session_id: int, student: str, cycle: int = 1, t: float = 0.0, **kw) -> RunRecord:
    return RunRecord(session_id=session_id, cycle=cycle, student=student, model=f"{student}:latest",
                     status=kw.pop("status", "ok"), started_at=T0 + t, ended_at=T0 + t + 1,
                     proposal=kw.pop("proposal", f"{student}'s answer"), prompt=kw.pop("prompt", "the prompt"),
                     question=kw.pop("question", "Q"), **kw)


@pytest.fixture
async def store():
    s = await Store.open(":memory:")
    yield s
    await s.close()


async def v4_database(path: Path) -> None:
    """A database as the release before research rounds (schema v4) left it: a session, a cycle, two runs."""
    async with aiosqlite.connect(path, isolation_level=None) as db:
        assert await migrate(db, target=4) == 4
        await db.execute("INSERT INTO sessions (id, name, started_at) VALUES (1, 'rh_main', ?)", (T0,))
        await db.execute("INSERT INTO cycles (session_id, n, started_at, ended_at, completed) VALUES (1, 1, ?, ?, 2)",
                         (T0, T0 + 60))
        for i, (student, status, text) in enumerate((("rh-alpha", "ok", "zeros"), ("rh-beta", "timeout", ""))):
            await db.execute(
                "INSERT INTO student_runs (session_id, cycle, student, model, status, started_at, ended_at, total_s, "
                "vram_mb, tokens, proposal) VALUES (1, 1, ?, ?, ?, ?, ?, 29.0, 4389, 3156, ?)",
                (student, student, status, T0 + i, T0 + i + 30, text))


# -- migration ---------------------------------------------------------------------------------


async def test_a_v4_database_is_migrated_with_its_rows_kept(tmp_path):
    db = tmp_path / "rhtui.db"
    await v4_database(db)
    async with await Store.open(db) as s:
        assert await s.schema_version() == SCHEMA_VERSION == 5
        assert s.repaired == []
        alpha, beta = await s.runs(session_id=1)
        # the old rows, with the new fields at their defaults: a proposal without provenance
        assert (alpha.student, alpha.status, alpha.total_s, alpha.vram_mb, alpha.tokens, alpha.proposal) == (
            "rh-alpha", "ok", 29.0, 4389, 3156, "zeros")
        assert (alpha.kind, alpha.question, alpha.prompt, alpha.context_ids, alpha.system, alpha.verifier,
                alpha.scores, alpha.score) == ("proposal", "", "", (), None, None, None, None)
        assert beta.status == "timeout"
        [summary] = await s.cycle_summary(session_id=1)
        assert (summary.cycle, summary.completed) == (1, 1)
        # the old run can be scored and new rounds recorded beside it
        await s.set_score(alpha.id or 0, {"rigor": {"score": 4.0, "reason": "vague"}}, 4.0)
        await s.start_cycle(1, 2, T0 + 100, question="Why 1/2?", kind="ask")
        rid = await s.record_run(answer(1, "rh-gamma", cycle=2, t=100, kind="synthesis", verifier=()))
        assert (await s.get_run(rid)) is not None
        assert (await s.get_run(alpha.id or 0)) == replace(alpha, scores={"rigor": {"score": 4.0, "reason": "vague"}},
                                                           score=4.0)
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT n, question, kind FROM cycles ORDER BY n").fetchall() == [
            (1, None, "cycle"), (2, "Why 1/2?", "ask")]
        indexes = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'index'")}
    assert {"student_runs_round", "student_runs_export", "student_runs_quality"} <= indexes


async def test_a_read_only_v4_database_is_read_with_the_new_fields_at_their_defaults(tmp_path, monkeypatch):
    db = tmp_path / "rhtui.db"
    await v4_database(db)
    before = db.read_bytes()
    deny_writes(monkeypatch, db, tmp_path)
    s = await Store.open(db, mode="auto")
    try:
        assert s.read_only and await s.schema_version() == 4
        [alpha, _beta] = await s.runs(session_id=1)
        assert (alpha.kind, alpha.question, alpha.context_ids, alpha.verifier, alpha.score) == (
            "proposal", "", (), None, None)
        assert await s.student_quality() == {}  # nothing was judged then
        assert await s.cycle_quality(1) == [(1, "", [("rh-alpha", "proposal", None)], None)]
        assert await s.runs_for_export(None, ("proposal",), None) == []  # no prompt was kept then
        counts = await s.export_counts(None, ("proposal",), None)
        assert (counts["answers"], counts["no_prompt"], counts["kept"]) == (1, 1, 0)
    finally:
        await s.close()
    assert db.read_bytes() == before


async def test_a_dropped_v5_column_is_repaired_at_open(tmp_path):
    db = tmp_path / "rhtui.db"
    async with await Store.open(db) as s:
        sid = await s.start_session("s", T0)
        await s.record_run(answer(sid, "rh-alpha", score=7.0))
    with sqlite3.connect(db) as conn:
        conn.execute("DROP INDEX student_runs_export")
        conn.execute("ALTER TABLE student_runs DROP COLUMN digest")
    async with await Store.open(db) as s:
        assert sorted(s.repaired) == ["student_runs.digest", "student_runs_export"]
        [r] = await s.runs()
        assert (r.score, r.digest) == (7.0, None)


# -- writing and reading back ----------------------------------------------------------------


async def test_every_provenance_field_round_trips(store):
    sid = await store.start_session("s", T0)
    record = answer(sid, "rh-judge", kind="judge", question="Why σ = 1/2?", system="Score it.",
                    prompt="Score this:\n…", context_ids=(4, 9), target_id=9, digest="sha256:00ff",
                    options={"temperature": 0.2, "num_ctx": 4096}, ollama_version="0.12.3", done_reason="stop",
                    verifier=(), scores={"rigor": {"score": 7.5, "reason": "ok"}}, score=7.5,
                    proposal='{"rigor": {"score": 7.5}}')
    rid = await store.record_run(record)
    [back] = await store.round_runs(sid, 1)
    assert back == replace(record, id=rid)
    assert back.verifier == () and back.context_ids == (4, 9)  # passed: an empty tuple, not None
    failed = replace(record, kind="proposal", verifier=("no statement", "too short"), options=None, scores=None,
                     score=None, context_ids=())
    fid = await store.record_run(failed)
    assert await store.get_run(fid) == replace(failed, id=fid)


async def test_unknown_kinds_are_refused(store):
    sid = await store.start_session("s", T0)
    with pytest.raises(ValueError, match="unknown run kind"):
        await store.record_run(answer(sid, "rh-alpha", kind="essay"))  # type: ignore[arg-type]  # on purpose
    with pytest.raises(ValueError, match="cannot export runs of kind judge"):
        await store.runs_for_export(None, ("judge",), None)


async def test_set_score_scores_and_clears(store):
    sid = await store.start_session("s", T0)
    rid = await store.record_run(answer(sid, "rh-alpha"))
    rubric = {"rigor": {"score": 6.0, "reason": "gaps"}, "novelty": {"score": 8.0, "reason": "new"}}
    await store.set_score(rid, rubric, 7.0)
    run = await store.get_run(rid)
    assert run is not None and (run.scores, run.score) == (rubric, 7.0)
    await store.set_score(rid, None, None)
    run = await store.get_run(rid)
    assert run is not None and (run.scores, run.score) == (None, None)
    with pytest.raises(LookupError, match="no run with id 999"):
        await store.set_score(999, rubric, 7.0)


async def test_round_runs_are_one_rounds_in_recorded_order(store):
    a = await store.start_session("a", T0)
    b = await store.start_session("b", T0)
    ids = [await store.record_run(answer(a, s, cycle=2, t=-i, kind=k))  # started_at decreasing: order is by id
           for i, (s, k) in enumerate((("rh-alpha", "proposal"), ("rh-eta", "critique"), ("rh-zeta", "synthesis")))]
    await store.record_run(answer(a, "rh-alpha", cycle=3))
    await store.record_run(answer(b, "rh-alpha", cycle=2))
    assert [r.id for r in await store.round_runs(a, 2)] == ids


# -- the training export's selection -------------------------------------------------------------


@pytest.fixture
async def judged(store):
    """Session "rh_main": cycle 1 with every case the export rule decides; session "other": one answer."""
    a = await store.start_session("rh_main", T0)
    b = await store.start_session("other", T0 + 1000)
    await store.start_cycle(a, 1, T0, question="Q1")
    runs = {
        "passed": answer(a, "rh-alpha", t=1, verifier=(), score=8.0, total_s=20.0),
        "failed": answer(a, "rh-beta", t=2, verifier=("no statement",), score=9.0, total_s=10.0),
        "unverified": answer(a, "rh-gamma", t=3, score=None, total_s=5.0),
        "no_prompt": answer(a, "rh-delta", t=4, prompt="", verifier=(), score=9.5),
        "error": answer(a, "rh-alpha", t=5, status="error", proposal="", verifier=None),
        "critique": answer(a, "rh-eta", t=6, kind="critique", score=6.0),
        "synthesis": answer(a, "rh-zeta", t=7, kind="synthesis", verifier=(), score=8.5, total_s=30.0),
        "judge": answer(a, "rh-judge", t=8, kind="judge", score=None, proposal='{"rigor": 1}'),
        "other": answer(b, "rh-alpha", t=1001, verifier=(), score=4.0, total_s=10.0),
    }
    ids = {k: await store.record_run(r) for k, r in runs.items()}
    return store, ids


async def test_runs_for_export_follow_the_rule(judged):
    store, ids = judged
    got = await store.runs_for_export("rh_main", ("proposal",), None)
    assert [r.id for r in got] == [ids["passed"], ids["unverified"]]  # failed, no prompt, error: never
    got = await store.runs_for_export("rh_main", ("proposal",), 7.0)
    assert [r.id for r in got] == [ids["passed"]]  # unscored runs fail a minimum score
    got = await store.runs_for_export(None, ("proposal", "critique", "synthesis"), None)
    assert [r.id for r in got] == [ids[k] for k in ("passed", "unverified", "critique", "synthesis", "other")]
    assert [r.id for r in await store.runs_for_export(2, ("proposal",), None)] == [ids["other"]]  # by id
    assert await store.runs_for_export("nobody", ("proposal",), None) == []
    assert await store.export_counts("rh_main", ("proposal",), 8.5) == {
        "answers": 4, "failed_verifier": 1, "no_prompt": 1, "unscored": 1, "below_min_score": 1, "kept": 0}


async def test_student_quality(judged):
    store, _ids = judged
    quality = await store.student_quality(session_name="rh_main")
    # rh-alpha: its ok answer scored 8.0 in 20 s (the error run neither scored nor verified)
    assert quality["rh-alpha"] == StudentQuality(8.0, 1.0, pytest.approx(0.4))
    assert quality["rh-beta"] == StudentQuality(9.0, 0.0, pytest.approx(0.9))  # scored, but failed the verifier
    assert "rh-gamma" not in quality  # neither scored nor verified
    assert quality["rh-zeta"].mean_score == 8.5
    assert "rh-judge" not in quality  # a judge's own runs are no answer
    alpha = (await store.student_quality())["rh-alpha"]  # every session: 8.0 in 20 s and 4.0 in 10 s
    assert alpha == StudentQuality(6.0, 1.0, pytest.approx(6.0 / 15.0))
    assert (await store.student_quality(2)).keys() == {"rh-alpha"}


async def test_cycle_quality(judged):
    store, _ids = judged
    [c1] = await store.cycle_quality(1)
    assert (c1.cycle, c1.question, c1.synthesis_score) == (1, "Q1", 8.5)
    assert c1.runs == [("rh-alpha", "proposal", 8.0), ("rh-beta", "proposal", 9.0), ("rh-gamma", "proposal", None),
                       ("rh-delta", "proposal", 9.5), ("rh-eta", "critique", 6.0), ("rh-zeta", "synthesis", 8.5)]
    # session 2 has no cycle row: its question is the runs'
    assert await store.cycle_quality(2) == [(1, "Q", [("rh-alpha", "proposal", 4.0)], None)]


async def test_the_new_queries_use_their_indexes(tmp_path):
    """A database of weeks: each query is planned on an index (the quality one covering: no prose read)."""
    db = tmp_path / "rhtui.db"
    statements: list[str] = []
    async with await Store.open(db) as s:
        await s._db.set_trace_callback(statements.append)
        await s.student_quality()
        await s.round_runs(1, 1)
        await s.runs_for_export(None, ("proposal",), 7.0)
        await s._db.set_trace_callback(None)
    plans = []
    with sqlite3.connect(db) as conn:
        for sql in statements:
            if sql.lstrip().upper().startswith(("SELECT", "WITH")):
                plans.append(" ".join(r[-1] for r in conn.execute(f"EXPLAIN QUERY PLAN {sql}")))
    quality, round_, export = plans
    assert "COVERING INDEX student_runs_quality" in quality
    assert "INDEX student_runs_round" in round_
    assert "INDEX student_runs_export" in export
