"""The `rhtui` command.

    rhtui                      the live dashboard against Ollama at OLLAMA_HOST
    rhtui --demo               the dashboard on the built-in simulator (no GPU, no Ollama needed)
    rhtui --headless           the same engine, events as log lines
    rhtui report / export      the analysis of past sessions
    rhtui sim                  the simulator on its own, for any Ollama client
    rhtui models …, doctor     create and check the students

Heavy modules (Textual, the simulator) are imported only by the commands that need them.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import os
import sys
from collections.abc import Coroutine
from contextlib import AsyncExitStack
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

import typer
from rich.text import Text

from rhtui import __version__
from rhtui.commands.context import (
    ConfigOption,
    DataDirOption,
    HostOption,
    ModelfilesOption,
    cli_context,
    demo_db_path,
    make_console,
    session_source,
)
from rhtui.commands.models import models_app
from rhtui.commands.serve import SERVE_CONTEXT, serve_command
from rhtui.commands.service import service_app
from rhtui.commands.students import students_app
from rhtui.engine.config import Settings, is_loopback

if TYPE_CHECKING:
    from rhtui.engine.clock import Clock
    from rhtui.engine.hardware import HardwareProbe
    from rhtui.engine.metrics import EngineMetrics
    from rhtui.engine.store import Store
    from rhtui.sim.world import SimWorld

app = typer.Typer(
    name="rhtui",
    help="Run a research ensemble of local LLM students on one GPU, with a live dashboard.",
    epilog="--config, --host, --data-dir and --modelfiles also work after a command that honours them "
    "(rhtui report --data-dir DIR); there they win over the same option given before it.",
    no_args_is_help=False,
    add_completion=False,
    rich_markup_mode=None,
    pretty_exceptions_enable=False,
)


MAX_DEMO_SPEED = 500.0
"""The fastest --demo runs: the engine's timeouts are on the simulated clock, and each attempt costs
about 6 ms of real time in overhead; from about 800x on a 2-core machine healthy proposals start to
time out (bench/results/soak.md), and those timeouts count as failures."""


def _version(value: bool) -> None:
    if value:
        print(f"rhtui {__version__}")
        raise typer.Exit()


class Policy(StrEnum):
    fair = "fair"
    efficiency = "efficiency"


@app.callback(invoke_without_command=True)
def main_callback(
    ctx: typer.Context,
    config: ConfigOption = None,
    host: HostOption = None,
    data_dir: DataDirOption = None,
    modelfiles: ModelfilesOption = None,
    demo: Annotated[
        bool, typer.Option("--demo", help="Run on the built-in simulator (a GPU + Ollama on loopback).")
    ] = False,
    headless: Annotated[
        bool, typer.Option("--headless", help="No dashboard: events as log lines (for nohup/systemd).")
    ] = False,
    duration: Annotated[
        float | None, typer.Option("--duration", help="Session length in wall-clock minutes (default 480).")
    ] = None,
    session: Annotated[str | None, typer.Option("--session", help="Session name (default rh_main).")] = None,
    policy: Annotated[Policy | None, typer.Option("--policy", help="Student order: fair or efficiency.")] = None,
    max_cycles: Annotated[int | None, typer.Option("--max-cycles", help="Stop after this many cycles.")] = None,
    timeout: Annotated[
        float | None, typer.Option("--timeout", help="Seconds per proposal before it is cancelled (default 60).")
    ] = None,
    scenario: Annotated[
        str,
        typer.Option("--scenario", help="Simulator scenario for --demo (rtx4070s, rtx4070s-hostile, or a TOML path)."),
    ] = "rtx4070s",
    speed: Annotated[
        float,
        typer.Option("--speed", help=f"Simulator speed factor for --demo (20: twenty times real time; "
                     f"at most {MAX_DEMO_SPEED:g}).", min=0.01),
    ] = 1.0,
    seed: Annotated[int, typer.Option("--seed", help="Simulator seed for --demo.")] = 0,
    questions: Annotated[
        Path | None,
        typer.Option("--questions", help="The research agenda: a .toml in the shipped bank's format "
                     "(prompts = [...]) or a .txt/.md file with one question per line (default: the shipped "
                     "Riemann Hypothesis bank).", dir_okay=False),
    ] = None,
    no_preload: Annotated[
        bool, typer.Option("--no-preload", help="One student on the card at a time: never load the next "
                           "while the current one writes (session.preload = false).")
    ] = False,
    metrics_port: Annotated[
        int | None,
        typer.Option("--metrics-port", help="Serve Prometheus metrics at http://127.0.0.1:PORT/metrics while the "
                     "engine runs (metrics.host to listen elsewhere).", min=0, max=65535),
    ] = None,
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version.")
    ] = False,
) -> None:
    """Without a command: run a session (the dashboard, or log lines with --headless)."""
    overrides: dict[str, Any] = {
        "session": {
            "duration_min": duration,
            "name": session,
            "policy": policy.value if policy else None,
            "max_cycles": max_cycles,
            "questions": questions,
            "preload": False if no_preload else None,
        },
        "budget": {"timeout_s": timeout},
        "metrics": {"port": metrics_port},
    }
    obj = cli_context(ctx)  # --config, --host, --data-dir, --modelfiles are in it already
    obj.overrides = overrides
    obj.session = session
    obj.demo = demo
    obj.run_options = RunOptions(demo=demo, headless=headless, scenario=scenario, speed=speed, seed=seed)
    if demo and speed > MAX_DEMO_SPEED:
        make_console(stderr=True).print(Text(
            f"rhtui: --speed {speed:g} is above {MAX_DEMO_SPEED:g}: the engine's timeouts and waits run on the "
            f"simulated clock, so at {speed:g}x a 60 s proposal timeout is {60_000 / speed:.0f} ms of real time, "
            "less than an HTTP round trip may take, and healthy runs would be recorded as timeouts. "
            f"Use --speed {MAX_DEMO_SPEED:g} or less."
        ))
        raise typer.Exit(2)
    if ctx.invoked_subcommand is not None:
        return
    settings = obj.settings()
    raise typer.Exit(asyncio.run(_run_session(settings, obj.run_options)))


@dataclass(frozen=True)
class RunOptions:
    demo: bool
    headless: bool
    scenario: str = "rtx4070s"
    speed: float = 1.0
    seed: int = 0
    ask: tuple[str, str] | None = None
    """`rhtui ask`: (question, tier): one round on it, then the synthesis printed."""
    json_out: bool = False


async def _run_session(settings: Settings, run: RunOptions) -> int:
    from rhtui.engine.backend import READ_EVERY_S, BackendUnreachable, OllamaBackend
    from rhtui.engine.clock import ScaledClock, SystemClock
    from rhtui.engine.ensemble.agenda import AgendaError, load_questions
    from rhtui.engine.hardware import open_best_probe
    from rhtui.engine.lock import EngineBusy, EngineLock, LockError, reconcile
    from rhtui.engine.store import Store, StoreError

    err = make_console(stderr=True)
    try:  # a bad --questions file is said before anything starts
        load_questions(settings.session.questions)
    except AgendaError as exc:
        err.print(Text(f"rhtui: {exc}"))
        return 2
    clock: Clock
    probe: HardwareProbe
    async with AsyncExitStack() as stack:
        # one engine per database and per Ollama host (the demo's simulator is its own host)
        lock_db = demo_db_path(settings) if run.demo else settings.db_path
        lock = EngineLock(lock_db, None if run.demo else settings.ollama_host, session=settings.session.name,
                          watch_hint=f"rhtui watch{' --demo' if run.demo else ''} --data-dir {settings.data_dir}")
        try:
            taken_over = await asyncio.to_thread(lock.acquire)
        except EngineBusy as exc:
            err.print(Text(f"rhtui: {exc}"))
            return exc.exit_code
        except LockError as exc:
            err.print(Text(f"rhtui: {exc}"))
            return 1
        stack.callback(lock.release)
        metrics = await _start_metrics(stack, settings, err)
        if metrics is False:
            return 2  # could not listen (said)
        for gone in taken_over:
            if gone.pid is not None and gone.pid != os.getpid():
                err.print(Text(f"rhtui: the lock left by an engine that is gone ({gone.describe()}) was taken over"),
                          style="dim")
        if run.demo:
            from rhtui.sim.probe import SimProbe
            from rhtui.sim.scenario import ScenarioError

            clock = ScaledClock(run.speed)
            try:
                world, url = await start_simulator(stack, run.scenario, clock, run.seed, settings)
            except ScenarioError as exc:
                err.print(Text(f"rhtui: {exc}"))
                return 2
            settings = settings.model_copy(update={"ollama_host": url})
            probe = SimProbe(world)
            db_path = demo_db_path(settings)
        else:
            clock = SystemClock()
            probe = await open_best_probe(clock.now, settings.gpu_index)
            db_path = settings.db_path
        stack.push_async_callback(probe.close)
        # the stream is read at most every READ_EVERY_S of the engine's clock: on the simulator at 20x,
        # a twentieth of it (else each answer would end two simulated seconds late)
        backend = OllamaBackend(settings.ollama_host, read_every_s=READ_EVERY_S / clock.speed)
        stack.push_async_callback(backend.close)
        try:
            store = await Store.open(db_path)
        except StoreError as exc:
            err.print(Text(f"rhtui: {exc}"))
            return 1
        stack.push_async_callback(store.close)
        if store.repaired:
            err.print(Text(f"rhtui: {db_path} lacked {', '.join(store.repaired)}: re-created"), style="dim")
        try:
            # holding the lock: a session still open here has no engine any more
            for line in await reconcile(store):
                err.print(Text(f"rhtui: {line}"), style="dim")
            await store.purge_snapshots(clock.now() - settings.snapshot_retention_days * 86400)
        except StoreError as exc:
            err.print(Text(f"rhtui: {exc}; nothing was started. Free some space, or use another --data-dir"
                           if store.full else f"rhtui: {exc}"))
            return 1

        if run.ask is not None:
            from rhtui.commands.ask import run_ask

            code = await run_ask(settings, backend, probe, store, clock, run.ask, json_out=run.json_out,
                                 on_event=lock.on_event)
            return await _after_session(store, None, code, err)
        if run.headless:
            from rhtui.commands.headless import run_headless
            from rhtui.engine.orchestrator import Orchestrator

            orch = Orchestrator(settings, backend, probe, store, clock, retry_backend=False)
            orch.bus.subscribe(lock.on_event)
            if metrics:
                orch.bus.subscribe(metrics)
            try:
                code = await run_headless(orch, make_console())
            except BackendUnreachable as exc:
                err.print(Text(f"rhtui: {exc}"))
                return 1
            return await _after_session(store, orch, code, err)

        from rhtui.tui.app import make_app

        tui = make_app(settings, backend, probe, store, clock)
        tui.bus.subscribe(lock.on_event)
        if metrics:
            tui.bus.subscribe(metrics)
        await tui.run_async()
        return await _after_session(store, tui.orchestrator, int(tui.return_code or 0), err)
    return 0


async def _start_metrics(
    stack: AsyncExitStack, settings: Settings, err: Any
) -> EngineMetrics | None | Literal[False]:
    """With metrics.port set: serve /metrics until the engine stops; the listener to subscribe to the
    engine's bus (None without metrics.port, False when it could not listen: said, exit 2)."""
    if settings.metrics.port is None:
        return None
    from rhtui.engine.metrics import MetricsServerError, start_metrics

    try:
        metrics, server = await start_metrics(settings.metrics.host, settings.metrics.port)
    except MetricsServerError as exc:
        err.print(Text(f"rhtui: {exc}"))
        return False
    stack.push_async_callback(server.stop)
    err.print(Text(f"rhtui: Prometheus metrics at {server.url}"), style="dim")
    return metrics


