"""The LLM backend: Ollama through the official `ollama.AsyncClient`.

Knows nothing of students or budgets. Every failure is mapped onto a few
engine exceptions whose text says what to do:

- `BackendUnreachable`: Ollama cannot be used at the host: nothing listens there (connection
  refused), its name does not resolve, a cheap call (/api/version, /api/ps) was not answered in
  time (a hung server), or what answers is not Ollama; `detail` says which and `fix` what to do;
- `ModelMissing`: the model is not in Ollama: HTTP 404 only (names the command that fixes it);
- `OutOfMemory`: Ollama could not fit the model, or its runner ran out of memory (recognised by
  Ollama's own phrases, see `OOM_PHRASES`);
- `RunnerFailed`: Ollama's runner failed to load or run the model (HTTP 500, or an ``{"error"}``
  line in the middle of a stream); Ollama's text plus where its server log is;
- `BackendBusy`: Ollama's queue is full (HTTP 503, OLLAMA_MAX_QUEUE); worth another try soon;
- `StreamBroken`: the stream was cut or garbled mid-way; `LineTooLong` when one line of an answer
  passed `MAX_LINE_BYTES` (the answer is cut there, so a server cannot fill the memory);
- `BackendError`: anything else Ollama said, with its status and text.

`model_key` is how Ollama keys a model name (``library/foo`` is listed as ``foo:latest``,
names compare case-insensitively): compare a configured name with what Ollama lists through it.
"""

from __future__ import annotations

import asyncio
import json
import socket
import ssl
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Literal, Protocol

import httpcore
import httpx

from rhtui.engine.host import host_name, ollama_import_env
from rhtui.engine.sanitize import one_line

with ollama_import_env():  # the package reads OLLAMA_HOST when imported; ours is checked by config
    import ollama

MB = 1024 * 1024
NS = 1e9
MAX_LINE_BYTES = 16 * MB
"""The most one line of an answer may hold. Ollama streams one small JSON object a line (the last
with the prompt's context, a few hundred KB at a large num_ctx); past this the answer is cut."""
READ_EVERY_S = 0.1
"""How often a connection is read while an answer trickles in. Ollama sends one line a token (about
100 a second): a read for each woke the event loop and walked httpx's stack every time, which cost
more CPU than all the engine does with the text. Read at most this often, the lines that arrived
meanwhile come in one read; the text reaches the engine at most this much later."""
BULK_READ_BYTES = 16 * 1024
"""A read this large means the answer is coming in bulk (a long line, a big answer): the next read
is not held (one read is at most 64 KB; a second of tokens is a few KB)."""


class BackendError(Exception):
    """Ollama failed; str() says what happened and what to do."""


class BackendUnreachable(BackendError):
    """Ollama cannot be used at `host`: `detail` says what was found there, `fix` what to do."""

    START_FIX = ("Start it with `ollama serve` (or set OLLAMA_HOST / --host to where it listens),"
                 " or try the simulator with `rhtui --demo`.")
    HUNG_FIX = ("Ollama may be hung: restart it (`systemctl restart ollama` on Linux, or quit and reopen the app),"
                " or check that OLLAMA_HOST / --host names where Ollama listens.")
    NOT_OLLAMA_FIX = ("Another program answers on that address: set OLLAMA_HOST / --host to where Ollama listens"
                      " (port 11434 unless it was changed).")
    RESOLVE_FIX = "Check the host name in OLLAMA_HOST / --host (or give an IP address)."

    def __init__(self, host: str, detail: str = "", *, fix: str | None = None) -> None:
        self.host = host
        self.detail = detail
        self.fix = fix or self.START_FIX
        super().__init__(f"Ollama is not reachable at {host}" + (f" ({detail})" if detail else "") + ". " + self.fix)


class ModelMissing(BackendError):
    def __init__(self, model: str, host: str) -> None:
        self.model = model
        fix = (
            f"rhtui models create {model}"
            if model.startswith("rh-")
            else f"ollama pull {model}"
        )
        super().__init__(f"model {model!r} is not in Ollama at {host}; fix: `{fix}`")
        self.fix = fix


class OutOfMemory(BackendError):
    def __init__(self, model: str, detail: str, *, mid_stream: bool = False) -> None:
        self.model = model
        self.detail = detail
        self.mid_stream = mid_stream
        doing = "running" if mid_stream else "loading"
        super().__init__(f"Ollama ran out of memory {doing} {model!r}: {detail}")


