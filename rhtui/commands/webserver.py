"""The web server of `rhtui serve`: textual-serve's `Server`, with what rhtui needs on top.

- A tab whose `rhtui` ends before its dashboard starts (a second tab refused by the engine lock, a
  bad config) shows that process's message in the browser, with what to do; textual-serve alone
  leaves such a tab on its splash screen and prints the message on the server's terminal only.
- The page points its websocket at the address the browser used (an SSH tunnel to another local
  port works), unless --public-url names one.
- A websocket opened by a page of another site is refused (its Origin is not this server), and so
  is one reached under a name that is not loopback unless --allow-remote: a web page the user
  visits cannot start a dashboard and press its keys (cross-site websocket hijacking, DNS rebinding).

Built on textual-serve 1.1.3 (pinned in constraints.txt): `handle_websocket` follows its own, with
`TabService` in place of `AppService`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import shlex
import textwrap
from typing import Any, cast
from urllib.parse import urlsplit

from aiohttp import WSCloseCode, web
from textual_serve.app_service import AppService
from textual_serve.server import Server, to_int

from rhtui.commands.context import make_console
from rhtui.engine.config import is_loopback

log = logging.getLogger("textual-serve")

STDERR_KEPT = 64 * 1024
"""How much of a tab process's standard error is kept to show in its tab."""
TAB_EXIT_S = 30.0
"""How long a tab process whose output has ended is waited for (it is finishing: the session closed)."""
_ANSI = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)")
_HOST = re.compile(r"^[A-Za-z0-9.\-]+(:[0-9]{1,5})?$|^\[[0-9A-Fa-f:.%A-Za-z]+\](:[0-9]{1,5})?$")


def base_url(host: str, port: int) -> str:
    """http://host:port, with an IPv6 address in brackets."""
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


class DashboardServer(Server):
    """Serve `rhtui ARGS`, one process per browser tab."""

    def __init__(self, argv: list[str], *, tab_args: list[str], host: str, port: int, public_url: str | None,
                 allow_remote: bool, watching: bool) -> None:
        self.what = shlex.join(["rhtui", *tab_args])
        # `exec`: the shell textual-serve starts becomes rhtui, so signals and the exit code are rhtui's own
        super().__init__(f"exec {shlex.join(argv)}", host=host, port=port, title=self.what,
                         public_url=(public_url or base_url(host, port)).rstrip("/"))
        self.fixed_url = public_url is not None
        self.allow_remote = allow_remote
        self.watching = watching
        self.sockets: set[web.WebSocketResponse] = set()
        self.console = make_console()

    async def on_startup(self, app: web.Application) -> None:
        self.console.print(f"rhtui serve: {self.public_url} serves `{self.what}`: each browser tab runs its own.",
                           markup=False, highlight=False)
        if not self.watching:
            self.console.print(
                "A tab that runs a session stops it when it closes, and one engine runs per data dir: while one "
                "tab runs a session, a second is refused. To follow one session from any number of tabs, run "
                "the engine headless (or as the service) and serve `rhtui serve watch`.",
                markup=False, highlight=False, style="dim")
        self.console.print("Ctrl+C stops the server and every tab's process.", markup=False, highlight=False,
                           style="dim")

    async def handle_index(self, request: web.Request) -> Any:
        """The page, with its websocket on the address this browser used (unless --public-url)."""
        if not self.fixed_url and _HOST.match(request.host):
            # textual-serve builds the page's URLs from self.public_url; the template's context is made
            # without any await after this, so no other request sees this value
            self.public_url = f"{request.scheme}://{request.host}"
        return await super().handle_index(request)

    async def on_shutdown(self, app: web.Application) -> None:
        """Stopping (Ctrl+C, SIGTERM): close every tab's websocket, so that each tab's rhtui is told to quit
        (its session stopped as q stops it) and waited for, rather than cut off when the server goes."""
        for websocket in list(self.sockets):
            with contextlib.suppress(Exception):
                await websocket.close(code=WSCloseCode.GOING_AWAY, message=b"rhtui serve is stopping")

    def refusal(self, request: web.Request) -> str | None:
        """Why this websocket may not start a dashboard (None: it may)."""
        origin = request.headers.get("Origin")
        if origin is None:
            return None  # not a page in a browser: a program on a machine that reaches the port
        if self.fixed_url and _origin(origin) == _origin(self.public_url):
            return None
        if _origin(origin) != f"{request.scheme}://{request.host}".lower():
            return (f"a page from {origin} tried to open a dashboard on {request.host}: only the page this "
                    "server serves may (if you open it under another address, through a proxy, give that "
                    "address with --public-url)")
        name = urlsplit(f"//{request.host}").hostname or ""
        if not self.allow_remote and not is_loopback(name):
            return (f"the dashboard was reached as {request.host}, not a loopback name: a page from another "
                    "site may be using a name that points here; open it as http://127.0.0.1 or "
                    "http://localhost (or start rhtui serve with --allow-remote)")
        return None

    async def handle_websocket(self, request: web.Request) -> web.WebSocketResponse:
        """A browser tab: start its rhtui process and relay between the two (textual-serve's own,
        with the Origin check and TabService)."""
        refusal = self.refusal(request)
        if refusal is not None:
            log.warning("refused: %s", refusal)
            raise web.HTTPForbidden(text=f"rhtui serve: {refusal}\n")
        websocket = web.WebSocketResponse(heartbeat=15)
        width = to_int(request.query.get("width", "80"), 80)
        height = to_int(request.query.get("height", "24"), 24)
        app_service: TabService | None = None
        self.sockets.add(websocket)
        try:
            await websocket.prepare(request)
            app_service = TabService(
                self.command, what=self.what, write_bytes=websocket.send_bytes, write_str=websocket.send_str,
                close=websocket.close, download_manager=self.download_manager, debug=self.debug,
            )
            await app_service.start(width, height)
            try:
                await self._process_messages(websocket, app_service)
            finally:
                await app_service.stop()
        except asyncio.CancelledError:
            await websocket.close()
        except Exception as error:
            log.exception(error)
        finally:
            self.sockets.discard(websocket)
            if app_service is not None:
                await app_service.stop()
        return websocket


