"""The simulated world: one GPU, its host, and an Ollama server's model registry and runners.

All arithmetic is in simulated seconds of the given clock (`rhtui.engine.clock`), measured
from the moment the world was made (``world.elapsed()``). `SimWorld` holds the state (runners,
memory, other processes' VRAM, faults) and moves it through time; where a model goes and which
runner makes room for it follow Ollama's scheduler, imitated in `rhtui.sim.placement`. Besides:

- a load takes ``disk.load_init_s`` (the runner starts; its memory is held from here), then
  copies the weights: read from disk at ``disk.read_gbps`` while the GPU part crosses PCIe at
  ``pcie.gbps``, so ``weights / min(read_gbps, pcie.gbps)`` seconds for a model fully on the GPU
  (`copy_s`); meanwhile the copy writes that many GB/s into VRAM;
- one load at a time, as Ollama's scheduler (server/sched.go): a request that a loaded runner
  can serve gets it at once; any other waits its turn in a queue (`acquire`); a request that
  is cancelled while its model loads aborts that load;
- num_parallel comes from the scenario (``[ollama] num_parallel``, default 1 like current
  Ollama) unless ``OLLAMA_NUM_PARALLEL`` is set in this process's environment; a student's
  measured ``resident_mb`` is for one slot;
- keep_alive: default ``ollama.keep_alive_s``; a request may pass its own (see
  `rhtui.sim.placement.parse_keep_alive`);
- decode is memory-bound: one stream runs at ``bandwidth * decode_efficiency / weights``
  tokens/s; 2+ concurrent streams share ``concurrent_gain`` x one stream's rate; a weight copy
  in progress takes the GB/s it writes out of the memory bandwidth (`decode_rate`); prompt
  evaluation runs 20x faster.

Lazy by design: expiry, unload completion and VRAM of other processes are functions of time,
evaluated whenever the world is looked at (`tick()`), so nothing polls in the background.
``load_log`` records every load, unload, eviction, expiry, offload and OOM; `stats()` counts
loads, seconds loading, loads overlapping a decode and the peak VRAM of the card.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import random
from collections.abc import Callable, Iterator, MutableMapping
from dataclasses import dataclass
from typing import Any, NamedTuple

from rhtui.engine.clock import Clock

from .catalog import SimModel, full_name, normalize_parameters
from .errors import SimError
from .faults import FaultBook, FaultPlan
from .generation import Generation
from .placement import (
    FOREVER,
    RUNNER_RAM_MB,
    Freeing,
    Placement,
    Runner,
    WaitForUnload,
    eviction_detail,
    is_idle,
    num_parallel_from_env,
    parse_keep_alive,
    place,
)
from .registry import ModelRegistry
from .scenario import Scenario
from .text import (
    END_MARKER,
    answer_quality,
    cut_at_stop,
    json_text,
    malform_json,
    proposal_text,
    read_prompt,
    sprinkle_hostile,
    tokenize,
)

__all__ = ["LogEntry", "SimWorld", "WorldStats"]


class LogEntry(NamedTuple):
    """One line of ``world.load_log``."""

    ts: float
    """Simulated seconds since the world started."""
    action: str
    """load | unload | evict | expire | offload | oom"""
    model: str
    detail: str


@dataclass
class _External:
    start: float
    end: float
    mb: float
    scenario: bool = False


class _Stream:
    """One generate request's stream; its phase is "prompt" or "decode". A change of phase is
    first noted in the world's ledger (what ran until now), through `note`."""

    __slots__ = ("_note", "_phase", "runner")

    def __init__(self, runner: Runner, note: Callable[[], None], phase: str = "prompt") -> None:
        self.runner = runner
        self._note = note
        self._phase = phase

    @property
    def phase(self) -> str:
        return self._phase

    @phase.setter
    def phase(self, value: str) -> None:
        self._note()
        self._phase = value


class _StreamTable(MutableMapping[int, _Stream]):
    """``world.streams``: a dict that notes the world's ledger before any stream comes or goes,
    so the seconds a load overlapped a decode are exact, not sampled."""

    def __init__(self, note: Callable[[], None]) -> None:
        self._note = note
        self._d: dict[int, _Stream] = {}

    def __getitem__(self, key: int) -> _Stream:
        return self._d[key]

    def __setitem__(self, key: int, value: _Stream) -> None:
        self._note()
        self._d[key] = value

    def __delitem__(self, key: int) -> None:
        self._note()
        del self._d[key]

    def __iter__(self) -> Iterator[int]:
        return iter(self._d)

    def __len__(self) -> int:
        return len(self._d)


