"""Students that keep failing, over real loopback HTTP to the simulator: a back-off after each
failure, quarantine after three in a row (skipped as `quarantined: …`), a probe run now and then,
release by a success or by a person (through the `controls` table, as `rhtui students release`
and `u` send it), and the engine backing off as a whole while every student fails — never a busy
loop (a server answering 500 to everything once produced 64 error runs a second). Health shows in
the events, the log and `rhtui report --format json`. Times are compared on the engine clock."""

from __future__ import annotations

import asyncio
import io
import json
import os
import subprocess
import sys
from collections import Counter

import pytest
from rich.console import Console

from rhtui.commands.report import print_report
from rhtui.engine import events as ev
from rhtui.engine.scheduler import ENGINE_BACKOFF_S, PROBE_AFTER_CYCLES, QUARANTINE_AFTER
from rhtui.sim.scenario import load_scenario
from tests.helpers import until_async
from tests.integration.conftest import engine_on_sim

pytestmark = pytest.mark.integration

STUDENTS = [s.name for s in load_scenario("rtx4070s").students]
FOREVER = 10**9


@pytest.fixture
def sim_speed():
    return 200.0


def engine(sim, store, tmp_path, session_seconds: float, **session):
    return engine_on_sim(sim, store, tmp_path, budget={"timeout_s": 600}, session_seconds=session_seconds,
                         session={"name": "failing", "prompt_seed": 1, **session})


async def report_json(tmp_path, session: str | None = None) -> dict:
    buf = io.StringIO()
    console = Console(file=buf, color_system=None, width=200)
    assert await print_report(tmp_path / "rhtui.db", session, "json", 10, console) == 0
    return json.loads(buf.getvalue())


def by_cycle(runs, student):
    return {r.cycle: r for r in runs if r.student == student}


async def test_every_generation_500_is_bounded_quarantined_and_probed(sim, store, tmp_path):
    sim.world.inject("http_500", count=FOREVER)  # every request, every model
    session_s = 1800.0  # 30 engine minutes, ~9 s of real time at 200x
    orch, rec, backend = engine(sim, store, tmp_path, session_s)
    try:
        await asyncio.wait_for(orch.run(), 90)
    finally:
        await backend.close()
    runs = await store.runs(session_id=orch.session_id)
    attempted = Counter(r.student for r in runs if r.status != "skipped")
    assert set(attempted) == set(STUDENTS)
    # bounded: 3 tries, then one probe per 1, 2, 4 ... cycles, cycles spaced by the engine's back-off
    assert all(QUARANTINE_AFTER < n <= 8 for n in attempted.values()), attempted
    assert sum(attempted.values()) / (session_s / 60) <= 2, attempted  # a couple per minute, all six together
    assert all(r.status == "error" for r in runs if r.status != "skipped")

    for name in STUDENTS:
        mine = by_cycle(runs, name)
        assert [mine[c].status for c in (1, 2, 3)] == ["error"] * 3
        # the third failure says it is quarantined, not that it is tried again next cycle
        assert f"quarantined after {QUARANTINE_AFTER} failures in a row" in mine[3].reason
        assert "tried again next cycle" not in mine[3].reason and "tried again next cycle" in mine[1].reason
        # sits out PROBE_AFTER_CYCLES[0] cycle(s) as quarantined, then one probe run (which fails)
        first = PROBE_AFTER_CYCLES[0]
        for c in range(4, 4 + first):
            assert mine[c].status == "skipped" and mine[c].reason.startswith("quarantined: "), mine[c]
            assert "failures in a row" in mine[c].reason and f"rhtui students release {name}" in mine[c].reason
            assert "HTTP 500" in mine[c].reason
        assert mine[4 + first].status == "error"
        # then it waits twice as long before the next probe
        for c in range(5 + first, 5 + first + 2 * first):
            assert c not in mine or mine[c].status == "skipped", mine[c]
        health = [(e.health, e.failures) for e in rec.of(ev.StudentHealthChanged) if e.student == name]
        assert health[:4] == [("degraded", 1), ("degraded", 2), ("quarantined", 3), ("quarantined", 4)]
        skips = [e for e in rec.of(ev.StudentSkipped) if e.student == name]
        assert skips and all(e.kind == "quarantined" for e in skips)

    # the log: each change of health is a line, the probes are announced
    probes = [e.text for e in rec.of(ev.LogMessage) if "its probe run now" in e.text]
    assert len(probes) >= len(STUDENTS)
    # report: every student is quarantined at the end of the session
    students = {s["student"]: s for s in (await report_json(tmp_path))["students"]}
    assert all(s["health"] == "quarantined" and s["failures_in_a_row"] >= QUARANTINE_AFTER
               for s in students.values()), students
    (finished,) = rec.of(ev.SessionFinished)
    assert "time is up" in finished.reason


