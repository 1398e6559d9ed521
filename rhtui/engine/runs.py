"""One student's run: load (or take over its preload), stream under the timeout, unload.

`RunExecutor.run` turns what Ollama did into a `RunRecord` (not yet stored) and says whether
Ollama itself went away during it; the cycle loop (`rhtui.engine.orchestrator`) records it,
updates health and profiles, and waits for Ollama when it is gone. `RunExecutor.preload`
loads the next student while the current one writes; its task is handed to that student's run.

Controls reach a run through `cancel`: the try under way is cancelled and the run is recorded
with the status the control gives (skipped, aborted, emergency).
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from rhtui.engine import events as ev
from rhtui.engine.backend import (
    BackendBusy,
    BackendError,
    BackendUnreachable,
    LlmBackend,
    ModelMissing,
    OutOfMemory,
    RunnerFailed,
    StreamBroken,
    model_key,
)
from rhtui.engine.clock import Clock
from rhtui.engine.config import Settings
from rhtui.engine.records import RunKind, RunRecord, RunStatus
from rhtui.engine.sampler import TREND_WINDOW_S, RunCapture, Sampler
from rhtui.engine.scheduler import BACKEND_LOST_PREFIX

PROPOSAL_CAP_CHARS = 200_000
PROGRESS_EVERY_S = 0.25  # real seconds between TokensProgress events
# After an unload, wait up to UNLOAD_WAIT_S (engine clock) for Ollama to free the memory, polling
# every UNLOAD_POLL_S (real) at most. On the engine clock, so that at the simulator's high speeds a
# card that never shows the memory freed (another process took it meanwhile) cannot hold a run
# for a thousand simulated seconds.
UNLOAD_WAIT_S, UNLOAD_POLL_S = 5.0, 0.05
# Ollama answers HTTP 503 "server busy" when its queue is full (OLLAMA_MAX_QUEUE): the student is
# tried again after a back-off (engine clock; first, most), up to BUSY_TRIES tries in all.
BUSY_RETRY_S = (2.0, 16.0)
BUSY_TRIES = 4

BACKEND_LOST = (f"{BACKEND_LOST_PREFIX}; the engine waits for it to come back (at most until the session ends), "
                "then goes on")
TRIED_AGAIN = re.compile(r"\bit is tried again next cycle|\S+ is tried again next cycle")


class Cancelled(Exception):
    """The running student was stopped by a control; `status` says how it is recorded."""

    def __init__(self, status: RunStatus, reason: str, error: str = "") -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason
        self.error = error


@dataclass(frozen=True, slots=True)
class Request:
    """What one run sends, and the provenance it is recorded with."""

    prompt: str
    kind: RunKind = "proposal"
    question: str = ""
    system: str | None = None
    context_ids: tuple[int, ...] = ()
    target_id: int | None = None
    format: Mapping[str, Any] | None = None
    digest: str | None = None


@dataclass
class Preloading:
    """A student being loaded while another writes: its task answers Ollama's load seconds."""

    student: str
    model: str
    task: asyncio.Task
    started: float
    beside: str | None
    vram_mb: float | None = None


@dataclass
class Outcome:
    """A finished run, not yet stored; `backend_lost`: Ollama went away during it."""

    run: RunRecord
    backend_lost: bool = False
    fields: dict[str, Any] = field(default_factory=dict)
    unload_later: tuple[int, str, str, float | None, float | None] | None = None
    """(cycle, student, model, card VRAM before, its MB): to unload behind the next student (`unload_behind`)."""


