"""`rhtui service print`: a systemd user unit that runs the headless engine, for weeks on a GPU box.

    rhtui service print > ~/.config/systemd/user/rhtui.service
    systemctl --user daemon-reload && systemctl --user enable --now rhtui
    journalctl --user -u rhtui -f          # its log lines
    rhtui watch                            # the dashboard on it; q leaves it running

The unit names everything by absolute path, as it is now in this shell: the rhtui executable (or this
Python running rhtui, when rhtui was not started as the `rhtui` script), the config file in effect and
the data dir. A service does not see this shell's environment (XDG_*, RHTUI_*, OLLAMA_HOST), so the
engine it runs and `rhtui watch` here then agree on the database; OLLAMA_HOST and the RHTUI_* variables
set now are written as Environment= lines. The settings are validated first: a bad config fails here,
not in the service.

Stopping: KillSignal=SIGINT is the headless engine's graceful stop (cancel the running proposal, record
it, unload, close the session); TimeoutStopSec leaves it time. Restarting: Restart=on-failure restarts
after an exit 1 (the session ended because Ollama stayed unreachable, session.give_up_after_s) or a
crash; a session that reached its end exits 0 and the service stays stopped; an exit 2 (a bad config,
or another engine holding the database) is not retried (RestartPreventExitStatus=2): its log line says
what to do.
"""

from __future__ import annotations

import os
import shlex
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.text import Text

from rhtui.commands.context import (
    ConfigOption,
    DataDirOption,
    HostOption,
    ModelfilesOption,
    cli_context,
    make_console,
)
from rhtui.engine.config import ENV_PREFIX, default_config_path

service_app = typer.Typer(
    no_args_is_help=True, add_completion=False, rich_markup_mode=None, pretty_exceptions_enable=False,
)

TIMEOUT_STOP_S = 90
"""How long systemd waits for the graceful stop before SIGKILL: a cancelled stream, an unload (Ollama's
request timeout is 15 s) and the last writes, with room (the dashboard's own quit waits 60 s)."""
RESTART_S = 30
"""Seconds before a failed engine is started again (Ollama down at start: it retries every 30 s)."""
MAX_DURATION_MIN = 60 * 24 * 30
"""The longest session (session.duration_min's bound)."""
SAFE = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_./:@+,=-")


class UnitError(ValueError):
    """A value cannot be written into a unit file (a control character in a path)."""


@dataclass(frozen=True)
class UnitSpec:
    """What the unit runs."""

    argv: list[str]
    """ExecStart: the command and its arguments, absolute paths."""
    working_dir: Path
    environment: dict[str, str] = field(default_factory=dict)
    description: str = "rhtui headless engine"
    notes: list[str] = field(default_factory=list)
    """Comment lines at the top (how to install, watch, stop)."""


def _check(value: str, what: str) -> str:
    if any(ord(c) < 0x20 or c == "\x7f" for c in value):
        raise UnitError(f"{what} {value!r} holds a control character (a newline?), which a unit file cannot "
                        "hold; use a path without one")
    return value


def exec_word(word: str) -> str:
    """One word of ExecStart=, as systemd reads it: specifiers (%) and variables ($) escaped, quoted
    when it holds anything but plain characters (a space, a quote, a backslash)."""
    _check(word, "the argument")
    escaped = word.replace("%", "%%").replace("$", "$$")
    if word and set(word) <= SAFE:
        return escaped
    return '"' + escaped.replace("\\", "\\\\").replace('"', '\\"') + '"'


def env_line(name: str, value: str) -> str:
    """Environment="NAME=value": quoted, specifiers escaped (no $ expansion happens in Environment=)."""
    _check(value, f"the value of {name}")
    text = f"{name}={value}".replace("%", "%%").replace("\\", "\\\\").replace('"', '\\"')
    return f'Environment="{text}"'


def render_unit(spec: UnitSpec) -> str:
    """The unit file's text."""
    working = _check(str(spec.working_dir), "the data dir").replace("%", "%%")
    lines = [f"# {n}" if n else "#" for n in spec.notes]
    lines += [
        "",
        "[Unit]",
        f"Description={_check(spec.description, 'the description').replace('%', '%%')}",
        "",
        "[Service]",
        "Type=exec",
        "ExecStart=" + " ".join(exec_word(w) for w in spec.argv),
        # "-": a data dir not made yet is no error; the engine makes it on its first start
        f"WorkingDirectory=-{working}",
    ]
    lines += [env_line(k, v) for k, v in spec.environment.items()]
    lines += [
        "Restart=on-failure",
        f"RestartSec={RESTART_S}",
        "RestartPreventExitStatus=2",
        "KillSignal=SIGINT",
        f"TimeoutStopSec={TIMEOUT_STOP_S}",
        "SyslogIdentifier=rhtui",
        "",
        "[Install]",
        "WantedBy=default.target",
        "",
    ]
    return "\n".join(lines)