def _origin(url: str) -> str:
    parts = urlsplit(url.strip().lower())
    return f"{parts.scheme}://{parts.netloc}"


class _Tee:
    """A tab process's standard error: read on by textual-serve as before, and its start kept here."""

    def __init__(self, reader: asyncio.StreamReader, kept: bytearray) -> None:
        self.reader = reader
        self.kept = kept

    async def read(self, n: int = -1) -> bytes:
        data = await self.reader.read(n)
        room = STDERR_KEPT - len(self.kept)
        if room > 0:
            self.kept += data[:room]
        return data


class TabService(AppService):
    """One browser tab's rhtui process; when it ends before its dashboard starts, its message is shown
    in the tab (textual-serve would only print it on the server's terminal)."""

    def __init__(self, command: str, *, what: str, **kwargs: Any) -> None:
        super().__init__(command, **kwargs)
        self.what = what
        self.started = False
        self.stderr_text = bytearray()
        self.width = 80

    async def start(self, width: int, height: int) -> None:
        self.width = width
        await super().start(width, height)

    async def _open_app_process(self, width: int = 80, height: int = 24) -> asyncio.subprocess.Process:
        process = await super()._open_app_process(width, height)
        if process.stderr is not None:
            process.stderr = cast(asyncio.StreamReader, _Tee(process.stderr, self.stderr_text))
        return process

    async def on_data(self, payload: bytes) -> None:
        self.started = True
        await super().on_data(payload)

    async def run(self) -> None:
        await super().run()  # until the process's output ends: it is exiting
        if self._process is not None:
            # and until it has exited, so that a server that stops leaves no tab process behind
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._process.wait(), TAB_EXIT_S)
        if not self.started:
            with contextlib.suppress(Exception):  # the tab is gone already: nobody to tell
                await self.remote_write_bytes(self.failure_text().encode("utf-8"))

    def failure_text(self) -> str:
        """What the tab shows: the process's own message, then what happened and what to do."""
        code = self._process.returncode if self._process is not None else None
        said = _ANSI.sub("", self.stderr_text.decode("utf-8", "replace")).strip()
        ended = f"ended (exit {code})" if code is not None else "ended"
        paragraphs = [
            *(said.splitlines() or ["(it wrote no message)"]),
            "",
            f"rhtui serve: `{self.what}` {ended} before its dashboard started; the message above says why.",
            "Each browser tab runs its own; reload the page to try again. To follow a session that runs "
            "already (in a terminal, headless, or as the service), serve `rhtui serve watch` instead.",
        ]
        width = max(20, self.width - 1)
        lines: list[str] = []
        for paragraph in paragraphs:
            lines += textwrap.wrap(paragraph, width, break_on_hyphens=False) or [""]
        return "\r\n".join(lines) + "\r\n"
