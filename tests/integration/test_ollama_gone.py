"""Ollama goes away in the middle of a session and never comes back, over real loopback HTTP to
the simulator: the engine waits for it only until the session's time is up (or
`session.give_up_after_s`), then ends the session with the outage as the reason, and `run()`
returns; a headless process exits 1 with that reason. Times are compared on the engine clock."""

from __future__ import annotations

import asyncio
import os
import re
import sqlite3
import subprocess
import sys
import time

import pytest

from rhtui.engine import events as ev
from tests.integration.conftest import engine_on_sim
from tests.processes import free_port

pytestmark = pytest.mark.integration

SINCE = re.compile(r"^Ollama at (\S+) was unreachable since \d\d:\d\d:\d\d$")


def pull_the_plug_after_alpha(world, down: dict):
    """Ollama stops for good once rh-alpha's proposal is saved."""

    def listener(event: ev.Event) -> None:
        if isinstance(event, ev.StudentFinished) and event.student == "rh-alpha" and not down:
            down["at"] = event.ts
            world.set_server_down(None)

    return listener


def engine(sim, store, tmp_path, session_seconds: float, **session):
    return engine_on_sim(sim, store, tmp_path, budget={"timeout_s": 600}, session_seconds=session_seconds,
                         session={"name": "gone", "prompt_seed": 1, **session})


async def test_ollama_gone_for_good_ends_the_session_at_its_duration(sim, store, tmp_path):
    session_s = 400.0  # engine seconds: 8 s of real time at 50x; rh-alpha takes ~30 of them
    orch, rec, backend = engine(sim, store, tmp_path, session_s)
    down: dict[str, float] = {}
    orch.bus.subscribe(pull_the_plug_after_alpha(sim.world, down))
    t0 = time.monotonic()
    try:
        await asyncio.wait_for(orch.run(), 60)  # returns: it does not wait for Ollama forever
    finally:
        await backend.close()
    assert time.monotonic() - t0 < 45
    assert down, "rh-alpha never finished"

    (started,) = rec.of(ev.SessionStarted)
    (finished,) = rec.of(ev.SessionFinished)
    m = SINCE.match(finished.reason)
    assert m and m.group(1) == sim.url, finished.reason
    # it ended at the session's end (engine clock), not before and not long after (5 s of real time)
    assert session_s - 1 <= finished.ts - started.ts <= session_s + 250, finished.ts - started.ts
    assert orch.exit_code == 1 and orch.state == "finished"
    row = await store.get_session(orch.session_id)
    assert row.ended_at is not None and row.end_reason == finished.reason
    # the log says what happened, where, and what to do
    (gave_up,) = [e.text for e in rec.of(ev.LogMessage) if "was unreachable since" in e.text]
    assert "the session's time ran out" in gave_up and "ollama serve" in gave_up, gave_up
    # one outage, never back; what ran before it is saved
    assert len(rec.of(ev.BackendDown)) == 1 and not [e for e in rec.of(ev.BackendUp) if e.ts > down["at"]]
    runs = await store.runs(session_id=orch.session_id)
    assert (runs[0].student, runs[0].status) == ("rh-alpha", "ok")
    assert runs[1].status == "error" and "went down during the run" in runs[1].reason
    assert len(runs) == 2
    # the outage is no student's failure
    assert not rec.of(ev.StudentHealthChanged)


async def test_give_up_after_s_ends_the_session_sooner(sim, store, tmp_path):
    # 2 wall-clock seconds of outage = 100 engine seconds at 50x; the session itself would last 3000
    orch, rec, backend = engine(sim, store, tmp_path, 3000.0, give_up_after_s=2)
    down: dict[str, float] = {}
    orch.bus.subscribe(pull_the_plug_after_alpha(sim.world, down))
    try:
        await asyncio.wait_for(orch.run(), 50)
    finally:
        await backend.close()
    (finished,) = rec.of(ev.SessionFinished)
    assert SINCE.match(finished.reason), finished.reason
    assert 100 - 1 <= finished.ts - down["at"] <= 100 + 250, finished.ts - down["at"]
    (gave_up,) = [e.text for e in rec.of(ev.LogMessage) if "was unreachable since" in e.text]
    assert "gave up waiting after 2 s (session.give_up_after_s)" in gave_up
    assert orch.exit_code == 1


async def test_ollama_back_before_the_end_the_session_goes_on(sim, store, tmp_path):
    # an outage shorter than give_up_after_s is waited out, as before
    orch, rec, backend = engine(sim, store, tmp_path, 3000.0, give_up_after_s=20, max_cycles=1)

    def short_outage(event: ev.Event) -> None:
        if isinstance(event, ev.StudentFinished) and event.student == "rh-alpha":
            sim.world.set_server_down(60.0)

    orch.bus.subscribe(short_outage)
    try:
        await asyncio.wait_for(orch.run(), 60)
    finally:
        await backend.close()
    (finished,) = rec.of(ev.SessionFinished)
    assert finished.reason == "1 cycles done" and orch.exit_code == 0
    assert rec.of(ev.BackendUp)


# -- the headless process ----------------------------------------------------------------------


def test_a_headless_session_exits_1_when_ollama_stays_down(tmp_path):
    rhtui = [sys.executable, "-m", "rhtui.commands.cli"]
    env = {k: v for k, v in os.environ.items() if not k.startswith("RHTUI_") and k != "OLLAMA_HOST"}
    env.update(NO_COLOR="1", XDG_CONFIG_HOME=str(tmp_path / "config"), RHTUI_SESSION__GIVE_UP_AFTER_S="3")
    port = free_port()
    server = subprocess.Popen([*rhtui, "sim", "--port", str(port), "--speed", "50"], stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True, env=env)
    headless = None
    try:
        assert f"127.0.0.1:{port}" in server.stdout.readline()
        headless = subprocess.Popen(
            [*rhtui, "--headless", "--duration", "10", "--host", f"127.0.0.1:{port}", "--data-dir", str(tmp_path)],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
        out = ""
        deadline = time.monotonic() + 60
        while "[rh-alpha] done" not in out and time.monotonic() < deadline and headless.poll() is None:
            out += headless.stdout.readline()
        assert "[rh-alpha] done" in out, out
        server.kill()  # Ollama is gone, for good
        server.wait(10)
        killed = time.monotonic()
        rest, _ = headless.communicate(timeout=60)
        took = time.monotonic() - killed
    finally:
        for p in (server, headless):
            if p is not None and p.poll() is None:
                p.kill()
                p.wait(10)
    out += rest
    assert headless.returncode == 1, out
    assert took < 30, took  # 3 s of give-up, then the shutdown; never the 10 minutes of the session
    assert f"Ollama at http://127.0.0.1:{port} was unreachable since" in out
    assert "session.give_up_after_s" in out and "ollama serve" in out
    assert "Traceback" not in out
    with sqlite3.connect(tmp_path / "rhtui.db") as c:
        ended, reason = c.execute("SELECT ended_at, end_reason FROM sessions").fetchone()
    assert ended is not None and reason.startswith(f"Ollama at http://127.0.0.1:{port} was unreachable since")
