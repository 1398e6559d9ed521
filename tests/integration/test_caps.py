"""Caps hold, over real loopback HTTP to a small Ollama-like fault server: one 10 MB chunk is
kept only up to the 200,000-character proposal cap, and a 20 MB stream line without a newline
is cut at the line cap (16 MB) — the run recorded `error` with that reason — instead of being
held in memory whole."""

from __future__ import annotations

import asyncio
import contextlib
import json

import pytest
from aiohttp import web

from rhtui.engine.backend import MAX_LINE_BYTES, MB, LineTooLong, OllamaBackend
from rhtui.engine.clock import ScaledClock
from rhtui.engine.config import Settings
from rhtui.engine.hardware import NoGpuProbe
from rhtui.engine.orchestrator import Orchestrator
from rhtui.engine.runs import PROPOSAL_CAP_CHARS
from tests.fault_servers import FaultServer

pytestmark = pytest.mark.integration

MODELS = ("big-chunk", "long-line")


def _done(model: str, **extra) -> bytes:
    body = {"model": model, "response": "", "done": True, "done_reason": "stop", "total_duration": 10**9,
            "eval_count": 10, "eval_duration": 10**9, **extra}
    return json.dumps(body).encode() + b"\n"


async def _version(request: web.Request) -> web.Response:
    return web.json_response({"version": "0.12.0"})


async def _tags(request: web.Request) -> web.Response:
    return web.json_response({"models": [{"name": f"{m}:latest", "model": f"{m}:latest", "size": 1024 * MB,
                                          "digest": "0" * 64} for m in MODELS]})


async def _ps(request: web.Request) -> web.Response:
    return web.json_response({"models": []})


async def _generate(request: web.Request) -> web.StreamResponse:
    body = await request.json()
    model = body["model"]
    if not body.get("prompt"):  # a preload (empty prompt) or an unload (keep_alive 0)
        return web.json_response({"model": model, "response": "", "done": True, "done_reason": "load"})
    resp = web.StreamResponse(headers={"Content-Type": "application/x-ndjson"})
    await resp.prepare(request)
    with contextlib.suppress(ConnectionError):
        if model.startswith("big-chunk"):
            chunk = "x" * (10 * MB)
            await resp.write(json.dumps({"model": model, "response": chunk, "done": False}).encode() + b"\n")
            await resp.write(_done(model))
        else:  # 20 MB of one line that never ends
            await resp.write(b'{"model": "long-line", "response": "')
            piece = b"y" * MB
            for _ in range(20):
                await resp.write(piece)
            await resp.write(b'", "done": false}\n')
            await resp.write(_done(model))
    return resp


@pytest.fixture
async def fault_ollama():
    server = FaultServer({("GET", "/api/version"): _version, ("GET", "/api/tags"): _tags,
                          ("GET", "/api/ps"): _ps, ("POST", "/api/generate"): _generate})
    url = await server.start()
    try:
        yield url
    finally:
        await server.stop()


async def test_a_long_line_is_cut_and_a_huge_chunk_is_capped(fault_ollama, store, tmp_path):
    assert 10 * MB < MAX_LINE_BYTES < 20 * MB
    settings = Settings(
        ollama_host=fault_ollama, data_dir=tmp_path, gpu_total_mb=12_000, sample_interval_s=0.05,
        students=[{"name": m} for m in MODELS], session={"name": "caps", "max_cycles": 1, "prompt_seed": 1},
        budget={"timeout_s": 600, "cooldown_s": 0},
    )
    backend = OllamaBackend(fault_ollama)
    orch = Orchestrator(settings, backend, NoGpuProbe(), store, ScaledClock(20), retry_backend=False)
    try:
        await asyncio.wait_for(orch.run(), 120)
    finally:
        await backend.close()
    runs = {r.student: r for r in await store.runs(session_id=orch.session_id)}
    big, long = runs["big-chunk"], runs["long-line"]
    assert big.status == "ok", big
    assert len(big.proposal) == PROPOSAL_CAP_CHARS and set(big.proposal) == {"x"}
    assert long.status == "error", long
    assert "a stream line longer than 16 MB" in long.reason and "/api/generate" in long.reason, long.reason
    assert "stream was cut" in long.error
    assert len(long.proposal) < 1000


async def test_a_line_past_the_cap_is_never_held_whole(fault_ollama):
    """The cap holds below the official client: the stream is refused as the line passes it."""
    backend = OllamaBackend(fault_ollama, max_line_bytes=2 * MB)
    got = 0
    try:
        with pytest.raises(LineTooLong) as e:
            async for chunk in backend.generate("long-line", "go", None, 0):
                got += len(chunk.text)
    finally:
        await backend.close()
    assert got == 0 and "longer than 2 MB" in str(e.value)
