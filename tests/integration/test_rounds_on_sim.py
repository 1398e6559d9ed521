"""The research round over real HTTP against the simulator: one question a cycle, the critic reads
the proposals, judges score through structured outputs, the synthesis merges; every run keeps its
question, prompt and the runs it was given."""

from __future__ import annotations

import asyncio
import json

import pytest

from rhtui.engine import events as ev
from rhtui.engine.ensemble.agenda import Agenda
from rhtui.engine.orchestrator import Orchestrator

PROPOSERS = ["rh-alpha", "rh-beta", "rh-gamma", "rh-delta", "rh-epsilon"]
FULL = {"mode": "full"}


@pytest.fixture
def from_modelfiles(sim):
    """The simulated students built from the shipped Modelfiles (system prompts and parameters), as
    `rhtui models create` builds them in Ollama."""
    from rhtui.commands.cli import _create_students_in
    from rhtui.commands.context import resolve_students
    from rhtui.engine.config import Settings

    settings = Settings()
    _create_students_in(sim.world, settings.model_copy(update={"students": resolve_students(settings)}))


def by_kind(runs, cycle, kind):
    return [r for r in runs if r.cycle == cycle and r.kind == kind and r.status != "skipped"]


async def test_a_round_records_question_prompts_context_and_scores(sim, store, make_engine, from_modelfiles):
    orch, rec = make_engine(ensemble=FULL, session={"max_cycles": 2})
    await asyncio.wait_for(orch.run(), 240)
    runs = await store.runs()
    assert all(r.status in ("ok", "skipped") for r in runs), [(r.student, r.kind, r.reason) for r in runs]
    questions = [e.question for e in rec.of(ev.CycleStarted)]
    assert len(questions) == 2 and all(questions)
    for cycle, question in enumerate(questions, start=1):
        proposals = by_kind(runs, cycle, "proposal")
        assert sorted(r.student for r in proposals) == sorted(PROPOSERS)  # rh-zeta critiques, it does not propose
        assert {r.question for r in runs if r.cycle == cycle} == {question}  # every run of the round: one question
        assert all(question in r.prompt for r in proposals)
        assert all(r.system and "TITLE:" in r.system for r in proposals)  # the Modelfile's own SYSTEM, from /api/show
        assert all(r.verifier == () for r in proposals)
        [critique] = by_kind(runs, cycle, "critique")
        assert critique.student == "rh-zeta"
        assert sorted(critique.context_ids) == sorted(r.id for r in proposals)
        for p in proposals:  # the critic's prompt holds each of this round's proposals
            assert f"--- PROPOSAL by {p.student} ---" in critique.prompt
        judges = by_kind(runs, cycle, "judge")
        [synthesis] = by_kind(runs, cycle, "synthesis")
        assert {j.target_id for j in judges} == {r.id for r in proposals} | {synthesis.id}
        assert all(j.student == "rh-zeta" for j in judges)
        # the critique is merged when it passed the verifier (a critique cut at num_predict is not)
        given = {critique.id} if critique.verifier == () else set()
        assert set(synthesis.context_ids) == {r.id for r in proposals} | given
        # each prompt asks for its step: the simulated critic critiques, the synthesiser merges
        assert "This critique tests the claims of" in critique.proposal
        assert "This synthesis merges the proposals of" in synthesis.proposal
        scored = await store.round_runs(orch.session_id, cycle)
        for r in scored:
            if r.kind in ("proposal", "synthesis"):
                assert r.score is not None and 1 <= r.score <= 10
                assert set(r.scores) == {"rigour", "novelty", "correctness", "concreteness"}
    # the second round's proposers were given the first round's synthesis and critique
    first_synth = by_kind(runs, 1, "synthesis")[0]
    first_crit = by_kind(runs, 1, "critique")[0]
    for p in by_kind(runs, 2, "proposal"):
        assert set(p.context_ids) == {first_synth.id, first_crit.id}
    scored_events = rec.of(ev.RunScored)
    assert len(scored_events) == 2 * 6 and all(e.score is not None for e in scored_events)


async def test_the_critique_refers_to_the_texts_it_was_given(sim, store, make_engine):
    orch, _ = make_engine(ensemble=FULL)
    await asyncio.wait_for(orch.run(), 240)
    runs = await store.runs()
    [critique] = by_kind(runs, 1, "critique")
    for p in by_kind(runs, 1, "proposal"):
        title = next(line for line in p.proposal.splitlines() if line.startswith("TITLE:"))[6:].strip()
        assert title[:40] in critique.proposal, p.student


