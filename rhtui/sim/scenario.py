"""Simulator scenarios: the card, the host, Ollama's settings, the students and what goes wrong.

A scenario is a TOML file. Bundled ones live in ``rhtui/data/scenarios/`` and are loaded by
bare name (``load_scenario("rtx4070s")``); any other file is loaded by path. A file may say
``extends = "other.toml"`` (relative to itself): tables deep-merge, the child's arrays replace
the parent's, and ``[[students]]`` are inherited when the child has none.

Every problem is a `ScenarioError` that names the file and what is wrong with it.
"""

from __future__ import annotations

import tomllib
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from rhtui.engine.config import BudgetPolicy

__all__ = [
    "CpuSpec",
    "DiskSpec",
    "DownWindow",
    "ExternalLoad",
    "FaultSpec",
    "GpuSpec",
    "HostSpec",
    "OllamaSpec",
    "PcieSpec",
    "Scenario",
    "ScenarioError",
    "ScenarioStudent",
    "list_scenarios",
    "load_scenario",
]

_MAX_EXTENDS_DEPTH = 8


class ScenarioError(ValueError):
    """A scenario could not be loaded; ``str()`` names the file and the problem."""

    def __init__(self, source: str, problem: str) -> None:
        self.source = source
        self.problem = problem
        super().__init__(f"scenario {source}: {problem}")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class GpuSpec(_Strict):
    name: str = Field(min_length=1)
    total_mb: float = Field(gt=0)
    bandwidth_gbps: float = Field(gt=0, description="memory bandwidth, GB/s")
    decode_efficiency: float = Field(0.75, gt=0, le=1)
    concurrent_gain: float = Field(1.10, ge=1)
    baseline_used_mb: float = Field(0.0, ge=0)
    idle_power_w: float = Field(15.0, ge=0)
    max_power_w: float = Field(220.0, gt=0)

    @model_validator(mode="after")
    def _check(self) -> GpuSpec:
        if self.baseline_used_mb >= self.total_mb:
            raise ValueError("gpu.baseline_used_mb must be less than gpu.total_mb")
        if self.idle_power_w > self.max_power_w:
            raise ValueError("gpu.idle_power_w must not exceed gpu.max_power_w")
        return self


class CpuSpec(_Strict):
    offload_bandwidth_gbps: float = Field(60.0, gt=0)
    offload_efficiency: float = Field(0.6, gt=0, le=1)


class PcieSpec(_Strict):
    """The host-to-card link. A load copies its weights over it while they are read from disk,
    so the copy runs at the slower of the two (see `DiskSpec`)."""

    gbps: float = Field(25.0, gt=0, description="host-to-GPU copy rate, GB/s")


class DiskSpec(_Strict):
    """Loading a model: the runner starts (`load_init_s`: process, GPU context, memory reserved),
    then its weights are read at `read_gbps` and the part that goes on the GPU is copied over
    PCIe at ``pcie.gbps``, both at once: the copy takes
    ``max(weights / read_gbps, weights_on_gpu / pcie.gbps)`` seconds, i.e.
    ``weights / min(read_gbps, pcie.gbps)`` for a model fully on the GPU. Meanwhile the copy writes
    ``weights_on_gpu / copy seconds`` GB/s into VRAM, and that much memory bandwidth is taken
    from any decode running on the card."""

    read_gbps: float = Field(3.0, gt=0, description="model file read rate, GB/s")
    load_init_s: float = Field(0.8, ge=0, description="runner start before the weights are copied, s")
    unload_s: float = Field(0.3, ge=0, description="runner shutdown; its memory is held until it ends, s")


class OllamaSpec(_Strict):
    keep_alive_s: float = Field(300.0, description="default keep_alive; negative = forever")
    max_loaded_models: int = Field(3, ge=1)
    num_parallel: int = Field(
        1, ge=1,
        description="requests a runner serves at once (OLLAMA_NUM_PARALLEL, 1 by default in current Ollama); "
        "each slot gets a full num_ctx of KV cache; OLLAMA_NUM_PARALLEL in the simulator's environment overrides it",
    )
    version: str = "0.12.6"
    """What GET /api/version reports."""


class HostSpec(_Strict):
    """The machine around the card (not in the bundled files; defaults: a 32 GB desktop)."""

    ram_total_mb: float = Field(32768.0, gt=0)
    os_used_mb: float = Field(6144.0, ge=0)
    cpu_cores: int = Field(16, ge=1)


class ScenarioStudent(_Strict):
    name: str = Field(min_length=1)
    base: str = Field(min_length=1)
    weights_mb: float = Field(gt=0, description="model file size")
    resident_mb: float = Field(gt=0, description="VRAM while loaded, as measured (one parallel slot)")
    tokens_mean: float = Field(gt=0)
    tokens_sd: float = Field(0.0, ge=0)
    prompt_tokens: int = Field(400, ge=0)

    @model_validator(mode="after")
    def _check(self) -> ScenarioStudent:
        if self.resident_mb < self.weights_mb:
            raise ValueError(f"student {self.name}: resident_mb must be >= weights_mb")
        return self


class ExternalLoad(_Strict):
    """Another process holds `mb` of VRAM from `at_s` for `for_s` simulated seconds."""

    at_s: float = Field(ge=0)
    mb: float = Field(gt=0)
    for_s: float = Field(gt=0)


