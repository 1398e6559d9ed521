"""Every key of the dashboard against the real orchestrator and the simulator over HTTP:
what the person presses is what the engine and Ollama see."""

from __future__ import annotations

import pytest
from textual.widgets import Static

from rhtui.engine import events as ev
from rhtui.tui.app import make_app
from tests.helpers import until_async

pytestmark = pytest.mark.integration


def loads(world, model: str) -> list:
    return [e for e in world.load_log if e.action == "load" and e.model.split(":")[0] == model]


def unloads(world, model: str) -> list:
    return [e for e in world.load_log if e.action in ("unload", "expire") and e.model.split(":")[0] == model]


def build(sim, store, make_engine, **overrides):
    orch, rec = make_engine(**overrides)
    app = make_app(orch.settings, orch.backend, orch.probe, store, sim.clock, orchestrator=orch)
    return app, orch, rec


async def test_p_pauses_so_no_new_student_starts_and_p_resumes(sim, store, make_engine):
    app, orch, rec = build(sim, store, make_engine, session={"max_cycles": 2})
    async with app.run_test(size=(160, 50)) as pilot:
        await until_async(lambda: orch.current == "rh-alpha", wait=pilot.pause)
        await pilot.press("p")
        assert orch.state == "paused"
        await until_async(lambda: orch.current is None, wait=pilot.pause)  # the running one finishes
        started = len(rec.of(ev.StudentStarted))
        await pilot.pause(1.0)  # 50 simulated seconds: beta would have started by now
        assert len(rec.of(ev.StudentStarted)) == started and loads(sim.world, "rh-beta") == []
        await pilot.press("p")
        assert orch.state == "running"
        await until_async(lambda: loads(sim.world, "rh-beta"), wait=pilot.pause)
        orch.request_stop()
        await until_async(lambda: orch.state == "finished", wait=pilot.pause)


async def test_s_cancels_the_running_generation_and_the_simulator_sees_an_unload(sim, store, make_engine):
    app, orch, rec = build(sim, store, make_engine)
    async with app.run_test(size=(160, 50)) as pilot:
        await until_async(lambda: orch.current == "rh-alpha" and sim.world.is_loaded("rh-alpha"), wait=pilot.pause)
        await until_async(
            lambda: any(isinstance(e, ev.StudentPhaseChanged) and e.phase == "running" for e in rec.events),
            wait=pilot.pause,
        )
        await pilot.press("s")
        await until_async(lambda: rec.of(ev.StudentFinished), wait=pilot.pause)
        run = rec.of(ev.StudentFinished)[0].run
        assert run.student == "rh-alpha" and run.status == "skipped" and run.reason == "skipped by user"
        assert unloads(sim.world, "rh-alpha")
        orch.request_stop()
        await until_async(lambda: orch.state == "finished", wait=pilot.pause)


async def test_space_disables_the_student_under_the_cursor_and_the_next_cycle_skips_it(sim, store, make_engine):
    app, orch, rec = build(sim, store, make_engine, session={"max_cycles": 2})
    async with app.run_test(size=(160, 50)) as pilot:
        await until_async(lambda: orch.current == "rh-alpha", wait=pilot.pause)
        table = app.screen.query_one("StudentQueue")
        table.focus()
        table.move_cursor(row=2)  # rh-gamma
        assert table.cursor_student == "rh-gamma"
        await pilot.press("space")
        assert orch.enabled["rh-gamma"] is False
        await until_async(lambda: orch.state == "finished", timeout=60, wait=pilot.pause)
    runs = [r for r in await store.runs(session_id=orch.session_id) if r.student == "rh-gamma"]
    # disabled before its turn: skipped in this cycle and the next, never loaded
    assert [(r.cycle, r.status) for r in runs] == [(1, "skipped"), (2, "skipped")]
    assert all("disabled" in r.reason for r in runs)
    assert loads(sim.world, "rh-gamma") == []


async def test_e_unloads_everything_and_pauses_and_r_resumes(sim, store, make_engine):
    app, orch, rec = build(sim, store, make_engine, session={"max_cycles": 2})
    async with app.run_test(size=(160, 50)) as pilot:
        await until_async(lambda: orch.current == "rh-alpha" and sim.world.is_loaded("rh-alpha"), wait=pilot.pause)
        await pilot.press("e")
        await until_async(
            lambda: orch.state == "emergency" and orch.current is None and not sim.world.loaded_names(),
            wait=pilot.pause,
        )
        assert rec.of(ev.EmergencyStop)
        await pilot.pause(0.5)
        assert sim.world.loaded_names() == [] and orch.state == "emergency"  # stays put: no auto-resume after a key
        await pilot.press("r")
        assert orch.state == "running"
        await until_async(lambda: loads(sim.world, "rh-beta"), wait=pilot.pause)
        orch.request_stop()
        await until_async(lambda: orch.state == "finished", wait=pilot.pause)
    alpha = [r for r in await store.runs(session_id=orch.session_id) if r.student == "rh-alpha"][0]
    assert alpha.status == "emergency"


