"""Configuration: pydantic-settings, loaded in this order (later wins):

defaults < TOML file (``--config`` or ``$XDG_CONFIG_HOME/rhtui/rhtui.toml``)
< environment (``RHTUI_*``, ``__`` for nesting; ``OLLAMA_HOST`` is honoured)
< command-line flags.

An invalid value stops the program with a message naming the key, where the
value came from (file, env or flag) and what is allowed (`ConfigError`).
"""

from __future__ import annotations

import os
import re
import shlex
import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic.fields import FieldInfo
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    SettingsError,
)

from rhtui.engine.host import parse_host

DEFAULT_STUDENTS = ("rh-alpha", "rh-beta", "rh-gamma", "rh-delta", "rh-epsilon", "rh-zeta")
DEFAULT_OLLAMA_HOST = "http://127.0.0.1:11434"
ENV_PREFIX = "RHTUI_"


def xdg_config_home() -> Path:
    return Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config")


def xdg_data_home() -> Path:
    return Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share")


def default_config_path() -> Path:
    return xdg_config_home() / "rhtui" / "rhtui.toml"


def normalize_host(host: str) -> str:
    """Ollama's host forms (``host``, ``host:port``, ``:port``, ``http://host``, ``[v6]:port``, a bare
    IPv6 address) as a URL, read as Ollama reads OLLAMA_HOST (`rhtui.engine.host.parse_host`);
    raises `HostError` (a ValueError) for a value that cannot be Ollama's address."""
    return parse_host(host)


class _Section(BaseModel):
    # finite numbers only: an `inf` would pass every bound below (gpu_total_mb = inf turned the
    # budget guard off) and `nan` compares false with everything
    model_config = ConfigDict(extra="forbid", validate_assignment=True, allow_inf_nan=False)


class BudgetPolicy(_Section):
    """The budget guard's rules that protect the card."""

    reserve_mb: int = Field(1024, ge=0, le=1_000_000)
    """VRAM (MB) that must stay free after a student is loaded."""
    max_fraction: float = Field(0.90, gt=0.0, le=1.0)
    """VRAM use must never pass this share of the card."""
    emergency_fraction: float = Field(0.95, gt=0.0, le=1.0)
    """Above this share of the card during a run: abort, unload, pause."""
    timeout_s: float = Field(60.0, gt=0.0, le=86_400)
    """Seconds one proposal may take (load included) before it is cancelled and unloaded."""
    cooldown_s: float = Field(30.0, ge=0.0, le=3600)
    """After an emergency, resume automatically once VRAM stayed under max_fraction this long
    (0: resume only by key)."""
    ram_reserve_mb: int = Field(1024, ge=0)
    """System RAM (MB) that must stay free before a load."""
    kv_cache_mb: int = Field(320, ge=0)
    """KV-cache and runtime buffers (MB) added to a never-run student's model size to estimate its need."""

    @model_validator(mode="after")
    def _emergency_above_max(self) -> BudgetPolicy:
        if self.emergency_fraction <= self.max_fraction:
            raise ValueError(
                f"emergency_fraction ({self.emergency_fraction}) must be above max_fraction ({self.max_fraction})"
            )
        return self


class StudentSpec(_Section):
    """A student: an Ollama model that writes proposals."""

    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
    model: str | None = None
    """Ollama model tag; defaults to the name."""
    enabled: bool = True
    modelfile: Path | None = None
    """The Modelfile it is built from (None: an existing Ollama model, brought by the user)."""
    role: Literal["proposer", "critic", "synthesis", "judge"] | None = None
    """Its part in a research round (None: rh-zeta is the critic, every other student a proposer).
    A critic, synthesis or judge student does not propose; the synthesis falls to the best-scoring
    proposer of recent rounds when no student has role "synthesis"."""

    @property
    def tag(self) -> str:
        return self.model or self.name


