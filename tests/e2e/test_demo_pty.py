"""`rhtui --demo` in a real pseudo-terminal, driven like a person would: wait for a student
to finish, press q (and y if it asks), and check the process exits 0 with the run saved."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from tests.e2e.terminal import Terminal, ok_runs
from tests.helpers import until

pytestmark = pytest.mark.e2e


def demo_after_one_run(tmp_path: Path) -> tuple[Terminal, Path]:
    """`rhtui --demo` in a pty, once a student has finished; returns (terminal, database)."""
    argv = [sys.executable, "-m", "rhtui.commands.cli", "--demo", "--speed", "25", "--data-dir", str(tmp_path)]
    db = tmp_path / "rhtui-demo.db"
    term = Terminal(argv, 120, 40)
    try:
        term.wait_until(lambda: ok_runs(db) >= 1, 90, "student finished")  # fails if the demo exits first
    except BaseException:
        term.close()
        raise
    return term, db


def test_demo_in_a_pty_runs_a_student_and_quits_cleanly(tmp_path):
    term, db = demo_after_one_run(tmp_path)
    try:
        assert b"rh-alpha" in term.raw  # the queue was drawn
        term.send("q")
        term.pump(1.5)
        if term.proc.poll() is None:
            term.send("y")  # a student was running: confirm
        until(lambda: term.proc.poll() is not None, timeout=30, interval=0.3, wait=term.pump,
              what=lambda: "exit after q: " + term.tail(3000))
        assert term.proc.poll() == 0, term.tail(3000)
    finally:
        term.close()
    with sqlite3.connect(db) as c:
        statuses = [s for (s,) in c.execute("SELECT status FROM student_runs ORDER BY id")]
        ended = c.execute("SELECT ended_at FROM sessions").fetchone()[0]
    assert statuses[0] == "ok"
    assert set(statuses) <= {"ok", "aborted", "skipped"}
    assert ended is not None  # the session was closed: the graceful path ran


def test_a_closed_terminal_stops_the_session_gracefully_and_the_process_exits(tmp_path):
    """An SSH session that drops: the terminal hangs up, the kernel sends SIGHUP then SIGCONT.
    The running proposal is recorded aborted, the session closed, and the process exits."""
    term, db = demo_after_one_run(tmp_path)
    try:
        term.pump(0.5)
        os.close(term.master)  # the terminal is gone: reads and writes on it fail from now on
        term.master = os.open(os.devnull, os.O_RDONLY)  # (so close() has something to close)
        os.killpg(term.proc.pid, signal.SIGHUP)
        os.killpg(term.proc.pid, signal.SIGCONT)
        try:
            code = term.proc.wait(30)
        except subprocess.TimeoutExpired:
            pytest.fail("rhtui did not exit after its terminal hung up")
        assert code == 0
    finally:
        term.close()
    with sqlite3.connect(db) as c:
        statuses = [s for (s,) in c.execute("SELECT status FROM student_runs ORDER BY id")]
        ended, reason = c.execute("SELECT ended_at, end_reason FROM sessions").fetchone()
    assert ended is not None and "terminal" in reason
    assert set(statuses) <= {"ok", "aborted", "skipped"}
