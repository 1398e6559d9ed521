"""`OllamaBackend` against Ollama's own answers: the shapes in tests/fixtures/ollama (copied from
Ollama's docs and source, see its README) replayed by a small aiohttp server on loopback
(tests/ollama_replay.py), and the error mapping by Ollama's meaning: only a 404 is a missing model,
a 500 is the runner failing (whatever its text says), a 503 is a full queue, an ``{"error"}`` line
in a stream is the runner failing mid-way, and out of memory is known by Ollama's own phrases."""

from __future__ import annotations

import ollama
import pytest

from rhtui.engine.backend import (
    BackendBusy,
    BackendError,
    ModelMissing,
    OllamaBackend,
    OutOfMemory,
    RunnerFailed,
    _is_oom,
    model_key,
)
from tests.ollama_replay import fixture


async def drain(backend: OllamaBackend, model: str) -> list:
    return [c async for c in backend.generate(model, "Why?", None, keep_alive="5m")]


# -- the documented shapes --------------------------------------------------------------------


async def test_documented_answers_are_read(replay) -> None:
    r, b = replay
    r.queue("/api/tags", "tags")
    r.queue("/api/ps", "ps")
    r.queue("/api/generate", "generate_load", "generate_stream", "generate_unload")
    models = {m.name: m for m in await b.list_models()}
    assert set(models) == {"deepseek-r1:latest", "llama3.2:latest"}
    assert models["llama3.2:latest"].quantization == "Q4_K_M"
    # a configured name finds what Ollama lists, however it is spelled
    keyed = {model_key(n) for n in models}
    assert {model_key("library/llama3.2"), model_key("registry.ollama.ai/library/DeepSeek-R1")} <= keyed
    (loaded,) = await b.ps()
    assert loaded.name == "mistral:latest" and loaded.vram_mb == pytest.approx(5137025024 / 2**20)
    assert await b.preload("llama3.2", None, "5m") is None  # the load answer carries no durations
    chunks = await drain(b, "llama3.2")
    assert [c.text for c in chunks] == ["The", ""]
    final = chunks[-1]
    assert final.done and final.eval_tokens == 259 and final.eval_s == pytest.approx(4.23271)
    assert final.load_s == pytest.approx(6.338219291)
    await b.unload("llama3.2")
    path, body = r.requests[-1]
    assert path == "/api/generate" and body["keep_alive"] == 0 and body["prompt"] == ""


# -- errors by what Ollama means ---------------------------------------------------------------


async def test_only_a_404_is_a_missing_model(replay) -> None:
    r, b = replay
    r.queue("/api/generate", "error_404_not_found")
    with pytest.raises(ModelMissing) as info:
        await b.preload("rh-beta", None, "5m")
    assert info.value.fix == "rhtui models create rh-beta"
    r.queue("/api/generate", "error_404_not_found")
    with pytest.raises(ModelMissing) as info:
        await b.preload("llama3.2", None, "5m")
    assert info.value.fix == "ollama pull llama3.2"


async def test_a_500_that_says_not_found_is_the_runner_failing(replay) -> None:
    r, b = replay
    r.queue("/api/generate", "error_500_load", "error_500_load")
    with pytest.raises(RunnerFailed) as info:
        await b.preload("rh-beta", None, "5m")
    exc = info.value
    assert not isinstance(exc, ModelMissing) and exc.status == 500 and not exc.mid_stream
    text = fixture("error_500_load")["body"]["error"]
    assert exc.detail == text and text in str(exc)
    assert "journalctl -u ollama" in str(exc) and "~/.ollama/logs/server.log" in str(exc)
    with pytest.raises(RunnerFailed):  # the same on the streaming path (the 500 comes before any line)
        await drain(b, "rh-beta")


async def test_out_of_memory_in_a_500(replay) -> None:
    r, b = replay
    r.queue("/api/generate", "error_500_oom")
    with pytest.raises(OutOfMemory) as info:
        await b.preload("rh-zeta", None, "5m")
    assert "requires more system memory" in info.value.detail and not info.value.mid_stream


async def test_a_503_is_busy(replay) -> None:
    r, b = replay
    r.queue("/api/generate", "error_503_busy", "error_503_busy")
    with pytest.raises(BackendBusy) as info:
        await b.preload("rh-alpha", None, "5m")
    assert "maximum pending requests exceeded" in str(info.value) and "503" in str(info.value)
    with pytest.raises(BackendBusy):
        await drain(b, "rh-alpha")