async def _after_session(store: Store, orchestrator: Any, code: int, err: Any) -> int:
    """Close the database; if the disk filled up, say so (where, what was kept, what to do) and exit 1."""
    await store.close()
    full = getattr(orchestrator, "store_full", None) or store.full
    if full is None:
        return code
    msg = f"rhtui: {full}: the session was stopped. Everything saved before is kept in {store.path}."
    end_error = getattr(orchestrator, "end_error", None)
    if end_error:
        msg += (f" Even marking the session stopped failed ({end_error}): it reads as running until rhtui next "
                "starts on this data dir, which closes it as interrupted.")
    elif getattr(orchestrator, "session_id", None) is not None:
        msg += f" The session is closed with the reason \"the disk holding {full.directory} is full\"."
    if store.dropped_samples:
        n = store.dropped_samples
        msg += f" {n} hardware sample{'s' if n != 1 else ''} not yet written {'were' if n != 1 else 'was'} given up."
    msg += " Free some space on that disk (or move the data with --data-dir), then start again."
    err.print(Text(msg))
    return 1


async def start_simulator(
    stack: AsyncExitStack, scenario: str, clock: Clock, seed: int, settings: Settings
) -> tuple[SimWorld, str]:
    """Start the simulator on a loopback port for --demo; the students carry their Modelfiles."""
    from rhtui.sim.scenario import load_scenario
    from rhtui.sim.server import SimServer
    from rhtui.sim.world import SimWorld

    world = SimWorld(load_scenario(scenario), clock, seed=seed)
    _create_students_in(world, settings)
    server = SimServer(world, host="127.0.0.1", port=0)
    url = await server.start()
    stack.push_async_callback(server.stop)
    return world, url


