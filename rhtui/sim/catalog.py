"""The simulated model store: what Ollama knows about each model on disk.

A `SimModel` is one entry of ``ollama list``: its file size, the VRAM it takes once loaded,
how long its proposals are, and its Modelfile definition (FROM, SYSTEM, PARAMETER, TEMPLATE,
LICENSE, MESSAGE). This module also renders that definition the way ``ollama show
--modelfile`` and ``/api/show`` do, and validates create requests' parameters the way Ollama
does. It holds no time and no GPU state; `rhtui.sim.world` does.
"""

from __future__ import annotations

import hashlib
import json
import math
import unicodedata
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

MIB = 1024 * 1024
DEFAULT_NUM_CTX = 4096
"""Ollama's default context length."""
DEFAULT_TEMPLATE = "{{ .Prompt }}"
"""template.DefaultTemplate: what a model without a template layer shows."""

# -- base models the simulator ships as "pulled" ---------------------------------------------

_LLAMA2_TEMPLATE = "[INST] <<SYS>>{{ .System }}<</SYS>>\n\n{{ .Prompt }} [/INST]\n"
_MISTRAL_TEMPLATE = "[INST] {{ if .System }}{{ .System }}\n\n{{ end }}{{ .Prompt }}[/INST]"
_CHATML_TEMPLATE = (
    "{{ if .System }}<|im_start|>system\n{{ .System }}<|im_end|>\n{{ end }}"
    "{{ if .Prompt }}<|im_start|>user\n{{ .Prompt }}<|im_end|>\n{{ end }}<|im_start|>assistant\n"
)
_ALPACA_TEMPLATE = "{{ if .System }}{{ .System }}\n\n{{ end }}### Instruction:\n{{ .Prompt }}\n\n### Response:\n"
_LLAMA3_TEMPLATE = (
    "{{ if .System }}<|start_header_id|>system<|end_header_id|>\n\n{{ .System }}<|eot_id|>{{ end }}"
    "{{ if .Prompt }}<|start_header_id|>user<|end_header_id|>\n\n{{ .Prompt }}<|eot_id|>{{ end }}"
    "<|start_header_id|>assistant<|end_header_id|>\n\n{{ .Response }}<|eot_id|>"
)


@dataclass(frozen=True, slots=True)
class BaseInfo:
    family: str
    parameter_size: str
    parameter_count: int
    quantization: str
    template: str
    parameters: dict[str, Any]
    license: str
    context_length: int
    tokens_mean: float = 700.0
    tokens_sd: float = 200.0
    capabilities: tuple[str, ...] = ("completion",)


BASES: dict[str, BaseInfo] = {
    "nous-hermes:7b": BaseInfo(
        "llama", "7B", 6_738_415_616, "Q4_0", _ALPACA_TEMPLATE,
        {"stop": ["### Instruction:", "### Response:"]}, "LLAMA 2 COMMUNITY LICENSE AGREEMENT", 4096,
    ),
    "mistral:7b": BaseInfo(
        "llama", "7.2B", 7_248_023_552, "Q4_0", _MISTRAL_TEMPLATE,
        {"stop": ["[INST]", "[/INST]"]}, "Apache License Version 2.0, January 2004", 32768,
    ),
    "qwen2.5:7b": BaseInfo(
        "qwen2", "7.6B", 7_615_616_512, "Q4_K_M", _CHATML_TEMPLATE,
        {"stop": ["<|im_start|>", "<|im_end|>"]}, "Apache License Version 2.0, January 2004", 32768,
        capabilities=("completion", "tools"),
    ),
    "llama2:7b": BaseInfo(
        "llama", "7B", 6_738_415_616, "Q4_0", _LLAMA2_TEMPLATE,
        {"stop": ["[INST]", "[/INST]", "<<SYS>>", "<</SYS>>"]}, "LLAMA 2 COMMUNITY LICENSE AGREEMENT", 4096,
    ),
    "openhermes:7b": BaseInfo(
        "llama", "7B", 7_241_732_096, "Q4_0", _CHATML_TEMPLATE,
        {"stop": ["<|im_start|>", "<|im_end|>"]}, "Apache License Version 2.0, January 2004", 32768,
    ),
    "llama3.1:8b": BaseInfo(
        "llama", "8.0B", 8_030_261_248, "Q4_K_M", _LLAMA3_TEMPLATE,
        {"stop": ["<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>"]},
        "LLAMA 3.1 COMMUNITY LICENSE AGREEMENT", 131072, capabilities=("completion", "tools"),
    ),
}
_GENERIC_BASE = BaseInfo("llama", "7B", 7_000_000_000, "Q4_0", "{{ .Prompt }}", {}, "", 4096)