@dataclass(eq=False)
class _LoadRecord:
    """One load, kept after its runner is gone: for `SimWorld.stats`."""

    runner: Runner
    cut_at: float | None = None
    """When the load was aborted (its request cancelled), if it was."""
    held_until: float = FOREVER
    """When its memory was free again (the runner unloaded and shut down)."""

    @property
    def start(self) -> float:
        return self.runner.loaded_at

    @property
    def end(self) -> float:
        ready = self.runner.ready_at
        return ready if self.cut_at is None else min(ready, self.cut_at)


@dataclass(frozen=True)
class WorldStats:
    """What loading cost since the world started (``world.stats()``), in simulated seconds."""

    loads: int
    """Loads started (every ``load`` line of the load log; an aborted one too)."""
    loading_s: float
    """Seconds spent loading, summed over the loads (one at a time, so never overlapping)."""
    load_decode_overlap_s: float
    """Seconds during which a load was in progress while a stream was decoding."""
    peak_vram_mb: float
    """The most VRAM used on the card at any moment: models, baseline and other processes
    (what NVML would have shown, so never more than the card has)."""
    vram_total_mb: float

    @property
    def peak_vram_fraction(self) -> float:
        """Peak VRAM over the card's size: above the budget's max_fraction means over budget."""
        return self.peak_vram_mb / self.vram_total_mb


