"""Alerts: what a person who leaves rhtui running for weeks must hear about.

`AlertRules` is pure: the engine's events (hardware samples among them) and the time in,
`Alert` events out; no I/O and no clock of its own. The rules, with `alerts.*` and
`budget.*` from the settings:

* ``vram`` — VRAM use in the budget guard's warning zone or above: used >= (max_fraction - 0.05)
  x total (`BudgetGuard.zone` is "warning", "limit" or "emergency"); warning, error above max_fraction;
* ``emergency`` — an emergency stop (`EmergencyStop`, by the guard or by a person); error;
* ``quarantined`` — a student quarantined (`StudentHealthChanged`, health "quarantined"); error;
* ``degraded`` — an ok run's tok/s more than `slow_drop` (30 %) below its learned mean, i.e.
  tok/s < (1 - slow_drop) x mean, against the profile learned before that run (`ProfilesUpdated`)
  from at least `MIN_PROFILE_RUNS` runs; warning;
* ``backend_down`` — Ollama unreachable (`BackendDown`, until `BackendUp`) for `backend_down_s`
  (60 s) of the engine clock; error. `due(now)` says it when no event comes meanwhile;
* ``temperature`` — the GPU above `max_temp_c` (`HardwareSnapshot.temp_c > max_temp_c`); warning;
* ``session_end`` — the session ended (`SessionFinished`); info when it ended as planned
  (its time, its cycles, a person), else warning.

Each is raised once when its condition begins, and not again while it holds; once it has
ended, it may be raised again. The same alert (kind, and student for a student's) is raised
at most once in `min_interval_s` (300 s) of the engine clock: a condition that begins again
sooner is held back, and raised when the interval is over if it still holds then.

`AlertRunner` is the engine's side: the orchestrator feeds it every event it emits; it emits
each alert the rules raise and runs `alerts.command` with it (JSON on stdin), in background
tasks bounded by `command_timeout_s`, never awaited by the engine's loop until shutdown.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import os
import shlex
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from rhtui.engine import events as ev
from rhtui.engine.budget import WARNING_MARGIN, BudgetGuard
from rhtui.engine.clock import Clock
from rhtui.engine.config import AlertsPolicy
from rhtui.engine.records import StudentStats
from rhtui.engine.sanitize import one_line

MIN_PROFILE_RUNS = 3
"""A learned tok/s is compared against only once the profile has this many runs."""
MAX_COMMANDS = 4
"""Commands running at once at most; an alert past that runs none (and says so once)."""
CLOSE_GRACE_S = 5.0
"""At shutdown, how long (real seconds) the commands still running may finish before they are killed."""
NORMAL_ENDS = ("finished", "stopped by user", "session time is up")
"""Session end reasons that are the plan (a `session_end` alert at info); `N cycles done` too."""


def _pct(fraction: float) -> str:
    return f"{round(fraction * 100, 1):g} %"


def _clock_time(ts: float) -> str:
    return time.strftime("%H:%M:%S", time.localtime(ts))


def _tok_per_s(run) -> float | None:
    """A run's decode rate: Ollama's figure, else tokens / eval seconds."""
    tps = run.tok_per_s
    if tps is not None and math.isfinite(tps) and tps > 0:
        return float(tps)
    if run.tokens and run.eval_s and run.eval_s > 0:
        return run.tokens / run.eval_s
    return None


@dataclass
class _Episode:
    holds: bool = False
    announced: bool = False


class AlertRules:
    """The rules (see the module's docstring). `observe(event, now)` and `due(now)` return the alerts
    raised; `now` is the engine clock's time (`Clock.now()`), `wall` the wall clock's (for `raised_at`)."""

    def __init__(self, policy: AlertsPolicy, guard: BudgetGuard, *, host: str = "", session: str = "",
                 wall: Callable[[], float] = time.time) -> None:
        self.policy = policy
        self.guard = guard
        self.host = host
        self.session = session
        self.wall = wall
        self.held_back = 0
        """Alerts not raised because the same one was raised less than min_interval_s before."""
        self._episodes: dict[tuple[str, str | None], _Episode] = {}
        self._last: dict[tuple[str, str | None], float] = {}
        self._profiles: dict[str, StudentStats] = {}
        self._down_since: float | None = None
        self._down_error = ""

    # -- the mechanism: a condition per (kind, student), raised when it begins --------------

    def _condition(self, kind: str, student: str | None, holds: bool, now: float,
                   make: Callable[[], ev.Alert] | None = None) -> list[ev.Alert]:
        key = (kind, student)
        episode = self._episodes.setdefault(key, _Episode())
        episode.holds = holds
        if not holds:
            episode.announced = False
            return []
        if episode.announced or make is None:
            return []
        last = self._last.get(key)
        if last is not None and now - last < self.policy.min_interval_s:
            self.held_back += 1
            return []
        episode.announced = True
        self._last[key] = now
        return [make()]

    def _alert(self, now: float, kind: str, severity: ev.AlertSeverity, title: str, message: str, *,
               student: str | None = None, value: float | None = None,
               threshold: float | None = None) -> ev.Alert:
        return ev.Alert(ts=now, kind=kind, severity=severity, title=title, message=message, student=student,
                        session=self.session, host=self.host, value=value, threshold=threshold,
                        raised_at=self.wall())

    # -- the rules ---------------------------------------------------------------------------

    def observe(self, event: ev.Event, now: float) -> list[ev.Alert]:
        """The alerts this event raises (none for most)."""
        out: list[ev.Alert] = []
        if isinstance(event, (ev.Alert, ev.LogMessage, ev.TokensProgress)):
            return out
        if isinstance(event, ev.SessionStarted):
            self.session, self.host = event.name, event.backend_host or self.host
        elif isinstance(event, ev.HardwareSampled):
            out += self._vram(event, now)
            out += self._temperature(event, now)
        elif isinstance(event, ev.EmergencyStop):
            out += self._condition("emergency", None, True, now, lambda: self._emergency(event, now))
        elif isinstance(event, ev.EmergencyCleared):
            self._condition("emergency", None, False, now)
        elif isinstance(event, ev.StudentHealthChanged):
            out += self._condition("quarantined", event.student, event.health == "quarantined", now,
                                   lambda: self._quarantined(event, now))
        elif isinstance(event, ev.ProfilesUpdated):
            self._profiles.update({p.student: p for p in event.profiles})
        elif isinstance(event, ev.StudentFinished):
            out += self._slow(event, now)
        elif isinstance(event, ev.BackendDown):
            if self._down_since is None:
                self._down_since = now
            self._down_error = event.error
        elif isinstance(event, ev.BackendUp):
            self._down_since = None
            self._condition("backend_down", None, False, now)
        elif isinstance(event, ev.SessionFinished):
            out += self._condition("session_end", None, True, now, lambda: self._session_end(event, now))
        return out + self.due(now)

    def due(self, now: float) -> list[ev.Alert]:
        """Alerts that time alone raises: Ollama unreachable for backend_down_s."""
        since = self._down_since
        if since is None:
            return []
        down_for = now - since
        return self._condition("backend_down", None, down_for >= self.policy.backend_down_s, now,
                               lambda: self._backend_down(since, down_for, now))

    def next_due(self, now: float) -> float | None:
        """Engine seconds until `due` may raise something (None: nothing pending)."""
        if self._down_since is None:
            return None
        episode = self._episodes.get(("backend_down", None))
        if episode is not None and episode.announced:
            return None
        at = self._down_since + self.policy.backend_down_s
        last = self._last.get(("backend_down", None))
        if last is not None:
            at = max(at, last + self.policy.min_interval_s)
        return max(0.0, at - now)

    def _vram(self, e: ev.HardwareSampled, now: float) -> list[ev.Alert]:
        snap = e.snapshot
        zone = self.guard.zone(snap)
        if zone == "unknown":
            return []
        return self._condition("vram", None, zone in ("warning", "limit", "emergency"), now,
                               lambda: self._vram_alert(e, zone, now))

    def _vram_alert(self, e: ev.HardwareSampled, zone: str, now: float) -> ev.Alert:
        snap = e.snapshot
        total, used = snap.vram_total_mb or 0.0, snap.vram_used_mb or 0.0
        p = self.guard.policy
        card = snap.gpu_name or "the GPU"
        figure = f"VRAM at {used:,.0f} of {total:,.0f} MB ({used / total * 100:.1f} %) on {card}"
        if zone == "warning":
            what = (f"within {_pct(WARNING_MARGIN)} of the {_pct(p.max_fraction)} limit (budget.max_fraction): a "
                    f"student that does not fit is skipped, and above {_pct(p.emergency_fraction)} the engine "
                    "stops everything")
        else:
            what = (f"above the {_pct(p.max_fraction)} limit (budget.max_fraction): no student is loaded until it "
                    f"is back under, and above {_pct(p.emergency_fraction)} the engine stops everything")
        title = "VRAM near the limit" if zone == "warning" else "VRAM above the limit"
        return self._alert(now, "vram", "warning" if zone == "warning" else "error", title,
                           f"{figure}, {what}. Free VRAM: `nvidia-smi` lists the other programs using the GPU.",
                           value=round(used / total * 100, 1), threshold=round(self.guard.warning_fraction * 100, 1))

    def _temperature(self, e: ev.HardwareSampled, now: float) -> list[ev.Alert]:
        limit, temp = self.policy.max_temp_c, e.snapshot.temp_c
        if limit is None or temp is None or not math.isfinite(temp):
            return []
        card = e.snapshot.gpu_name or "the GPU"
        return self._condition("temperature", None, temp > limit, now, lambda: self._alert(
            now, "temperature", "warning", "GPU hot",
            f"{card} is at {temp:.0f} °C, above alerts.max_temp_c ({limit:g} °C): a hot card slows down "
            "(proposals take longer) and may shut down. Check its fans and airflow; `nvidia-smi -q -d "
            "TEMPERATURE,PERFORMANCE` shows whether it is throttling.",
            value=temp, threshold=limit))

    def _emergency(self, e: ev.EmergencyStop, now: float) -> ev.Alert:
        p = self.guard.policy
        figure = ""
        if e.used_mb is not None and e.total_mb:
            figure = f" (VRAM {e.used_mb:,.0f} of {e.total_mb:,.0f} MB, {e.used_mb / e.total_mb * 100:.1f} %)"
        how = ("resume with r in the dashboard (or `rhtui watch`)" if e.manual or p.cooldown_s <= 0 else
               f"it resumes once VRAM has stayed under {_pct(p.max_fraction)} for {p.cooldown_s:g} s "
               "(budget.cooldown_s), or with r in the dashboard (or `rhtui watch`)")
        return self._alert(now, "emergency", "error", "Emergency stop",
                           f"Emergency stop in session {self.session or '?'} on Ollama at {self.host or '?'}: "
                           f"{e.reason}{figure}. The generation was aborted, every model unloaded and the engine "
                           f"paused; {how}.",
                           value=round(e.used_mb / e.total_mb * 100, 1) if e.used_mb is not None and e.total_mb
                           else None,
                           threshold=round(p.emergency_fraction * 100, 1))

    def _quarantined(self, e: ev.StudentHealthChanged, now: float) -> ev.Alert:
        return self._alert(now, "quarantined", "error", f"{e.student} quarantined",
                           f"{e.student} is quarantined in session {self.session or '?'} on Ollama at "
                           f"{self.host or '?'}: {one_line(e.reason, 600)}",
                           student=e.student, value=float(e.failures))

    def _slow(self, e: ev.StudentFinished, now: float) -> list[ev.Alert]:
        run = e.run
        tps = _tok_per_s(run) if run.status == "ok" else None
        learned = self._profiles.get(e.student)
        mean = learned.tok_per_s_mean if learned is not None and learned.runs >= MIN_PROFILE_RUNS else None
        if tps is None or mean is None or not math.isfinite(mean) or mean <= 0:
            return []
        line = (1.0 - self.policy.slow_drop) * mean
        assert learned is not None
        return self._condition("degraded", e.student, tps < line, now, lambda: self._alert(
            now, "degraded", "warning", f"{e.student} degraded",
            f"{e.student} wrote at {tps:.1f} tok/s in cycle {e.cycle} (run #{run.id}), {1 - tps / mean:.0%} below "
            f"its learned {mean:.1f} tok/s ({learned.runs} runs; the line is {_pct(self.policy.slow_drop)} "
            f"below, alerts.slow_drop), on Ollama at {self.host or '?'}. Another program may be using the GPU "
            "(`nvidia-smi`), the card may be throttling (heat, power), or the model may be partly on the CPU "
            "(`ollama ps` shows a CPU share).",
            student=e.student, value=round(tps, 1), threshold=round(line, 1)))

    def _backend_down(self, since: float, down_for: float, now: float) -> ev.Alert:
        error = f" (last error: {one_line(self._down_error, 300)})" if self._down_error else ""
        return self._alert(now, "backend_down", "error", "Ollama unreachable",
                           f"Ollama at {self.host or '?'} has been unreachable for {down_for:.0f} s, since "
                           f"{_clock_time(since)}{error}; session {self.session or '?'} waits for it and goes on "
                           "when it is back. Start it (`ollama serve`, or `systemctl start ollama`), or point "
                           "OLLAMA_HOST / --host at where it listens.",
                           value=round(down_for, 1), threshold=self.policy.backend_down_s)

    def _session_end(self, e: ev.SessionFinished, now: float) -> ev.Alert:
        normal = e.reason.startswith(NORMAL_ENDS) or e.reason.endswith("cycles done")
        return self._alert(now, "session_end", "info" if normal else "warning", "Session ended",
                           f"Session {self.session or '?'} (#{e.session_id}) on Ollama at {self.host or '?'} ended: "
                           f"{one_line(e.reason, 300)}; {e.cycles} cycles, {e.runs} proposals, {e.tokens} tokens. "
                           f"`rhtui report --session {self.session or 'NAME'}` shows what it did.")


# -- the engine's side: emit, and run the command ----------------------------------------------


def alert_json(alert: ev.Alert) -> str:
    """The alert as the command reads it on stdin: its fields, plus `time` (ISO 8601, local, when raised)."""
    data = ev.event_data(alert)
    data["time"] = datetime.fromtimestamp(alert.raised_at or time.time()).astimezone().isoformat(timespec="seconds")
    return json.dumps(data, ensure_ascii=False)


def _env_value(text: str) -> str:
    return one_line(text).replace("\x00", "")


class AlertRunner:
    """Feeds the rules with every event the engine emits, emits the alerts they raise, and runs
    `alerts.command` for each. `feed` never raises and never waits; `aclose()` at shutdown awaits the
    commands still running (each bounded by its timeout) and cancels them after `grace_s`."""

    def __init__(self, policy: AlertsPolicy, guard: BudgetGuard, clock: Clock, emit: Callable[[ev.Event], None],
                 *, host: str = "", session: str = "", wall: Callable[[], float] = time.time) -> None:
        self.policy = policy
        self.clock = clock
        self.rules = AlertRules(policy, guard, host=host, session=session, wall=wall)
        self._emit = emit
        self.argv = shlex.split(policy.command) if policy.command else []
        self.tasks: set[asyncio.Task] = set()
        self.commands_run = 0
        self.failures = 0
        self._said: set[str] = set()
        self._timer: asyncio.TimerHandle | None = None
        self._closed = False

    def feed(self, event: ev.Event) -> None:
        """One event the engine emitted (the orchestrator calls this after its listeners have it)."""
        if self._closed or isinstance(event, (ev.Alert, ev.LogMessage)):
            return
        try:
            self._raise(self.rules.observe(event, self.clock.now()))
            self._arm_timer()
        except Exception as exc:  # an alert must never stop the engine
            self._say_once("rules", "error", f"the alert rules failed on {type(event).__name__}: {exc!r}; "
                           "alerts may be missing from now on (please report it)")

    def _tick(self) -> None:
        self._timer = None
        if self._closed:
            return
        try:
            self._raise(self.rules.due(self.clock.now()))
            self._arm_timer()
        except Exception as exc:
            self._say_once("rules", "error", f"the alert rules failed: {exc!r}; alerts may be missing from now on")

    def _arm_timer(self) -> None:
        """Wake up when an alert that only time raises is due (Ollama down while nothing else happens)."""
        wait = self.rules.next_due(self.clock.now())
        if wait is None or self._timer is not None:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return
        self._timer = loop.call_later(wait / (self.clock.speed or 1.0) + 0.01, self._tick)

    def _raise(self, alerts: list[ev.Alert]) -> None:
        for alert in alerts:
            self._emit(alert)
            if self.argv:
                self._start_command(alert)

    def _say_once(self, what: str, level: ev.Level, text: str) -> None:
        if what not in self._said:
            self._said.add(what)
            self._emit(ev.LogMessage(ts=self.clock.now(), level=level, text=text))

    # -- the command ---------------------------------------------------------------------------

    def _start_command(self, alert: ev.Alert) -> None:
        if len(self.tasks) >= MAX_COMMANDS:
            self.failures += 1
            self._say_once("busy", "warning",
                           f"alerts.command ({self.policy.command}) was not run for the alert {alert.title!r}: "
                           f"{len(self.tasks)} of its runs have not finished yet (each is killed after "
                           f"{self.policy.command_timeout_s:g} s, alerts.command_timeout_s); this is said once")
            return
        try:
            task = asyncio.get_running_loop().create_task(self._run_command(alert))
        except RuntimeError:  # no event loop: nothing can run it
            return
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def _run_command(self, alert: ev.Alert) -> None:
        payload = alert_json(alert).encode()
        env = {**os.environ, "RHTUI_ALERT_KIND": alert.kind, "RHTUI_ALERT_SEVERITY": alert.severity,
               "RHTUI_ALERT_TITLE": _env_value(alert.title), "RHTUI_ALERT_MESSAGE": _env_value(alert.message)}
        self.commands_run += 1
        try:
            proc = await asyncio.create_subprocess_exec(
                *self.argv, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.DEVNULL,
                stderr=asyncio.subprocess.DEVNULL, env=env, start_new_session=True)
        except OSError as exc:
            self._failed("start", f"could not be started ({exc.strerror or exc}): check the program's name and "
                         "PATH")
            return
        try:
            await asyncio.wait_for(proc.communicate(payload), self.policy.command_timeout_s)
        except TimeoutError:
            await self._kill(proc)
            self._failed("timeout", f"did not finish within {self.policy.command_timeout_s:g} s "
                         "(alerts.command_timeout_s) and was killed")
            return
        except asyncio.CancelledError:
            await self._kill(proc)
            raise
        if proc.returncode:
            self._failed("exit", f"exited with status {proc.returncode}")

    @staticmethod
    async def _kill(proc: asyncio.subprocess.Process) -> None:
        """The command and whatever it started (its own process group)."""
        if proc.returncode is None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(proc.wait(), 5.0)

    def _failed(self, how: str, what: str) -> None:
        self.failures += 1
        self._say_once("command", "warning",
                       f"alerts.command ({self.policy.command}) {what}. Alerts still reach the dashboard and the "
                       "log; run the command by hand with an alert on stdin to see why (echo '{\"kind\": \"test\"}' "
                       "| COMMAND). Later failures are counted, not logged")

    async def aclose(self, grace_s: float | None = None) -> None:
        """No more alerts; wait for the commands still running (at most `grace_s`, by default their timeout
        but no more than CLOSE_GRACE_S), then cancel (kill) the rest. Idempotent."""
        self._closed = True
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self.tasks:
            pending = list(self.tasks)
            grace = min(self.policy.command_timeout_s, CLOSE_GRACE_S) if grace_s is None else grace_s
            _done, left = await asyncio.wait(pending, timeout=grace)
            for task in left:
                task.cancel()
            if left:
                await asyncio.gather(*left, return_exceptions=True)
        if self.failures > 1 and "summary" not in self._said:
            self._said.add("summary")
            self._emit(ev.LogMessage(ts=self.clock.now(), level="warning",
                                     text=f"alerts.command failed {self.failures} times in this session"))