def base_info(name: str) -> BaseInfo:
    return BASES.get(full_name(name), BASES.get(name, _GENERIC_BASE))


# -- names -----------------------------------------------------------------------------------


def full_name(name: str) -> str:
    """``rh-alpha`` -> ``rh-alpha:latest``; names with a tag are kept (Ollama's rule)."""
    name = name.strip()
    last = name.rsplit("/", 1)[-1]
    return name if ":" in last else f"{name}:latest"


def display_name(name: str) -> str:
    """The short form Ollama shows in comments: ``rh-alpha:latest`` stays as is."""
    return full_name(name)


# -- options (PARAMETER names) -----------------------------------------------------------------

# Ollama's options today (api/types.go Options and Runner, by JSON name and Go type).
_INT_OPTS = {
    "num_keep", "seed", "num_predict", "top_k", "repeat_last_n", "num_ctx", "num_batch", "num_gpu", "main_gpu",
    "num_thread", "draft_num_predict",
}
_FLOAT_OPTS = {
    "top_p", "min_p", "typical_p", "temperature", "repeat_penalty", "presence_penalty", "frequency_penalty",
}
_BOOL_OPTS = {"use_mmap"}
_LIST_OPTS = {"stop"}
KNOWN_OPTIONS = frozenset(_INT_OPTS | _FLOAT_OPTS | _BOOL_OPTS | _LIST_OPTS)
RETIRED_OPTIONS = frozenset({
    "penalize_newline", "low_vram", "f16_kv", "logits_all", "vocab_only", "use_mlock", "mirostat", "mirostat_tau",
    "mirostat_eta", "numa", "tfs_z", "embedding_only",
})
"""Options older Ollama versions had: today's ignores them (Options.FromMap logs "invalid option
provided" and goes on), and so does the simulator."""


class OptionError(ValueError):
    pass


def normalize_parameters(params: dict[str, Any] | None) -> dict[str, Any]:
    """Check and coerce create/generate options like Ollama: unknown names and wrong types fail."""
    out: dict[str, Any] = {}
    for key, value in (params or {}).items():
        if value is None:
            continue
        if key in RETIRED_OPTIONS:
            continue
        if key not in KNOWN_OPTIONS:
            raise OptionError(f"unknown parameter '{key}'")
        try:
            if key in _LIST_OPTS:
                vals = value if isinstance(value, list | tuple) else [value]
                out[key] = [str(v) for v in vals]
            elif key in _BOOL_OPTS:
                if isinstance(value, str):
                    if value.lower() not in ("true", "false"):
                        raise ValueError(value)
                    value = value.lower() == "true"
                out[key] = bool(value)
            elif key in _INT_OPTS:
                if isinstance(value, bool):
                    raise ValueError(value)
                f = float(value)
                if f != int(f):
                    raise ValueError(value)
                out[key] = int(f)
            else:
                if isinstance(value, bool):
                    raise ValueError(value)
                out[key] = float(value)
        except (TypeError, ValueError):
            kind = ("a list of strings" if key in _LIST_OPTS else "a boolean" if key in _BOOL_OPTS
                    else "an integer" if key in _INT_OPTS else "a number")
            raise OptionError(f"invalid value for parameter '{key}': {value!r} is not {kind}") from None
    return out


# -- the model entry ---------------------------------------------------------------------------


def sha256_hex(data: str | bytes) -> str:
    return hashlib.sha256(data.encode() if isinstance(data, str) else data).hexdigest()


def kv_cache_mb(num_ctx: int) -> float:
    """VRAM for the KV cache and runtime buffers of a 7-8B model (q8-ish cache, GQA)."""
    return num_ctx * 0.0625 + 24.0


