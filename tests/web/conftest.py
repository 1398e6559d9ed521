"""`rhtui serve` as a process on a free loopback port, and a browser tab on its websocket."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import psutil
import pytest

from tests.helpers import until

RHTUI = [sys.executable, "-m", "rhtui.commands.cli"]
ANSI = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]|\x1b[PX^_].*?\x1b\\|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)"
                  r"|\x1b[=>()][0-9A-B]?")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "browser: drives the served dashboard in a real headless Chromium "
                            "(skipped without one; `make browser-test` installs it)")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def plain(data: bytes) -> str:
    """What a terminal shows of `data`, near enough to search: escape sequences removed."""
    return ANSI.sub("", data.decode("utf-8", "replace"))


@dataclass
class Served:
    """`rhtui serve --port PORT ARGS`, its output in `log`."""

    port: int
    proc: subprocess.Popen
    log: Path
    children: set[int] = field(default_factory=set)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    def output(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")

    def note_children(self) -> set[int]:
        """The tab processes running now (remembered, to check that stopping the server ends them)."""
        with_children = psutil.Process(self.proc.pid).children(recursive=True)
        self.children |= {p.pid for p in with_children}
        return {p.pid for p in with_children}

    def page(self) -> str:
        with urllib.request.urlopen(self.url, timeout=10) as r:
            assert r.status == 200
            return r.read().decode("utf-8")

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
                raise AssertionError(f"rhtui serve did not stop within 60 s of SIGINT:\n{self.output()}") from None
        return self.proc.returncode


def _answers(served: Served) -> bool:
    assert served.proc.poll() is None, f"rhtui serve exited ({served.proc.returncode}):\n{served.output()}"
    try:
        served.page()
    except (urllib.error.URLError, ConnectionError, TimeoutError):
        return False
    return True


@pytest.fixture
def serve(tmp_path: Path) -> Iterator:
    """serve(*args) starts `rhtui serve --port P *args` and waits until its page answers; all are stopped
    (SIGINT) at the end, and none may leave a tab process behind."""
    started: list[Served] = []

    def start(*args: str) -> Served:
        port = free_port()
        log = tmp_path / f"serve-{port}.log"
        env = {**os.environ, "COLUMNS": "200"}  # (the tabs draw in colour, as a browser shows them)
        with log.open("wb") as out:
            proc = subprocess.Popen([*RHTUI, "serve", "--port", str(port), *args], stdout=out,
                                    stderr=subprocess.STDOUT, env=env)
        served = Served(port, proc, log)
        started.append(served)
        until(lambda: _answers(served), timeout=60, interval=0.2, what=lambda: f"serve answers:\n{served.output()}")
        return served

    yield start
    for served in started:
        served.stop()
        left = [pid for pid in served.children if alive(pid)]
        for pid in left:
            os.kill(pid, signal.SIGKILL)
        assert not left, f"tab processes left behind by rhtui serve: {left}\n{served.output()}"


def alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


class Tab:
    """A browser tab as textual-serve's page drives it: the websocket, a size, the bytes the app sends."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws = ws
        self.data = bytearray()
        self.closed = False

    @property
    def text(self) -> str:
        return plain(bytes(self.data))

    async def read_until(self, *texts: str, timeout: float = 60.0) -> str:
        """Read what the app sends until each of `texts` is on screen; fail after `timeout` s."""
        deadline = time.monotonic() + timeout
        while not all(t in self.text for t in texts):
            left = deadline - time.monotonic()
            assert left > 0, f"not on screen within {timeout:g} s: {texts}; got:\n{self.text[-3000:]}"
            assert not self.closed, f"the tab was closed before {texts} showed; got:\n{self.text[-3000:]}"
            try:
                msg = await self.ws.receive(timeout=min(left, 1.0))
            except TimeoutError:
                continue
            if msg.type == aiohttp.WSMsgType.BINARY:
                self.data += msg.data
            elif msg.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.CLOSING):
                self.closed = True
        return self.text

    async def press(self, key: str) -> None:
        await self.ws.send_json(["stdin", key])


@asynccontextmanager
async def open_tab(port: int, *, width: int = 140, height: int = 40,
                   headers: dict[str, str] | None = None) -> AsyncIterator[Tab]:
    """Open the page's websocket as the page does (its size in the query, then a resize)."""
    async with aiohttp.ClientSession() as session, session.ws_connect(
        f"http://127.0.0.1:{port}/ws?width={width}&height={height}", headers=headers or {}
    ) as ws:
        await ws.send_json(["resize", {"width": width, "height": height}])
        yield Tab(ws)
