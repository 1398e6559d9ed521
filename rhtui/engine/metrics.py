"""Prometheus metrics of a running engine: `/metrics` in the text exposition format.

`EngineMetrics` is an EventBus listener: it folds the engine's events into a few numbers and
exposes them through its own `CollectorRegistry` (never prometheus_client's global one, so
several engines or tests in one process never collide). `MetricsServer` serves that registry
from an aiohttp app inside the engine's event loop, so it starts and stops with the engine: the
classic text format (`generate_latest`, version 0.0.4), or OpenMetrics when the scraper's Accept
header asks for it (as prometheus_client's own server does).

What is exported (every family always has its HELP and TYPE lines):

| metric | type | labels | what |
| --- | --- | --- | --- |
| `rhtui_vram_used_bytes` | gauge | | VRAM in use on the card, latest sample |
| `rhtui_vram_total_bytes` | gauge | | the card's VRAM |
| `rhtui_student_runs_total` | counter | student, status | runs ended, by status (`RUN_STATUSES`) |
| `rhtui_tokens_total` | counter | student | tokens generated (any run that reported a count) |
| `rhtui_run_seconds` | histogram | student | seconds of each ok proposal, load included (engine clock) |
| `rhtui_student_vram_bytes` | gauge | student | resident VRAM as last measured (until then: learned) |
| `rhtui_energy_joules_total` | counter | student | GPU energy of the student's runs (integrated power) |
| `rhtui_emergency_stops_total` | counter | | emergency stops (VRAM above the emergency line, or `e`) |
| `rhtui_student_health` | gauge | student | 0 healthy, 1 degraded, 2 quarantined |
| `rhtui_info` | gauge | version, ollama_version | always 1 (ollama_version empty until Ollama answered) |

Unknown is absent, never a made-up 0: without a VRAM reading (no NVML and no `gpu_total_mb`)
the VRAM gauges have no sample; a student's energy appears once a run measured power, its VRAM
once it is known. Counters count from this engine's start (Prometheus handles the reset at a
restart); the database keeps the history.
"""

from __future__ import annotations

import errno
import math
import socket
from collections.abc import Iterator

from aiohttp import web
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.exposition import choose_encoder

from rhtui import __version__
from rhtui.engine import events as ev
from rhtui.engine.hardware import MB
from rhtui.engine.records import RUN_STATUSES, RunRecord

RUN_SECONDS_BUCKETS: tuple[float, ...] = (2.5, 5, 7.5, 10, 15, 20, 25, 30, 35, 40, 45, 50, 60, 75, 90, 120, 180, 300)
"""Upper bounds (s) of `rhtui_run_seconds`: fine around the 20–40 s of a 7B proposal, covering 5–120 s."""

HEALTH_VALUE = {"healthy": 0, "degraded": 1, "quarantined": 2}
"""`rhtui_student_health`: one number per student, so `max(rhtui_student_health) >= 2` can alert."""

METRIC_NAMES: tuple[str, ...] = (
    "rhtui_vram_used_bytes", "rhtui_vram_total_bytes", "rhtui_student_runs_total", "rhtui_tokens_total",
    "rhtui_run_seconds", "rhtui_student_vram_bytes", "rhtui_energy_joules_total", "rhtui_emergency_stops_total",
    "rhtui_student_health", "rhtui_info",
)
"""Every metric name exported (a histogram adds `_bucket`, `_sum` and `_count` samples)."""


class _Histogram:
    __slots__ = ("counts", "total", "n")

    def __init__(self) -> None:
        self.counts = [0] * len(RUN_SECONDS_BUCKETS)
        self.total = 0.0
        self.n = 0

    def observe(self, value: float) -> None:
        for i, bound in enumerate(RUN_SECONDS_BUCKETS):
            if value <= bound:
                self.counts[i] += 1
        self.total += value
        self.n += 1

    def buckets(self) -> list[tuple[str, float]]:
        out = [(_le(bound), float(c)) for bound, c in zip(RUN_SECONDS_BUCKETS, self.counts, strict=True)]
        return [*out, ("+Inf", float(self.n))]


def _le(bound: float) -> str:
    return repr(float(bound))


def _known(value: float | None) -> float | None:
    """The value when it is a finite number, else None (unknown)."""
    return value if value is not None and math.isfinite(value) else None


