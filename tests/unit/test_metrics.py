"""The Prometheus metrics, fed events by hand: names, types, units, what is absent while unknown,
the HTTP server's errors, the metrics settings, and the shipped Grafana dashboard."""

from __future__ import annotations

import json
import re
import socket
from pathlib import Path

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families

from rhtui.engine import events as ev
from rhtui.engine.config import ConfigError, load_settings
from rhtui.engine.hardware import MB, HardwareSnapshot
from rhtui.engine.metrics import METRIC_NAMES, EngineMetrics, MetricsServer, MetricsServerError
from rhtui.engine.records import RunRecord, StudentStats

GRAFANA = Path(__file__).resolve().parents[2] / "docs" / "grafana-rhtui.json"


def families(text: str) -> dict:
    return {f.name: f for f in text_string_to_metric_families(text)}


def samples(fams: dict, family: str, sample: str | None = None) -> dict:
    """{labels as a sorted tuple: value} of one family's samples (named `sample`, default the family's)."""
    name = sample or family
    return {tuple(sorted(s.labels.items())): s.value for s in fams[family].samples if s.name == name}


def run(student: str, status: str = "ok", **kw) -> RunRecord:
    return RunRecord(session_id=1, cycle=1, student=student, model=student, status=status,  # type: ignore[arg-type]
                     started_at=0.0, ended_at=1.0, **kw)


def started(*students: str, version: str = "0.9.1") -> ev.SessionStarted:
    return ev.SessionStarted(ts=0.0, session_id=1, name="s", duration_s=60, backend_host="h",
                             backend_version=version, probe="sim", students=students, policy="fair")


def test_every_metric_has_help_and_type_and_prometheus_names_before_any_event():
    text = EngineMetrics(version="1.2.3").exposition().decode()
    for name in METRIC_NAMES:
        assert re.search(rf"^# HELP {name} \S", text, re.M), name
        assert re.search(rf"^# TYPE {name} (gauge|counter|histogram)$", text, re.M), name
    types = dict(re.findall(r"^# TYPE (\S+) (\S+)$", text, re.M))
    for name, kind in types.items():
        assert name in METRIC_NAMES
        assert (kind == "counter") == name.endswith("_total"), (name, kind)
        assert kind == "counter" or re.search(r"_(bytes|seconds|health|info)$", name), name
    assert types["rhtui_run_seconds"] == "histogram"
    # unknown is absent, never 0: no sample yet for the VRAM gauges
    fams = families(text)
    assert fams["rhtui_vram_used_bytes"].samples == [] and fams["rhtui_vram_total_bytes"].samples == []
    assert samples(fams, "rhtui_emergency_stops", "rhtui_emergency_stops_total") == {(): 0.0}
    assert samples(fams, "rhtui_info") == {(("ollama_version", ""), ("version", "1.2.3")): 1.0}
    assert "_created" not in text


