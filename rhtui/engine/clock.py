"""Clocks. The engine never reads time directly: a clock is passed in.

`SystemClock` is real time. `ScaledClock` runs `speed` times faster than real
time (the simulator and the demo use it, so a 60 s timeout takes 3 s at 20x).
`ManualClock` is for tests: time moves only when the test says so.
"""

from __future__ import annotations

import asyncio
import time
from typing import Protocol


class Clock(Protocol):
    speed: float

    def now(self) -> float:
        """Seconds since the epoch, on this clock's time line."""

    def monotonic(self) -> float:
        """Seconds on a monotonic time line (for durations and deadlines)."""

    async def sleep(self, seconds: float) -> None:
        """Sleep for `seconds` of this clock's time."""


class SystemClock:
    speed = 1.0

    def now(self) -> float:
        return time.time()

    def monotonic(self) -> float:
        return time.monotonic()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(max(0.0, seconds))


class ScaledClock:
    """Real time multiplied by `speed`, anchored at the moment it was made."""

    def __init__(self, speed: float = 1.0, *, epoch: float | None = None) -> None:
        if speed <= 0:
            raise ValueError("speed must be > 0")
        self.speed = float(speed)
        self._real0 = time.monotonic()
        self._epoch0 = time.time() if epoch is None else epoch

    def monotonic(self) -> float:
        return (time.monotonic() - self._real0) * self.speed

    def now(self) -> float:
        return self._epoch0 + self.monotonic()

    def to_real(self, seconds: float) -> float:
        return seconds / self.speed

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(max(0.0, seconds) / self.speed)


class ManualClock:
    """A clock for tests: `advance()` moves it; `sleep()` advances it at once."""

    def __init__(self, start: float = 1_700_000_000.0) -> None:
        self.speed = 1.0
        self._t = start
        self._start = start

    def now(self) -> float:
        return self._t

    def monotonic(self) -> float:
        return self._t - self._start

    def advance(self, seconds: float) -> None:
        self._t += seconds

    async def sleep(self, seconds: float) -> None:
        self._t += max(0.0, seconds)
        await asyncio.sleep(0)
