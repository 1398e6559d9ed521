"""`rhtui --demo` in a real pseudo-terminal, driven like a person would: wait for a student
to finish, press q (and y if it asks), and check the process exits 0 with the run saved."""

from __future__ import annotations

import fcntl
import os
import pty
import select
import signal
import sqlite3
import struct
import subprocess
import sys
import termios
import time
from pathlib import Path

import pytest

from tests.helpers import until

pytestmark = pytest.mark.e2e


class Pty:
    def __init__(self, argv: list[str], env: dict[str, str], cols: int = 120, rows: int = 40) -> None:
        self.master, slave = pty.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
        self.proc = subprocess.Popen(
            argv, stdin=slave, stdout=slave, stderr=slave, env=env, start_new_session=True, close_fds=True
        )
        os.close(slave)
        self.output = bytearray()

    def pump(self, seconds: float) -> None:
        """Read what the program drew for `seconds` (a terminal that is not read blocks the program)."""
        end = time.monotonic() + seconds
        while (left := end - time.monotonic()) > 0:
            ready, _, _ = select.select([self.master], [], [], min(left, 0.1))
            if ready:
                try:
                    chunk = os.read(self.master, 65536)
                except OSError:
                    return
                if not chunk:
                    return
                self.output += chunk
                del self.output[:-200_000]

    def send(self, keys: str) -> None:
        os.write(self.master, keys.encode())

    def close(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(5)
        os.close(self.master)


def ok_runs(db: Path) -> int:
    if not db.exists():
        return 0
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=1) as c:
            return c.execute("SELECT COUNT(*) FROM student_runs WHERE status = 'ok'").fetchone()[0]
    except sqlite3.Error:
        return 0


def demo_after_one_run(tmp_path: Path) -> tuple[Pty, Path]:
    """`rhtui --demo` in a pty, once a student has finished; returns (terminal, database)."""
    env = {**os.environ, "TERM": "xterm-256color", "COLUMNS": "120", "LINES": "40"}
    env.pop("NO_COLOR", None)
    argv = [sys.executable, "-m", "rhtui.commands.cli", "--demo", "--speed", "25", "--data-dir", str(tmp_path)]
    db = tmp_path / "rhtui-demo.db"
    term = Pty(argv, env)

    def one_run_done() -> bool:
        if ok_runs(db) >= 1:
            return True
        assert term.proc.poll() is None, "the demo exited: " + term.output[-3000:].decode(errors="replace")
        return False

    try:
        until(one_run_done, timeout=90, interval=0.5, wait=term.pump,
              what=lambda: "no student finished: " + term.output[-3000:].decode(errors="replace"))
    except AssertionError:
        term.close()
        raise
    return term, db


def test_demo_in_a_pty_runs_a_student_and_quits_cleanly(tmp_path):
    term, db = demo_after_one_run(tmp_path)
    try:
        assert b"rh-alpha" in term.output  # the queue was drawn
        term.send("q")
        term.pump(1.5)
        if term.proc.poll() is None:
            term.send("y")  # a student was running: confirm
        until(lambda: term.proc.poll() is not None, timeout=30, interval=0.3, wait=term.pump,
              what=lambda: "exit after q: " + term.output[-3000:].decode(errors="replace"))
        assert term.proc.poll() == 0, term.output[-3000:].decode(errors="replace")
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
