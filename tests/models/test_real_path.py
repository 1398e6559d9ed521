"""The real path of `rhtui models create|verify`, as Ollama behaves (server/create.go, server/model.go,
server/images.go, server/download.go, server/routes.go, parser/parser.go):

- a create whose base model is not pulled makes Ollama pull it, its progress (``pulling <digest>``
  with completed and total per layer) streamed in the create's stream; a pull that cannot reach
  the registry ends the stream with Ollama's error;
- ``FROM ./file.gguf`` is uploaded as a blob and sent as ``files``, never as ``from``;
- /api/show's ``modelfile`` is written with Go's quoting (bare values), its ``system`` is a
  top-level field, an empty SYSTEM or TEMPLATE keeps the base model's, licenses are appended;
- DELETE /api/delete leaves a loaded runner loaded.

Against the simulator over real HTTP (the official client, the engine's backend, the `rhtui`
command), and against Ollama's documented answers (tests/fixtures/ollama) replayed.
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import AsyncIterator

import httpx
import ollama
import pytest
from rich.console import Console

from rhtui.commands.models import CreateDisplay
from rhtui.engine.backend import CreateProgress, ModelMissing, OllamaBackend
from rhtui.engine.clock import ScaledClock
from rhtui.engine.modelfile import compare_with_show, parse_modelfile, read_show
from rhtui.sim.catalog import MIB
from rhtui.sim.scenario import load_scenario
from rhtui.sim.server import SimServer
from rhtui.sim.world import SimWorld
from tests.models.conftest import write_modelfiles
from tests.ollama_replay import fixture

pytestmark = pytest.mark.integration

OFFLINE = ('pull model manifest: Get "https://registry.ollama.ai/v2/library/nous-hermes/manifests/7b": '
           "dial tcp: lookup registry.ollama.ai: no such host")


@pytest.fixture
async def served() -> AsyncIterator[tuple[SimWorld, SimServer, ollama.AsyncClient, OllamaBackend]]:
    world = SimWorld(load_scenario("rtx4070s"), ScaledClock(200.0), seed=3, faults_enabled=False)
    async with SimServer(world) as server:
        client = ollama.AsyncClient(host=server.url)
        backend = OllamaBackend(server.url, request_timeout_s=10)
        try:
            yield world, server, client, backend
        finally:
            await client.close()
            await backend.close()


# -- the simulator: a create pulls a missing base ----------------------------------------------------


async def test_a_create_pulls_a_missing_base_with_streamed_progress(served) -> None:
    world, _, client, _ = served
    await client.delete("nous-hermes:7b")
    parts = [p async for p in await client.create(model="rh-new", from_="nous-hermes:7b", system="S.", stream=True)]
    statuses = [p.status for p in parts]
    assert statuses[0] == "pulling manifest"
    base = world.find_model("nous-hermes:7b")
    assert base is not None, "the base is pulled"
    weights = [p for p in parts if p.digest == base.weights_digest]
    assert len(weights) >= 3, "several progress parts for a 3.5 GB layer"
    assert all(p.status == f"pulling {base.weights_digest[7:19]}" and p.total == int(base.weights_mb * MIB)
               for p in weights)
    assert weights[0].completed is None  # 0 is left out (api.ProgressResponse omitempty)
    done = [p.completed for p in weights[1:]]
    assert done == sorted(done) and done[-1] == weights[0].total
    pull_end = statuses.index("verifying sha256 digest")
    assert statuses[pull_end:pull_end + 3] == ["verifying sha256 digest", "writing manifest", "success"]
    assert any(s.startswith("using existing layer sha256:") for s in statuses[pull_end + 3:])
    assert statuses[-2:] == ["writing manifest", "success"]
    assert "nous-hermes:7b" in [m.model for m in (await client.list()).models]
    assert world.create_requests[-1]["from"] == "nous-hermes:7b"


async def test_a_pull_that_cannot_reach_the_registry_fails_with_ollamas_error(served) -> None:
    world, _, client, backend = served
    await client.delete("nous-hermes:7b")
    world.registry.registry_offline = True
    statuses = []
    with pytest.raises(ollama.ResponseError) as info:
        async for part in await client.create(model="rh-new", from_="nous-hermes:7b", stream=True):
            statuses.append(part.status)
    assert statuses == ["pulling manifest"] and info.value.error == OFFLINE
    with pytest.raises(ollama.ResponseError) as info:
        await client.create(model="rh-new", from_="nous-hermes:7b")
    assert info.value.status_code == 500 and info.value.error == OFFLINE
    with pytest.raises(ollama.ResponseError, match="no such host"):
        async for _ in await client.pull("nous-hermes:7b", stream=True):
            pass
    with pytest.raises(ModelMissing) as missing:
        async for _ in backend.create("rh-new", from_="nous-hermes:7b"):
            pass
    assert OFFLINE in str(missing.value) and "fix: `ollama pull nous-hermes:7b`" in str(missing.value)
    assert missing.value.fix == "ollama pull nous-hermes:7b"
    assert world.find_model("rh-new") is None and world.find_model("nous-hermes:7b") is None


async def test_the_backend_yields_the_whole_progress_part(served) -> None:
    _, _, client, backend = served
    await client.delete("mistral:7b")
    parts = [p async for p in backend.create("rh-x", from_="mistral:7b", parameters={"num_ctx": 4096})]
    assert all(isinstance(p, CreateProgress) for p in parts)
    layer = [p for p in parts if p.digest]
    assert layer and all(p.total for p in layer) and layer[-1].completed == layer[-1].total
    assert parts[-1] == CreateProgress("success")


# -- the simulator: /api/show, create's inheritance, delete ---------------------------------------------


async def test_show_writes_values_as_go_does_and_system_at_the_top(served) -> None:
    _, server, client, backend = served
    await client.create(model="q", from_="nous-hermes:7b", system="You are A.",
                        parameters={"stop": ["### Response:", " padded "], "num_ctx": 1000000, "temperature": 0.5})
    async with httpx.AsyncClient(base_url=server.url) as http:
        raw = (await http.post("/api/show", json={"model": "q"})).json()
        base = (await http.post("/api/show", json={"model": "nous-hermes:7b"})).json()
    lines = raw["modelfile"].splitlines()
    assert "SYSTEM You are A." in lines and "PARAMETER stop ### Response:" in lines
    assert 'PARAMETER stop " padded "' in lines and "PARAMETER num_ctx 1e+06" in lines
    assert "LICENSE LLAMA 2 COMMUNITY LICENSE AGREEMENT" in lines
    assert 'stop                           "### Response:"' in raw["parameters"].splitlines()
    assert raw["system"] == "You are A."
    assert "system" not in base, "omitted when empty (api.ShowResponse omitempty)"
    d = await backend.show("q")
    assert d.system == "You are A." and d.parameters == raw["parameters"]
    mf = parse_modelfile("FROM nous-hermes:7b\nSYSTEM You are A.\nPARAMETER stop ### Response:\n"
                         'PARAMETER stop " padded "\nPARAMETER num_ctx 1000000\nPARAMETER temperature 0.5\n')
    assert compare_with_show(mf, d.modelfile, d.parameters, d.template, system=d.system) == []


async def test_an_empty_system_or_template_keeps_the_bases_and_licenses_are_appended(served) -> None:
    world, _, client, _ = served
    await client.create(model="b1", from_="nous-hermes:7b", system="Base role.", license="MIT")
    await client.create(model="b2", from_="b1", system="", template="", license=["GPL"])
    b2 = world.model("b2")
    assert b2.system == "Base role." and b2.template == world.model("nous-hermes:7b").template
    assert b2.license == ["LLAMA 2 COMMUNITY LICENSE AGREEMENT", "MIT", "GPL"]
    shown = await client.show("b2")
    assert shown.license == "LLAMA 2 COMMUNITY LICENSE AGREEMENT\nMIT\nGPL"


async def test_blob_upload_and_a_model_from_a_gguf_file(served, tmp_path) -> None:
    world, server, client, backend = served
    data = b"GGUF" + bytes(range(256)) * 64
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    async with httpx.AsyncClient(base_url=server.url) as http:
        assert (await http.head(f"/api/blobs/{digest}")).status_code == 404
        r = await http.post(f"/api/blobs/{digest}", content=b"something else")
        assert r.status_code == 400 and r.json()["error"].startswith(f'digest mismatch, expected "{digest}"')
        r = await http.post("/api/blobs/sha256:nothex", content=data)
        assert (r.status_code, r.json()) == (400, {"error": "invalid digest format"})
    path = tmp_path / "tiny.gguf"
    path.write_bytes(data)
    assert await client.create_blob(path) == digest
    async with httpx.AsyncClient(base_url=server.url) as http:
        assert (await http.head(f"/api/blobs/{digest}")).status_code == 200
    statuses = [p.status async for p in await client.create(model="tiny", files={"tiny.gguf": digest}, system="Tiny.",
                                                              stream=True)]
    assert statuses[0] == "parsing GGUF" and f"using existing layer {digest}" in statuses and statuses[-1] == "success"
    shown = await client.show("tiny")
    assert f"FROM /usr/share/ollama/.ollama/models/blobs/{digest.replace(':', '-')}" in shown.modelfile
    assert next(m for m in (await client.list()).models if m.model == "tiny:latest").size == len(data)
    # the backend uploads a local path itself, and sends its digest
    parts = [p async for p in backend.create("tiny2", files={"tiny.gguf": path})]
    assert parts[0].status == "copying file tiny.gguf (16,388 bytes)"
    assert world.create_requests[-1]["files"] == {"tiny.gguf": digest} and "from" not in world.create_requests[-1]
    not_gguf = tmp_path / "notes.txt"
    not_gguf.write_bytes(b"just text")
    other = await client.create_blob(not_gguf)
    with pytest.raises(ollama.ResponseError, match="unknown type"):
        await client.create(model="bad", files={"notes.txt": other})
    with pytest.raises(ollama.ResponseError, match="invalid file magic"):
        await client.create(model="bad", files={"notes.gguf": other})
    with pytest.raises(ollama.ResponseError, match="file path must be relative"):
        await client.create(model="bad", files={"../tiny.gguf": digest})


async def test_delete_leaves_a_loaded_runner_loaded(served) -> None:
    world, _, client, _ = served
    await client.generate(model="rh-beta", prompt="", keep_alive="5m")
    await client.delete("rh-beta")
    assert world.find_model("rh-beta") is None and world.is_loaded("rh-beta")
    assert [m.model for m in (await client.ps()).models] == ["rh-beta:latest"]


# -- the `rhtui` command against the simulator ---------------------------------------------------------


def _fresh(sim) -> None:
    """An Ollama that has nothing pulled yet."""
    def clear() -> None:
        for m in list(sim.world.models()):
            sim.world.registry.delete(m.name)
    sim.call(clear)


def test_create_on_a_fresh_ollama_shows_the_pull_of_each_base(sim, rhtui):
    _fresh(sim)
    r = rhtui("--host", sim.url, "models", "create", "rh-alpha", "rh-beta")
    assert r.exit_code == 0, r.output
    base = sim.call(lambda: sim.world.find_model("nous-hermes:7b"))
    short = base.weights_digest[7:19]
    assert "rh-alpha: pulling manifest" in r.output
    assert f"rh-alpha: pulling {short} (3.7 GB)" in r.output and f"rh-alpha: pulling {short}: 3.7 GB done" in r.output
    assert "rh-alpha: created" in r.output and "rh-beta: created" in r.output
    assert rhtui("--host", sim.url, "models", "create", "rh-alpha").output.count("unchanged") == 1


def test_create_offline_shows_ollamas_message_and_the_pull_command(sim, rhtui):
    _fresh(sim)
    sim.call(lambda: setattr(sim.world.registry, "registry_offline", True))
    r = rhtui("--host", sim.url, "models", "create", "rh-alpha")
    assert r.exit_code == 1
    out = " ".join(r.output.split())
    assert "rh-alpha: failed" in out and OFFLINE in out and "fix: `ollama pull nous-hermes:7b`" in out


def test_create_from_a_gguf_file_uploads_it_and_verify_matches(sim, rhtui, tmp_path):
    folder = write_modelfiles(tmp_path / "mf", {
        "rh-tiny": "FROM ./weights/tiny.gguf\nSYSTEM You are Tiny.\nPARAMETER stop ### End\nPARAMETER num_ctx 2048\n",
    })
    (folder / "weights").mkdir()
    data = b"GGUF" + bytes(4096)
    (folder / "weights" / "tiny.gguf").write_bytes(data)
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    dry = rhtui("--host", sim.url, "--modelfiles", str(folder), "models", "create", "--dry-run")
    assert dry.exit_code == 0 and f"POST {sim.url}/api/blobs/{digest}" in dry.output and '"tiny.gguf"' in dry.output
    assert sim.requests() == []
    r = rhtui("--host", sim.url, "--modelfiles", str(folder), "models", "create")
    assert r.exit_code == 0, r.output
    sent = sim.requests()[-1]
    assert sent["files"] == {"tiny.gguf": digest} and "from" not in sent
    assert sim.call(lambda: sim.world.registry.has_blob(digest))
    v = rhtui("--host", sim.url, "--modelfiles", str(folder), "models", "verify")
    assert v.exit_code == 0, v.output


def test_a_from_path_that_names_no_file_is_refused_before_anything_is_sent(sim, rhtui, tmp_path):
    folder = write_modelfiles(tmp_path / "mf", {"rh-tiny": "FROM ./tiny.gguf\n"})
    r = rhtui("--host", sim.url, "--modelfiles", str(folder), "models", "create")
    assert r.exit_code == 1
    assert "rh-tiny.Modelfile:1: FROM ./tiny.gguf: there is no such file" in " ".join(r.output.split())
    assert sim.requests() == []


def test_verify_reads_what_ollama_writes_even_what_it_cannot_read_back(sim, rhtui, tmp_path):
    """`SYSTEM "Quoted" opening…` comes back bare from Ollama, an opening quote never closed: the
    shown Modelfile stops parsing there; the system prompt is read from /api/show's own field."""
    folder = write_modelfiles(tmp_path / "mf", {
        "rh-alpha": 'FROM nous-hermes:7b\nSYSTEM """"Quoted" opening, then the role."""\n'
                    "PARAMETER stop ### Response:\nPARAMETER temperature 0.5\n",
        "rh-beta": "FROM mistral:7b\nSYSTEM You are B.\nPARAMETER stop ### Response:\nLICENSE MIT\n",
    })
    r = rhtui("--host", sim.url, "--modelfiles", str(folder), "models", "create")
    assert r.exit_code == 0, r.output
    shown = sim.call(lambda: sim.world.model("rh-alpha"))
    from rhtui.sim.catalog import render_modelfile

    assert 'SYSTEM "Quoted" opening, then the role.' in render_modelfile(shown)
    v = rhtui("--host", sim.url, "--modelfiles", str(folder), "models", "verify")
    assert v.exit_code == 0, v.output
    assert "rh-alpha" in v.output and "missing" not in v.output