def test_events_fold_into_the_metrics():
    m = EngineMetrics(version="1.2.3")
    m(started("a", "b"))
    m(ev.HardwareSampled(ts=1, snapshot=HardwareSnapshot(ts=1, source="sim", vram_total_mb=12288, vram_used_mb=4096)))
    m(ev.StudentFinished(ts=2, cycle=1, student="a", run=run("a", tokens=100, total_s=28.0, vram_mb=3847,
                                                              energy_j=5000.0)))
    m(ev.StudentFinished(ts=3, cycle=1, student="a", run=run("a", tokens=50, total_s=95.0, energy_j=1.5)))
    m(ev.StudentFinished(ts=4, cycle=1, student="b", run=run("b", "timeout", tokens=7, wall_s=60.0)))
    m(ev.StudentSkipped(ts=5, cycle=1, student="b", reason="does not fit"))
    m(ev.StudentHealthChanged(ts=6, cycle=1, student="b", health="degraded", failures=1))
    m(ev.EmergencyStop(ts=7, used_mb=None, total_mb=None, reason="VRAM above 95 %"))
    m(ev.BackendUp(ts=8, host="h", version="0.9.2"))
    fams = families(m.exposition().decode())
    assert samples(fams, "rhtui_vram_used_bytes") == {(): 4096 * MB}
    assert samples(fams, "rhtui_vram_total_bytes") == {(): 12288 * MB}
    runs = samples(fams, "rhtui_student_runs", "rhtui_student_runs_total")
    assert runs[(("status", "ok"), ("student", "a"))] == 2
    assert runs[(("status", "timeout"), ("student", "b"))] == 1
    assert runs[(("status", "skipped"), ("student", "b"))] == 1
    assert runs[(("status", "error"), ("student", "a"))] == 0  # every status of every student from the start
    assert len(runs) == 2 * 6
    assert samples(fams, "rhtui_tokens", "rhtui_tokens_total") == {(("student", "a"),): 150, (("student", "b"),): 7}
    # the histogram holds the ok runs only: 28 s and 95 s
    count = samples(fams, "rhtui_run_seconds", "rhtui_run_seconds_count")
    assert count == {(("student", "a"),): 2, (("student", "b"),): 0}
    assert samples(fams, "rhtui_run_seconds", "rhtui_run_seconds_sum")[(("student", "a"),)] == 123.0
    buckets = {dict(k)["le"]: v for k, v in samples(fams, "rhtui_run_seconds", "rhtui_run_seconds_bucket").items()
               if dict(k)["student"] == "a"}
    assert buckets["25.0"] == 0 and buckets["30.0"] == 1 and buckets["90.0"] == 1 and buckets["120.0"] == 2
    bounds = sorted(float(le) for le in buckets if le != "+Inf")
    assert buckets["+Inf"] == 2 and bounds[0] <= 5 and bounds[-1] >= 120  # sized for 5-120 s proposals
    assert sum(5 <= b <= 120 for b in bounds) >= 10
    assert samples(fams, "rhtui_student_vram_bytes") == {(("student", "a"),): 3847 * MB}
    assert samples(fams, "rhtui_energy_joules", "rhtui_energy_joules_total") == {(("student", "a"),): 5001.5}
    assert samples(fams, "rhtui_emergency_stops", "rhtui_emergency_stops_total") == {(): 1}
    assert samples(fams, "rhtui_student_health") == {(("student", "a"),): 0, (("student", "b"),): 1}
    assert samples(fams, "rhtui_info") == {(("ollama_version", "0.9.2"), ("version", "1.2.3")): 1}


def test_unknown_figures_stay_absent_and_learned_vram_gives_way_to_a_measured_one():
    m = EngineMetrics()
    m(started("a", "b", version="?"))
    m(ev.HardwareSampled(ts=1, snapshot=HardwareSnapshot(ts=1, source="none", vram_used_mb=4000)))  # no total
    stats = StudentStats("a", 3, 0, 4000.0, 4100.0, 30.0, 3000.0, 100.0)
    m(ev.ProfilesUpdated(ts=2, profiles=(stats, StudentStats("b", 0, 0, None, None, None, None, None))))
    fams = families(m.exposition().decode())
    assert fams["rhtui_vram_total_bytes"].samples == []  # never a made-up 0 for an unknown card size
    assert samples(fams, "rhtui_vram_used_bytes") == {(): 4000 * MB}
    assert samples(fams, "rhtui_student_vram_bytes") == {(("student", "a"),): 4000 * MB}  # learned; b unknown
    assert fams["rhtui_energy_joules"].samples == []  # no power measured: absent, not 0
    assert dict(samples(fams, "rhtui_info"))  # "?" is not a version
    assert next(iter(samples(fams, "rhtui_info")))[0] == ("ollama_version", "")
    m(ev.StudentFinished(ts=3, cycle=1, student="a", run=run("a", tokens=10, total_s=20.0, vram_mb=3900,
                                                              energy_j=None)))
    m(ev.ProfilesUpdated(ts=4, profiles=(StudentStats("a", 4, 0, 3975.0, 4100.0, 30.0, 3000.0, 100.0),)))
    m(ev.HardwareSampled(ts=5, snapshot=HardwareSnapshot(ts=5, source="none", vram_used_mb=float("nan"))))
    fams = families(m.exposition().decode())
    assert samples(fams, "rhtui_student_vram_bytes") == {(("student", "a"),): 3900 * MB}  # the measured one stays
    assert fams["rhtui_energy_joules"].samples == []
    assert fams["rhtui_vram_used_bytes"].samples == []  # NaN is unknown


