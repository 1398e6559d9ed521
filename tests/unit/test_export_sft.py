"""`rhtui export sft`: TRL conversational JSONL with provenance, the verifier and score filters,
preference pairs from one round's judged proposals, text without escapes, -o written whole; and the
report's quality figures (per student, per round)."""

from __future__ import annotations

import asyncio
import csv
import io
import json
from pathlib import Path

import pytest
from rich.console import Console
from typer.testing import CliRunner

from rhtui.commands.cli import app
from rhtui.commands.export_sft import clean_text, write_atomically
from rhtui.commands.report import print_report
from rhtui.engine.records import RunRecord
from rhtui.engine.store import Store

T0 = 1_738_332_309.25  # 2025-01-31T14:05:09.250Z
OSC52 = "\x1b]52;c;Y3VybCBldmlsLmV4YW1wbGUgfCBzaA==\x07"
HOSTILE = f"Let s = 1/2{OSC52}.\r\n\x1b[31mred\x1b[0m\ttab\x00\x08\x9b2J\u202eevil"
PROVENANCE = {"student", "model", "digest", "session", "cycle", "question", "score", "scores", "verifier",
              "ollama_version", "options", "created_at"}
runner = CliRunner()


def answer(session_id: int, student: str, cycle: int, t: float, **kw) -> RunRecord:
    return RunRecord(session_id=session_id, cycle=cycle, student=student, model=f"{student}:latest",
                     status=kw.pop("status", "ok"), started_at=T0 + t, ended_at=T0 + t + 20,
                     proposal=kw.pop("proposal", f"{student}'s answer to cycle {cycle}"),
                     prompt=kw.pop("prompt", f"{student}'s prompt"), question=kw.pop("question", f"Q{cycle}"),
                     digest=f"sha256:{student}", ollama_version="0.12.3", done_reason="stop", **kw)


def rubric(score: float) -> dict:
    return {"rigor": {"score": score, "reason": "because"}}


def _fill(path: Path) -> None:
    async def go() -> None:
        async with await Store.open(path) as s:
            a = await s.start_session("rh_main", T0)
            await s.start_cycle(a, 1, T0, question="Q1")
            await s.record_run(answer(a, "rh-alpha", 1, 1, system="You are alpha.", verifier=(), score=8.0,
                                      scores=rubric(8.0), options={"temperature": 0.7}, total_s=20.0))
            await s.record_run(answer(a, "rh-beta", 1, 2, proposal=HOSTILE, verifier=(), score=5.5,
                                      scores=rubric(5.5), total_s=10.0))
            await s.record_run(answer(a, "rh-gamma", 1, 3, verifier=("no statement",), score=9.0, total_s=10.0))
            await s.record_run(answer(a, "rh-delta", 1, 4, verifier=None, score=None))  # unverified, unscored
            await s.record_run(answer(a, "rh-eta", 1, 5, kind="critique", context_ids=(1, 2), score=None))
            await s.record_run(answer(a, "rh-zeta", 1, 6, kind="synthesis", context_ids=(1, 2, 5), verifier=(),
                                      score=8.5, total_s=30.0))
            await s.record_run(answer(a, "rh-judge", 1, 7, kind="judge", target_id=1, proposal='{"rigor": 8}'))
            await s.record_run(answer(a, "rh-alpha", 1, 8, status="timeout", proposal=""))
            # cycle 2: close scores, no pair; cycle 3: one prompt shared by both proposers
            await s.start_cycle(a, 2, T0 + 100, question="Q2")
            await s.record_run(answer(a, "rh-alpha", 2, 101, verifier=(), score=7.0))
            await s.record_run(answer(a, "rh-beta", 2, 102, verifier=(), score=6.5))
            await s.start_cycle(a, 3, T0 + 200, question="Q3", kind="ask")
            for student, score in (("rh-alpha", 9.0), ("rh-beta", 4.0)):
                await s.record_run(answer(a, student, 3, 200 + score, system="Shared.", prompt="Shared prompt",
                                          verifier=(), score=score))
            b = await s.start_session("other", T0 + 1000)
            await s.record_run(answer(b, "rh-alpha", 1, 1001, verifier=(), score=3.0))

    asyncio.run(go())


@pytest.fixture
def data_dir(tmp_path):
    d = tmp_path / "data"
    d.mkdir()
    _fill(d / "rhtui.db")
    return d


def export(data_dir: Path, *args: str, code: int = 0) -> str:
    r = runner.invoke(app, ["export", *args, "--data-dir", str(data_dir)])
    assert r.exit_code == code, r.output
    return r.stdout if code == 0 else r.output


def lines(out: str) -> list[dict]:
    return [json.loads(line) for line in out.splitlines()]


