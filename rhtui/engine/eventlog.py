"""Events as one line of plain text each: the headless log, the events table and the
dashboard's cycle log all read the same words.

The text is plain (no markup). Model output never appears here except through
`RunRecord.proposal`, which is not part of any line.
"""

from __future__ import annotations

from functools import singledispatch

from rhtui.engine import events as ev
from rhtui.engine.events import Level
from rhtui.engine.sanitize import sanitize


def _mb(v: float | None) -> str:
    return "N/A" if v is None else f"{v:,.0f} MB"


def _pct(used: float | None, total: float | None) -> str:
    if used is None or not total:
        return "N/A"
    return f"{100.0 * used / total:.1f} %"


@singledispatch
def format_event(event: ev.Event) -> tuple[Level, str] | None:
    """(level, text) for an event, or None for events that are not log lines."""
    return None


@format_event.register
def _(e: ev.SessionStarted) -> tuple[Level, str]:
    return "info", (
        f"session {e.name} (#{e.session_id}) started: {len(e.students)} students, policy {e.policy}, "
        f"{e.duration_s / e.speed / 60:g} min{f' at {e.speed:g}x simulated speed' if e.speed != 1 else ''}; "
        f"Ollama {e.backend_version} at {e.backend_host}; probe: {e.probe}"
    )


@format_event.register
def _(e: ev.StateChanged) -> tuple[Level, str]:
    level: Level = "warning" if e.state in ("paused", "emergency", "backend_down") else "info"
    return level, f"state: {e.state}" + (f" ({e.reason})" if e.reason else "")


@format_event.register
def _(e: ev.CycleStarted) -> tuple[Level, str]:
    line = f"cycle {e.cycle} started: " + (" → ".join(e.order) if e.order else "no student enabled")
    if e.question:
        line += f"; question: {_short(e.question)}"
    return "info", line


def _short(text: str, width: int = 120) -> str:
    """Untrusted text (a question, a judge's reason) on one plain line, at most `width` characters."""
    flat = " ".join(sanitize(text, keep_newlines=False).split())
    return flat if len(flat) <= width else flat[: width - 1] + "…"


@format_event.register
def _(e: ev.StudentStarted) -> tuple[Level, str]:
    what = "" if e.kind == "proposal" else f" for the {e.kind}"
    return "info", f"[{e.student}] loading {e.model}{what} (needs ~{_mb(e.need_mb)}, timeout {e.timeout_s:.0f} s)"


@format_event.register
def _(e: ev.RunScored) -> tuple[Level, str]:
    by = ", ".join(e.judges) or "the judge"
    if e.score is None:
        return "warning", f"[{e.student}] {e.kind} unscored by {by}: {_short(e.reason)}"
    return "info", f"[{e.student}] {e.kind} scored {e.score:.1f}/10 by {by}"


@format_event.register
def _(e: ev.Preload) -> tuple[Level, str]:
    if e.overlapped:
        beside = f" while {e.beside} writes" if e.beside else ""
        return "info", f"[{e.student}] preloading{beside} ({e.reason})"
    return "info", f"[{e.student}] loads after the current student: {e.reason}"


@format_event.register
def _(e: ev.StudentFinished) -> tuple[Level, str]:
    r = e.run
    if r.status == "ok":
        return "info", (
            f"[{e.student}] done in {r.total_s or r.wall_s or 0:.1f} s "
            f"(load {r.load_s or 0:.1f} s): {r.tokens or 0} tokens, {r.tok_per_s or 0:.1f} tok/s, "
            f"VRAM {_mb(r.vram_mb)}; saved run #{r.id}"
        )
    level: Level = "error" if r.status in ("error", "emergency") else "warning"
    return level, f"[{e.student}] {r.status}: {r.reason or r.error}; saved run #{r.id}"


@format_event.register
def _(e: ev.StudentSkipped) -> tuple[Level, str]:
    return ("info" if e.kind in ("disabled", "user") else "warning"), f"[{e.student}] skipped ({e.kind}): {e.reason}"


@format_event.register
def _(e: ev.StudentHealthChanged) -> tuple[Level, str]:
    if e.health == "healthy":
        return "info", f"[{e.student}] healthy again: {e.reason}"
    return ("error" if e.health == "quarantined" else "warning"), f"[{e.student}] {e.health}: {e.reason}"


@format_event.register
def _(e: ev.CycleFinished) -> tuple[Level, str]:
    skipped = ", ".join(f"{s} ({r})" for s, r in e.skipped) or "none"
    failed = f"; failed: {', '.join(e.failed)}" if e.failed else ""
    return "info", (
        f"cycle {e.cycle} finished in {e.seconds:.1f} s: {len(e.completed)} completed, "
        f"{e.tokens} tokens; skipped: {skipped}{failed}"
    )


@format_event.register
def _(e: ev.BudgetAlarm) -> tuple[Level, str]:
    return e.level, f"VRAM {_mb(e.used_mb)} of {_mb(e.total_mb)} ({_pct(e.used_mb, e.total_mb)}): {e.message}"


@format_event.register
def _(e: ev.EmergencyStop) -> tuple[Level, str]:
    return "critical", (
        f"EMERGENCY STOP: {e.reason} — VRAM {_mb(e.used_mb)} of {_mb(e.total_mb)} "
        f"({_pct(e.used_mb, e.total_mb)}); generation aborted, models unloaded, paused"
    )


@format_event.register
def _(e: ev.EmergencyCleared) -> tuple[Level, str]:
    return "warning", f"emergency cleared: {e.reason}"


@format_event.register
def _(e: ev.BackendDown) -> tuple[Level, str]:
    return "error", f"backend down at {e.host}: {e.error}"


@format_event.register
def _(e: ev.BackendUp) -> tuple[Level, str]:
    return "info", f"backend up at {e.host} (Ollama {e.version})"


@format_event.register
def _(e: ev.LogMessage) -> tuple[Level, str]:
    return e.level, e.text


@format_event.register
def _(e: ev.SessionFinished) -> tuple[Level, str]:
    return "info", (
        f"session #{e.session_id} finished ({e.reason}): {e.cycles} cycles, {e.runs} proposals, {e.tokens} tokens"
    )


@format_event.register
def _(e: ev.Alert) -> tuple[Level, str]:
    return e.severity, f"ALERT {e.title}: {e.message}"


@format_event.register
def _(e: ev.StudentQueued) -> tuple[Level, str]:
    fit = "fits" if e.fits else "may not fit"
    return "debug", f"[{e.student}] #{e.position} in cycle {e.cycle}: needs ~{_mb(e.need_mb)}, {fit}" + (
        f" ({e.reason})" if e.reason else ""
    )


@format_event.register
def _(e: ev.FitsChecked) -> tuple[Level, str]:
    parts = [f"{name} {'yes' if ok else 'no'}" for name, _need, ok, _why in e.fits]
    return "debug", f"fits now (cycle {e.cycle}): " + (", ".join(parts) if parts else "nobody is waiting")


@format_event.register
def _(e: ev.ProfilesUpdated) -> tuple[Level, str]:
    def one(s) -> str:
        tps = "N/A" if s.tok_per_s_mean is None else f"{s.tok_per_s_mean:.0f} tok/s"
        secs = "N/A" if s.seconds_mean is None else f"{s.seconds_mean:.1f} s"
        return f"{s.student} {s.runs} runs, {_mb(s.vram_mean_mb)}, {secs}, {tps}"

    return "debug", "learned: " + ("; ".join(one(s) for s in e.profiles) if e.profiles else "nothing yet")