class SessionOptions(_Section):
    """What one run of the ensemble does."""

    name: str = Field("rh_main", pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
    """Session name; runs are grouped by it in reports."""
    duration_min: float = Field(480.0, gt=0.0, le=60 * 24 * 30)
    """Wall-clock minutes the session runs (with the simulator, --speed makes more happen in them)."""
    policy: Literal["fair", "efficiency"] = "fair"
    """fair: every enabled student once per cycle, reordered so consecutive pairs fit when preloading;
    efficiency: the weighted score of `[policy.weights]` first (judge score, tokens per GPU-second, VRAM,
    failures)."""
    skip_largest_on_trend: bool = True
    """When VRAM use is trending up, skip the largest students first."""
    skip_slowest_when_short: bool = True
    """When the session's remaining time is short, skip students whose expected time does not fit."""
    max_cycles: int | None = Field(None, ge=1)
    """Stop after this many cycles (None: run for the duration)."""
    give_up_after_s: float | None = Field(None, gt=0.0, le=60 * 60 * 24 * 30)
    """Wall-clock seconds: end the session once Ollama has been unreachable this long during it
    (None: wait for Ollama until the session's time is up)."""
    prompt_seed: int | None = None
    """Seed for choosing research questions (None: random)."""
    questions: Path | None = None
    """The research agenda (--questions): a .toml in the shipped bank's format (`prompts = [...]`), or a
    .txt/.md file with one question per non-empty line (None: the shipped Riemann Hypothesis bank)."""
    preload: bool = True
    """Load the next student while the current one writes, when the budget guard admits both together
    (--no-preload / false: strictly one student on the card at a time)."""

    @field_validator("questions", mode="before")
    @classmethod
    def _questions_not_empty(cls, v: Any) -> Any:
        if isinstance(v, str) and not v.strip():
            raise ValueError("is empty: give a question file (or leave the key out for the shipped bank)")
        return v


class EnsembleOptions(_Section):
    """What a research round does after the proposals: a critique, a synthesis, a judge's scores."""

    mode: Literal["full", "proposals-only"] = "full"
    """full: proposals, critique, synthesis and judging; proposals-only: the proposals alone (cheapest)."""
    judge_every: int = Field(1, ge=0, le=10_000)
    """Judge every Nth round (1: every round; 0: never). Judging costs a short run per answer."""
    judges: list[str] = Field(default_factory=list)
    """A panel of judge students whose scores are averaged (empty: the students with role "judge", else
    the critic). Judges of different families agree with people better than one large judge."""
    synthesis_window: int = Field(5, ge=1, le=1000)
    """Rounds of scores the default synthesiser (the best-scoring proposer) is chosen from."""


class PolicyWeights(_Section):
    """The `efficiency` policy's weighted score: which students run first (higher first)."""

    quality: float = Field(1.0, ge=0.0, le=100.0)
    """The judge's mean score (0-10, scaled to 0-1)."""
    throughput: float = Field(1.0, ge=0.0, le=100.0)
    """Tokens per GPU-second, relative to the fastest student."""
    vram: float = Field(0.5, ge=0.0, le=100.0)
    """Less VRAM needed ranks higher (relative to the largest student)."""
    failures: float = Field(1.0, ge=0.0, le=100.0)
    """A higher failure rate ranks lower."""


def is_loopback(host: str) -> bool:
    """An address only this machine reaches: localhost or a loopback IP (127.0.0.0/8, ::1)."""
    import ipaddress

    name = host.strip().strip("[]").lower()
    if name in ("localhost", "localhost.", "ip6-localhost"):
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


class MetricsPolicy(_Section):
    """Prometheus metrics of the running engine (`/metrics`, see rhtui.engine.metrics)."""

    port: int | None = Field(None, ge=0, le=65535)
    """Serve /metrics on this port while the engine runs (--metrics-port; None: no metrics server;
    0: any free port, said at start)."""
    allow_remote: bool = False
    """Allow a host that is not loopback (a Prometheus on another machine scrapes this one)."""
    host: str = "127.0.0.1"
    """The address /metrics listens on. It has no authentication, so an address other machines
    can reach (0.0.0.0, a LAN address, a host name) is refused unless allow_remote = true."""

    @field_validator("host")
    @classmethod
    def _host(cls, v: str, info: ValidationInfo) -> str:
        v = v.strip().strip("[]")
        if not v:
            raise ValueError("is empty: give an address to listen on (leave the key out for 127.0.0.1)")
        if not info.data.get("allow_remote") and not is_loopback(v):
            raise ValueError(
                f"{v!r} is not a loopback address: any machine that reaches it could read the metrics (there is "
                "no authentication); use 127.0.0.1, ::1 or localhost, or set metrics.allow_remote = true "
                "(RHTUI_METRICS__ALLOW_REMOTE=1) if that is what you want"
            )
        return v


class AlertsPolicy(_Section):
    """When rhtui alerts a person (a notification in the dashboard, a log line, an `Alert` event) and what
    else it runs then. The rules are in rhtui/engine/alerts.py."""

    command: str | None = None
    """Run on each alert with the alert as JSON on stdin, e.g. a webhook:
    "curl -fsS -H 'Content-Type: application/json' --data-binary @- https://hooks.example/rhtui". Split like a
    shell line but run without a shell (`sh -c '…'` for one); RHTUI_ALERT_TITLE, RHTUI_ALERT_MESSAGE,
    RHTUI_ALERT_KIND and RHTUI_ALERT_SEVERITY are set in its environment, so a desktop notification is
    "sh -c 'notify-send \"$RHTUI_ALERT_TITLE\" \"$RHTUI_ALERT_MESSAGE\"'". None or "": no command."""
    command_timeout_s: float = Field(10.0, gt=0.0, le=600)
    """Real seconds the command may run before it is killed (it never holds the engine up)."""
    min_interval_s: float = Field(300.0, ge=0.0, le=30 * 86_400)
    """The same alert (its kind, and its student for a student's alert) is raised at most once in this many
    seconds of the engine clock (in the demo, --speed shortens them); 0: every time its condition begins."""
    max_temp_c: float | None = Field(85.0, gt=0.0, le=150.0)
    """An alert when the GPU's temperature passes this (°C); None: no temperature alert."""
    backend_down_s: float = Field(60.0, gt=0.0, le=30 * 86_400)
    """An alert when Ollama has been unreachable this many seconds of the engine clock."""
    slow_drop: float = Field(0.30, gt=0.0, lt=1.0)
    """A student is degraded when a run's tok/s is more than this share below its learned mean (0.30: 30 %)."""

    @field_validator("command")
    @classmethod
    def _command_line(cls, v: str | None) -> str | None:
        if v is None or not v.strip():
            return None
        try:
            shlex.split(v)
        except ValueError as exc:  # an unclosed quotation
            raise ValueError(f"is not a command line ({exc}): quote it as a shell would") from None
        return v


class CostPolicy(_Section):
    """What energy costs here, and an API's price to compare with (`rhtui report`, the status bar)."""

    price_per_kwh: float | None = Field(None, ge=0.0, le=1_000)
    """Price of a kWh of electricity, in your currency (None: not set; energy is shown, no cost)."""
    api_price_per_mtok: float | None = Field(None, ge=0.0, le=1_000_000)
    """Price of a million output tokens from an API, in the same currency, to compare the cost of a
    million tokens here with (None: no comparison)."""
    currency: str = Field("", max_length=8, pattern=r"^[^\x00-\x1f\x7f]*$")
    """Shown after every amount (e.g. "EUR", "$"; empty: the amounts alone)."""


class _PolicySection(_Section):
    """`[policy]`: the efficiency policy's weights (`[policy.weights]`)."""

    weights: PolicyWeights = Field(default_factory=PolicyWeights)


class Settings(BaseSettings):
    """All of rhtui's settings."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_nested_delimiter="__",
        extra="forbid",
        validate_default=True,
        allow_inf_nan=False,
    )

    ollama_host: str = DEFAULT_OLLAMA_HOST
    """Where Ollama listens (OLLAMA_HOST is honoured)."""
    data_dir: Path = Field(default_factory=lambda: xdg_data_home() / "rhtui")
    """Where the database lives."""
    modelfiles_dir: Path | None = None
    """A folder of *.Modelfile students (None: the six shipped with rhtui)."""
    sample_interval_s: float = Field(1.0, ge=0.02, le=60.0)
    """Seconds between hardware samples."""
    gpu_index: int = Field(0, ge=0)
    """Which GPU NVML watches."""
    gpu_total_mb: float | None = Field(None, gt=0, le=4_194_304)
    """Card size (MB) when no NVML is available (VRAM is then judged from /api/ps)."""
    keep_alive_s: float = Field(0.0, ge=0.0, le=30 * 86_400)
    """Seconds a student stays loaded after its proposal (0: unload after use)."""
    snapshot_retention_days: float = Field(30.0, gt=0, le=36_500)
    """Hardware samples older than this are purged at start."""
    budget: BudgetPolicy = Field(default_factory=BudgetPolicy)
    session: SessionOptions = Field(default_factory=SessionOptions)
    cost: CostPolicy = Field(default_factory=CostPolicy)
    alerts: AlertsPolicy = Field(default_factory=AlertsPolicy)
    metrics: MetricsPolicy = Field(default_factory=MetricsPolicy)
    ensemble: EnsembleOptions = Field(default_factory=EnsembleOptions)
    policy: _PolicySection = Field(default_factory=lambda: _PolicySection())
    students: list[StudentSpec] = Field(default_factory=lambda: [StudentSpec(name=n) for n in DEFAULT_STUDENTS])

    @field_validator("ollama_host")
    @classmethod
    def _host(cls, v: str) -> str:
        return normalize_host(v)

    @field_validator("data_dir", "modelfiles_dir", mode="before")
    @classmethod
    def _not_empty(cls, v: Any) -> Any:
        # an empty value would be Path(""), the current directory: never what was meant
        if isinstance(v, str) and not v.strip():
            raise ValueError("is empty: give a folder (or leave the key out for the default)")
        return v

    @field_validator("students")
    @classmethod
    def _unique(cls, v: list[StudentSpec]) -> list[StudentSpec]:
        if not v:
            raise ValueError("lists no student: at least one is needed (leave `students` out for the shipped six)")
        seen: set[str] = set()
        for s in v:
            if s.name in seen:
                raise ValueError(f"student {s.name!r} is declared twice")
            seen.add(s.name)
        return v

    @property
    def db_path(self) -> Path:
        return self.data_dir / "rhtui.db"

    @property
    def enabled_students(self) -> list[StudentSpec]:
        return [s for s in self.students if s.enabled]

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # flags > RHTUI_* env > OLLAMA_HOST > TOML file > defaults
        return (init_settings, env_settings, _OllamaHostEnv(settings_cls), _TomlFile(settings_cls))


class _OllamaHostEnv(PydanticBaseSettingsSource):
    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:  # pragma: no cover
        return None, field_name, False  # unused: __call__ gives every value

    def __call__(self) -> dict[str, Any]:
        host = os.environ.get("OLLAMA_HOST")
        return {"ollama_host": host} if host else {}


class _TomlFile(PydanticBaseSettingsSource):
    """The TOML file chosen by `load_settings` (passed through a context variable-free class attr)."""

    data: dict[str, Any] = {}

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:  # pragma: no cover
        return None, field_name, False  # unused: __call__ gives every value

    def __call__(self) -> dict[str, Any]:
        return dict(type(self).data)


class ConfigError(Exception):
    """The configuration is invalid; str() is a message for a person."""

    exit_code = 2


Loc = tuple[str | int, ...]
"""Where a value sits in the settings: keys, and indices into lists (pydantic's error ``loc``)."""


def _flatten(d: dict[str, Any], prefix: tuple[str, ...] = ()) -> dict[tuple[str, ...], Any]:
    out: dict[tuple[str, ...], Any] = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out.update(_flatten(v, prefix + (k,)))
        else:
            out[prefix + (k,)] = v
    return out


def _env_name(loc: Loc) -> str:
    return ENV_PREFIX + "__".join(str(p) for p in loc).upper()


_MISSING = object()

# Keys whose command-line flag is not simply --the-key-name.
FLAG_NAMES = {
    ("ollama_host",): "--host",
    ("modelfiles_dir",): "--modelfiles",
    ("session", "duration_min"): "--duration",
    ("session", "name"): "--session",
    ("budget", "timeout_s"): "--timeout",
    ("metrics", "port"): "--metrics-port",
}


def _lookup(data: Any, loc: Loc) -> Any:
    node = data
    for part in loc:
        in_dict = isinstance(node, dict) and part in node
        in_list = isinstance(node, list) and isinstance(part, int) and part < len(node)
        if in_dict or in_list:
            node = node[part]
        else:
            return _MISSING
    return node


def _source_of(loc: Loc, cli: dict[str, Any], toml_data: dict[str, Any], path: Path | None) -> str:
    """Where the value at `loc` came from, in words (for an item of a list, the list's source)."""
    keys = (loc, loc[:1]) if any(isinstance(p, int) for p in loc) else (loc,)
    for key in keys:
        names = tuple(str(p) for p in key if not isinstance(p, int))
        if not names:
            continue
        if _lookup(cli, key) is not _MISSING:
            flag = FLAG_NAMES.get(names) or "--" + names[-1].replace("_", "-")
            return f"command-line flag {flag}"
        # RHTUI_BUDGET__RESERVE_MB, else a variable holding the section as JSON (RHTUI_BUDGET)
        for n in range(len(names), 0, -1):
            if _env_name(names[:n]) in os.environ:
                return f"environment variable {_env_name(names[:n])}"
        if names == ("ollama_host",) and "OLLAMA_HOST" in os.environ:
            return "environment variable OLLAMA_HOST"
        if path is not None and _lookup(toml_data, key) is not _MISSING:
            return f"config file {path}"
    return "default"


def read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {path} is not valid TOML: {exc}") from exc
    except OSError as exc:
        raise ConfigError(f"cannot read config file {path}: {exc.strerror}") from exc


def load_settings(config_path: Path | None = None, cli: dict[str, Any] | None = None) -> Settings:
    """Build Settings from every source; raise ConfigError with a message a person can act on.

    `config_path`: an explicit --config (must exist); None looks in the XDG config dir.
    `cli`: values from flags, nested like the settings (None values are dropped).
    """
    cli = _drop_none(cli or {})
    path = config_path
    if path is not None and not path.exists():
        raise ConfigError(f"config file {path} does not exist (given with --config)")
    if path is None:
        candidate = default_config_path()
        path = candidate if candidate.exists() else None
    toml_data = read_toml(path) if path is not None else {}
    _TomlFile.data = toml_data
    try:
        return Settings(**cli)
    except SettingsError as exc:  # a RHTUI_* variable for a section or a list that is not JSON
        raise ConfigError(_env_json_error(exc)) from None
    except ValidationError as exc:
        lines = []
        for err in exc.errors():
            loc = tuple(err["loc"])
            key = ".".join(str(p) if not isinstance(p, int) else f"[{p}]" for p in loc).replace(".[", "[")
            source = _source_of(loc, cli, toml_data, path)
            got = err.get("input")
            got_s = "" if isinstance(got, dict) or got is None else f" (got {got!r})"
            msg = err["msg"].removeprefix("Value error, ")
            if err["type"] == "extra_forbidden":
                msg = "unknown key"
            lines.append(f"  {key or '(top level)'}: {msg}{got_s} — from {source}")
        raise ConfigError("invalid configuration:\n" + "\n".join(lines)) from None
    finally:
        _TomlFile.data = {}


def _env_json_error(exc: SettingsError) -> str:
    """SettingsError says 'error parsing value for field "budget" from source "EnvSettingsSource"'."""
    m = re.search(r'field "([^"]+)"', str(exc))
    field = m.group(1) if m else ""
    name = _env_name((field,)) if field else ENV_PREFIX + "…"
    got = os.environ.get(name)
    shown = f" (got {got!r})" if got is not None and len(got) <= 80 else ""
    example = (
        f"set one key with {name}__KEY (e.g. RHTUI_BUDGET__RESERVE_MB=2048), or the whole section as a JSON "
        "object (e.g. RHTUI_BUDGET='{\"reserve_mb\": 2048}')"
        if field in ("budget", "session", "alerts", "cost", "metrics")
        else f"a JSON list, e.g. {name}='[{{\"name\": \"my-student\", \"model\": \"llama3.1:8b\"}}]'"
        if field == "students"
        else "a JSON value"
    )
    return (f"invalid configuration:\n  {field or '?'}: is not valid JSON{shown} — from environment variable {name}; "
            f"{example}")


def _drop_none(d: dict[str, Any]) -> dict[str, Any]:
    out = {}
    for k, v in d.items():
        if isinstance(v, dict):
            v = _drop_none(v)
            if v:
                out[k] = v
        elif v is not None:
            out[k] = v
    return out


def value_sources(
    settings: Settings, config_path: Path | None = None, cli: dict[str, Any] | None = None
) -> dict[str, str]:
    """For `rhtui doctor`: each leaf key and where its value came from."""
    path = config_path or (default_config_path() if default_config_path().exists() else None)
    toml_data = read_toml(path) if path else {}
    out: dict[str, str] = {}
    dumped = settings.model_dump(exclude={"students"})
    for loc in _flatten(dumped):
        out[".".join(loc)] = _source_of(loc, _drop_none(cli or {}), toml_data, path)
    return out