# -- Ollama's documented answers, replayed -------------------------------------------------------------


async def test_the_documented_show_answer_is_read(replay) -> None:
    r, backend = replay
    r.queued["/api/show"] = [fixture("show_response")]
    d = await backend.show("llava")
    assert r.requests == [("/api/show", {"model": "llava"})]
    assert d.system is None and d.family == "llama" and d.info["llama.context_length"] == 8192
    shown = read_show(d.modelfile)
    assert shown.template == "{{ .System }}\nUSER: {{ .Prompt }}\nASSISTANT: "
    assert shown.parameters == {"num_ctx": 4096, "stop": ["</s>", "USER:", "ASSISTANT:"]}
    mf = parse_modelfile("FROM llava\nPARAMETER num_keep 24\nPARAMETER stop <|start_header_id|>\n"
                         "PARAMETER stop <|end_header_id|>\nPARAMETER stop <|eot_id|>\n")
    assert compare_with_show(mf, d.modelfile, d.parameters, d.template, system=d.system) == []


async def test_the_documented_create_and_pull_streams_reach_the_display(replay) -> None:
    r, backend = replay
    r.queued["/api/create"] = [fixture("create_stream"), fixture("pull_stream")]
    parts = [p async for p in backend.create("mario", from_="llama3.2", system="You are Mario.")]
    assert [p.status for p in parts] == [line["status"] for line in fixture("create_stream")["lines"]]
    assert r.requests[-1] == ("/api/create", {"model": "mario", "stream": True, "from": "llama3.2",
                                              "system": "You are Mario."})
    parts = [p async for p in backend.create("llama3.2", from_="llama3.2")]
    assert parts[1] == CreateProgress("pulling digestname", "digestname", 241970, 2142590208)


