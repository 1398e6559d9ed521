"""The simulated model registry: ``ollama list``, create, copy, pull, delete (no GPU state here).

At start the registry holds the scenario's base models (as pulled) and its students (already
created FROM their base, with the base's template, stop parameters and license, and no
SYSTEM prompt). `create` follows POST /api/create (server/create.go): the new model inherits
everything from the model named in ``from``; a non-empty system or template replaces the
parent's (an empty one keeps it), parameters merge into the parent's, licenses are appended,
messages replace the parent's when given. A model can also be created from uploaded blobs
(``files``: one GGUF; ``adapters``; ``draft_files``), which `put_blob` keeps (size and first
bytes, not the content). `pull_plan` and `pull_done` are a pull in two steps (the server paces
the progress between them); with `registry_offline` set, a pull fails as Ollama's does without
network.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from .catalog import (
    BASES,
    DEFAULT_NUM_CTX,
    MIB,
    SimModel,
    base_info,
    full_name,
    kv_cache_mb,
    normalize_license,
    normalize_messages,
    normalize_parameters,
    sha256_hex,
)
from .errors import SimError
from .scenario import Scenario, ScenarioStudent

__all__ = ["Blob", "ModelRegistry", "PullLayer", "REGISTRY_MB_PER_S"]

REGISTRY_MB_PER_S = 50.0
"""How fast the simulated registry serves a pull, in MiB per simulated second."""

_DIGEST = re.compile(r"^sha256[:-][0-9a-fA-F]{64}$")  # manifest.BlobsPath


@dataclass(frozen=True, slots=True)
class Blob:
    """An uploaded blob: its size and first bytes (enough to tell a GGUF file)."""

    size: int
    head: bytes


@dataclass(frozen=True, slots=True)
class PullLayer:
    digest: str
    size: int


class ModelRegistry:
    def __init__(self, scenario: Scenario, now: Callable[[], float]) -> None:
        self.scenario = scenario
        self._now = now
        self._models: dict[str, SimModel] = {}
        self.blobs: dict[str, Blob] = {}
        self.registry_offline = False
        """Pulls fail as Ollama's do when it cannot reach its registry (no network)."""
        t = now()
        bases = {s.base: s for s in scenario.students}
        for i, (base_name, st) in enumerate(bases.items()):
            self._add_base(full_name(base_name), st.weights_mb, st.prompt_tokens, t - 86400 * 30 - 3600 * i)
        for i, st in enumerate(scenario.students):
            base = self._models[full_name(st.base)]
            self._models[full_name(st.name)] = SimModel(
                name=full_name(st.name), weights_mb=st.weights_mb, resident_mb=st.resident_mb,
                tokens_mean=st.tokens_mean, tokens_sd=st.tokens_sd, prompt_tokens=st.prompt_tokens,
                base=base.name, from_=base.name, template=base.template, parameters=dict(base.parameters),
                license=list(base.license), modified_at=t - 86400 * 2 - 60 * i, student=True,
            )

    def _add_base(self, name: str, weights_mb: float, prompt_tokens: int, modified_at: float) -> SimModel:
        m = self._make_base(name, weights_mb, prompt_tokens, modified_at)
        self._models[name] = m
        return m

    @staticmethod
    def _make_base(name: str, weights_mb: float, prompt_tokens: int, modified_at: float) -> SimModel:
        info = base_info(name)
        return SimModel(
            name=name, weights_mb=weights_mb, resident_mb=weights_mb + kv_cache_mb(DEFAULT_NUM_CTX),
            tokens_mean=info.tokens_mean, tokens_sd=info.tokens_sd, prompt_tokens=prompt_tokens, base=name,
            template=info.template, parameters=dict(info.parameters),
            license=[info.license] if info.license else [], modified_at=modified_at,
        )

    def _student(self, name: str) -> ScenarioStudent | None:
        return next((s for s in self.scenario.students if full_name(s.name) == full_name(name)), None)

    # -- lookups ------------------------------------------------------------------------------

    def find(self, name: str) -> SimModel | None:
        """The model called `name` (``rh-alpha`` and ``rh-alpha:latest`` are the same), or None."""
        if not name:
            return None
        key = full_name(name).lower()
        return next((m for k, m in self._models.items() if k.lower() == key), None)

    def get(self, name: str) -> SimModel:
        m = self.find(name)
        if m is None:
            raise SimError(404, f"model '{name}' not found")
        return m

    def all(self) -> list[SimModel]:
        """What ``ollama list`` shows, newest first."""
        return sorted(self._models.values(), key=lambda m: m.modified_at, reverse=True)

    # -- changes ------------------------------------------------------------------------------

    def create(self, body: dict[str, Any]) -> list[str]:
        """Apply a POST /api/create body; returns the status lines. SimError like Ollama's.
        A ``from`` model that is not here is a 404: the server pulls it first, as Ollama does."""
        name = str(body.get("model") or body.get("name") or "").strip()
        if not name:
            raise SimError(400, "invalid model name")
        if body.get("quantize") or body.get("quantization"):
            raise SimError(400, "quantization is only supported for F16, BF16 and F32 models")
        files = self._blob_map(body.get("files"))
        adapters = self._blob_map(body.get("adapters"))
        drafts = self._blob_map(body.get("draft_files"))
        from_ = str(body.get("from") or "").strip()
        status: list[str] = []
        known_layers = {d for m in self._models.values() for _, d in m.layers()} | set(self.blobs)
        fname = full_name(name)
        if from_:
            parent = self.get(from_)
        elif files:
            parent = self._from_files(fname, files)
            status.append("parsing GGUF")
        else:
            raise SimError(400, "neither 'from' or 'files' was specified")
        if len(adapters) > 1:
            raise SimError(400, "only one adapter is currently supported")
        for digest in [*adapters.values(), *drafts.values()]:
            self._gguf(digest)
        try:
            params = normalize_parameters(body.get("parameters"))
            messages = normalize_messages(body.get("messages"))
            lic = normalize_license(body.get("license"))
        except ValueError as exc:
            raise SimError(400, str(exc)) from None
        student = self._student(fname)

        def text(key: str, inherited: str) -> str:
            value = body.get(key)
            return value if isinstance(value, str) and value else inherited  # Ollama: `if r.System != ""`

        new = SimModel(
            name=fname, weights_mb=parent.weights_mb, resident_mb=0.0,
            tokens_mean=student.tokens_mean if student else parent.tokens_mean,
            tokens_sd=student.tokens_sd if student else parent.tokens_sd,
            prompt_tokens=student.prompt_tokens if student else parent.prompt_tokens,
            base=parent.base, from_=parent.name if from_ else None,
            system=text("system", parent.system), template=text("template", parent.template),
            license=list(parent.license) + lic, parameters={**parent.parameters, **params},
            messages=messages or list(parent.messages), modified_at=self._now(), student=student is not None,
            weights=parent.weights, adapters=list(adapters.values()) or list(parent.adapters),
            draft=next(iter(drafts.values()), parent.draft), renderer=text("renderer", parent.renderer),
            parser=text("parser", parent.parser), requires=text("requires", parent.requires),
        )
        if student is not None and from_:  # the measured figure, adjusted for a different context length
            resident = student.resident_mb + kv_cache_mb(new.num_ctx) - kv_cache_mb(DEFAULT_NUM_CTX)
        else:
            resident = new.weights_mb + kv_cache_mb(new.num_ctx)
        new.resident_mb = max(resident, new.weights_mb)
        status += [f"{'using existing' if d in known_layers else 'creating new'} layer {d}" for _, d in new.layers()]
        self._models[fname] = new
        return [*status, "writing manifest", "success"]

    # -- blobs (POST /api/blobs/:digest) ----------------------------------------------------------

    @staticmethod
    def valid_digest(digest: str) -> bool:
        return bool(_DIGEST.match(digest))

    def put_blob(self, digest: str, size: int, head: bytes) -> None:
        self.blobs[digest.replace("-", ":", 1)] = Blob(size, head[:16])

    def has_blob(self, digest: str) -> bool:
        return digest.replace("-", ":", 1) in self.blobs

    def _blob_map(self, value: Any) -> dict[str, str]:
        """A files/adapters/draft_files map, checked as CreateHandler checks it."""
        if not value:
            return {}
        if not isinstance(value, dict):
            raise SimError(400, "files must be an object of file names to digests")
        out: dict[str, str] = {}
        for fname, digest in value.items():
            path = str(fname)
            if not path or path.startswith("/") or ".." in path.split("/") or posixpath.normpath(path) != path:
                raise SimError(400, "file path must be relative")  # Go's fs.ValidPath
            if not digest:
                raise SimError(400, "invalid digest format")
            out[path] = str(digest)
        return out

    def _gguf(self, digest: str) -> Blob:
        if not self.valid_digest(digest):
            raise SimError(500, "invalid digest format")
        blob = self.blobs.get(digest.replace("-", ":", 1))
        if blob is None:
            raise SimError(500, f"open /usr/share/ollama/.ollama/models/blobs/{digest.replace(':', '-')}: "
                                "no such file or directory")
        if blob.head[:4] != b"GGUF":
            raise SimError(500, "invalid file magic")
        return blob

    def _from_files(self, fname: str, files: dict[str, str]) -> SimModel:
        names = list(files)
        if any(n.endswith(".safetensors") for n in names):
            raise SimError(400, "the simulator cannot convert safetensors; upload a GGUF file")
        ggufs = [n for n in names if n.endswith(".gguf") or self.blobs.get(files[n], Blob(0, b"")).head[:4] == b"GGUF"]
        if not ggufs:
            raise SimError(400, "unknown type")
        digest = files[sorted(ggufs)[0]]
        blob = self._gguf(digest)
        weights_mb = blob.size / MIB
        info = base_info(fname)
        return SimModel(
            name=fname, weights_mb=weights_mb, resident_mb=weights_mb + kv_cache_mb(DEFAULT_NUM_CTX),
            tokens_mean=info.tokens_mean, tokens_sd=info.tokens_sd, prompt_tokens=400, base=fname,
            weights=digest.replace("-", ":", 1),
        )

    def delete(self, name: str) -> SimModel:
        m = self.get(name)
        del self._models[m.name]
        return m

    def copy(self, source: str, destination: str) -> None:
        src = self.get(source)
        dst = full_name(destination)
        self._models[dst] = replace(src, name=dst, modified_at=self._now(), student=False)

    def pull(self, name: str) -> list[dict[str, Any]]:
        """Progress lines of POST /api/pull for a known base, all at once; SimError for anything
        else. (The server paces a pull with `pull_plan` and `pull_done` instead.)"""
        layers = self.pull_plan(name)
        self.pull_done(name)
        return [
            {"status": "pulling manifest"},
            *({"status": f"pulling {layer.digest[7:19]}", "digest": layer.digest, "total": layer.size,
               "completed": layer.size} for layer in layers),
            {"status": "verifying sha256 digest"},
            {"status": "writing manifest"},
            {"status": "success"},
        ]

    def pull_plan(self, name: str) -> list[PullLayer]:
        """The layers a pull of `name` downloads (images.go PullModel: each layer, then the config);
        SimError(500) with Ollama's text when the registry cannot be reached or has no such model."""
        fname = full_name(name)
        if self.registry_offline:
            model, _, tag = fname.rpartition(":")
            path = model if "/" in model else f"library/{model}"
            raise SimError(500, f'pull model manifest: Get "https://registry.ollama.ai/v2/{path}/manifests/{tag}": '
                                "dial tcp: lookup registry.ollama.ai: no such host")
        if fname not in BASES:  # the registry has the catalog's bases only (not models made here)
            raise SimError(500, "pull model manifest: file does not exist")
        existing = self.find(fname) or self._make_base(fname, self._base_weights(fname), 400, self._now())
        out = []
        for media, digest in existing.layers():
            if media == "application/vnd.ollama.image.model":
                size = int(existing.weights_mb * MIB)
            else:
                size = 256 + len(digest) * 8  # small JSON/text layers
            out.append(PullLayer(digest, size))
        out.append(PullLayer("sha256:" + sha256_hex(f"config:{existing.name}"), 487))
        return out

    def pull_done(self, name: str) -> SimModel:
        """The pulled model is here now (a base known to the catalog)."""
        fname = full_name(name)
        existing = self.find(fname)
        if existing is not None:
            return existing
        st = next((s for s in self.scenario.students if full_name(s.base) == fname), None)
        return self._add_base(fname, self._base_weights(fname), st.prompt_tokens if st else 400, self._now())

    def _base_weights(self, fname: str) -> float:
        st = next((s for s in self.scenario.students if full_name(s.base) == fname), None)
        return st.weights_mb if st else 4000.0
