"""Alerts end to end on the simulator: another process's VRAM takes the card within 5 % of the
limit while a student runs, and the engine raises the alert (an event, stored for `rhtui watch`,
a headless log line) and runs `alerts.command` with it as JSON on stdin; so does an emergency
stop and the session's end."""

from __future__ import annotations

import asyncio
import json
import shlex
import sys
from io import StringIO

import pytest
from rich.console import Console

from rhtui.commands.headless import LinePrinter
from rhtui.engine import events as ev
from tests.integration.conftest import spike_when_running

pytestmark = pytest.mark.integration


def command_writing_to(path) -> str:
    """Appends each alert's JSON (stdin) to `path`, one a line, in one write (two may run at once)."""
    code = "import sys; open(sys.argv[1], 'a').write(sys.stdin.read() + '\\n')"
    return shlex.join([sys.executable, "-c", code, str(path)])


def alerts_in(path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()] if path.exists() else []


async def test_vram_within_5_percent_of_the_limit_raises_an_alert_and_runs_the_command(sim, store, make_engine,
                                                                                      tmp_path):
    out = tmp_path / "alerts.jsonl"
    orch, rec = make_engine(alerts={"command": command_writing_to(out), "command_timeout_s": 30,
                                    "min_interval_s": 3600})
    log = StringIO()
    orch.bus.subscribe(LinePrinter(Console(file=log, width=500, color_system=None)))
    total = sim.world.scenario.gpu.total_mb

    def spike(event):
        # another process takes the card to 88 % while rh-alpha runs: over the 85 % warning line, under 90 %
        if isinstance(event, ev.StudentPhaseChanged) and event.phase == "running" and event.student == "rh-alpha":
            sim.world.add_external(0.88 * total - sim.world.vram_used_mb(), None)

    orch.bus.subscribe(spike)
    await asyncio.wait_for(orch.run(), 60)

    alerts = rec.of(ev.Alert)
    assert [a.kind for a in alerts] == ["vram", "session_end"], [(a.kind, a.message) for a in alerts]
    vram = alerts[0]
    assert vram.severity == "warning" and 85.0 <= vram.value <= 90.0 and vram.threshold == 85.0
    assert "within 5 % of the 90 % limit" in vram.message and vram.session == "it" and vram.host == sim.url
    assert not rec.of(ev.EmergencyStop)
    # the command ran for each, with the alert as JSON on stdin (the engine waited for it at shutdown)
    sent = alerts_in(out)
    assert [a["kind"] for a in sent] == ["vram", "session_end"]
    assert sent[0]["message"] == vram.message and sent[0]["value"] == vram.value
    # a headless log line
    assert "ALERT VRAM near the limit: VRAM at" in log.getvalue()
    # stored: a watcher rebuilds the same event
    stored = [r for r in await store.events_since(orch.session_id, 0) if r.kind == "Alert"]
    assert [ev.event_from_data(r.kind, r.data) for r in stored] == alerts


async def test_an_emergency_stop_raises_an_error_alert(sim, store, make_engine, tmp_path):
    out = tmp_path / "alerts.jsonl"
    # the other process leaves after 10 s; the guard resumes after 30 s under the limit
    orch, rec = make_engine(budget={"cooldown_s": 30},
                            alerts={"command": command_writing_to(out), "command_timeout_s": 30})
    orch.bus.subscribe(spike_when_running(sim, "rh-alpha", 0.97, 10))  # 10 simulated seconds
    await asyncio.wait_for(orch.run(), 60)
    emergency = [a for a in rec.of(ev.Alert) if a.kind == "emergency"]
    assert len(emergency) == 1 and emergency[0].severity == "error"
    assert "VRAM above 95 % of the card" in emergency[0].message
    assert "emergency" in [a["kind"] for a in alerts_in(out)]
