"""The sampler: one hardware reading at a time, what of it is ours, and the budget watch on it.

`Sampler.snapshot()` reads the probe (never two readings at once), judges VRAM from Ollama's
/api/ps when there is no NVML, and keeps the VRAM trend of everything that is *not* our
students: with preloading two of them may be resident at once, so each resident student's
memory is tracked by name (`resident`), None while its load or unload is in flight (the figure
is then not settled, and the trend skips the sample).

`BudgetWatch` turns each sample into a zone (`rhtui.engine.budget`) and says what the engine
must do: raise an alarm, enter an emergency, or leave one after the cooldown. It holds no
engine state of its own beyond the zone it last saw and the start of the calm.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Literal

from rhtui.engine.backend import BackendError, LlmBackend, LoadedModel, model_key
from rhtui.engine.budget import BudgetGuard
from rhtui.engine.clock import Clock
from rhtui.engine.config import BudgetPolicy
from rhtui.engine.hardware import HardwareProbe, HardwareSnapshot

TREND_WINDOW_S = 180.0  # engine-clock seconds of samples the VRAM trend is fitted on


@dataclass
class RunCapture:
    """What the samples saw during one student's run: its power draw (for energy) and the peak VRAM."""

    power: list[tuple[float, float]] = field(default_factory=list)
    peak_mb: float | None = None

    def energy_j(self) -> float | None:
        """Energy (J) from the (t, W) samples by the trapezoid rule."""
        if len(self.power) < 2:
            return None
        return sum((t1 - t0) * (p0 + p1) / 2 for (t0, p0), (t1, p1) in zip(self.power, self.power[1:], strict=False))


class Sampler:
    """Hardware readings, our students' share of them, and the VRAM trend of everything else."""

    def __init__(self, probe: HardwareProbe, backend: LlmBackend, clock: Clock, *, student_models: Iterable[str],
                 gpu_total_mb: float | None) -> None:
        self.probe = probe
        self.backend = backend
        self.clock = clock
        self.gpu_total_mb = gpu_total_mb
        self.keys = {model_key(m) for m in student_models}
        self.latest: HardwareSnapshot | None = None
        # (t, VRAM used by everything but our loaded students): the trend the scheduler watches is
        # other processes growing, not our loads and unloads.
        self.window: deque[tuple[float, float]] = deque(maxlen=600)
        self.resident: dict[str, float | None] = {}
        """Our students on the card now: MB each (Ollama's size_vram), None while loading or unloading."""
        # After a timed-out load Ollama may finish loading after our unload and keep the model for its
        # keep_alive: until then each sample also asks /api/ps, so that memory counts as ours, not as
        # another process's "VRAM trending up" (without NVML it asks anyway).
        self.strays_until: float | None = None
        self.capture: RunCapture | None = None
        self._lock = asyncio.Lock()

    # -- our share -------------------------------------------------------------------------

    @property
    def ours_mb(self) -> float | None:
        """VRAM our resident students hold (None while one of them is loading or unloading)."""
        if any(v is None for v in self.resident.values()):
            return None
        return sum(v or 0.0 for v in self.resident.values())

    def settling(self, student: str) -> None:
        """`student`'s load or unload is in flight: its memory is not settled."""
        self.resident[student] = None

    def settled(self, student: str, mb: float | None) -> None:
        """`student` is resident with `mb` (0 or None after its unload: gone)."""
        if mb:
            self.resident[student] = mb
        else:
            self.resident.pop(student, None)

    def watch_strays(self, seconds: float) -> None:
        self.strays_until = self.clock.monotonic() + seconds

    # -- readings --------------------------------------------------------------------------

    async def snapshot(self) -> HardwareSnapshot:
        """A fresh reading (one at a time), with VRAM from /api/ps when there is no NVML."""
        async with self._lock:
            snap = await self.probe.sample()
            listed: list[LoadedModel] | None = None
            watch_strays = self.strays_until is not None and self.clock.monotonic() < self.strays_until
            if not self.probe.has_vram or watch_strays:
                try:
                    listed = await self.backend.ps()
                except BackendError:
                    listed = None
            if not self.probe.has_vram and listed is not None:
                snap = snap.with_vram(sum(m.vram_mb or 0.0 for m in listed), self.gpu_total_mb)
            self.latest = snap
            ours = self.ours_mb
            if snap.vram_used_mb is not None and ours is not None:
                if listed is not None:  # every student model resident is ours, not only those we track
                    ours = max(ours, sum(m.vram_mb or 0.0 for m in listed if model_key(m.name) in self.keys))
                self.window.append((self.clock.monotonic(), snap.vram_used_mb - ours))
            if self.capture is not None:
                if snap.vram_used_mb is not None:
                    self.capture.peak_mb = max(self.capture.peak_mb or 0.0, snap.vram_used_mb)
                if snap.power_w is not None:
                    self.capture.power.append((self.clock.monotonic(), snap.power_w))
            return snap

    def trend_points(self) -> list[tuple[float, float]]:
        """The samples of the last TREND_WINDOW_S the VRAM trend is fitted on."""
        horizon = self.clock.monotonic() - TREND_WINDOW_S
        return [p for p in self.window if p[0] >= horizon]

    def without_ours(self, snap: HardwareSnapshot, *students: str) -> HardwareSnapshot:
        """`snap` as it will be once `students` (resident now) are unloaded: their memory counted free."""
        if snap.vram_used_mb is None:
            return snap
        mb = sum(self.resident.get(s) or 0.0 for s in students)
        return snap.with_vram(max(0.0, snap.vram_used_mb - mb), snap.vram_total_mb) if mb else snap


Action = Literal["none", "alarm", "enter", "leave"]


@dataclass(frozen=True, slots=True)
class WatchResult:
    action: Action
    level: Literal["warning", "error"] = "warning"
    message: str = ""


class BudgetWatch:
    """The emergency rule on each sample: what the engine must do, given the state it is in."""

    def __init__(self, policy: BudgetPolicy, guard: BudgetGuard, monotonic: Callable[[], float]) -> None:
        self.policy = policy
        self.guard = guard
        self.monotonic = monotonic
        self.last_zone = "ok"
        self.calm_since: float | None = None

    def reset(self) -> None:
        self.calm_since = None
        self.last_zone = "ok"

    def check(self, snap: HardwareSnapshot, *, in_emergency: bool, manual: bool, active: bool) -> WatchResult:
        """`in_emergency`: the engine is in one (`manual`: a person started it, only a person ends it);
        `active`: running or paused, where the emergency rule applies."""
        p = self.policy
        zone = self.guard.zone(snap)
        if in_emergency:
            if manual or p.cooldown_s <= 0:
                return WatchResult("none")
            if self.guard.may_resume(snap):
                now = self.monotonic()
                self.calm_since = self.calm_since if self.calm_since is not None else now
                if now - self.calm_since >= p.cooldown_s:
                    return WatchResult("leave", message=f"VRAM back under the limit for {p.cooldown_s:.0f} s")
            else:
                self.calm_since = None
            return WatchResult("none")
        if zone == "emergency" and active:
            return WatchResult("enter", message=f"VRAM above {100 * p.emergency_fraction:.0f} % of the card")
        out = WatchResult("none")
        if zone != self.last_zone and zone in ("warning", "limit") and snap.vram_used_mb is not None:
            limit = f"above the {100 * p.max_fraction:.0f} % limit"
            out = WatchResult("alarm", "warning" if zone == "warning" else "error",
                              "near the limit" if zone == "warning" else limit)
        self.last_zone = zone
        return out
