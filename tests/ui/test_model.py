"""The dashboard's state: folded from events, bounded for 8-hour sessions."""

from __future__ import annotations

from rhtui.engine import events as ev
from rhtui.engine.config import BudgetPolicy
from rhtui.engine.eventlog import format_event
from rhtui.tui.app import HardwareUpdate, TokensUpdate, engine_message
from rhtui.tui.state import LOG_LINES, PROPOSALS_KEPT, TIMELINE_BUCKETS, Timeline, UiModel
from tests.ui.fakes import STUDENTS, T0, mid_cycle, run_record, snapshot


def model() -> UiModel:
    return UiModel(session_name="s", host="http://h:1", students=[(s, s, True) for s in STUDENTS],
                   duration_s=8 * 3600, budget=BudgetPolicy())


def test_mid_cycle_state():
    m = model()
    for e in mid_cycle():
        m.apply(e)
    assert m.cycle == 3 and m.current == "rh-gamma"
    assert m.students["rh-gamma"].status == "running"
    assert m.students["rh-alpha"].status == "done"
    assert m.next_student == "rh-delta"
    assert m.students["rh-zeta"].fits is False
    assert m.runs_total == 14


def test_everything_that_grows_is_bounded():
    m = model()
    t = T0
    for i in range(5000):
        t += 6
        m.apply(ev.HardwareSampled(ts=t, snapshot=snapshot(t, 900.0 + (i % 50) * 80)))
        if i % 3 == 0:
            s = STUDENTS[i % 6]
            m.apply(ev.StudentFinished(ts=t, cycle=i, student=s, run=run_record(s, i, start=t)))
    assert len(m.log) <= LOG_LINES
    assert len(m.proposals) <= PROPOSALS_KEPT
    assert len(m.timeline.values) <= TIMELINE_BUCKETS
    assert all(len(r.vram) <= 200 for r in m.students.values())


def test_timeline_doubles_bucket_width_and_reports_change():
    tl = Timeline(buckets=4, width_s=1.0)
    assert tl.add(0.0, 100.0, 1000.0)
    assert not tl.add(0.5, 100.0, 1000.0)  # same bucket, same value: no redraw
    assert not tl.add(0.6, 105.0, 1000.0)  # grew by less than 1 % of the card
    assert tl.add(0.7, 200.0, 1000.0)
    for t in range(1, 10):
        tl.add(float(t), 100.0, 1000.0)
    assert len(tl.values) <= 4 and tl.width_s >= 2.0
    xs, ys = tl.points()
    assert max(ys) == 200.0


def test_a_flat_timeline_redraws_every_stride_buckets_and_a_jump_at_once():
    tl = Timeline(buckets=120, width_s=1.0)
    changes = [tl.add(float(t), 900.0, 12000.0) for t in range(40)]
    assert changes[0] and sum(changes) == 1 + 39 // Timeline.STRIDE
    assert tl.add(40.0, 5000.0, 12000.0)  # a student loaded: at once


def test_token_progress_bumps_the_queue_only_when_what_is_shown_changes():
    m = model()
    for e in mid_cycle():
        m.apply(e)
    v = m.versions["queue"]
    m.apply(ev.TokensProgress(ts=T0, cycle=3, student="rh-gamma", tokens=1035, elapsed_s=12.45,
                              tok_per_s=98.61, timeout_s=60))
    assert m.versions["queue"] == v
    m.apply(ev.TokensProgress(ts=T0, cycle=3, student="rh-gamma", tokens=1100, elapsed_s=13.1,
                              tok_per_s=99.0, timeout_s=60))
    assert m.versions["queue"] > v  # a new second


def test_high_rate_messages_collapse_only_into_their_own_kind():
    a = engine_message(ev.HardwareSampled(ts=1, snapshot=snapshot(1, 1.0)))
    b = engine_message(ev.HardwareSampled(ts=2, snapshot=snapshot(2, 2.0)))
    t1 = engine_message(ev.TokensProgress(ts=1, cycle=1, student="a", tokens=1, elapsed_s=1, tok_per_s=1,
                                          timeout_s=60))
    t2 = engine_message(ev.TokensProgress(ts=1, cycle=1, student="b", tokens=1, elapsed_s=1, tok_per_s=1,
                                          timeout_s=60))
    other = engine_message(ev.LogMessage(ts=1, level="info", text="x"))
    assert isinstance(a, HardwareUpdate) and isinstance(t1, TokensUpdate)
    assert a.can_replace(b) and not a.can_replace(t1) and not a.can_replace(other)
    assert t1.can_replace(t1) and not t1.can_replace(t2)
    assert not other.can_replace(other)


