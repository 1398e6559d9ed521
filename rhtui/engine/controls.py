"""The controls a person has over a running engine: plain synchronous calls from the same event
loop (the dashboard's keys), or rows of the store's `controls` table that the sampler takes
(`rhtui watch`, `rhtui students release`). Each answers with events.

`Controls` builds on the engine's core (`rhtui.engine.session.EngineCore`): what it touches is the
core's state (`state`, `enabled`, the running student, the emergency flags).
"""

from __future__ import annotations

import json

from rhtui.engine import events as ev
from rhtui.engine.ensemble.agenda import MAX_QUESTION_CHARS
from rhtui.engine.ensemble.roles import TIERS
from rhtui.engine.session import EngineCore


class Controls(EngineCore):
    """pause, resume, skip, enable/disable, release, emergency, ask, stop (see EngineHandle)."""

    def pause(self) -> None:
        """No new student starts until resume(); the running one finishes."""
        if self.state == "running":
            self._runnable.clear()
            self._set_state("paused", "by user")

    def resume(self) -> None:
        if self.state == "paused":
            self._runnable.set()
            self._set_state("running", "resumed by user")
        elif self.state == "emergency":
            self.clear_emergency()

    def toggle_pause(self) -> None:
        self.resume() if self.state == "paused" else self.pause()

    def skip_current(self) -> None:
        """Cancel the running student's generation; it is unloaded and recorded `skipped`."""
        if self.current is not None:
            self.runs.cancel("skipped", "skipped by user")

    def set_enabled(self, student: str, enabled: bool) -> None:
        if student in self.enabled and self.enabled[student] != enabled:
            self.enabled[student] = enabled
            self.log("info", f"[{student}] {'enabled' if enabled else 'disabled'} for the next cycles")

    def release(self, student: str) -> None:
        """A person releases a quarantined (or backing-off) student: healthy again, run at its next turn."""
        if student not in self.students:
            self.log("warning", f"cannot release {student!r}: not a student of this session "
                     f"({', '.join(self.students)})")
            return
        if not self.health.release(student):
            self.log("info", f"[{student}] is healthy: nothing to release")
            return
        self.emit(ev.StudentHealthChanged(ts=self.clock.now(), cycle=self.cycle, student=student, health="healthy",
                                          failures=0, reason="released by user; it runs at its next turn",
                                          released=True))
        self._wake.set()

    def emergency_stop(self, reason: str = "emergency stop by user") -> None:
        self._emergency_manual = True
        self._spawn(self._enter_emergency(reason, self.latest_snapshot))

    def clear_emergency(self) -> None:
        """Resume after an emergency, if VRAM is back under the max fraction."""
        if self.state != "emergency":
            return
        snap = self.latest_snapshot
        if snap is not None and snap.vram_total_mb and not self.guard.may_resume(snap):
            self.log("warning", f"cannot resume yet: VRAM still at {100 * (snap.vram_fraction or 0):.1f} %")
            return
        self._leave_emergency("resumed by user")

    def ask(self, question: str, tier: str = "standard") -> None:
        """A person's own question: its round runs next, between cycles (before the next agenda question)."""
        question = " ".join(question.split())
        if not question:
            self.log("warning", "an empty question was not asked")
            return
        if tier not in TIERS:
            self.log("warning", f"unknown tier {tier!r} (quick, standard or deep): the question was not asked")
            return
        if len(question) > MAX_QUESTION_CHARS:
            self.log("warning", f"the question is {len(question)} characters, more than {MAX_QUESTION_CHARS}: "
                     "not asked")
            return
        self._asks.append((question, tier))
        self.log("info", f"question asked ({tier}): its round runs next; {len(self._asks)} waiting")
        self._wake.set()

    def request_stop(self, reason: str = "stopped by user", *, error: str = "") -> None:
        """Graceful stop: cancel the running student (recorded `aborted`, with `error` if the stop
        comes from a failure, e.g. of the dashboard), unload, flush; the session is closed with
        `reason`; run() returns."""
        if not self._stop.is_set():
            self._stop_reason = reason
            self._stop.set()
            self._set_state("stopping", "stop requested")
            self._runnable.set()
            if self.current is not None:
                self.runs.cancel("aborted", "session stopped", error)

    async def _take_controls(self) -> None:
        """The controls another process wrote to the store (`rhtui watch`), in order."""
        if self.session_id is None:
            return
        for _id, command, arg in await self.store.take_controls(self.session_id):
            handler = {
                "pause": self.pause, "resume": self.resume, "toggle_pause": self.toggle_pause,
                "skip": self.skip_current, "emergency": self.emergency_stop,
                "clear_emergency": self.clear_emergency, "stop": self.request_stop,
            }.get(command)
            if handler is not None:
                handler()
            elif command in ("enable", "disable") and arg:
                self.set_enabled(arg, command == "enable")
            elif command == "release" and arg:
                self.release(arg)
            elif command == "ask" and arg:
                try:
                    body = json.loads(arg)
                    self.ask(str(body["question"]), str(body.get("tier", "standard")))
                except (ValueError, KeyError, TypeError):
                    self.log("warning", "an unreadable question from another process was ignored")
            else:
                self.log("warning", f"unknown control {command!r} ignored")