async def test_a_composed_create_with_pull_shows_a_bar_per_layer(replay) -> None:
    r, backend = replay
    r.queued["/api/create"] = [fixture("create_pull_stream")]
    now = [0.0]
    console = Console(file=io.StringIO(), force_terminal=True, width=160, color_system=None)
    display = CreateDisplay(console, get_time=lambda: now[0])
    display.status("rh-beta", "checking")
    async for part in backend.create("rh-beta", from_="mistral:7b"):
        now[0] += 2.0
        display.part("rh-beta", part)
        if part.completed == 2147483648:  # the third part of that layer, two seconds after the second
            snapshot = Console(file=io.StringIO(), width=160, color_system=None)
            snapshot.print(display.progress.make_tasks_table(display.progress.tasks))
            text = snapshot.file.getvalue()
            assert "pulling ff82381e2bea" in text and "52%" in text and "2.1/4.1 GB" in text
            assert "536.9 MB/s" in text and "0:00:04" in text  # rate and time left
    tasks = display.progress.tasks
    layers = [t for t in tasks if t.fields.get("layer")]
    assert [(t.description.strip(), t.completed, t.total) for t in layers] == [
        ("pulling ff82381e2bea", 4113301824, 4113301824), ("pulling 43070e2d4e53", 11356, 11356)]
    assert tasks[0].fields["status"] == "success"


async def test_a_composed_offline_create_says_what_ollama_says(replay) -> None:
    r, backend = replay
    r.queued["/api/create"] = [fixture("create_pull_offline")]
    with pytest.raises(ModelMissing) as info:
        async for _ in backend.create("rh-beta", from_="mistral:7b"):
            pass
    text = str(info.value)
    assert fixture("create_pull_offline")["lines"][1]["error"] in text and "fix: `ollama pull mistral:7b`" in text
