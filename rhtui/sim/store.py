"""The simulated model store: ``ollama list``, create, copy, pull, delete (no GPU state here).

At start the store holds the scenario's base models (as pulled) and its students (already
created FROM their base, with the base's template, stop parameters and license, and no
SYSTEM prompt). `create` follows POST /api/create: the new model inherits everything from
the model named in ``from`` and the request's fields replace (parameters: merge into) it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
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
)
from .errors import SimError
from .scenario import Scenario, ScenarioStudent

__all__ = ["ModelStore"]


class ModelStore:
    def __init__(self, scenario: Scenario, now: Callable[[], float]) -> None:
        self.scenario = scenario
        self._now = now
        self._models: dict[str, SimModel] = {}
        t = now()
        bases = {s.base: s for s in scenario.students}
        for i, (base, st) in enumerate(bases.items()):
            self._add_base(full_name(base), st.weights_mb, st.prompt_tokens, t - 86400 * 30 - 3600 * i)
        for i, st in enumerate(scenario.students):
            base = self._models[full_name(st.base)]
            self._models[full_name(st.name)] = SimModel(
                name=full_name(st.name), weights_mb=st.weights_mb, resident_mb=st.resident_mb,
                tokens_mean=st.tokens_mean, tokens_sd=st.tokens_sd, prompt_tokens=st.prompt_tokens,
                base=base.name, from_=base.name, template=base.template, parameters=dict(base.parameters),
                license=list(base.license), modified_at=t - 86400 * 2 - 60 * i, student=True,
            )

    def _add_base(self, name: str, weights_mb: float, prompt_tokens: int, modified_at: float) -> SimModel:
        info = base_info(name)
        m = SimModel(
            name=name, weights_mb=weights_mb, resident_mb=weights_mb + kv_cache_mb(DEFAULT_NUM_CTX),
            tokens_mean=info.tokens_mean, tokens_sd=info.tokens_sd, prompt_tokens=prompt_tokens, base=name,
            template=info.template, parameters=dict(info.parameters),
            license=[info.license] if info.license else [], modified_at=modified_at,
        )
        self._models[name] = m
        return m

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
        """Apply a POST /api/create body; returns the status lines. SimError like Ollama's."""
        name = str(body.get("model") or body.get("name") or "").strip()
        if not name:
            raise SimError(400, "invalid model name")
        if body.get("files") or body.get("adapters"):
            raise SimError(400, "the simulator cannot import model files; use 'from'")
        if body.get("quantize"):
            raise SimError(400, "quantization is only supported for F16 and F32 models")
        from_ = str(body.get("from") or "").strip()
        if not from_:
            raise SimError(400, "neither 'from' or 'files' was specified")
        parent = self.get(from_)
        try:
            params = normalize_parameters(body.get("parameters"))
            messages = normalize_messages(body.get("messages"))
            lic = normalize_license(body.get("license"))
        except ValueError as exc:
            raise SimError(400, str(exc)) from None
        known_layers = {d for m in self._models.values() for _, d in m.layers()}
        fname = full_name(name)
        student = self._student(fname)
        new = SimModel(
            name=fname, weights_mb=parent.weights_mb, resident_mb=0.0,
            tokens_mean=student.tokens_mean if student else parent.tokens_mean,
            tokens_sd=student.tokens_sd if student else parent.tokens_sd,
            prompt_tokens=student.prompt_tokens if student else parent.prompt_tokens,
            base=parent.base, from_=parent.name,
            system=body["system"] if body.get("system") is not None else parent.system,
            template=body["template"] if body.get("template") is not None else parent.template,
            license=lic or list(parent.license), parameters={**parent.parameters, **params},
            messages=messages or list(parent.messages), modified_at=self._now(), student=student is not None,
        )
        if student is not None:  # the measured figure, adjusted for a different context length
            resident = student.resident_mb + kv_cache_mb(new.num_ctx) - kv_cache_mb(DEFAULT_NUM_CTX)
        else:
            resident = new.weights_mb + kv_cache_mb(new.num_ctx)
        new.resident_mb = max(resident, new.weights_mb)
        status = [f"{'using existing' if d in known_layers else 'creating new'} layer {d}" for _, d in new.layers()]
        self._models[fname] = new
        return [*status, "writing manifest", "success"]

    def delete(self, name: str) -> SimModel:
        m = self.get(name)
        del self._models[m.name]
        return m

    def copy(self, source: str, destination: str) -> None:
        src = self.get(source)
        dst = full_name(destination)
        self._models[dst] = replace(src, name=dst, modified_at=self._now(), student=False)

    def pull(self, name: str) -> list[dict[str, Any]]:
        """Progress lines of POST /api/pull for a known base; SimError for anything else."""
        fname = full_name(name)
        existing = self.find(fname)
        if existing is None:
            if fname not in BASES:
                raise SimError(500, "pull model manifest: file does not exist")
            st = next((s for s in self.scenario.students if full_name(s.base) == fname), None)
            existing = self._add_base(fname, st.weights_mb if st else 4000.0, 400, self._now())
        total = int(existing.weights_mb * MIB)
        digest = existing.weights_digest
        return [
            {"status": "pulling manifest"},
            {"status": f"pulling {digest[7:19]}", "digest": digest, "total": total, "completed": total},
            {"status": "verifying sha256 digest"},
            {"status": "writing manifest"},
            {"status": "success"},
        ]
