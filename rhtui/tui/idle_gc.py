"""Full garbage collections between key presses, not during one.

CPython runs a full (oldest-generation) collection on its own once enough
objects have survived the young collections. With the dashboard's live objects
(100,000-250,000, many of them Textual's rendered lines) one takes 40-120 ms on
the event loop, and a key pressed just then waits for it: that was the whole
tail of the key latency in bench/results/ui.md. Here the young generations stay
automatic and the full collection is taken over: when CPython would first
consider one (its third threshold of young collections reached), it runs at
the first moment with no input for `idle_s`, or after `max_defer_s` whatever
happens, so memory is reclaimed as before, just not while a person is typing.

CPython's further rule (collect only once the objects new to the oldest
generation are a quarter of it) is left out on purpose: with it, cyclic
garbage (removed widgets, messages) piled up for longer and the resident size
stepped up by 10 MB over a simulated 8 hours; without it the size is flat and
the extra collections cost no measurable CPU (bench/results/ui.md). An idle
dashboard, though, reaches the count every half minute or so and each collection walks
every live object: `min_interval_s` spaces them out while allocations come at a trickle
(a flood of them is still collected at once, `flood`).

All of this reads CPython's three generations (`gc.get_threshold()[2]`, the
`generation` of a collection). CPython 3.14 replaced them with an incremental
collector of two generations, whose full collections are already split into
small increments; there, and on any other interpreter, `install()` declines and
the interpreter's own collector is left alone.
"""

from __future__ import annotations

import gc
import sys
import time
from collections.abc import Callable
from typing import Any

NEVER = 1 << 30
"""A third threshold CPython never reaches: no full collection of its own."""


def generational_gc(version: tuple[int, ...] | None = None, implementation: str | None = None) -> bool:
    """True where the collector is CPython's classic three-generation one (before 3.14)."""
    version = tuple(sys.version_info[:2]) if version is None else version
    implementation = sys.implementation.name if implementation is None else implementation
    return implementation == "cpython" and version < (3, 14)


class IdleCollector:
    """Owns the full collections of this process while installed (one app at a time)."""

    def __init__(
        self,
        wake: Callable[[], None],
        *,
        idle_s: float = 0.1,
        max_defer_s: float = 5.0,
        min_interval_s: float = 0.0,
        flood: int = 4,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.wake = wake
        """Called (from the collector's thread) when a full collection is due: arrange `step()` soon."""
        self.idle_s = idle_s
        self.max_defer_s = max_defer_s
        self.min_interval_s = min_interval_s
        """The least time between two full collections while allocations come at a trickle: an
        idle dashboard (a repaint a second, the engine polling) reaches CPython's count every
        half minute or so, and each collection walks every live object for 40-120 ms."""
        self.flood = flood
        """...unless `flood` times CPython's count piled up: then at once, so garbage made in a
        burst is bounded by what was allocated, not by the interval."""
        self.last_full = float("-inf")
        self.clock = clock
        self.last_input = float("-inf")
        self.due_since: float | None = None
        self.collections = 0
        """Full collections run here (for tests and the bench)."""
        self._saved: tuple[int, int, int] | None = None
        self._every = 10
        self._next_check = 10
        """count[2] (young-1 collections since the last full one) at which to look again."""

    @property
    def installed(self) -> bool:
        return self._saved is not None

    def install(self) -> bool:
        """Take over full collections; False (and nothing changed) if automatic GC is off
        or another collector already did, or the interpreter's collector is not CPython's
        three-generation one (see the module's docstring)."""
        if self.installed or not gc.isenabled() or not generational_gc():
            return False
        t0, t1, t2 = gc.get_threshold()
        if t2 >= NEVER:
            return False
        self._saved = (t0, t1, t2)
        self._every = max(1, t2)
        self._next_check = gc.get_count()[2] + self._every
        gc.set_threshold(t0, t1, NEVER)
        gc.callbacks.append(self._on_gc)
        return True

    def uninstall(self) -> None:
        """Give full collections back to CPython, with the thresholds it had."""
        if self._saved is None:
            return
        if self._on_gc in gc.callbacks:
            gc.callbacks.remove(self._on_gc)
        t0, t1, _ = gc.get_threshold()
        gc.set_threshold(t0, t1, self._saved[2])
        self._saved = None
        self.due_since = None

    def note_input(self) -> None:
        """A key or a mouse event arrived: hold the collection back a little."""
        self.last_input = self.clock()

    def _on_gc(self, phase: str, info: dict[str, Any]) -> None:
        # runs inside the collector, on whichever thread allocated: only note and wake
        if phase != "stop":
            return
        generation = info.get("generation")
        if generation == 2:  # a full collection, ours or anybody's (gc.collect())
            self._next_check = self._every
            self.last_full = self.clock()
            return
        if generation != 1:
            return
        count = gc.get_count()[2]
        if count < self._next_check:
            return
        now = self.clock()
        if now - self.last_full < self.min_interval_s and count < self._next_check + (self.flood - 1) * self._every:
            return  # soon after the last one, and no flood: look again at the next young collection
        if self.due_since is not None and now - self.due_since < 2 * self.max_defer_s:
            return  # already woken; a wake older than that was lost: wake again
        self.due_since = now
        self.wake()

    def step(self) -> float | None:
        """Run the due collection if input is quiet (or it waited long enough).

        Returns None when nothing is left to do, else seconds until the next try.
        """
        if self.due_since is None:
            return None
        now = self.clock()
        quiet = now - self.last_input
        waited = now - self.due_since
        if quiet < self.idle_s and waited < self.max_defer_s:
            return min(self.idle_s - quiet, self.max_defer_s - waited)
        gc.collect()
        self._next_check = self._every
        self.due_since = None
        self.collections += 1
        return None