class RunExecutor:
    """Runs one student at a time (a preload of the next one may overlap it)."""

    def __init__(self, settings: Settings, backend: LlmBackend, clock: Clock, sampler: Sampler,
                 emit: Callable[[ev.Event], None], *, version: Callable[[], str]) -> None:
        self.settings = settings
        self.backend = backend
        self.clock = clock
        self.sampler = sampler
        self.emit = emit
        self.version = version
        self.current: str | None = None
        self.writing = asyncio.Event()
        """Set while the current student is loaded and generating (a preload of the next may start)."""
        self.gen_task: asyncio.Task | None = None
        self._cancel: Cancelled | None = None
        self.unreachable = ""  # what the last failed `reachable` found
        self.behind: dict[str, asyncio.Task] = {}
        """Students being unloaded behind the next one (`unload_behind`), by name."""

    def log(self, level: ev.Level, text: str) -> None:
        self.emit(ev.LogMessage(ts=self.clock.now(), level=level, text=text))

    # -- controls --------------------------------------------------------------------------

    def cancel(self, status: RunStatus, reason: str, error: str = "") -> None:
        """Stop the try under way; the run is recorded with `status`."""
        if self.gen_task is not None and not self.gen_task.done():
            self._cancel = Cancelled(status, reason, error)
            self.gen_task.cancel()

    async def reachable(self) -> bool:
        """Does Ollama still answer /api/version? (What it found otherwise is `self.unreachable`.)"""
        try:
            await self.backend.version()
        except BackendUnreachable as exc:
            self.unreachable = str(exc)
            return False
        except BackendError:
            return True  # it answered, with an error: it is there
        return True

    # -- preloading ------------------------------------------------------------------------

    def keep_alive(self) -> float:
        """Long enough for the run after a preload to start before Ollama's keep_alive expires."""
        return max(self.settings.keep_alive_s, self.settings.budget.timeout_s * 2)

    def preload(self, student: str, model: str, beside: str | None) -> Preloading:
        """Start loading `student` now (its run takes the task over)."""
        self.sampler.settling(student)
        started = self.clock.monotonic()
        task = asyncio.ensure_future(self._preload(student, model, started))
        return Preloading(student, model, task, started, beside)

    async def _preload(self, student: str, model: str, started: float) -> float:
        """Load `model`; once loaded, its memory counts as ours (what /api/ps says it holds). Returns
        the seconds the load took (Ollama's figure when its answer has one, else timed here)."""
        reported = await self.backend.preload(model, None, self.keep_alive()) or self.clock.monotonic() - started
        key = model_key(model)
        with contextlib.suppress(BackendError):
            for m in await self.backend.ps():
                if model_key(m.name) == key:
                    self.sampler.settled(student, m.vram_mb)
        return reported

    async def drop_preload(self, pre: Preloading) -> None:
        """A preload whose run will not happen (a skip, a stop, an emergency): cancel it and unload."""
        if not pre.task.done():
            pre.task.cancel()
        await asyncio.gather(pre.task, return_exceptions=True)
        await self.unload(pre.model)
        self.sampler.settled(pre.student, None)

    # -- one run ---------------------------------------------------------------------------

    async def run(self, n: int, student: str, model: str, need_mb: float | None, req: Request, *,
                  preloaded: Preloading | None = None, keep_loaded: bool = False,
                  unload_later: Callable[[], bool] | None = None) -> Outcome:
        """Run `student` once; unload it after (unless `keep_loaded`: its next step follows at once).
        `unload_later()` true when it ended well: the unload is left to the caller (`Outcome.unload_later`),
        so the student loaded beside it can start at once."""
        timeout_s = self.settings.budget.timeout_s
        self.current = student
        self.writing.clear()
        self._cancel = None
        started, t0 = self.clock.now(), self.clock.monotonic()
        self.emit(ev.StudentStarted(ts=started, cycle=n, student=student, model=model, need_mb=need_mb,
                                    timeout_s=timeout_s, kind=req.kind))
        before = self.sampler.latest.vram_used_mb if self.sampler.latest else None
        self.sampler.capture = capture = RunCapture()
        fields: dict[str, Any] = {}
        status: RunStatus = "ok"
        reason, error = "", ""
        backend_lost = False
        try:
            await self._attempts(n, student, model, req, fields, before, timeout_s, preloaded)
        except TimeoutError:
            if (task := self.gen_task) is not None:  # the try under way (see _attempts)
                task.cancel()
                await asyncio.wait({task})  # let it finish cancelling; a cancel of run() itself still propagates
            status, reason = "timeout", f"no complete answer within {timeout_s:.0f} s"
            # a server that accepts and then stops answering (hung) is an outage, not this student's
            # failure: to the backend-down wait, instead of every student timing out in turn
            if not await self.reachable():
                status, error, reason, backend_lost = "error", f"{reason}; {self.unreachable}", BACKEND_LOST, True
        except asyncio.CancelledError:
            if self._cancel is None:  # the orchestrator itself is being cancelled
                if self.gen_task is not None:
                    self.gen_task.cancel()
                raise
            status, reason, error = self._cancel.status, self._cancel.reason, self._cancel.error
        except ModelMissing as exc:  # HTTP 404 only: dropped for the rest of the session
            status, reason, error = "error", f"model missing; fix: `{exc.fix}`", str(exc)
            fields["missing"] = str(exc)
        except OutOfMemory as exc:
            status, error = "error", str(exc)
            reason = (
                f"Ollama ran out of memory {'running' if exc.mid_stream else 'loading'} it ({exc.detail}); "
                f"free RAM or VRAM, or lower its num_ctx in {student}'s Modelfile; it is tried again next cycle"
            )
        except BackendBusy as exc:
            status, error = "error", str(exc)
            tries = exc.tries
            reason = f"{exc}, {tries} {'try' if tries == 1 else 'tries'}; {student} is tried again next cycle"
        except RunnerFailed as exc:
            status, error = "error", str(exc)
            partial = "; the partial answer is discarded" if exc.mid_stream else ""
            reason = f"{exc}{partial}; {student} is tried again next cycle"
        except BackendUnreachable as exc:
            status, reason, error = "error", BACKEND_LOST, str(exc)
            backend_lost = True
        except BackendError as exc:
            status, error = "error", str(exc)
            # A stream cut mid-way may be Ollama itself going away: ask it, so the run is charged
            # to the outage (BackendDown, wait) instead of the next student failing on a dead host.
            if not await self.reachable():
                reason, backend_lost = BACKEND_LOST, True
            elif isinstance(exc, StreamBroken):
                reason = f"{exc}; the partial answer is discarded and {student} is tried again next cycle"
            else:
                reason = f"{exc}; {student} is tried again next cycle (if it repeats, see Ollama's server log)"
        finally:
            self.gen_task = None
            self.writing.clear()
        # with Ollama gone there is nothing to ask (a hung one would hold each call for its timeout):
        # what the run left loaded is unloaded once Ollama is back
        unload = status != "ok" or (self.settings.keep_alive_s == 0 and not keep_loaded)
        later: tuple[int, str, str, float | None, float | None] | None = None
        if unload and status == "ok" and unload_later is not None and unload_later():
            loaded_used = self.sampler.latest.vram_used_mb if self.sampler.latest else None
            later = (n, student, model, loaded_used, fields.get("vram_mb"))
            self.sampler.settling(student)
        elif unload and not backend_lost:
            self.emit(ev.StudentPhaseChanged(ts=self.clock.now(), cycle=n, student=student, phase="unloading"))
            loaded_used = self.sampler.latest.vram_used_mb if self.sampler.latest else None
            self.sampler.settling(student)
            await self.unload(model)
            await self.wait_freed(loaded_used, fields.get("vram_mb"))
            self.sampler.settled(student, None)
        elif unload:
            self.sampler.settled(student, None)
        if status == "timeout":
            self.sampler.watch_strays(max(TREND_WINDOW_S, 2 * timeout_s))
        self.sampler.capture = None
        wall = self.clock.monotonic() - t0
        kept = {k: v for k, v in fields.items() if k in _RUN_FIELDS}
        run = RunRecord(
            session_id=0, cycle=n, student=student, model=model, status=status,
            started_at=started, ended_at=self.clock.now(), reason=reason, error=error, wall_s=wall,
            vram_peak_mb=capture.peak_mb, energy_j=capture.energy_j(), **kept,
            kind=req.kind, question=req.question, system=req.system, prompt=req.prompt,
            context_ids=req.context_ids, target_id=req.target_id, digest=req.digest,
            options=None, ollama_version=self.version() or None,
        )
        if status == "ok" and run.total_s is None:
            run = replace(run, total_s=wall)
        self.current = None
        return Outcome(run, backend_lost, fields, later)

    def unload_behind(self, n: int, student: str, model: str, loaded_used: float | None,
                      model_mb: float | None) -> asyncio.Task:
        """Unload a finished student while the next one (loaded beside it) already writes."""

        async def unload() -> None:
            try:
                self.emit(ev.StudentPhaseChanged(ts=self.clock.now(), cycle=n, student=student, phase="unloading"))
                await self.unload(model)
                await self.wait_freed(loaded_used, model_mb)
            finally:
                self.sampler.settled(student, None)
                self.behind.pop(student, None)

        task = asyncio.ensure_future(unload())
        self.behind[student] = task
        return task

    async def behind_done(self, *students: str) -> None:
        """Wait for the unloads behind (of `students`, or all) to end: the card's figures are settled then."""
        tasks = [t for name, t in self.behind.items() if not students or name in students]
        if tasks:
            await asyncio.wait(tasks)

    async def _attempts(self, n: int, student: str, model: str, req: Request, fields: dict[str, Any],
                        before: float | None, timeout_s: float, preloaded: Preloading | None) -> None:
        """Run `_generate` under the timeout; while Ollama answers busy (HTTP 503), wait a back-off
        on the engine clock and try again, up to BUSY_TRIES tries. Each try and each wait is
        `self.gen_task`, so skip, stop and emergency cancel whichever is under way; a try that is
        answered busy started nothing in Ollama, and each try has the whole timeout."""
        delay, most = BUSY_RETRY_S
        for attempt in range(1, BUSY_TRIES + 1):
            t0 = self.clock.monotonic()
            self.gen_task = asyncio.ensure_future(
                self._generate(n, student, model, req, fields, before, t0, timeout_s, preloaded))
            preloaded = None  # a second try loads for itself
            try:
                await asyncio.wait_for(asyncio.shield(self.gen_task), timeout_s / self.clock.speed)
                return
            except BackendBusy as exc:
                if attempt == BUSY_TRIES:
                    exc.tries = attempt
                    raise
                fields.clear()
                self.gen_task = asyncio.ensure_future(self.clock.sleep(delay))
                self.log("warning", f"[{student}] {exc}; try {attempt + 1} of {BUSY_TRIES} in {delay:g} s")
                await asyncio.shield(self.gen_task)
                delay = min(delay * 2, most)

    async def _load(self, n: int, student: str, model: str, fields: dict[str, Any],
                    preloaded: Preloading | None) -> None:
        """Load the model, or wait for its preload; fills load_s and vram_mb."""
        keep_alive = self.keep_alive()
        self.emit(ev.StudentPhaseChanged(ts=self.clock.now(), cycle=n, student=student, phase="loading"))
        self.sampler.settling(student)
        if preloaded is not None:
            # load_s: what the load took; the run's total counts only the wait for it (the rest
            # was hidden behind the student before)
            wait_t0 = self.clock.monotonic()
            fields["load_s"] = await preloaded.task
            fields["load_wait_s"] = self.clock.monotonic() - wait_t0
        else:
            load_t0 = self.clock.monotonic()
            # No options on either call (the model's own parameters apply), so Ollama never reloads the
            # model between preload and generate.
            reported = await self.backend.preload(model, None, keep_alive)
            fields["load_s"] = reported if reported else self.clock.monotonic() - load_t0
        key = model_key(model)
        for m in await self.backend.ps():
            if model_key(m.name) == key:
                fields["vram_mb"] = m.vram_mb
        self.sampler.settled(student, fields.get("vram_mb"))

    async def _generate(self, n: int, student: str, model: str, req: Request, fields: dict[str, Any],
                        before: float | None, t0: float, timeout_s: float, preloaded: Preloading | None) -> None:
        """Load, measure, stream. Fills `fields` as it goes, so a cancelled run keeps what it had."""
        await self._load(n, student, model, fields, preloaded)
        after = await self.sampler.snapshot()
        if before is not None and after.vram_used_mb is not None:
            fields["vram_delta_mb"] = after.vram_used_mb - before
        self.emit(ev.StudentPhaseChanged(ts=self.clock.now(), cycle=n, student=student, phase="running"))
        self.writing.set()
        parts: list[str] = []
        size = chunks = 0
        gen_t0 = self.clock.monotonic()
        last_progress = 0.0
        loop = asyncio.get_running_loop()
        fields["proposal"] = ""
        try:
            async for chunk in self.backend.generate(model, req.prompt, None, self.keep_alive(), format=req.format):
                if chunk.text and size < PROPOSAL_CAP_CHARS:  # the text kept stops at the cap, mid-chunk if need be
                    parts.append(chunk.text[: PROPOSAL_CAP_CHARS - size])
                    size += len(parts[-1])
                chunks += 1
                # Ollama streams one token a chunk; a server that batches (the simulator at high speed)
                # is estimated from the text (~4 characters a token). The final count is Ollama's own.
                fields["tokens"] = max(chunks, round(size / 4))
                if chunk.done:
                    fields.update(
                        prompt_s=chunk.prompt_s, eval_s=chunk.eval_s, prompt_tokens=chunk.prompt_tokens,
                        tokens=chunk.eval_tokens if chunk.eval_tokens is not None else fields["tokens"],
                        total_s=fields.get("load_wait_s", fields.get("load_s") or 0.0) + (chunk.total_s or 0.0),
                        done_reason=chunk.done_reason,
                    )
                    if chunk.eval_tokens and chunk.eval_s:
                        fields["tok_per_s"] = chunk.eval_tokens / chunk.eval_s
                    break
                now = loop.time()
                if now - last_progress >= PROGRESS_EVERY_S:
                    last_progress = now
                    elapsed = self.clock.monotonic() - gen_t0
                    self.emit(
                        ev.TokensProgress(
                            ts=self.clock.now(), cycle=n, student=student, tokens=fields["tokens"],
                            elapsed_s=self.clock.monotonic() - t0,
                            tok_per_s=fields["tokens"] / elapsed if elapsed > 0 else None, timeout_s=timeout_s,
                        )
                    )
        finally:
            # joined once, whether it ended, was cut or cancelled: a cancelled run keeps what it had
            fields["proposal"] = "".join(parts)

    # -- unloading -------------------------------------------------------------------------

    async def unload(self, model: str) -> None:
        """Unload and wait until Ollama no longer lists the model: Ollama answers keep_alive=0
        at once and frees the memory a moment later, and the next admit must see it free."""
        try:
            await self.backend.unload(model)
            key = model_key(model)
            deadline = self.clock.monotonic() + UNLOAD_WAIT_S
            while any(model_key(m.name) == key for m in await self.backend.ps()):
                if self.clock.monotonic() >= deadline:
                    self.log("warning", f"{model} is still listed by Ollama after unload")
                    return
                await asyncio.sleep(self.poll_s())
        except BackendError as exc:
            self.log("warning", f"could not unload {model}: {exc}")

    async def wait_freed(self, loaded_used: float | None, model_mb: float | None) -> None:
        """After an unload, wait (up to UNLOAD_WAIT_S on the engine clock) until the card shows the
        memory released, so the next admit sees it free and the VRAM trend is not fooled by memory
        still being freed. It may never show: the reading before was capped at the card's size, or
        another process took the memory meanwhile; the bound is what ends the wait then."""
        if loaded_used is None or not model_mb:
            return
        deadline = self.clock.monotonic() + UNLOAD_WAIT_S
        while True:
            snap = await self.sampler.snapshot()
            if snap.vram_used_mb is None or snap.vram_used_mb <= loaded_used - 0.8 * model_mb:
                return
            if self.clock.monotonic() >= deadline:
                return
            await asyncio.sleep(self.poll_s())

    def poll_s(self) -> float:
        """Real seconds between polls while waiting for an unload: a tenth of the wait, at most 50 ms."""
        return max(0.001, min(UNLOAD_POLL_S, UNLOAD_WAIT_S / self.clock.speed / 10))


_RUN_FIELDS = frozenset({"load_s", "prompt_s", "eval_s", "total_s", "prompt_tokens", "tokens", "tok_per_s",
                         "vram_mb", "vram_delta_mb", "proposal", "done_reason"})
