"""Seeded scenes for the snapshot tests: lists of engine events and the clock reading to show them at."""

from __future__ import annotations

from rhtui.engine import events as ev
from tests.ui.fakes import (
    MID_CYCLE_NOW,
    REFERENCE,
    ROUND_SCORES,
    T0,
    TOTAL_MB,
    mid_cycle,
    research_round,
    round_under_way,
    run_record,
    session_start,
    snapshot,
)

NASTY_PROPOSAL = (
    "# Spectral approach \x1b[31mred\x1b[0m\n\n"
    "Plain [bold red]markup[/] must stay literal, and so must [link=https://evil.example]this[/link].\n\n"
    "An OSC 8 link: \x1b]8;;https://evil.example\x1b\\click\x1b]8;;\x1b\\ and a clipboard write "
    "\x1b]52;c;ZXZpbA==\x07 and a bell \x07 and a title \x1b]0;pwned\x07.\n\n"
    "Raw HTML: <script>alert('x')</script> <b>not bold</b>\n\n"
    "A Markdown [link](https://evil.example/steal) and a bidi trick: abc\u202edcba.\n\n"
    "Cursor games: \x1b[2J\x1b[H\x1b[?1049h and a carriage\rreturn; 8-bit CSI \x9b31m.\n\n"
    "1. Relate the zeros of ζ(s) to a self-adjoint operator.\n"
    "2. Check the Montgomery pair correlation against the GUE statistics.\n"
)


def dashboard_mid_cycle() -> tuple[list[ev.Event], float]:
    return mid_cycle(), MID_CYCLE_NOW


def _finish_gamma(t: float) -> list[ev.Event]:
    return [
        ev.StudentFinished(ts=t + 10, cycle=3, student="rh-gamma", run=run_record("rh-gamma", 3, start=t - 12)),
        ev.HardwareSampled(ts=t + 10.5, snapshot=snapshot(t + 10.5, 900.0, util=3.0, power=21.0)),
    ]


def skipped_for_vram() -> tuple[list[ev.Event], float]:
    """Cycle 3: delta and epsilon done, zeta skipped because it does not fit (another process took VRAM)."""
    events = mid_cycle()
    t = MID_CYCLE_NOW
    events += _finish_gamma(t)
    t += 10
    for s in ("rh-delta", "rh-epsilon"):
        vram, secs, _ = REFERENCE[s]
        events.append(ev.StudentStarted(ts=t, cycle=3, student=s, model=s, need_mb=vram + 80, timeout_s=60))
        t += secs
        events.append(ev.StudentFinished(ts=t, cycle=3, student=s, run=run_record(s, 3, start=t - secs)))
    events.append(ev.HardwareSampled(ts=t, snapshot=snapshot(t, 7_100.0, util=2.0, power=24.0)))
    events.append(ev.BudgetAlarm(ts=t, level="warning", used_mb=7_100, total_mb=TOTAL_MB,
                                 message="another process holds 6.2 GB of VRAM"))
    events.append(ev.StudentSkipped(
        ts=t, cycle=3, student="rh-zeta", kind="budget",
        reason="needs 5,092 MB + 1,024 MB reserve, only 5,182 MB free"))
    events.append(ev.CycleFinished(ts=t, cycle=3, completed=("rh-alpha", "rh-beta", "rh-gamma", "rh-delta",
                                                             "rh-epsilon"),
                                   skipped=(("rh-zeta", "does not fit"),), failed=(), seconds=185.0, tokens=14403))
    return events, t + 1


def emergency() -> tuple[list[ev.Event], float]:
    """A spike from another process during gamma's run: above 95 %, abort, unload, pause."""
    events = mid_cycle()
    t = MID_CYCLE_NOW + 3
    events.append(ev.HardwareSampled(ts=t, snapshot=snapshot(t, 11_790.0, temp=71.0, power=205.0)))
    events.append(ev.BudgetAlarm(ts=t, level="critical", used_mb=11_790, total_mb=TOTAL_MB,
                                 message="VRAM 96.0 % is above the 95 % emergency line"))
    events.append(ev.EmergencyStop(ts=t, used_mb=11_790, total_mb=TOTAL_MB,
                                   reason="VRAM above 95 % during rh-gamma's run"))
    events.append(ev.StateChanged(ts=t, state="emergency", reason="VRAM above 95 %"))
    events.append(ev.StudentFinished(ts=t + 0.4, cycle=3, student="rh-gamma",
                                     run=run_record("rh-gamma", 3, status="emergency", start=t - 15,
                                                    reason="aborted by the emergency stop")))
    events.append(ev.HardwareSampled(ts=t + 1, snapshot=snapshot(t + 1, 7_400.0, util=0.0, power=30.0)))
    return events, t + 2


