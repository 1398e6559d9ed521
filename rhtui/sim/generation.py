"""One generate request against the world: load, prompt evaluation, paced decoding."""

from __future__ import annotations

import math
from collections.abc import AsyncGenerator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .catalog import SimModel
from .faults import FaultPlan

if TYPE_CHECKING:
    from .placement import Runner
    from .world import SimWorld

__all__ = ["PROMPT_SPEEDUP", "Generation"]

PROMPT_SPEEDUP = 20.0
"""Prompt evaluation runs this many times faster than decoding."""


@dataclass
class Generation:
    """``async with world.generation(...) as g`` acquires a runner (loading the model if needed);
    ``g.stream()`` yields the text in batches paced in simulated time; on exit the runner is
    released with the request's keep_alive, also when cancelled mid-stream (the model stays
    loaded, like Ollama). Durations are simulated seconds; `metrics_ns()` gives Ollama's fields.
    """

    world: SimWorld
    model: SimModel
    prompt: str
    system: str | None
    options: dict[str, Any]
    keep_alive: float
    faults: FaultPlan
    format: Any = None
    """Ollama's structured output: "json", a JSON schema (a dict), or None for plain text."""
    runner: Runner | None = None
    pieces: list[str] = field(default_factory=list)
    done_reason: str = "stop"
    t_start: float = 0.0
    load_s: float = 0.0
    prompt_eval_count: int = 0
    prompt_eval_s: float = 0.0
    eval_count: int = 0
    eval_s: float = 0.0
    total_s: float = 0.0
    _sid: int | None = None

    async def __aenter__(self) -> Generation:
        w = self.world
        self.t_start = w.elapsed()
        num_ctx = int(self.options.get("num_ctx", self.model.num_ctx))
        self.runner = r = await w.acquire(self.model, num_ctx, self.keep_alive, self.faults)
        self.load_s = max(0.0, r.granted_at - self.t_start)
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._end_stream()
        if self.runner is not None:
            self.world.release(self.runner, self.keep_alive)
            self.runner = None

    def _end_stream(self) -> None:
        if self._sid is not None:
            self.world.streams.pop(self._sid, None)
            self._sid = None

    @property
    def n_tokens(self) -> int:
        return len(self.pieces)

    @property
    def fraction_sent(self) -> float:
        return self.eval_count / self.n_tokens if self.pieces else 0.0

    def count_prompt_tokens(self) -> int:
        """Tokens Ollama would evaluate: system prompt + prompt (about 4 characters a token) + template."""
        system = self.system if self.system is not None else self.model.system
        return math.ceil(len(system) / 4) + math.ceil(len(self.prompt) / 4) + 8

    async def stream(self, chunk_real_s: float = 0.05) -> AsyncGenerator[str, None]:
        """Yield the response text in batches, at most one batch per `chunk_real_s` of real time."""
        w, r = self.world, self.runner
        if r is None:
            raise RuntimeError("enter the generation (`async with`) before streaming")
        system = self.system if self.system is not None else self.model.system
        self.pieces, self.done_reason = w.plan_tokens(self.model, self.options, self.prompt, system=system,
                                                      format=self.format)
        self._sid = w.add_stream(r)
        self.prompt_eval_count = self.count_prompt_tokens()
        self.prompt_eval_s = self.prompt_eval_count / (PROMPT_SPEEDUP * w.decode_rate(r))
        await w.clock.sleep(self.prompt_eval_s)
        w.streams[self._sid].phase = "decode"
        tick = max(1e-6, chunk_real_s * w.clock.speed)
        n, produced, sent = len(self.pieces), 0.0, 0
        t_prev = w.elapsed()
        while sent < n:
            rate = w.decode_rate(r)
            left = (n - produced) / rate
            step = min(tick, left)
            await w.clock.sleep(step)
            now = w.elapsed()
            dt, t_prev = max(0.0, now - t_prev), now
            if step >= left or produced + rate * dt >= n - 1e-9:
                self.eval_s += left  # the last token came before (or as) we woke up
                produced = float(n)
            else:
                self.eval_s += dt
                produced += rate * dt
            k = n if produced >= n else int(produced)
            if k > sent:
                self.eval_count = k
                yield "".join(self.pieces[sent:k])
                sent = k
        self._end_stream()
        self.total_s = w.elapsed() - self.t_start

    def metrics_ns(self) -> dict[str, int]:
        """Ollama's final-message durations (nanoseconds of simulated time) and counts."""
        total = self.total_s or (self.world.elapsed() - self.t_start)
        return {
            "total_duration": int(total * 1e9),
            "load_duration": int(self.load_s * 1e9),
            "prompt_eval_count": self.prompt_eval_count,
            "prompt_eval_duration": int(self.prompt_eval_s * 1e9),
            "eval_count": self.eval_count,
            "eval_duration": int(self.eval_s * 1e9),
        }
