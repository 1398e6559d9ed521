"""Prometheus metrics of a real engine on the simulator, scraped over loopback HTTP and parsed with
prometheus_client's parser: what they say matches the database; `--metrics-port` through the command."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families

from rhtui.engine.backend import OllamaBackend
from rhtui.engine.config import Settings
from rhtui.engine.hardware import MB
from rhtui.engine.metrics import METRIC_NAMES, start_metrics
from rhtui.engine.orchestrator import Orchestrator
from rhtui.sim.probe import SimProbe
from tests.helpers import until

pytestmark = pytest.mark.integration

RHTUI = [sys.executable, "-m", "rhtui.commands.cli"]
STUDENTS = ("rh-alpha", "rh-beta", "rh-gamma", "rh-delta", "rh-epsilon", "rh-zeta")


async def scrape(url: str) -> str:
    async with aiohttp.ClientSession() as http, http.get(url, timeout=aiohttp.ClientTimeout(total=10)) as resp:
        assert resp.status == 200
        return await resp.text()


def by_labels(text: str, sample: str, *labels: str) -> dict:
    """{label value (one label) or tuple of label values: value} of the samples named `sample`."""
    out: dict = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name == sample:
                key = tuple(s.labels[k] for k in labels)
                out[key[0] if len(key) == 1 else key] = s.value
    return out


async def test_metrics_after_a_cycle_match_the_database(sim, store, tmp_path):
    sim.world.inject("http_500", model="rh-beta", count=1)  # one error: beta is degraded
    settings = Settings(
        ollama_host=sim.url, data_dir=tmp_path, sample_interval_s=0.05, budget={"cooldown_s": 0},
        session={"name": "metrics", "max_cycles": 1, "prompt_seed": 1},
        students=[{"name": n, "enabled": n != "rh-gamma"} for n in STUDENTS],  # gamma: skipped (disabled)
    )
    backend = OllamaBackend(settings.ollama_host)
    metrics, server = await start_metrics("127.0.0.1", 0, version="9.9.9")
    try:
        orch = Orchestrator(settings, backend, SimProbe(sim.world), store, sim.clock, retry_backend=False)
        orch.bus.subscribe(metrics)
        await asyncio.wait_for(orch.run(), 90)
        text = await scrape(server.url)
    finally:
        await server.stop()
        await backend.close()

    families = {f.name: f for f in text_string_to_metric_families(text)}
    for name in METRIC_NAMES:  # each with its HELP and TYPE
        assert re.search(rf"^# HELP {name} \S", text, re.M) and re.search(rf"^# TYPE {name} \w+$", text, re.M), name
    for family in families.values():
        if family.type == "counter":
            assert family.samples and all(s.name.endswith("_total") for s in family.samples), family.name

    db = sqlite3.connect(tmp_path / "rhtui.db")
    try:
        rows = db.execute("SELECT student, status, COUNT(*) FROM student_runs WHERE session_id = ? "
                          "GROUP BY student, status", (orch.session_id,)).fetchall()
        tokens = dict(db.execute("SELECT student, SUM(tokens) FROM student_runs WHERE session_id = ? "
                                 "AND tokens IS NOT NULL GROUP BY student", (orch.session_id,)).fetchall())
        ok_runs = dict(db.execute("SELECT student, COUNT(*) FROM student_runs WHERE session_id = ? AND status = 'ok' "
                                  "GROUP BY student", (orch.session_id,)).fetchall())
        energy = dict(db.execute("SELECT student, SUM(energy_j) FROM student_runs WHERE session_id = ? "
                                 "AND energy_j IS NOT NULL GROUP BY student", (orch.session_id,)).fetchall())
        vram = {s: v for s, v in db.execute("SELECT student, vram_mb FROM student_runs WHERE session_id = ? "
                                            "AND vram_mb IS NOT NULL ORDER BY id", (orch.session_id,))}
    finally:
        db.close()
    statuses = {(s, st): n for s, st, n in rows}
    assert statuses[("rh-beta", "error")] == 1 and statuses[("rh-gamma", "skipped")] == 1  # the test did set them up
    runs = {k: v for k, v in by_labels(text, "rhtui_student_runs_total", "student", "status").items() if v}
    assert runs == statuses
    assert by_labels(text, "rhtui_tokens_total", "student") == {s: tokens.get(s, 0) for s in STUDENTS}
    counts = by_labels(text, "rhtui_run_seconds_count", "student")
    assert {s: n for s, n in counts.items() if n} == ok_runs
    assert by_labels(text, "rhtui_energy_joules_total", "student") == pytest.approx(energy)
    assert energy  # the simulator's power is integrated
    assert by_labels(text, "rhtui_student_vram_bytes", "student") == pytest.approx(
        {s: mb * MB for s, mb in vram.items()})
    health = by_labels(text, "rhtui_student_health", "student")
    assert health["rh-beta"] == 1 and health["rh-alpha"] == 0
    assert by_labels(text, "rhtui_vram_total_bytes") == {(): sim.world.scenario.gpu.total_mb * MB}
    assert by_labels(text, "rhtui_vram_used_bytes")[()] > 0
    assert by_labels(text, "rhtui_emergency_stops_total") == {(): 0}
    info = by_labels(text, "rhtui_info", "version", "ollama_version")
    [(version, ollama_version)] = info
    assert version == "9.9.9" and ollama_version and ollama_version == orch.backend_version


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_metrics_port_serves_a_headless_demo_while_it_runs(tmp_path):
    env = {**os.environ, "NO_COLOR": "1"}
    out_path = tmp_path / "stdout.txt"
    with out_path.open("w") as out:
        p = subprocess.Popen(
            RHTUI + ["--demo", "--headless", "--speed", "10", "--max-cycles", "1", "--data-dir", str(tmp_path),
                     "--metrics-port", "0"],
            stdout=out, stderr=subprocess.PIPE, text=True, env=env,
        )
    try:
        url = ""
        deadline = time.monotonic() + 60
        while not url and time.monotonic() < deadline:
            line = p.stderr.readline()
            assert line or p.poll() is None, f"rhtui exited {p.returncode}: {out_path.read_text()}"
            if m := re.search(r"Prometheus metrics at (http://127\.0\.0\.1:\d+/metrics)", line):
                url = m.group(1)
        assert url, "no metrics URL on stderr"

        def ok_runs() -> float:
            assert p.poll() is None, f"rhtui exited {p.returncode} before a run was scraped: {out_path.read_text()}"
            text = asyncio.run(scrape(url))
            return sum(v for (_student, status), v in
                       by_labels(text, "rhtui_student_runs_total", "student", "status").items() if status == "ok")

        assert until(ok_runs, timeout=90, interval=0.2, what="an ok run in the scraped metrics") >= 1
        p.send_signal(signal.SIGINT)  # a graceful stop also stops the metrics server
        p.wait(timeout=120)
        assert p.returncode == 0, out_path.read_text() + p.stderr.read()
        assert "session #1 finished (stopped by user)" in out_path.read_text()
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
        p.stderr.close()
    with socket.socket() as s:  # the server stopped with the engine
        port = int(url.rsplit(":", 1)[1].split("/")[0])
        assert s.connect_ex(("127.0.0.1", port)) != 0


def test_a_metrics_port_in_use_stops_before_anything_starts(tmp_path):
    with socket.socket() as s:  # another program listens there
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        r = subprocess.run(
            RHTUI + ["--demo", "--headless", "--max-cycles", "1", "--data-dir", str(tmp_path),
                     "--metrics-port", str(port)],
            capture_output=True, text=True, timeout=120, env={**os.environ, "NO_COLOR": "1"})
    assert r.returncode == 2, r.stderr
    assert f"cannot serve metrics on 127.0.0.1:{port}: the port is in use" in r.stderr
    assert "--metrics-port" in r.stderr and "Traceback" not in r.stderr
    assert not Path(tmp_path / "rhtui-demo.db").exists()  # nothing was started
