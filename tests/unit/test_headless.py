"""The headless log: one plain line per event, untrusted text made inert."""

from __future__ import annotations

import io

from rich.console import Console

from rhtui.commands.headless import LinePrinter
from rhtui.engine import events as ev
from rhtui.engine.records import RunRecord


def printed(*events) -> str:
    buf = io.StringIO()
    printer = LinePrinter(Console(file=buf, force_terminal=True, color_system="truecolor", width=300))
    for e in events:
        printer(e)
    return buf.getvalue()


def test_server_text_cannot_inject_escapes_or_markup():
    out = printed(ev.BackendDown(ts=0, host="http://h:1", error="boom \x1b]0;owned\x07 \x1b[2J [bold red]x[/]"))
    assert "\x1b]0;" not in out and "\x1b[2J" not in out
    assert "[bold red]x[/]" in out  # shown literally


def test_high_rate_events_are_not_lines_and_a_finished_run_says_what_it_measured():
    run = RunRecord(session_id=1, cycle=1, student="rh-alpha", model="rh-alpha", status="ok", started_at=0, ended_at=30,
                    load_s=2.0, total_s=30.5, tokens=2847, tok_per_s=100.2, vram_mb=3847, id=7)
    progress = ev.TokensProgress(ts=0, cycle=1, student="rh-alpha", tokens=5, elapsed_s=1, tok_per_s=5, timeout_s=60)
    out = printed(progress, ev.StudentFinished(ts=0, cycle=1, student="rh-alpha", run=run))
    assert out.count("\n") == 1
    assert "[rh-alpha] done in 30.5 s (load 2.0 s): 2847 tokens, 100.2 tok/s, VRAM 3,847 MB; saved run #7" in out
