"""A student's health, pure: back-off after a failure, quarantine after three in a row, probe runs
spaced by doubling cycles, release by a success or a person, the engine's own back-off while every
student fails; the same health recomputed from stored runs (what `rhtui report` shows); the event
stored and rebuilt as the others are."""

from __future__ import annotations

from rhtui.engine import events as ev
from rhtui.engine.eventlog import format_event
from rhtui.engine.records import RunRecord
from rhtui.engine.scheduler import (
    BACKEND_LOST_PREFIX,
    ENGINE_BACKOFF_S,
    PROBE_AFTER_CYCLES,
    QUARANTINE_AFTER,
    RETRY_BACKOFF_S,
    HealthBook,
    health_from_runs,
    run_outcome,
)

T0 = 1_700_000_000.0


def run(status: str, t: float = 0.0, *, reason: str = "", error: str = "", student: str = "rh-beta") -> RunRecord:
    return RunRecord(session_id=1, cycle=1, student=student, model=student, status=status,  # type: ignore[arg-type]
                     started_at=T0 + t, ended_at=T0 + t + 1, reason=reason, error=error)


FAIL = run("error", error="Ollama at http://127.0.0.1:11434 failed running 'rh-beta' with HTTP 500: boom",
           reason="...; rh-beta is tried again next cycle")


def test_what_counts_as_a_failure():
    assert run_outcome(run("ok")) == "ok"
    assert run_outcome(FAIL) == "failed"
    assert run_outcome(run("timeout", reason="no complete proposal within 60 s")) == "failed"
    # not the student's doing: an outage, a person's stop or skip, an emergency
    assert run_outcome(run("error", reason=f"{BACKEND_LOST_PREFIX}; the engine waits")) is None
    for status in ("aborted", "emergency", "skipped"):
        assert run_outcome(run(status)) is None


def test_back_off_then_quarantine_then_probes_spaced_by_doubling_cycles():
    book = HealthBook()
    assert book.hold("rh-beta", 0.0, 1) is None and book.health("rh-beta") == "healthy"
    # failure 1: degraded, back-off of RETRY_BACKOFF_S[0] on the clock passed in
    before, after = book.record("rh-beta", FAIL, 100.0, cycle=1)
    assert before.health == "healthy" and after.health == "degraded" and after.failures == 1
    assert after.backoff_s == RETRY_BACKOFF_S[0] and "HTTP 500: boom" in after.last_error
    kind, state = book.hold("rh-beta", 100.0 + RETRY_BACKOFF_S[0] - 0.1, 1)
    assert kind == "backoff" and state is after
    assert book.hold("rh-beta", 100.0 + RETRY_BACKOFF_S[0], 2) is None
    # failure 2: the back-off doubles
    _, after = book.record("rh-beta", FAIL, 200.0, cycle=2)
    assert after.health == "degraded" and after.backoff_s == 2 * RETRY_BACKOFF_S[0]
    # failure 3: quarantined; sits out PROBE_AFTER_CYCLES[0] cycle(s), then one probe run
    _, after = book.record("rh-beta", FAIL, 300.0, cycle=3)
    assert after.health == "quarantined" and after.failures == QUARANTINE_AFTER
    first = PROBE_AFTER_CYCLES[0]
    assert after.probe_cycle == 3 + first + 1
    for cycle in range(4, 4 + first):
        assert book.hold("rh-beta", 1e9, cycle)[0] == "quarantined"  # time alone never ends it
    assert book.hold("rh-beta", 0.0, 4 + first) is None and book.is_probe("rh-beta", 4 + first)
    # failed probes: the wait doubles up to the cap
    waits = []
    cycle = 4 + first
    for _ in range(6):
        _, after = book.record("rh-beta", FAIL, 0.0, cycle=cycle)
        assert after.health == "quarantined"
        waits.append(after.probe_every)
        cycle = after.probe_cycle
    assert waits == [2, 4, 8, 8, 8, 8] and max(waits) == PROBE_AFTER_CYCLES[1]
    # a success releases it
    before, after = book.record("rh-beta", run("ok"), 0.0, cycle=cycle)
    assert before.health == "quarantined" and after.health == "healthy" and book.hold("rh-beta", 0.0, cycle) is None
    assert book.record("rh-beta", run("ok"), 0.0, cycle=cycle) is None  # no change, no event


