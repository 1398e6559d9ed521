"""What goes wrong: the scenario's fault rates, explicit injections for tests, server-down windows.

Random faults come from the scenario's ``[faults]`` rates and a RNG derived from the world's
seed and the request number, so a run is reproducible. Explicit injections
(``world.inject("stall", model="rh-beta")``) are taken first and always apply, even with
``faults_enabled`` off; the switch only silences the scenario's rates and its
``server_down`` windows.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

from .catalog import full_name
from .scenario import Scenario

__all__ = ["FAULT_KINDS", "FaultBook", "FaultPlan"]

FAULT_KINDS = ("http_500", "stall", "disconnect", "malformed", "oom")
_HTTP_500_TEXTS = (
    "llama runner process has terminated: exit status 2",
    "an error was encountered while running the model: unexpected EOF",
)


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


@dataclass
class _Injection:
    kind: str
    model: str | None
    count: int


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

    # -- injections -------------------------------------------------------------------------

    def inject(self, kind: str, model: str | None = None, count: int = 1) -> None:
        if kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault kind {kind!r}; one of {', '.join(FAULT_KINDS)}")
        if count < 1:
            raise ValueError("count must be >= 1")
        self._injections.append(_Injection(kind, full_name(model) if model else None, count))

    def clear(self) -> None:
        self._injections.clear()

    def pending(self) -> list[tuple[str, str | None, int]]:
        return [(i.kind, i.model, i.count) for i in self._injections]

    def _take(self, kind: str, model: str) -> bool:
        for inj in self._injections:
            if inj.kind == kind and (inj.model is None or inj.model.lower() == model.lower()):
                inj.count -= 1
                if inj.count == 0:
                    self._injections.remove(inj)
                return True
        return False

    def plan(self, model: str, *, load_only: bool = False) -> FaultPlan:
        """Decide what goes wrong with one generate request. A load-only request (empty prompt)
        can only meet http_500 and oom; stream faults wait for a request that streams."""
        self._requests += 1
        model = full_name(model)
        rng = random.Random(f"{self.seed}:faults:{self._requests}")
        f = self.scenario.faults
        u = [rng.random() for _ in range(6)]
        on = self.enabled
        plan = FaultPlan()
        if self._take("http_500", model) or (on and u[0] < f.http_500_rate):
            plan.http_500 = rng.choice(_HTTP_500_TEXTS)
            return plan
        if self._take("oom", model):
            plan.oom, plan.oom_forced = self._oom_text(rng), True
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
        return plan

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