def _create_students_in(world: SimWorld, settings: Settings) -> None:
    """Give the simulated students the system prompts and parameters of their Modelfiles."""
    from rhtui.engine.modelfile import ModelfileError, parse_modelfile, to_create_request
    from rhtui.sim.errors import SimError

    for spec in settings.students:
        if spec.modelfile is None:
            continue
        try:
            mf = parse_modelfile(spec.modelfile.read_text(encoding="utf-8"), spec.modelfile)
            request = to_create_request(mf)
        except (OSError, ModelfileError):
            continue  # `rhtui models verify` reports it; the demo still runs
        if "from_" not in request:
            continue  # FROM a local weights file: the simulated student keeps the scenario's model
        fields = {k: v for k, v in request.items() if k in _SIM_CREATE_FIELDS}
        try:
            world.create_model(spec.tag, **fields)
        except SimError:
            continue  # e.g. a base the scenario does not know: the scenario's student stays


_SIM_CREATE_FIELDS = frozenset({"from_", "system", "parameters", "template", "license", "messages"})
"""What the simulated world's create takes; RENDERER, PARSER, REQUIRES and files only matter to a real Ollama."""


# -- sim -----------------------------------------------------------------------------------


@app.command()
def sim(
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 11434,
    bind: Annotated[str, typer.Option("--bind", help="Loopback address to listen on.")] = "127.0.0.1",
    scenario: Annotated[str, typer.Option(help="Scenario name or TOML path.")] = "rtx4070s",
    speed: Annotated[float, typer.Option(help="Speed factor.", min=0.01)] = 1.0,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
    allow_remote: Annotated[
        bool, typer.Option("--allow-remote", help="Allow a --bind address other machines can reach.")
    ] = False,
) -> None:
    """Serve the simulator (a GPU + Ollama's HTTP API) so any Ollama client can talk to it."""
    from rhtui.sim.scenario import ScenarioError
    from rhtui.sim.server import serve

    if not allow_remote and not is_loopback(bind):
        make_console(stderr=True).print(Text(
            f"rhtui: --bind {bind} is not a loopback address: any machine that reaches it could drive the "
            "simulator, which has no authentication (it serves Ollama's API, create and delete included). "
            "Use 127.0.0.1, ::1 or localhost, or add --allow-remote if that is what you want."
        ))
        raise typer.Exit(2)

    try:
        asyncio.run(serve(scenario=scenario, host=bind.strip().strip("[]"), port=port, speed=speed, seed=seed))
    except ScenarioError as exc:
        make_console(stderr=True).print(Text(f"rhtui: {exc}"))
        raise typer.Exit(2) from None
    except OSError as exc:
        make_console(stderr=True).print(Text(f"rhtui: cannot listen on {bind}:{port}: {exc.strerror or exc}"))
        raise typer.Exit(1) from None
    except KeyboardInterrupt:
        pass


