"""The research round on the dashboard: the state it folds from the round's events, the proposals
view that groups a round, the queue's roles, scores and two students on the card, and `a` (ask)."""

from __future__ import annotations

import pytest

from rhtui.engine import events as ev
from rhtui.engine.config import BudgetPolicy
from rhtui.tui.screens.ask import AskScreen
from rhtui.tui.state import ROUNDS_KEPT, UiModel
from rhtui.tui.widgets.proposal_list import ProposalList
from rhtui.tui.widgets.proposal_view import ProposalView
from rhtui.tui.widgets.student_queue import StudentQueue
from tests.ui.fakes import (
    PROPOSERS,
    QUESTION,
    ROUND_SCORES,
    STUDENTS,
    T0,
    VERIFIER_FAILURES,
    FakeOrchestrator,
    research_round,
    round_under_way,
    rubric,
    run_record,
)


def model() -> UiModel:
    return UiModel(session_name="s", host="http://h:1", students=[(s, s, True) for s in STUDENTS],
                   duration_s=8 * 3600, budget=BudgetPolicy())


def folded(events: list[ev.Event]) -> UiModel:
    m = model()
    for e in events:
        m.apply(e)
    return m


# -- the state ---------------------------------------------------------------------------------


def test_a_cycle_start_gives_the_question_and_each_students_role():
    m = folded(research_round(1)[0][:1])
    assert m.question == QUESTION and m.rounds[-1].question == QUESTION
    roles = {name: r.role for name, r in m.students.items()}
    assert roles == {"rh-alpha": "proposal", "rh-beta": "proposal", "rh-gamma": "proposal",
                     "rh-epsilon": "proposal", "rh-zeta": "critique", "rh-delta": "synthesis"}


def test_a_round_groups_its_runs_by_kind_and_judge_runs_are_not_answers():
    m = folded(research_round(1)[0])
    rnd = m.rounds[-1]
    assert [a.run.student for a in rnd.runs["proposal"]] == list(PROPOSERS)
    assert [a.run.student for a in rnd.runs["critique"]] == ["rh-zeta"]
    assert [a.run.student for a in rnd.runs["synthesis"]] == ["rh-delta"]
    assert len(rnd.runs["judge"]) == len(ROUND_SCORES)  # one judge run per valid answer
    assert [a.run.kind for a in rnd.answers()] == ["proposal"] * 4 + ["critique", "synthesis"]
    assert all(run.kind != "judge" for _, run in m.proposals)


def test_a_score_lands_on_the_run_it_scored_and_in_its_authors_mean():
    m = folded(research_round(1)[0])
    by_student = {a.run.student: a for a in m.rounds[-1].answers()}
    assert by_student["rh-alpha"].score == 7.4 and by_student["rh-alpha"].judges == ("rh-zeta",)
    assert by_student["rh-alpha"].scores == rubric(7.4)
    beta = by_student["rh-beta"]  # failed the verifier: never judged
    assert beta.score is None and not beta.scored and beta.run.verifier == VERIFIER_FAILURES
    assert by_student["rh-delta"].score == 8.1  # the synthesis
    assert m.students["rh-alpha"].mean_score == pytest.approx(7.4)
    assert m.students["rh-beta"].mean_score is None
    assert m.students["rh-zeta"].mean_score is None  # judging scores others, not the judge


def test_the_mean_is_over_the_sessions_scores_and_a_rescore_replaces():
    m = folded(research_round(1)[0] + research_round(2, T0 + 1000, scores={"rh-alpha": 5.4})[0])
    assert m.students["rh-alpha"].mean_score == pytest.approx((7.4 + 5.4) / 2)
    alpha2 = next(a for a in m.rounds[-1].answers() if a.run.student == "rh-alpha")
    v = m.versions["scores"]
    m.apply(ev.RunScored(ts=T0 + 2000, cycle=2, student="rh-alpha", run_id=alpha2.run.id, kind="proposal",
                         score=9.4, scores=rubric(9.4), judges=("rh-zeta",)))
    assert m.students["rh-alpha"].mean_score == pytest.approx((7.4 + 9.4) / 2)  # replaced, not added
    assert alpha2.score == 9.4 and m.versions["scores"] > v
    assert [(c, s) for c, _, s in m.students["rh-alpha"].score_points] == [(1, 7.4), (2, 9.4)]