async def test_when_every_student_fails_the_engine_backs_off_as_a_whole(sim, store, tmp_path):
    sim.world.inject("http_500", count=FOREVER)
    times: list[tuple[float, ev.Event]] = []
    orch, rec, backend = engine(sim, store, tmp_path, 600.0)
    orch.bus.subscribe(lambda e: times.append((orch.clock.monotonic(), e)) if not e.high_rate else None)
    try:
        await asyncio.wait_for(orch.run(), 60)
    finally:
        await backend.close()
    waits = [(t, e) for t, e in times if isinstance(e, ev.LogMessage) and "every student is failing" in e.text]
    assert len(waits) >= 3
    first, most = ENGINE_BACKOFF_S
    announced = [float(e.text.split("the engine waits ")[1].split(" s")[0]) for _, e in waits]
    assert announced[:4] == [min(first * 2**i, most) for i in range(min(4, len(announced)))], announced
    assert "journalctl -u ollama" in waits[0][1].text and "HTTP 500" in waits[0][1].text
    # the next cycle started only after the announced wait, on the engine clock
    starts = [t for t, e in times if isinstance(e, ev.CycleStarted)]
    for (t, _e), wait in zip(waits, announced, strict=False):
        nxt = [s for s in starts if s > t]
        if nxt:
            assert nxt[0] - t >= 0.9 * wait, (t, nxt[0], wait)
    # a handful of cycles in 10 engine minutes, not thousands
    assert len(starts) <= 8, len(starts)


async def test_a_success_releases_a_quarantined_student(sim, store, tmp_path):
    sim.world.inject("http_500", model="rh-beta", count=QUARANTINE_AFTER)
    first = PROBE_AFTER_CYCLES[0]
    orch, rec, backend = engine(sim, store, tmp_path, 1e6, max_cycles=4 + first)
    try:
        await asyncio.wait_for(orch.run(), 90)
    finally:
        await backend.close()
    runs = await store.runs(session_id=orch.session_id)
    beta = by_cycle(runs, "rh-beta")
    assert [beta[c].status for c in range(1, 5 + first)] == ["error"] * 3 + ["skipped"] * first + ["ok"]
    assert beta[4].reason.startswith("quarantined: ")
    assert all(r.status == "ok" for r in runs if r.student != "rh-beta")
    events = [e for e in rec.of(ev.StudentHealthChanged) if e.student == "rh-beta"]
    assert [(e.health, e.failures) for e in events] == [("degraded", 1), ("degraded", 2), ("quarantined", 3),
                                                        ("healthy", 0)]
    assert "its probe run succeeded" in events[-1].reason and not events[-1].released
    # the degraded student waited its back-off: 10 s after the first failure, 20 s after the second
    assert "10 s back-off" in events[0].reason and "20 s back-off" in events[1].reason
    # never engine-wide: the others were fine
    assert not [e for e in rec.of(ev.LogMessage) if "every student is failing" in e.text]
    students = {s["student"]: s for s in (await report_json(tmp_path))["students"]}
    assert students["rh-beta"]["health"] == "healthy" and students["rh-beta"]["failures"] == 3


