"""The session's VRAM timeline, downsampled to a fixed number of buckets for the charts. No Textual here.

`UiModel` (state.py) feeds it every hardware sample; the VRAM chart plots `points()`.
Memory stays the same however long the session runs: the buckets double in width
when they are all used, keeping the max of each merged pair so a spike is never hidden.
"""

from __future__ import annotations

TIMELINE_BUCKETS = 120


class Timeline:
    """VRAM used over the session in at most `buckets` buckets (max per bucket).

    Buckets start `width_s` seconds wide; when they are all used, pairs merge and the
    width doubles, so 8 hours cost the same memory as 5 minutes. `add` says whether
    the picture changed enough to be worth a redraw: VRAM moved by at least 1 % of the
    card, the bucket width doubled, or the line grew by STRIDE buckets.
    """

    STRIDE = 4
    """A flat line is redrawn every STRIDE new buckets (10 s at first, 8 h → about every 8 min)."""

    def __init__(self, buckets: int = TIMELINE_BUCKETS, width_s: float = 2.5) -> None:
        self._shown_value: float | None = None
        self._shown_index = 0
        self.n = buckets
        self.width_s = width_s
        self.values: list[float | None] = []
        self.total_mb: float | None = None
        self.t0: float | None = None

    def add(self, ts: float, used_mb: float | None, total_mb: float | None) -> bool:
        if self.t0 is None:
            self.t0 = ts
        changed = False
        if total_mb and total_mb != self.total_mb:
            self.total_mb = total_mb
            changed = True
        idx = int(max(0.0, ts - self.t0) // self.width_s)
        while idx >= self.n:
            self._merge()
            idx = int(max(0.0, ts - self.t0) // self.width_s)
            changed = True
        step = 0.01 * (self.total_mb or 0.0)
        while len(self.values) <= idx:
            self.values.append(None)
        if used_mb is None:
            return changed
        old = self.values[idx]
        if old is None or used_mb > old:
            self.values[idx] = used_mb
        if old is None:
            # a new bucket: worth a redraw when the value moved, or every STRIDE buckets so the
            # line keeps growing; a flat line does not replot every sample
            prev = self._shown_value
            if prev is None or abs(used_mb - prev) >= step or idx - self._shown_index >= self.STRIDE:
                changed = True
        elif used_mb - old >= step:
            changed = True
        if changed:
            self._shown_value, self._shown_index = used_mb, idx
        return changed

    def _merge(self) -> None:
        merged: list[float | None] = []
        for i in range(0, len(self.values), 2):
            pair = [v for v in self.values[i : i + 2] if v is not None]
            merged.append(max(pair) if pair else None)
        self.values = merged
        self.width_s *= 2
        self._shown_index //= 2

    def points(self) -> tuple[list[float], list[float]]:
        """(minutes since start, MB) for the buckets that have a value."""
        xs: list[float] = []
        ys: list[float] = []
        for i, v in enumerate(self.values):
            if v is not None:
                xs.append((i + 0.5) * self.width_s / 60.0)
                ys.append(v)
        return xs, ys

    @property
    def span_min(self) -> float:
        return len(self.values) * self.width_s / 60.0