SERVER_LOG_HINT = "Ollama's server log says why: `journalctl -u ollama` on Linux, `~/.ollama/logs/server.log` on macOS"


class RunnerFailed(BackendError):
    """Ollama's runner for a model failed: it could not load the model (a corrupt or unsupported
    file, e.g. "error loading model: key not found in model: ...") or it died while generating.
    `status` is the HTTP status, or None for an ``{"error"}`` line inside a stream that had begun."""

    def __init__(self, model: str, host: str, detail: str, status: int | None) -> None:
        self.model = model
        self.detail = detail
        self.status = status
        self.mid_stream = status is None
        how = "in the middle of its stream" if status is None else f"with HTTP {status}"
        super().__init__(f"Ollama at {host} failed running {model!r} {how}: {detail}. {SERVER_LOG_HINT}")


class BackendBusy(BackendError):
    """HTTP 503: Ollama's queue of pending requests is full (OLLAMA_MAX_QUEUE); try again later."""

    def __init__(self, host: str, detail: str) -> None:
        self.host = host
        self.detail = detail
        self.tries = 1  # how many times the caller asked before giving up
        super().__init__(f"Ollama at {host} is busy (HTTP 503: {detail})")


class StreamBroken(BackendError):
    """The generation stream was dropped or carried a malformed line."""


class LineTooLong(StreamBroken):
    """One line of an answer passed `MAX_LINE_BYTES`: the answer was cut there."""

    def __init__(self, host: str, path: str, limit: int) -> None:
        self.limit = limit
        super().__init__(f"Ollama at {host} sent a stream line longer than {limit / MB:g} MB in its answer to {path}; "
                         "the stream was cut there (rhtui reads no longer line)")


class _LineCappedStream(httpx.AsyncByteStream):
    """An answer's bytes, refused past a line longer than `limit` (the official client reads the
    stream with httpx's ``aiter_lines``, which holds a whole line in memory however long)."""

    def __init__(self, inner: httpx.AsyncByteStream, host: str, path: str, limit: int) -> None:
        self._inner, self._host, self._path, self._limit = inner, host, path, limit

    async def __aiter__(self) -> AsyncIterator[bytes]:
        run = 0  # bytes of the line not yet ended
        async for chunk in self._inner:
            last = chunk.rfind(b"\n")
            if last < 0:
                run += len(chunk)
            else:
                first = chunk.find(b"\n")
                longest = run + first
                if last - first > self._limit:  # whole lines within one big chunk
                    longest = max(longest, *(len(line) for line in chunk[first + 1 : last].split(b"\n")))
                if longest > self._limit:
                    raise LineTooLong(self._host, self._path, self._limit)
                run = len(chunk) - last - 1
            if run > self._limit:
                raise LineTooLong(self._host, self._path, self._limit)
            yield chunk

    async def aclose(self) -> None:
        await self._inner.aclose()


class _PacedStream(httpcore.AsyncNetworkStream):
    """A connection read at most once every `every` seconds while an answer trickles in (two small
    reads in a row); a large read lets the next one through at once, and a request written on the
    connection resets the pace, so the first reads of an answer are never held."""

    def __init__(self, inner: httpcore.AsyncNetworkStream, every: float) -> None:
        self._inner, self._every = inner, every
        self._next = 0.0
        self._small = 0  # small reads in a row

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        loop = asyncio.get_running_loop()
        wait = self._next - loop.time()
        if wait > 0:
            await asyncio.sleep(wait)
        data = await self._inner.read(max_bytes, timeout)
        self._small = self._small + 1 if len(data) < BULK_READ_BYTES else 0
        self._next = loop.time() + self._every if self._small >= 2 else 0.0
        return data

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._next, self._small = 0.0, 0
        await self._inner.write(buffer, timeout)

    async def aclose(self) -> None:
        await self._inner.aclose()

    async def start_tls(self, ssl_context: ssl.SSLContext, server_hostname: str | None = None,
                        timeout: float | None = None) -> httpcore.AsyncNetworkStream:
        return _PacedStream(await self._inner.start_tls(ssl_context, server_hostname, timeout), self._every)

    def get_extra_info(self, info: str) -> Any:
        return self._inner.get_extra_info(info)


