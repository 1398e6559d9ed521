"""Ollama's own answers, replayed: the shapes in tests/fixtures/ollama (copied from Ollama's docs
and source, see its README) served by a small aiohttp server on loopback, each path answering
with the next fixture queued for it. The `replay` fixture (tests/conftest.py) gives a `Replay`
and an `OllamaBackend` pointed at it."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from aiohttp import web

from rhtui.engine.backend import OllamaBackend
from tests.fault_servers import FaultServer

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "ollama"


def fixture(name: str) -> dict:
    return json.loads((FIXTURES / f"{name}.json").read_text())


class Replay:
    """An Ollama that answers each path with the next fixture queued for it."""

    def __init__(self) -> None:
        self.queued: dict[str, list[dict]] = {}
        self.requests: list[tuple[str, dict]] = []

    def queue(self, path: str, *names: str) -> None:
        self.queued.setdefault(path, []).extend(fixture(n) for n in names)

    async def handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.json() if request.can_read_body else {}
        self.requests.append((request.path, body))
        answer = self.queued[request.path].pop(0)
        if "lines" not in answer:
            return web.json_response(answer["body"], status=answer["status"])
        resp = web.StreamResponse(status=answer["status"], headers={"Content-Type": "application/x-ndjson"})
        await resp.prepare(request)
        for line in answer["lines"]:
            await resp.write((json.dumps(line) + "\n").encode())
        await resp.write_eof()
        return resp


@asynccontextmanager
async def replayed() -> AsyncIterator[tuple[Replay, OllamaBackend]]:
    """A `Replay` on 127.0.0.1 and the engine's backend pointed at it (5 s per request)."""
    r = Replay()
    server = FaultServer({("*", "/{tail:.*}"): r.handle})
    backend = OllamaBackend(await server.start(), request_timeout_s=5)
    try:
        yield r, backend
    finally:
        await backend.close()
        await server.stop()
