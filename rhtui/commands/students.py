"""`rhtui students`: the students of a session and their health; a release from quarantine.

`list` shows each student's health — healthy, degraded (failed its last one or two tries, waits a
back-off), quarantined (three or more failures in a row: skipped, with a probe run now and then) —
computed from the stored runs as `rhtui report` does. `release NAME` asks the engine that runs the
session (a headless one under systemd, say) to release a failing student, through the database's
`controls` table, which that engine reads once a second; it is what `u` does on the student's row
in the dashboard.

Both read the session named by --session, else the running one (the latest that is not closed),
else the latest; --data-dir, --config and --demo choose the database as for `report`.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from rhtui.commands.context import ConfigOption, DataDirOption, make_console, session_source

if TYPE_CHECKING:
    from rhtui.engine.records import SessionInfo
    from rhtui.engine.store import Store

RELEASE_WAIT_S = 10.0
"""Real seconds to wait for the engine to take a release (it reads the controls once a second)."""

students_app = typer.Typer(
    name="students",
    help="The students of a session and their health; release a quarantined one.",
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode=None,
    pretty_exceptions_enable=False,
)

SessionOption = Annotated[str | None, typer.Option(
    "--session", help="Session name (default: the running session, else the latest).", show_default=False,
)]
DemoOption = Annotated[bool, typer.Option("--demo", help="The simulator's database (rhtui-demo.db).")]


def _source(ctx: typer.Context, session: str | None, demo: bool) -> tuple[Path, str | None]:
    """(database, session name): this command's --session and --demo, else the root command's."""
    _settings, db, name = session_source(ctx, session, demo)
    return db, name


@students_app.command("list")
def list_(
    ctx: typer.Context,
    session: SessionOption = None,
    demo: DemoOption = False,
    data_dir: DataDirOption = None,
    config: ConfigOption = None,
) -> None:
    """Each student of the session with its health, failures in a row and last failure."""
    db, name = _source(ctx, session, demo)
    raise typer.Exit(asyncio.run(_list(db, name, make_console())))


@students_app.command()
def release(
    ctx: typer.Context,
    student: Annotated[str, typer.Argument(help="The student to release, e.g. rh-beta.", show_default=False)],
    session: SessionOption = None,
    demo: DemoOption = False,
    data_dir: DataDirOption = None,
    config: ConfigOption = None,
) -> None:
    """Release a quarantined (failing) student in a running session: healthy again, it runs at its
    next turn. The engine running the session takes the request within a second."""
    db, name = _source(ctx, session, demo)
    raise typer.Exit(asyncio.run(_release(db, name, student, make_console(), make_console(stderr=True))))


async def _open_session(db: Path, name: str | None, err: Console, *, write: bool,
                        nothing: str = "") -> tuple[Store, SessionInfo] | None:
    """The database and the session in it (see `_session`), the caller to close the store; None when
    either is missing or unreadable (said on `err`, the missing session followed by `nothing`)."""
    from rhtui.commands.report import open_existing

    store = await open_existing(db, err, f"rhtui: no database at {db}: no session has run yet (start one with "
                                         "`rhtui` or `rhtui --headless`)", mode="rw" if write else "auto")
    if store is None:
        return None
    try:
        info = await _session(store, name)
    except BaseException:
        await store.close()
        raise
    if info is None:
        await store.close()
        err.print(Text(f"rhtui: no session{f' named {name!r}' if name else ''} in {db}{nothing}"))
        return None
    return store, info


async def _session(store: Store, name: str | None) -> SessionInfo | None:
    """The named session's latest run, else the running one (the latest not closed), else the latest."""
    if name is None:
        running = await store.open_sessions()
        if running:
            return running[-1]
    return await store.latest_session(name)


async def _students_of(store: Store, info: SessionInfo) -> list[str]:
    """The students the session started with (its SessionStarted event), else those that have runs."""
    for e in await store.events_since(info.id, 0, limit=1000):
        if e.kind == "SessionStarted" and e.data and isinstance(e.data.get("students"), list):
            return [str(s) for s in e.data["students"]]
    runs, _releases = await store.health_inputs(session_id=info.id)
    return list(dict.fromkeys(r.student for r in runs))


def _which(info: SessionInfo) -> str:
    return f"session {info.name} (#{info.id})"


def _clock(ts: float) -> str:
    return time.strftime("%H:%M:%S", time.localtime(ts))


async def _list(db: Path, name: str | None, out: Console) -> int:
    from rhtui.commands.report import student_health

    opened = await _open_session(db, name, make_console(stderr=True), write=False)
    if opened is None:
        return 1
    store, info = opened
    try:
        students = await _students_of(store, info)
        health = await student_health(store, session_id=info.id)
    finally:
        await store.close()
    state = "running" if info.ended_at is None else f"ended at {_clock(info.ended_at)}: {info.end_reason}"
    table = Table(title=f"Students of {_which(info)}, {state}", title_justify="left")
    for col in ("student", "health", "failures in a row", "last failure"):
        table.add_column(col, no_wrap=col != "last failure", justify="right" if col.startswith("failures") else "left")
    for student in students or sorted(health):
        h = health.get(student)
        table.add_row(Text(student), Text(h.health if h else "healthy"), str(h.failures_in_a_row if h else 0),
                      Text(h.last_error if h else ""))
    out.print(table)
    return 0


async def _release(db: Path, name: str | None, student: str, out: Console, err: Console) -> int:
    from rhtui.commands.report import student_health

    opened = await _open_session(db, name, err, write=True, nothing=": nothing to release")
    if opened is None:
        return 1
    store, info = opened
    try:
        students = await _students_of(store, info)
        if students and student not in students:
            err.print(Text(f"rhtui: no student {student!r} in {_which(info)}; its students: {', '.join(students)}"))
            return 2
        if info.ended_at is not None:
            err.print(Text(
                f"rhtui: {_which(info)} ended at {_clock(info.ended_at)}: {info.end_reason}. No engine runs it, "
                "so there is nothing to release; a new session starts every student healthy"))
            return 1
        h = (await student_health(store, session_id=info.id)).get(student)
        if h is None or h.health == "healthy":
            out.print(Text(f"{student} is healthy in {_which(info)}: nothing to release"))
            return 0
        control = await store.push_control(info.id, "release", student)
        deadline = time.monotonic() + RELEASE_WAIT_S
        taken = await store.control_taken(control)
        while taken is None and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
            taken = await store.control_taken(control)
    finally:
        await store.close()
    if taken is None:
        err.print(Text(
            f"rhtui: sent the release of {student} to {_which(info)}, but its engine has not taken it within "
            f"{RELEASE_WAIT_S:g} s: is it still running? (`rhtui watch --session {info.name}` shows it). "
            "The request waits in the database and is taken when the engine next reads its controls"))
        return 1
    out.print(Text(
        f"released {student} in {_which(info)}: the engine took it at {_clock(taken)}; it was {h.health} "
        f"({h.failures_in_a_row} failures in a row) and runs again at its next turn"))
    return 0