class DownWindow(_Strict):
    at_s: float = Field(ge=0)
    for_s: float = Field(gt=0)


class FaultSpec(_Strict):
    http_500_rate: float = Field(0.0, ge=0, le=1)
    stall_rate: float = Field(0.0, ge=0, le=1)
    disconnect_rate: float = Field(0.0, ge=0, le=1)
    malformed_chunk_rate: float = Field(0.0, ge=0, le=1)
    oom_error_rate: float = Field(0.0, ge=0, le=1)
    server_down: tuple[DownWindow, ...] = ()


class Scenario(_Strict):
    name: str
    source: str = ""
    """Where it was loaded from (a path or ``package:rhtui/data/scenarios/NAME.toml``)."""
    gpu: GpuSpec
    cpu: CpuSpec = CpuSpec()
    pcie: PcieSpec = PcieSpec()
    disk: DiskSpec = DiskSpec()
    ollama: OllamaSpec = OllamaSpec()
    budget: BudgetPolicy = Field(default_factory=BudgetPolicy)
    """The safety rules the scenario was measured under (the engine's own type, validated alike)."""
    host: HostSpec = HostSpec()
    students: tuple[ScenarioStudent, ...] = Field(min_length=1)
    external: tuple[ExternalLoad, ...] = ()
    faults: FaultSpec = FaultSpec()

    @model_validator(mode="after")
    def _unique(self) -> Scenario:
        names = [s.name for s in self.students]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise ValueError(f"student names must be unique; repeated: {', '.join(dup)}")
        return self

    def student(self, name: str) -> ScenarioStudent:
        bare = name.split(":", 1)[0] if name.endswith(":latest") else name
        for s in self.students:
            if s.name == bare:
                return s
        raise KeyError(name)


# -- loading ---------------------------------------------------------------------------------


def _bundled_dir() -> Traversable:
    return resources.files("rhtui").joinpath("data").joinpath("scenarios")


def list_scenarios() -> list[str]:
    """Names of the bundled scenarios (loadable by bare name)."""
    d = _bundled_dir()
    try:
        entries = list(d.iterdir())
    except (FileNotFoundError, NotADirectoryError):
        return []
    return sorted(e.name[: -len(".toml")] for e in entries if e.name.endswith(".toml") and e.is_file())


def _deep_merge(parent: dict[str, Any], child: dict[str, Any]) -> dict[str, Any]:
    out = dict(parent)
    for key, value in child.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _deep_merge(out[key], value)
        elif key == "students" and value == [] and "students" in parent:
            continue  # a child with no students inherits the parent's
        else:
            out[key] = value
    return out


def _read(node: Traversable | Path, label: str) -> dict[str, Any]:
    try:
        text = node.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ScenarioError(label, "file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ScenarioError(label, f"cannot be read ({exc})") from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ScenarioError(label, f"invalid TOML: {exc}") from None


def _load_tree(
    node: Traversable | Path, parent_dir: Traversable | Path, label: str, chain: tuple[str, ...]
) -> dict[str, Any]:
    if label in chain:
        raise ScenarioError(label, "extends itself (" + " -> ".join((*chain, label)) + ")")
    if len(chain) >= _MAX_EXTENDS_DEPTH:
        raise ScenarioError(label, f"extends chain deeper than {_MAX_EXTENDS_DEPTH}")
    data = _read(node, label)
    ext = data.pop("extends", None)
    if ext is None:
        return data
    if not isinstance(ext, str) or not ext.strip():
        raise ScenarioError(label, "'extends' must be a file name such as \"rtx4070s.toml\"")
    base_node = parent_dir.joinpath(ext)
    base_dir = base_node.parent if isinstance(base_node, Path) else parent_dir
    base_label = str(base_node) if isinstance(base_node, Path) else f"{label.rsplit('/', 1)[0]}/{ext}"
    parent = _load_tree(base_node, base_dir, base_label, (*chain, label))
    return _deep_merge(parent, data)


def _describe(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err["loc"]) or "(top level)"
        msg = err["msg"]
        if err["type"] == "extra_forbidden":
            msg = "unknown key (a typo?)"
        parts.append(f"{loc}: {msg}")
    return "; ".join(parts)


def load_scenario(name_or_path: str | Path) -> Scenario:
    """A bundled scenario by bare name (``"rtx4070s"``) or any scenario file by path."""
    text = str(name_or_path)
    is_path = isinstance(name_or_path, Path) or "/" in text or "\\" in text or text.endswith(".toml")
    if is_path:
        path = Path(text).expanduser()
        label = str(path)
        if not path.is_file():
            raise ScenarioError(label, "file not found")
        data = _load_tree(path, path.parent, label, ())
        name = path.stem
    else:
        d = _bundled_dir()
        node = d.joinpath(f"{text}.toml")
        label = f"package:rhtui/data/scenarios/{text}.toml"
        if not node.is_file():
            known = ", ".join(list_scenarios()) or "none"
            raise ScenarioError(label, f"no bundled scenario named {text!r} (bundled: {known})")
        data = _load_tree(node, d, label, ())
        name = text
    data.setdefault("name", name)
    data["source"] = label
    try:
        return Scenario.model_validate(data)
    except ValidationError as exc:
        raise ScenarioError(label, _describe(exc)) from None
