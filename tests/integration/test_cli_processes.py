"""The `rhtui` command as a process: headless runs, graceful signals, the standalone simulator,
and the report of what was recorded."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import ollama
import pytest

from tests.processes import free_port, interrupt

pytestmark = pytest.mark.integration

RHTUI = [sys.executable, "-m", "rhtui.commands.cli"]


def run(args: list[str], **kw) -> subprocess.CompletedProcess:
    env = {**os.environ, "NO_COLOR": "1"}
    return subprocess.run(RHTUI + args, capture_output=True, text=True, timeout=120, env=env, **kw)


def statuses(db: Path) -> list[str]:
    with sqlite3.connect(db) as c:
        return [s for (s,) in c.execute("SELECT status FROM student_runs ORDER BY id")]


def test_headless_demo_prints_each_student_and_cycle_and_stores_everything(tmp_path):
    r = run(["--demo", "--headless", "--speed", "60", "--max-cycles", "1", "--data-dir", str(tmp_path)])
    assert r.returncode == 0, r.stderr
    out = r.stdout
    # a research round: five proposals, rh-zeta's critique and judging, a synthesis
    for name in ("rh-alpha", "rh-beta", "rh-gamma", "rh-delta", "rh-epsilon", "rh-zeta"):
        assert f"[{name}] loading {name}" in out
        assert f"[{name}] done in" in out
    assert "[rh-zeta] loading rh-zeta for the critique" in out and "for the synthesis" in out
    assert "proposal scored" in out and "synthesis scored" in out
    assert "tok/s, VRAM" in out and "saved run #" in out and "question:" in out
    assert "cycle 1 finished in" in out
    assert "\x1b[" not in out  # NO_COLOR and a pipe: plain text
    db = tmp_path / "rhtui-demo.db"
    runs = statuses(db)
    assert len(runs) >= 8 and set(runs) == {"ok"}, runs
    with sqlite3.connect(db) as c:
        assert c.execute("SELECT COUNT(*) FROM hardware_snapshots").fetchone()[0] > 0
        assert c.execute("SELECT ended_at FROM sessions").fetchone()[0] is not None
    # the report reads it back
    rep = run(["--data-dir", str(tmp_path), "report", "--demo", "--format", "json"])
    assert rep.returncode == 0, rep.stderr
    data = json.loads(rep.stdout)
    assert [s["student"] for s in data["students"]][0] == "rh-alpha"
    assert all(s["runs"] >= 1 and s["failures"] == 0 and s["vram_p95_mb"] > 3000 for s in data["students"])
    assert 2 <= len(data["vram_timeline"]) <= 48
    csv = run(["--data-dir", str(tmp_path), "export", "runs", "--demo"])
    assert csv.stdout.splitlines()[0].startswith("session_id,cycle,student,model,status")
    assert len(csv.stdout.splitlines()) == len(runs) + 1
    props = run(["--data-dir", str(tmp_path), "export", "proposals", "--demo"])
    lines = [json.loads(x) for x in props.stdout.splitlines()]
    assert len(lines) == len(runs) and all(x["proposal"] for x in lines)


def test_sigint_stops_a_headless_run_gracefully(tmp_path):
    env = {**os.environ, "NO_COLOR": "1"}
    p = subprocess.Popen(
        RHTUI + ["--demo", "--headless", "--speed", "5", "--data-dir", str(tmp_path)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env,
    )
    out = ""
    deadline = time.monotonic() + 60
    while "[rh-alpha] loading" not in out and time.monotonic() < deadline:
        out += p.stdout.readline()
    time.sleep(1.0)  # rh-alpha is now generating (a proposal takes ~6 s at 5x)
    p.send_signal(signal.SIGINT)
    rest, _ = p.communicate(timeout=60)
    assert p.returncode == 0, out + rest
    assert "stopping gracefully" in rest and "session #1 finished (stopped by user)" in rest
    assert statuses(tmp_path / "rhtui-demo.db") == ["aborted"]


async def test_rhtui_sim_serves_any_ollama_client():
    port = free_port()
    p = subprocess.Popen(RHTUI + ["sim", "--port", str(port), "--speed", "50"], stdout=subprocess.PIPE, text=True)
    try:
        line = p.stdout.readline()
        assert f"127.0.0.1:{port}" in line
        client = ollama.AsyncClient(host=f"http://127.0.0.1:{port}")
        names = {m.model for m in (await client.list()).models}
        assert {"rh-alpha:latest", "nous-hermes:7b"} <= names
        r = await client.generate(model="rh-gamma", prompt="One idea.", options={"num_predict": 40})
        assert r.done and r.eval_count == 40 and r.done_reason == "length"
        await client.close()
    finally:
        p.send_signal(signal.SIGINT)
        p.wait(10)


# -- the installed `rhtui` entry point against `rhtui sim` in another process -----------------

RHTUI_BIN = Path(sys.executable).with_name("rhtui")
STUDENTS = ("rh-alpha", "rh-beta", "rh-gamma", "rh-delta", "rh-epsilon", "rh-zeta")


def runs_of(db: Path) -> list[str]:
    """The students of the ok runs, in order."""
    with sqlite3.connect(db) as c:
        return [s for (s,) in c.execute("SELECT student FROM student_runs WHERE status = 'ok' ORDER BY id")]


def rhtui(args: list[str], env_home: Path, timeout: float = 120) -> subprocess.CompletedProcess:
    """The installed `rhtui` command, reading no config or data but what the test gives it."""
    if not RHTUI_BIN.exists():
        pytest.skip(f"the rhtui entry point is not installed next to {sys.executable}")
    env = {**os.environ, "NO_COLOR": "1", "COLUMNS": "250", "XDG_CONFIG_HOME": str(env_home / "xdg-config"),
           "XDG_DATA_HOME": str(env_home / "xdg-data")}
    for var in list(env):
        if var.startswith("RHTUI_") or var == "OLLAMA_HOST":
            del env[var]
    return subprocess.run([str(RHTUI_BIN), *args], capture_output=True, text=True, timeout=timeout, env=env)


@pytest.fixture(scope="module")
def sim_host():
    """`rhtui sim` at 20x (its scenario has the six students) as a separate process."""
    if not RHTUI_BIN.exists():
        pytest.skip(f"the rhtui entry point is not installed next to {sys.executable}")
    port = free_port()
    p = subprocess.Popen([str(RHTUI_BIN), "sim", "--port", str(port), "--speed", "20"],
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        line = p.stdout.readline()
        assert f"127.0.0.1:{port}" in line, line
        yield f"127.0.0.1:{port}"
    finally:
        interrupt(p, 10, 5)


@pytest.fixture(scope="module")
def headless_on_a_fresh_database(sim_host, tmp_path_factory):
    """`rhtui --headless --duration 1` (a session shorter than the 60 s timeout) on a fresh
    database against the simulator; returns (result, data dir, home)."""
    home = tmp_path_factory.mktemp("home")
    data = home / "data"
    r = rhtui(["--headless", "--duration", "1", "--max-cycles", "1", "--host", sim_host, "--data-dir", str(data)], home)
    return r, data, home


def test_headless_on_a_fresh_database_runs_the_students_instead_of_skipping_them_for_time(
    headless_on_a_fresh_database,
):
    r, data, _home = headless_on_a_fresh_database
    assert r.returncode == 0, r.stdout + r.stderr
    assert "needs ~60.0 s" not in r.stdout  # the timeout, assumed: no skip on that guess
    runs = statuses(data / "rhtui.db")
    assert runs[0] == "ok", r.stdout
    assert (len(runs) >= 6 and set(runs) == {"ok"}) or "no time left in the session" in r.stdout, r.stdout


def test_demo_headless_session_shorter_than_the_timeout_runs_students_on_a_fresh_database(tmp_path):
    """The same with the simulator: 0.05 min at 20x is 60 simulated seconds, the timeout 90 s.
    Never-run students are not skipped on the assumed 90 s: they run until time is up."""
    r = rhtui(["--demo", "--headless", "--duration", "0.05", "--speed", "20", "--timeout", "90",
               "--data-dir", str(tmp_path / "data")], tmp_path)
    assert r.returncode == 0, r.stdout + r.stderr
    runs = statuses(tmp_path / "data" / "rhtui-demo.db")
    assert runs[0] == "ok", r.stdout
    assert "needs ~90.0 s" not in r.stdout  # no skip on the guess
    assert "session #1 finished (session time is up" in r.stdout  # at its end, or when no learned time fits


def test_global_options_after_the_command_in_the_installed_entry_point(headless_on_a_fresh_database, sim_host):
    _r, data, home = headless_on_a_fresh_database
    ran = [s for s in STUDENTS if s in set(runs_of(data / "rhtui.db"))]
    rep = rhtui(["report", "--data-dir", str(data), "--format", "json"], home)
    assert rep.returncode == 0, rep.stderr
    assert [s["student"] for s in json.loads(rep.stdout)["students"]][: len(ran)] == ran
    csv = rhtui(["export", "runs", "--data-dir", str(data)], home)
    assert csv.returncode == 0, csv.stderr
    assert csv.stdout.splitlines()[0].startswith("session_id,cycle,student")
    assert len(csv.stdout.splitlines()) == 1 + len(statuses(data / "rhtui.db"))
    doc = rhtui(["doctor", "--data-dir", str(data), "--host", sim_host], home)
    out = " ".join(doc.stdout.split())
    assert f"data_dir = {data} (command-line flag --data-dir)" in out
    assert f"ollama_host = http://{sim_host} (command-line flag --host)" in out
    assert "No such option" not in doc.stderr
    # a Modelfiles folder of one student of our own, created in the simulator
    folder = home / "modelfiles"
    folder.mkdir()
    shipped = Path(__file__).resolve().parents[2] / "rhtui" / "modelfiles" / "rh-gamma.Modelfile"
    (folder / "my-student.Modelfile").write_text(shipped.read_text())
    made = rhtui(["models", "create", "--modelfiles", str(folder), "--host", sim_host], home)
    assert made.returncode == 0, made.stdout + made.stderr
    assert "my-student" in made.stdout
    listed = rhtui(["models", "list", "--modelfiles", str(folder), "--host", sim_host, "--data-dir", str(data)], home)
    assert listed.returncode == 0, listed.stdout + listed.stderr
    assert "my-student" in listed.stdout and "rh-alpha" not in listed.stdout
    verified = rhtui(["models", "verify", "--modelfiles", str(folder), "--host", sim_host], home)
    assert verified.returncode == 0, verified.stdout + verified.stderr
