"""The alert rules (pure: events and a manual time in, Alert events out) and the runner that emits
them and runs `alerts.command` (a real subprocess: JSON on stdin, a timeout, failures said once)."""

from __future__ import annotations

import asyncio
import json
import shlex
import sys
import time
from dataclasses import replace

import pytest

from rhtui.engine import events as ev
from rhtui.engine.alerts import AlertRules, AlertRunner, alert_json
from rhtui.engine.budget import BudgetGuard
from rhtui.engine.clock import ManualClock
from rhtui.engine.config import AlertsPolicy, BudgetPolicy, ConfigError, load_settings
from rhtui.engine.eventlog import format_event
from rhtui.engine.hardware import HardwareSnapshot
from rhtui.engine.records import RunRecord, StudentStats
from tests.helpers import until_async

T = 1_700_000_000.0
TOTAL = 10_000.0
HOST = "http://127.0.0.1:11434"


def rules(**policy) -> AlertRules:
    return AlertRules(AlertsPolicy(**policy), BudgetGuard(BudgetPolicy()), host=HOST, session="rh_main",
                      wall=lambda: 42.0)


def sample(t: float, used: float | None, *, temp: float | None = 60.0) -> ev.HardwareSampled:
    snap = HardwareSnapshot(ts=t, source="sim", gpu_name="RTX 4070 SUPER", vram_total_mb=TOTAL, vram_used_mb=used,
                            temp_c=temp)
    return ev.HardwareSampled(ts=t, snapshot=snap)


def kinds(alerts: list[ev.Alert]) -> list[tuple[str, str | None]]:
    return [(a.kind, a.student) for a in alerts]


def run(student: str, tok_per_s: float | None, status="ok") -> RunRecord:
    return RunRecord(session_id=1, cycle=2, student=student, model=student, status=status, started_at=T,
                     ended_at=T + 30, tokens=3000, eval_s=30.0, tok_per_s=tok_per_s, id=9)


def profile(student: str, runs: int, tps: float | None) -> ev.ProfilesUpdated:
    stats = StudentStats(student=student, runs=runs, failures=0, vram_mean_mb=4000.0, vram_p95_mb=4100.0,
                         seconds_mean=30.0, tokens_mean=3000.0, tok_per_s_mean=tps)
    return ev.ProfilesUpdated(ts=T, profiles=(stats,))


# -- each rule fires once, and is rate-limited ------------------------------------------------


def test_vram_within_5_percent_of_the_limit_fires_once_on_the_budget_guards_warning_line():
    r = rules()
    assert r.observe(sample(T, 8_499), T) == []  # 84.99 %: under max_fraction - 0.05
    [alert] = r.observe(sample(T + 1, 8_500), T + 1)  # exactly 85 %: the guard's warning zone begins
    assert (alert.kind, alert.severity, alert.title) == ("vram", "warning", "VRAM near the limit")
    assert alert.value == 85.0 and alert.threshold == 85.0
    assert "8,500 of 10,000 MB (85.0 %) on RTX 4070 SUPER" in alert.message
    assert "within 5 % of the 90 % limit" in alert.message and "nvidia-smi" in alert.message
    assert alert.session == "rh_main" and alert.host == HOST and alert.raised_at == 42.0
    # while it holds (rising past the limit too): nothing more
    assert r.observe(sample(T + 2, 8_900), T + 2) == []
    assert r.observe(sample(T + 3, 9_200), T + 3) == []
    # it ends, and begins again within min_interval_s: held back...
    assert r.observe(sample(T + 4, 7_000), T + 4) == []
    assert r.observe(sample(T + 10, 8_600), T + 10) == []
    assert r.held_back == 1
    assert r.observe(sample(T + 300, 8_600), T + 300) == []  # 299 s after the first
    # ...and raised once the interval is over, if it still holds
    assert kinds(r.observe(sample(T + 301, 8_600), T + 301)) == [("vram", None)]
    assert r.observe(sample(T + 302, 8_600), T + 302) == []


def test_vram_above_the_limit_is_an_error_and_unknown_vram_raises_nothing():
    r = rules()
    assert r.observe(sample(T, None), T) == []
    [alert] = r.observe(sample(T + 1, 9_300), T + 1)
    assert (alert.severity, alert.title) == ("error", "VRAM above the limit")
    assert "above the 90 % limit" in alert.message


