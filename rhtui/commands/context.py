"""What every `rhtui` subcommand shares: the global options and how settings are loaded.

The root command's callback stores a `CliContext` in `ctx.obj`; a subcommand calls
`ctx.obj.settings()` and gets validated Settings, or the program exits 2 with a
message that names the bad key, where it came from and what is allowed.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

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
    _settings: Settings | None = None

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
