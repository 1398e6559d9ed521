"""Pilot tests: every key against a fake orchestrator that records the calls.

The same tests work against the real Orchestrator: build the app with
`make_app(settings, backend, probe, store, clock, orchestrator=real)`.
"""

from __future__ import annotations

import gc
import threading

from textual import _styles_cache
from textual._styles_cache import StylesCache
from textual.color import Color
from textual.widget import Widget

from rhtui.engine import events as ev
from rhtui.tui.idle_gc import NEVER
from rhtui.tui.screens.confirm_quit import ConfirmQuit
from rhtui.tui.screens.help import HelpScreen
from rhtui.tui.textual_compat import unpin_styles_caches
from rhtui.tui.widgets.proposal_view import ProposalView
from rhtui.tui.widgets.student_queue import StudentQueue
from tests.ui import scenes
from tests.ui.fakes import T0, FakeOrchestrator, run_record, snapshot


def running(student: str = "rh-gamma") -> list[ev.Event]:
    return [ev.StudentStarted(ts=T0, cycle=3, student=student, model=student, need_mb=4481, timeout_s=60)]


async def test_p_pauses_then_resumes(make_ui):
    orch = FakeOrchestrator()
    app = make_ui(scenes.mid_cycle_events(), orchestrator=orch)
    async with app.run_test() as pilot:
        await pilot.press("p")
        await pilot.pause()
        assert orch.calls == [("pause",)]
        assert app.model.state == "paused"
        await pilot.press("p")
        await pilot.pause()
        assert orch.calls == [("pause",), ("resume",)]
        assert app.model.state == "running"


async def test_s_skips_the_running_student(make_ui):
    orch = FakeOrchestrator(current="rh-gamma")
    app = make_ui(scenes.mid_cycle_events(), orchestrator=orch)
    async with app.run_test() as pilot:
        await pilot.press("s")
        await pilot.pause()
        assert orch.calls == [("skip_current",)]


async def test_s_does_nothing_when_nobody_runs(make_ui):
    orch = FakeOrchestrator()
    app = make_ui(scenes.session_only(), orchestrator=orch)
    async with app.run_test() as pilot:
        assert app.model.current is None
        await pilot.press("s")
        await pilot.pause()
        assert orch.calls == []


async def test_space_disables_then_enables_the_student_under_the_cursor(make_ui):
    orch = FakeOrchestrator()
    app = make_ui(scenes.mid_cycle_events(), orchestrator=orch)
    async with app.run_test() as pilot:
        queue = app.screen.query_one(StudentQueue)
        assert queue.has_focus
        await pilot.press("down")  # rh-beta
        await pilot.press("space")
        await pilot.pause()
        assert orch.calls == [("set_enabled", "rh-beta", False)]
        assert app.model.students["rh-beta"].enabled is False
        assert "disabled" in queue.get_row("rh-beta")[1].plain
        await pilot.press("space")
        await pilot.pause()
        assert orch.calls[-1] == ("set_enabled", "rh-beta", True)
        assert app.model.students["rh-beta"].enabled is True


async def test_e_emergency_stop_then_r_resumes(make_ui):
    orch = FakeOrchestrator()
    app = make_ui(scenes.mid_cycle_events(), orchestrator=orch)
    async with app.run_test() as pilot:
        await pilot.press("r")  # not in an emergency: r does nothing
        await pilot.pause()
        assert orch.calls == []
        await pilot.press("e")
        await pilot.pause()
        assert orch.calls == [("emergency_stop", "emergency stop by user")]
        assert app.model.emergency is not None  # the fake emitted EmergencyStop on its bus
        assert app.screen.query_one("#banner").kind == "emergency"
        await pilot.press("r")
        await pilot.pause()
        assert orch.calls[-1] == ("clear_emergency",)
        assert app.model.emergency is None
        assert app.screen.query_one("#banner").kind == "info"


async def test_q_while_a_student_runs_asks_then_stops_gracefully_and_exits(make_ui):
    orch = FakeOrchestrator(current="rh-gamma")
    app = make_ui(scenes.mid_cycle_events(), orchestrator=orch, start_engine=True)
    async with app.run_test() as pilot:
        await pilot.pause()
        assert app.engine_running
        await pilot.press("q")
        await pilot.pause()
        assert isinstance(app.screen, ConfirmQuit)
        assert orch.calls == []
        await pilot.press("y")
        await pilot.pause()
        await pilot.pause()
        assert orch.calls == [("request_stop",)]
    assert app.return_code == 0
    # the engine finished its run (aborted the student, flushed) before the app exited
    assert app.model.finished is not None
    assert app.model.students["rh-gamma"].status == "aborted"


