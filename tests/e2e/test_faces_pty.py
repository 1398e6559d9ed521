"""The faces people run, in a real pseudo-terminal, against `rhtui sim` started as a separate
process (an Ollama of its own, as on a real machine): plain `rhtui`, and `rhtui watch`
attached to a headless session run by a third process.

This machine has no NVML and no gpu_total_mb is configured, so the dashboard takes the
no-GPU probe path and judges VRAM from Ollama's /api/ps. The simulator's scenario already
holds the six students (rh-alpha … rh-zeta), as `rhtui models create` would have made them.
The simulator runs faster than real time, so a student finishes within seconds.
"""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest

from tests.e2e.terminal import Terminal, last_ok_student, ok_runs, rhtui_argv, sessions, statuses
from tests.helpers import until
from tests.processes import free_port, interrupt

pytestmark = pytest.mark.e2e

SIZES = [pytest.param(80, 24, id="80x24"), pytest.param(120, 40, id="120x40")]
FIRST_RUN_S = 120  # generous: Textual's start and the first proposal on a loaded machine


def shown_done(student: str, text: str) -> bool:
    """The queue's row of `student` says it finished ("rh-alpha    ✔ done")."""
    return re.search(rf"{re.escape(student)}\s+✔ done", text) is not None


def start_sim(speed: float) -> tuple[subprocess.Popen, str]:
    """`rhtui sim` on a free loopback port; returns (process, host:port) once it listens."""
    port = free_port()
    p = subprocess.Popen(rhtui_argv("sim", "--port", str(port), "--speed", str(speed), "--seed", "1"),
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    line = p.stdout.readline()  # "rhtui sim: scenario … on http://127.0.0.1:PORT, speed …"
    if f"127.0.0.1:{port}" not in line:
        interrupt(p)
        pytest.fail(f"rhtui sim did not start: {line}{p.stdout.read() if p.poll() is not None else ''}")
    return p, f"127.0.0.1:{port}"


@pytest.fixture
def sim_host():
    """A simulator of its own for each test; 4x: a proposal takes about 7 s, long enough to be
    sure a student is writing when q is pressed."""
    p, host = start_sim(4.0)
    try:
        yield host
    finally:
        interrupt(p, 10)


@pytest.fixture
def fast_sim_host():
    p, host = start_sim(10.0)
    try:
        yield host
    finally:
        interrupt(p, 10)


def no_gpu_env(tmp_path: Path) -> dict[str, str]:
    """No gpu_total_mb anywhere: no config file, no RHTUI_* variables (conftest isolates XDG)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("RHTUI_") and k != "OLLAMA_HOST"}
    assert not (Path(env["XDG_CONFIG_HOME"]) / "rhtui" / "rhtui.toml").exists()
    return env


@pytest.mark.parametrize("cols,rows", SIZES)
def test_plain_rhtui_on_a_separate_simulator_runs_a_student_and_quits_cleanly(tmp_path, sim_host, cols, rows):
    data = tmp_path / "data"
    db = data / "rhtui.db"
    term = Terminal(rhtui_argv("--host", sim_host, "--data-dir", str(data)), cols, rows, no_gpu_env(tmp_path))
    try:
        term.wait_until(lambda: "rh-alpha" in term.text(), 60, "dashboard with the students")
        term.wait_until(lambda: ok_runs(db) >= 1, FIRST_RUN_S, "finished student in the database")
        first = term.mark()
        # the screen says so, and the next student is writing now
        term.wait_until(lambda: shown_done("rh-alpha", term.text()), 30, "rh-alpha shown finished")
        term.wait_until(lambda: re.search(r"rh-beta\s+▶ running", term.text(since=first)) is not None,
                        30, "rh-beta running on the screen")
        assert statuses(db) == ["ok"]

        before_q = term.mark()
        term.send("q")
        term.wait_until(lambda: "Quit rhtui?" in term.text(since=before_q), 30, "confirm dialog")
        term.send("y")
        code = term.wait_exit(60)
        assert code == 0, term.tail()
    finally:
        term.close()
    assert "Traceback" not in term.text(), term.tail()
    runs = statuses(db)
    assert runs[0] == "ok" and runs[-1] == "aborted"  # the student that was writing was cancelled
    assert set(runs) <= {"ok", "aborted", "skipped"}
    [(_id, _name, ended, reason)] = sessions(db)
    assert ended is not None and reason == "stopped by user"


@pytest.mark.parametrize("cols,rows", SIZES)
def test_watch_follows_a_headless_session_and_q_leaves_it_running(tmp_path, fast_sim_host, cols, rows):
    data = tmp_path / "data"
    db = data / "rhtui.db"
    env = no_gpu_env(tmp_path)
    with open(tmp_path / "headless.log", "w") as log:  # the child keeps its own descriptor
        headless = subprocess.Popen(
            rhtui_argv("--headless", "--host", fast_sim_host, "--data-dir", str(data), "--session", "watched"),
            stdout=log, stderr=subprocess.STDOUT, env={**env, "NO_COLOR": "1"},
        )

    def headless_log() -> str:
        return (tmp_path / "headless.log").read_text(errors="replace")[-4000:]

    term = None
    try:
        def finished_beyond(n: int) -> bool:
            if ok_runs(db) > n:
                return True
            assert headless.poll() is None, headless_log()
            return False

        until(lambda: finished_beyond(0), timeout=FIRST_RUN_S, interval=0.3,
              what=lambda: "no student finished in the headless session:\n" + headless_log())

        term = Terminal(rhtui_argv("watch", "--data-dir", str(data)), cols, rows, env)
        term.wait_until(lambda: "rh-alpha" in term.text(), 60, "dashboard with the students")
        term.wait_until(lambda: shown_done("rh-alpha", term.text()), 30, "rh-alpha shown finished")
        seen = ok_runs(db)
        attached = term.mark()
        term.wait_until(lambda: ok_runs(db) > seen, 60, "another student finishing while watched")
        finished = last_ok_student(db)
        term.wait_until(lambda: shown_done(finished, term.text(since=attached)), 30, f"{finished} shown finished")

        term.send("q")
        code = term.wait_exit(30)
        assert code == 0, term.tail()
        assert "Traceback" not in term.text(), term.tail()

        # the session goes on without the watcher
        assert headless.poll() is None, headless_log()
        [(_id, name, ended, _reason)] = sessions(db)
        assert name == "watched" and ended is None
        after = ok_runs(db)
        until(lambda: finished_beyond(after), timeout=60, interval=0.3,
              what=lambda: "the session stopped after the watcher quit:\n" + headless_log())
    finally:
        if term is not None:
            term.close()
        code = interrupt(headless, 60)
    assert code == 0, headless_log()
    [(_id, _name, ended, reason)] = sessions(db)
    assert ended is not None and reason == "stopped by user"
