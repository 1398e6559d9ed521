"""Energy and cost against the simulator's power figures, over real loopback HTTP: a short session,
then `rhtui report --format json`: energy_wh = sum(energy_j) / 3600 per student and in total,
cost = energy_wh / 1000 × price_per_kwh, tokens per Wh, and the comparison with an API's price."""

from __future__ import annotations

import asyncio
import io
import json

import pytest
from rich.console import Console
from typer.testing import CliRunner

from rhtui.commands.cli import app
from rhtui.commands.report import print_report
from rhtui.engine.config import CostPolicy
from rhtui.sim.scenario import load_scenario

pytestmark = pytest.mark.integration

GPU = load_scenario("rtx4070s").gpu


async def report_json(db, cost: CostPolicy | None = None) -> dict:
    buf = io.StringIO()
    console = Console(file=buf, color_system=None, width=200)
    assert await print_report(db, None, "json", 10, console, cost=cost) == 0
    return json.loads(buf.getvalue())


async def test_energy_and_cost_of_a_session_on_the_simulator(make_engine, store, tmp_path, monkeypatch):
    orch, _rec = make_engine()
    await asyncio.wait_for(orch.run(), 120)
    runs = [r for r in await store.runs(session_id=orch.session_id) if r.status == "ok"]
    assert len(runs) == 6
    # each run's energy is the simulated card's power over it: between its idle and its max draw
    for r in runs:
        assert r.energy_j is not None and r.wall_s is not None, r
        assert GPU.idle_power_w * 0.5 * r.wall_s <= r.energy_j <= GPU.max_power_w * r.wall_s, r
    total_j = sum(r.energy_j or 0.0 for r in runs)
    tokens = sum(r.tokens or 0 for r in runs)
    assert total_j / sum(r.wall_s or 0.0 for r in runs) > GPU.idle_power_w  # generating draws more than idle

    await store.flush()
    prices = CostPolicy(price_per_kwh=0.30, api_price_per_mtok=10.0, currency="EUR")
    data = await report_json(tmp_path / "rhtui.db", prices)
    totals = data["totals"]
    assert totals["energy_wh"] == pytest.approx(total_j / 3600)
    assert totals["cost"] == pytest.approx(total_j / 3600 / 1000 * 0.30)
    assert totals["tokens_total"] == tokens
    assert totals["tokens_per_wh"] == pytest.approx(tokens / (total_j / 3600))
    local = totals["cost"] / tokens * 1e6
    assert totals["cost_per_mtok"] == pytest.approx(local)
    assert totals["api_over_local"] == pytest.approx(10.0 / local)
    said = totals["comparison"]
    assert said.startswith("local: ") and " per Mtok vs API: 10.00 EUR per Mtok, " in said
    assert said.endswith("× cheaper")
    for row in data["students"]:
        mine = [r for r in runs if r.student == row["student"]]
        wh = sum(r.energy_j or 0.0 for r in mine) / 3600
        assert row["energy_wh"] == pytest.approx(wh)
        assert row["cost"] == pytest.approx(wh / 1000 * 0.30)
        assert row["tokens_per_wh"] == pytest.approx(sum(r.tokens or 0 for r in mine) / wh)
    [cycle] = data["cycles"]
    assert (cycle["cycle"], cycle["completed"], cycle["skipped"], cycle["tokens"]) == (1, 6, 0, tokens)
    assert cycle["energy_wh"] == pytest.approx(total_j / 3600)

    # without a price: energy, no cost; the price through the environment reaches `rhtui report`
    data = await report_json(tmp_path / "rhtui.db")
    assert data["totals"]["energy_wh"] == pytest.approx(total_j / 3600)
    assert data["totals"]["cost"] is None and data["totals"]["comparison"] is None
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "no-config"))
    monkeypatch.setenv("RHTUI_COST__PRICE_PER_KWH", "0.25")
    monkeypatch.setenv("RHTUI_COST__API_PRICE_PER_MTOK", "2")
    await store.close()
    # the command runs its own event loop: in a thread of its own here
    r = await asyncio.to_thread(CliRunner().invoke, app, ["report", "--format", "json", "--data-dir", str(tmp_path)])
    assert r.exit_code == 0, r.output
    totals = json.loads(r.output)["totals"]
    assert totals["cost"] == pytest.approx(total_j / 3600 / 1000 * 0.25)
    assert totals["price_per_kwh"] == 0.25 and totals["api_price_per_mtok"] == 2.0
    table = await asyncio.to_thread(CliRunner().invoke, app, ["report", "--data-dir", str(tmp_path)],
                                    env={"COLUMNS": "200"})
    assert table.exit_code == 0, table.output
    assert "Energy: " in table.output and "at 0.250 per kWh" in table.output
    assert "local: " in table.output and "per Mtok vs API: 2.00 per Mtok" in table.output
