"""What the `events` table keeps (StoreCoalescer): every event once, token progress at most
once a second per run with the newest held back, hardware samples never."""

from __future__ import annotations

from rhtui.engine import events as ev
from rhtui.engine.hardware import HardwareSnapshot
from rhtui.engine.records import RunRecord


def progress(t: float, tokens: int, student: str = "rh-alpha", cycle: int = 1) -> ev.TokensProgress:
    return ev.TokensProgress(ts=t, cycle=cycle, student=student, tokens=tokens, elapsed_s=t, tok_per_s=None,
                             timeout_s=60)


def test_plain_events_are_stored_at_once_and_samples_never():
    c = ev.StoreCoalescer()
    phase = ev.StudentPhaseChanged(ts=1, cycle=1, student="rh-alpha", phase="running")
    assert c.offer(phase, 0.0) == ([phase], None)
    assert c.offer(phase, 0.0) == ([phase], None)  # not throttled: every one
    sample = ev.HardwareSampled(ts=1, snapshot=HardwareSnapshot(ts=1, source="none"))
    assert c.offer(sample, 0.0) == ([], None)


def test_progress_is_throttled_per_run_and_the_newest_held_one_comes_due():
    c = ev.StoreCoalescer()
    p0, p1, p2 = progress(0, 10), progress(0.25, 20), progress(0.5, 30)
    assert c.offer(p0, 100.0) == ([p0], None)
    assert c.offer(p1, 100.25) == ([], 0.75)  # held; due in the rest of the second (exact in binary)
    assert c.offer(p2, 100.5) == ([], None)  # replaces the held one; already scheduled
    other = progress(0.5, 5, student="rh-beta")
    assert c.offer(other, 100.5) == ([other], None)  # another run has its own second
    assert c.due(100.9) == []
    assert c.due(101.0) == [p2]
    assert c.held == 0
    stored, wait = c.offer(progress(1.2, 40), 101.2)
    assert stored == [] and abs(wait - 0.8) < 1e-9


def test_a_finished_run_drops_what_was_held_for_it():
    c = ev.StoreCoalescer()
    c.offer(progress(0, 10), 0.0)
    c.offer(progress(0.3, 20), 0.3)
    run = RunRecord(session_id=1, cycle=1, student="rh-alpha", model="rh-alpha", status="ok", started_at=0,
                    ended_at=1)
    done = ev.StudentFinished(ts=1, cycle=1, student="rh-alpha", run=run)
    assert c.offer(done, 0.5) == ([done], None)
    assert c.held == 0 and c.due(5.0) == []
    nxt = progress(0, 1, cycle=2)
    assert c.offer(nxt, 0.6) == ([nxt], None)
