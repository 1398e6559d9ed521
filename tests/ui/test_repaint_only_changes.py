"""A dashboard that sits idle repaints only what a person would see change: one repaint a
second for the clock and the hardware sample together, the gauge rows whose text moved,
the queue row whose cell moved; and full garbage collections are spaced out while
allocations come at a trickle."""

from __future__ import annotations

import gc

import pytest
from rich.text import Text
from textual.app import App, ComposeResult
from textual.geometry import Region
from textual.widgets import DataTable
from textual.widgets.data_table import CellDoesNotExist

from rhtui.engine import events as ev
from rhtui.engine.config import BudgetPolicy
from rhtui.tui.idle_gc import IdleCollector
from rhtui.tui.textual_compat import update_row_cells
from rhtui.tui.widgets.gauges import Gauges
from tests.ui.fakes import T0, mid_cycle, snapshot


class GaugeApp(App[None]):
    def compose(self) -> ComposeResult:
        yield Gauges(BudgetPolicy(), id="gauges")


async def test_a_new_cpu_figure_repaints_the_gauges_cpu_row_alone(monkeypatch):
    app = GaugeApp()
    async with app.run_test(size=(100, 12)) as pilot:
        gauges = app.query_one(Gauges)
        gauges.show(snapshot(T0, 6000.0, cpu=12.0), "probe", BudgetPolicy())
        await pilot.pause()
        gauges.render()  # drawn once, as the screen does
        calls: list[tuple[Region, ...]] = []
        monkeypatch.setattr(gauges, "refresh", lambda *regions, **kw: calls.append(regions))
        gauges.show(snapshot(T0 + 1, 6000.0, cpu=47.0), "probe", BudgetPolicy())
        assert len(calls) == 1 and len(calls[0]) == 1, calls
        (row,) = calls[0]
        assert (row.y, row.height) == (3, 1), "the RAM/CPU line is the fourth"
        assert "47 %" in gauges.render().split("\n")[3].plain
        calls.clear()
        gauges.show(snapshot(T0 + 2, 6001.0, cpu=47.2), "probe", BudgetPolicy())  # same as displayed
        assert calls == []


class TableApp(App[None]):
    def compose(self) -> ComposeResult:
        table: DataTable[Text] = DataTable()
        table.add_column("Name", key="name")
        table.add_column("Now", key="now")
        for name in ("a", "b", "c"):
            table.add_row(Text(name), Text("idle"), key=name)
        yield table


async def test_updating_a_rows_cells_repaints_that_row_alone(monkeypatch):
    app = TableApp()
    async with app.run_test(size=(60, 10)) as pilot:
        table = app.query_one(DataTable)
        await pilot.pause()
        calls: list[tuple[Region, ...]] = []
        monkeypatch.setattr(table, "refresh", lambda *regions, **kw: calls.append(regions))
        update_row_cells(table, "b", {"now": Text("12 t/s")})
        assert str(table.get_cell("b", "now")) == "12 t/s"
        assert str(table.get_cell("a", "now")) == "idle"
        assert len(calls) == 1 and len(calls[0]) == 1, calls
        assert calls[0][0].height == 1 and calls[0][0].y == table.get_row_index("b") + 1  # under the header
        with pytest.raises(CellDoesNotExist):
            update_row_cells(table, "nobody", {"now": Text("x")})


async def test_a_hardware_sample_moves_the_clock_in_the_same_frame(make_ui):
    app = make_ui(mid_cycle())
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        before = app.model.versions["status"]
        app.clock.advance(3.0)  # type: ignore[attr-defined]
        app.engine_event(ev.HardwareSampled(ts=app.clock.now(), snapshot=snapshot(app.clock.now(), 6000.0)))
        await pilot.pause()
        assert app.model.now == app.clock.now()
        assert app.model.versions["status"] > before


class Clock:
    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


def young_collections(c: IdleCollector, times: int) -> None:
    for _ in range(times):
        gc.collect(1)


def test_full_collections_are_spaced_out_unless_allocations_flood():
    clock = Clock()
    woken: list[float] = []
    c = IdleCollector(lambda: woken.append(clock.t), min_interval_s=30.0, flood=4, clock=clock)
    assert c.install()
    try:
        gc.collect()  # a full collection now: the interval starts
        young_collections(c, c._every)
        assert woken == [], "due by CPython's count, but 30 s have not passed"
        clock.t += 31.0
        young_collections(c, 1)
        assert woken == [131.0]
        assert c.step() is None and c.collections == 1
        young_collections(c, 4 * c._every)
        assert woken == [131.0, 131.0], "a flood is collected at once"
    finally:
        c.uninstall()
