"""An outside `kill -INT` of the dashboard (issue 12, point 4): handled as q is, without asking —
the running proposal recorded aborted, the session closed, exit 0."""

from __future__ import annotations

import os
import signal
import sqlite3

import pytest

from tests.e2e.test_demo_pty import demo_after_one_run
from tests.helpers import until

pytestmark = pytest.mark.e2e


def test_sigint_from_outside_stops_the_dashboards_session_as_q_does(tmp_path):
    term, db = demo_after_one_run(tmp_path)
    try:
        term.pump(0.3)
        os.kill(term.proc.pid, signal.SIGINT)  # the process only, as `kill -INT PID` from another shell
        # the terminal is read while it stops (a terminal nobody reads blocks its program)
        until(lambda: term.proc.poll() is not None, timeout=60, interval=0.1, wait=term.pump,
              what=lambda: "exit after SIGINT: " + term.tail(3000))
        assert term.proc.returncode == 0, term.tail(3000)
    finally:
        term.close()
    with sqlite3.connect(db) as c:
        statuses = [s for (s,) in c.execute("SELECT status FROM student_runs ORDER BY id")]
        ended, reason = c.execute("SELECT ended_at, end_reason FROM sessions").fetchone()
    assert ended is not None and reason == "stopped by user"
    assert statuses[0] == "ok" and set(statuses) <= {"ok", "aborted", "skipped"}