def test_an_emergency_stop_fires_once_and_again_only_after_min_interval():
    r = rules()
    stop = ev.EmergencyStop(ts=T, used_mb=9_700.0, total_mb=TOTAL, reason="VRAM above 95 % of the card")
    [alert] = r.observe(stop, T)
    assert (alert.kind, alert.severity) == ("emergency", "error")
    assert "VRAM above 95 % of the card (VRAM 9,700 of 10,000 MB, 97.0 %)" in alert.message
    assert "budget.cooldown_s" in alert.message and f"on Ollama at {HOST}" in alert.message
    assert r.observe(stop, T + 1) == []  # the same emergency
    r.observe(ev.EmergencyCleared(ts=T + 40, reason="back under"), T + 40)
    assert r.observe(stop, T + 60) == []  # a new one, 60 s after the first: held back
    r.observe(ev.EmergencyCleared(ts=T + 70, reason="back under"), T + 70)
    manual = ev.EmergencyStop(ts=T, used_mb=None, total_mb=None, reason="emergency stop by user", manual=True)
    [again] = r.observe(manual, T + 300)
    assert "resume with r" in again.message


def test_a_quarantined_student_fires_once_per_student():
    r = rules()

    def health(student, h, failures):
        return ev.StudentHealthChanged(ts=T, cycle=3, student=student, health=h, failures=failures,
                                       reason=f"{failures} failures in a row (last: HTTP 500)")

    assert r.observe(health("rh-beta", "degraded", 1), T) == []
    [alert] = r.observe(health("rh-beta", "quarantined", 3), T + 1)
    assert (alert.kind, alert.student, alert.severity, alert.title) == (
        "quarantined", "rh-beta", "error", "rh-beta quarantined")
    assert "3 failures in a row (last: HTTP 500)" in alert.message and "session rh_main" in alert.message
    assert r.observe(health("rh-beta", "quarantined", 4), T + 2) == []  # its probe run failed too
    assert kinds(r.observe(health("rh-zeta", "quarantined", 3), T + 3)) == [("quarantined", "rh-zeta")]
    r.observe(health("rh-beta", "healthy", 0), T + 4)
    assert r.observe(health("rh-beta", "quarantined", 3), T + 100) == []  # held back: 99 s after
    assert kinds(r.observe(health("rh-beta", "quarantined", 4), T + 302)) == [("quarantined", "rh-beta")]


def test_degraded_when_tok_per_s_is_more_than_30_percent_below_the_learned_profile():
    r = rules()
    finished = ev.StudentFinished  # compared against the profile learned before the run
    r.observe(profile("rh-gamma", 2, 100.0), T)
    assert r.observe(finished(ts=T, cycle=2, student="rh-gamma", run=run("rh-gamma", 50.0)), T) == []  # 2 runs
    r.observe(profile("rh-gamma", 5, 100.0), T)
    assert r.observe(finished(ts=T, cycle=2, student="rh-gamma", run=run("rh-gamma", 70.5)), T) == []  # 29.5 %
    assert r.observe(finished(ts=T, cycle=2, student="rh-gamma", run=run("rh-gamma", 10.0, "error")), T) == []
    [alert] = r.observe(finished(ts=T + 1, cycle=2, student="rh-gamma", run=run("rh-gamma", 69.0)), T + 1)
    assert (alert.kind, alert.student, alert.severity) == ("degraded", "rh-gamma", "warning")
    assert alert.value == 69.0 and alert.threshold == 70.0
    assert "69.0 tok/s" in alert.message and "31% below its learned 100.0 tok/s (5 runs" in alert.message
    assert r.observe(finished(ts=T + 2, cycle=3, student="rh-gamma", run=run("rh-gamma", 60.0)), T + 2) == []
    # back to speed, slow again within the interval: held back; a run's own figure from tokens/eval_s
    r.observe(finished(ts=T + 3, cycle=4, student="rh-gamma", run=run("rh-gamma", 99.0)), T + 3)
    assert r.observe(finished(ts=T + 4, cycle=5, student="rh-gamma", run=run("rh-gamma", None)), T + 4) == []
    slow = replace(run("rh-gamma", None), eval_s=60.0)  # no figure from Ollama: 3000 tokens in 60 s
    assert kinds(r.observe(finished(ts=T, cycle=6, student="rh-gamma", run=slow), T + 400)) == [
        ("degraded", "rh-gamma")]