def rhtui_command() -> list[str]:
    """The absolute command that runs this rhtui: the `rhtui` script it was started as, else this Python
    running its CLI (same installation either way)."""
    argv0 = Path(sys.argv[0]) if sys.argv and sys.argv[0] else None
    if argv0 is not None and argv0.name == "rhtui":
        path = Path(os.path.abspath(argv0))
        if path.is_file() and os.access(path, os.X_OK):
            return [str(path)]
    return [os.path.abspath(sys.executable), "-m", "rhtui.commands.cli"]


_FLAGS = (
    (("session", "name"), "--session"),
    (("session", "duration_min"), "--duration"),
    (("session", "policy"), "--policy"),
    (("session", "max_cycles"), "--max-cycles"),
    (("budget", "timeout_s"), "--timeout"),
)
"""The session's flags given on the command line (`rhtui --policy efficiency service print`), carried into
ExecStart."""


@service_app.command("print")
def print_unit(
    ctx: typer.Context,
    config: ConfigOption = None,
    host: HostOption = None,
    data_dir: DataDirOption = None,
    modelfiles: ModelfilesOption = None,
    session: Annotated[str | None, typer.Option("--session", help="Session name (default: the config's, "
                                                "rh_main).")] = None,
    duration: Annotated[float | None, typer.Option("--duration", help="Session length in minutes (default: the "
                                                   "config's, 480; at most 43200, 30 days).")] = None,
) -> None:
    """Write a systemd user unit that runs the headless engine to standard output (install it with
    `rhtui service print > ~/.config/systemd/user/rhtui.service`)."""
    err = make_console(stderr=True)
    obj = cli_context(ctx)
    if obj.demo:
        err.print(Text("rhtui: --demo: the service runs the engine on Ollama. To try the headless engine on the "
                       "simulator, run `rhtui --demo --headless` in a terminal."))
        raise typer.Exit(2)
    overrides: dict[str, Any] = {k: dict(v) if isinstance(v, dict) else v for k, v in obj.overrides.items()}
    if session is not None:
        overrides.setdefault("session", {})["name"] = session
    if duration is not None:
        overrides.setdefault("session", {})["duration_min"] = duration
    obj.overrides = overrides
    settings = obj.settings()  # exits 2 with the reason when the config is not valid

    argv = [*rhtui_command(), "--headless"]
    config_file = obj.config if obj.config is not None else default_config_path()
    if obj.config is not None or config_file.exists():
        argv += ["--config", os.path.abspath(config_file)]
    if obj.host is not None:
        argv += ["--host", settings.ollama_host]
    data = Path(os.path.abspath(settings.data_dir))
    argv += ["--data-dir", str(data)]
    if obj.modelfiles is not None:
        argv += ["--modelfiles", os.path.abspath(obj.modelfiles)]
    for (section, key), flag in _FLAGS:
        value = overrides.get(section, {}).get(key)
        if value is not None:
            argv += [flag, f"{value:g}" if isinstance(value, float) else str(value)]

    environment = {k: v for k, v in sorted(os.environ.items()) if k.startswith(ENV_PREFIX) or k == "OLLAMA_HOST"}
    environment["PYTHONUNBUFFERED"] = "1"  # each log line reaches the journal as it is written
    minutes = settings.session.duration_min
    where = "" if data == Path(os.path.abspath(_default_data_dir())) else f" --data-dir {shlex.quote(str(data))}"
    notes = [
        "rhtui: the headless engine as a systemd user service (written by `rhtui service print`).",
        "  rhtui service print > ~/.config/systemd/user/rhtui.service",
        "  systemctl --user daemon-reload && systemctl --user enable --now rhtui",
        "  journalctl --user -u rhtui -f        its log lines",
        f"  {'rhtui watch' + where:<36} the dashboard on it (its keys reach the engine; q leaves it running),",
        f"  {'rhtui serve watch' + where:<36} or in a browser, at http://127.0.0.1:8000",
        "  systemctl --user stop rhtui          stops it gracefully (SIGINT: cancel, unload, close the session)",
        "  loginctl enable-linger $USER         keeps it running after you log out",
        f"One session of {minutes:g} min (session.duration_min): at its end the engine exits 0 and the service",
        "stays stopped" + (" (for weeks: print the unit again with --duration 43200, 30 days, the most)."
                           if minutes < MAX_DURATION_MIN else "."),
        "After a failure (exit 1: Ollama unreachable too long; a crash) it restarts; after exit 2 (a bad config,",
        "another engine on this database) it does not: the journal says why.",
    ]
    spec = UnitSpec(argv=argv, working_dir=data, environment=environment,
                    description=f"rhtui headless engine (session {settings.session.name}, data {data})",
                    notes=notes)
    try:
        text = render_unit(spec)
    except UnitError as exc:
        err.print(Text(f"rhtui: {exc}"))
        raise typer.Exit(2) from None
    sys.stdout.write(text)
    sys.stdout.flush()
    if sys.stdout.isatty():
        err.print(Text("rhtui: this is the unit; to install it: rhtui service print > "
                       "~/.config/systemd/user/rhtui.service"), style="dim")


def _default_data_dir() -> Path:
    from rhtui.engine.config import xdg_data_home

    return xdg_data_home() / "rhtui"