class _PacedBackend(httpcore.AsyncNetworkBackend):
    """httpcore's network backend, with every connection it opens read through `_PacedStream`."""

    def __init__(self, inner: httpcore.AsyncNetworkBackend, every: float) -> None:
        self._inner, self._every = inner, every

    async def connect_tcp(self, host: str, port: int, timeout: float | None = None, local_address: str | None = None,
                          socket_options: Any = None) -> httpcore.AsyncNetworkStream:
        stream = await self._inner.connect_tcp(host, port, timeout, local_address, socket_options)
        return _PacedStream(stream, self._every)

    async def connect_unix_socket(self, path: str, timeout: float | None = None,
                                  socket_options: Any = None) -> httpcore.AsyncNetworkStream:
        return _PacedStream(await self._inner.connect_unix_socket(path, timeout, socket_options), self._every)

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


def _paced_transport(every: float) -> httpx.AsyncHTTPTransport:
    """httpx's default transport (the same settings as the client's own), its connections read
    through `_PacedBackend`. Proxies from the environment still get httpx's own transports."""
    transport = httpx.AsyncHTTPTransport()
    pool = getattr(transport, "_pool", None)
    backend = getattr(pool, "_network_backend", None)
    if every > 0 and isinstance(pool, httpcore.AsyncConnectionPool) and backend is not None:
        pool._network_backend = _PacedBackend(backend, every)
    return transport


def _connect_detail(exc: BaseException, host: str) -> str:
    """What a failed connection found, from the exception and its causes: a name that does not
    resolve (socket.gaierror) is not a refused connection."""
    seen: set[int] = set()
    e: BaseException | None = exc
    oserror: OSError | None = None
    while e is not None and id(e) not in seen:
        seen.add(id(e))
        if isinstance(e, socket.gaierror):
            return f"cannot resolve {host_name(host)!r}: {e.strerror or e}"
        if isinstance(e, ConnectionRefusedError):
            return "connection refused"
        if isinstance(e, ssl.SSLError):
            return f"TLS failed: {e.reason or e}"
        if isinstance(e, httpx.ConnectTimeout):
            return "the connection timed out"
        if isinstance(e, OSError) and e.strerror and oserror is None:
            oserror = e
        e = e.__cause__ or e.__context__
    return oserror.strerror.lower() if oserror is not None and oserror.strerror else "connection refused"


def model_key(name: str) -> str:
    """A model name as Ollama keys it: without the default registry and namespace
    (``registry.ollama.ai/library/foo`` and ``library/foo`` are ``foo``), with the default tag
    (``:latest``) when there is none, lower-cased (Ollama's names compare case-insensitively)."""
    key = name.strip().lower()
    for prefix in ("https://", "http://"):
        key = key.removeprefix(prefix)
    key = key.removeprefix("registry.ollama.ai/")
    if key.count("/") == 1:
        key = key.removeprefix("library/")
    return key if ":" in key.rsplit("/", 1)[-1] else key + ":latest"


@dataclass(frozen=True, slots=True)
class ModelInfo:
    name: str
    size_mb: float | None
    digest: str | None = None
    family: str | None = None
    parameter_size: str | None = None
    quantization: str | None = None


@dataclass(frozen=True, slots=True)
class LoadedModel:
    name: str
    size_mb: float | None
    vram_mb: float | None
    expires_at: datetime | None = None
    context_length: int | None = None


@dataclass(frozen=True, slots=True)
class ModelDetails:
    name: str
    modelfile: str
    parameters: str
    template: str
    license: str
    family: str | None = None
    parameter_size: str | None = None
    info: Mapping[str, Any] = field(default_factory=dict)
    system: str | None = None
    """/api/show's top-level ``system`` (Ollama omits it when empty; the client's ShowResponse drops it)."""
    renderer: str | None = None
    parser: str | None = None
    requires: str | None = None


@dataclass(frozen=True, slots=True)
class GenChunk:
    """One piece of a streamed generation; the last one has done=True and the metrics."""

    text: str
    done: bool = False
    done_reason: str | None = None
    total_s: float | None = None
    load_s: float | None = None
    prompt_tokens: int | None = None
    prompt_s: float | None = None
    eval_tokens: int | None = None
    eval_s: float | None = None


