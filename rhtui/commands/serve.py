"""`rhtui serve`: the dashboard in a web browser, through textual-serve.

    rhtui serve                    each browser tab runs `rhtui`: a session of its own, on Ollama
    rhtui serve --demo             each tab runs `rhtui --demo` (the simulator)
    rhtui serve watch              each tab follows the session another process runs (headless, the service)

Every browser tab that opens the page starts one `rhtui ARGS` process (textual-serve's model: one
process per connection, driven through its standard input and output), run by this same Python,
so it is the same installation. Closing the tab quits that process as `q` does: a session it runs
is stopped gracefully. One engine per database (rhtui.engine.lock): while one tab runs a session,
a second tab on the same data dir is refused, and it says so in the browser (textual-serve alone
would leave the tab blank). To look at one session from several tabs, or from a browser at all while
it runs for weeks, run the engine headless or as the service and serve `rhtui serve watch`.

The server listens on 127.0.0.1 unless `--bind` says otherwise; an address other machines reach
also needs `--allow-remote`, because whoever reaches the page runs the dashboard, keys included,
with no authentication. A page from another site may not open a dashboard (its Origin is checked),
so a web page that the user happens to visit cannot drive one on loopback.

`--host` is not the listening address here: as everywhere in rhtui it is Ollama's address, and it
is passed on to the dashboard (`rhtui serve --host gpu-box:11434`).

The server itself (textual-serve and aiohttp) is in `rhtui.commands.webserver`, imported only when
`serve` runs.
"""

from __future__ import annotations

import contextlib
import enum
import io
import shlex
import sys
from typing import Annotated, Any

import typer
from rich.text import Text

from rhtui.commands.context import make_console
from rhtui.engine.config import is_loopback

SERVE_CONTEXT: dict[str, Any] = {"allow_extra_args": True, "ignore_unknown_options": True}
"""The typer context settings of `serve`: options it does not know are the dashboard's (ARGS)."""

SERVED_COMMANDS = ("watch",)
"""The subcommands that are a dashboard (besides none: a session). The others print and exit."""


def serve_command(
    ctx: typer.Context,
    port: Annotated[int, typer.Option("--port", help="Port to listen on.", min=1, max=65535)] = 8000,
    bind: Annotated[str, typer.Option("--bind", help="Address to listen on (loopback unless --allow-remote).")] = (
        "127.0.0.1"
    ),
    allow_remote: Annotated[
        bool, typer.Option("--allow-remote", help="Allow a --bind address other machines can reach (no "
                           "authentication: whoever reaches the page drives the dashboard).")
    ] = False,
    public_url: Annotated[
        str | None, typer.Option("--public-url", help="The address browsers use, when a reverse proxy serves the "
                                 "page under another name (https://gpu.example/rhtui). Not needed for an SSH tunnel.")
    ] = None,
    args: Annotated[
        list[str] | None, typer.Argument(
            metavar="ARGS",
            help="What each browser tab runs: the arguments of `rhtui` (none: a session on Ollama; --demo: the "
                 "simulator; watch [--session NAME]: a session another process runs). Put them after `--` if "
                 "one looks like an option of serve.")
    ] = None,
) -> None:
    """Serve the dashboard in a web browser: each tab runs its own `rhtui ARGS`. Closing a tab stops its
    session; a session another process runs is followed with `rhtui serve watch`."""
    err = make_console(stderr=True)
    host = bind.strip().strip("[]")
    if not allow_remote and not is_loopback(host):
        err.print(Text(
            f"rhtui: --bind {bind} is not a loopback address: any machine that reaches it could open the "
            "dashboard and press its keys (pause, skip, emergency stop, quit), with no authentication. Use "
            "127.0.0.1, ::1 or localhost (from another machine: ssh -L 8000:127.0.0.1:8000 THIS-HOST, then "
            "http://127.0.0.1:8000), or add --allow-remote if that is what you want."
        ))
        raise typer.Exit(2)
    if public_url is not None and not public_url.startswith(("http://", "https://")):
        err.print(Text(f"rhtui: --public-url {public_url} is not an http:// or https:// address; give the address "
                       "browsers open, e.g. https://gpu.example/rhtui"))
        raise typer.Exit(2)
    tab_args = [*root_args(ctx), *(args or [])]
    command, problem = check_tab_args(tab_args)
    if problem is not None:
        err.print(Text(f"rhtui: {problem}"))
        raise typer.Exit(2)

    from rhtui.commands.webserver import DashboardServer

    server = DashboardServer(
        tab_argv(tab_args), tab_args=tab_args, host=host, port=port, public_url=public_url,
        allow_remote=allow_remote, watching=command == "watch",
    )
    try:
        server.serve()
    except OSError as exc:
        err.print(Text(f"rhtui: cannot listen on {bind}:{port}: {exc.strerror or exc}; choose another --port "
                       "(or stop what listens there)"))
        raise typer.Exit(1) from None


