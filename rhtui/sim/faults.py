"""What goes wrong: the scenario's fault rates, explicit injections for tests, server-down windows.

Random faults come from the scenario's ``[faults]`` rates and a RNG derived from the world's
seed and the request number, so a run is reproducible. Explicit injections
(``world.inject("stall", model="rh-beta")``) are taken first and always apply, even with
``faults_enabled`` off; the switch only silences the scenario's rates and its
``server_down`` windows.

The kinds, each as a client meets it from a real Ollama (texts from Ollama's source):

- ``http_500``: HTTP 500 before any byte, with a runner's error text;
- ``load_error``: HTTP 500 for a model file the runner cannot load ("error loading model: key
  not found in model: ..."), which is not a missing model (that is a 404);
- ``busy``: HTTP 503 ``{"error": "server busy, please try again.  maximum pending requests
  exceeded"}`` (server/sched.go ErrMaxQueue, answered by routes.go handleScheduleError);
- ``oom``: Ollama's out-of-memory error at load (HTTP 500);
- ``stall``, ``disconnect``, ``malformed``: the stream stops, is cut, carries a line that is not JSON;
- ``stream_error``, ``stream_oom``: an ``{"error": "..."}`` line in the middle of a stream that
  began with 200, after which the stream ends (routes.go streamResponse), as when the runner
  fails while generating;
- ``malformed_json``: a request that asked for structured output (``format``) gets an answer that
  is not valid JSON (cut short, or wrapped in prose), streamed and finished normally, so that a
  client's retry path can be tested. Only such requests take it (`FaultBook.malformed_json`);
  the scenario's ``malformed_json_rate`` (0 when it has none) draws it at random.

``FaultBook.inject(kind, model, count, text=...)`` replaces the kind's text (http_500,
load_error, oom, stream_error, stream_oom).
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

from .catalog import full_name
from .scenario import Scenario

__all__ = ["FAULT_KINDS", "FaultBook", "FaultPlan"]

FAULT_KINDS = ("http_500", "stall", "disconnect", "malformed", "oom", "busy", "load_error", "stream_error",
               "stream_oom", "malformed_json")
_HTTP_500_TEXTS = (
    "llama runner process has terminated: exit status 2",
    "an error was encountered while running the model: unexpected EOF",
)
BUSY_TEXT = "server busy, please try again.  maximum pending requests exceeded"  # server/sched.go ErrMaxQueue
LOAD_ERROR_TEXT = (
    "llama runner process has terminated: error loading model: key not found in model: llama.attention.head_count"
)
STREAM_ERROR_TEXT = (  # llm/llama_server.go, a completion that fails while the stream is open
    "model runner has unexpectedly stopped, this may be due to resource limitations or an internal error, "
    "check ollama server logs for details"
)
STREAM_OOM_TEXT = "an error was encountered while running the model: CUDA error: out of memory"


@dataclass
class FaultPlan:
    """What goes wrong with one request. ``*_at``: fraction of the proposal sent before it hits."""

    http_500: str | None = None
    oom: str | None = None
    oom_forced: bool = False
    """An injected OOM: fails even when the model is already loaded (its runner crashes)."""
    stall_at: float | None = None
    disconnect_at: float | None = None
    malformed_at: float | None = None
    busy: str | None = None
    """HTTP 503: Ollama's queue is full; the request is refused before it is scheduled."""
    stream_error: str | None = None
    stream_error_at: float | None = None
    """An ``{"error": stream_error}`` line once this fraction of the proposal is sent; the stream ends."""


@dataclass
class _Injection:
    kind: str
    model: str | None
    count: int
    text: str | None = None


@dataclass
class _Window:
    start: float
    end: float
    scenario: bool = False


