"""The `rhtui` command as a process: headless runs, graceful signals, the standalone simulator,
and the report of what was recorded."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import ollama
import pytest

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
    for name in ("rh-alpha", "rh-beta", "rh-gamma", "rh-delta", "rh-epsilon", "rh-zeta"):
        assert f"[{name}] loading {name}" in out
        assert f"[{name}] done in" in out
    assert "tok/s, VRAM" in out and "saved run #" in out
    assert "cycle 1 finished in" in out and "6 completed" in out
    assert "\x1b[" not in out  # NO_COLOR and a pipe: plain text
    db = tmp_path / "rhtui-demo.db"
    assert statuses(db) == ["ok"] * 6
    with sqlite3.connect(db) as c:
        assert c.execute("SELECT COUNT(*) FROM hardware_snapshots").fetchone()[0] > 0
        assert c.execute("SELECT ended_at FROM sessions").fetchone()[0] is not None
    # the report reads it back
    rep = run(["--data-dir", str(tmp_path), "report", "--demo", "--format", "json"])
    assert rep.returncode == 0, rep.stderr
    data = json.loads(rep.stdout)
    assert [s["student"] for s in data["students"]][0] == "rh-alpha"
    assert all(s["runs"] == 1 and s["failures"] == 0 and s["vram_p95_mb"] > 3000 for s in data["students"])
    assert 2 <= len(data["vram_timeline"]) <= 48
    csv = run(["--data-dir", str(tmp_path), "export", "runs", "--demo"])
    assert csv.stdout.splitlines()[0].startswith("session_id,cycle,student,model,status")
    assert len(csv.stdout.splitlines()) == 7
    props = run(["--data-dir", str(tmp_path), "export", "proposals", "--demo"])
    lines = [json.loads(x) for x in props.stdout.splitlines()]
    assert len(lines) == 6 and all(x["proposal"] for x in lines)


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


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def test_rhtui_sim_serves_any_ollama_client():
    port = _free_port()
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
