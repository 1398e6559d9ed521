"""`rhtui sim --bind` serves loopback only unless --allow-remote (the simulator has no
authentication), and `--demo --speed` is refused above what the engine keeps up with."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from rhtui.commands.cli import MAX_DEMO_SPEED, app
from rhtui.engine.config import is_loopback


@pytest.mark.parametrize("bind", ["0.0.0.0", "::", "192.0.2.10", "gpu-box", "10.0.0.1"])
def test_sim_refuses_a_non_loopback_bind(bind):
    r = CliRunner().invoke(app, ["sim", "--bind", bind, "--port", "1"])
    assert r.exit_code == 2, r.output
    assert f"--bind {bind} is not a loopback address" in r.output and "--allow-remote" in r.output, r.output


@pytest.mark.parametrize(("bind", "ok"), [("127.0.0.1", True), ("127.1.2.3", True), ("::1", True), ("[::1]", True),
                                          ("localhost", True), ("0.0.0.0", False), ("::", False), ("box", False)])
def test_loopback(bind, ok):
    assert is_loopback(bind) is ok


def test_sim_with_allow_remote_gets_past_the_guard(monkeypatch):
    import rhtui.sim.server

    served: list[dict] = []

    async def fake_serve(**kwargs) -> None:  # nothing listens: only what would have been served is kept
        served.append(kwargs)

    monkeypatch.setattr(rhtui.sim.server, "serve", fake_serve)
    r = CliRunner().invoke(app, ["sim", "--bind", "0.0.0.0", "--port", "11500", "--allow-remote"])
    assert r.exit_code == 0, r.output
    assert [(s["host"], s["port"]) for s in served] == [("0.0.0.0", 11500)]


def test_demo_speed_above_the_engines_pace_is_refused(tmp_path):
    r = CliRunner().invoke(app, ["--demo", "--headless", "--speed", "3000", "--data-dir", str(tmp_path)])
    assert r.exit_code == 2, r.output
    assert f"--speed 3000 is above {MAX_DEMO_SPEED:g}" in r.output and "recorded as timeouts" in r.output
    assert not (tmp_path / "rhtui-demo.db").exists()  # nothing was started