def tab_argv(tab_args: list[str]) -> list[str]:
    """The command each browser tab runs: this Python (so this installation) running rhtui's CLI."""
    return [sys.executable, "-m", "rhtui.commands.cli", *tab_args]


def describe(tab_args: list[str]) -> str:
    """`rhtui ARGS` as a person would type it."""
    return shlex.join(["rhtui", *tab_args])


def root_args(ctx: typer.Context) -> list[str]:
    """The options given to `rhtui` before `serve` (`rhtui --demo --speed 20 serve`), as arguments for
    the tabs: the dashboard they describe is the one served."""
    parent = ctx.parent
    if parent is None:
        return []
    out: list[str] = []
    for param in parent.command.params:
        name, opts = param.name, getattr(param, "opts", None)
        if name is None or not opts or param.param_type_name != "option":
            continue
        source = parent.get_parameter_source(name)
        if source is None or source.name != "COMMANDLINE":
            continue
        value = parent.params.get(name)
        if getattr(param, "is_flag", False):
            if value:
                out.append(opts[0])
            continue
        if value is None:
            continue
        if isinstance(value, enum.Enum):
            value = value.value
        out += [opts[0], str(value)]
    return out


def check_tab_args(tab_args: list[str]) -> tuple[str | None, str | None]:
    """(the command `rhtui ARGS` runs: None for a session, or "watch"; what is wrong with it as a dashboard
    to serve, None if nothing): a usage error, found now rather than in every tab; --headless, or a
    command that prints and exits, which is no dashboard."""
    from rhtui.commands.cli import app

    group: Any = typer.main.get_command(app)  # a group: rhtui has commands
    what = describe(tab_args)
    try:
        # --version prints as it is parsed: kept off the terminal, it is refused below
        with contextlib.redirect_stdout(io.StringIO()), group.make_context("rhtui", list(tab_args)) as root:
            rest = [*root._protected_args, *root.args]
            if root.params.get("headless"):
                return None, (f"`{what}` runs the engine without a dashboard (--headless): there is nothing to "
                              "show in a browser. Run it as it is (or as the service: rhtui service print), and "
                              "serve `rhtui serve watch` to see it.")
            if not rest:
                return None, None
            name, command, sub_args = group.resolve_command(root, rest)
            if name not in SERVED_COMMANDS or command is None:
                return name, (f"`{what}` prints its answer and exits ({name} is not a dashboard): serve "
                              "`rhtui serve` (a session), `rhtui serve --demo` or `rhtui serve watch`, and run "
                              f"`rhtui {name}` in a terminal.")
            with command.make_context(name, sub_args, parent=root):
                return name, None
    except typer.Exit:
        return None, (f"`{what}` prints and exits (--help or --version): there is no dashboard to serve. "
                      "Run it in a terminal.")
    except typer.TyperException as exc:  # a usage error: an unknown option or command, a bad value
        where = getattr(getattr(exc, "ctx", None), "command_path", None) or "rhtui"
        return None, f"`{what}` is not a valid rhtui command: {exc.format_message()} (see {where} --help)"