class FaultBook:
    def __init__(self, scenario: Scenario, seed: int) -> None:
        self.scenario = scenario
        self.seed = seed
        self.enabled = True
        self._injections: list[_Injection] = []
        self._down = [_Window(w.at_s, w.at_s + w.for_s, scenario=True) for w in scenario.faults.server_down]
        self._requests = 0
        self._json_requests = 0

    # -- injections -------------------------------------------------------------------------

    def inject(self, kind: str, model: str | None = None, count: int = 1, *, text: str | None = None) -> None:
        if kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault kind {kind!r}; one of {', '.join(FAULT_KINDS)}")
        if count < 1:
            raise ValueError("count must be >= 1")
        self._injections.append(_Injection(kind, full_name(model) if model else None, count, text))

    def clear(self) -> None:
        self._injections.clear()

    def pending(self) -> list[tuple[str, str | None, int]]:
        return [(i.kind, i.model, i.count) for i in self._injections]

    def _take(self, kind: str, model: str) -> _Injection | None:
        for inj in self._injections:
            if inj.kind == kind and (inj.model is None or inj.model.lower() == model.lower()):
                inj.count -= 1
                if inj.count == 0:
                    self._injections.remove(inj)
                return inj
        return None

    def plan(self, model: str, *, load_only: bool = False) -> FaultPlan:
        """Decide what goes wrong with one generate request. A load-only request (empty prompt)
        can only meet busy, http_500, load_error and oom; stream faults wait for a request that streams."""
        self._requests += 1
        model = full_name(model)
        rng = random.Random(f"{self.seed}:faults:{self._requests}")
        f = self.scenario.faults
        u = [rng.random() for _ in range(6)]
        on = self.enabled
        plan = FaultPlan()
        if inj := self._take("busy", model):
            plan.busy = inj.text or BUSY_TEXT
            return plan
        if inj := self._take("load_error", model):
            plan.http_500 = inj.text or LOAD_ERROR_TEXT
            return plan
        if (inj := self._take("http_500", model)) or (on and u[0] < f.http_500_rate):
            plan.http_500 = (inj.text if inj else None) or rng.choice(_HTTP_500_TEXTS)
            return plan
        if inj := self._take("oom", model):
            plan.oom, plan.oom_forced = inj.text or self._oom_text(rng), True
        elif on and u[1] < f.oom_error_rate:
            plan.oom = self._oom_text(rng)
        if load_only:
            return plan
        at = 0.1 + 0.8 * u[5]
        for kind, attr, rate, ui in (
            ("stall", "stall_at", f.stall_rate, u[2]),
            ("disconnect", "disconnect_at", f.disconnect_rate, u[3]),
            ("malformed", "malformed_at", f.malformed_chunk_rate, u[4]),
        ):
            if self._take(kind, model):
                setattr(plan, attr, 0.0)  # right after the first chunk
            elif on and ui < rate:
                setattr(plan, attr, at)
        for kind, default in (("stream_oom", STREAM_OOM_TEXT), ("stream_error", STREAM_ERROR_TEXT)):
            if plan.stream_error is None and (inj := self._take(kind, model)):
                plan.stream_error, plan.stream_error_at = inj.text or default, 0.0
        return plan

    def malformed_json(self, model: str) -> bool:
        """Whether the structured answer (``format``) now asked of `model` comes out as invalid
        JSON: an injection, else the scenario's ``malformed_json_rate``, drawn from its own RNG
        so that the other kinds' draws stay as they were."""
        self._json_requests += 1
        if self._take("malformed_json", full_name(model)):
            return True
        rate = float(getattr(self.scenario.faults, "malformed_json_rate", 0.0))
        return self.enabled and rate > 0 and random.Random(f"{self.seed}:json:{self._json_requests}").random() < rate

    def _oom_text(self, rng: random.Random) -> str:
        if rng.random() < 0.5:
            return "llama runner process has terminated: CUDA error: out of memory"
        gib = self.scenario.host.ram_total_mb * 0.9 / 1024
        return f"model requires more system memory ({gib + 1.3:.1f} GiB) than is available ({gib:.1f} GiB)"

    # -- server down ------------------------------------------------------------------------

    def set_down(self, now: float, for_s: float | None) -> None:
        self._down.append(_Window(now, math.inf if for_s is None else now + for_s))

    def clear_down(self, now: float) -> None:
        for w in self._down:
            if w.start <= now < w.end:
                w.end = now

    def _windows(self) -> list[_Window]:
        return [w for w in self._down if self.enabled or not w.scenario]

    def down(self, now: float) -> bool:
        return any(w.start <= now < w.end for w in self._windows())

    def next_change(self, now: float) -> float | None:
        times = [t for w in self._windows() for t in (w.start, w.end) if now < t < math.inf]
        return min(times) if times else None
