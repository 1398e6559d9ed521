"""The status bar's energy and cost: the session's Wh summed from its runs' energy_j (as `rhtui
report` sums it), N/A while no power was measured, the cost only with `cost.price_per_kwh` set."""

from __future__ import annotations

from dataclasses import replace

import pytest
from textual.app import App, ComposeResult

from rhtui.engine import events as ev
from rhtui.engine.config import BudgetPolicy
from rhtui.tui.screens.base import status_info
from rhtui.tui.state import UiModel
from rhtui.tui.widgets.status_bar import StatusBar
from tests.ui.fakes import STUDENTS, T0, run_record, session_start, snapshot


def model(price: float | None = None, currency: str = "") -> UiModel:
    m = UiModel(session_name="rh_main", host="http://127.0.0.1:11434", students=[(s, s, True) for s in STUDENTS],
                duration_s=3600.0, budget=BudgetPolicy(), price_per_kwh=price, currency=currency)
    for e in session_start():
        m.apply(e)
    return m


def finished(student: str, energy_j: float | None) -> ev.StudentFinished:
    run = replace(run_record(student, 1), energy_j=energy_j)
    return ev.StudentFinished(ts=run.ended_at, cycle=1, student=student, run=run)


def test_the_model_sums_the_runs_energy_and_prices_it():
    m = model(price=0.30, currency="EUR")
    assert m.energy_wh is None and m.cost is None  # nothing measured yet
    m.apply(ev.HardwareSampled(ts=T0 + 1, snapshot=snapshot(T0 + 1, 900.0, power=30.0)))
    assert m.energy_wh == 0.0 and m.cost == 0.0  # power is measured: nothing drawn by a run yet
    m.apply(finished("rh-alpha", 5400.0))
    m.apply(finished("rh-beta", 1800.0))
    m.apply(finished("rh-gamma", None))  # a run without power readings adds nothing
    assert m.energy_wh == pytest.approx(2.0)
    assert m.cost == pytest.approx(2.0 / 1000 * 0.30)
    info = status_info(m)
    assert (info.energy_wh, info.cost, info.currency) == (m.energy_wh, m.cost, "EUR")


def test_no_power_reads_n_a_and_no_price_shows_no_cost():
    m = model()
    m.apply(ev.HardwareSampled(ts=T0 + 1, snapshot=replace(snapshot(T0 + 1, 900.0), power_w=None)))
    m.apply(finished("rh-alpha", None))
    assert m.energy_wh is None and m.cost is None
    m = model()
    m.apply(finished("rh-alpha", 7200.0))
    assert m.energy_wh == pytest.approx(2.0) and m.cost is None


class OneBar(App[None]):
    def __init__(self, bar: StatusBar) -> None:
        super().__init__()
        self.bar = bar

    def compose(self) -> ComposeResult:
        yield self.bar


async def shown(m: UiModel, width: int) -> str:
    bar = StatusBar("dashboard", id="w")
    app = OneBar(bar)
    async with app.run_test(size=(width, 4)) as pilot:
        await pilot.pause()
        bar.show(status_info(m))
        await pilot.pause()
        return str(bar.query_one("#sb-info").render())


async def test_the_status_bar_shows_the_sessions_wh_and_cost():
    m = model(price=0.30, currency="EUR")
    m.apply(finished("rh-alpha", 5400.0))
    m.apply(finished("rh-beta", 1800.0))
    line = await shown(m, 160)
    assert line.endswith(" · 2.0 Wh · cost 0.000600 EUR"), line
    m.energy_j_total = 4_500_000.0  # 1.25 kWh: weeks on a card
    line = await shown(m, 160)
    assert line.endswith(" · 1.25 kWh · cost 0.375 EUR"), line
    assert "Wh" not in await shown(m, 80)  # only where it fits: the clock and the runs come first

    m = model()
    line = await shown(m, 160)
    assert line.endswith(" · energy N/A") and "cost" not in line, line