@pytest.mark.parametrize("sim_speed", [5.0])  # a proposal takes ~6 s: still running when y is pressed
async def test_q_while_running_asks_then_exits_cleanly_with_the_run_aborted(sim, store, make_engine):
    app, orch, rec = build(sim, store, make_engine, budget={"timeout_s": 60})
    async with app.run_test(size=(160, 50)) as pilot:
        await until_async(lambda: orch.current == "rh-alpha" and sim.world.is_loaded("rh-alpha"), wait=pilot.pause)
        await pilot.press("q")
        await pilot.pause(0.1)
        assert type(app.screen).__name__ == "ConfirmQuit"
        await pilot.press("y")
        await until_async(lambda: orch.state == "finished", wait=pilot.pause)
        await until_async(lambda: not app.is_running, timeout=10, wait=pilot.pause)
    runs = await store.runs(session_id=orch.session_id)
    assert [r.status for r in runs] == ["aborted"]
    assert sim.world.loaded_names() == []
    assert (await store.get_session(orch.session_id)).ended_at is not None


async def test_the_log_shows_its_newest_line_after_a_view_switch(sim, store, make_engine):
    from rhtui.tui.widgets.cycle_log import CycleLog

    app, orch, rec = build(sim, store, make_engine, session={"max_cycles": 4})
    async with app.run_test(size=(160, 50)) as pilot:
        await until_async(lambda: len(app.model.log) >= 22, wait=pilot.pause)  # as many lines as the log shows
        await pilot.press("2")
        seen = app.model.log_seq
        # written while the log is hidden
        await until_async(lambda: app.model.log_seq >= seen + 4, wait=pilot.pause)
        await pilot.press("1")
        await pilot.pause(0.05)
        log = app.screen.query_one(CycleLog)
        rows = [log.render_line(y).text.rstrip() for y in range(log.scrollable_content_region.height)]
        assert rows[-1].strip(), rows[-6:]
        assert log.scroll_y == log.max_scroll_y
        orch.request_stop()
        await until_async(lambda: orch.state == "finished", wait=pilot.pause)


class FailsWhileAStudentWrites(Static):
    """A widget with a bug: its render raises once a student is writing."""

    def on_mount(self) -> None:
        self.set_interval(0.02, self.refresh)

    def render(self) -> str:
        if _writing(self.app):
            raise RuntimeError("the widget failed")
        return "ok"


def _writing(app) -> bool:
    row = app.model.students.get(app.model.current or "")
    return row is not None and row.status == "running"


@pytest.mark.parametrize("sim_speed", [5.0])  # a proposal takes ~6 s: still running when the widget fails
@pytest.mark.parametrize("where", ["render", "handler"])
async def test_a_bug_in_a_widget_stops_the_session_gracefully_and_exits_non_zero(sim, store, make_engine, where,
                                                                                   monkeypatch):
    """In a widget's render (the screen's message loop survives it) or in a method the app's own
    message loop calls (which ends that loop at once): the same graceful stop as q, then exit 1."""
    from rhtui.tui.widgets.student_queue import StudentQueue

    app, orch, rec = build(sim, store, make_engine, budget={"timeout_s": 60})
    if where == "handler":
        show = StudentQueue.show

        def failing_show(self, rows, next_student):
            if _writing(self.app):
                raise RuntimeError("the widget failed")
            show(self, rows, next_student)

        monkeypatch.setattr(StudentQueue, "show", failing_show)
    with pytest.raises(RuntimeError, match="the widget failed"):
        async with app.run_test(size=(160, 50)) as pilot:
            if where == "render":
                await pilot.app.screen.mount(FailsWhileAStudentWrites())
            # the widget fails while rh-alpha writes; the app closes
            await until_async(lambda: not app.is_running, interval=0.02, what="the app to close")
        # leaving run_test waits for the engine's graceful stop, then re-raises the app's error
    assert app.return_code == 1 and isinstance(app.crash, RuntimeError)
    assert orch.state == "finished"
    [run] = await store.runs(session_id=orch.session_id)
    assert (run.student, run.status, run.reason) == ("rh-alpha", "aborted", "session stopped")
    assert run.error == "the dashboard failed: RuntimeError: the widget failed"
    session = await store.get_session(orch.session_id)
    assert session.ended_at is not None
    assert session.end_reason == "the dashboard failed: RuntimeError: the widget failed"
    assert sim.world.loaded_names() == []
    assert [e.reason for e in rec.of(ev.SessionFinished)] == [session.end_reason]
