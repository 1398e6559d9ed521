"""Where a model runs: Ollama's scheduler (server/sched.go) imitated, without state or time.

`SimWorld` holds the runners and the clock, and the order of requests (one load at a time:
`SimWorld.acquire`); this module holds the rules it applies to them:

- a `Runner` holds weights + KV cache for ``num_ctx x num_parallel`` tokens (Ollama gives each of
  its ``OLLAMA_NUM_PARALLEL`` slots a full context); `num_parallel_from_env` reads that variable
  as Ollama does;
- keep_alive (`parse_keep_alive`): a number of seconds, a duration string ("5m", "30s",
  "1h30m"), 0 (unload right after the request) or a negative value (forever);
- at most ``ollama.max_loaded_models`` runners are resident; to make room (count or VRAM) a
  runner is picked as Ollama's ``findRunnerToUnload`` picks it (`unload_order`): runners sorted
  by session duration (keep_alive), shortest first (forever last), ties by model path; the first
  *idle* one goes; when none is idle, the first (busy) one is told to unload when its requests
  finish and the request waits for an unload (`WaitForUnload`);
- a model that does not fit even with nothing else loaded is partly offloaded to the CPU
  (whole layers on the GPU, the rest in system RAM) and decodes much slower; if system RAM
  cannot hold the rest, the load fails with Ollama's out-of-memory text (`place`).
"""

from __future__ import annotations

import logging
import math
import os
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import NamedTuple

from .errors import SimError

__all__ = [
    "FOREVER",
    "GRAPH_MB",
    "NUM_PARALLEL_ENV",
    "N_LAYERS",
    "RUNNER_RAM_MB",
    "Freeing",
    "Placement",
    "Runner",
    "WaitForUnload",
    "eviction_detail",
    "is_idle",
    "num_parallel_from_env",
    "parse_keep_alive",
    "place",
    "unload_order",
]

log = logging.getLogger(__name__)

N_LAYERS = 33
GRAPH_MB = 300.0
"""Compute-graph memory that must stay on the GPU for any layer to be offloaded there."""
RUNNER_RAM_MB = 250.0
"""Host RAM of one runner process besides offloaded layers."""
FOREVER = math.inf
"""A keep_alive (or an end of time) that never comes."""
NUM_PARALLEL_ENV = "OLLAMA_NUM_PARALLEL"
_DURATION_RE = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h)")
_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}


def parse_keep_alive(value: object, default_s: float) -> float:
    """Ollama's keep_alive in seconds (``math.inf`` = forever). SimError(400) when invalid.

    None = the default; a number = seconds; a string = a number of seconds or a Go duration
    ("5m", "30s", "1h30m"); 0 = unload after the request; negative = forever."""
    if value is None or value == "":
        return FOREVER if default_s < 0 else float(default_s)
    if isinstance(value, bool):
        raise SimError(400, f"invalid keep_alive {value!r}")
    if isinstance(value, int | float):
        return FOREVER if value < 0 else float(value)
    text = str(value).strip()
    try:
        f = float(text)
        return FOREVER if f < 0 else f
    except ValueError:
        pass
    sign = -1.0 if text.startswith("-") else 1.0
    body = text.lstrip("+-")
    parts = _DURATION_RE.findall(body)
    if not parts or "".join(n + u for n, u in parts) != body:
        raise SimError(400, f'time: invalid duration "{text}"')
    seconds = sum(float(n) * _UNITS[u] for n, u in parts) * sign
    return FOREVER if seconds < 0 else seconds


def num_parallel_from_env(default: int, environ: Mapping[str, str] | None = None) -> int:
    """Parallel slots per runner: ``OLLAMA_NUM_PARALLEL`` when set, else `default`.

    Read like Ollama's envconfig (``Uint("OLLAMA_NUM_PARALLEL", 1)``: spaces and quotes trimmed,
    an unparsable value warned about and replaced by the default) and clamped to at least 1 as
    server/sched.go's ``load`` does (``max(int(envconfig.NumParallel()), 1)``)."""
    env = os.environ if environ is None else environ
    text = env.get(NUM_PARALLEL_ENV, "").strip().strip("\"'")
    if not text:
        return max(1, int(default))
    if not (text.isascii() and text.isdigit()):
        log.warning("invalid environment variable, using default: %s=%r, default %d",
                    NUM_PARALLEL_ENV, text, default)
        return max(1, int(default))
    return max(1, int(text))


@dataclass(eq=False)
class Runner:
    """A loaded model (an ``ollama runner`` process). Times are elapsed simulated seconds."""

    name: str
    digest: str
    num_ctx: int
    weights_mb: float
    size_mb: float
    """Resident memory, GPU + CPU (what /api/ps calls size)."""
    gpu_mb: float
    """The part on the GPU (/api/ps size_vram)."""
    pid: int
    loaded_at: float
    """When the load started (memory is held from then)."""
    ready_at: float
    last_used: float
    keep_alive: float
    active: int = 0
    expires_at: float | None = None
    """None while busy or kept forever."""
    granted_at: float = 0.0
    """When the latest request was handed this runner (for its load_duration)."""
    unload_when_idle: str | None = None
    """Set when an unload was asked for while busy (the reason); it happens at release."""
    model_path: str = ""
    """The weights' blob path (Ollama's runnerRef.modelPath): the tie-break of the eviction order."""
    evict_for: str | None = None
    """Set when this busy runner was picked to make room (the model waiting); evicted at release.
    A request that joins it meanwhile does not cancel this (in Ollama, one passing keep_alive would)."""
    copy_s: float = 0.0
    """How long its weights took to reach memory: the last part of its load, ending at ready_at
    (the runner's start, ``disk.load_init_s``, comes first)."""
    copy_gbps: float = 0.0
    """GB/s its weight copy wrote into VRAM meanwhile: memory bandwidth taken from decoding."""

    @property
    def cpu_mb(self) -> float:
        return self.size_mb - self.gpu_mb

    @property
    def gpu_fraction(self) -> float:
        return self.gpu_mb / self.size_mb if self.size_mb else 1.0

    def copying(self, now: float) -> bool:
        """Its weights are on their way to the card at `now` (the copy part of its load)."""
        return self.ready_at - self.copy_s <= now < self.ready_at