def test_neutral_runs_change_nothing_and_a_person_releases():
    book = HealthBook()
    for c in (1, 2, 3):
        book.record("rh-beta", FAIL, 0.0, cycle=c)
    assert book.record("rh-beta", run("aborted"), 0.0, cycle=4) is None
    assert book.health("rh-beta") == "quarantined"
    assert book.release("rh-beta") and book.health("rh-beta") == "healthy"
    assert book.hold("rh-beta", 0.0, 4) is None
    assert not book.release("rh-beta")  # healthy: nothing to release
    _, after = book.record("rh-beta", FAIL, 0.0, cycle=5)
    assert after.failures == 1 and after.health == "degraded"  # counted afresh after the release


def test_the_engine_backs_off_while_every_student_fails():
    book = HealthBook()
    names = ["rh-alpha", "rh-beta"]
    assert not book.all_failing([]) and not book.all_failing(names)
    book.record("rh-alpha", FAIL, 0.0, 1)
    assert not book.all_failing(names)
    book.record("rh-beta", FAIL, 0.0, 1)
    assert book.all_failing(names)
    first, most = ENGINE_BACKOFF_S
    assert [book.next_engine_wait() for _ in range(7)] == [min(first * 2**i, most) for i in range(7)]
    for _ in range(2000):  # months of back-offs: capped, never an overflow
        assert book.next_engine_wait() == most
    book.record("rh-alpha", run("ok"), 0.0, 9)  # a success resets it
    assert not book.all_failing(names) and book.next_engine_wait() == first


def test_health_from_runs_matches_the_book():
    runs = [run("ok", 0), FAIL, run("error", 20, reason=f"{BACKEND_LOST_PREFIX}; waits"),
            run("timeout", 30, reason="no complete proposal within 60 s"), run("skipped", 40)]
    runs[1] = run("error", 10, error="HTTP 500: boom")
    assert health_from_runs(runs) == ("degraded", 2, "no complete proposal within 60 s")
    runs.append(run("error", 50, error="HTTP 500: again"))
    assert health_from_runs(runs) == ("quarantined", 3, "HTTP 500: again")
    # a person's release after the last failure; failures after it count afresh
    assert health_from_runs(runs, [T0 + 55]) == ("healthy", 0, "")
    assert health_from_runs([*runs, run("error", 60, error="x")], [T0 + 55]) == ("degraded", 1, "x")
    assert health_from_runs([*runs, run("ok", 60)]) == ("healthy", 0, "")
    assert health_from_runs([]) == ("healthy", 0, "")
    long = run("error", 70, error="y" * 1000)
    assert len(health_from_runs([long])[2]) <= 160


def test_the_event_is_stored_rebuilt_and_logged():
    e = ev.StudentHealthChanged(ts=T0, cycle=3, student="rh-beta", health="quarantined", failures=3,
                                reason="3 failures in a row (last: HTTP 500)")
    assert type(e).store_every_s == 0  # every one is kept in `events`
    assert ev.event_from_data("StudentHealthChanged", ev.event_data(e)) == e
    assert format_event(e) == ("error", "[rh-beta] quarantined: 3 failures in a row (last: HTTP 500)")
    ok = ev.StudentHealthChanged(ts=T0, cycle=4, student="rh-beta", health="healthy", failures=0,
                                 reason="released by user", released=True)
    assert ev.event_from_data("StudentHealthChanged", ev.event_data(ok)) == ok
    assert format_event(ok) == ("info", "[rh-beta] healthy again: released by user")
    degraded = ev.StudentHealthChanged(ts=T0, cycle=1, student="rh-beta", health="degraded", failures=1)
    assert format_event(degraded)[0] == "warning"
