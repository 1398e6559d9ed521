"""A failing student in the dashboard: its health in the queue, `u` on its row releases it (the
engine's `release`, which a watcher sends through the `controls` table), the help lists the key;
and a session ended by an outage of Ollama says so in the banner."""

from __future__ import annotations

from rhtui.engine import events as ev
from rhtui.tui.screens.base import banner_for
from rhtui.tui.screens.help import HelpScreen
from rhtui.tui.widgets.student_queue import StudentQueue
from tests.ui import scenes
from tests.ui.fakes import MID_CYCLE_NOW, FakeOrchestrator, run_record

QUARANTINED = ev.StudentHealthChanged(
    ts=MID_CYCLE_NOW, cycle=3, student="rh-beta", health="quarantined", failures=3,
    reason="3 failures in a row (last: HTTP 500: llama runner process has terminated); skipped from now on",
)


def failing_beta() -> list[ev.Event]:
    return [*scenes.mid_cycle_events(),
            ev.StudentFinished(ts=MID_CYCLE_NOW, cycle=3, student="rh-beta",
                               run=run_record("rh-beta", 3, status="error")),
            QUARANTINED]


def now_cell(queue: StudentQueue, student: str) -> str:
    return queue.get_row(student)[queue.get_column_index("now")].plain


async def test_u_releases_the_quarantined_student_under_the_cursor(make_ui):
    orch = FakeOrchestrator()
    app = make_ui(failing_beta(), orchestrator=orch)
    async with app.run_test(size=(140, 40)) as pilot:
        queue = app.screen.query_one(StudentQueue)
        assert queue.has_focus
        assert app.model.students["rh-beta"].health == "quarantined"
        assert now_cell(queue, "rh-beta").startswith("quarantined (u releases): 3 failures in a row")
        await pilot.press("down")  # rh-beta
        await pilot.press("u")
        await pilot.pause()
        assert orch.calls == [("release", "rh-beta")]
        # the engine answers with the event; the row is healthy again
        app.engine_event(ev.StudentHealthChanged(ts=MID_CYCLE_NOW + 1, cycle=3, student="rh-beta", health="healthy",
                                                 failures=0, reason="released by user", released=True))
        await pilot.pause()
        assert app.model.students["rh-beta"].health == "healthy"
        assert not now_cell(queue, "rh-beta").startswith("quarantined")


async def test_u_on_a_healthy_student_sends_nothing(make_ui):
    orch = FakeOrchestrator()
    app = make_ui(failing_beta(), orchestrator=orch)
    async with app.run_test(size=(140, 40)) as pilot:
        await pilot.press("u")  # the cursor is on rh-alpha, healthy
        await pilot.pause()
        assert orch.calls == []


async def test_a_degraded_student_shows_its_health_and_a_running_one_its_progress(make_ui):
    def degraded(student: str) -> ev.StudentHealthChanged:
        return ev.StudentHealthChanged(ts=MID_CYCLE_NOW, cycle=3, student=student, health="degraded", failures=1,
                                       reason="1 failure in a row (last: HTTP 500); tried again after a 10 s back-off")

    app = make_ui([*scenes.mid_cycle_events(), degraded("rh-delta"), degraded("rh-gamma")])
    async with app.run_test(size=(140, 40)):
        queue = app.screen.query_one(StudentQueue)
        assert now_cell(queue, "rh-delta").startswith("degraded: 1 failure in a row")  # waiting in cycle 3
        assert not now_cell(queue, "rh-gamma").startswith("degraded")  # running: its tokens and seconds


async def test_help_lists_release(make_ui):
    app = make_ui(scenes.mid_cycle_events())
    async with app.run_test(size=(120, 50)) as pilot:
        await pilot.press("question_mark")
        await pilot.pause()
        assert isinstance(app.screen, HelpScreen)
        rows = [(k, desc, more) for _title, rows in app.screen.sections for k, desc, more in rows]
        (release,) = [r for r in rows if r[1] == "Release"]
        assert release[0] == "u" and "quarantined" in release[2]


def test_a_session_ended_by_an_outage_says_so_in_the_banner(make_ui):
    app = make_ui(scenes.mid_cycle_events())
    m = app.model
    host = "http://127.0.0.1:11434"
    m.apply(ev.BackendDown(ts=MID_CYCLE_NOW, host=host, error=f"Ollama is not reachable at {host}"))
    reason = f"Ollama at {host} was unreachable since 12:00:05"
    m.apply(ev.SessionFinished(ts=MID_CYCLE_NOW + 60, session_id=7, cycles=3, runs=13, tokens=1, reason=reason))
    kind, text = banner_for(m)
    assert kind == "error" and reason in text and "ollama serve" in text and "q to quit" in text
