"""`rhtui models …`: create, verify, list and remove the student models.

Every Modelfile is parsed and checked before anything is sent to Ollama, and
Ollama is reached only through `rhtui.engine.backend.OllamaBackend`. What the
server or a model says is untrusted: it is sanitised and printed as plain
`Text`, never as Rich markup.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.filesize import decimal as filesize
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    ProgressColumn,
    SpinnerColumn,
    Task,
    TaskID,
    TaskProgressColumn,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)
from rich.table import Table
from rich.text import Text

from rhtui.commands.context import (
    CliContext,
    ConfigOption,
    DataDirOption,
    HostOption,
    ModelfilesOption,
    cli_context,
    make_console,
)
from rhtui.engine.backend import (
    BackendError,
    BackendUnreachable,
    CreateProgress,
    LoadedModel,
    ModelDetails,
    ModelInfo,
    ModelMissing,
    OllamaBackend,
)
from rhtui.engine.config import Settings, StudentSpec
from rhtui.engine.modelfile import (
    Drift,
    Modelfile,
    ModelfileError,
    check_modelfiles_dir,
    compare_with_show,
    file_digest,
    from_file,
    full_tag,
    load_modelfile,
    modelfile_warnings,
    resolve_students,
    to_create_request,
    wire_request,
)
from rhtui.tui.text import one_line as sanitize_line
from rhtui.tui.text import sanitize

models_app = typer.Typer(
    name="models",
    help="Create, verify, list and remove the student models.",
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode=None,
    pretty_exceptions_enable=False,
)


# -- the students and their Modelfiles ---------------------------------------------------


@dataclass(frozen=True)
class Student:
    """A student with its Modelfile parsed (or the error that stopped it)."""

    spec: StudentSpec
    mf: Modelfile | None = None
    error: ModelfileError | None = None

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def tag(self) -> str:
        return self.spec.tag

    @property
    def base(self) -> str | None:
        """The model in Ollama this student is built FROM (None: none, or a local file)."""
        if self.mf is None or from_file(self.mf) is not None:
            return None
        return self.mf.from_


def load_students(settings: Settings, names: list[str] | None = None) -> list[Student]:
    """The selected students (all when `names` is empty), each Modelfile parsed.

    Raises `typer.BadParameter`-style exit 2 for a name that is not a student."""
    problem = check_modelfiles_dir(settings)
    if problem is not None:
        err(f"rhtui: the Modelfiles folder {problem}; check --modelfiles or the modelfiles_dir setting")
        raise typer.Exit(2)
    specs = resolve_students(settings)
    if names:
        by_name = {s.name: s for s in specs} | {s.tag: s for s in specs}
        unknown = [n for n in names if n not in by_name]
        if unknown:
            known = ", ".join(s.name for s in specs) or "none"
            err(f"rhtui: not a student: {', '.join(unknown)} (students: {known})")
            raise typer.Exit(2)
        chosen = {by_name[n].name: by_name[n] for n in names}  # each student once, in the order named
        specs = list(chosen.values())
    out = []
    for spec in specs:
        if spec.modelfile is None:
            out.append(Student(spec))
            continue
        try:
            out.append(Student(spec, load_modelfile(Path(spec.modelfile))))
        except ModelfileError as exc:
            out.append(Student(spec, error=exc))
    return out


def err(message: str) -> None:
    make_console(stderr=True).print(Text(message))


def _out() -> Console:
    return make_console()


def command_prefix(ctx: typer.Context) -> str:
    """`rhtui` with the global options that select Ollama and the Modelfiles, for the fix commands we print."""
    obj = ctx.obj if isinstance(ctx.obj, CliContext) else None
    parts = ["rhtui"]
    if obj is not None:
        if obj.config is not None:
            parts += ["--config", _shell(str(obj.config))]
        if obj.host is not None:
            parts += ["--host", _shell(obj.host)]
        if obj.modelfiles is not None:
            parts += ["--modelfiles", _shell(str(obj.modelfiles))]
    return " ".join(parts)


def _shell(s: str) -> str:
    import shlex

    return shlex.quote(s)


def _selected(ctx: typer.Context, names: list[str] | None = None) -> tuple[Settings, list[Student]]:
    """The settings and the students a `models` command works on (all when `names` is empty)."""
    settings = cli_context(ctx).settings()
    return settings, load_students(settings, names)


def drift_summary(drifts: list[Drift], limit: int = 3) -> str:
    shown = "; ".join(d.describe() for d in drifts[:limit])
    more = len(drifts) - limit
    return shown + (f"; and {more} more" if more > 0 else "")


async def model_state(backend: OllamaBackend, st: Student) -> tuple[str, list[Drift], ModelDetails | None]:
    """('missing' | 'present' | 'match' | 'drift', drifts, details) for one student in Ollama."""
    try:
        details = await backend.show(st.tag)
    except ModelMissing:
        return "missing", [], None
    if st.mf is None:
        return "present", [], details
    drifts = compare_with_show(st.mf, details.modelfile, details.parameters, details.template or None,
                               system=details.system, license=details.license or None, renderer=details.renderer,
                               parser=details.parser, requires=details.requires)
    return ("drift" if drifts else "match"), drifts, details


# -- create ----------------------------------------------------------------------------------


@models_app.command()
def create(
    ctx: typer.Context,
    names: Annotated[list[str] | None, typer.Argument(
        help="Students to create (default: all).", show_default=False,
    )] = None,
    dry_run: Annotated[bool, typer.Option(
        "--dry-run", help="Print the request each model would be created with; send nothing.",
    )] = False,
    force: Annotated[bool, typer.Option(
        "--force", help="Recreate even a model that already matches its Modelfile.",
    )] = False,
    config: ConfigOption = None,
    host: HostOption = None,
    modelfiles: ModelfilesOption = None,
) -> None:
    """Create the student models from their Modelfiles (a model that already matches is left alone)."""
    settings, students = _selected(ctx, names)
    errors = [st.error for st in students if st.error is not None]
    if errors:
        for e in errors:
            err(f"rhtui: {e}")
        err("rhtui: nothing was sent to Ollama; fix the Modelfile(s) above and run this again")
        raise typer.Exit(1)
    plan: list[tuple[Student, dict]] = []
    out = _out()
    for st in students:
        if st.mf is None:
            out.print(Text(f"{st.name}: no Modelfile (an existing Ollama model, {st.tag}); nothing to create"))
            continue
        try:
            plan.append((st, to_create_request(st.mf)))
        except ModelfileError as exc:
            err(f"rhtui: {exc}")
            err("rhtui: nothing was sent to Ollama")
            raise typer.Exit(1) from None
        for w in modelfile_warnings(st.mf):
            err(f"warning: {w}")
    if dry_run:
        for st, fields in plan:
            assert st.mf is not None
            body = wire_request(st.tag, st.mf)
            for key in ("files", "adapters", "draft_files"):
                for path in fields.get(key, {}).values():
                    out.print(Text(f"# {st.name}: POST {settings.ollama_host}/api/blobs/{file_digest(path)}  "
                                   f"(uploads {path}, {path.stat().st_size:,} bytes)"))
            out.print(Text(f"# {st.name}: POST {settings.ollama_host}/api/create  (from {st.spec.modelfile})"))
            out.print(Text(json.dumps(body, indent=2, ensure_ascii=False)))
        out.print(Text(f"# dry run: {len(plan)} request(s) shown, nothing sent to Ollama"))
        raise typer.Exit(0)
    raise typer.Exit(asyncio.run(_create_all(settings, plan, force, command_prefix(ctx))))


class _LayerColumn(ProgressColumn):
    """A column shown only on the rows of a layer being transferred (empty on a student's row)."""

    def __init__(self, inner: ProgressColumn) -> None:
        super().__init__()
        self.inner = inner

    def render(self, task: Task) -> Any:
        return self.inner.render(task) if task.fields.get("layer") else Text("")


class CreateDisplay:
    """What `rhtui models create` shows while Ollama works: a row per student with its latest
    status, and a progress bar per layer while one is transferred (Ollama pulling a missing base
    model, or a file being uploaded): bytes, percent, rate and time left. Where the output is not
    a terminal (a pipe, a log, a test), a line per status and per layer instead."""

    def __init__(self, console: Console, *, get_time: Callable[[], float] | None = None) -> None:
        self.console = console
        self.live = console.is_terminal
        self.progress = Progress(
            SpinnerColumn(),
            TextColumn("{task.description}", markup=False),
            _LayerColumn(BarColumn(bar_width=30)),
            _LayerColumn(TaskProgressColumn()),
            _LayerColumn(DownloadColumn()),
            _LayerColumn(TransferSpeedColumn()),
            _LayerColumn(TimeRemainingColumn()),
            TextColumn("{task.fields[status]}", markup=False),
            console=console,
            disable=not self.live,
            get_time=get_time,
        )
        self._rows: dict[str, TaskID] = {}
        self._layers: dict[tuple[str, str], TaskID] = {}
        self._last: dict[str, str] = {}

    def __enter__(self) -> CreateDisplay:
        self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.stop()

    def status(self, name: str, text: str, *, echo: bool = True, done: bool = False) -> None:
        """`name`'s row says `text` (with `echo`, a line of its own where the output is not a
        terminal; with `done`, its spinner stops)."""
        line = sanitize_line(text).strip()
        if name not in self._rows:
            self._rows[name] = self.progress.add_task(name, total=None, status=line)
        if done:
            self.progress.update(self._rows[name], total=1, completed=1)
        if not line or line == self._last.get(name):
            return
        self._last[name] = line
        self.progress.update(self._rows[name], status=line)
        if echo and not self.live:
            self.console.print(Text(f"{name}: {line}"))

    def part(self, name: str, part: CreateProgress) -> None:
        """One progress part of `name`'s create: a layer's bytes get a bar of their own."""
        if not (part.digest and part.total):
            self.status(name, part.status)
            return
        key = (name, part.digest)
        done = min(part.completed or 0, part.total)
        short = sanitize_line(part.digest.removeprefix("sha256:")[:12])
        what = sanitize_line(part.status).split(" ", 1)[0] or "pulling"
        if key not in self._layers:
            self._layers[key] = self.progress.add_task(f"  {what} {short}", total=part.total, completed=done,
                                                       layer=True, status="")
            self.status(name, f"{what} {short} ({filesize(part.total)})")
        task = self._layers[key]
        was = next(t.completed for t in self.progress.tasks if t.id == task)
        self.progress.update(task, completed=done)
        if done >= part.total and was < part.total and not self.live:
            self.console.print(Text(f"{name}: {what} {short}: {filesize(part.total)} done"))


async def _create_all(settings: Settings, plan: list[tuple[Student, dict]], force: bool, prefix: str) -> int:
    out = _out()
    backend = OllamaBackend(settings.ollama_host)
    results: dict[str, tuple[str, str]] = {}
    try:
        try:
            await backend.version()
        except BackendError as exc:
            err(f"rhtui: {exc}")
            return 1
        with CreateDisplay(out) as display:
            for st, fields in plan:
                display.status(st.name, "checking", echo=False)
                try:
                    results[st.name] = await _create_one(backend, st, fields, force, display)
                except BackendUnreachable as exc:
                    display.status(st.name, "Ollama went away", echo=False, done=True)
                    err(f"rhtui: {exc}")
                    return 1
                display.status(st.name, results[st.name][0], echo=False, done=True)
    finally:
        await backend.close()
    failed = False
    for st, _ in plan:
        word, detail = results[st.name]
        out.print(Text(f"{st.name}: {word}" + (f" — {sanitize_line(detail)}" if detail else "")))
        failed |= word in ("failed", "drifted")
    return 1 if failed else 0


async def _create_one(backend: OllamaBackend, st: Student, fields: dict, force: bool,
                      display: CreateDisplay) -> tuple[str, str]:
    assert st.mf is not None
    state, drifts, _ = await model_state(backend, st)
    if state == "match" and not force:
        return "unchanged", f"matches {Path(st.spec.modelfile or '').name}"
    word = {"missing": "created", "drift": "updated", "match": "recreated"}.get(state, "created")
    try:
        async for part in backend.create(st.tag, **fields):
            display.part(st.name, part)
    except ModelMissing as exc:
        return "failed", sanitize_line(str(exc))
    except BackendUnreachable:
        raise
    except BackendError as exc:
        return "failed", sanitize_line(str(exc))
    state, drifts, _ = await model_state(backend, st)
    if state != "match":
        what = "not found after create" if state == "missing" else drift_summary(drifts)
        return "drifted", f"Ollama accepted the request but reports: {what}"
    detail = f"from {st.mf.from_}"
    if word == "updated":
        detail += " (it had drifted from its Modelfile)"
    return word, detail


# -- verify ----------------------------------------------------------------------------------


@models_app.command()
def verify(
    ctx: typer.Context,
    config: ConfigOption = None,
    host: HostOption = None,
    modelfiles: ModelfilesOption = None,
) -> None:
    """Check each student's model in Ollama against its Modelfile; exit 1 if any is missing or drifted."""
    settings, students = _selected(ctx)
    raise typer.Exit(asyncio.run(_verify(settings, students, command_prefix(ctx))))


async def _verify(settings: Settings, students: list[Student], prefix: str) -> int:
    out = _out()
    backend = OllamaBackend(settings.ollama_host)
    out.print(Text(f"Students in Ollama at {settings.ollama_host}:"))
    width = max((len(st.name) for st in students), default=8)
    to_create: list[str] = []
    to_pull: list[str] = []
    edits: list[str] = []

    def row(st: Student, state: str, style: str, detail: str, more: list[str] = ()) -> None:  # type: ignore[assignment]
        line = Text(f"  {st.name:<{width}}  ")
        line.append(f"{state:<8}", style)
        line.append(f"  {sanitize_line(detail)}")
        out.print(line)
        for m in more:
            out.print(Text(f"  {'':<{width}}  {'':<8}    {sanitize_line(m)}"))

    try:
        for st in students:
            if st.error is not None:
                row(st, "error", "red", f"bad Modelfile: {st.error}")
                edits.append(str(st.error))
                continue
            try:
                state, drifts, _ = await model_state(backend, st)
            except BackendUnreachable as exc:
                err(f"rhtui: {exc}")
                return 1
            except BackendError as exc:
                row(st, "error", "red", sanitize_line(str(exc)))
                edits.append(sanitize_line(str(exc)))
                continue
            if state == "missing":
                row(st, "missing", "red", f"{st.tag} is not in Ollama")
                if st.mf:
                    to_create.append(st.name)
                else:
                    to_pull.append(st.tag)
            elif state == "drift":
                row(st, "drifted", "yellow", f"{st.tag} differs from {Path(st.spec.modelfile or '').name}:",
                    [d.describe() for d in drifts])
                to_create.append(st.name)
            elif state == "match":
                row(st, "ok", "green", f"{st.tag} matches {Path(st.spec.modelfile or '').name}")
            else:
                row(st, "present", "green", f"{st.tag} (no Modelfile to compare: brought by you)")
    finally:
        await backend.close()
    if not (to_create or to_pull or edits):
        out.print(Text(f"All {len(students)} students are present and match their Modelfiles."))
        return 0
    out.print(Text("To fix:"))
    for e in edits:
        out.print(Text(f"  {e}"))
    if to_create:
        out.print(Text(f"  {prefix} models create {' '.join(to_create)}"))
    for tag in to_pull:
        out.print(Text(f"  ollama pull {tag}"))
    return 1


# -- list ------------------------------------------------------------------------------------


@models_app.command("list")
def list_(
    ctx: typer.Context,
    config: ConfigOption = None,
    host: HostOption = None,
    modelfiles: ModelfilesOption = None,
    data_dir: DataDirOption = None,
) -> None:
    """The students: base, size on disk, loaded or not (VRAM while loaded), learned profile."""
    settings, students = _selected(ctx)
    raise typer.Exit(asyncio.run(_list(settings, students)))


async def read_profiles(db_path: Path) -> tuple[dict[str, object] | None, str]:
    """Per-student learned profile from the database (never creating one): (stats by name, note)."""
    if not db_path.exists():
        return None, "no runs yet"
    from rhtui.engine.store import Store, StoreError

    try:
        store = await Store.open(db_path)
    except StoreError as exc:
        return None, f"database not usable: {exc}"
    try:
        stats = await store.student_stats()
    finally:
        await store.close()
    if not stats:
        return {}, "no runs yet"
    return {s.student: s for s in stats}, ""


def _n(v: float | None, fmt: str) -> str:
    return "—" if v is None else format(v, fmt)


async def _list(settings: Settings, students: list[Student]) -> int:
    out = _out()
    backend = OllamaBackend(settings.ollama_host)
    models: dict[str, ModelInfo] = {}
    loaded: dict[str, LoadedModel] = {}
    problem = ""
    try:
        models = {full_tag(m.name): m for m in await backend.list_models()}
        loaded = {full_tag(m.name): m for m in await backend.ps()}
    except BackendError as exc:
        problem = sanitize_line(str(exc))
    finally:
        await backend.close()
    profiles, note = await read_profiles(settings.db_path)
    title = f"Students (Ollama at {settings.ollama_host}; learned profile from {settings.db_path.name})"
    table = Table(title=Text(title), title_justify="left", box=None, header_style="bold", pad_edge=False)
    for col, just in (("student", "left"), ("base", "left"), ("on disk", "right"), ("loaded", "right"),
                      ("runs", "right"), ("VRAM MB", "right"), ("s/run", "right"), ("tok/s", "right")):
        table.add_column(col, justify=just, no_wrap=True)  # type: ignore[arg-type]
    for st in students:
        tag = full_tag(st.tag)
        m = models.get(tag)
        lm = loaded.get(tag)
        if problem:
            size, state = "?", "?"
        else:
            size = "missing" if m is None else (f"{m.size_mb / 1024:.1f} GB" if m.size_mb else "—")
            state = ("no" if lm is None else f"{lm.vram_mb:,.0f} MB" if lm.vram_mb is not None else "yes")
        p = profiles.get(st.name) if profiles else None
        base = st.base or ("(bad Modelfile)" if st.error else "(no Modelfile)")
        name = st.name if st.tag == st.name else f"{st.name} ({st.tag})"
        if p is None:
            table.add_row(name, base, size, state, "0", "—", "—", "—")
        else:
            table.add_row(name, base, size, state, str(p.runs), _n(p.vram_mean_mb, ",.0f"),  # type: ignore[attr-defined]
                          _n(p.seconds_mean, ".1f"), _n(p.tok_per_s_mean, ".1f"))  # type: ignore[attr-defined]
    out.print(table)
    if note:
        out.print(Text(f"Learned profiles: {note} ({settings.db_path})."))
    if problem:
        err(f"rhtui: {problem}")
        return 1
    return 0


# -- rm ----------------------------------------------------------------------------------------


@models_app.command()
def rm(
    ctx: typer.Context,
    names: Annotated[list[str], typer.Argument(help="Students whose models to delete.", show_default=False)],
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
    config: ConfigOption = None,
    host: HostOption = None,
    modelfiles: ModelfilesOption = None,
) -> None:
    """Delete student models from Ollama (their Modelfiles stay; `rhtui models create` brings them back)."""
    settings, students = _selected(ctx, names)
    tags = [st.tag for st in students]
    if not yes:
        ok = typer.confirm(f"Delete {', '.join(tags)} from Ollama at {settings.ollama_host}?", default=False)
        if not ok:
            err("rhtui: nothing deleted")
            raise typer.Exit(1)
    raise typer.Exit(asyncio.run(_rm(settings, students)))


async def _rm(settings: Settings, students: list[Student]) -> int:
    out = _out()
    backend = OllamaBackend(settings.ollama_host)
    code = 0
    try:
        for st in students:
            try:
                await backend.delete(st.tag)
                out.print(Text(f"{st.name}: deleted {st.tag}"))
            except ModelMissing:
                out.print(Text(f"{st.name}: {st.tag} was not in Ollama; nothing to delete"))
            except BackendUnreachable as exc:
                err(f"rhtui: {exc}")
                return 1
            except BackendError as exc:
                err(f"rhtui: {st.name}: {sanitize(str(exc))}")
                code = 1
    finally:
        await backend.close()
    return code