def test_an_unscored_answer_says_why_and_a_score_for_an_unseen_run_still_counts():
    m = folded(research_round(1, scores={})[0])
    alpha = m.rounds[-1].answers()[0]
    m.apply(ev.RunScored(ts=T0, cycle=1, student="rh-alpha", run_id=alpha.run.id, kind="proposal", score=None,
                         judges=("rh-zeta",), reason="the judge's answer was malformed twice"))
    assert alpha.scored and alpha.score is None and "malformed" in alpha.score_reason
    assert m.students["rh-alpha"].mean_score is None
    m.apply(ev.RunScored(ts=T0, cycle=99, student="rh-gamma", run_id=4242, kind="proposal", score=6.0))
    assert m.students["rh-gamma"].mean_score == 6.0  # its round is not kept (a watcher started late)


def test_a_run_read_back_with_its_score_counts_once():
    """`rhtui watch` rebuilds a finished run from its row, which may hold its score already."""
    m = model()
    run = run_record("rh-alpha", 1, run_id=11)
    from dataclasses import replace

    scored = replace(run, score=7.0, scores=rubric(7.0))
    m.apply(ev.StudentFinished(ts=T0, cycle=1, student="rh-alpha", run=scored))
    m.apply(ev.RunScored(ts=T0, cycle=1, student="rh-alpha", run_id=11, kind="proposal", score=7.0))
    assert m.students["rh-alpha"].score_n == 1 and m.students["rh-alpha"].mean_score == 7.0


def test_a_preloading_student_loads_while_the_other_writes():
    m = folded(round_under_way()[0])
    assert m.students["rh-alpha"].status == "running" and m.students["rh-beta"].status == "loading"
    assert m.current == "rh-alpha" and m.active == ["rh-alpha", "rh-beta"]
    assert m.students["rh-beta"].preload_beside == "rh-alpha"
    assert m.next_student == "rh-gamma"
    run = run_record("rh-alpha", 2, run_id=301, kind="proposal", verifier=())
    m.apply(ev.StudentFinished(ts=T0 + 2000, cycle=2, student="rh-alpha", run=run))
    assert m.current == "rh-beta" and m.active == ["rh-beta"]  # the preloaded one is next on the card
    m.apply(ev.StudentStarted(ts=T0 + 2000, cycle=2, student="rh-beta", model="rh-beta", need_mb=4389,
                              timeout_s=60))
    m.apply(ev.StudentPhaseChanged(ts=T0 + 2001, cycle=2, student="rh-beta", phase="running"))
    assert m.students["rh-beta"].status == "running" and m.students["rh-beta"].preload_beside is None
    m.apply(ev.SessionFinished(ts=T0 + 2002, session_id=7, cycles=2, runs=12, tokens=1, reason="done"))
    assert m.current is None and m.active == []


def test_a_student_that_critiques_then_judges_shows_what_it_runs_now():
    events, _ = research_round(1)
    critique_done = next(i for i, e in enumerate(events)
                         if isinstance(e, ev.StudentFinished) and e.run.kind == "critique")
    judge_start = events[critique_done + 1]
    assert isinstance(judge_start, ev.StudentStarted) and judge_start.kind == "judge"
    m = folded(events[: critique_done + 2])
    row = m.students["rh-zeta"]
    assert row.role == "critique" and row.kind == "judge" and m.current == "rh-zeta"


def test_rounds_are_bounded():
    m = model()
    for cycle in range(1, ROUNDS_KEPT + 20):
        m.apply(ev.StudentFinished(ts=T0 + cycle, cycle=cycle, student="rh-alpha",
                                   run=run_record("rh-alpha", cycle, run_id=cycle)))
    assert len(m.rounds) == ROUNDS_KEPT and m.rounds[0].cycle == 20


# -- the proposals view ------------------------------------------------------------------------


def option_ids(listing: ProposalList) -> list[str]:
    return [o.id for o in listing.options if o.id]


def option_texts(listing: ProposalList) -> list[str]:
    return [str(o.prompt) for o in listing.options]