class EngineMetrics:
    """The engine's events folded into Prometheus metrics; subscribe it to the engine's bus.

    Runs in the engine's event loop (bus listeners and the HTTP handler share it), so plain
    attributes need no lock.
    """

    def __init__(self, *, version: str = __version__) -> None:
        self.version = version
        self.ollama_version = ""
        self.vram_used_bytes: float | None = None
        self.vram_total_bytes: float | None = None
        self.runs: dict[tuple[str, str], int] = {}
        self.tokens: dict[str, int] = {}
        self.seconds: dict[str, _Histogram] = {}
        self.student_vram: dict[str, float] = {}
        self._measured_vram: set[str] = set()  # measured by a run of this engine: learned figures no longer apply
        self.energy: dict[str, float] = {}
        self.emergency_stops = 0
        self.health: dict[str, int] = {}
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(self)

    # -- the bus listener ---------------------------------------------------------------------

    def __call__(self, event: ev.Event) -> None:
        if isinstance(event, ev.HardwareSampled):
            used, total = _known(event.snapshot.vram_used_mb), _known(event.snapshot.vram_total_mb)
            self.vram_used_bytes = used * MB if used is not None else None
            self.vram_total_bytes = total * MB if total else None  # a total of 0 is no reading
        elif isinstance(event, ev.StudentFinished):
            self._finished(event.run)
        elif isinstance(event, ev.StudentSkipped):
            key = (event.student, "skipped")
            self.runs[key] = self.runs.get(key, 0) + 1
        elif isinstance(event, ev.EmergencyStop):
            self.emergency_stops += 1
        elif isinstance(event, ev.StudentHealthChanged):
            self.health[event.student] = HEALTH_VALUE.get(event.health, 0)
        elif isinstance(event, ev.SessionStarted):
            self._set_ollama_version(event.backend_version)
            for student in event.students:  # a session starts every student healthy, nothing counted yet
                self.health.setdefault(student, 0)
                self.tokens.setdefault(student, 0)
                self.seconds.setdefault(student, _Histogram())
                for status in RUN_STATUSES:
                    self.runs.setdefault((student, status), 0)
        elif isinstance(event, ev.BackendUp):
            self._set_ollama_version(event.version)
        elif isinstance(event, ev.ProfilesUpdated):
            for stats in event.profiles:
                learned = _known(stats.vram_mean_mb)
                if stats.student not in self._measured_vram and learned:
                    self.student_vram[stats.student] = learned * MB

    def _set_ollama_version(self, version: str) -> None:
        if version and version != "?":
            self.ollama_version = version

    def _finished(self, run: RunRecord) -> None:
        key = (run.student, run.status)
        self.runs[key] = self.runs.get(key, 0) + 1
        if run.tokens is not None:
            self.tokens[run.student] = self.tokens.get(run.student, 0) + run.tokens
        if run.status == "ok":
            seconds = _known(run.total_s)
            seconds = seconds if seconds is not None else _known(run.wall_s)
            if seconds is not None:
                self.seconds.setdefault(run.student, _Histogram()).observe(max(0.0, seconds))
        vram = _known(run.vram_mb)
        if vram:
            self.student_vram[run.student] = vram * MB
            self._measured_vram.add(run.student)
        energy = _known(run.energy_j)
        if energy is not None and energy >= 0:
            self.energy[run.student] = self.energy.get(run.student, 0.0) + energy

    # -- the collector ------------------------------------------------------------------------

    def describe(self) -> list[Metric]:
        return []  # names are not checked against other collectors: the registry is ours alone

    def collect(self) -> Iterator[Metric]:
        used = GaugeMetricFamily("rhtui_vram_used_bytes", "VRAM in use on the card at the latest hardware sample "
                                 "(NVML, else judged from Ollama's /api/ps); absent while unknown.")
        if self.vram_used_bytes is not None:
            used.add_metric([], self.vram_used_bytes)
        yield used
        total = GaugeMetricFamily("rhtui_vram_total_bytes", "The card's VRAM (NVML, else the gpu_total_mb setting); "
                                  "absent while unknown.")
        if self.vram_total_bytes is not None:
            total.add_metric([], self.vram_total_bytes)
        yield total
        runs = CounterMetricFamily("rhtui_student_runs", "Student runs ended since the engine started, by status "
                                   "(ok, timeout, error, skipped, aborted, emergency).", labels=["student", "status"])
        for (student, status), n in sorted(self.runs.items()):
            runs.add_metric([student, status], n)
        yield runs
        tokens = CounterMetricFamily("rhtui_tokens", "Tokens generated by each student since the engine started "
                                     "(every run that reported a count).", labels=["student"])
        for student, n in sorted(self.tokens.items()):
            tokens.add_metric([student], n)
        yield tokens
        seconds = HistogramMetricFamily("rhtui_run_seconds", "Seconds of each completed (ok) proposal, load "
                                        "included, on the engine's clock.", labels=["student"])
        for student, h in sorted(self.seconds.items()):
            seconds.add_metric([student], buckets=h.buckets(), sum_value=h.total)
        yield seconds
        vram = GaugeMetricFamily("rhtui_student_vram_bytes", "The student's resident VRAM as last measured (Ollama's "
                                 "/api/ps); before its first run here, the mean learned from past sessions.",
                                 labels=["student"])
        for student, b in sorted(self.student_vram.items()):
            vram.add_metric([student], b)
        yield vram
        energy = CounterMetricFamily("rhtui_energy_joules", "GPU energy of the student's runs since the engine "
                                     "started (integrated power samples); absent until a run measured power.",
                                     labels=["student"])
        for student, j in sorted(self.energy.items()):
            energy.add_metric([student], j)
        yield energy
        stops = CounterMetricFamily("rhtui_emergency_stops", "Emergency stops since the engine started (VRAM above "
                                    "the emergency line during a run, or the `e` key).")
        stops.add_metric([], self.emergency_stops)
        yield stops
        health = GaugeMetricFamily("rhtui_student_health", "Each student's health: 0 healthy, 1 degraded (failed, "
                                   "waits a back-off), 2 quarantined (failed 3 times in a row).", labels=["student"])
        for student, value in sorted(self.health.items()):
            health.add_metric([student], value)
        yield health
        info = GaugeMetricFamily("rhtui_info", "Always 1: rhtui's version and Ollama's (empty until Ollama has "
                                 "answered).", labels=["version", "ollama_version"])
        info.add_metric([self.version, self.ollama_version], 1)
        yield info

    def exposition(self) -> bytes:
        """The metrics in Prometheus' text format (what `/metrics` answers)."""
        return generate_latest(self.registry)