@pytest.mark.parametrize(("bad", "scored"), [(1, True), (2, False)])
async def test_a_malformed_judge_answer_is_asked_again_then_recorded_unscored(sim, store, make_engine, bad, scored):
    orch, rec = make_engine(ensemble=FULL, students=[{"name": "rh-alpha"}, {"name": "rh-zeta"}])
    sent: list[int] = []

    def inject_at_first_judge(event) -> None:  # the first judge run's answers are not JSON
        if isinstance(event, ev.StudentStarted) and event.kind == "judge" and not sent:
            sent.append(1)
            sim.world.inject("malformed_json", "rh-zeta", bad)

    orch.bus.subscribe(inject_at_first_judge)
    await asyncio.wait_for(orch.run(), 240)
    [proposal] = [r for r in await store.round_runs(orch.session_id, 1) if r.kind == "proposal"]
    judged = [e for e in rec.of(ev.RunScored) if e.run_id == proposal.id]
    assert len(judged) == 1
    if scored:
        assert proposal.score is not None and judged[0].score == proposal.score
    else:
        assert proposal.score is None and proposal.scores is None
        assert "not a valid rubric" in judged[0].reason and "twice" in judged[0].reason
    judge_runs = [r for r in await store.runs() if r.kind == "judge" and r.target_id == proposal.id]
    assert len(judge_runs) == (2 if bad else 1)
    assert orch.state == "finished"


@pytest.mark.parametrize(("tier", "proposals", "critique", "judged"), [
    ("quick", 2, 0, False), ("standard", 4, 1, False), ("deep", 5, 1, True),
])
async def test_ask_uses_the_students_its_tier_says(sim, store, make_engine, tier, proposals, critique, judged):
    orch, rec = make_engine(ensemble=FULL)
    orch.only_asks = True
    orch.ask("Is there a zero-free region of width 1/log t?", tier)
    await asyncio.wait_for(orch.run(), 240)
    runs = [r for r in await store.runs() if r.status != "skipped"]
    assert len([r for r in runs if r.kind == "proposal"]) == proposals
    assert len([r for r in runs if r.kind == "critique"]) == critique
    assert len([r for r in runs if r.kind == "synthesis"]) == 1
    assert bool([r for r in runs if r.kind == "judge"]) is judged
    assert {r.question for r in runs} == {"Is there a zero-free region of width 1/log t?"}
    assert orch.last_round is not None and orch.last_round.synthesis is not None
    assert [e.cycle for e in rec.of(ev.CycleStarted)] == [1]  # the question's round, then the end
    cycles = await store.cycle_quality(orch.session_id)
    assert cycles[0][1] == "Is there a zero-free region of width 1/log t?"


@pytest.mark.parametrize("suffix", [".toml", ".txt"])
async def test_questions_from_a_file_in_either_format(sim, store, make_engine, tmp_path, suffix):
    mine = ["Why does the explicit formula need smoothing?", "What would a Siegel zero break?"]
    path = tmp_path / f"agenda{suffix}"
    if suffix == ".toml":
        path.write_text("prompts = " + json.dumps(mine) + "\n")
    else:
        path.write_text("\n".join(["", mine[0], "   ", mine[1], ""]))
    orch, rec = make_engine(session={"max_cycles": 2, "questions": str(path)},
                            students=[{"name": "rh-alpha"}, {"name": "rh-beta"}])
    await asyncio.wait_for(orch.run(), 240)
    assert sorted(e.question for e in rec.of(ev.CycleStarted)) == sorted(mine)


async def test_proposals_only_runs_no_critique_synthesis_or_judge(sim, store, make_engine):
    orch, _ = make_engine(ensemble={"mode": "proposals-only"})
    await asyncio.wait_for(orch.run(), 240)
    runs = await store.runs()
    assert {r.kind for r in runs} == {"proposal"} and len(runs) == 6


async def test_judge_every_n_rounds(sim, store, make_engine):
    orch, _ = make_engine(ensemble={"mode": "full", "judge_every": 2}, session={"max_cycles": 2},
                          students=[{"name": "rh-alpha"}, {"name": "rh-beta"}, {"name": "rh-zeta"}])
    await asyncio.wait_for(orch.run(), 240)
    runs = await store.runs()
    assert not by_kind(runs, 1, "judge") and by_kind(runs, 2, "judge")


def test_the_agenda_deals_every_question_before_repeating():
    agenda = Agenda(["a", "b", "c"], seed=3)
    assert sorted(agenda.next() for _ in range(3)) == ["a", "b", "c"]


_ = Orchestrator