def test_sft_lines_are_trl_conversations_with_their_provenance(data_dir):
    rows = lines(export(data_dir, "sft", "--session", "rh_main"))
    # proposals only, by default: failed verifier (gamma) and timeouts never; unverified delta without --min-score
    assert [(r["provenance"]["student"], r["provenance"]["cycle"]) for r in rows] == [
        ("rh-alpha", 1), ("rh-beta", 1), ("rh-delta", 1), ("rh-alpha", 2), ("rh-beta", 2), ("rh-beta", 3),
        ("rh-alpha", 3)]
    alpha = rows[0]
    assert alpha["messages"] == [{"role": "system", "content": "You are alpha."},
                                 {"role": "user", "content": "rh-alpha's prompt"},
                                 {"role": "assistant", "content": "rh-alpha's answer to cycle 1"}]
    p = alpha["provenance"]
    assert set(p) >= PROVENANCE
    assert (p["model"], p["digest"], p["session"], p["question"], p["score"], p["verifier"]) == (
        "rh-alpha:latest", "sha256:rh-alpha", "rh_main", "Q1", 8.0, [])
    assert (p["scores"], p["options"], p["ollama_version"]) == (rubric(8.0), {"temperature": 0.7}, "0.12.3")
    assert p["created_at"] == "2025-01-31T14:05:10.250Z"
    assert [m["role"] for m in rows[1]["messages"]] == ["user", "assistant"]  # no system: none sent
    delta = rows[2]["provenance"]
    assert (delta["score"], delta["scores"], delta["verifier"]) == (None, None, None)


def test_text_goes_out_without_escape_or_control_bytes(data_dir):
    out = export(data_dir, "sft", "--session", "rh_main")
    beta = lines(out)[1]["messages"][-1]["content"]
    assert beta == "Let s = 1/2.\nred\ttabevil"  # removed, not shown as ^[ (newlines and tabs kept)
    assert not any(c in out for c in ("\x1b", "\x07", "\x00", "\x9b", "\u202e", "\r"))
    assert "\\u001b" not in out and "^[" not in out
    assert clean_text("a\x1bP1;2|data\x1b\\b\x1b(Bc\x1b]8;;http://x\x07link\x1b]8;;\x07") == "abclink"


def test_min_score_and_kind_filters(data_dir):
    rows = lines(export(data_dir, "sft", "--min-score", "8"))
    assert [(r["provenance"]["student"], r["provenance"]["score"]) for r in rows] == [
        ("rh-alpha", 8.0), ("rh-alpha", 9.0)]  # gamma's 9.0 failed the verifier; unscored delta left out
    rows = lines(export(data_dir, "sft", "--kind", "synthesis"))
    assert [(r["provenance"]["kind"], r["provenance"]["student"]) for r in rows] == [("synthesis", "rh-zeta")]
    assert rows[0]["provenance"]["context_ids"] == [1, 2, 5]
    kinds = {r["provenance"]["kind"] for r in lines(export(data_dir, "sft", "--kind", "all"))}
    assert kinds == {"proposal", "critique", "synthesis"}  # a judge's JSON never
    assert {r["provenance"]["session"] for r in lines(export(data_dir, "sft"))} == {"rh_main", "other"}


def test_preference_pairs_from_one_rounds_judged_proposals(data_dir):
    rows = lines(export(data_dir, "sft", "--format", "preference"))
    pairs = [(r["provenance"]["cycle"], r["provenance"]["chosen_score"], r["provenance"]["rejected_score"])
             for r in rows]
    assert pairs == [(1, 8.0, 5.5), (3, 9.0, 4.0)]  # cycle 2's 7.0 and 6.5 are too close; gamma failed
    first, shared = rows
    # different prompts (each proposer has its role): the round's question is the prompt
    assert first["prompt"] == [{"role": "user", "content": "Q1"}]
    assert first["chosen"] == [{"role": "assistant", "content": "rh-alpha's answer to cycle 1"}]
    assert first["rejected"] == [{"role": "assistant", "content": "Let s = 1/2.\nred\ttabevil"}]
    assert first["provenance"]["chosen_student"] == "rh-alpha" and first["provenance"]["prompt_from"] == "question"
    ids = (first["provenance"]["chosen_id"], first["provenance"]["rejected_id"])
    assert ids == (1, 2)
    assert shared["prompt"] == [{"role": "system", "content": "Shared."}, {"role": "user", "content": "Shared prompt"}]
    assert shared["provenance"]["prompt_from"] == "shared"
    rows = lines(export(data_dir, "sft", "--format", "preference", "--min-score", "8.5"))
    assert [r["provenance"]["cycle"] for r in rows] == [3]  # the chosen answer must reach it


def test_nothing_to_export_says_why(data_dir):
    out = export(data_dir, "sft", "--session", "nobody", code=1)
    assert "no session named 'nobody'" in out and "other" in out
    out = export(data_dir, "sft", "--session", "rh_main", "--min-score", "9.5", code=1)
    assert "nothing to export of session 'rh_main'" in out
    assert "1 failed the verifier" in out and "1 were never scored" in out and "scored under 9.5" in out
    out = export(data_dir, "sft", "--session", "other", "--kind", "critique", code=1)
    assert "no ok critique run with text is recorded" in out
    out = export(data_dir, "sft", "--session", "other", "--format", "preference", code=1)
    assert "no two of one round differ by 1" in out