class SimWorld:
    """State of the card and of Ollama, in simulated time (see the module docstring)."""

    def __init__(
        self,
        scenario: Scenario,
        clock: Clock,
        seed: int = 0,
        *,
        hostile_text: bool = False,
        faults_enabled: bool = True,
        num_parallel: int | None = None,
    ) -> None:
        self.scenario = scenario
        # Parallel slots per runner: the argument, else OLLAMA_NUM_PARALLEL, else the scenario's.
        self.num_parallel = (max(1, int(num_parallel)) if num_parallel is not None
                             else num_parallel_from_env(scenario.ollama.num_parallel))
        self.clock = clock
        self.seed = seed
        self.hostile_text = hostile_text
        self.create_requests: list[dict[str, Any]] = []
        self.load_log: list[LogEntry] = []
        self._t0 = clock.monotonic()
        self.registry = ModelRegistry(scenario, clock.now)
        self.fault_book = FaultBook(scenario, seed)
        self.fault_book.enabled = faults_enabled
        self._runners: dict[str, Runner] = {}
        self._freeing: list[Freeing] = []  # memory of unloaded runners still shutting down
        self._external = [_External(e.at_s, e.at_s + e.for_s, e.mb, scenario=True) for e in scenario.external]
        self.streams = _StreamTable(self._note)
        self._next_id = 1
        self._next_pid = 41000
        self._gen_count: dict[str, int] = {}
        self._unloads = 0  # runners unloaded so far: a request waiting for an eviction watches it
        self._pending: list[object] = []  # requests waiting for the scheduler, first = the one it serves
        self._unloaded_until = 0.0  # when the memory of the latest unloaded runner is free again
        self._loads: dict[Runner, _LoadRecord] = {}  # every load, in order
        self._external_past: list[_External] = []  # cleared windows of other processes' VRAM, as they were
        self._overlap_s = 0.0  # seconds a load overlapped a decode, up to _noted_at
        self._noted_at = 0.0
        self._changed: asyncio.Event | None = None
        self._temp_c = 34.0
        self._temp_ts = 0.0

    @property
    def faults_enabled(self) -> bool:
        """Random faults from the scenario's rates and its server_down windows (injections always apply)."""
        return self.fault_book.enabled

    @faults_enabled.setter
    def faults_enabled(self, on: bool) -> None:
        self.fault_book.enabled = on
        self._signal()

    # -- time ---------------------------------------------------------------------------------

    def elapsed(self) -> float:
        """Simulated seconds since the world started."""
        return self.clock.monotonic() - self._t0

    def epoch(self, elapsed: float) -> float:
        """Epoch seconds (on the clock's time line) of an elapsed-time instant."""
        return self.clock.now() + (elapsed - self.elapsed())

    def _log(self, ts: float, action: str, model: str, detail: str = "") -> None:
        self.load_log.append(LogEntry(ts, action, model, detail))

    def _signal(self) -> None:
        if self._changed is not None:
            self._changed.set()
        self._changed = asyncio.Event()

    async def wait_changed(self, sim_timeout: float | None = None) -> None:
        """Until something changes (a release, an unload, a fault switch) or a short while passes."""
        if self._changed is None:
            self._changed = asyncio.Event()
        real = 0.25 if sim_timeout is None else min(0.25, max(0.0, sim_timeout) / self.clock.speed)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._changed.wait(), real)

    def tick(self) -> None:
        """Apply what time has done: keep_alive expiry, finished unloads, doomed runners."""
        now = self.elapsed()
        for r in sorted(self._runners.values(), key=lambda r: r.expires_at or 0.0):
            if r.active == 0 and r.expires_at is not None and r.expires_at <= now:
                self._unload(r, r.expires_at, "expire", "keep_alive elapsed")
        self._freeing = [f for f in self._freeing if f.until > now]

    # -- models (the registry) -------------------------------------------------------------------

    def find_model(self, name: str) -> SimModel | None:
        """The model called `name` (``rh-alpha`` and ``rh-alpha:latest`` are the same), or None."""
        return self.registry.find(name)

    def model(self, name: str) -> SimModel:
        """The model called `name`; SimError(404, "model 'x' not found") when there is none."""
        return self.registry.get(name)

    def models(self) -> list[SimModel]:
        """What ``ollama list`` shows, newest first."""
        return self.registry.all()

    def create_model(
        self,
        name: str,
        from_: str,
        system: str | None = None,
        parameters: dict[str, Any] | None = None,
        template: str | None = None,
        license: str | list[str] | None = None,
        messages: list[dict[str, str]] | None = None,
    ) -> list[str]:
        """Create `name` FROM `from_` like POST /api/create; returns Ollama's status lines.

        `from_` must be a known model (else SimError 404 "model 'X' not found"). The new model
        inherits the parent's weights, template, parameters (merged with `parameters`), license
        and messages. A scenario student keeps its measured resident VRAM; any other model
        gets base weights + a KV-cache estimate for its num_ctx."""
        body: dict[str, Any] = {"model": name, "from": from_}
        for key, value in (("system", system), ("parameters", parameters), ("template", template),
                           ("license", license), ("messages", messages)):
            if value is not None:
                body[key] = value
        return self.create_from_request(body)

    def create_from_request(self, body: dict[str, Any]) -> list[str]:
        """Apply a POST /api/create body (recorded in `create_requests`); SimError like Ollama's."""
        self.create_requests.append(dict(body))
        status = self.registry.create(body)
        self._signal()
        return status

    def delete_model(self, name: str) -> None:
        """DELETE /api/delete: the model goes; an idle runner of it is unloaded."""
        m = self.registry.delete(name)
        r = self._runners.get(m.name)
        if r is not None:
            if r.active == 0:
                self._unload(r, self.elapsed(), "unload", "model deleted")
            else:
                r.unload_when_idle = "model deleted"
        self._signal()

    def copy_model(self, source: str, destination: str) -> None:
        self.registry.copy(source, destination)

    def pull(self, name: str) -> list[dict[str, Any]]:
        """POST /api/pull progress lines for a known base model."""
        return self.registry.pull(name)

    # -- memory -------------------------------------------------------------------------------

    def add_external(self, mb: float, for_s: float | None = None, *, at_s: float | None = None) -> None:
        """Another process takes `mb` of VRAM from now (or `at_s`) for `for_s` (None = until cleared)."""
        start = self.elapsed() if at_s is None else at_s
        self._external.append(_External(start, FOREVER if for_s is None else start + for_s, mb))
        self._signal()

    def clear_external(self, *, include_scenario: bool = False) -> None:
        """Drop the VRAM added with `add_external` (and the scenario's [[external]] if asked)."""
        now = self.elapsed()
        gone = [w for w in self._external if not w.scenario or include_scenario]
        self._external = [w for w in self._external if w.scenario and not include_scenario]
        self._external_past += [_External(w.start, min(w.end, now), w.mb) for w in gone if w.start < now]
        self._signal()

    def external_mb(self) -> float:
        now = self.elapsed()
        return sum(w.mb for w in self._external if w.start <= now < w.end)

    def external_windows(self) -> list[tuple[float, float, float]]:
        """(start, end, mb) of other processes' VRAM, active or not, in elapsed seconds."""
        return [(w.start, w.end, w.mb) for w in self._external]

    @property
    def vram_total_mb(self) -> float:
        return self.scenario.gpu.total_mb

    def models_vram_mb(self) -> float:
        self.tick()
        now = self.elapsed()
        held = sum(r.gpu_mb for r in self._runners.values() if r.loaded_at <= now)
        return held + sum(f.gpu_mb for f in self._freeing)

    def vram_used_mb(self) -> float:
        """What NVML would report as used: never more than the card has."""
        used = self.scenario.gpu.baseline_used_mb + self.models_vram_mb() + self.external_mb()
        return min(self.vram_total_mb, used)

    def ram_used_mb(self) -> float:
        self.tick()
        host = self.scenario.host
        cpu = sum(r.cpu_mb + RUNNER_RAM_MB for r in self._runners.values()) + sum(f.ram_mb for f in self._freeing)
        return min(host.ram_total_mb, host.os_used_mb + cpu)

    def runners(self) -> list[Runner]:
        """Loaded models (including ones still loading), most recently used first."""
        self.tick()
        return sorted(self._runners.values(), key=lambda r: r.last_used, reverse=True)

    def runner(self, name: str) -> Runner | None:
        self.tick()
        return self._runners.get(full_name(name)) or next(
            (r for k, r in self._runners.items() if k.lower() == full_name(name).lower()), None
        )

    def is_loaded(self, name: str) -> bool:
        return self.runner(name) is not None

    def loaded_names(self) -> list[str]:
        return [r.name for r in self.runners()]

    def load_time_s(self, model: SimModel, gpu_fraction: float = 1.0) -> float:
        """Seconds a load of `model` takes once it has room: the runner's start, then the copy."""
        return self.scenario.disk.load_init_s + self.copy_s(model.weights_mb, gpu_fraction)

    def copy_s(self, weights_mb: float, gpu_fraction: float = 1.0) -> float:
        """Seconds to bring `weights_mb` of weights in: all of them are read from disk at
        ``disk.read_gbps`` while the `gpu_fraction` part is copied over PCIe at ``pcie.gbps``,
        at the same time, so the slower of the two sets the pace."""
        gb = weights_mb / 1000.0
        return max(gb / self.scenario.disk.read_gbps, gb * gpu_fraction / self.scenario.pcie.gbps)

    # -- runners (where they go: rhtui.sim.placement) ---------------------------------------

    def _unload(self, r: Runner, ts: float, action: str, detail: str) -> None:
        if self._runners.get(r.name) is r:
            del self._runners[r.name]
        held_until = ts + self.scenario.disk.unload_s if r.loaded_at < ts else ts  # none held yet: none to free
        if held_until > ts:
            self._freeing.append(Freeing(r.gpu_mb, r.cpu_mb + RUNNER_RAM_MB, held_until))
        self._unloaded_until = held_until
        rec = self._loads.get(r)
        if rec is not None:
            rec.held_until = min(rec.held_until, held_until)
        self._unloads += 1
        self._log(ts, action, r.name, detail)
        self._signal()

    def _evict(self, r: Runner, ts: float, for_model: str, *, busy: bool = False) -> None:
        self._unload(r, ts, "evict", eviction_detail(r, for_model, busy=busy))

    def resident_mb(self, model: SimModel, num_ctx: int) -> float:
        """Memory of a runner of `model` at `num_ctx`: weights + a KV cache of
        ``num_ctx x num_parallel`` tokens, as Ollama sizes it (llm/llama_server.go starts the
        runner with ``-c NumCtx*numParallel -np numParallel``; 0.12.x: ``KvSize: opts.NumCtx *
        numParallel`` in llm/server.go)."""
        return model.resident_at(num_ctx * self.num_parallel)

    def _place(self, need: float) -> Placement | WaitForUnload | str:
        """Room for a new runner of `need` MB now (see `rhtui.sim.placement.place`)."""
        gpu, host = self.scenario.gpu, self.scenario.host
        return place(
            need, list(self._runners.values()), now=self.elapsed(),
            card_free_mb=gpu.total_mb - gpu.baseline_used_mb - self.external_mb(), freeing=self._freeing,
            max_loaded=self.scenario.ollama.max_loaded_models, unload_s=self.scenario.disk.unload_s,
            ram_free_mb=lambda: host.ram_total_mb - self.ram_used_mb(),
        )

    async def acquire(self, model: SimModel, num_ctx: int, keep_alive: float, plan: FaultPlan) -> Runner:
        """A ready runner for `model`, loading it (and evicting others) when needed.

        As Ollama's scheduler (server/sched.go). ``GetRunner``: a request that a loaded runner
        can serve (same model and options) gets it at once (``useLoadedRunner``), whatever else
        is loading or waiting; while that runner is still loading, its loading request holds the
        runner's lock, so the request waits for the load to end (``needsReload`` takes
        ``refMu``). Any other request queues for ``processPending``, which takes one request at
        a time and is held by it until its runner is loaded: in 0.12.x the next request blocks
        on the loading runner's ``refMu`` (``updateFreeSpace``, ``findRunnerToUnload``), in later
        versions ``load`` waits for ``llama.Load`` itself. So a second load starts only when the
        first has ended, and a request waiting for an unload holds up the requests behind it."""
        waited_load_until: float | None = None  # the end of another request's load, waited for
        while True:
            self.tick()
            now = self.elapsed()
            r = self._runners.get(model.name)
            if r is not None and plan.oom_forced and plan.oom:
                self._unload(r, now, "oom", "runner crashed: " + plan.oom)
                raise SimError(500, plan.oom)
            if r is not None and r.digest == model.digest and r.num_ctx == num_ctx:
                if r.ready_at > now:
                    waited_load_until = r.ready_at
                    await self.clock.sleep(r.ready_at - now)
                    continue  # a load can be aborted: look again
                if r.active >= self.num_parallel:
                    waited_load_until = None
                    await self.wait_changed()
                    continue
                r.active += 1
                r.keep_alive = keep_alive
                r.expires_at = None
                r.last_used = now
                # waking up later than the load's end is the clock's jitter, not loading
                r.granted_at = r.ready_at if waited_load_until == r.ready_at else now
                return r
            ticket = object()
            self._pending.append(ticket)
            try:
                while self._pending[0] is not ticket:
                    await self.wait_changed()
                loaded = await self._schedule(model, num_ctx, keep_alive, plan)
            finally:
                self._pending.remove(ticket)
                self._signal()
            if loaded is not None:
                return loaded

    async def _schedule(self, model: SimModel, num_ctx: int, keep_alive: float, plan: FaultPlan) -> Runner | None:
        """``processPending`` for one request, which holds the scheduler meanwhile: None when a
        runner that can serve it is there by now (the request joins it, as with
        ``useLoadedRunner``), else a new runner, loaded, with this request on it."""
        while True:
            self.tick()
            now = self.elapsed()
            r = self._runners.get(model.name)
            if r is not None and r.digest == model.digest and r.num_ctx == num_ctx:
                return None
            if r is not None:  # needsReload: expire it (sessionDuration = 0), wait for the unload
                why = "reload: model or options changed"
                if is_idle(r, now):
                    self._unload(r, now, "unload", why)
                else:
                    r.unload_when_idle = r.unload_when_idle or why
                    await self._wait_for_unload()
                continue
            if plan.oom:
                self._log(now, "oom", model.name, plan.oom)
                raise SimError(500, plan.oom)
            need = self.resident_mb(model, num_ctx)
            placed = self._place(need)
            if isinstance(placed, str):
                self._log(now, "oom", model.name, placed)
                raise SimError(500, placed)
            if isinstance(placed, WaitForUnload):
                # findRunnerToUnload found no idle runner: the busy one unloads when its requests
                # finish, and processPending waits on unloadedCh (any unload), then looks again
                for v in placed.victims:
                    self._evict(v, now, model.name)
                busy = placed.runner
                busy.keep_alive = 0.0  # sched.go: runnerToExpire.sessionDuration = 0
                busy.evict_for = busy.evict_for or model.name
                await self._wait_for_unload()
                continue
            victims, gpu_mb, wait = placed
            for v in victims:
                self._evict(v, now, model.name)
            return await self._start_load(model, num_ctx, keep_alive, need, gpu_mb, now + wait)

    async def _wait_for_unload(self) -> None:
        """Until a runner is unloaded (or expires) and its memory is back: processPending waits on
        ``unloadedCh``, which processCompleted sends only once ``waitForVRAMRecovery`` has seen
        the runner's VRAM free again."""
        seen = self._unloads
        while self._unloads == seen:
            await self.wait_changed()
            self.tick()
        await self.clock.sleep(max(0.0, self._unloaded_until - self.elapsed()))

    async def _start_load(self, model: SimModel, num_ctx: int, keep_alive: float, need: float, gpu_mb: float,
                          start: float) -> Runner:
        """Load a runner of `model` from `start` (memory held from then) and wait until it is ready."""
        now = self.elapsed()
        f = gpu_mb / need if need else 1.0
        copy_s = max(1e-9, self.copy_s(model.weights_mb, f))
        ready = start + self.scenario.disk.load_init_s + copy_s
        r = Runner(
            name=model.name, digest=model.digest, num_ctx=num_ctx, weights_mb=model.weights_mb,
            size_mb=need, gpu_mb=gpu_mb, pid=self._next_pid, loaded_at=start, ready_at=ready,
            last_used=now, keep_alive=keep_alive, active=1, model_path=model.blob_path(),
            copy_s=copy_s, copy_gbps=model.weights_mb / 1000.0 * f / copy_s,
        )
        self._next_pid += 7
        self._runners[model.name] = r
        self._loads[r] = _LoadRecord(r)
        self._log(now, "load", model.name, f"gpu {gpu_mb:.0f} MB, cpu {need - gpu_mb:.0f} MB, "
                  f"ready in {ready - now:.2f} s")
        if gpu_mb < need:
            self._log(now, "offload", model.name,
                      f"{need - gpu_mb:.0f} of {need:.0f} MB on the CPU ({r.gpu_fraction:.0%} on the GPU)")
        self._signal()
        await self._sleep_until(r, ready)
        r.granted_at = r.ready_at  # waking up later than that is the clock's jitter, not loading
        return r

    async def _sleep_until(self, r: Runner, t: float) -> None:
        """Sleep until the load of `r` ends at `t`. When the request is cancelled meanwhile, the
        load is aborted and the runner goes: Ollama waits for it with the request's context
        (``llama.WaitUntilRunning(req.ctx)`` in sched.go's ``load``; a failed load is expired)."""
        try:
            await self.clock.sleep(max(0.0, t - self.elapsed()))
        except asyncio.CancelledError:
            self._abort_load(r)
            raise
        now = self.elapsed()
        if r.ready_at > now:  # the clock's float rounding: the load is over when the sleep is
            r.ready_at = now
            r.loaded_at = min(r.loaded_at, now)

    def _abort_load(self, r: Runner) -> None:
        """The request loading `r` was cancelled: stop the load and unload the runner."""
        now = self.elapsed()
        if r.ready_at <= now or self._runners.get(r.name) is not r:  # loaded (or gone) already
            self.release(r, r.keep_alive)
            return
        r.active = max(0, r.active - 1)
        rec = self._loads.get(r)
        if rec is not None:
            rec.cut_at = now
        self._unload(r, now, "unload", "load aborted: the request was cancelled")

    def release(self, r: Runner, keep_alive: float) -> None:
        now = self.elapsed()
        r.active = max(0, r.active - 1)
        r.last_used = now
        if r.active == 0 and self._runners.get(r.name) is r:
            if r.evict_for:
                self._evict(r, max(now, r.ready_at), r.evict_for, busy=True)
            elif r.unload_when_idle:
                self._unload(r, max(now, r.ready_at), "unload", r.unload_when_idle)
            elif keep_alive <= 0:
                self._unload(r, max(now, r.ready_at), "unload", "keep_alive 0")
            elif math.isinf(keep_alive):
                r.expires_at = None
            else:
                r.expires_at = max(now, r.ready_at) + keep_alive
        self._signal()

    def expires_at(self, r: Runner) -> float:
        """Elapsed time at which `r` expires (``inf`` = never); planned value while busy."""
        if r.expires_at is not None:
            return r.expires_at
        return FOREVER if math.isinf(r.keep_alive) else max(self.elapsed(), r.ready_at) + r.keep_alive

    async def unload(self, name: str) -> None:
        """keep_alive 0 with an empty prompt: unload now (after running requests finish)."""
        m = self.model(name)
        r = self._runners.get(m.name)
        if r is None:
            return
        if r.active == 0:
            self._unload(r, max(self.elapsed(), r.ready_at), "unload", "requested")
        else:
            r.unload_when_idle = "requested"

    def unload_all(self, detail: str) -> None:
        for r in list(self._runners.values()):
            self._unload(r, self.elapsed(), "unload", detail)

    def keep_alive_s(self, value: object) -> float:
        return parse_keep_alive(value, self.scenario.ollama.keep_alive_s)

    async def load(self, name: str, options: dict[str, Any] | None = None, keep_alive: object = None,
                   faults: FaultPlan | None = None) -> float:
        """Load `name` (an empty-prompt generate); returns the simulated seconds it took."""
        m = self.model(name)
        ka = self.keep_alive_s(keep_alive)
        opts = self._request_options(options)
        t0 = self.elapsed()
        r = await self.acquire(m, int(opts.get("num_ctx", m.num_ctx)), ka, faults or FaultPlan())
        self.release(r, ka)
        return self.elapsed() - t0

    @staticmethod
    def _request_options(options: dict[str, Any] | None) -> dict[str, Any]:
        """A request's options, normalised as Ollama reads them; SimError(400) when one is invalid."""
        try:
            return normalize_parameters(dict(options or {}))
        except ValueError as exc:
            raise SimError(400, str(exc)) from None

    # -- rates --------------------------------------------------------------------------------

    def _loading_count(self) -> int:
        """Runners loading now (at most one: loads take turns; see `acquire`)."""
        now = self.elapsed()
        return sum(1 for r in self._runners.values() if r.loaded_at <= now < r.ready_at)

    def copy_gbps_now(self) -> float:
        """GB/s that weight copies in progress write into VRAM now (0 while none is copying)."""
        now = self.elapsed()
        return sum(r.copy_gbps for r in self._runners.values() if r.copying(now))

    def decode_rate(self, r: Runner) -> float:
        """Tokens per simulated second for one stream on `r`, given everything running now.

        A weight copy in progress writes its GB/s into the card's memory, and decoding gets what
        is left of the bandwidth, in proportion: ``(bandwidth - copy) / bandwidth``. The stream
        loop asks again every tick, so a copy that starts or ends changes a running decode's
        rate within one tick."""
        g, c = self.scenario.gpu, self.scenario.cpu
        bw = g.bandwidth_gbps * g.decode_efficiency
        bw *= max(0.1, (g.bandwidth_gbps - self.copy_gbps_now()) / g.bandwidth_gbps)
        decoding = [s.runner for s in self.streams.values() if s.phase == "decode"]
        if r not in decoding:
            decoding.append(r)
        k_gpu = sum(1 for x in decoding if x.gpu_mb > 0)
        k_cpu = sum(1 for x in decoding if x.cpu_mb > 0)
        if k_gpu >= 2:
            bw = bw * g.concurrent_gain / k_gpu
        w = r.weights_mb / 1000.0
        f = r.gpu_fraction
        t = 0.0
        if f > 0:
            t += w * f / bw
        if f < 1:
            t += w * (1 - f) / (c.offload_bandwidth_gbps * c.offload_efficiency / max(1, k_cpu))
        return 1.0 / t

    def single_stream_rate(self, name: str) -> float:
        """Decode rate of `name` alone on the card, fully on the GPU (≈106 tok/s for rh-alpha)."""
        g = self.scenario.gpu
        return g.bandwidth_gbps * 1000.0 * g.decode_efficiency / self.model(name).weights_mb

    # -- what loading cost (for benchmarks) ------------------------------------------------------

    def _note(self) -> None:
        """Bring the overlap ledger up to now, with the streams as they have been since the last
        note (the stream table notes before any change, so nothing between is missed)."""
        now = self.elapsed()
        since = self._noted_at
        if now <= since:
            return
        self._noted_at = now
        if not any(s.phase == "decode" for s in self.streams.values()):
            return
        for rec in reversed(self._loads.values()):  # loads take turns: later ones end later
            if rec.end <= since:
                break
            self._overlap_s += max(0.0, min(rec.end, now) - max(rec.start, since))

    def stats(self) -> WorldStats:
        """Loads, seconds loading, seconds a load overlapped a decode and the peak VRAM so far."""
        self.tick()
        self._note()
        now = self.elapsed()
        loading = sum(max(0.0, min(rec.end, now) - rec.start) for rec in self._loads.values())
        return WorldStats(loads=len(self._loads), loading_s=loading, load_decode_overlap_s=self._overlap_s,
                          peak_vram_mb=self.peak_vram_mb(), vram_total_mb=self.vram_total_mb)

    def peak_vram_mb(self) -> float:
        """The most VRAM the card had in use at any moment so far: baseline, models (from the
        start of their load until their process has shut down) and other processes."""
        now = self.elapsed()
        spans = [(rec.start, rec.held_until, rec.runner.gpu_mb) for rec in self._loads.values()]
        spans += [(w.start, w.end, w.mb) for w in (*self._external, *self._external_past)]
        changes = [(a, mb) for a, b, mb in spans if a < b and a <= now]
        changes += [(b, -mb) for a, b, mb in spans if a < b and b <= now]
        level = peak = self.scenario.gpu.baseline_used_mb
        for _t, mb in sorted(changes):  # at the same instant, what ends goes before what starts
            level += mb
            peak = max(peak, level)
        return min(self.vram_total_mb, peak)

    # -- faults -------------------------------------------------------------------------------

    def inject(self, kind: str, model: str | None = None, count: int = 1) -> None:
        """Make the next `count` generate requests for `model` (None = any) meet `kind`:
        http_500 | stall | disconnect | malformed | oom. Applies even with faults disabled.
        Stream faults (stall, disconnect, malformed) skip load-only requests."""
        self.fault_book.inject(kind, model, count)

    def clear_injections(self) -> None:
        self.fault_book.clear()

    def plan_faults(self, name: str, *, load_only: bool = False) -> FaultPlan:
        """What goes wrong with the next generate request for `name` (the server asks this)."""
        return self.fault_book.plan(name, load_only=load_only)

    def set_server_down(self, for_s: float | None) -> None:
        """Refuse connections from now for `for_s` simulated seconds (None = until cleared)."""
        self.fault_book.set_down(self.elapsed(), for_s)
        self._signal()

    def clear_server_down(self) -> None:
        self.fault_book.clear_down(self.elapsed())
        self._signal()

    def server_down_now(self) -> bool:
        return self.fault_book.down(self.elapsed())

    def next_down_change(self) -> float | None:
        """Elapsed time of the next start or end of a server-down window, if any."""
        return self.fault_book.next_change(self.elapsed())

    # -- generation ---------------------------------------------------------------------------

    def generation(self, name: str, prompt: str, *, system: str | None = None,
                   options: dict[str, Any] | None = None, keep_alive: object = None,
                   faults: FaultPlan | None = None, format: Any = None) -> Generation:
        """One generate request; ``async with world.generation(...) as g: async for t in g.stream()``.
        `format`: Ollama's structured output, "json" or a JSON schema (a dict), or None."""
        m = self.model(name)
        return Generation(self, m, prompt, system, self._request_options(options), self.keep_alive_s(keep_alive),
                          faults or FaultPlan(), format)

    def plan_tokens(self, m: SimModel, options: dict[str, Any], prompt: str = "", *,
                    system: str | None = None, format: Any = None) -> tuple[list[str], str]:
        """The pieces of the next answer of `m` to `prompt` and its done_reason (stop, or length
        when num_predict cuts it).

        A proposal has about ``tokens_mean`` +- ``tokens_sd`` tokens, drawn per (seed, model, how
        many it has written); its text comes from the model, the prompt and the seed (see
        `rhtui.sim.text.proposal_text`), with the END line only when it was asked for and is not
        a stop sequence. With `format` ("json" or a JSON schema) the answer is a short JSON
        document, deterministic per (seed, model, prompt, format), and not valid JSON when a
        ``malformed_json`` fault applies. Stop sequences (the request's over the model's) end
        the text and are left out of it, as in Ollama."""
        context = read_prompt(prompt)
        if format is not None:
            rng = random.Random(f"{self.seed}:{m.name}:json:{prompt}:{json.dumps(format, sort_keys=True)}")
            text = json_text(rng, format, quality=answer_quality(self.seed, context, prompt), author=m.name,
                             context=context, hostile=self.hostile_text)
            if self.fault_book.malformed_json(m.name):
                text = malform_json(rng, text)
        else:
            k = self._gen_count.get(m.name, 0)
            self._gen_count[m.name] = k + 1
            n = max(16, int(round(random.Random(f"{self.seed}:{m.name}:{k}").gauss(m.tokens_mean, m.tokens_sd))))
            rng = random.Random(f"{self.seed}:{m.name}:{k}:{prompt}")
            text = proposal_text(rng, n, author=m.name, context=context)
            if END_MARKER in prompt or END_MARKER in (system or ""):
                text += "\n\n" + END_MARKER
        stops = options.get("stop", m.parameters.get("stop")) or []
        pieces = tokenize(cut_at_stop(text, stops), json=format is not None)
        if self.hostile_text and format is None:
            pieces = sprinkle_hostile(rng, pieces)
        reason = "stop"
        cap = options.get("num_predict", m.parameters.get("num_predict"))  # request over the model's own
        if cap is not None and 0 < cap < len(pieces):
            pieces, reason = pieces[: int(cap)], "length"
        return pieces, reason

    def add_stream(self, r: Runner) -> int:
        sid = self._next_id
        self._next_id += 1
        self.streams[sid] = _Stream(r, self._note)
        return sid

    # -- activity (for the probe) -------------------------------------------------------------

    def activity(self) -> dict[str, float]:
        """GPU utilisation %, power W, temperature °C and host CPU % derived from what runs now."""
        self.tick()
        g = self.scenario.gpu
        now = self.elapsed()
        util = 0.0
        cpu = 3.0
        for s in self.streams.values():
            if s.phase == "prompt":
                util = max(util, 100.0)
            else:
                f = s.runner.gpu_fraction
                if f > 0:
                    gpu_t = f / (g.bandwidth_gbps * g.decode_efficiency)
                    cpu_t = (1 - f) / (self.scenario.cpu.offload_bandwidth_gbps * self.scenario.cpu.offload_efficiency)
                    util = max(util, 97.0 * gpu_t / (gpu_t + cpu_t))
                if f < 1:
                    cpu += 75.0 * (1 - f)
        if self._loading_count():
            util = max(util, 8.0)
            cpu += 12.0
        resident = len(self._runners)
        power = g.idle_power_w + 4.0 * resident + (g.max_power_w - g.idle_power_w) * 0.9 * util / 100
        power = min(g.max_power_w, power)
        target = 34.0 + 44.0 * util / 100 + 1.5 * resident
        dt = max(0.0, now - self._temp_ts)
        self._temp_c = target + (self._temp_c - target) * math.exp(-dt / 30.0)
        self._temp_ts = now
        return {"util": round(util, 1), "power": round(power, 1), "temp": round(self._temp_c, 1),
                "cpu": round(min(100.0, cpu), 1)}
