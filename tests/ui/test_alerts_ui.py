"""An alert in the dashboard: a notification (warning or error) when the engine raises it, and only
for alerts raised after the dashboard started (`rhtui watch` replays a session's past: those stay
in the log, where every alert is)."""

from __future__ import annotations

import time

from textual.widgets._toast import Toast

from rhtui.engine import events as ev
from tests.helpers import until_async
from tests.ui.fakes import T0, FakeOrchestrator


def alert(kind: str, severity: ev.AlertSeverity, title: str, message: str, *, raised_at: float,
          student: str | None = None) -> ev.Alert:
    return ev.Alert(ts=T0 + 50, kind=kind, severity=severity, title=title, message=message, student=student,
                    session="rh_main", host="http://127.0.0.1:11434", raised_at=raised_at)


async def test_an_alert_from_the_engine_is_a_notification_and_a_log_line(make_ui):
    orch = FakeOrchestrator()
    app = make_ui(orchestrator=orch)
    async with app.run_test(size=(140, 40), notifications=True) as pilot:  # toasts drawn, as in a terminal
        orch.bus.emit(alert("emergency", "error", "Emergency stop",
                            "Emergency stop in session rh_main: VRAM above 95 % of the card; resume with r",
                            raised_at=time.time()))
        orch.bus.emit(alert("degraded", "warning", "rh-gamma degraded", "rh-gamma wrote at 60.0 tok/s, 40% below "
                            "its learned 100.0 tok/s", raised_at=time.time(), student="rh-gamma"))
        await until_async(lambda: len(app._notifications) == 2, wait=pilot.pause, timeout=20,
                          what="two notifications")
        shown = [(n.title, n.severity, n.message) for n in app._notifications]
        assert shown[0] == ("Emergency stop", "error",
                            "Emergency stop in session rh_main: VRAM above 95 % of the card; resume with r")
        assert shown[1][:2] == ("rh-gamma degraded", "warning")
        await until_async(lambda: len(app.screen.query(Toast)) == 2, wait=pilot.pause, timeout=20,
                          what="two toasts on screen")
        lines = [line.text for line in app.model.log]
        assert any(t.startswith("ALERT Emergency stop: Emergency stop in session rh_main") for t in lines)


async def test_alerts_raised_before_the_dashboard_started_are_logged_not_notified(make_ui):
    orch = FakeOrchestrator()
    app = make_ui(orchestrator=orch)
    async with app.run_test(size=(140, 40)) as pilot:
        old = alert("quarantined", "error", "rh-beta quarantined", "rh-beta is quarantined (replayed)",
                    raised_at=app.alerts_since - 3600, student="rh-beta")
        new = alert("vram", "warning", "VRAM near the limit", "VRAM at 10,600 of 12,282 MB (86.3 %)",
                    raised_at=time.time())
        orch.bus.emit(old)
        orch.bus.emit(new)
        await until_async(lambda: any("VRAM at 10,600" in line.text for line in app.model.log), wait=pilot.pause,
                          timeout=20, what="the new alert's log line")
        await pilot.pause()
        assert [n.title for n in app._notifications] == ["VRAM near the limit"]
        assert any("rh-beta is quarantined (replayed)" in line.text for line in app.model.log)