@dataclass(slots=True)
class SimModel:
    name: str
    """Full name with tag, e.g. ``rh-alpha:latest``."""
    weights_mb: float
    resident_mb: float
    """VRAM while loaded at `num_ctx` (weights + KV cache + buffers)."""
    tokens_mean: float
    tokens_sd: float
    prompt_tokens: int
    base: str
    """The pulled base whose weights this model uses (itself for a base)."""
    from_: str | None = None
    """The model named in FROM when it was created; None for a pulled base."""
    system: str = ""
    template: str = ""
    license: list[str] = field(default_factory=list)
    parameters: dict[str, Any] = field(default_factory=dict)
    messages: list[dict[str, str]] = field(default_factory=list)
    modified_at: float = 0.0
    student: bool = False
    """A scenario student: `resident_mb` is the measured figure at the default context."""
    weights: str | None = None
    """The digest of the weights when they came from an uploaded file (None: the base's)."""
    adapters: list[str] = field(default_factory=list)
    draft: str | None = None
    renderer: str = ""
    parser: str = ""
    requires: str = ""

    @property
    def info(self) -> BaseInfo:
        return base_info(self.base)

    @property
    def num_ctx(self) -> int:
        return int(self.parameters.get("num_ctx", DEFAULT_NUM_CTX))

    def resident_at(self, num_ctx: int) -> float:
        """Resident VRAM when loaded with `num_ctx` (the KV cache grows with it)."""
        return max(self.weights_mb, self.resident_mb + kv_cache_mb(num_ctx) - kv_cache_mb(self.num_ctx))

    @property
    def weights_digest(self) -> str:
        return self.weights or "sha256:" + sha256_hex(f"weights:{self.base}")

    def layers(self) -> list[tuple[str, str]]:
        """(media type, digest) of each layer, as Ollama stores them."""
        out = [("application/vnd.ollama.image.model", self.weights_digest)]
        out += [("application/vnd.ollama.image.adapter", d) for d in self.adapters]
        if self.draft:
            out.append(("application/vnd.ollama.image.draft", self.draft))
        if self.template:
            out.append(("application/vnd.ollama.image.template", "sha256:" + sha256_hex(self.template)))
        if self.system:
            out.append(("application/vnd.ollama.image.system", "sha256:" + sha256_hex(self.system)))
        for lic in self.license:
            out.append(("application/vnd.ollama.image.license", "sha256:" + sha256_hex(lic)))
        if self.parameters:
            out.append(("application/vnd.ollama.image.params",
                        "sha256:" + sha256_hex(json.dumps(self.parameters, sort_keys=True))))
        if self.messages:
            out.append(("application/vnd.ollama.image.messages",
                        "sha256:" + sha256_hex(json.dumps(self.messages, sort_keys=True))))
        return out

    @property
    def digest(self) -> str:
        """The manifest digest (hex, as /api/tags shows it)."""
        return sha256_hex(json.dumps(self.layers()))

    def details(self) -> dict[str, Any]:
        i = self.info
        return {
            "parent_model": "",
            "format": "gguf",
            "family": i.family,
            "families": [i.family],
            "parameter_size": i.parameter_size,
            "quantization_level": i.quantization,
        }

    def model_info(self) -> dict[str, Any]:
        i = self.info
        arch = i.family
        return {
            "general.architecture": arch,
            "general.file_type": 2 if i.quantization == "Q4_0" else 15,
            "general.parameter_count": i.parameter_count,
            "general.quantization_version": 2,
            f"{arch}.attention.head_count": 32 if arch == "llama" else 28,
            f"{arch}.attention.head_count_kv": 8 if arch != "llama" or i.context_length > 4096 else 32,
            f"{arch}.block_count": 32 if arch == "llama" else 28,
            f"{arch}.context_length": i.context_length,
            f"{arch}.embedding_length": 4096 if arch == "llama" else 3584,
        }

    def blob_path(self, digest: str | None = None) -> str:
        return "/usr/share/ollama/.ollama/models/blobs/" + (digest or self.weights_digest).replace(":", "-")


# -- rendering like `ollama show` --------------------------------------------------------------


def go_quote(s: str) -> str:
    """``parser.go`` quote(): a value is written bare unless it holds a line end or starts or ends
    with a space; then in "…", or in \"\"\"…\"\"\" when it also holds a quote."""
    if "\n" in s or s.startswith(" ") or s.endswith(" "):
        return f'"""{s}"""' if '"' in s else f'"{s}"'
    return s


def go_float(v: float) -> str:
    """A float64 as Go's ``%v`` writes it (strconv 'g', shortest): ``0.7``, ``4096``, ``1e+06``."""
    if math.isnan(v):
        return "NaN"
    if math.isinf(v):
        return "+Inf" if v > 0 else "-Inf"
    if v == 0:
        return "-0" if math.copysign(1.0, v) < 0 else "0"
    sign, digits, exponent = Decimal(repr(float(v))).as_tuple()
    text = "".join(map(str, digits)).rstrip("0")
    exponent = int(exponent) + (len(digits) - len(text)) if text else 0
    dp = len(text) + exponent  # the value is 0.<text> × 10^dp
    x = dp - 1
    neg = "-" if sign else ""
    if x < -4 or x >= 6:  # "if precision was the shortest possible, use precision 6 for this decision"
        mant = text[0] + ("." + text[1:] if len(text) > 1 else "")
        return f"{neg}{mant}e{'-' if x < 0 else '+'}{abs(x):02d}"
    if dp <= 0:
        return f"{neg}0.{'0' * -dp}{text}"
    if dp >= len(text):
        return neg + text + "0" * (dp - len(text))
    return f"{neg}{text[:dp]}.{text[dp:]}"


