"""What is found at Ollama's address, said plainly: a server that accepts and never answers, a
500 or something that is not Ollama's JSON on /api/version, another HTTP service, something that
does not speak HTTP, a name that does not resolve, nothing listening. Over real loopback HTTP to
small fault servers: `OllamaBackend.version`, the engine's connect path, `--headless` and `doctor`
each give a message that says what was found and where — never a traceback."""

from __future__ import annotations

import asyncio
import contextlib
import socket

import pytest
from aiohttp import web
from typer.testing import CliRunner

from rhtui.commands.cli import app
from rhtui.engine import events as ev
from rhtui.engine.backend import BackendUnreachable, OllamaBackend
from rhtui.engine.clock import ScaledClock
from rhtui.engine.config import Settings
from rhtui.engine.hardware import NoGpuProbe
from rhtui.engine.orchestrator import Orchestrator
from tests.fault_servers import FaultServer, never_answer
from tests.helpers import until_async
from tests.processes import free_port

pytestmark = pytest.mark.integration

HOSTILE = "runner crashed \x1b]52;c;ZWNobyBoaQ==\x07\x1b[2J\x07"


async def _500(request: web.Request) -> web.Response:
    return web.Response(status=500, text=HOSTILE)


async def _html(request: web.Request) -> web.Response:
    return web.Response(text="<html><body>It works!</body></html>", content_type="text/html")


async def _404(request: web.Request) -> web.Response:
    return web.Response(status=404, text="<h1>Not Found</h1>", content_type="text/html")


async def _json_without_version(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


# (handler of GET /api/version, words the detail must hold, the fix it names)
FOUND = {
    "never answers": (never_answer, ["accepted the connection but did not answer /api/version within 1 s"],
                      BackendUnreachable.HUNG_FIX),
    "500": (_500, ["/api/version answered HTTP 500", "runner crashed ^[]52;c;ZWNobyBoaQ==^G^[[2J^G"], "server log"),
    "html": (_html, ["not Ollama", "text/html"], BackendUnreachable.NOT_OLLAMA_FIX),
    "404": (_404, ["not Ollama", "HTTP 404 (text/html)"], BackendUnreachable.NOT_OLLAMA_FIX),
    "json without a version": (_json_without_version, ["not Ollama", "application/json"],
                               BackendUnreachable.NOT_OLLAMA_FIX),
}


async def version_fails(url: str, request_timeout_s: float) -> BackendUnreachable:
    """What `OllamaBackend.version()` at `url` raises: it must be BackendUnreachable, within 30 s."""
    backend = OllamaBackend(url, request_timeout_s=request_timeout_s)
    try:
        with pytest.raises(BackendUnreachable) as e:
            await asyncio.wait_for(backend.version(), 30)
    finally:
        await backend.close()
    return e.value


@pytest.mark.parametrize("kind", list(FOUND))
async def test_version_says_what_answers_there(kind):
    handler, words, fix = FOUND[kind]
    server = FaultServer({("GET", "/api/version"): handler})
    url = await server.start()
    try:
        e = await version_fails(url, 1.0)
    finally:
        await server.stop()
    msg = str(e)
    assert url in msg and all(w in msg for w in words), msg
    assert fix in e.fix
    assert "\x1b" not in msg and "\x07" not in msg


async def test_something_that_does_not_speak_http():
    async def banner(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"SSH-2.0-OpenSSH_9.6\r\n")
        await writer.drain()
        with contextlib.suppress(Exception):
            await reader.read(1000)
        writer.close()

    server = await asyncio.start_server(banner, "127.0.0.1", 0)
    url = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"
    try:
        e = await version_fails(url, 5.0)
    finally:
        server.close()
    assert "does not speak HTTP" in str(e) and e.fix == BackendUnreachable.NOT_OLLAMA_FIX


async def test_a_name_that_does_not_resolve_is_not_connection_refused(monkeypatch):
    real = socket.getaddrinfo

    def getaddrinfo(host, *args, **kwargs):
        if host == "ollama-box.invalid":
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return real(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    backend = OllamaBackend("http://ollama-box.invalid:11434", request_timeout_s=5.0)
    try:
        for call in (backend.version, backend.ps, backend.list_models):
            with pytest.raises(BackendUnreachable) as e:
                await asyncio.wait_for(call(), 30)
            assert e.value.detail == "cannot resolve 'ollama-box.invalid': Name or service not known", e.value
            assert "refused" not in str(e.value) and e.value.fix == BackendUnreachable.RESOLVE_FIX
    finally:
        await backend.close()


async def test_nothing_listening_is_connection_refused():
    e = await version_fails(f"http://127.0.0.1:{free_port()}", 5.0)
    assert e.detail == "connection refused" and "ollama serve" in str(e)


# -- the engine's connect path ---------------------------------------------------------------------


async def test_the_engine_waits_in_backend_down_on_a_500_and_headless_gives_up(store, tmp_path):
    server = FaultServer({("GET", "/api/version"): _500})
    url = await server.start()
    backend = OllamaBackend(url, request_timeout_s=1.0)
    settings = Settings(ollama_host=url, data_dir=tmp_path)
    try:
        # headless (retry_backend=False): the error, for the command to print
        orch = Orchestrator(settings, backend, NoGpuProbe(), store, ScaledClock(1000), retry_backend=False)
        with pytest.raises(BackendUnreachable) as e:
            await asyncio.wait_for(orch.run(), 30)
        assert "HTTP 500" in str(e.value)
        # the dashboard: the backend-down state with what was found, retried until stopped
        orch = Orchestrator(settings, backend, NoGpuProbe(), store, ScaledClock(1000))
        seen: list[ev.Event] = []
        orch.bus.subscribe(seen.append)
        task = asyncio.ensure_future(orch.run())
        try:
            down = await until_async(lambda: [e for e in seen if isinstance(e, ev.BackendDown)], timeout=30)
            assert "HTTP 500" in down[0].error and orch.state == "backend_down"
        finally:
            orch.request_stop()
            await asyncio.wait_for(task, 30)
    finally:
        await backend.close()
        await server.stop()


@pytest.mark.parametrize("kind", ["500", "html"])
def test_headless_and_doctor_say_what_answers_there(kind, tmp_path):
    handler, words, _fix = FOUND[kind]
    server = FaultServer({("GET", "/api/version"): handler})
    url = server.start_in_thread()
    try:
        runner = CliRunner()
        r = runner.invoke(app, ["--headless", "--host", url, "--data-dir", str(tmp_path), "--max-cycles", "1"])
        assert r.exit_code == 1, r.output
        assert f"Ollama is not reachable at {url}" in r.output and words[0] in r.output, r.output
        assert "Traceback" not in r.output and "\x1b" not in r.output
        r = runner.invoke(app, ["doctor", "--host", url, "--data-dir", str(tmp_path)])
        assert r.exit_code == 1, r.output
        assert "not reachable at" in r.output and words[0] in r.output, r.output
        assert "Traceback" not in r.output
    finally:
        server.stop_thread()
