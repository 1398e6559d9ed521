"""Ollama's HTTP API over a `SimWorld`, on loopback, with aiohttp.

Shapes follow Ollama's server: NDJSON streams (one JSON object per line, no blank lines),
``{"error": "..."}`` bodies with Ollama's status codes and texts, nanosecond durations in the
final message, ``done_reason`` load/unload/stop/length. Streams are paced in simulated time
through the world's clock and batched so that one stream sends at most `chunk_hz` chunks per
real second. Faults (see `SimWorld.plan_faults`) are played out the way a client would meet
them from a real Ollama: HTTP 500, HTTP 503 "server busy" (its queue full), a stream that stops
sending, a dropped connection, a line that is not JSON, an ``{"error": ...}`` line in the middle
of a stream, Ollama's out-of-memory errors, and a server that refuses connections (the
listening socket is closed and reopened on the same port when the window ends).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import math
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from .catalog import DEFAULT_TEMPLATE, MIB, SimModel, render_modelfile, render_parameters
from .errors import SimError
from .faults import FaultPlan
from .generation import Generation
from .registry import REGISTRY_MB_PER_S
from .world import SimWorld

__all__ = ["SimServer", "serve"]

_FOREVER_S = 292 * 365.25 * 86400  # Go's time.Duration(math.MaxInt64), what Ollama shows for "forever"


def _ts(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, tz=UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def _line(obj: dict[str, Any]) -> bytes:
    return (json.dumps(obj, separators=(",", ":")) + "\n").encode()


def _error(status: int, message: str) -> web.Response:
    # compact, as Go's encoding/json (gin's c.JSON) writes it: {"error":"..."}
    return web.json_response({"error": message}, status=status, dumps=lambda o: json.dumps(o, separators=(",", ":")))


class SimServer:
    """The simulator's Ollama server. ``async with SimServer(world) as srv: srv.url``."""

    def __init__(self, world: SimWorld, host: str = "127.0.0.1", port: int = 0, *, chunk_hz: float = 120.0) -> None:
        self.world = world
        self.host = host
        self._port = port
        self.chunk_real_s = 1.0 / chunk_hz
        self._runner: web.AppRunner | None = None
        self._site: web.TCPSite | None = None
        self._watcher: asyncio.Task[None] | None = None
        self._handlers: set[asyncio.Task[Any]] = set()

    # -- lifecycle ----------------------------------------------------------------------------

    @property
    def port(self) -> int:
        return self._port

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self._port}"

    @property
    def listening(self) -> bool:
        return self._site is not None

    async def start(self) -> str:
        app = web.Application(client_max_size=64 * MIB)
        app.router.add_get("/", self._root)
        app.router.add_get("/api/version", self._version)
        app.router.add_get("/api/tags", self._tags)
        app.router.add_get("/api/ps", self._ps)
        app.router.add_post("/api/show", self._show)
        app.router.add_post("/api/generate", self._generate)
        app.router.add_post("/api/chat", self._chat)
        app.router.add_post("/api/create", self._create)
        app.router.add_delete("/api/delete", self._delete)
        app.router.add_post("/api/pull", self._pull)
        app.router.add_post("/api/copy", self._copy)
        app.router.add_head("/api/blobs/{digest}", self._blob_head)
        app.router.add_post("/api/blobs/{digest}", self._blob_post)
        self._runner = web.AppRunner(app, handler_cancellation=True, access_log=None)
        await self._runner.setup()
        await self._listen()  # even when a window starts at 0: the watcher closes it at once
        self._watcher = asyncio.create_task(self._watch_down(), name="rhtui-sim-down-watcher")
        return self.url

    async def _listen(self) -> None:
        assert self._runner is not None
        site = web.TCPSite(self._runner, self.host, self._port, reuse_address=True)
        await site.start()
        self._site = site
        if self._port == 0:
            self._port = int(self._runner.addresses[0][1])

    async def _go_down(self) -> None:
        if self._site is not None:
            await self._site.stop()
            self._site = None
        if self._runner is not None and self._runner.server is not None:
            for conn in self._runner.server.connections:
                conn.force_close()
        self.world.unload_all("server down")

    async def _watch_down(self) -> None:
        while True:
            down = self.world.server_down_now()
            if down and self._site is not None:
                await self._go_down()
            elif not down and self._site is None:
                for attempt in range(50):
                    try:
                        await self._listen()
                        break
                    except OSError:  # pragma: no cover - port still held by the kernel
                        await asyncio.sleep(0.05 * (attempt + 1))
            nxt = self.world.next_down_change()
            await self.world.wait_changed(None if nxt is None else nxt - self.world.elapsed())

    async def stop(self) -> None:
        if self._watcher is not None:
            self._watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watcher
            self._watcher = None
        if self._site is not None:
            await self._site.stop()
            self._site = None
        if self._runner is not None:
            if self._runner.server is not None:
                for conn in self._runner.server.connections:
                    conn.force_close()
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> SimServer:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # -- helpers ------------------------------------------------------------------------------

    @staticmethod
    async def _body(request: web.Request) -> dict[str, Any]:
        raw = await request.read()
        if not raw.strip():
            raise SimError(400, "missing request body")
        try:
            body = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise SimError(400, f"invalid character in request body: {exc.msg}") from None
        except ValueError as exc:  # not UTF-8
            raise SimError(400, f"invalid request body: {exc}") from None
        if not isinstance(body, dict):
            raise SimError(400, "request body must be a JSON object")
        return body

    @staticmethod
    def _model_name(body: dict[str, Any]) -> str:
        name = body.get("model") or body.get("name") or ""
        if not isinstance(name, str) or not name.strip():
            raise SimError(400, "model is required")
        return name.strip()

    def _model_entry(self, m: SimModel) -> dict[str, Any]:
        return {
            "name": m.name,
            "model": m.name,
            "modified_at": _ts(m.modified_at),
            "size": int(m.weights_mb * MIB),
            "digest": m.digest,
            "details": m.details(),
        }

    @staticmethod
    async def _drop(request: web.Request) -> None:
        """Close the connection under the client (no final chunk, no response)."""
        if request.transport is not None:
            request.transport.close()
        await asyncio.sleep(3600)  # cancelled when the connection is lost

    # -- simple endpoints -----------------------------------------------------------------------

    async def _root(self, request: web.Request) -> web.Response:
        return web.Response(text="Ollama is running", content_type="text/plain")

    async def _version(self, request: web.Request) -> web.Response:
        return web.json_response({"version": self.world.scenario.ollama.version})

    async def _tags(self, request: web.Request) -> web.Response:
        return web.json_response({"models": [self._model_entry(m) for m in self.world.models()]})

    async def _ps(self, request: web.Request) -> web.Response:
        w = self.world
        out = []
        for r in w.runners():
            m = w.find_model(r.name)
            exp = w.expires_at(r)
            epoch = w.clock.now() + (_FOREVER_S if math.isinf(exp) else exp - w.elapsed())
            entry = {
                "name": r.name,
                "model": r.name,
                "size": int(r.size_mb * MIB),
                "digest": m.digest if m else r.digest,
                "details": m.details() if m else {},
                "expires_at": _ts(epoch),
                "size_vram": int(r.gpu_mb * MIB),
                "context_length": r.num_ctx,
            }
            out.append((exp, entry))
        out.sort(key=lambda e: e[0], reverse=True)
        return web.json_response({"models": [e for _, e in out]})

    async def _show(self, request: web.Request) -> web.Response:
        """/api/show as routes.go GetModelInfo answers it: ``system`` (and license, renderer,
        parser, requires, messages) only when set — api.ShowResponse's omitempty."""
        try:
            body = await self._body(request)
            m = self.world.model(self._model_name(body))
        except SimError as exc:
            return _error(exc.status, exc.message)
        resp: dict[str, Any] = {
            "license": "\n".join(m.license),
            "modelfile": render_modelfile(m),
            "parameters": render_parameters(m),
            "template": m.template or DEFAULT_TEMPLATE,
            "system": m.system,
            "renderer": m.renderer,
            "parser": m.parser,
            "details": m.details(),
            "messages": m.messages,
            "model_info": m.model_info(),
            "capabilities": list(m.info.capabilities),
            "modified_at": _ts(m.modified_at),
            "requires": m.requires,
        }
        omitempty = ("license", "parameters", "system", "renderer", "parser", "messages", "requires")
        return web.json_response({k: v for k, v in resp.items() if v or k not in omitempty})

    async def _delete(self, request: web.Request) -> web.Response:
        """DELETE /api/delete removes the model's manifest (routes.go DeleteHandler); a runner of
        it that is loaded stays loaded until its keep_alive ends, as in Ollama."""
        try:
            body = await self._body(request)
            self.world.registry.delete(self._model_name(body))
        except SimError as exc:
            return _error(exc.status, exc.message)
        return web.Response(status=200)

    async def _copy(self, request: web.Request) -> web.Response:
        try:
            body = await self._body(request)
            src, dst = str(body.get("source") or ""), str(body.get("destination") or "")
            if not src or not dst:
                raise SimError(400, "source and destination are required")
            self.world.copy_model(src, dst)
        except SimError as exc:
            return _error(exc.status, exc.message)
        return web.Response(status=200)

    async def _progress(self, request: web.Request, lines: list[dict[str, Any]], stream: bool,
                        error: str | None = None) -> web.StreamResponse:
        async def steps() -> AsyncIterator[dict[str, Any]]:
            for obj in lines:
                yield obj
            if error is not None:
                raise SimError(500, error)

        return await self._send_progress(request, steps(), stream)

    async def _send_progress(self, request: web.Request, steps: AsyncIterator[dict[str, Any]],
                             stream: bool) -> web.StreamResponse:
        """Progress parts as Ollama sends them (routes.go streamResponse / waitForStream): NDJSON,
        where an error before the first line is an HTTP error and after it an ``{"error"}`` line
        that ends the stream; or, not streamed, only the last part (an error: its HTTP status)."""
        resp: web.StreamResponse | None = None
        last: dict[str, Any] = {"status": "success"}
        try:
            async for obj in steps:
                last = obj
                if stream:
                    if resp is None:
                        resp = web.StreamResponse(headers={"Content-Type": "application/x-ndjson"})
                        await resp.prepare(request)
                    await resp.write(_line(obj))
                    await self.world.clock.sleep(0.05)
        except SimError as exc:
            if resp is None:
                return _error(exc.status, exc.message)
            await resp.write(_line({"error": exc.message}))
            await resp.write_eof()
            return resp
        if resp is None:
            return web.json_response(last)
        await resp.write_eof()
        return resp

    async def _pull_steps(self, name: str) -> AsyncIterator[dict[str, Any]]:
        """A pull's progress (images.go PullModel, download.go): "pulling manifest", then per layer
        "pulling <digest[7:19]>" with digest, total and completed (left out while 0) every 60 ms
        of real time, "verifying sha256 digest", "writing manifest", "success". Layers come at
        REGISTRY_MB_PER_S in simulated time (a layer already here: at once)."""
        registry = self.world.registry
        cached = registry.find(name) is not None
        yield {"status": "pulling manifest"}
        layers = registry.pull_plan(name)
        tick = 0.06 * self.world.clock.speed
        step = int(REGISTRY_MB_PER_S * MIB * tick)
        for layer in layers:
            part = {"status": f"pulling {layer.digest[7:19]}", "digest": layer.digest, "total": layer.size}
            done = layer.size if cached or layer.size <= step else 0
            while True:
                yield part | ({"completed": done} if done else {})
                if done >= layer.size:
                    break
                await self.world.clock.sleep(tick)
                done = min(layer.size, done + step)
        yield {"status": "verifying sha256 digest"}
        yield {"status": "writing manifest"}
        registry.pull_done(name)
        yield {"status": "success"}

    async def _create(self, request: web.Request) -> web.StreamResponse:
        """POST /api/create (server/create.go CreateHandler). A ``from`` model that is not here is
        pulled first, its progress streamed in the create's stream (server/model.go
        parseFromModel); a pull that fails ends the stream with its error."""
        try:
            body = await self._body(request)
            self._model_name(body)
        except SimError as exc:
            return _error(exc.status, exc.message)
        stream = body.get("stream") is not False
        from_ = str(body.get("from") or "").strip()

        async def steps() -> AsyncIterator[dict[str, Any]]:
            if from_ and self.world.find_model(from_) is None:
                try:
                    async for part in self._pull_steps(from_):
                        yield part
                except SimError:
                    self.world.create_requests.append(dict(body))
                    raise
            for status in self.world.create_from_request(body):
                yield {"status": status}

        return await self._send_progress(request, steps(), stream)

    async def _pull(self, request: web.Request) -> web.StreamResponse:
        try:
            body = await self._body(request)
            name = self._model_name(body)
        except SimError as exc:
            return _error(exc.status, exc.message)
        return await self._send_progress(request, self._pull_steps(name), body.get("stream") is not False)

    # -- blobs (routes.go HeadBlobHandler, CreateBlobHandler) --------------------------------------

    async def _blob_head(self, request: web.Request) -> web.Response:
        digest = request.match_info["digest"]
        registry = self.world.registry
        if not registry.valid_digest(digest):
            return _error(400, "invalid digest format")
        if not registry.has_blob(digest):
            return _error(404, f'blob "{digest}" not found')
        return web.Response(status=200)

    async def _blob_post(self, request: web.Request) -> web.Response:
        digest = request.match_info["digest"]
        registry = self.world.registry
        if not registry.valid_digest(digest):
            return _error(400, "invalid digest format")
        h = hashlib.sha256()
        size = 0
        head = b""
        async for chunk in request.content.iter_chunked(1 << 20):
            h.update(chunk)
            size += len(chunk)
            if len(head) < 16:
                head += chunk[: 16 - len(head)]
        if registry.has_blob(digest):
            return web.Response(status=200)
        got = "sha256:" + h.hexdigest()
        if got != digest:
            return _error(400, f'digest mismatch, expected "{digest}", got "{got}"')
        registry.put_blob(digest, size, head)
        return web.Response(status=201)

    # -- generate and chat ----------------------------------------------------------------------

    async def _generate(self, request: web.Request) -> web.StreamResponse:
        return await self._run(request, chat=False)

    async def _chat(self, request: web.Request) -> web.StreamResponse:
        return await self._run(request, chat=True)

    async def _run(self, request: web.Request, *, chat: bool) -> web.StreamResponse:
        w = self.world
        try:
            body = await self._body(request)
            name = self._model_name(body)
            model = w.model(name)
            keep_alive = w.keep_alive_s(body.get("keep_alive"))
            system = body.get("system")
            if chat:
                messages = body.get("messages") or []
                if not isinstance(messages, list) or not all(isinstance(m, dict) for m in messages):
                    raise SimError(400, "messages must be a list of objects")
                prompt = "\n".join(str(m.get("content") or "") for m in messages if m.get("role") != "system")
                sys_parts = [str(m.get("content") or "") for m in messages if m.get("role") == "system"]
                system = "\n".join(sys_parts) if sys_parts else None
            else:
                prompt = body.get("prompt") or ""
                if not isinstance(prompt, str):
                    raise SimError(400, "prompt must be a string")
            options = body.get("options") or {}
            if not isinstance(options, dict):
                raise SimError(400, "options must be an object")
        except SimError as exc:
            return _error(exc.status, exc.message)
        fmt, fmt_error = _read_format(body.get("format"))
        stream = body.get("stream") is not False
        out = _Shape(name, chat, w)

        if prompt == "" and keep_alive == 0:
            await w.unload(model.name)
            return web.json_response(out.final("", "unload"))

        faults = w.plan_faults(model.name, load_only=prompt == "")
        if faults.busy:  # Ollama's queue is full: refused before it is scheduled (routes.go handleScheduleError)
            return _error(503, faults.busy)
        if faults.http_500:
            return _error(500, faults.http_500)
        try:
            gen = w.generation(model.name, prompt, system=system, options=options,
                               keep_alive=body.get("keep_alive"), faults=faults, format=fmt)
            await gen.__aenter__()  # loading happens before any byte is sent, as in Ollama
        except SimError as exc:
            return _error(exc.status, exc.message)
        try:
            if prompt == "":
                return web.json_response(out.final("", "load"))
            if fmt_error:  # the runner refuses it once the model is loaded (llm/llama_server.go Completion)
                return _error(500, fmt_error)
            if stream:
                return await self._stream(request, gen, out, faults)
            return await self._whole(request, gen, out, faults)
        finally:
            await gen.__aexit__(None, None, None)

    async def _stream(self, request: web.Request, gen: Generation, out: _Shape,
                      faults: FaultPlan) -> web.StreamResponse:
        resp = web.StreamResponse(headers={"Content-Type": "application/x-ndjson"})
        await resp.prepare(request)
        pending = {k: v for k, v in (("stall", faults.stall_at), ("disconnect", faults.disconnect_at),
                                      ("malformed", faults.malformed_at), ("error", faults.stream_error_at))
                   if v is not None}
        try:
            async with contextlib.aclosing(gen.stream(self.chunk_real_s)) as pieces:
                async for text in pieces:
                    await resp.write(_line(out.chunk(text)))
                    for kind, at in sorted(pending.items(), key=lambda kv: kv[1]):
                        if gen.fraction_sent < at and gen.eval_count < gen.n_tokens:
                            continue
                        del pending[kind]
                        if kind == "malformed":  # a line cut in half: not JSON
                            bad = json.dumps(out.chunk(text))
                            await resp.write((bad[: max(12, len(bad) // 2)] + "\n").encode())
                        elif kind == "stall":
                            await asyncio.Event().wait()  # nothing more, until the client goes away
                        elif kind == "error":
                            # the runner failed after the 200 header: Ollama writes {"error": ...} as
                            # the last line and ends the stream (routes.go streamResponse)
                            await resp.write(_line({"error": faults.stream_error}))
                            await resp.write_eof()
                            return resp
                        else:
                            await self._drop(request)
            await resp.write(_line(out.final("", gen.done_reason, gen.metrics_ns())))
            await resp.write_eof()
        except ConnectionError:
            pass  # the client went away; the model stays loaded and keep_alive applies
        return resp

    async def _whole(self, request: web.Request, gen: Generation, out: _Shape,
                     faults: FaultPlan) -> web.StreamResponse:
        parts = []
        async with contextlib.aclosing(gen.stream(self.chunk_real_s)) as pieces:
            async for text in pieces:
                parts.append(text)
                if faults.stall_at is not None and gen.fraction_sent >= faults.stall_at:
                    await asyncio.Event().wait()
                if faults.disconnect_at is not None and gen.fraction_sent >= faults.disconnect_at:
                    await self._drop(request)
                if faults.stream_error_at is not None and gen.fraction_sent >= faults.stream_error_at:
                    # without streaming Ollama answers the runner's error as HTTP 500 (routes.go)
                    return _error(500, faults.stream_error or "")
        body = out.final("".join(parts), gen.done_reason, gen.metrics_ns())
        if faults.malformed_at is not None:
            text = json.dumps(body)
            return web.Response(text=text[: len(text) // 2], content_type="application/json")
        return web.json_response(body)


def _read_format(value: Any) -> tuple[Any, str | None]:
    """A request's ``format`` as Ollama reads it (llm/llama_server.go): null or "" is none,
    "json" any JSON, an object a JSON schema; anything else is refused with Ollama's text."""
    if value is None or value == "":
        return None, None
    if value == "json" or isinstance(value, dict):
        return value, None
    raw = json.dumps(value, separators=(",", ":"))
    return None, f'invalid format: {json.dumps(raw)}; expected "json" or a valid JSON Schema object'


class _Shape:
    """The JSON of /api/generate (``response``) or /api/chat (``message``) messages."""

    def __init__(self, model: str, chat: bool, world: SimWorld) -> None:
        self.model, self.chat, self.world = model, chat, world

    def _text(self, text: str) -> dict[str, Any]:
        if self.chat:
            return {"message": {"role": "assistant", "content": text}}
        return {"response": text}

    def chunk(self, text: str) -> dict[str, Any]:
        return {"model": self.model, "created_at": _ts(self.world.clock.now()), **self._text(text), "done": False}

    def final(self, text: str, reason: str, metrics: dict[str, int] | None = None) -> dict[str, Any]:
        return {"model": self.model, "created_at": _ts(self.world.clock.now()), **self._text(text), "done": True,
                "done_reason": reason, **(metrics or {})}


async def serve(scenario: str, host: str = "127.0.0.1", port: int = 11434, speed: float = 1.0, seed: int = 0,
                *, hostile_text: bool = False, faults: bool = True) -> None:
    """Run the simulator on `host:port` until cancelled (the ``rhtui sim`` command)."""
    from rhtui.engine.clock import ScaledClock

    from .scenario import load_scenario

    sc = load_scenario(scenario)
    world = SimWorld(sc, ScaledClock(speed), seed=seed, hostile_text=hostile_text, faults_enabled=faults)
    server = SimServer(world, host=host, port=port)
    url = await server.start()
    print(f"rhtui sim: scenario {sc.name} ({sc.gpu.name}) on {url}, speed {speed:g}x, seed {seed}", flush=True)
    try:
        await asyncio.Event().wait()
    finally:
        await server.stop()