@dataclass(frozen=True, slots=True)
class CreateProgress:
    """One progress part of a create (Ollama's api.ProgressResponse): a status line, and while a
    layer is transferred (a missing base model pulled during the create, a file uploaded) its
    digest with the bytes completed so far and in all."""

    status: str
    digest: str | None = None
    completed: int | None = None
    total: int | None = None


class LlmBackend(Protocol):
    host: str

    async def version(self) -> str: ...
    async def list_models(self) -> list[ModelInfo]: ...
    async def ps(self) -> list[LoadedModel]: ...
    async def show(self, model: str) -> ModelDetails: ...
    def create(self, model: str, **fields: Any) -> AsyncIterator[CreateProgress]: ...
    async def delete(self, model: str) -> None: ...
    async def preload(self, model: str, options: Mapping[str, Any] | None, keep_alive: float | str) -> float | None: ...
    def generate(
        self, model: str, prompt: str, options: Mapping[str, Any] | None, keep_alive: float | str,
        *, format: Mapping[str, Any] | Literal["", "json"] | None = None,
    ) -> AsyncIterator[GenChunk]: ...
    async def unload(self, model: str) -> None: ...
    async def close(self) -> None: ...


def _mb(v: Any) -> float | None:
    return None if v is None else int(v) / MB


def _s(ns: int | None) -> float | None:
    return None if ns is None else ns / NS


# Ollama's out-of-memory phrases: llm/status.go (outOfMemorySubstrings, matched case-insensitively
# in the runner's output), llm/server.go (ErrLoadRequiredFull, "memory layout cannot be allocated",
# "model requires more system memory ... than is available") and Vulkan's error names as ggml
# prints them ("vk::Device::allocateMemory: ErrorOutOfDeviceMemory").
OOM_PHRASES = (
    "out of memory",
    "out of device memory",
    "cudamalloc failed",
    "hipmalloc failed",
    "failed to allocate",
    "allocation failed",
    "not enough memory",
    "insufficient memory",
    "memory layout cannot be allocated",
    "model requires more system memory",
    "unable to load full model on gpu",
    "vk_error_out_of_device_memory",
    "erroroutofdevicememory",
    "erroroutofmemory",
)


def _is_oom(text: str) -> bool:
    t = text.lower()
    return any(p in t for p in OOM_PHRASES)