# -- the HTTP server ----------------------------------------------------------------------------


class MetricsServerError(Exception):
    """The metrics server could not listen; str() says where, why and what to do."""

    exit_code = 2


def _hostport(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


class MetricsServer:
    """`/metrics` (and a pointer to it at `/`) on an aiohttp app in the running event loop."""

    def __init__(self, metrics: EngineMetrics, host: str = "127.0.0.1", port: int = 0) -> None:
        self.metrics = metrics
        self.host = host
        self.port = port
        self.url = ""
        self._runner: web.AppRunner | None = None

    async def _serve_metrics(self, request: web.Request) -> web.Response:
        # the format the scraper asks for, as prometheus_client's own server does: the classic text
        # format (0.0.4, what `generate_latest` writes) by default, OpenMetrics when Prometheus asks for it
        encode, content_type = choose_encoder(request.headers.get("Accept", ""))
        return web.Response(body=encode(self.metrics.registry), headers={"Content-Type": content_type})

    async def _serve_index(self, request: web.Request) -> web.Response:
        return web.Response(text="rhtui: the Prometheus metrics are at /metrics\n")

    async def start(self) -> str:
        """Listen; return the URL of /metrics. Raises MetricsServerError (the port in use, an address
        that is not this machine's, a privileged port)."""
        app = web.Application()
        app.router.add_get("/metrics", self._serve_metrics)
        app.router.add_get("/", self._serve_index)
        runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await runner.setup()
        site = web.TCPSite(runner, self.host, self.port)
        try:
            await site.start()
        except OSError as exc:
            await runner.cleanup()
            raise MetricsServerError(self._why(exc)) from None
        self._runner = runner
        port = self.port
        for address in runner.addresses:
            if isinstance(address, tuple) and len(address) >= 2:
                port = int(address[1])
                break
        self.port = port
        self.url = f"http://{_hostport(self.host, port)}/metrics"
        return self.url

    def _why(self, exc: OSError) -> str:
        where = f"cannot serve metrics on {_hostport(self.host, self.port)}"
        fix = "choose another with --metrics-port (or metrics.port, RHTUI_METRICS__PORT)"
        if exc.errno == errno.EADDRINUSE:
            return (f"{where}: the port is in use by another program; {fix}, or stop the program that holds it "
                    f"(`ss -ltnp 'sport = :{self.port}'` shows which)")
        if exc.errno in (errno.EACCES, errno.EPERM):
            return f"{where}: permission denied (ports below 1024 need privileges); {fix}"
        if isinstance(exc, socket.gaierror) or exc.errno == errno.EADDRNOTAVAIL:
            return (f"{where}: {self.host} is not an address of this machine ({exc.strerror or exc}); "
                    "fix metrics.host (RHTUI_METRICS__HOST), or leave it out for 127.0.0.1")
        return f"{where}: {exc.strerror or exc}; {fix}"

    async def stop(self) -> None:
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()


async def start_metrics(host: str, port: int, *, version: str = __version__) -> tuple[EngineMetrics, MetricsServer]:
    """A fresh `EngineMetrics` and its server, listening (raises MetricsServerError). Subscribe the
    metrics to the engine's bus and stop the server with the engine."""
    metrics = EngineMetrics(version=version)
    server = MetricsServer(metrics, host, port)
    await server.start()
    return metrics, server
