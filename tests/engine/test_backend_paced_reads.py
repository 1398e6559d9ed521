"""The backend reads a trickling answer at most once every `READ_EVERY_S` (Ollama sends a line a
token, and a read for each cost more CPU than the engine's whole work on the text); a bulk answer
and the first reads of each answer are not held; what is streamed is the same either way."""

from __future__ import annotations

import asyncio
import json

import httpcore
from aiohttp import web

from rhtui.engine import backend as backend_mod
from rhtui.engine.backend import BULK_READ_BYTES, GenChunk, OllamaBackend, _PacedStream
from tests.fault_servers import FaultServer

SMALL = b"x" * 100
BIG = b"y" * BULK_READ_BYTES


class Reads(httpcore.AsyncNetworkStream):
    """A connection that hands out the given pieces, one a read, and notes each read in `log`."""

    def __init__(self, pieces: list[bytes], log: list[str]) -> None:
        self.pieces, self.log = list(pieces), log

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        piece = self.pieces.pop(0)
        self.log.append("read big" if len(piece) >= BULK_READ_BYTES else "read small")
        return piece

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self.log.append("write")


async def test_a_trickle_is_read_once_a_pace_and_bulk_or_a_new_request_is_not_held(monkeypatch):
    log: list[str] = []

    async def sleep(seconds: float) -> None:
        log.append("hold")
        assert 0 < seconds <= 1000

    monkeypatch.setattr(backend_mod.asyncio, "sleep", sleep)
    stream = _PacedStream(Reads([SMALL, SMALL, SMALL, BIG, SMALL, SMALL, SMALL], log), every=1000)
    for _ in range(6):
        await stream.read(65536)
    await stream.write(b"POST /api/generate")
    await stream.read(65536)
    assert log == [
        "read small", "read small",  # the first two reads of an answer: at once
        "hold", "read small",  # two small reads in a row: the answer trickles, the next read waits
        "hold", "read big",  # a large read: the next is not held
        "read small", "read small",  # one small read after a large one is not yet a trickle
        "write", "read small",  # a new request: its answer is read at once
    ]


LINES = [{"model": "m", "response": f"token{i} ", "done": False} for i in range(40)]
FINAL = {"model": "m", "response": "", "done": True, "done_reason": "stop", "total_duration": 2 * 10**9,
         "load_duration": 10**8, "prompt_eval_count": 7, "prompt_eval_duration": 10**8, "eval_count": 40,
         "eval_duration": 10**9}


async def _generate(request: web.Request) -> web.StreamResponse:
    resp = web.StreamResponse(headers={"Content-Type": "application/x-ndjson"})
    await resp.prepare(request)
    for line in LINES:
        await resp.write(json.dumps(line).encode() + b"\n")
        await asyncio.sleep(0.005)
    await resp.write(json.dumps(FINAL).encode() + b"\n")
    return resp


async def _stream(url: str, every: float) -> list[GenChunk]:
    backend = OllamaBackend(url, read_every_s=every)
    try:
        return [c async for c in backend.generate("m", "go", None, "5m")]
    finally:
        await backend.close()


async def test_a_paced_stream_yields_the_same_chunks_as_an_unpaced_one():
    server = FaultServer({("POST", "/api/generate"): _generate})
    url = await server.start()
    try:
        paced, unpaced = await _stream(url, 0.1), await _stream(url, 0.0)
    finally:
        await server.stop()
    assert paced == unpaced
    assert [c.text for c in paced] == [line["response"] for line in LINES] + [""]
    assert paced[-1] == GenChunk(text="", done=True, done_reason="stop", total_s=2.0, load_s=0.1, prompt_tokens=7,
                                 prompt_s=0.1, eval_tokens=40, eval_s=1.0)
