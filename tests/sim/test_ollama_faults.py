"""The simulator's Ollama errors over real HTTP, byte for byte as Ollama writes them, and the
engine's `OllamaBackend` reading them: 503 "server busy" (server/sched.go ErrMaxQueue, answered by
routes.go handleScheduleError), a 500 for a model file the runner cannot load, and an
``{"error"}`` line in the middle of a stream (routes.go streamResponse)."""

from __future__ import annotations

import json

import httpx
import ollama
import pytest

from rhtui.engine.backend import BackendBusy, ModelMissing, OllamaBackend, OutOfMemory, RunnerFailed
from rhtui.sim.faults import BUSY_TEXT, FAULT_KINDS, LOAD_ERROR_TEXT, STREAM_ERROR_TEXT, STREAM_OOM_TEXT

pytestmark = pytest.mark.integration


def test_the_new_kinds_are_known() -> None:
    assert {"busy", "load_error", "stream_error", "stream_oom"} <= set(FAULT_KINDS)
    assert BUSY_TEXT == "server busy, please try again.  maximum pending requests exceeded"


async def test_busy_is_a_503_with_ollamas_body_on_load_and_stream(sim) -> None:
    world, server, client = sim
    world.inject("busy", model="rh-alpha", count=2)
    async with httpx.AsyncClient(base_url=server.url) as http:
        r = await http.post("/api/generate", json={"model": "rh-alpha", "prompt": ""})
        assert r.status_code == 503
        assert r.content == b'{"error":"server busy, please try again.  maximum pending requests exceeded"}'
        assert r.headers["Content-Type"].startswith("application/json")
    with pytest.raises(ollama.ResponseError) as info:
        async for _ in await client.generate(model="rh-alpha", prompt="Go.", stream=True):
            pass
    assert (info.value.status_code, info.value.error) == (503, BUSY_TEXT)
    assert world.loaded_names() == []  # refused before it was scheduled: nothing was loaded
    await client.generate(model="rh-alpha", prompt="")  # then it goes through
    assert world.loaded_names() == ["rh-alpha:latest"]


async def test_an_error_line_ends_a_stream_that_began_with_200(sim) -> None:
    world, server, client = sim
    world.inject("stream_error", model="rh-beta")
    async with (
        httpx.AsyncClient(base_url=server.url, timeout=10) as http,
        http.stream("POST", "/api/generate", json={"model": "rh-beta", "prompt": "Go."}) as r,
    ):
        assert r.status_code == 200
        lines = [json.loads(line) async for line in r.aiter_lines() if line]
    assert lines[0]["done"] is False and lines[0]["response"]
    assert lines[-1] == {"error": STREAM_ERROR_TEXT}
    assert all("error" not in x for x in lines[:-1]) and not any(x.get("done") for x in lines)
    # the official client raises it with status -1 (no HTTP status: the stream had begun)
    world.inject("stream_oom", model="rh-beta")
    with pytest.raises(ollama.ResponseError) as info:
        async for _ in await client.generate(model="rh-beta", prompt="Go.", stream=True):
            pass
    assert (info.value.status_code, info.value.error) == (-1, STREAM_OOM_TEXT)
    # without streaming, Ollama answers the same failure as a 500
    world.inject("stream_error", model="rh-beta")
    with pytest.raises(ollama.ResponseError) as info:
        await client.generate(model="rh-beta", prompt="Go.")
    assert (info.value.status_code, info.value.error) == (500, STREAM_ERROR_TEXT)


async def test_load_error_is_a_500_and_its_text_can_be_chosen(sim) -> None:
    world, _, client = sim
    world.inject("load_error", model="rh-gamma")
    with pytest.raises(ollama.ResponseError) as info:
        await client.generate(model="rh-gamma", prompt="")
    assert (info.value.status_code, info.value.error) == (500, LOAD_ERROR_TEXT)
    world.fault_book.inject("stream_error", model="rh-gamma", text="boom: key not found")
    with pytest.raises(ollama.ResponseError) as info:
        async for _ in await client.generate(model="rh-gamma", prompt="Go.", stream=True):
            pass
    assert (info.value.status_code, info.value.error) == (-1, "boom: key not found")


async def test_the_backend_reads_each_the_way_ollama_means_it(make_world) -> None:
    from rhtui.sim.server import SimServer

    world = make_world(200.0)
    async with SimServer(world) as server:
        b = OllamaBackend(server.url, request_timeout_s=5)
        try:
            world.inject("busy", model="rh-alpha")
            with pytest.raises(BackendBusy):
                await b.preload("rh-alpha", None, "5m")
            world.inject("load_error", model="rh-alpha")
            with pytest.raises(RunnerFailed) as info:
                await b.preload("rh-alpha", None, "5m")
            assert not isinstance(info.value, ModelMissing) and info.value.status == 500
            assert LOAD_ERROR_TEXT in str(info.value) and "journalctl -u ollama" in str(info.value)
            world.inject("stream_error", model="rh-alpha")
            with pytest.raises(RunnerFailed) as info:
                async for _ in b.generate("rh-alpha", "Go.", None, "5m"):
                    pass
            assert info.value.mid_stream and STREAM_ERROR_TEXT in str(info.value)
            world.inject("stream_oom", model="rh-alpha")
            with pytest.raises(OutOfMemory) as oom:
                async for _ in b.generate("rh-alpha", "Go.", None, "5m"):
                    pass
            assert oom.value.mid_stream and "running" in str(oom.value)
            world.fault_book.inject("stream_error", model="rh-alpha", text="model 'rh-alpha' not found")
            with pytest.raises(RunnerFailed):  # an error line is never a missing model
                async for _ in b.generate("rh-alpha", "Go.", None, "5m"):
                    pass
            with pytest.raises(ModelMissing):  # the 404 is
                await b.preload("rh-omega", None, "5m")
        finally:
            await b.close()