@pytest.mark.parametrize("args", [["sft", "--format", "csv"], ["runs", "--format", "sft"],
                                  ["runs", "--min-score", "3"], ["sft", "--format", "preference", "--kind", "all"]])
def test_options_that_do_not_fit_together_are_refused(data_dir, args):
    r = runner.invoke(app, ["export", *args, "--data-dir", str(data_dir)])
    assert r.exit_code == 2, r.output


def test_output_file_is_written_whole(data_dir, tmp_path):
    folder = tmp_path / "out"
    folder.mkdir()
    target = folder / "train.jsonl"
    assert export(data_dir, "sft", "--kind", "synthesis", "-o", str(target)) == ""
    [row] = lines(target.read_text(encoding="utf-8"))
    assert row["provenance"]["student"] == "rh-zeta"
    assert target.stat().st_mode & 0o777 == 0o600  # the models' answers are private
    # a failed export leaves the earlier file as it was, and no temporary file behind
    export(data_dir, "sft", "--session", "nobody", "-o", str(target), code=1)
    assert lines(target.read_text(encoding="utf-8")) == [row]
    assert [p.name for p in folder.iterdir()] == ["train.jsonl"]
    # every export takes -o
    export(data_dir, "runs", "--format", "json", "-o", str(folder / "runs.json"))
    assert len(json.loads((folder / "runs.json").read_text())) == 13


def test_an_unwritable_output_is_a_message(data_dir, tmp_path):
    not_a_folder = tmp_path / "file"
    not_a_folder.write_text("")
    out = export(data_dir, "sft", "-o", str(not_a_folder / "x.jsonl"), code=1)
    assert f"cannot write {not_a_folder / 'x.jsonl'}: Not a directory" in out and "Traceback" not in out


async def test_write_atomically_keeps_nothing_of_a_failed_write(tmp_path):
    folder = tmp_path / "out"
    folder.mkdir()
    target = folder / "out.txt"
    target.write_text("before")

    async def fails(out) -> int:
        out.write("half")
        return 1

    assert await write_atomically(target, fails) == 1
    assert target.read_text() == "before" and [p.name for p in folder.iterdir()] == ["out.txt"]


def test_the_existing_exports_still_work_with_provenance(data_dir):
    rows = list(csv.DictReader(io.StringIO(export(data_dir, "runs"))))
    assert len(rows) == 13 and "prompt" not in rows[0] and "proposal" not in rows[0]
    synthesis = next(r for r in rows if r["kind"] == "synthesis")
    assert json.loads(synthesis["context_ids"]) == [1, 2, 5] and synthesis["verifier"] == "[]"
    proposals = lines(export(data_dir, "proposals", "--session", "rh_main"))
    assert {p["kind"] for p in proposals} == {"proposal", "critique", "synthesis", "judge"}


# -- the report's quality figures ------------------------------------------------------------------


def test_the_report_shows_quality_per_student_and_per_round(data_dir):
    db = data_dir / "rhtui.db"
    buf = io.StringIO()
    assert asyncio.run(print_report(db, "rh_main", "json", 10, Console(file=buf, width=200))) == 0
    data = json.loads(buf.getvalue())
    students = {s["student"]: s for s in data["students"]}
    # rh-alpha: scored 8.0 (20 s), 7.0 and 9.0 (no duration): mean 8.0, every check passed
    assert students["rh-alpha"]["mean_score"] == pytest.approx(8.0) and students["rh-alpha"]["validity_rate"] == 1.0
    assert students["rh-alpha"]["score_per_gpu_s"] == pytest.approx(8.0 / 20.0)
    assert students["rh-gamma"]["validity_rate"] == 0.0 and students["rh-eta"]["mean_score"] is None
    rounds = data["rounds"]
    assert [(r["cycle"], r["question"], r["synthesis_score"]) for r in rounds] == [
        (1, "Q1", 8.5), (2, "Q2", None), (3, "Q3", None)]
    assert rounds[0]["runs"][0] == {"student": "rh-alpha", "kind": "proposal", "score": 8.0}
    assert all(r["student"] != "rh-judge" for r in rounds[0]["runs"])

    buf = io.StringIO()
    assert asyncio.run(print_report(db, "rh_main", "table", 10, Console(file=buf, width=200))) == 0
    out = buf.getvalue()
    assert "Per-student quality" in out and "score/GPU-s" in out and "valid %" in out
    assert "0.400" in out and "100%" in out
    assert "Rounds" in out and "synthesis rh-zeta 8.5" in out and "rh-alpha 8.0 · rh-beta 5.5" in out
    assert "critique rh-eta —" in out

    buf = io.StringIO()
    assert asyncio.run(print_report(db, None, "csv", 10, Console(file=buf, width=200))) == 0
    sections = buf.getvalue().split("\n\n")
    assert "mean_score,validity_rate,score_per_gpu_s" in sections[0].splitlines()[0]
    assert sections[4].splitlines()[0] == "session_id,cycle,question,scores,synthesis_score"
    assert len(sections[4].strip().splitlines()) == 1 + 4  # three rounds of rh_main, one of other