async def test_q_answered_no_keeps_running(make_ui):
    orch = FakeOrchestrator(current="rh-gamma")
    app = make_ui(scenes.mid_cycle_events(), orchestrator=orch, start_engine=True)
    async with app.run_test() as pilot:
        await pilot.press("q")
        await pilot.pause()
        await pilot.press("n")
        await pilot.pause()
        assert not isinstance(app.screen, ConfirmQuit)
        assert orch.calls == []
        assert app.engine_running and app.is_running


async def test_q_when_idle_stops_without_asking(make_ui):
    orch = FakeOrchestrator(current=None)
    app = make_ui(scenes.session_only(), orchestrator=orch, start_engine=True)
    async with app.run_test() as pilot:
        await pilot.pause()
        await pilot.press("q")
        await pilot.pause()
        await pilot.pause()
        assert orch.calls == [("request_stop",)]
    assert app.return_code == 0


async def test_q_waits_for_the_engine_and_shows_stopping(make_ui):
    orch = FakeOrchestrator(current=None, stop_delay_s=0.3)
    app = make_ui(scenes.session_only(), orchestrator=orch, start_engine=True)
    async with app.run_test() as pilot:
        await pilot.pause()
        await pilot.press("q")
        await pilot.pause()
        assert app.is_running and app.quitting
        assert app.screen.query_one("#banner").kind == "stopping"
        await pilot.pause(0.5)
    assert app.return_code == 0


async def test_q_without_an_engine_exits_at_once(make_ui):
    app = make_ui(scenes.session_only())
    async with app.run_test() as pilot:
        await pilot.press("q")
        await pilot.pause()
    assert app.return_code == 0


async def test_tab_and_numbers_switch_views(make_ui):
    app = make_ui(scenes.mid_cycle_events())
    async with app.run_test() as pilot:
        assert app.current_mode == "dashboard"
        for key, mode in (("tab", "charts"), ("tab", "proposals"), ("tab", "history"), ("tab", "dashboard"),
                          ("shift+tab", "history"), ("1", "dashboard"), ("2", "charts"), ("3", "proposals"),
                          ("4", "history")):
            await pilot.press(key)
            await pilot.pause()
            assert app.current_mode == mode, key


async def test_question_mark_and_f1_open_help_listing_every_key(make_ui):
    app = make_ui(scenes.mid_cycle_events())
    async with app.run_test(size=(120, 50)) as pilot:
        for key in ("question_mark", "f1"):
            await pilot.press(key)
            await pilot.pause()
            assert isinstance(app.screen, HelpScreen)
            listed = {desc for _title, rows in app.screen.sections for _k, desc, _m in rows}
            assert {"Pause", "Skip", "E-stop", "Resume", "Help", "Quit", "Toggle", "Next view",
                    "Dashboard", "Charts", "Proposals", "History"} <= listed
            await pilot.press("escape")
            await pilot.pause()
            assert not isinstance(app.screen, HelpScreen)


async def test_every_binding_has_an_id_and_a_description():
    from rhtui.tui.app import RhtuiApp
    from rhtui.tui.screens.base import RhtuiScreen
    from rhtui.tui.screens.dashboard import DashboardScreen

    for owner in (RhtuiApp, RhtuiScreen, DashboardScreen):
        for b in owner.BINDINGS:
            assert b.id, b
            assert b.description, b


async def test_command_palette_offers_the_controls(make_ui):
    app = make_ui(scenes.mid_cycle_events(), orchestrator=FakeOrchestrator(current="rh-gamma"))
    async with app.run_test() as pilot:
        await pilot.pause()
        titles = [c.title for c in app.get_system_commands(app.screen)]
        for title in ("Pause", "Skip", "E-stop", "Toggle", "Charts", "Help", "Quit", "Theme"):
            assert title in titles


async def test_palette_command_runs_the_action(make_ui):
    orch = FakeOrchestrator()
    app = make_ui(scenes.mid_cycle_events(), orchestrator=orch)
    async with app.run_test() as pilot:
        await pilot.pause()
        cmd = next(c for c in app.get_system_commands(app.screen) if c.title == "Pause")
        await cmd.callback()
        await pilot.pause()
        assert orch.calls == [("pause",)]