def test_the_backend_down_for_60_s_fires_once_even_with_no_event_meanwhile():
    r = rules()
    down = ev.BackendDown(ts=T, host=HOST, error="connection refused")
    assert r.observe(down, T) == []
    assert r.next_due(T) == 60.0
    assert r.due(T + 59.9) == []
    [alert] = r.due(T + 60)
    assert (alert.kind, alert.severity, alert.title) == ("backend_down", "error", "Ollama unreachable")
    assert f"Ollama at {HOST} has been unreachable for 60 s" in alert.message
    assert "connection refused" in alert.message and "ollama serve" in alert.message
    assert r.due(T + 90) == [] and r.next_due(T + 90) is None
    assert r.observe(down, T + 95) == []  # the same outage, said again
    r.observe(ev.BackendUp(ts=T + 100, host=HOST, version="0.12.6"), T + 100)
    assert r.due(T + 200) == [] and r.next_due(T + 200) is None
    r.observe(down, T + 110)
    assert r.due(T + 170) == []  # a second outage, 60 s long, 110 s after the first alert: held back
    assert r.next_due(T + 170) == pytest.approx(190.0)  # until min_interval_s after the first alert
    assert kinds(r.due(T + 360)) == [("backend_down", None)]


def test_gpu_temperature_over_max_temp_c_fires_once():
    r = rules(max_temp_c=83)
    assert r.observe(sample(T, 1000, temp=83.0), T) == []  # at the line: not over it
    [alert] = r.observe(sample(T + 1, 1000, temp=84.0), T + 1)
    assert (alert.kind, alert.severity, alert.value, alert.threshold) == ("temperature", "warning", 84.0, 83.0)
    assert "RTX 4070 SUPER is at 84 °C, above alerts.max_temp_c (83 °C)" in alert.message
    assert r.observe(sample(T + 2, 1000, temp=90.0), T + 2) == []
    assert rules(max_temp_c=None).observe(sample(T, 1000, temp=99.0), T) == []


def test_the_session_ending_fires_once_info_when_planned_warning_otherwise():
    end = ev.SessionFinished(ts=T, session_id=4, cycles=12, runs=70, tokens=210_000, reason="session time is up")
    r = rules()
    [alert] = r.observe(end, T)
    assert (alert.kind, alert.severity, alert.title) == ("session_end", "info", "Session ended")
    assert "Session rh_main (#4)" in alert.message and "12 cycles, 70 proposals" in alert.message
    assert "rhtui report --session rh_main" in alert.message
    assert r.observe(end, T + 1) == []
    lost = ev.SessionFinished(ts=T, session_id=4, cycles=2, runs=3, tokens=900,
                              reason=f"Ollama at {HOST} was unreachable since 12:00:00")
    assert rules().observe(lost, T)[0].severity == "warning"
    assert rules().observe(ev.SessionFinished(ts=T, session_id=1, cycles=3, runs=1, tokens=1,
                                              reason="3 cycles done"), T)[0].severity == "info"


def test_min_interval_0_raises_each_time_a_condition_begins():
    r = rules(min_interval_s=0)
    got = []
    for i, used in enumerate([9_000, 1_000, 9_000, 1_000, 9_000]):
        got += r.observe(sample(T + i, used), T + i)
    assert kinds(got) == [("vram", None)] * 3


def test_an_alert_is_stored_rebuilt_and_logged_like_every_event():
    [alert] = rules().observe(sample(T, 8_800), T)
    assert ev.event_from_data("Alert", ev.event_data(alert)) == alert
    level, text = format_event(alert)
    assert level == "warning" and text.startswith("ALERT VRAM near the limit: VRAM at 8,800 of 10,000 MB")
    data = json.loads(alert_json(alert))
    assert data["kind"] == "vram" and data["message"] == alert.message and data["time"]


