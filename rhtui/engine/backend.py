"""The LLM backend: Ollama through the official `ollama.AsyncClient`.

Knows nothing of students or budgets. Every failure is mapped onto a few
engine exceptions whose text says what to do:

- `BackendUnreachable`: nothing answered at the host (names the host and OLLAMA_HOST);
- `ModelMissing`: the model is not in Ollama (names the command that fixes it);
- `OutOfMemory`: Ollama could not fit the model;
- `StreamBroken`: the stream was cut or garbled mid-way;
- `BackendError`: anything else Ollama said, with its status and text.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

import httpx
import ollama

MB = 1024 * 1024
NS = 1e9


class BackendError(Exception):
    """Ollama failed; str() says what happened and what to do."""


class BackendUnreachable(BackendError):
    def __init__(self, host: str, detail: str = "") -> None:
        self.host = host
        msg = (
            f"Ollama is not reachable at {host}"
            + (f" ({detail})" if detail else "")
            + ". Start it with `ollama serve` (or set OLLAMA_HOST / --host to where it listens),"
            " or try the simulator with `rhtui --demo`."
        )
        super().__init__(msg)


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
    def __init__(self, model: str, detail: str) -> None:
        self.model = model
        self.detail = detail
        super().__init__(f"Ollama ran out of memory loading {model!r}: {detail}")


class StreamBroken(BackendError):
    """The generation stream was dropped or carried a malformed line."""


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


class LlmBackend(Protocol):
    host: str

    async def version(self) -> str: ...
    async def list_models(self) -> list[ModelInfo]: ...
    async def ps(self) -> list[LoadedModel]: ...
    async def show(self, model: str) -> ModelDetails: ...
    def create(self, model: str, **fields: Any) -> AsyncIterator[str]: ...
    async def delete(self, model: str) -> None: ...
    async def preload(self, model: str, options: Mapping[str, Any] | None, keep_alive: float | str) -> float | None: ...
    def generate(
        self, model: str, prompt: str, options: Mapping[str, Any] | None, keep_alive: float | str
    ) -> AsyncIterator[GenChunk]: ...
    async def unload(self, model: str) -> None: ...
    async def close(self) -> None: ...


def _mb(v: Any) -> float | None:
    return None if v is None else int(v) / MB


def _s(ns: int | None) -> float | None:
    return None if ns is None else ns / NS


def _is_oom(text: str) -> bool:
    t = text.lower()
    return "out of memory" in t or "requires more system memory" in t or "cudamalloc failed" in t


class OllamaBackend:
    """`LlmBackend` on the official client. One client for the life of the backend."""

    def __init__(self, host: str, *, request_timeout_s: float = 15.0) -> None:
        self.host = host
        self._client = ollama.AsyncClient(host=host)
        self._timeout = request_timeout_s

    async def close(self) -> None:
        await self._client.close()

    # -- error mapping ---------------------------------------------------------------

    def _map(self, exc: BaseException, model: str | None = None) -> BackendError:
        if isinstance(exc, BackendError):
            return exc
        if isinstance(exc, ConnectionError | httpx.ConnectError | httpx.ConnectTimeout):
            return BackendUnreachable(self.host, "connection refused")
        if isinstance(exc, ollama.ResponseError):
            text = str(exc.error)
            if model and (exc.status_code == 404 or "not found" in text.lower()):
                return ModelMissing(model, self.host)
            if _is_oom(text):
                return OutOfMemory(model or "?", text)
            code = f"HTTP {exc.status_code}" if exc.status_code and exc.status_code > 0 else "an error"
            return BackendError(f"Ollama at {self.host} answered {code}: {text}")
        if isinstance(exc, json.JSONDecodeError):
            return StreamBroken(f"Ollama at {self.host} sent a malformed stream line ({exc.msg})")
        if isinstance(exc, httpx.TimeoutException):
            return BackendError(f"Ollama at {self.host} did not answer in time ({type(exc).__name__})")
        if isinstance(exc, httpx.TransportError):
            return StreamBroken(f"the connection to Ollama at {self.host} was dropped ({type(exc).__name__})")
        return BackendError(f"unexpected error talking to Ollama at {self.host}: {exc!r}")

    async def _call(self, coro, model: str | None = None, timeout: float | None = -1.0):
        try:
            if timeout == -1.0:
                timeout = self._timeout
            return await asyncio.wait_for(coro, timeout)
        except asyncio.TimeoutError:
            raise BackendError(f"Ollama at {self.host} did not answer within {timeout:g} s") from None
        except (ConnectionError, ollama.ResponseError, httpx.HTTPError, json.JSONDecodeError) as exc:
            raise self._map(exc, model) from None

    # -- queries ---------------------------------------------------------------------

    async def version(self) -> str:
        """GET /api/version (the official client has no method for it)."""

        async def get() -> str:
            r = await self._client._client.get("/api/version")
            r.raise_for_status()
            return str(r.json().get("version", "?"))

        try:
            return await self._call(get())
        except httpx.HTTPStatusError as exc:  # pragma: no cover - raised inside _call's mapping
            raise BackendError(f"Ollama at {self.host} answered HTTP {exc.response.status_code} to /api/version") from None

    async def list_models(self) -> list[ModelInfo]:
        resp = await self._call(self._client.list())
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
        resp = await self._call(self._client.ps())
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
        r = await self._call(self._client.show(model), model)
        d = r.details
        return ModelDetails(
            name=model,
            modelfile=r.modelfile or "",
            parameters=r.parameters or "",
            template=r.template or "",
            license=r.license or "",
            family=d.family if d else None,
            parameter_size=d.parameter_size if d else None,
            info=dict(r.modelinfo or {}),
        )

    # -- model management ------------------------------------------------------------

    async def create(self, model: str, **fields: Any) -> AsyncIterator[str]:
        """Create `model` from structured fields (from_, system, parameters, template, license,
        messages); yields Ollama's status lines as they stream."""
        try:
            stream = await self._client.create(model=model, stream=True, **fields)
            async for part in stream:
                yield part.status or ""
        except (ConnectionError, ollama.ResponseError, httpx.HTTPError, json.JSONDecodeError) as exc:
            base = fields.get("from_")
            err = self._map(exc, base)
            if isinstance(err, ModelMissing) and base:
                err = ModelMissing(base, self.host)
                err.args = (f"base model {base!r} of {model!r} is not pulled in Ollama at {self.host}; fix: `ollama pull {base}`",)
                err.fix = f"ollama pull {base}"
            raise err from None

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
        self, model: str, prompt: str, options: Mapping[str, Any] | None, keep_alive: float | str
    ) -> AsyncIterator[GenChunk]:
        """Stream a generation. Closing the iterator (or cancelling its task) closes the
        HTTP stream, which makes Ollama stop generating."""
        try:
            stream = await self._client.generate(
                model=model, prompt=prompt, options=dict(options or {}), keep_alive=keep_alive, stream=True
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