def test_emergency_and_backend_down_are_remembered_until_cleared():
    m = model()
    m.apply(ev.EmergencyStop(ts=T0, used_mb=11800, total_mb=12282, reason="spike"))
    assert m.state == "emergency" and m.emergency is not None
    m.apply(ev.EmergencyCleared(ts=T0, reason="cool-down"))
    assert m.emergency is None and m.state == "running"
    m.apply(ev.BackendDown(ts=T0, host="http://h:1", error="refused"))
    assert m.backend_down is not None
    m.apply(ev.BackendUp(ts=T0, host="http://h:1", version="0.6.3"))
    assert m.backend_down is None and m.backend_version == "0.6.3"


def test_fits_now_and_learned_profiles_arrive_as_events():
    from rhtui.engine.records import StudentStats

    m = model()
    for e in mid_cycle():
        m.apply(e)
    assert m.students["rh-zeta"].fits is False
    v = m.versions["queue"]
    m.apply(ev.FitsChecked(ts=T0, cycle=3,
                           fits=(("rh-delta", 3901.0, True, "fits"), ("rh-zeta", 5092.0, True, "fits"))))
    assert m.students["rh-zeta"].fits is True and m.students["rh-zeta"].need_mb == 5092.0
    assert m.versions["queue"] > v
    v = m.versions["queue"]
    m.apply(ev.FitsChecked(ts=T0, cycle=3, fits=(("rh-zeta", 5092.0, True, "fits"),)))
    assert m.versions["queue"] == v  # nothing new: the queue is not redrawn
    stats = StudentStats("rh-beta", 15, 0, 4390.0, 4450.0, 31.0, 3150.0, 109.0)
    m.apply(ev.ProfilesUpdated(ts=T0, profiles=(stats,)))
    assert m.students["rh-beta"].learned == stats and m.versions["queue"] > v


def _engine_lines(events: list[ev.Event]) -> list[tuple[str, str]]:
    """What the headless log prints for these events (debug lines are for --verbose only)."""
    lines = [format_event(e) for e in events]
    return [(level, text) for level, text in filter(None, lines) if level != "debug"]


def test_every_log_line_is_the_engine_line_of_its_event():
    from tests.ui import scenes

    for scene in (scenes.dashboard_mid_cycle, scenes.skipped_for_vram, scenes.emergency, scenes.paused,
                  scenes.backend_down, scenes.no_card_total):
        events, _now = scene()
        events += [
            ev.BackendUp(ts=T0 + 1, host="http://h:1", version="0.6.3"),
            ev.EmergencyCleared(ts=T0 + 2, reason="cool-down"),
            ev.LogMessage(ts=T0 + 3, level="debug", text="not shown"),
            ev.StudentSkipped(ts=T0 + 4, cycle=3, student="rh-beta", kind="missing", reason="not in Ollama"),
            ev.SessionFinished(ts=T0 + 5, session_id=7, cycles=3, runs=14, tokens=40_000, reason="time is up"),
        ]
        m = model()
        for e in events:
            m.apply(e)
        assert [(line.level, line.text) for line in m.log] == _engine_lines(events), scene.__name__


def test_log_lines_for_a_run_agree_with_the_headless_log():
    m = model()
    started = ev.StudentStarted(ts=T0, cycle=1, student="rh-alpha", model="rh-alpha", need_mb=3900, timeout_s=60)
    done = ev.StudentFinished(ts=T0 + 30, cycle=1, student="rh-alpha", run=run_record("rh-alpha", 1, start=T0))
    failed = ev.StudentFinished(ts=T0 + 60, cycle=1, student="rh-beta",
                                run=run_record("rh-beta", 1, status="timeout", start=T0 + 30, reason="60 s"))
    alarm = ev.BudgetAlarm(ts=T0 + 61, level="warning", used_mb=10_500, total_mb=12_282, message="near the limit")
    for e in (started, done, failed, alarm):
        m.apply(e)
    assert [(line.level, line.text) for line in m.log] == _engine_lines([started, done, failed, alarm])
    assert [line.level for line in m.log] == ["info", "info", "warning", "warning"]
    assert "saved run #1" in m.log[1].text


def test_only_what_is_not_an_event_has_a_line_of_the_dashboard_own():
    m = model()
    queued = ev.StudentQueued(ts=T0, cycle=1, student="rh-zeta", position=6, need_mb=5092, fits=False,
                              reason="needs 5,092 MB")
    m.apply(queued)
    assert format_event(queued) is not None and not _engine_lines([queued])
    assert not m.log  # a debug line: the queue's Fits column shows it, as headless shows it with --verbose
    m.engine_failed(T0, "RuntimeError: boom")
    assert [(line.level, line.text) for line in m.log] == [
        ("critical", "the engine stopped with an error: RuntimeError: boom")]