def _go_json_value(v: Any) -> Any:
    """A parameter value as Ollama holds it after reading its params layer (JSON into ``any``)."""
    if isinstance(v, bool | str):
        return v
    if isinstance(v, int | float):
        return float(v)
    return v


def go_v(v: Any) -> str:
    """Go's ``%v`` of a JSON-decoded value (what ``ollama show --modelfile`` writes after PARAMETER)."""
    v = _go_json_value(v)
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float):
        return go_float(v)
    return str(v)


def go_sharp_v(v: Any) -> str:
    """Go's ``%#v`` of a JSON-decoded value (what /api/show's ``parameters`` writes): strings as
    strconv.Quote writes them."""
    v = _go_json_value(v)
    if isinstance(v, str):
        return _go_strconv_quote(v)
    return go_v(v)


def _go_strconv_quote(s: str) -> str:
    out = ['"']
    for ch in s:
        if ch in '"\\':
            out.append("\\" + ch)
        elif ch == " " or unicodedata.category(ch)[0] in "LMNPS":
            out.append(ch)
        elif ch in "\a\b\f\n\r\t\v":
            out.append({"\a": "\\a", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t",
                        "\v": "\\v"}[ch])
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append(f"\\x{ord(ch):02x}")
        elif ord(ch) <= 0xFFFF:
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(f"\\U{ord(ch):08x}")
    out.append('"')
    return "".join(out)


def render_modelfile(m: SimModel) -> str:
    """/api/show's ``modelfile``, as Ollama writes it (routes.go GetModelInfo, images.go
    Model.String, parser.go Command.String and quote): FROM, ADAPTER, DRAFT, TEMPLATE (always;
    the default one when the model has none), SYSTEM when set, RENDERER, PARSER, the parameters
    (Go's map order is random; here sorted), LICENSE, MESSAGE."""
    lines = [
        '# Modelfile generated by "ollama show"',
        "# To build a new Modelfile based on this, replace FROM with:",
        f"# FROM {display_name(m.name)}",
        "",
        f"FROM {m.blob_path()}",
    ]
    lines += [f"ADAPTER {go_quote(m.blob_path(d))}" for d in m.adapters]
    if m.draft:
        lines.append(f"DRAFT {go_quote(m.blob_path(m.draft))}")
    lines.append(f"TEMPLATE {go_quote(m.template or DEFAULT_TEMPLATE)}")
    if m.system:
        lines.append(f"SYSTEM {go_quote(m.system)}")
    if m.renderer:
        lines.append(f"RENDERER {go_quote(m.renderer)}")
    if m.parser:
        lines.append(f"PARSER {go_quote(m.parser)}")
    for key in sorted(m.parameters):
        value = m.parameters[key]
        for v in value if isinstance(value, list) else [value]:
            lines.append(f"PARAMETER {key} {go_quote(go_v(v))}")
    for lic in m.license:
        lines.append(f"LICENSE {go_quote(lic)}")
    for msg in m.messages:
        lines.append(f"MESSAGE {msg.get('role', 'user')} {go_quote(str(msg.get('content', '')))}")
    return "\n".join(lines) + "\n"


def render_parameters(m: SimModel) -> str:
    """/api/show's ``parameters``: ``%-30s %#v`` per value (routes.go GetModelInfo)."""
    out = []
    for key in sorted(m.parameters):
        value = m.parameters[key]
        for v in value if isinstance(value, list) else [value]:
            out.append(f"{key:<30} {go_sharp_v(v)}")
    return "\n".join(out)


def normalize_messages(messages: Any) -> list[dict[str, str]]:
    out = []
    for msg in messages or []:
        if not isinstance(msg, dict):
            raise OptionError("messages must be objects with 'role' and 'content'")
        role = str(msg.get("role", ""))
        if role not in ("system", "user", "assistant"):
            raise OptionError('message role must be one of "system", "user", or "assistant"')
        out.append({"role": role, "content": str(msg.get("content") or "")})
    return out


def normalize_license(lic: Any) -> list[str]:
    if lic is None:
        return []
    if isinstance(lic, str):
        return [lic] if lic else []
    if isinstance(lic, list | tuple):
        return [str(x) for x in lic]
    raise OptionError("license must be a string or a list of strings")
