"""A program in a real pseudo-terminal, read like a person reads the screen: the drawn text
with the escape sequences taken out, polled until what a test waits for shows up.

Nothing here sleeps a fixed time to "let it settle": every wait polls a condition with a
generous deadline, so the tests hold on a loaded machine.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import pty
import re
import select
import signal
import sqlite3
import struct
import subprocess
import sys
import termios
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.helpers import until

_CURSOR_MOVE = re.compile(rb"\x1b\[[0-9;]*[Hf]")
_ESCAPES = re.compile(
    rb"\x1b\[[0-?]*[ -/]*[@-~]"  # CSI: colours, cursor, modes
    rb"|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)"  # OSC: title, clipboard
    rb"|\x1bP.*?\x1b\\"  # DCS
    rb"|\x1b[()][0-9A-Za-z]|\x1b[=>78DEHMNOc]"
)
KEEP_BYTES = 2_000_000


def rhtui_argv(*args: str) -> list[str]:
    """The installed `rhtui` entry point (as a person runs it), else the module."""
    entry = Path(sys.executable).with_name("rhtui")
    if entry.exists():
        return [str(entry), *args]
    return [sys.executable, "-m", "rhtui.commands.cli", *args]


def screen_text(raw: bytes) -> str:
    """What was drawn, as text: each cursor move starts a new line, other escapes go."""
    return _ESCAPES.sub(b"", _CURSOR_MOVE.sub(b"\n", raw)).decode("utf-8", errors="replace")


class Terminal:
    """`argv` in a pseudo-terminal of `cols` x `rows`."""

    def __init__(self, argv: list[str], cols: int, rows: int, env: dict[str, str] | None = None) -> None:
        env = {**(env if env is not None else os.environ), "TERM": "xterm-256color",
               "COLUMNS": str(cols), "LINES": str(rows)}
        env.pop("NO_COLOR", None)
        self.master, slave = pty.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
        self.proc = subprocess.Popen(
            argv, stdin=slave, stdout=slave, stderr=slave, env=env, start_new_session=True, close_fds=True
        )
        os.close(slave)
        self.raw = bytearray()
        self.total = 0  # bytes read since the start; `raw` keeps the last KEEP_BYTES of them

    # -- reading ---------------------------------------------------------------------------

    def pump(self, seconds: float) -> None:
        """Read what the program draws for `seconds` (a terminal nobody reads blocks the program)."""
        end = time.monotonic() + seconds
        while (left := end - time.monotonic()) > 0:
            ready, _, _ = select.select([self.master], [], [], min(left, 0.1))
            if not ready:
                continue
            try:
                chunk = os.read(self.master, 65536)
            except OSError:  # the program exited: its side of the terminal is closed
                return
            if not chunk:
                return
            self.raw += chunk
            self.total += len(chunk)
            del self.raw[:-KEEP_BYTES]

    def mark(self) -> int:
        """A position in the output: `text(since=mark)` is what was drawn after it."""
        return self.total

    def text(self, since: int = 0) -> str:
        start = max(0, since - (self.total - len(self.raw)))
        return screen_text(bytes(self.raw[start:]))

    def tail(self, n: int = 4000) -> str:
        return self.text()[-n:]

    # -- waiting ---------------------------------------------------------------------------

    def exited(self) -> bool:
        return self.proc.poll() is not None

    def wait_until(self, cond: Callable[[], bool], timeout: float, what: str, *, allow_exit: bool = False) -> None:
        """Pump until `cond()` holds; fail (with the screen) on the deadline or an early exit."""

        def holds() -> bool:
            if cond():
                return True
            if self.exited() and not allow_exit:
                self.pump(0.2)
                if cond():
                    return True
                pytest.fail(f"the program exited ({self.proc.returncode}) while waiting for {what}:\n{self.tail()}")
            return False

        until(holds, timeout=timeout, interval=0.3, wait=self.pump, what=lambda: f"no {what}:\n{self.tail()}")

    def wait_exit(self, timeout: float) -> int:
        self.wait_until(self.exited, timeout, "exit", allow_exit=True)
        self.pump(0.2)
        return self.proc.returncode

    # -- keys ------------------------------------------------------------------------------

    def send(self, keys: str) -> None:
        with contextlib.suppress(OSError):  # already gone
            os.write(self.master, keys.encode())

    def close(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)
        os.close(self.master)


# -- the database, read as another process would ---------------------------------------------


def query(db: Path, sql: str, args: tuple = ()) -> list[tuple]:
    """Rows from the database (read-only; [] while it does not exist or is busy)."""
    if not db.exists():
        return []
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=2) as c:
            return c.execute(sql, args).fetchall()
    except sqlite3.Error:
        return []


def ok_runs(db: Path) -> int:
    rows = query(db, "SELECT COUNT(*) FROM student_runs WHERE status = 'ok'")
    return rows[0][0] if rows else 0


def last_ok_student(db: Path) -> str | None:
    rows = query(db, "SELECT student FROM student_runs WHERE status = 'ok' ORDER BY id DESC LIMIT 1")
    return rows[0][0] if rows else None


def statuses(db: Path) -> list[str]:
    return [s for (s,) in query(db, "SELECT status FROM student_runs ORDER BY id")]


def sessions(db: Path) -> list[tuple]:
    """(id, name, ended_at, end_reason) of each session."""
    return query(db, "SELECT id, name, ended_at, end_reason FROM sessions ORDER BY id")