class OllamaBackend:
    """`LlmBackend` on the official client. One client for the life of the backend; its connections
    are read at most every `read_every_s` while an answer trickles in (`READ_EVERY_S`; 0: every line)."""

    def __init__(self, host: str, *, request_timeout_s: float = 15.0, max_line_bytes: int = MAX_LINE_BYTES,
                 read_every_s: float = READ_EVERY_S) -> None:
        self.host = host
        self._timeout = request_timeout_s
        self._max_line = max_line_bytes
        self._client = ollama.AsyncClient(
            host=host,
            # uncompressed answers, so that the line cap (`_cap_lines`) bounds what is held in memory;
            # a connection that is not made soon fails as such, before the caller's own timeout
            headers={"Accept-Encoding": "identity"},
            event_hooks={"response": [self._cap_lines]},
            timeout=httpx.Timeout(None, connect=max(0.1, 0.8 * request_timeout_s)),
            transport=_paced_transport(read_every_s),
        )

    async def _cap_lines(self, response: httpx.Response) -> None:
        """Every answer is read through `_LineCappedStream`; a compressed one (asked for none) is refused."""
        encoding = response.headers.get("content-encoding", "").strip().lower()
        if encoding not in ("", "identity"):
            raise StreamBroken(
                f"Ollama at {self.host} sent a compressed answer (Content-Encoding: {one_line(encoding, 40)}) "
                "although rhtui asked for none; rhtui reads answers uncompressed to bound their size "
                "(a proxy in between may be compressing: turn that off for Ollama's API)"
            )
        if isinstance(response.stream, httpx.AsyncByteStream):
            response.stream = _LineCappedStream(response.stream, self.host, response.request.url.path, self._max_line)

    async def close(self) -> None:
        await self._client.close()

    # -- error mapping ---------------------------------------------------------------

    def _map(self, exc: BaseException, model: str | None = None) -> BackendError:
        if isinstance(exc, BackendError):
            return exc
        if isinstance(exc, ConnectionError | httpx.ConnectError | httpx.ConnectTimeout):
            detail = _connect_detail(exc, self.host)
            fix = BackendUnreachable.RESOLVE_FIX if detail.startswith("cannot resolve") else None
            return BackendUnreachable(self.host, detail, fix=fix)
        if isinstance(exc, ollama.ResponseError):
            text = str(exc.error)
            status = exc.status_code
            # the official client raises status -1 for an {"error"} line inside a stream that had
            # begun with 200: the runner failed mid-way (never "model missing", whatever it says)
            mid_stream = status is None or status < 0
            if model and status == 404:
                return ModelMissing(model, self.host)
            if status == 503:
                return BackendBusy(self.host, text)
            if _is_oom(text):
                return OutOfMemory(model or "?", text, mid_stream=mid_stream)
            if model and (mid_stream or status >= 500):
                return RunnerFailed(model, self.host, text, None if mid_stream else status)
            code = "an error" if mid_stream else f"HTTP {status}"
            return BackendError(f"Ollama at {self.host} answered {code}: {text}")
        if isinstance(exc, json.JSONDecodeError):
            return StreamBroken(f"Ollama at {self.host} sent a malformed stream line ({exc.msg})")
        if isinstance(exc, httpx.TimeoutException):
            return BackendError(f"Ollama at {self.host} did not answer in time ({type(exc).__name__})")
        if isinstance(exc, httpx.TransportError):
            return StreamBroken(f"the connection to Ollama at {self.host} was dropped ({type(exc).__name__})")
        return BackendError(f"unexpected error talking to Ollama at {self.host}: {exc!r}")

    async def _call(self, coro, model: str | None = None, timeout: float | None = -1.0, *, cheap: str = ""):
        """Await a request under the timeout. A `cheap` call (its path: /api/version, /api/ps, /api/tags)
        that Ollama does not answer in time means Ollama is not answering at all: `BackendUnreachable`."""
        try:
            if timeout == -1.0:
                timeout = self._timeout
            return await asyncio.wait_for(coro, timeout)
        except TimeoutError:
            if cheap:
                raise BackendUnreachable(
                    self.host, f"it accepted the connection but did not answer {cheap} within {timeout:g} s",
                    fix=BackendUnreachable.HUNG_FIX,
                ) from None
            raise BackendError(f"Ollama at {self.host} did not answer within {timeout:g} s") from None
        except (ConnectionError, ollama.ResponseError, httpx.HTTPError, json.JSONDecodeError) as exc:
            raise self._map(exc, model) from None

    # -- queries ---------------------------------------------------------------------

    async def version(self) -> str:
        """GET /api/version (the official client has no method for it). Whatever keeps it from being
        Ollama's answer — no answer in time, an HTTP error, something that is not Ollama's JSON, not
        HTTP at all — is `BackendUnreachable`, whose detail says what was found."""

        async def get() -> str:
            try:
                r = await self._client._client.get("/api/version")
            except httpx.RemoteProtocolError as exc:
                raise BackendUnreachable(self.host, f"what answers there does not speak HTTP ({exc})",
                                         fix=BackendUnreachable.NOT_OLLAMA_FIX) from None
            return self._version_of(r)

        try:
            return await self._call(get(), cheap="/api/version")
        except BackendUnreachable:
            raise
        except BackendError as exc:
            raise BackendUnreachable(self.host, f"its answer to /api/version could not be read: {exc}",
                                     fix=BackendUnreachable.NOT_OLLAMA_FIX) from None

    def _version_of(self, r: httpx.Response) -> str:
        kind = one_line(r.headers.get("content-type", "").split(";")[0].strip(), 60) or "no content type"
        if r.status_code >= 500:
            raise BackendUnreachable(
                self.host, f"its /api/version answered HTTP {r.status_code}: {one_line(r.text, 200) or 'no text'}",
                fix=SERVER_LOG_HINT + "; restart it if it does not recover.",
            )
        if r.status_code != 200:
            raise BackendUnreachable(
                self.host,
                f"something that is not Ollama answers there: /api/version gave HTTP {r.status_code} ({kind})",
                fix=BackendUnreachable.NOT_OLLAMA_FIX,
            )
        try:
            body = r.json()
        except ValueError:
            body = None
        version = body.get("version") if isinstance(body, dict) else None
        if not isinstance(version, str) or not version:
            raise BackendUnreachable(
                self.host, f"something that is not Ollama answers there: /api/version gave {kind}, not Ollama's "
                "JSON with a version", fix=BackendUnreachable.NOT_OLLAMA_FIX,
            )
        return version

    async def list_models(self) -> list[ModelInfo]:
        resp = await self._call(self._client.list(), cheap="/api/tags")
        out = []
        for m in resp.models:
            d = m.details
            out.append(
                ModelInfo(
                    name=m.model or "",
                    size_mb=_mb(m.size),
                    digest=m.digest,
                    family=d.family if d else None,
                    parameter_size=d.parameter_size if d else None,
                    quantization=d.quantization_level if d else None,
                )
            )
        return out

    async def ps(self) -> list[LoadedModel]:
        resp = await self._call(self._client.ps(), cheap="/api/ps")
        return [
            LoadedModel(
                name=m.model or m.name or "",
                size_mb=_mb(m.size),
                vram_mb=_mb(m.size_vram),
                expires_at=m.expires_at,
                context_length=m.context_length,
            )
            for m in resp.models
        ]

    async def show(self, model: str) -> ModelDetails:
        """POST /api/show, read from its JSON: the official client's ShowResponse drops ``system``
        (and ``renderer``, ``parser``, ``requires``), which the drift check needs."""

        async def get() -> dict[str, Any]:
            r = await self._client._request_raw("POST", "/api/show", json={"model": model})
            body = r.json()
            if not isinstance(body, dict):
                raise BackendError(f"Ollama at {self.host} answered /api/show with something that is not a JSON object")
            return body

        raw = await self._call(get(), model)
        r = ollama.ShowResponse(**raw)
        d = r.details

        def text(key: str) -> str | None:
            v = raw.get(key)
            return v if isinstance(v, str) else None

        return ModelDetails(
            name=model,
            modelfile=r.modelfile or "",
            parameters=r.parameters or "",
            template=r.template or "",
            license=r.license or "",
            family=d.family if d else None,
            parameter_size=d.parameter_size if d else None,
            info=dict(r.modelinfo or {}),
            system=text("system"),
            renderer=text("renderer"),
            parser=text("parser"),
            requires=text("requires"),
        )

    # -- model management ------------------------------------------------------------

    async def create(self, model: str, **fields: Any) -> AsyncIterator[CreateProgress]:
        """Create `model` as ``ollama create`` does, from structured fields: ``from_`` or
        ``files``, and ``adapters``, ``draft_files``, ``system``, ``template``, ``parameters``,
        ``license``, ``messages``, ``renderer``, ``parser``, ``requires``. Yields every progress
        part as it streams (`CreateProgress`): Ollama pulls a missing base model itself during a
        create (server/create.go → images.go PullModel), reporting ``pulling <digest>`` parts with
        bytes completed and total per layer.

        A value of ``files``, ``adapters`` or ``draft_files`` that is a local path is uploaded
        first as a blob (the client's create_blob: POST /api/blobs/<sha256>) and sent as its
        digest, as the CLI does. A base model Ollama cannot pull raises `ModelMissing` with
        Ollama's reason and ``ollama pull BASE``."""
        base = fields.get("from_")
        body = dict(fields)
        for key in ("files", "adapters", "draft_files"):
            if body.get(key):
                sent: dict[str, str] = {}
                for name, value in dict(body[key]).items():
                    if isinstance(value, str) and value.startswith("sha256:"):
                        sent[name] = value
                        continue
                    async for piece in self._upload(Path(value)):
                        yield piece
                        if piece.digest:
                            sent[name] = piece.digest
                body[key] = sent
        extra = {k: body.pop(k) for k in ("draft_files", "renderer", "parser", "requires") if body.get(k)}
        pulling = False
        try:
            if extra:  # fields the official client's CreateRequest does not carry: its own request, the same JSON
                from ollama._types import CreateRequest

                payload = CreateRequest(model=model, stream=True, **body).model_dump(exclude_none=True) | extra
                stream = await self._client._request(ollama.ProgressResponse, "POST", "/api/create", json=payload,
                                                     stream=True)
            else:
                stream = await self._client.create(model=model, stream=True, **body)
            async for part in stream:
                status = part.status or ""
                pulling = pulling or status.startswith("pulling")
                yield CreateProgress(status, part.digest or None, part.completed, part.total)
        except (ConnectionError, ollama.ResponseError, httpx.HTTPError, json.JSONDecodeError) as exc:
            err = self._map(exc, base)
            if pulling and base and isinstance(exc, ollama.ResponseError):
                detail = str(exc.error)
                why = (" (is the name right? Ollama's registry has no such model)" if "file does not exist" in detail
                       else " (Ollama needs to reach its registry)")
                err = ModelMissing(base, self.host)
                err.args = (f"Ollama at {self.host} could not pull base model {base!r} of {model!r}: {detail}; "
                            f"fix: `ollama pull {base}`{why}",)
                err.fix = f"ollama pull {base}"
            elif isinstance(err, ModelMissing) and base:
                err = ModelMissing(base, self.host)
                err.args = (f"base model {base!r} of {model!r} is not pulled in Ollama at {self.host}; "
                            f"fix: `ollama pull {base}`",)
                err.fix = f"ollama pull {base}"
            elif isinstance(err, RunnerFailed):  # no runner is involved in a create
                pulling_hint = (
                    f" (Ollama pulls a missing base model during a create; `ollama pull {base}` shows why it could not)"
                    if base and "pull" in err.detail.lower() else ""
                )
                err = BackendError(f"Ollama at {self.host} could not create {model!r}: {err.detail}{pulling_hint}")
            raise err from None

    async def _upload(self, path: Path) -> AsyncIterator[CreateProgress]:
        """Upload a local file as a blob (the client's create_blob); the last part carries its digest."""
        try:
            size = path.stat().st_size
        except OSError as exc:
            raise BackendError(f"cannot read {path}: {exc.strerror or exc}") from None
        yield CreateProgress(f"copying file {path.name} ({size:,} bytes)")
        try:
            digest = await self._client.create_blob(path)
        except (ConnectionError, ollama.ResponseError, httpx.HTTPError) as exc:
            raise self._map(exc) from None
        except OSError as exc:
            raise BackendError(f"cannot read {path}: {exc.strerror or exc}") from None
        yield CreateProgress(f"copying file {digest} 100%", digest, size, size)

    async def delete(self, model: str) -> None:
        await self._call(self._client.delete(model), model)

    # -- running ---------------------------------------------------------------------

    async def preload(self, model: str, options: Mapping[str, Any] | None, keep_alive: float | str) -> float | None:
        """Load `model` with an empty prompt. Returns Ollama's load time in seconds where the
        answer carries one; Ollama's load answer (done_reason "load") usually has no durations,
        so the caller times the call itself."""
        r = await self._call(
            self._client.generate(model=model, prompt="", options=dict(options or {}), keep_alive=keep_alive),
            model,
            timeout=None,
        )
        return _s(r.load_duration)

    async def generate(
        self, model: str, prompt: str, options: Mapping[str, Any] | None, keep_alive: float | str,
        *, format: Mapping[str, Any] | Literal["", "json"] | None = None,
    ) -> AsyncIterator[GenChunk]:
        """Stream a generation. Closing the iterator (or cancelling its task) closes the
        HTTP stream, which makes Ollama stop generating. `format`: Ollama's structured outputs
        ("json" or a JSON schema the answer must follow)."""
        try:
            stream = await self._client.generate(
                model=model, prompt=prompt, options=dict(options or {}), keep_alive=keep_alive, stream=True,
                format=dict(format) if isinstance(format, Mapping) else format,
            )
            async for part in stream:
                if part.done:
                    yield GenChunk(
                        text=part.response or "",
                        done=True,
                        done_reason=part.done_reason,
                        total_s=_s(part.total_duration),
                        load_s=_s(part.load_duration),
                        prompt_tokens=part.prompt_eval_count,
                        prompt_s=_s(part.prompt_eval_duration),
                        eval_tokens=part.eval_count,
                        eval_s=_s(part.eval_duration),
                    )
                    return
                yield GenChunk(text=part.response or "")
        except (ConnectionError, ollama.ResponseError, httpx.HTTPError, json.JSONDecodeError) as exc:
            raise self._map(exc, model) from None
        raise StreamBroken(f"Ollama at {self.host} ended the stream for {model!r} without a final message")

    async def unload(self, model: str) -> None:
        """keep_alive=0: Ollama unloads the model now."""
        await self._call(self._client.generate(model=model, prompt="", keep_alive=0), model)
