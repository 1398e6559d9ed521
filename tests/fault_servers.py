"""Small misbehaving servers for the fault tests, on 127.0.0.1 only.

- `FaultServer`: an aiohttp app whose routes a test gives (a server that accepts and never
  answers, a 500, HTML, a 20 MB line...), started on the test's loop (`await start()`) or in a
  thread of its own (`start_in_thread()`) for code that runs its own loop, like the CLI under
  CliRunner;
- `TcpPlug`: a TCP relay in front of a real server that can be *wedged*: it keeps accepting
  connections and holds them, but relays nothing more either way (a hung Ollama): bytes sent
  while wedged are dropped, and a connection made while wedged waits unanswered.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Awaitable, Callable

from aiohttp import web

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class FaultServer:
    def __init__(self, routes: dict[tuple[str, str], Handler]) -> None:
        self.routes = routes
        self.url = ""
        self._runner: web.AppRunner | None = None
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopped: asyncio.Event | None = None

    async def start(self) -> str:
        app = web.Application()
        for (method, path), handler in self.routes.items():
            app.router.add_route(method, path, handler)
        self._runner = web.AppRunner(app, handler_cancellation=True, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = self._runner.addresses[0][1]
        self.url = f"http://127.0.0.1:{port}"
        return self.url

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    def start_in_thread(self) -> str:
        ready = threading.Event()

        def serve() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            self._stopped = asyncio.Event()
            loop.run_until_complete(self.start())
            ready.set()
            loop.run_until_complete(self._stopped.wait())
            loop.run_until_complete(self.stop())
            loop.close()

        self._thread = threading.Thread(target=serve, daemon=True, name="fault-server")
        self._thread.start()
        assert ready.wait(30), "the fault server did not start"
        return self.url

    def stop_thread(self) -> None:
        if self._loop is not None and self._stopped is not None:
            self._loop.call_soon_threadsafe(self._stopped.set)
        if self._thread is not None:
            self._thread.join(30)


async def never_answer(request: web.Request) -> web.StreamResponse:
    """Accept the request and never answer (cancelled when the server stops)."""
    await asyncio.Event().wait()
    raise AssertionError("unreachable")


class TcpPlug:
    """A relay to `target` ("host", port) that can be wedged: connections are still accepted (and
    held open), but no byte is relayed any more, either way, until it is unwedged (what was sent
    meanwhile is dropped, as a hung server would never act on it)."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.wedged = False
        self._flowing = asyncio.Event()
        self._flowing.set()
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self.url = ""

    async def start(self) -> str:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        port = self._server.sockets[0].getsockname()[1]
        self.url = f"http://127.0.0.1:{port}"
        return self.url

    def wedge(self) -> None:
        self.wedged = True
        self._flowing.clear()

    def unwedge(self) -> None:
        self.wedged = False
        self._flowing.set()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        try:
            await self._flowing.wait()  # a connection made while wedged is held, unanswered
            up_r, up_w = await asyncio.open_connection(*self.target)
            await asyncio.gather(self._pipe(reader, up_w), self._pipe(up_r, writer))
        except (OSError, asyncio.CancelledError):
            pass
        finally:
            self._tasks.discard(task)
            with contextlib.suppress(Exception):
                writer.close()

    async def _pipe(self, src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
        try:
            while data := await src.read(65536):
                if self.wedged:  # a hung server: what it is sent goes nowhere, and nothing comes back
                    continue
                dst.write(data)
                await dst.drain()
        finally:
            with contextlib.suppress(Exception):
                dst.close()

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._server is not None:
            await self._server.wait_closed()