async def test_mouse_click_on_a_view_name_switches(make_ui):
    app = make_ui(scenes.mid_cycle_events())
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.click("#sb-views", offset=(16, 0))  # " 2 Charts "
        await pilot.pause()
        assert app.current_mode == "charts"


async def test_live_events_reach_the_queue_and_collapse(make_ui):
    orch = FakeOrchestrator()
    app = make_ui(scenes.mid_cycle_events(), orchestrator=orch)
    seen = []
    async with app.run_test(message_hook=seen.append) as pilot:
        before = app.events_seen
        for i in range(50):
            orch.bus.emit(ev.HardwareSampled(ts=T0 + i, snapshot=snapshot(T0 + i, 5000.0 + i)))
        await pilot.pause()
        # a burst of samples collapses: far fewer handled than emitted, and the last one wins
        assert app.events_seen - before < 50
        assert app.model.snapshot.vram_used_mb == 5049.0
        orch.bus.emit(ev.TokensProgress(ts=T0, cycle=3, student="rh-gamma", tokens=2000, elapsed_s=20.0,
                                        tok_per_s=100.0, timeout_s=60))
        await pilot.pause()
        queue = app.screen.query_one(StudentQueue)
        row = queue.get_row("rh-gamma")
        assert "100 t/s" in row[queue.get_column_index("now")].plain


async def test_every_builtin_theme_renders(make_ui):
    """Each built-in theme draws the whole dashboard (every student, the log), in colours of its
    own; the charts view follows a theme change too."""
    import re

    from textual.theme import BUILTIN_THEMES

    from tests.ui.fakes import STUDENTS

    def colours(svg: str) -> frozenset[str]:
        return frozenset(re.findall(r"#[0-9a-fA-F]{6}\b", svg))

    app = make_ui(scenes.mid_cycle_events())
    async with app.run_test(size=(160, 50)) as pilot:
        seen: dict[str, frozenset[str]] = {}
        for name in BUILTIN_THEMES:
            app.theme = name
            await pilot.pause()
            svg = app.export_screenshot().replace("&#160;", " ")
            assert all(s in svg for s in STUDENTS), name
            assert "cycle 3 started" in svg, name  # the log was drawn
            seen[name] = colours(svg)
        assert len(set(seen.values())) == len(seen), "two themes drew the dashboard in the same colours"
        await pilot.press("2")
        await pilot.pause()
        charts = app.export_screenshot()
        app.theme = "nord" if app.theme != "nord" else "dracula"
        await pilot.pause()
        recoloured = app.export_screenshot().replace("&#160;", " ")
        assert "VRAM used" in recoloured and colours(recoloured) != colours(charts)
    assert app.return_code in (None, 0)  # nothing failed while drawing


async def test_footer_recomposes_do_not_leak_widgets(make_ui):
    """Textual's Footer keeps watchers of removed keys (textual#6666); RhFooter drops them."""
    import gc

    from textual.widgets._footer import FooterKey

    from rhtui.tui.widgets.footer import RhFooter

    app = make_ui(scenes.mid_cycle_events())
    async with app.run_test() as pilot:
        await pilot.pause()
        footer = app.screen.query_one(RhFooter)

        def alive() -> int:
            gc.collect()
            return sum(1 for o in gc.get_objects() if isinstance(o, FooterKey))

        before = alive()
        for i in range(20):  # a student starts and finishes: `s` is enabled, then disabled
            app.engine_event(ev.StudentStarted(ts=T0 + i, cycle=9, student="rh-alpha", model="rh-alpha",
                                               need_mb=3900, timeout_s=60))
            await pilot.pause()
            app.engine_event(ev.StudentSkipped(ts=T0 + i, cycle=9, student="rh-alpha", reason="x", kind="user"))
            await pilot.pause()
        await pilot.pause(0.2)
        assert len(getattr(footer, "__watchers", {}).get("compact", [])) <= len(footer.children)
        assert alive() <= before + 10


