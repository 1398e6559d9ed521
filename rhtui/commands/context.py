"""What every `rhtui` subcommand shares: the global options and how settings are loaded.

The global options (`ConfigOption`, `HostOption`, `DataDirOption`, `ModelfilesOption`)
are declared once here and reused by the root command and by each subcommand that
honours them, so `rhtui --data-dir D report` and `rhtui report --data-dir D` mean the
same. Each one's callback puts a given value into the `CliContext` in `ctx.obj` (a
subcommand's context shares its parent's object); the root is parsed first, so a
subcommand's value wins over the global one. A subcommand calls
`cli_context(ctx).settings()` and gets validated Settings, or the program exits 2
with a message that names the bad key, where it came from and what is allowed.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from rhtui.engine.config import ConfigError, Settings, load_settings
from rhtui.engine.modelfile import check_modelfiles_dir, resolve_students


def make_console(stderr: bool = False) -> Console:
    """A Rich console that honours NO_COLOR and never interprets markup it is not told to."""
    return Console(stderr=stderr, highlight=False, soft_wrap=True)


@dataclass
class CliContext:
    config: Path | None = None
    host: str | None = None
    data_dir: Path | None = None
    modelfiles: Path | None = None
    overrides: dict[str, Any] = field(default_factory=dict)
    session: str | None = None
    """--session given to the root command (report, export and watch fall back to it)."""
    demo: bool = False
    """--demo given to the root command (report, export and watch then read the demo database)."""
    run_options: Any = None
    """The root command's --demo/--headless/--scenario/--speed/--seed (`rhtui ask` runs with them)."""
    _settings: Settings | None = None

    def set_option(self, name: str, value: Any) -> None:
        """Record a global option's value (the last one given wins); settings are loaded afresh."""
        if name not in ("config", "host", "data_dir", "modelfiles", "session", "demo"):
            raise AttributeError(f"not a global option: {name}")
        setattr(self, name, value)
        self._settings = None

    def cli_values(self) -> dict[str, Any]:
        values: dict[str, Any] = {
            "ollama_host": self.host,
            "data_dir": self.data_dir,
            "modelfiles_dir": self.modelfiles,
        }
        for k, v in self.overrides.items():
            if isinstance(v, dict):
                values.setdefault(k, {}).update(v)
            else:
                values[k] = v
        return values

    def settings(self) -> Settings:
        """Validated settings, or exit 2 with the reason on stderr."""
        if self._settings is None:
            try:
                settings = load_settings(self.config, self.cli_values())
            except ConfigError as exc:
                make_console(stderr=True).print(f"rhtui: {exc}", markup=False)
                sys.exit(ConfigError.exit_code)
            bad = check_modelfiles_dir(settings)
            if bad is not None:
                make_console(stderr=True).print(f"rhtui: {bad}", markup=False)
                sys.exit(ConfigError.exit_code)
            # the students: the Modelfiles (shipped, or --modelfiles), or those the config declares
            self._settings = settings.model_copy(update={"students": resolve_students(settings)})
        return self._settings


def cli_context(ctx: typer.Context) -> CliContext:
    """The `CliContext` this command shares with its parents (made here when it runs alone)."""
    if not isinstance(ctx.obj, CliContext):
        ctx.obj = CliContext()
    return ctx.obj


def _into_context(name: str):
    """The callback of a global option: a value given on the command line goes into the
    CliContext's field `name`, whatever the parameter is called in the command."""

    def callback(ctx: typer.Context, param: typer.CallbackParam, value: Any) -> Any:
        if value is not None and not ctx.resilient_parsing:
            cli_context(ctx).set_option(name, value)
        return value

    return callback


def _global_option(flag: str, name: str, help_text: str) -> Any:
    """The typer option `flag` of the global option `name` (its value goes into the CliContext)."""
    return typer.Option(flag, callback=_into_context(name), show_default=False, help=help_text)


# The global options, each declared once. Reuse them as a parameter type, with None as the
# default, in every command that honours them: `data_dir: DataDirOption = None`.
ConfigOption = Annotated[Path | None, _global_option(
    "--config", "config", "TOML config file (default: $XDG_CONFIG_HOME/rhtui/rhtui.toml).",
)]
HostOption = Annotated[str | None, _global_option(
    "--host", "host", "Ollama's address (default: OLLAMA_HOST or 127.0.0.1:11434).",
)]
DataDirOption = Annotated[Path | None, _global_option(
    "--data-dir", "data_dir", "Where the database lives (default: $XDG_DATA_HOME/rhtui).",
)]
ModelfilesOption = Annotated[Path | None, _global_option(
    "--modelfiles", "modelfiles", "A folder of *.Modelfile students instead of the shipped six.",
)]


def demo_db_path(settings: Settings) -> Path:
    """The simulator's runs go to their own database, so they never teach the real profiles."""
    return settings.data_dir / "rhtui-demo.db"


def session_source(ctx: typer.Context, session: str | None, demo: bool) -> tuple[Settings, Path, str | None]:
    """(settings, database, session name) for the commands that read a session (report, export, watch,
    students): their own --session and --demo, else those given to the root command
    (`rhtui --demo --session S report`)."""
    obj = cli_context(ctx)
    settings = obj.settings()
    db = demo_db_path(settings) if (demo or obj.demo) else settings.db_path
    return settings, db, session if session is not None else obj.session