def paused() -> tuple[list[ev.Event], float]:
    events = mid_cycle()
    t = MID_CYCLE_NOW
    events.append(ev.StateChanged(ts=t + 1, state="paused", reason="by user"))
    events += _finish_gamma(t)
    return events, t + 20


def with_nasty_proposal() -> tuple[list[ev.Event], float]:
    events = mid_cycle()
    t = MID_CYCLE_NOW + 10
    events.append(ev.StudentFinished(ts=t, cycle=3, student="rh-gamma",
                                     run=run_record("rh-gamma", 3, start=t - 22, proposal=NASTY_PROPOSAL)))
    return events, t + 1


def backend_down() -> tuple[list[ev.Event], float]:
    return [
        ev.StateChanged(ts=T0, state="backend_down", reason="Ollama is not reachable"),
        ev.BackendDown(ts=T0, host="http://127.0.0.1:11434",
                       error="Ollama is not reachable at http://127.0.0.1:11434 (connection refused)"),
        ev.HardwareSampled(ts=T0, snapshot=snapshot(T0, 900.0, util=0.0, power=15.0, cpu=3.0)),
    ], T0 + 42


def mid_cycle_events() -> list[ev.Event]:
    return mid_cycle()


def session_only() -> list[ev.Event]:
    from tests.ui.fakes import session_start

    return session_start() + [ev.HardwareSampled(ts=T0, snapshot=snapshot(T0, 900.0))]


def no_card_total() -> tuple[list[ev.Event], float]:
    """`rhtui` without NVML and without gpu_total_mb: VRAM is judged from Ollama's /api/ps (the
    resident students only) and the card's size is unknown, so it reads N/A and no limit is drawn."""
    from dataclasses import replace

    out: list[ev.Event] = []
    for e in mid_cycle():
        if isinstance(e, ev.SessionStarted):
            out.append(replace(e, probe="no GPU (VRAM judged from Ollama's /api/ps)"))
            out.append(ev.LogMessage(ts=e.ts, level="warning", text=(
                "no NVML (the NVIDIA driver library (libnvidia-ml) was not found: no NVIDIA driver on this "
                "machine): VRAM is judged from Ollama's /api/ps")))
        elif isinstance(e, ev.HardwareSampled):
            s = e.snapshot
            used = max(0.0, (s.vram_used_mb or 0.0) - 900.0)
            out.append(ev.HardwareSampled(ts=e.ts, vram_source="ollama-ps", snapshot=replace(
                s, source="none", gpu_name=None, vram_total_mb=None, vram_used_mb=used, gpu_util_pct=None,
                temp_c=None, power_w=None, process_vram_mb=None)))
        else:
            out.append(e)
    return out, MID_CYCLE_NOW


def research_rounds() -> tuple[list[ev.Event], float]:
    """Round 1 judged (four proposals, rh-beta's failing the verifier, rh-zeta's critique, rh-delta's
    synthesis, the scores); round 2 under way: rh-alpha writes while rh-beta preloads beside it."""
    return round_under_way()


def judged_rounds(n: int = 8) -> tuple[list[ev.Event], float]:
    """`n` judged rounds with seeded scores (a different proposer failing the verifier now and then),
    for the score chart."""
    import random

    rng = random.Random(7)
    events: list[ev.Event] = list(session_start())
    events.append(ev.HardwareSampled(ts=T0, snapshot=snapshot(T0, 900.0)))
    t = T0
    failing = (None, "rh-beta", None, "rh-gamma", None, None, "rh-beta", None)
    for cycle in range(1, n + 1):
        scores = {s: round(min(10.0, max(1.0, v + rng.uniform(-1.2, 1.2) + 0.1 * cycle)), 1)
                  for s, v in ROUND_SCORES.items()}
        scores["rh-beta"] = round(5.0 + rng.uniform(-1.0, 1.0), 1)
        done, t = research_round(cycle, t, scores=scores, failing=failing[(cycle - 1) % len(failing)])
        events += done
    return events, t + 1