async def test_the_proposals_view_groups_a_round_under_its_question(make_ui):
    events, now = round_under_way()
    app = make_ui(events, now=now)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("3")
        await pilot.pause()
        listing = app.screen.query_one(ProposalList)
        texts = option_texts(listing)
        # the newest round first: cycle 2, under way, then cycle 1 with its question and answers
        assert texts[0].startswith("Cycle 2") and "under way" in texts[0]
        first = next(i for i, t in enumerate(texts) if t.startswith("Cycle 1"))
        assert texts[first + 1].startswith("Can the explicit formula")
        rows = texts[first + 2:]
        assert [r.split()[1] for r in rows] == [*PROPOSERS, "rh-zeta", "rh-delta"]  # no judge run listed
        assert rows[0].split()[2:] == ["prop", "7.4", "✓"]
        assert rows[1].split()[2:] == ["prop", "unscored", "✗"]  # failed the verifier: not judged
        assert rows[4].split()[2:] == ["crit", "✓"]
        assert rows[5].split()[2:] == ["synth", "8.1", "✓"]
        # the newest answer is shown, with its score and the whole question
        view = app.screen.query_one(ProposalView)
        assert listing.highlighted_option is not None and listing.highlighted_option.id == option_ids(listing)[-1]
        assert "8.1/10" in str(view.border_title) and "synthesis" in str(view.border_title)
        assert QUESTION in " ".join(str(view.query_one("#proposal-question").render()).split())
        # up: the proposals, with their failures and scores (the list's keys work as before)
        for _ in range(4):
            await pilot.press("up")
        await pilot.pause()
        assert "rh-beta" in str(view.border_title)
        detail = str(view.query_one("#proposal-detail").render())
        assert all(f in detail for f in VERIFIER_FAILURES) and "Verifier ✗" in detail
        await pilot.press("up")
        await pilot.pause()
        detail = str(view.query_one("#proposal-detail").render())
        assert "rh-alpha" in str(view.border_title) and "7.4/10" in detail and "rigour" in detail


async def test_a_score_that_arrives_updates_the_answer_shown(make_ui):
    events, now = research_round(1, scores={})
    app = make_ui(events, now=now)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("3")
        await pilot.pause()
        view = app.screen.query_one(ProposalView)
        assert "rh-delta" in str(view.border_title) and "/10" not in str(view.border_title)
        synth = app.model.rounds[-1].runs["synthesis"][0]
        app.engine_event(ev.RunScored(ts=now, cycle=1, student="rh-delta", run_id=synth.run.id, kind="synthesis",
                                      score=6.5, scores=rubric(6.5), judges=("rh-zeta",)))
        await pilot.pause()
        assert "6.5/10" in str(view.border_title)
        assert "6.5" in option_texts(app.screen.query_one(ProposalList))[-1]


HOSTILE = ("Evil \x1b]8;;https://evil.example\x1b\\link\x1b]8;;\x1b\\ \x1b[2J\x1b]52;c;ZXZpbA==\x07"
           " [bold red]markup[/] [link=https://evil.example]x[/link] abc\u202edcba")


def assert_inert(text: str) -> None:
    assert "\x1b" not in text and "\x07" not in text and "\u202e" not in text
    assert "[bold red]markup[/]" in text and "^[" in text and "<U+202E>" in text


async def test_a_hostile_question_judge_reason_and_verifier_reason_stay_inert(make_ui):
    events, now = research_round(1, question=HOSTILE, reasons={"rh-alpha": HOSTILE}, failures=(HOSTILE,))
    events.append(ev.RunScored(ts=now, cycle=1, student="rh-gamma", run_id=None, kind="proposal", score=None,
                               judges=("rh-zeta",), reason=HOSTILE))
    app = make_ui(events, now=now)
    async with app.run_test(size=(160, 50)) as pilot:
        await pilot.press("3")
        await pilot.pause()
        listing = app.screen.query_one(ProposalList)
        view = app.screen.query_one(ProposalView)
        question = next(o.prompt for o in listing.options if "Evil" in str(o.prompt))
        assert "\x1b" not in str(question) and "^[" in str(question)
        shown = {}
        for target in ("rh-beta", "rh-alpha", "rh-gamma"):  # verifier reason, judge reason, unscored reason
            index = next(i for i, o in enumerate(listing.options) if o.id and target in str(o.prompt))
            listing.highlighted = index
            await pilot.pause()
            parts = [view.query_one(w).render() for w in ("#proposal-question", "#proposal-round", "#proposal-detail")]
            for part in parts:
                assert not any("link" in str(span.style) for span in getattr(part, "spans", []))
            shown[target] = "\n".join(str(p) for p in parts)
            assert_inert(shown[target])
        assert shown["rh-alpha"].count("[bold red]markup[/]") >= 4  # the question, and a reason per criterion
        screen = app.export_screenshot()
    assert "\x1b" not in screen and "^[]8;;https://evil.example" in screen.replace("&#160;", " ")