def test_two_engines_in_one_process_have_their_own_registries():
    a, b = EngineMetrics(), EngineMetrics()
    a(ev.EmergencyStop(ts=1, used_mb=None, total_mb=None, reason="x"))
    assert a.registry is not b.registry
    assert "rhtui_emergency_stops_total 1.0" in a.exposition().decode()
    assert "rhtui_emergency_stops_total 0.0" in b.exposition().decode()


async def test_the_server_answers_on_loopback_and_says_when_the_port_is_taken():
    server = MetricsServer(EngineMetrics(), "127.0.0.1", 0)
    url = await server.start()
    try:
        assert url.startswith("http://127.0.0.1:") and url.endswith("/metrics") and server.port > 0
        async with aiohttp.ClientSession() as http, http.get(url) as resp:
            assert resp.status == 200
            assert resp.headers["Content-Type"].startswith("text/plain; version=0.0.4")
            assert "# TYPE rhtui_info gauge" in await resp.text()
        taken = MetricsServer(EngineMetrics(), "127.0.0.1", server.port)
        with pytest.raises(MetricsServerError) as err:
            await taken.start()
        msg = str(err.value)
        assert f"127.0.0.1:{server.port}" in msg and "in use" in msg and "--metrics-port" in msg
    finally:
        await server.stop()
    with socket.socket() as s:  # stopped: the port is free again
        s.bind(("127.0.0.1", server.port))


def test_metrics_settings_loopback_by_default_remote_only_when_allowed(monkeypatch):
    s = load_settings(None, {"metrics": {"port": 9464}})
    assert (s.metrics.port, s.metrics.host) == (9464, "127.0.0.1")
    assert load_settings(None, {}).metrics.port is None  # off unless asked for
    monkeypatch.setenv("RHTUI_METRICS__PORT", "9100")
    monkeypatch.setenv("RHTUI_METRICS__HOST", "[::1]")
    s = load_settings(None, {})
    assert (s.metrics.port, s.metrics.host) == (9100, "::1")
    monkeypatch.setenv("RHTUI_METRICS__HOST", "0.0.0.0")
    with pytest.raises(ConfigError) as err:
        load_settings(None, {})
    msg = str(err.value)
    assert "metrics.host" in msg and "not a loopback address" in msg and "RHTUI_METRICS__HOST" in msg
    assert "allow_remote" in msg
    monkeypatch.setenv("RHTUI_METRICS__ALLOW_REMOTE", "true")
    assert load_settings(None, {}).metrics.host == "0.0.0.0"
    with pytest.raises(ConfigError, match=r"metrics\.port.*--metrics-port"):
        load_settings(None, {"metrics": {"port": 70000}})


def _exprs(node) -> list[str]:
    if isinstance(node, dict):
        out = [node["expr"]] if isinstance(node.get("expr"), str) else []
        return out + [e for v in node.values() for e in _exprs(v)]
    if isinstance(node, list):
        return [e for v in node for e in _exprs(v)]
    return []


def test_the_grafana_dashboard_uses_only_exported_metrics():
    board = json.loads(GRAFANA.read_text(encoding="utf-8"))
    variables = board["templating"]["list"]
    ds = [v for v in variables if v.get("type") == "datasource"]
    assert ds and ds[0]["query"] == "prometheus"
    ds_ref = "${" + ds[0]["name"] + "}"
    panels = board["panels"]
    exprs = _exprs(panels)
    assert len(exprs) >= 7
    exported = set(METRIC_NAMES) | {"rhtui_run_seconds_bucket", "rhtui_run_seconds_sum", "rhtui_run_seconds_count"}
    used = {name for e in exprs for name in re.findall(r"\brhtui_[a-z_]+", e)}
    everywhere = set(re.findall(r"\brhtui_[a-z_]+", GRAFANA.read_text(encoding="utf-8")))  # variables too
    assert used <= everywhere <= exported, everywhere - exported
    for needed in ("rhtui_vram_used_bytes", "rhtui_vram_total_bytes", "rhtui_student_runs_total", "rhtui_tokens_total",
                   "rhtui_run_seconds_bucket", "rhtui_energy_joules_total", "rhtui_student_health",
                   "rhtui_emergency_stops_total"):
        assert needed in used, needed
    assert any("histogram_quantile(0.95" in e for e in exprs)
    assert any(re.search(r"rate\(rhtui_tokens_total", e) for e in exprs)
    for panel in panels:
        if panel.get("type") != "row":
            assert panel["datasource"]["uid"] == ds_ref, panel["title"]
