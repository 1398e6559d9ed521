"""The engine's `OllamaBackend` against the simulator: the path `rhtui --demo` takes."""

from __future__ import annotations

import asyncio

import pytest

from rhtui.engine.backend import (
    BackendUnreachable,
    ModelMissing,
    OllamaBackend,
    OutOfMemory,
    StreamBroken,
)
from rhtui.sim.server import SimServer

pytestmark = pytest.mark.integration


@pytest.fixture
async def backend(make_world):
    world = make_world(200.0)
    async with SimServer(world) as server:
        b = OllamaBackend(server.url, request_timeout_s=5)
        try:
            yield world, server, b
        finally:
            await b.close()


async def test_queries(backend) -> None:
    world, _, b = backend
    assert await b.version() == world.scenario.ollama.version
    names = {m.name: m for m in await b.list_models()}
    assert names["rh-alpha:latest"].size_mb == pytest.approx(3560)
    d = await b.show("rh-alpha")
    assert d.modelfile.startswith("# Modelfile generated") and d.template and d.info
    assert await b.ps() == []


async def test_create_preload_generate_unload(backend) -> None:
    world, _, b = backend
    status = [s async for s in b.create("rh-alpha", from_="nous-hermes:7b", system="Role.",
                                         parameters={"temperature": 0.5})]
    assert status[-1].status == "success" and world.create_requests[-1]["system"] == "Role."
    await b.preload("rh-alpha", {"num_ctx": 4096}, keep_alive="5m")
    (loaded,) = await b.ps()
    assert loaded.name == "rh-alpha:latest" and loaded.vram_mb == pytest.approx(3847)
    chunks = [c async for c in b.generate("rh-alpha", "Write.", None, keep_alive="5m")]
    final = chunks[-1]
    assert final.done and final.done_reason == "stop" and final.eval_tokens > 1000
    assert final.eval_tokens / final.eval_s == pytest.approx(world.single_stream_rate("rh-alpha"), rel=0.02)
    assert "".join(c.text for c in chunks)
    await b.unload("rh-alpha")
    assert await b.ps() == []
    assert [e.action for e in world.load_log] == ["load", "unload"]


async def test_errors_map_to_engine_exceptions(backend) -> None:
    world, _, b = backend
    with pytest.raises(ModelMissing):
        await b.show("rh-omega")
    with pytest.raises(ModelMissing) as info:
        async for _ in b.create("x", from_="missing-base:7b"):
            pass
    assert "ollama pull missing-base:7b" in str(info.value)
    world.inject("oom", model="rh-beta")
    with pytest.raises(OutOfMemory):
        await b.preload("rh-beta", None, keep_alive="5m")
    for kind in ("disconnect", "malformed"):
        world.inject(kind, model="rh-gamma")
        with pytest.raises(StreamBroken):
            async for _ in b.generate("rh-gamma", "Go.", None, keep_alive="5m"):
                pass
    world.inject("stall", model="rh-gamma")
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(0.3):
            async for _ in b.generate("rh-gamma", "Go.", None, keep_alive="5m"):
                pass
    world.set_server_down(30)
    await asyncio.sleep(0.03)
    with pytest.raises(BackendUnreachable):
        await b.list_models()