# -- the queue ------------------------------------------------------------------------------------


async def test_the_queue_shows_roles_mean_scores_and_both_students_on_the_card(make_ui):
    events, now = round_under_way()
    app = make_ui(events, now=now)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        queue = app.screen.query_one(StudentQueue)

        def cell(student: str, column: str) -> str:
            return queue.get_row(student)[queue.get_column_index(column)].plain

        assert "running" in cell("rh-alpha", "status") and "loading" in cell("rh-beta", "status")
        assert cell("rh-beta", "now").startswith("preloading")
        assert [cell(s, "role") for s in STUDENTS] == ["prop", "prop", "prop", "synth", "prop", "crit"]
        assert [cell(s, "score") for s in STUDENTS] == ["7.4", "—", "6.3", "8.1", "5.8", "—"]
        assert "running rh-alpha · loading rh-beta" in str(queue.border_title)
        banner = str(app.screen.query_one("#banner").render())
        assert "rh-alpha (1 of 6) is writing; rh-beta is loading beside it" in banner


@pytest.mark.parametrize("width", [80, 120, 160])
async def test_the_queue_keeps_room_for_what_a_row_says_now(make_ui, width):
    events, now = round_under_way()
    app = make_ui(events, now=now)
    async with app.run_test(size=(width, 40)) as pilot:
        await pilot.pause()
        queue = app.screen.query_one(StudentQueue)
        keys = [k.value for k in queue.columns]
        assert {"name", "status", "role", "now", "score", "fits"} <= set(keys)
        assert sum(c.get_render_width(queue) for c in queue.columns.values()) <= queue.size.width
        assert queue.columns[next(k for k in queue.columns if k.value == "now")].width >= 13  # "99 t/s 12/60s"


# -- a: ask a question ---------------------------------------------------------------------------


async def test_a_asks_a_question_at_the_tier_chosen(make_ui):
    orch = FakeOrchestrator()
    app = make_ui(round_under_way()[0], orchestrator=orch)
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.press("a")
        await pilot.pause()
        assert isinstance(app.screen, AskScreen)
        await pilot.press(*"Is the de Bruijn-Newman constant zero?")
        await pilot.press("enter")
        await pilot.pause()
        assert orch.calls == [("ask", "Is the de Bruijn-Newman constant zero?", "standard")]
        assert not isinstance(app.screen, AskScreen)
        # again, deep: tab to the tiers, right twice, space chooses; focus goes back to the question
        await pilot.press("a")
        await pilot.pause()
        await pilot.press(*"  What  would   a GUE test show? ")
        await pilot.press("tab", "right", "right", "space")
        await pilot.pause()
        await pilot.press("enter")
        await pilot.pause()
        assert orch.calls[-1] == ("ask", "What would a GUE test show?", "deep")


async def test_an_empty_question_is_refused_and_escape_cancels(make_ui):
    orch = FakeOrchestrator()
    app = make_ui(round_under_way()[0], orchestrator=orch)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("a")
        await pilot.pause()
        await pilot.press("space", "space", "enter")
        await pilot.pause()
        assert isinstance(app.screen, AskScreen) and orch.calls == []
        assert "Type a question first" in str(app.screen.query_one("#ask-error").render())
        await pilot.press("p", "e")  # typed into the question, never a pause or an emergency stop
        await pilot.press("escape")
        await pilot.pause()
        assert not isinstance(app.screen, AskScreen) and orch.calls == []


async def test_a_is_listed_in_the_footer_and_the_help(make_ui):
    app = make_ui(round_under_way()[0])
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        assert any(b.action == "ask" and b.show for _k, (_n, b, enabled, _t) in app.screen.active_bindings.items()
                   if enabled)
        rows = [row for _title, rs in app.help_sections() for row in rs]
        assert ("a", "Ask") in [(k, d) for k, d, _ in rows]


async def test_a_does_nothing_once_the_session_is_over(make_ui):
    orch = FakeOrchestrator()
    events = round_under_way()[0] + [ev.SessionFinished(ts=T0 + 5000, session_id=7, cycles=2, runs=12, tokens=1,
                                                        reason="time is up")]
    app = make_ui(events, orchestrator=orch)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("a")
        await pilot.pause()
        assert not isinstance(app.screen, AskScreen) and orch.calls == []