def _output_failed(exc: OSError) -> int:
    """Writing to standard output failed (a full disk, /dev/full, the reader gone): say so, not a
    traceback, and point stdout at /dev/null so that Python's own flush at exit does not fail again."""
    where = "standard output"
    with contextlib.suppress(OSError, ValueError):
        target = os.readlink(f"/proc/self/fd/{sys.stdout.fileno()}")
        where = f"standard output ({target})" if target.startswith("/") else where
    with contextlib.suppress(OSError, ValueError):
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    if isinstance(exc, BrokenPipeError):
        return 1  # the reader went away (`| head`): nothing to tell it
    make_console(stderr=True).print(Text(
        f"rhtui: could not write to {where}: {exc.strerror or exc}; the output is incomplete. "
        "Nothing in the database was changed: free some space, or write somewhere else (> FILE)."
    ))
    return 1


_OUTPUT_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EIO, errno.EPIPE})


def _to_stdout(work: Coroutine[Any, Any, int]) -> int:
    """Run `work`, which writes to standard output, and flush that: its exit code, or 1 when
    writing failed for want of room or of a reader (said plainly, see `_output_failed`)."""
    try:
        code = asyncio.run(work)
        sys.stdout.flush()
    except OSError as exc:
        if exc.errno not in _OUTPUT_ERRNOS:
            raise
        code = _output_failed(exc)
    return code


