"""One engine per database and per card; a dead engine's session reconciled (issue 12, points 4 and 5).

Real processes: `rhtui --demo --headless` (its own database and simulator), and the real
path, `rhtui --headless --host` against `rhtui sim` in another process.
"""

from __future__ import annotations

import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.helpers import until
from tests.processes import free_port, interrupt

pytestmark = pytest.mark.integration

RHTUI = [sys.executable, "-m", "rhtui.commands.cli"]


def env() -> dict[str, str]:
    return {**os.environ, "NO_COLOR": "1"}


def start(args: list[str]) -> subprocess.Popen:
    return subprocess.Popen(RHTUI + args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env())


def run(args: list[str], timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(RHTUI + args, capture_output=True, text=True, timeout=timeout, env=env())


def read_until(p: subprocess.Popen, needle: str, timeout: float = 90) -> str:
    """What `p` printed up to the first line holding `needle` (a line at a time: no fixed sleeps)."""
    out = ""
    deadline = time.monotonic() + timeout
    assert p.stdout is not None
    while needle not in out:
        if time.monotonic() > deadline or p.poll() is not None:
            pytest.fail(f"{needle!r} not printed within {timeout} s (exit {p.poll()}):\n{out[-3000:]}")
        out += p.stdout.readline()
    return out


def stop(p: subprocess.Popen) -> None:
    if p.poll() is None:
        p.kill()
        p.wait(10)


def test_a_second_engine_on_one_database_refuses_and_a_killed_ones_lock_and_session_are_taken_over(tmp_path):
    first = start(["--demo", "--headless", "--speed", "10", "--data-dir", str(tmp_path)])
    try:
        read_until(first, "[rh-alpha] loading")
        t0 = time.monotonic()
        second = run(["--demo", "--headless", "--speed", "10", "--data-dir", str(tmp_path)])
        refused_in = time.monotonic() - t0
        assert second.returncode == 2, second.stdout + second.stderr
        err = second.stderr
        assert f"pid {first.pid}" in err and "another rhtui engine is running" in err
        assert "session 'rh_main' (#1)" in err and "since " in err
        assert f"rhtui watch --demo --data-dir {tmp_path}" in err
        assert refused_in < 30  # within seconds (a process start and the 2 s retry), even on a loaded machine
        assert "Traceback" not in err
        # kill -9: the kernel frees the lock; the session stays open in the database...
        first.kill()
        first.wait(10)
    finally:
        stop(first)
    db = tmp_path / "rhtui-demo.db"
    with sqlite3.connect(db) as c:
        assert c.execute("SELECT ended_at FROM sessions WHERE id = 1").fetchone()[0] is None
    # ... until the next engine starts: it takes the lock over and closes that session as interrupted
    third = run(["--demo", "--headless", "--speed", "60", "--max-cycles", "1", "--data-dir", str(tmp_path)])
    assert third.returncode == 0, third.stdout[-2000:] + third.stderr
    assert f"pid {first.pid}" in third.stderr and "was taken over" in third.stderr
    assert "session 'rh_main' (#1" in third.stderr and "closed as interrupted" in third.stderr
    with sqlite3.connect(db) as c:
        assert c.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        ended, reason = c.execute("SELECT ended_at, end_reason FROM sessions WHERE id = 1").fetchone()
        assert ended is not None and reason.startswith("interrupted")
        assert c.execute("SELECT COUNT(*) FROM cycles WHERE ended_at IS NULL").fetchone()[0] == 0
        assert c.execute("SELECT COUNT(*) FROM events WHERE session_id = 1 AND kind = 'SessionFinished'"
                         ).fetchone()[0] == 1
        assert c.execute("SELECT end_reason FROM sessions WHERE id = 2").fetchone()[0] == "1 cycles done"
    # a clean exit leaves the lock free: the next engine takes it without a word
    fourth = run(["--demo", "--headless", "--speed", "60", "--max-cycles", "1", "--data-dir", str(tmp_path)])
    assert fourth.returncode == 0 and "taken over" not in fourth.stderr, fourth.stderr


@pytest.fixture
def sim_host():
    port = free_port()
    p = subprocess.Popen(RHTUI + ["sim", "--port", str(port), "--speed", "20"], stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL, env=env())

    def listening() -> bool:
        assert p.poll() is None, "rhtui sim exited"
        with socket.socket() as s:
            return s.connect_ex(("127.0.0.1", port)) == 0

    try:
        until(listening, timeout=60, what="rhtui sim listening")
        yield port
    finally:
        interrupt(p, 15, 5)


def test_a_second_engine_on_the_same_ollama_host_refuses_even_with_another_data_dir(tmp_path, sim_host):
    a, b = tmp_path / "a", tmp_path / "b"
    first = start(["--headless", "--host", f"127.0.0.1:{sim_host}", "--data-dir", str(a), "--duration", "10"])
    try:
        read_until(first, "[rh-alpha] loading")
        # the same server under another name: localhost is 127.0.0.1
        second = run(["--headless", "--host", f"localhost:{sim_host}", "--data-dir", str(b), "--duration", "1"])
        assert second.returncode == 2, second.stdout + second.stderr
        assert f"pid {first.pid}" in second.stderr and "is using Ollama at" in second.stderr
        assert f"rhtui watch --data-dir {a}" in second.stderr and "one engine per card" in second.stderr
        assert not (b / "rhtui.db").exists()  # refused before it touched anything
        # a demo has its own database and simulator: it never waits for a real engine
        demo = run(["--demo", "--headless", "--speed", "60", "--max-cycles", "1", "--data-dir", str(a)])
        assert demo.returncode == 0, demo.stderr
        first.send_signal(signal.SIGINT)
        rest, _ = first.communicate(timeout=60)
        assert first.returncode == 0, rest
    finally:
        stop(first)
    # the host is free again
    again = run(["--headless", "--host", f"127.0.0.1:{sim_host}", "--data-dir", str(b), "--max-cycles", "1"])
    assert again.returncode == 0, again.stdout[-2000:] + again.stderr


def test_the_lock_files_say_who_holds_them_and_are_private(tmp_path):
    from rhtui.engine.lock import EngineLock, Holder, db_lock_path, holder_of, host_key, host_lock_path

    assert host_key("http://127.0.0.1:11434") == host_key("http://localhost:11434/") == host_key("[::1]:11434")
    assert host_key("http://127.0.0.1:11434") != host_key("http://127.0.0.1:11435")
    assert host_lock_path("http://localhost:11434").parent == Path(os.environ["XDG_RUNTIME_DIR"]) / "rhtui"
    db = tmp_path / "data" / "rhtui.db"
    lock = EngineLock(db, "http://127.0.0.1:11434", session="s", watch_hint="rhtui watch")
    with lock:
        assert (tmp_path / "data").stat().st_mode & 0o777 == 0o700
        assert db_lock_path(db).stat().st_mode & 0o777 == 0o600
        lock.session_started(7, "s")
        held = holder_of(db_lock_path(db))
        assert isinstance(held, Holder) and held.pid == os.getpid() and held.session_id == 7 and held.alive()
        assert holder_of(host_lock_path("http://localhost:11434")) == held
    assert holder_of(db_lock_path(db)) is None
