"""Snapshot tests: what a person sees, at 80x24 and 160x50, with a fixed clock and seeded events.

Every accepted SVG in __snapshots__/ was looked at (converted to PNG) before it was accepted.
"""

from __future__ import annotations

import pytest

from tests.ui import scenes

SIZES = [pytest.param((80, 24), id="80x24"), pytest.param((160, 50), id="160x50")]


async def _settle(pilot) -> None:
    await pilot.pause()
    await pilot.wait_for_scheduled_animations()
    await pilot.pause()


@pytest.mark.parametrize("size", SIZES)
def test_dashboard_mid_cycle(snap_compare, make_ui, size):
    """Cycle 3: alpha and beta done, gamma running with live tok/s, delta next, zeta may not fit."""
    events, now = scenes.dashboard_mid_cycle()
    assert snap_compare(make_ui(events, now=now), terminal_size=size, run_before=_settle)


@pytest.mark.parametrize("size", SIZES)
def test_student_skipped_for_vram(snap_compare, make_ui, size):
    """rh-zeta skipped: it does not fit (reason in the queue and the log)."""
    events, now = scenes.skipped_for_vram()
    assert snap_compare(make_ui(events, now=now), terminal_size=size, run_before=_settle)


@pytest.mark.parametrize("size", SIZES)
def test_emergency_banner(snap_compare, make_ui, size):
    """Emergency stop: a red banner that says what happened and that r resumes."""
    events, now = scenes.emergency()
    assert snap_compare(make_ui(events, now=now), terminal_size=size, run_before=_settle)


@pytest.mark.parametrize("size", SIZES)
def test_paused(snap_compare, make_ui, size):
    """Paused by the user: the state badge and a banner say so."""
    events, now = scenes.paused()
    assert snap_compare(make_ui(events, now=now), terminal_size=size, run_before=_settle)


@pytest.mark.parametrize("size", SIZES)
def test_proposals_with_escapes_and_markup(snap_compare, make_ui, size):
    """A proposal with ANSI/OSC escapes, Rich markup, raw HTML and links: all shown as text."""
    events, now = scenes.with_nasty_proposal()
    assert snap_compare(make_ui(events, now=now), terminal_size=size, press=["3"], run_before=_settle)


@pytest.mark.parametrize("size", SIZES)
def test_help_screen(snap_compare, make_ui, size):
    """? lists every key with what it does."""
    events, now = scenes.dashboard_mid_cycle()
    assert snap_compare(make_ui(events, now=now), terminal_size=size, press=["question_mark"],
                        run_before=_settle)


@pytest.mark.parametrize("size", SIZES)
def test_backend_down(snap_compare, make_ui, size):
    """Ollama unreachable at start: where rhtui looked and how to fix it."""
    events, now = scenes.backend_down()
    assert snap_compare(make_ui(events, now=now, profiles=False), terminal_size=size, run_before=_settle)


@pytest.mark.parametrize("size", SIZES)
def test_charts_view(snap_compare, make_ui, size):
    """2: the VRAM timeline with its limit lines, tokens per cycle, tok/s and seconds per student."""
    events, now = scenes.skipped_for_vram()
    assert snap_compare(make_ui(events, now=now), terminal_size=size, press=["2"], run_before=_settle)


def test_history_view(snap_compare, make_ui):
    """4: this session's runs and skips."""
    events, now = scenes.skipped_for_vram()
    assert snap_compare(make_ui(events, now=now), terminal_size=(80, 24), press=["4"], run_before=_settle)


def test_no_color(snap_compare, make_ui, monkeypatch):
    """NO_COLOR: still readable — state, zones and severities carry glyphs, not only colour."""
    monkeypatch.setenv("NO_COLOR", "1")
    events, now = scenes.emergency()
    assert snap_compare(make_ui(events, now=now), terminal_size=(80, 24), run_before=_settle)


def test_light_theme(snap_compare, make_ui):
    """A built-in light theme (chosen from the command palette's Theme command)."""
    events, now = scenes.skipped_for_vram()

    async def run_before(pilot):
        pilot.app.theme = "textual-light"
        await _settle(pilot)

    assert snap_compare(make_ui(events, now=now), terminal_size=(160, 50), run_before=run_before)


@pytest.mark.parametrize("size", SIZES)
def test_no_card_total(snap_compare, make_ui, size):
    """No NVML and no gpu_total_mb: VRAM used from Ollama's /api/ps, the card's total N/A, no limit marks."""
    events, now = scenes.no_card_total()
    assert snap_compare(make_ui(events, now=now), terminal_size=size, run_before=_settle)


def test_charts_view_without_a_card_total(snap_compare, make_ui):
    """2 without the card's total: the VRAM timeline scaled to what was used, titled N/A, no limit lines."""
    events, now = scenes.no_card_total()
    assert snap_compare(make_ui(events, now=now), terminal_size=(160, 50), press=["2"], run_before=_settle)


@pytest.mark.parametrize("size", SIZES)
def test_dashboard_research_round(snap_compare, make_ui, size):
    """A round under way: each student's role and mean score; rh-alpha writes while rh-beta preloads."""
    events, now = scenes.research_rounds()
    assert snap_compare(make_ui(events, now=now), terminal_size=size, run_before=_settle)


@pytest.mark.parametrize("size", SIZES)
def test_proposals_research_round(snap_compare, make_ui, size):
    """3: rounds grouped by cycle, newest first: the question, the proposals (score or unscored, verifier
    ✓ or ✗), the critique, the synthesis; the synthesis shown with its scores and the whole round on top."""
    events, now = scenes.research_rounds()
    assert snap_compare(make_ui(events, now=now), terminal_size=size, press=["3"], run_before=_settle)


@pytest.mark.parametrize("size", SIZES)
def test_ask_modal(snap_compare, make_ui, size):
    """a: the question box, with the tier choice (standard by default)."""
    events, now = scenes.research_rounds()

    async def run_before(pilot):
        await pilot.press("a")
        await _settle(pilot)
        await pilot.press(*"Is the de Bruijn-Newman constant zero?")
        await _settle(pilot)

    assert snap_compare(make_ui(events, now=now), terminal_size=size, run_before=run_before)


@pytest.mark.parametrize("size", SIZES)
def test_charts_research_rounds(snap_compare, make_ui, size):
    """2 after judged rounds: the score per student over cycles beside tokens per cycle."""
    events, now = scenes.judged_rounds()
    assert snap_compare(make_ui(events, now=now), terminal_size=size, press=["2"], run_before=_settle)