# -- watch ---------------------------------------------------------------------------------


@app.command()
def watch(
    ctx: typer.Context,
    session: Annotated[str | None, typer.Option(help="Session name (default: the latest session).")] = None,
    demo: Annotated[bool, typer.Option("--demo", help="Watch a session of the simulator's database.")] = False,
    data_dir: DataDirOption = None,
    config: ConfigOption = None,
) -> None:
    """Open the dashboard on a session another rhtui process is running; its keys reach that
    process through the database."""
    settings, db, session = session_source(ctx, session, demo)
    raise typer.Exit(asyncio.run(_watch(settings, db, session)))


async def _watch(settings: Settings, db: Path, session: str | None) -> int:
    from rhtui.commands.report import open_existing
    from rhtui.engine.clock import SystemClock
    from rhtui.engine.lock import db_lock_path
    from rhtui.engine.watch import STALE_AFTER_S, NoSession, WatchedSession
    from rhtui.tui.app import make_app

    err = make_console(stderr=True)
    store = await open_existing(db, err, f"rhtui: no database at {db}: no session has run yet")
    if store is None:
        return 1
    try:
        clock = SystemClock()
        remote = WatchedSession(store, clock, session_name=session, lock_path=db_lock_path(db),
                                stale_after_s=max(STALE_AFTER_S, 5 * settings.sample_interval_s))
        try:
            await remote.find_session()
        except NoSession as exc:
            err.print(Text(f"rhtui: {exc} ({db})"))
            return 1
        tui = make_app(settings, None, None, store, clock, orchestrator=remote)
        await tui.run_async()
        return int(tui.return_code or 0)
    finally:
        await store.close()


# -- report / export -----------------------------------------------------------------------


class Format(StrEnum):
    table = "table"
    csv = "csv"
    json = "json"


@app.command()
def report(
    ctx: typer.Context,
    session: Annotated[str | None, typer.Option(help="Session name (default: all sessions).")] = None,
    fmt: Annotated[Format, typer.Option("--format", help="table, csv or json.")] = Format.table,
    points: Annotated[int, typer.Option(help="VRAM timeline points (downsampled).", min=2, max=5000)] = 48,
    demo: Annotated[bool, typer.Option("--demo", help="Report on the simulator's database.")] = False,
    data_dir: DataDirOption = None,
    config: ConfigOption = None,
) -> None:
    """Per-student averages, success, percentiles and energy; cycles; cost ([cost]); the VRAM timeline."""
    from rhtui.commands.report import print_report

    settings, db, session = session_source(ctx, session, demo)
    raise typer.Exit(_to_stdout(print_report(db, session, fmt.value, points, make_console(), cost=settings.cost)))


class ExportWhat(StrEnum):
    runs = "runs"
    proposals = "proposals"
    timeline = "timeline"
    sft = "sft"


class ExportFormat(StrEnum):
    csv = "csv"
    json = "json"
    sft = "sft"
    preference = "preference"
    table = "table"  # accepted as before: written as csv


class ExportKind(StrEnum):
    proposal = "proposal"
    critique = "critique"
    synthesis = "synthesis"
    all = "all"