def test_alerts_config_reads_the_environment_and_refuses_a_broken_command(monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    monkeypatch.setenv("RHTUI_ALERTS__COMMAND", "notify-send rhtui")
    monkeypatch.setenv("RHTUI_ALERTS__MAX_TEMP_C", "80")
    s = load_settings()
    assert s.alerts.command == "notify-send rhtui" and s.alerts.max_temp_c == 80
    assert s.alerts.min_interval_s == 300 and s.alerts.backend_down_s == 60 and s.alerts.slow_drop == 0.30
    monkeypatch.setenv("RHTUI_ALERTS__COMMAND", "")
    assert load_settings().alerts.command is None
    monkeypatch.setenv("RHTUI_ALERTS__COMMAND", "sh -c 'oops")
    with pytest.raises(ConfigError) as err:
        load_settings()
    assert "alerts.command: is not a command line" in str(err.value)
    assert "environment variable RHTUI_ALERTS__COMMAND" in str(err.value)


# -- the runner: emits, and runs the command without holding the engine up --------------------


class Emitted(list):
    def __call__(self, event: ev.Event) -> None:
        self.append(event)

    def of(self, kind):
        return [e for e in self if isinstance(e, kind)]


def runner(command: str | None, **policy) -> tuple[AlertRunner, Emitted, ManualClock]:
    clock = ManualClock(start=T)
    out = Emitted()
    r = AlertRunner(AlertsPolicy(command=command, **policy), BudgetGuard(BudgetPolicy()), clock, out, host=HOST,
                    session="rh_main")
    return r, out, clock


STOP = ev.EmergencyStop(ts=T, used_mb=9_700.0, total_mb=TOTAL, reason="VRAM above 95 % of the card")


async def test_the_command_gets_the_alert_as_json_on_stdin(tmp_path):
    got = tmp_path / "alert.json"
    code = ("import os, sys; open(sys.argv[1], 'w').write(sys.stdin.read() + '\\n' + "
            "os.environ['RHTUI_ALERT_TITLE'] + '|' + os.environ['RHTUI_ALERT_SEVERITY'])")
    r, out, _clock = runner(shlex.join([sys.executable, "-c", code, str(got)]))
    r.feed(STOP)
    [alert] = out.of(ev.Alert)
    assert r.tasks  # started, not awaited
    await r.aclose()
    payload, env = got.read_text().rsplit("\n", 1)
    data = json.loads(payload)
    assert data["kind"] == "emergency" and data["severity"] == "error" and data["message"] == alert.message
    assert data["session"] == "rh_main" and data["host"] == HOST and "T" in data["time"]
    assert env == "Emergency stop|error"
    assert r.failures == 0 and not out.of(ev.LogMessage)


async def test_a_command_that_hangs_never_holds_the_engine_and_is_killed_at_its_timeout():
    r, out, clock = runner("sh -c 'sleep 60'", command_timeout_s=0.5, min_interval_s=0)
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    r.feed(STOP)
    assert loop.time() - t0 < 0.5  # feed returns at once
    assert out.of(ev.Alert) and r.tasks
    await asyncio.sleep(0.05)  # the loop runs on while the command hangs
    await until_async(lambda: not r.tasks, timeout=20, what="the hung command killed at its timeout")
    [said] = out.of(ev.LogMessage)
    assert "alerts.command (sh -c 'sleep 60') did not finish within 0.5 s" in said.text
    r.feed(ev.EmergencyCleared(ts=T, reason="ok"))
    clock.advance(1)
    r.feed(STOP)  # fails again: counted, not said again
    await until_async(lambda: not r.tasks, timeout=20)
    assert r.failures == 2 and len(out.of(ev.LogMessage)) == 1
    await r.aclose()
    assert "failed 2 times" in out.of(ev.LogMessage)[-1].text


async def test_shutdown_kills_a_command_still_running_after_its_grace():
    r, out, _clock = runner("sh -c 'sleep 60'", command_timeout_s=60)
    r.feed(STOP)
    t0 = time.monotonic()
    await r.aclose(grace_s=0.2)
    assert time.monotonic() - t0 < 10 and not r.tasks
    r.feed(ev.SessionFinished(ts=T, session_id=1, cycles=1, runs=1, tokens=1, reason="finished"))
    assert len(out.of(ev.Alert)) == 1  # closed: nothing more


async def test_a_command_that_cannot_start_is_said_once():
    r, out, _clock = runner("/nonexistent/rhtui-notify --now")
    r.feed(STOP)
    await until_async(lambda: not r.tasks, timeout=20)
    [said] = out.of(ev.LogMessage)
    assert "could not be started" in said.text and "/nonexistent/rhtui-notify" in said.text


async def test_the_runner_wakes_up_for_the_backend_down_alert_with_no_event_meanwhile():
    from rhtui.engine.clock import ScaledClock

    clock = ScaledClock(600.0)  # 60 s of the engine clock in 0.1 s
    out = Emitted()
    r = AlertRunner(AlertsPolicy(), BudgetGuard(BudgetPolicy()), clock, out, host=HOST)
    r.feed(ev.BackendDown(ts=clock.now(), host=HOST, error="connection refused"))
    assert not out.of(ev.Alert)
    [alert] = await until_async(lambda: out.of(ev.Alert), timeout=20)
    assert alert.kind == "backend_down"
    await r.aclose()


def test_the_headless_log_shows_the_alert_line():
    from io import StringIO

    from rich.console import Console

    from rhtui.commands.headless import LinePrinter

    buf = StringIO()
    printer = LinePrinter(Console(file=buf, width=400, color_system=None))
    [alert] = rules().observe(ev.EmergencyStop(ts=T, used_mb=9_700.0, total_mb=TOTAL, reason="VRAM above 95 %"), T)
    printer(alert)
    line = buf.getvalue()
    assert "ERROR" in line and "ALERT Emergency stop: Emergency stop in session rh_main" in line
