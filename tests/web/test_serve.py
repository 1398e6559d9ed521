"""`rhtui serve`: the dashboard in a browser. The server answers on loopback with textual-serve's page;
each tab (its websocket) runs its own rhtui; a tab refused by the engine lock says why in the tab; a
page of another site cannot open a dashboard; ARGS are checked before anything is served."""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import sys

import aiohttp
import pytest
from typer.testing import CliRunner

from rhtui.commands.cli import app
from rhtui.commands.serve import check_tab_args
from tests.helpers import until
from tests.web.conftest import RHTUI, alive, free_port, open_tab

pytestmark = pytest.mark.integration


def test_serve_answers_on_loopback_with_the_dashboard_page(serve, tmp_path):
    served = serve("--demo", "--data-dir", str(tmp_path))
    html = served.page()
    assert "rhtui --demo --data-dir" in html  # the page's title: what each tab runs
    assert f'data-session-websocket-url="ws://127.0.0.1:{served.port}/ws"' in html
    assert "textual.js" in html
    out = served.output()
    assert f"http://127.0.0.1:{served.port} serves `rhtui --demo --data-dir" in out
    assert "rhtui serve watch" in out  # a session per tab: how to follow one from many tabs


def test_the_page_points_its_websocket_at_the_address_the_browser_used(serve, tmp_path):
    served = serve("--demo", "--data-dir", str(tmp_path))
    import urllib.request

    req = urllib.request.Request(served.url, headers={"Host": "localhost:9000"})  # an SSH tunnel's local port
    with urllib.request.urlopen(req, timeout=10) as r:
        html = r.read().decode()
    assert 'data-session-websocket-url="ws://localhost:9000/ws"' in html


async def test_a_tab_runs_the_dashboard_and_a_second_one_is_told_why_not(serve, tmp_path):
    served = serve("--demo", "--speed", "20", "--data-dir", str(tmp_path))
    async with open_tab(served.port) as first:
        await first.read_until("rh-alpha", "rh-zeta")  # the dashboard's student queue
        assert len(served.note_children()) == 1
        await first.read_until("RUNNING")  # the engine has started: `p` pauses it (before, it has nothing to pause)
        await first.press("p")
        await first.read_until("PAUSED")
        # one engine per database: the second tab's rhtui is refused, and the tab says so and what to do
        async with open_tab(served.port, width=100) as second:
            text = await second.read_until("rhtui serve watch", timeout=60)
        assert all(len(line) <= 100 for line in text.splitlines())  # wrapped to the tab's width
        said = " ".join(text.split())
        assert "another rhtui engine is running on the database" in said
        assert "`rhtui --demo --speed 20" in said and "ended (exit 2) before its dashboard started" in said
    # closing a tab quits its rhtui (the session is stopped as q stops it)
    until(lambda: not [p for p in served.children if alive(p)], timeout=60, what="the closed tab's rhtui exits")


async def test_stopping_the_server_stops_each_tab_s_session_gracefully(serve, tmp_path):
    served = serve("--demo", "--data-dir", str(tmp_path))
    async with open_tab(served.port) as tab:
        await tab.read_until("rh-alpha", "RUNNING")
        assert served.note_children()
        assert served.stop() == 0  # the fixture then checks that no tab process is left
    with sqlite3.connect(tmp_path / "rhtui-demo.db") as db:
        sessions = db.execute("SELECT ended_at, end_reason FROM sessions").fetchall()
    assert len(sessions) == 1 and sessions[0][0] is not None, sessions
    assert sessions[0][1] == "stopped by user", sessions  # as q stops it, not killed ("interrupted")


@pytest.mark.parametrize("headers", [
    {"Origin": "http://evil.example"},  # a page of another site, in the user's browser
    {"Origin": "http://evil.example:{port}", "Host": "evil.example:{port}"},  # DNS rebinding to loopback
    {"Origin": "null"},
])
async def test_a_page_of_another_site_cannot_open_a_dashboard(serve, tmp_path, headers):
    served = serve("--demo", "--data-dir", str(tmp_path))
    headers = {k: v.format(port=served.port) for k, v in headers.items()}
    with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
        async with open_tab(served.port, headers=headers):
            pass
    assert refused.value.status == 403
    assert "refused" in served.output()
    assert not served.note_children()


def test_arguments_are_checked_before_serving():
    assert check_tab_args([]) == (None, None)
    assert check_tab_args(["--demo", "--speed", "20"]) == (None, None)
    assert check_tab_args(["watch", "--session", "s"]) == ("watch", None)
    assert check_tab_args(["--demo", "watch"]) == ("watch", None)
    for args, said in [
        (["--headless"], "without a dashboard (--headless)"),
        (["report"], "report is not a dashboard"),
        (["--bogus"], "No such option: --bogus"),
        (["watch", "--bogus"], "see rhtui watch --help"),
        (["--version"], "prints and exits"),
        (["--max-cycles", "x"], "not a valid rhtui command"),
    ]:
        command, problem = check_tab_args(args)
        assert problem is not None and said in problem, (args, problem)


def test_options_before_serve_and_after_it_reach_each_tab(monkeypatch):
    from rhtui.commands import webserver

    seen = {}

    def fake_serve(self, debug: bool = False) -> None:
        seen["command"], seen["title"] = self.command, self.title

    monkeypatch.setattr(webserver.DashboardServer, "serve", fake_serve)
    r = CliRunner().invoke(app, ["--demo", "--speed", "20", "--policy", "efficiency", "serve", "--port", "8123",
                                 "--", "--data-dir", "/tmp/a b"])
    assert r.exit_code == 0, r.output
    assert seen["title"] == "rhtui --demo --policy efficiency --speed 20.0 --data-dir '/tmp/a b'"
    assert seen["command"].startswith(f"exec {sys.executable} -m rhtui.commands.cli --demo --policy efficiency")
    assert seen["command"].endswith("--data-dir '/tmp/a b'")


def test_an_address_other_machines_reach_needs_allow_remote():
    r = CliRunner().invoke(app, ["serve", "--bind", "0.0.0.0", "--demo"])
    assert r.exit_code == 2
    assert "not a loopback address" in r.output and "--allow-remote" in r.output


def test_a_port_in_use_is_said_plainly(tmp_path):
    port = free_port()
    import socket

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", port))
        busy.listen()
        r = subprocess.run([*RHTUI, "serve", "--port", str(port), "--demo"], capture_output=True, text=True,
                           timeout=60)
    assert r.returncode == 1
    assert f"cannot listen on 127.0.0.1:{port}" in r.stderr and "another --port" in r.stderr


async def test_serve_watch_follows_a_headless_engine_and_closing_the_tab_leaves_it_running(serve, tmp_path):
    engine = subprocess.Popen([*RHTUI, "--demo", "--headless", "--speed", "20", "--data-dir", str(tmp_path)],
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        until(lambda: (tmp_path / "rhtui-demo.db").exists(), timeout=60, what="the headless engine's database")
        served = serve("watch", "--demo", "--data-dir", str(tmp_path))
        async with open_tab(served.port) as tab:
            await tab.read_until("rh-alpha", "RUNNING")
            await tab.press("p")  # reaches the headless engine through the database
            await tab.read_until("PAUSED")
        until(lambda: not [p for p in served.children if alive(p)], timeout=60, what="the tab's rhtui exits")
        assert engine.poll() is None, "closing the watching tab stopped the headless engine"
    finally:
        engine.send_signal(signal.SIGINT)
        out, _ = engine.communicate(timeout=60)
    assert "state: paused" in out, out