async def test_a_view_shown_again_is_up_to_date_and_wears_the_current_theme(make_ui):
    from rhtui.tui.widgets.status_bar import StatusBar

    orch = FakeOrchestrator()
    app = make_ui(scenes.mid_cycle_events(), orchestrator=orch)
    async with app.run_test() as pilot:
        dashboard = app.screen
        await pilot.press("2")
        await pilot.pause()
        # while the dashboard is hidden: the engine pauses and the theme changes
        app.engine_event(ev.StateChanged(ts=T0, state="paused", reason="by user"))
        app.theme = "textual-light"
        await pilot.pause()
        await pilot.press("1")
        await pilot.pause()
        assert app.screen is dashboard
        assert "PAUSED" in str(dashboard.query_one(StatusBar).query_one("#sb-state").render())
        assert dashboard.query_one("#banner").kind == "paused"
        queue_bg = dashboard.query_one(StudentQueue).styles.background
        # the same widget on a dashboard that was visible when the theme changed
        fresh = make_ui(scenes.mid_cycle_events(), orchestrator=FakeOrchestrator())
        async with fresh.run_test() as pilot2:
            fresh.theme = "textual-light"
            await pilot2.pause()
            assert queue_bg == fresh.screen.query_one(StudentQueue).styles.background


async def test_the_queue_keeps_few_renderings_however_often_it_changes(make_ui):
    app = make_ui(scenes.mid_cycle_events(), orchestrator=FakeOrchestrator())
    async with app.run_test() as pilot:
        queue = app.screen.query_one(StudentQueue)
        for k in range(40):
            app.engine_event(ev.TokensProgress(ts=T0 + k, cycle=3, student="rh-gamma", tokens=10 * k,
                                               elapsed_s=float(k), tok_per_s=100.0 + k % 7, timeout_s=600))
            await pilot.pause()
        cells = queue._cell_render_cache
        assert cells.maxsize <= 12 * 12 * 4 and len(cells) <= cells.maxsize
        assert len(queue._line_cache) <= 64


async def test_replaced_proposal_widgets_leave_no_styles_cache_behind(make_ui):
    """Each shown proposal replaces the Markdown blocks; their renderings must go with them.

    Textual's StylesCache.get_inner_outer keeps up to 1,024 StylesCache objects (and their
    lines) alive after the widgets are removed, unless the app keys it on colours alone.
    """
    app = make_ui(scenes.mid_cycle_events(), orchestrator=FakeOrchestrator())
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("3")
        await pilot.pause()
        for cycle in range(4, 24):
            parts = (f"## Part {k}\n\n- step {k}\n- cycle {cycle}\n\n> bound the error term"
                     for k in range(cycle % 5 + 1))
            text = "\n\n".join(parts)
            app.screen.query_one(ProposalView).show(run_record("rh-alpha", cycle, proposal=text))
            await pilot.pause()
        gc.collect()
        live_widgets = sum(1 for o in gc.get_objects() if isinstance(o, Widget))
        caches = sum(1 for o in gc.get_objects() if type(o) is StylesCache)
        assert caches <= live_widgets, f"{caches} StylesCache objects for {live_widgets} widgets"


async def test_full_collections_wait_for_quiet_input_and_are_given_back_on_exit(make_ui):
    before = gc.get_threshold()
    app = make_ui(scenes.mid_cycle_events())
    async with app.run_test() as pilot:
        assert gc.get_threshold()[2] == NEVER, "CPython's own full collections are held while the app runs"
        app.idle_gc.idle_s, app.idle_gc.max_defer_s = 60.0, 60.0
        app.idle_gc.note_input()  # from here on, nothing may run until the limit is shortened
        done = app.idle_gc.collections  # the start may have had one already, with no input yet
        keep = [[] for _ in range(len(gc.get_objects(2)) // 3 + 1)]  # new old objects: worth collecting

        def young_collections() -> None:  # as Textual's input or writer thread may trigger them
            for _ in range(app.idle_gc._every):
                gc.collect(1)

        await pilot.press("2")
        worker = threading.Thread(target=young_collections)
        worker.start()
        worker.join()
        await pilot.pause()
        assert app.idle_gc.due_since is not None and app.idle_gc.collections == done, "held: a key was just pressed"
        app.idle_gc.max_defer_s = 0.3
        app._gc_step()  # as the pending retry would: it now waits at most until the limit
        await pilot.pause(0.8)
        assert app.idle_gc.collections >= done + 1, "run after max_defer_s even without a quiet moment"
        del keep
    assert gc.get_threshold() == before


def test_unpinned_inner_outer_colours_are_textuals():
    unpin_styles_caches()
    base, background = Color(10, 20, 30), Color(200, 100, 0, 0.5)
    inner, outer = StylesCache().get_inner_outer(base, background)
    assert inner == _styles_cache.Style(background=base + background)
    assert outer == _styles_cache.Style(background=base)
    assert StylesCache().get_inner_outer(base, background) == (inner, outer)