@app.command()
def export(
    ctx: typer.Context,
    what: Annotated[
        ExportWhat, typer.Argument(help="runs (CSV/JSON), proposals (JSONL), timeline, or sft (training JSONL).")
    ] = ExportWhat.runs,
    session: Annotated[str | None, typer.Option(help="Session name (default: all).")] = None,
    fmt: Annotated[ExportFormat | None, typer.Option(
        "--format", help="runs, timeline: csv (default) or json; proposals are always JSONL; sft: sft (default: "
        "TRL conversational messages) or preference (chosen/rejected pairs of one round's proposals whose "
        "scores differ by 1.0 or more).")] = None,
    kind: Annotated[ExportKind, typer.Option(
        help="sft: whose answers: proposal, critique, synthesis, or all three (a judge's JSON never).")
    ] = ExportKind.proposal,
    min_score: Annotated[float | None, typer.Option(
        "--min-score", help="sft: only answers the judges scored at least this (unscored ones are left out; "
        "preference: the chosen answer's score). Without it, unscored answers are exported too. Answers that "
        "failed the verifier, and runs recorded without their prompt, are never exported.")] = None,
    output: Annotated[Path | None, typer.Option(
        "--output", "-o", help="Write to FILE (whole or not at all: a temporary file renamed) instead of stdout.",
        dir_okay=False)] = None,
    demo: Annotated[bool, typer.Option("--demo", help="Export from the simulator's database.")] = False,
    data_dir: DataDirOption = None,
    config: ConfigOption = None,
) -> None:
    """Export runs, proposals, the VRAM timeline, or training data (sft) to stdout or -o FILE."""
    from rhtui.commands.export_sft import check_export_options, run_export

    written = check_export_options(what.value, fmt.value if fmt else None, kind.value, min_score)
    _settings, db, session = session_source(ctx, session, demo)
    raise typer.Exit(_to_stdout(run_export(db, what.value, session, written, kind.value, min_score, output)))


class Tier(StrEnum):
    quick = "quick"
    standard = "standard"
    deep = "deep"


@app.command()
def ask(
    ctx: typer.Context,
    question: Annotated[str, typer.Argument(help="Your research question.")],
    tier: Annotated[Tier, typer.Option("--tier", help="quick: 2 proposers + synthesis; standard: 4 proposers "
                                       "+ critique + synthesis; deep: all proposers + critique + judge + synthesis.")]
    = Tier.standard,
    json_out: Annotated[bool, typer.Option("--json", help="Print the whole round as JSON.")] = False,
    config: ConfigOption = None,
    host: HostOption = None,
    data_dir: DataDirOption = None,
    modelfiles: ModelfilesOption = None,
) -> None:
    """Run one research round on your question and print its synthesis (Markdown on a terminal).

    It uses the same engine, budget guard and database as a session (a session of kind `ask`);
    with `rhtui --demo ask …` it runs on the built-in simulator."""
    obj = cli_context(ctx)
    if not question.strip():
        make_console(stderr=True).print(Text("rhtui ask: the question is empty"))
        raise typer.Exit(2)
    base = obj.run_options or RunOptions(demo=False, headless=True)
    if obj.session is None:
        obj.overrides.setdefault("session", {})["name"] = "ask"
    settings = obj.settings()
    run = RunOptions(demo=base.demo, headless=True, scenario=base.scenario, speed=base.speed, seed=base.seed,
                     ask=(question, tier.value), json_out=json_out)
    raise typer.Exit(asyncio.run(_run_session(settings, run)))


@app.command(name="doctor")
def doctor_command(
    ctx: typer.Context,
    config: ConfigOption = None,
    host: HostOption = None,
    data_dir: DataDirOption = None,
    modelfiles: ModelfilesOption = None,
) -> None:
    """Check everything rhtui needs, with the fix for each failure (exit 1 on any FAIL)."""
    from rhtui.commands.doctor import doctor

    doctor(ctx)


app.add_typer(models_app, name="models", help="Create, verify, list and remove the student models.")
app.command(name="serve", context_settings=SERVE_CONTEXT)(serve_command)
app.add_typer(service_app, name="service", help="A systemd user unit for the headless engine "
              "(`rhtui service print > ~/.config/systemd/user/rhtui.service`).")
app.add_typer(students_app, name="students", help="The students of a session and their health; release a "
              "quarantined one (`rhtui students release NAME`).")


def main() -> None:
    app()


if __name__ == "__main__":  # pragma: no cover
    main()