async def test_an_error_line_in_the_stream_is_the_runner_failing_mid_way(replay) -> None:
    r, b = replay
    r.queue("/api/generate", "generate_stream_error")
    got: list[str] = []
    with pytest.raises(RunnerFailed) as info:
        async for c in b.generate("gemma4", "Why?", None, keep_alive="5m"):
            got.append(c.text)
    assert got == [" Yes", ".", "I", "can"]
    exc = info.value
    assert exc.mid_stream and exc.status is None
    assert exc.detail == "an error was encountered while running the model"
    assert "in the middle of its stream" in str(exc) and "server log" in str(exc)


def test_the_official_client_raises_status_minus_one_for_an_error_line() -> None:
    # ollama-python's _stream: `if err := part.get('error'): raise ResponseError(err)`; the default is -1
    assert ollama.ResponseError("boom").status_code == -1


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("model 'rh-beta' not found", RunnerFailed),  # mid-stream "not found" is never a missing model
        ("an error was encountered while running the model: CUDA error: out of memory", OutOfMemory),
        ("ggml_vulkan: vk::Device::allocateMemory: ErrorOutOfDeviceMemory", OutOfMemory),
    ],
)
async def test_error_lines_are_mapped_by_their_text(text, expected) -> None:
    b = OllamaBackend("http://127.0.0.1:9")
    try:
        err = b._map(ollama.ResponseError(text), "rh-beta")
    finally:
        await b.close()
    assert type(err) is expected
    assert getattr(err, "mid_stream", None) is True


async def test_errors_without_a_model_stay_plain() -> None:
    b = OllamaBackend("http://127.0.0.1:9")
    try:
        err = b._map(ollama.ResponseError('{"error":"something broke"}', 500))
    finally:
        await b.close()
    assert type(err) is BackendError and "HTTP 500: something broke" in str(err)


# -- Ollama's out-of-memory phrases ---------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        # llm/status.go outOfMemorySubstrings and its tests
        "llama runner process has terminated: CUDA error: out of memory",
        "cudaMalloc failed: out of memory",
        "ggml_cuda_host_malloc: CUDAMALLOC FAILED",
        "hipMalloc failed: out of memory",
        "failed to allocate context",
        "ggml_gallocr_reserve_n: allocation failed",
        "not enough memory to load the model",
        "error: Insufficient Memory (00000008:kIOGPUCommandBufferCallbackErrorOutOfMemory)",
        "Vulkan error: out of device memory",
        "ggml_vulkan: vk::Device::allocateMemory: ErrorOutOfDeviceMemory",
        "vkAllocateMemory returned VK_ERROR_OUT_OF_DEVICE_MEMORY",
        # llm/server.go
        "memory layout cannot be allocated with num_gpu = 99",
        "model requires more system memory (12.3 GiB) than is available (9.8 GiB)",
        "unable to load full model on GPU",
    ],
)
def test_oom_phrases(text) -> None:
    assert _is_oom(text) and _is_oom(text.upper()) and _is_oom(text.lower())


@pytest.mark.parametrize(
    "text",
    [
        "model loaded successfully",
        "llama runner process has terminated: error loading model: key not found in model: llama.attention.head_count",
        "server busy, please try again.  maximum pending requests exceeded",
    ],
)
def test_not_oom(text) -> None:
    assert not _is_oom(text)


# -- names as Ollama keys them ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "key"),
    [
        ("rh-alpha", "rh-alpha:latest"),
        ("rh-alpha:latest", "rh-alpha:latest"),
        ("RH-Alpha", "rh-alpha:latest"),
        ("library/foo", "foo:latest"),
        ("registry.ollama.ai/library/foo:7B", "foo:7b"),
        ("registry.ollama.ai/someone/foo", "someone/foo:latest"),
        ("someone/foo:q4", "someone/foo:q4"),
        ("hf.co/org/model-GGUF:Q4_K_M", "hf.co/org/model-gguf:q4_k_m"),
        ("localhost:5000/foo", "localhost:5000/foo:latest"),
        ("  llama3.2  ", "llama3.2:latest"),
    ],
)
def test_model_key(name, key) -> None:
    assert model_key(name) == key