class Freeing(NamedTuple):
    """Memory of an unloaded runner that its process still holds while it shuts down."""

    gpu_mb: float
    ram_mb: float
    until: float
    """Elapsed simulated seconds at which the memory is free."""


class Placement(NamedTuple):
    """Room for a new runner: evict `victims` (idle) now, put `gpu_mb` of it on the GPU (the rest
    on the CPU), and start loading after `wait_s` (memory of runners still shutting down)."""

    victims: list[Runner]
    gpu_mb: float
    wait_s: float


class WaitForUnload(NamedTuple):
    """No room yet: evict `victims` (idle) now, then wait until the busy `runner` is unloaded."""

    victims: list[Runner]
    runner: Runner


def is_idle(r: Runner, now: float) -> bool:
    """Ollama's refCount 0. A loading runner holds its request's reference (and its lock)
    until the load ends, so it is never idle before it is ready."""
    return r.active == 0 and r.ready_at <= now


def unload_order(runners: Sequence[Runner], now: float) -> list[Runner]:
    """The order in which runners are picked to make room, as in Ollama's
    ``Scheduler.findRunnerToUnload`` (server/sched.go).

    There, the loaded runners are sorted by ``ByDurationAndName``: session duration
    (keep_alive) ascending, compared as uint64 so that a negative duration (forever) sorts
    last, ties broken by the model path in lexical order; the first runner with refCount 0
    (idle) is unloaded; when none is idle, the first one in that order (busy) gets its session
    duration set to 0, so it unloads as soon as its requests finish, and the request waits
    for an unload. The scheduler picks one runner at a time and looks again after each
    unload, so the picks are every idle runner in that order, then the first busy one.
    (Here every negative keep_alive is "forever"; the name breaks what is left of a tie.)"""
    ordered = sorted(runners, key=lambda r: (r.keep_alive, r.model_path, r.name))
    idle = [r for r in ordered if is_idle(r, now)]
    return idle + [r for r in ordered if not is_idle(r, now)]


def eviction_detail(r: Runner, for_model: str, *, busy: bool = False) -> str:
    """The load-log line of evicting `r` to make room for `for_model`."""
    if busy:
        why = "busy when picked, unloaded once idle"
    else:
        why = "idle, " + ("keep_alive forever" if math.isinf(r.keep_alive) else f"keep_alive {r.keep_alive:g} s")
    return f"to make room for {for_model} (findRunnerToUnload: {why})"


def place(
    need: float,
    runners: Sequence[Runner],
    *,
    now: float,
    card_free_mb: float,
    freeing: Sequence[Freeing],
    max_loaded: int,
    unload_s: float,
    ram_free_mb: Callable[[], float],
) -> Placement | WaitForUnload | str:
    """Room for a new runner of `need` MB among the loaded `runners`; a str is Ollama's OOM text.

    `card_free_mb`: VRAM the card has for runners (total less the baseline and other processes);
    `freeing`: memory of runners still shutting down; `unload_s`: how long a runner takes to
    shut down; `ram_free_mb`: system RAM free now (asked only when part of the model must go to
    the CPU)."""
    freeing_mb = sum(f.gpu_mb for f in freeing)
    free = card_free_mb - sum(r.gpu_mb for r in runners) - freeing_mb
    order = unload_order(runners, now)
    victims: list[Runner] = []
    # Memory of runners still shutting down counts as room: Ollama looks again only once an
    # unload has completed, so nothing more is evicted for it (the load below waits for it).
    while len(runners) - len(victims) >= max_loaded or need > free + freeing_mb + sum(v.gpu_mb for v in victims):
        if len(victims) == len(order):
            break
        pick = order[len(victims)]
        if not is_idle(pick, now):
            return WaitForUnload(victims, pick)
        victims.append(pick)
    avail = free + sum(v.gpu_mb for v in victims)
    # Memory of a runner that is still shutting down is not free yet: wait for it if it helps.
    wait = unload_s if victims else 0.0
    if need <= avail:
        return Placement(victims, need, wait)
    if freeing_mb > 0:
        wait = max([wait] + [f.until - now for f in freeing if f.gpu_mb > 0])
        avail += freeing_mb
        if need <= avail:
            return Placement(victims, need, wait)
    per_layer = need / N_LAYERS
    layers = int(max(0.0, avail - GRAPH_MB) // per_layer)
    gpu_mb = layers * per_layer if layers > 0 else 0.0
    ram_free = ram_free_mb()
    cpu_need = need - gpu_mb + RUNNER_RAM_MB
    if cpu_need > ram_free:
        return (
            f"model requires more system memory ({cpu_need / 1024:.1f} GiB) than is available "
            f"({max(0.0, ram_free) / 1024:.1f} GiB)"
        )
    return Placement(victims, gpu_mb, wait)