def cli(args: list[str], tmp_path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RHTUI_") and k != "OLLAMA_HOST"}
    env.update(NO_COLOR="1", XDG_CONFIG_HOME=str(tmp_path / "config"), COLUMNS="200")
    return subprocess.run([sys.executable, "-m", "rhtui.commands.cli", *args, "--data-dir", str(tmp_path)],
                          capture_output=True, text=True, timeout=120, env=env)


async def test_rhtui_students_release_reaches_the_running_engine_through_controls(sim, store, tmp_path):
    sim.world.inject("http_500", model="rh-beta", count=QUARANTINE_AFTER)
    orch, rec, backend = engine(sim, store, tmp_path, 1e6, max_cycles=5)

    def pause_once_quarantined(event: ev.Event) -> None:
        if isinstance(event, ev.StudentHealthChanged) and event.health == "quarantined":
            orch.pause()  # the running student finishes; nobody starts until resume()

    orch.bus.subscribe(pause_once_quarantined)
    task = asyncio.ensure_future(orch.run())
    try:
        await until_async(lambda: orch.state == "paused" and orch.current is None, timeout=60,
                          what="rh-beta quarantined and the engine paused")
        quarantined_in = orch.cycle
        # `rhtui students list` and `release` from another process, through the database
        listed = await asyncio.to_thread(cli, ["students", "list"], tmp_path)
        assert listed.returncode == 0, listed.stdout + listed.stderr
        beta_line = next(line for line in listed.stdout.splitlines() if "rh-beta" in line)
        assert "quarantined" in beta_line and "HTTP 500" in beta_line, listed.stdout
        healthy = await asyncio.to_thread(cli, ["students", "release", "rh-alpha"], tmp_path)
        assert healthy.returncode == 0 and "rh-alpha is healthy" in healthy.stdout, healthy.stdout + healthy.stderr
        unknown = await asyncio.to_thread(cli, ["students", "release", "rh-nobody"], tmp_path)
        assert unknown.returncode == 2 and "no student 'rh-nobody'" in unknown.stderr, unknown.stderr
        released = await asyncio.to_thread(cli, ["students", "release", "rh-beta"], tmp_path)
        assert released.returncode == 0, released.stdout + released.stderr
        assert "released rh-beta in session failing" in released.stdout and "the engine took it" in released.stdout
        (event,) = [e for e in rec.of(ev.StudentHealthChanged) if e.released]
        assert event.student == "rh-beta" and event.health == "healthy"
        # released before its probe cycle: it runs at its very next turn, and succeeds
        orch.resume()
        await asyncio.wait_for(task, 90)
    finally:
        if not task.done():
            orch.request_stop()
            await asyncio.wait_for(task, 30)
        await backend.close()
    beta = by_cycle(await store.runs(session_id=orch.session_id), "rh-beta")
    assert beta[quarantined_in + 1].status == "ok", beta[quarantined_in + 1]
    assert not [e for e in rec.of(ev.StudentSkipped) if e.kind == "quarantined"]
    # the report counts the release: healthy
    students = {s["student"]: s for s in (await report_json(tmp_path))["students"]}
    assert students["rh-beta"]["health"] == "healthy"
    # and a release of a session that has ended says so
    ended = await asyncio.to_thread(cli, ["students", "release", "rh-beta"], tmp_path)
    assert ended.returncode == 1 and "No engine runs it" in ended.stderr, ended.stderr


async def test_report_health_of_a_finished_session(sim, store, tmp_path):
    sim.world.inject("http_500", model="rh-beta", count=QUARANTINE_AFTER)
    orch, rec, backend = engine(sim, store, tmp_path, 1e6, max_cycles=3)
    try:
        await asyncio.wait_for(orch.run(), 90)
    finally:
        await backend.close()
    students = {s["student"]: s for s in (await report_json(tmp_path, "failing"))["students"]}
    assert students["rh-beta"]["health"] == "quarantined" and students["rh-beta"]["failures_in_a_row"] == 3
    assert students["rh-alpha"]["health"] == "healthy" and students["rh-alpha"]["failures_in_a_row"] == 0
