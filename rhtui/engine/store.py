"""The one place that touches SQLite: sessions, cycles, runs, hardware samples, events, controls.

One database holds every session, so what the scheduler learns carries from one
session to the next. The store owns one long-lived aiosqlite connection in
autocommit mode; every multi-statement write is an explicit `BEGIN IMMEDIATE`
transaction serialised by an asyncio lock. WAL lets `rhtui watch` (another
process) read while the engine writes, and push keys through `controls`.

The schema version lives in `PRAGMA user_version`, apart from the package
version; `MIGRATIONS` is the ordered history, step k taking the schema from
version k-1 to k, each step in its own transaction. A step, once released, is
never edited: a change is a new step.

Opening never harms a file it does not understand: a file that is not SQLite,
a damaged one (`PRAGMA quick_check`), someone else's database or one written
by a newer rhtui is inspected through a read-only connection and refused with
a `StoreError` that says what to do; its bytes are left exactly as they were.
A database whose version is current but lacks a table, index or column of the
schema (a table dropped by hand, a development build) is repaired at open.

A full disk (SQLITE_FULL, ENOSPC) raises `StoreFull` from any write, naming the
directory: the engine stops the session on it instead of failing at random.
`report`, `export` and `watch` open with `mode="auto"`: a database on read-only
media (or in a directory this user cannot write) is read through a read-only
connection, `immutable` when not even -wal/-shm files could be made next to it.
A data directory rhtui creates is private (0700), and so is a new database file
(0600), whatever the umask: proposals are private, and `controls` steers the engine.
"""

from __future__ import annotations

import asyncio
import errno
import json
import os
import re
import sqlite3
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, Literal, NamedTuple

import aiosqlite

from rhtui.engine.hardware import HardwareSnapshot
from rhtui.engine.records import (
    RUN_KINDS,
    RUN_STATUSES,
    CycleSummary,
    RunRecord,
    SessionInfo,
    StudentAnalysis,
    StudentStats,
    TimelinePoint,
)

SCHEMA_VERSION = 5
"""The schema this program writes: len(MIGRATIONS)."""
MIN_READ_VERSION = 3
"""The oldest schema a reader (`report`, `export`, `watch`) reads as it is, through a read-only
connection: the columns later steps added are supplied, with their defaults, by temporary views
(`_older_schema_views`)."""
APPLICATION_ID = 0x72687475
"""`PRAGMA application_id` of an rhtui database ('rhtu')."""
FAILURE_STATUSES: tuple[str, ...] = ("timeout", "error", "aborted", "emergency")
MIN_SQLITE = (3, 35, 0)
"""Window functions (3.25) and UPDATE ... RETURNING (3.35)."""
_HEADER = b"SQLite format 3\x00"
_MOVE_ASIDE = "rhtui left it untouched: move it aside, or point rhtui at another place with --data-dir"

MIGRATIONS: tuple[tuple[str, ...], ...] = (
    # v1: the core tables of the first release.
    (
        """CREATE TABLE sessions (
            id INTEGER PRIMARY KEY, name TEXT NOT NULL, started_at REAL NOT NULL,
            ended_at REAL, end_reason TEXT NOT NULL DEFAULT '', meta TEXT NOT NULL DEFAULT '{}')""",
        """CREATE TABLE cycles (
            id INTEGER PRIMARY KEY,
            session_id INTEGER NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
            n INTEGER NOT NULL, started_at REAL NOT NULL, ended_at REAL,
            completed INTEGER NOT NULL DEFAULT 0, skipped INTEGER NOT NULL DEFAULT 0,
            tokens INTEGER NOT NULL DEFAULT 0, seconds REAL NOT NULL DEFAULT 0)""",
        """CREATE TABLE student_runs (
            id INTEGER PRIMARY KEY,
            session_id INTEGER NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
            cycle INTEGER NOT NULL, student TEXT NOT NULL, model TEXT NOT NULL,
            status TEXT NOT NULL
                CHECK (status IN ('ok', 'timeout', 'error', 'skipped', 'aborted', 'emergency')),
            started_at REAL NOT NULL, ended_at REAL NOT NULL, reason TEXT NOT NULL DEFAULT '',
            load_s REAL, prompt_s REAL, eval_s REAL, total_s REAL, wall_s REAL,
            prompt_tokens INTEGER, tokens INTEGER, tok_per_s REAL, vram_mb REAL, vram_peak_mb REAL,
            proposal TEXT NOT NULL DEFAULT '', error TEXT NOT NULL DEFAULT '')""",
        """CREATE TABLE hardware_snapshots (
            ts REAL NOT NULL,
            session_id INTEGER REFERENCES sessions(id) ON DELETE SET NULL,
            vram_used_mb REAL, vram_total_mb REAL, gpu_util_pct REAL, temp_c REAL, power_w REAL,
            ram_used_mb REAL, ram_total_mb REAL, cpu_pct REAL, source TEXT NOT NULL)""",
        """CREATE TABLE events (
            id INTEGER PRIMARY KEY,
            session_id INTEGER REFERENCES sessions(id) ON DELETE CASCADE,
            ts REAL NOT NULL, kind TEXT NOT NULL, level TEXT NOT NULL,
            message TEXT NOT NULL DEFAULT '', data TEXT)""",
        "CREATE INDEX cycles_session ON cycles(session_id, n)",
        "CREATE INDEX student_runs_session ON student_runs(session_id, started_at)",
        "CREATE INDEX events_session ON events(session_id, id)",
    ),
    # v2: the NVML cross-checks per run, and timestamp indexes for timelines and retention.
    (
        "ALTER TABLE student_runs ADD COLUMN vram_delta_mb REAL",
        "ALTER TABLE student_runs ADD COLUMN energy_j REAL",
        "CREATE INDEX hardware_snapshots_ts ON hardware_snapshots(ts)",
        "CREATE INDEX hardware_snapshots_session_ts ON hardware_snapshots(session_id, ts)",
        "CREATE INDEX student_runs_student ON student_runs(student, started_at, status)",
        "CREATE INDEX events_ts ON events(ts)",
        "CREATE INDEX sessions_name ON sessions(name, started_at)",
    ),
    # v3: controls, so that `rhtui watch` in another process can steer the engine.
    (
        """CREATE TABLE controls (
            id INTEGER PRIMARY KEY,
            session_id INTEGER NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
            ts REAL NOT NULL, command TEXT NOT NULL, arg TEXT, taken_at REAL)""",
        "CREATE INDEX controls_pending ON controls(session_id, taken_at, id)",
    ),
    # v4: the original system's column names, so that its analysis queries run as written (README,
    # "Analysing the database"). Generated (VIRTUAL: computed when read, nothing stored):
    # student_runs.time_seconds = total_s (Ollama's total_duration: load, prompt and generation),
    # student_runs.vram_used_mb = vram_mb (the model's resident VRAM), and on hardware_snapshots
    # timestamp = ts as ISO 8601 UTC text ('2025-01-31T14:05:09.250Z', which sorts as time does),
    # vram_used = vram_used_mb and vram_total = vram_total_mb (the card's, MB).
    (
        "ALTER TABLE student_runs ADD COLUMN time_seconds REAL GENERATED ALWAYS AS (total_s) VIRTUAL",
        "ALTER TABLE student_runs ADD COLUMN vram_used_mb REAL GENERATED ALWAYS AS (vram_mb) VIRTUAL",
        "ALTER TABLE hardware_snapshots ADD COLUMN timestamp TEXT "
        "GENERATED ALWAYS AS (strftime('%Y-%m-%dT%H:%M:%fZ', ts, 'unixepoch')) VIRTUAL",
        "ALTER TABLE hardware_snapshots ADD COLUMN vram_used REAL GENERATED ALWAYS AS (vram_used_mb) VIRTUAL",
        "ALTER TABLE hardware_snapshots ADD COLUMN vram_total REAL GENERATED ALWAYS AS (vram_total_mb) VIRTUAL",
    ),
    # v5: research rounds. Each run's kind and provenance (what was asked, with which system prompt and
    # context, on which model digest, options and Ollama), the verifier's verdict and the judges' scores;
    # each cycle's question. JSON in context_ids, options, verifier and scores. Indexes for a round's
    # runs, the training export and the per-student quality figures (covering: no prose is read).
    (
        "ALTER TABLE student_runs ADD COLUMN kind TEXT NOT NULL DEFAULT 'proposal'",
        "ALTER TABLE student_runs ADD COLUMN question TEXT",
        "ALTER TABLE student_runs ADD COLUMN system TEXT",
        "ALTER TABLE student_runs ADD COLUMN prompt TEXT",
        "ALTER TABLE student_runs ADD COLUMN context_ids TEXT",
        "ALTER TABLE student_runs ADD COLUMN target_id INTEGER",
        "ALTER TABLE student_runs ADD COLUMN digest TEXT",
        "ALTER TABLE student_runs ADD COLUMN options TEXT",
        "ALTER TABLE student_runs ADD COLUMN ollama_version TEXT",
        "ALTER TABLE student_runs ADD COLUMN done_reason TEXT",
        "ALTER TABLE student_runs ADD COLUMN verifier TEXT",
        "ALTER TABLE student_runs ADD COLUMN scores TEXT",
        "ALTER TABLE student_runs ADD COLUMN score REAL",
        "ALTER TABLE cycles ADD COLUMN question TEXT",
        "ALTER TABLE cycles ADD COLUMN kind TEXT NOT NULL DEFAULT 'cycle'",
        "CREATE INDEX student_runs_round ON student_runs(session_id, cycle, kind)",
        "CREATE INDEX student_runs_export ON student_runs(kind, status, score)",
        "CREATE INDEX student_runs_quality "
        "ON student_runs(student, kind, status, score, total_s, verifier, session_id)",
    ),
)
assert len(MIGRATIONS) == SCHEMA_VERSION

_RUN_COLUMNS = tuple(f.name for f in fields(RunRecord) if f.name != "id")
_RUN_SELECT = ", ".join((*_RUN_COLUMNS, "id"))
_RUN_SELECT_NO_TEXT = ", ".join(f"'' AS {c}" if c in ("proposal", "prompt") else c for c in (*_RUN_COLUMNS, "id"))
"""The run columns without the answer and the prompt (megabytes of prose nobody reads in a profile)."""
_JSON_RUN_COLUMNS = frozenset({"context_ids", "options", "verifier", "scores"})
_EMPTY_TEXT_RUN_COLUMNS = frozenset({"question", "prompt"})
"""Text columns a row written before v5 holds as NULL, read as "" (RunRecord's default)."""
EXPORT_KINDS: tuple[str, ...] = ("proposal", "critique", "synthesis")
"""The kinds of run whose text is an answer to train on; a judge's JSON never is."""
_SNAPSHOT_COLUMNS = (
    "ts", "session_id", "vram_used_mb", "vram_total_mb", "gpu_util_pct", "temp_c", "power_w",
    "ram_used_mb", "ram_total_mb", "cpu_pct", "source",
)
_SESSION_SELECT = "SELECT id, name, started_at, ended_at, end_reason, meta FROM sessions"


class StoreError(Exception):
    """The database cannot be used; the message names the file, what is wrong and what to do."""


class StoreFull(StoreError):
    """A write failed because the disk (or the database's size limit) is full.

    `directory` is the data dir, the place the user must free; str() says so."""

    def __init__(self, directory: str, detail: str) -> None:
        super().__init__(f"the disk holding {directory} is full ({detail})")
        self.directory = directory
        self.detail = detail


def is_disk_full(exc: BaseException) -> bool:
    """SQLite's SQLITE_FULL ("database or disk is full") or the OS's ENOSPC / EDQUOT."""
    if isinstance(exc, sqlite3.Error):
        return getattr(exc, "sqlite_errorname", "") == "SQLITE_FULL" or "database or disk is full" in str(exc)
    return isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT)


def ensure_private_dir(directory: Path) -> None:
    """Create `directory` (and its parents) if it is missing; the directory itself 0700 whatever
    the umask. An existing directory is left as it is. Raises OSError."""
    if directory.is_dir():
        return
    directory.parent.mkdir(parents=True, exist_ok=True)
    try:
        directory.mkdir(mode=0o700)
    except FileExistsError:
        return  # made meanwhile by another process: its mode is its own
    os.chmod(directory, 0o700)


def open_mode(path: Path) -> Literal["rw", "ro", "immutable"]:
    """How `mode="auto"` opens an existing database: "rw" when this user may write the file and
    its directory; "ro" when the file is read-only but SQLite can still make its -wal/-shm files
    next to it (or they are there already); "immutable" when it cannot (read-only media, a
    directory without write permission): then nothing at all is created next to the file."""
    directory = path.parent
    dir_writable = os.access(directory, os.W_OK | os.X_OK)
    if os.access(path, os.W_OK) and dir_writable:
        return "rw"
    if dir_writable:
        return "ro"
    wal = Path(f"{path}-wal")
    shm = Path(f"{path}-shm")
    # a -wal left with writes in it is read through its -shm when both are there; otherwise the
    # file alone is the database (a clean close leaves no -wal)
    if wal.exists() and wal.stat().st_size > 0 and shm.exists():
        return "ro"
    return "immutable"


def _uri(path: Path, mode: Literal["ro", "immutable"]) -> str:
    query = "mode=ro&immutable=1" if mode == "immutable" else "mode=ro"
    return f"{path.resolve().as_uri()}?{query}"


@dataclass(frozen=True, slots=True)
class StoredEvent:
    """One row of `events`, as a follower (`rhtui watch`) reads it."""

    id: int
    session_id: int | None
    ts: float
    kind: str
    level: str
    message: str
    data: dict[str, Any] | None


class StudentQuality(NamedTuple):
    """What the judges and the verifier made of one student's answers (`Store.student_quality`)."""

    mean_score: float | None
    """The mean of `score` over its ok, scored answers (proposals, critiques, syntheses; never a
    judge's own run); None when none was scored."""
    validity_rate: float | None
    """Of its answers the verifier checked, the share that passed (verifier == ()); None when none was
    checked."""
    score_per_gpu_s: float | None
    """Over its scored answers that have a duration: the mean score / the mean total_s (Ollama's
    total_duration: load, prompt and generation): score bought per second of GPU time (the judges'
    own time not counted); None without such an answer."""


class CycleQuality(NamedTuple):
    """One round of a session, as judged (`Store.cycle_quality`)."""

    cycle: int
    question: str
    """The cycle's question ("" when none was recorded)."""
    runs: list[tuple[str, str, float | None]]
    """(student, kind, score) of each ok answer of the round (no judge runs), in recorded order."""
    synthesis_score: float | None
    """The score of the round's (latest ok) synthesis; None without one, or unscored."""


async def _user_version(db: aiosqlite.Connection) -> int:
    row = await (await db.execute("PRAGMA user_version")).fetchone()
    return int(row[0]) if row is not None else 0


async def migrate(db: aiosqlite.Connection, target: int = SCHEMA_VERSION,
                  steps: Sequence[Sequence[str]] = MIGRATIONS) -> int:
    """Apply `steps[v:target]` to a connection in autocommit mode, one transaction per step.

    The version is re-read inside each step's write transaction, so two processes opening
    a new database together apply each step once. Returns the version reached.
    """
    while True:
        await db.execute("BEGIN IMMEDIATE")
        try:
            version = await _user_version(db)
            if version > len(steps):
                raise StoreError(f"schema v{version} is newer than this program knows (v{len(steps)})")
            if version >= target:
                await db.execute("COMMIT")
                return version
            if version == 0:
                await db.execute(f"PRAGMA application_id = {APPLICATION_ID}")
            for statement in steps[version]:
                await db.execute(statement)
            await db.execute(f"PRAGMA user_version = {version + 1}")
            await db.execute("COMMIT")
        except BaseException:
            if db.in_transaction:
                await db.execute("ROLLBACK")
            raise


_DDL = (
    (re.compile(r"^\s*CREATE\s+TABLE\s+(?:IF\s+NOT\s+EXISTS\s+)?(\w+)", re.I), "table"),
    (re.compile(r"^\s*CREATE\s+(?:UNIQUE\s+)?INDEX\s+(?:IF\s+NOT\s+EXISTS\s+)?(\w+)\s+ON\s+(\w+)", re.I), "index"),
    (re.compile(r"^\s*DROP\s+(?:TABLE|INDEX)\s+(?:IF\s+EXISTS\s+)?(\w+)", re.I), "drop"),
    (re.compile(r"^\s*ALTER\s+TABLE\s+(\w+)\s+ADD\s+(?:COLUMN\s+)?(\w+)", re.I), "column"),
)


def _expected_schema(steps: Sequence[Sequence[str]]) -> tuple[dict[str, str], dict[str, list[tuple[str, str]]]]:
    """What the migrations leave: {table or index: its CREATE}, {table: [(column, its ALTER)]}.

    Replayed from the statements themselves, so a later step that drops or adds something is
    followed; statements of other kinds (data fixes) change nothing here."""
    creates: dict[str, str] = {}
    columns: dict[str, list[tuple[str, str]]] = {}
    for step in steps:
        for statement in step:
            for pattern, kind in _DDL:
                m = pattern.match(statement)
                if m is None:
                    continue
                name = m.group(1).lower()
                if kind in ("table", "index"):
                    creates[name] = statement
                    if kind == "table":
                        columns[name] = []
                elif kind == "drop":
                    creates.pop(name, None)
                    columns.pop(name, None)
                else:
                    columns.setdefault(name, []).append((m.group(2).lower(), statement))
                break
    return creates, columns


async def repair(db: aiosqlite.Connection, steps: Sequence[Sequence[str]] = MIGRATIONS) -> list[str]:
    """Re-create what the schema's version promises but the file lacks (a table, an index, a column),
    in one transaction; returns what was re-created ([] when nothing was missing)."""
    creates, columns = _expected_schema(steps)

    async def missing() -> list[tuple[str, str]]:
        have = {r[0].lower() for r in await db.execute_fetchall(
            "SELECT name FROM sqlite_master WHERE type IN ('table', 'index')")}
        out: list[tuple[str, str]] = []
        for name, statement in creates.items():
            if name not in have:
                out.append((name, statement))
                if name in columns:  # a table made afresh: its later columns come with it
                    out.extend((f"{name}.{col}", alter) for col, alter in columns[name])
        for table, added in columns.items():
            if table not in have or not added:
                continue
            # table_xinfo: table_info leaves generated columns out
            cols = {r[1].lower() for r in await db.execute_fetchall(f"PRAGMA table_xinfo({table})")}
            out.extend((f"{table}.{col}", alter) for col, alter in added if col not in cols)
        return out

    if not await missing():
        return []
    await db.execute("BEGIN IMMEDIATE")
    try:
        todo = await missing()  # again inside the write lock: another process may have repaired it
        for _name, statement in todo:
            await db.execute(statement)
        await db.execute("COMMIT")
    except BaseException:
        if db.in_transaction:
            await db.execute("ROLLBACK")
        raise
    return [name for name, _statement in todo]


def _inspect(path: Path) -> None:
    """Refuse, without writing a byte, a file that rhtui must not open; return if it may."""
    if path.is_dir():
        raise StoreError(f"{path} is a directory, not a database file: give the path of a file, or use --data-dir")
    try:
        with path.open("rb") as f:
            header = f.read(100)
    except FileNotFoundError:
        return
    except OSError as exc:
        raise StoreError(f"cannot read {path}: {exc.strerror}; check its permissions, or use --data-dir") from exc
    if not header:
        return  # an empty file is an empty database
    if not header.startswith(_HEADER):
        raise StoreError(f"{path} is not a SQLite database (it does not start with the SQLite header); {_MOVE_ASIDE}")
    wal_mode = len(header) > 19 and header[18] == 2
    sidecars = any(Path(f"{path}{s}").exists() for s in ("-wal", "-shm"))
    # A read-only connection to a WAL database creates -wal/-shm files; when neither exists
    # no connection is open, so read it as immutable and create nothing next to it.
    mode = "ro&immutable=1" if wal_mode and not sidecars else "ro"
    try:
        conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode={mode}", uri=True)
        try:
            problems = [line for row in conn.execute("PRAGMA quick_check(3)") for line in row[0].splitlines()
                        if not line.startswith("*** in database")]
            app_id = conn.execute("PRAGMA application_id").fetchone()[0]
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            tables = [r[0] for r in conn.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name")]
        finally:
            conn.close()
    except sqlite3.DatabaseError as exc:
        if getattr(exc, "sqlite_errorname", "") in ("SQLITE_CORRUPT", "SQLITE_NOTADB"):
            raise StoreError(f"{path} is a damaged SQLite database ({exc}); {_MOVE_ASIDE} "
                             f"(`sqlite3 {path} .recover` may save its data)") from exc
        raise StoreError(f"cannot read {path}: {exc}; check the file and its directory, or use --data-dir") from exc
    if problems != ["ok"]:
        raise StoreError(f"{path} is a damaged SQLite database (quick_check: {'; '.join(problems[:3])}); "
                         f"{_MOVE_ASIDE} (`sqlite3 {path} .recover` may save its data)")
    if app_id != APPLICATION_ID and tables:
        shown = ", ".join(tables[:5]) + (", ..." if len(tables) > 5 else "")
        raise StoreError(f"{path} is a SQLite database, but not rhtui's (it holds tables {shown}); {_MOVE_ASIDE}")
    if app_id == APPLICATION_ID and version > SCHEMA_VERSION:
        raise StoreError(f"{path} was written by a newer rhtui (database schema v{version}; this rhtui knows "
                         f"up to v{SCHEMA_VERSION}); rhtui left it untouched: upgrade rhtui, or use --data-dir "
                         "to keep this version's data apart")


def _encode_run(run: RunRecord) -> list[Any]:
    """A RunRecord's values in `_RUN_COLUMNS` order, JSON for the structured ones (a tuple as a list;
    an unverified run's verifier, unset options and unscored scores as NULL)."""
    out: list[Any] = []
    for column in _RUN_COLUMNS:
        value = getattr(run, column)
        if column in _JSON_RUN_COLUMNS and value is not None:
            value = json.dumps(list(value) if isinstance(value, tuple) else value, default=str)
        out.append(value)
    return out


def _decode_run(names: Sequence[str], row: Sequence[Any]) -> RunRecord:
    """A RunRecord from a row of `student_runs`, matched by column name, JSON decoded; what a row of an
    older schema lacks (NULL) is read as RunRecord's default."""
    values = dict(zip(names, row, strict=True))
    for column in _JSON_RUN_COLUMNS.intersection(values):
        raw = values[column]
        decoded = json.loads(raw) if raw is not None else None
        if column == "context_ids":
            decoded = tuple(decoded or ())
        elif column == "verifier" and decoded is not None:
            decoded = tuple(decoded)
        values[column] = decoded
    for column in _EMPTY_TEXT_RUN_COLUMNS.intersection(values):
        if values[column] is None:
            values[column] = ""
    if values.get("kind", "") is None:
        values["kind"] = "proposal"
    return RunRecord(**values)


def _added_column_value(alter: str) -> str:
    """What a column added by `alter` (ALTER TABLE ... ADD COLUMN) holds in a row written before it:
    its generated expression, its DEFAULT, or NULL."""
    generated = re.search(r"\bGENERATED\s+ALWAYS\s+AS\s*\(", alter, re.I)
    if generated:
        depth, start = 1, generated.end()
        for i in range(start, len(alter)):
            depth += {"(": 1, ")": -1}.get(alter[i], 0)
            if depth == 0:
                return f"({alter[start:i]})"
    default = re.search(r"\bDEFAULT\s+('(?:[^']|'')*'|-?[\w.]+)", alter, re.I)
    return default.group(1) if default else "NULL"


async def _older_schema_views(db: aiosqlite.Connection, steps: Sequence[Sequence[str]] = MIGRATIONS) -> list[str]:
    """On a read-only connection to a database of an older schema, a TEMP VIEW per table that lacks
    columns of the current one, named as the table (the temp schema is searched first), adding each
    missing column with the value its step gives old rows. Readers then query every version alike;
    nothing is written to the file. Returns the tables so covered."""
    _creates, columns = _expected_schema(steps)
    covered = []
    for table, added in columns.items():
        have = {r[1].lower() for r in await db.execute_fetchall(f"PRAGMA main.table_xinfo({table})")}
        if not have:
            continue
        extra = [f"{_added_column_value(alter)} AS {column}" for column, alter in added if column not in have]
        if extra:
            await db.execute(f"CREATE TEMP VIEW {table} AS SELECT *, {', '.join(extra)} FROM main.{table}")
            covered.append(table)
    return covered


def _session_filter(session_id: int | None, session_name: str | None, column: str = "session_id") -> tuple[str, list]:
    """SQL condition (and its parameters) selecting one session, or every session with a name."""
    if session_id is not None:
        return f"{column} = ?", [session_id]
    if session_name is not None:
        return f"{column} IN (SELECT id FROM sessions WHERE name = ?)", [session_name]
    return "1", []


def _session(row: Sequence[Any]) -> SessionInfo:
    return SessionInfo(id=row[0], name=row[1], started_at=row[2], ended_at=row[3],
                       end_reason=row[4], meta=json.loads(row[5]) if row[5] else {})


class Store:
    """rhtui's database. Build it with `await Store.open(path)`; close it with `await close()`."""

    def __init__(self, db: aiosqlite.Connection, path: Path | str, snapshot_batch: int, *,
                 read_only: bool = False) -> None:
        self._db = db
        self.path = path
        self.snapshot_batch = max(1, snapshot_batch)
        self._pending: list[tuple] = []
        self._lock = asyncio.Lock()
        self._closed = False
        self.read_only = read_only
        """Opened read-only (the file or its directory cannot be written): every write fails."""
        self.repaired: list[str] = []
        """What the open re-created because the file lacked it (see `repair`)."""
        self.full: StoreFull | None = None
        """The first write that failed for a full disk, if one did."""
        self.dropped_samples = 0
        """Buffered hardware samples given up because the disk was full."""

    # -- opening and closing ------------------------------------------------------------

    @classmethod
    async def open(cls, path: Path | str, *, snapshot_batch: int = 500,
                   mode: Literal["rw", "auto"] = "rw") -> Store:
        """Open (creating it and its directory if need be) and migrate the database at `path`.

        `":memory:"` gives a private in-memory database. Raises `StoreError` for a file that is
        not SQLite, is damaged, belongs to another program or has a newer rhtui schema; such a
        file is only read, never written. `mode="auto"` (readers: report, export, watch) opens an
        existing file that cannot be written read-only instead (see `open_mode`); it is neither
        migrated nor repaired then.
        """
        if sqlite3.sqlite_version_info < MIN_SQLITE:
            raise StoreError(f"rhtui needs SQLite {'.'.join(map(str, MIN_SQLITE))} or newer; this Python has "
                             f"{sqlite3.sqlite_version}")
        memory = str(path) == ":memory:"
        if not memory:
            path = Path(path).expanduser()
            if mode == "auto" and path.is_file():
                how = open_mode(path)
                if how != "rw":
                    await asyncio.to_thread(_inspect, path)
                    return await cls._open_read_only(path, how, snapshot_batch)
            try:
                ensure_private_dir(path.parent)
            except OSError as exc:
                raise StoreError(f"cannot create the directory {path.parent} for the database: {exc.strerror}; "
                                 "use --data-dir to choose another place") from exc
            await asyncio.to_thread(_inspect, path)
            try:
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            except FileExistsError:
                pass
            except OSError:
                pass  # SQLite's own open below says what is wrong
            else:
                os.fchmod(fd, 0o600)  # whatever the umask; SQLite gives -wal and -shm the same mode
                os.close(fd)
        try:
            db = await aiosqlite.connect(str(path), isolation_level=None, timeout=10.0)
        except sqlite3.Error as exc:
            raise StoreError(f"cannot open the database {path}: {exc}; check the directory is writable, "
                             "or use --data-dir") from exc
        repaired: list[str] = []
        try:
            await db.execute("PRAGMA journal_mode = WAL")
            await db.execute("PRAGMA synchronous = NORMAL")
            await db.execute("PRAGMA foreign_keys = ON")
            await db.execute("PRAGMA busy_timeout = 10000")
            await migrate(db)
            repaired = await repair(db)
        except StoreError as exc:
            await db.close()
            raise StoreError(f"{path}: {exc}; upgrade rhtui, or use --data-dir") from exc
        except sqlite3.Error as exc:
            await db.close()
            if is_disk_full(exc):
                raise StoreFull(str(Path(path).parent), str(exc)) from exc
            if getattr(exc, "sqlite_errorname", "").startswith("SQLITE_READONLY"):
                raise StoreError(f"the database {path} cannot be written ({exc}): `rhtui report`, `export` and "
                                 "`watch` read it as it is, but a session needs a writable place: use --data-dir"
                                 ) from exc
            raise StoreError(f"cannot prepare the database {path}: {exc}; move it aside or use --data-dir") from exc
        except BaseException:
            await db.close()
            raise
        store = cls(db, path, snapshot_batch)
        store.repaired = repaired
        return store

    @classmethod
    async def _open_read_only(cls, path: Path, how: Literal["ro", "immutable"], snapshot_batch: int) -> Store:
        """A reader's connection to a file that cannot be written: `mode=ro` (and `immutable=1`)."""
        try:
            db = await aiosqlite.connect(_uri(path, how), uri=True, isolation_level=None, timeout=10.0)
        except sqlite3.Error as exc:
            raise StoreError(f"cannot open the database {path} read-only: {exc}; copy it to a writable place "
                             "and point --data-dir there") from exc
        try:
            await db.execute("PRAGMA busy_timeout = 10000")
            version = await _user_version(db)
        except sqlite3.Error as exc:
            await db.close()
            raise StoreError(f"cannot read the database {path} (read-only): {exc}; copy it to a writable place "
                             "and point --data-dir there") from exc
        if version < MIN_READ_VERSION:
            await db.close()
            raise StoreError(f"{path} cannot be written and was made by an older rhtui (schema v{version}, this "
                             f"one reads v{MIN_READ_VERSION} or newer): copy it to a writable place and point "
                             "--data-dir there, so that rhtui can bring it up to date")
        try:
            await _older_schema_views(db)
        except sqlite3.Error as exc:
            await db.close()
            raise StoreError(f"cannot read the database {path} (read-only, schema v{version}): {exc}; copy it to "
                             "a writable place and point --data-dir there") from exc
        return cls(db, path, snapshot_batch, read_only=True)

    async def close(self) -> None:
        """Write the buffered snapshots and close the connection. Safe to call twice.

        Never raises for a full disk: the buffered samples are given up (`dropped_samples`) and
        `full` says what happened, for the caller to tell the user."""
        if self._closed:
            return
        try:
            if not self.read_only:
                try:
                    await self.flush()
                except StoreFull:
                    self.drop_pending()
                with suppress(sqlite3.Error):
                    await self._db.execute("PRAGMA optimize")
        finally:
            self._closed = True
            await self._db.close()

    async def __aenter__(self) -> Store:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def schema_version(self) -> int:
        """The database's `PRAGMA user_version`."""
        return (await self._one("PRAGMA user_version"))[0]

    # -- helpers ------------------------------------------------------------------------

    @asynccontextmanager
    async def _write(self, transaction: bool = False) -> AsyncIterator[aiosqlite.Connection]:
        """Serialise writes on the shared connection; optionally inside one transaction.
        A full disk is raised as `StoreFull` (and remembered in `full`)."""
        async with self._lock:
            try:
                if not transaction:
                    yield self._db
                    return
                await self._db.execute("BEGIN IMMEDIATE")
                try:
                    yield self._db
                except BaseException:
                    if self._db.in_transaction:
                        await self._db.execute("ROLLBACK")
                    raise
                await self._db.execute("COMMIT")
            except (sqlite3.Error, OSError) as exc:
                if not is_disk_full(exc):
                    raise
                if self._db.in_transaction:  # a failed COMMIT leaves the transaction open
                    with suppress(sqlite3.Error):
                        await self._db.execute("ROLLBACK")
                full = StoreFull(self.directory, str(exc))
                if self.full is None:
                    self.full = full
                raise full from exc

    @property
    def directory(self) -> str:
        """Where the database lives: the data dir a full disk is reported for."""
        return "memory" if str(self.path) == ":memory:" else str(Path(self.path).parent)

    async def _insert(self, sql: str, params: Sequence[Any]) -> int:
        async with self._write() as db:
            cursor = await db.execute(sql, params)
            if cursor.lastrowid is None:  # pragma: no cover - sqlite always sets it after an INSERT
                raise StoreError(f"no row id after {sql.split('(')[0].strip()}")
            return cursor.lastrowid

    async def _one(self, sql: str, params: Sequence[Any] = ()) -> Any:
        async with self._db.execute(sql, params) as cursor:
            return await cursor.fetchone()

    async def _all(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        return list(await self._db.execute_fetchall(sql, params))

    async def _runs(self, sql: str, params: Sequence[Any] = ()) -> list[RunRecord]:
        """The rows of a query over student_runs as RunRecords, matched by column name."""
        async with self._db.execute(sql, params) as cursor:
            names = [d[0] for d in cursor.description]
            return [_decode_run(names, row) for row in await cursor.fetchall()]

    # -- sessions and cycles ------------------------------------------------------------

    async def start_session(self, name: str, started_at: float, meta: dict[str, Any] | None = None) -> int:
        """A new session row; returns its id."""
        return await self._insert("INSERT INTO sessions (name, started_at, meta) VALUES (?, ?, ?)",
                                  (name, started_at, json.dumps(meta or {}, default=str)))

    async def open_sessions(self) -> list[SessionInfo]:
        """Sessions never closed (no `ended_at`), oldest first: running, or their engine died."""
        return [_session(r) for r in await self._all(
            f"{_SESSION_SELECT} WHERE ended_at IS NULL ORDER BY started_at, id")]

    async def close_interrupted(self, session_id: int, reason: str) -> tuple[float, int, int, int]:
        """Close a session whose engine is gone, and its cycles left open, in one transaction.

        Each ends at its last sign of life (its latest event, sample, run or cycle start); a
        cycle's totals are counted from its runs. Returns (ended_at, cycles, ok runs, their tokens).
        """
        async with self._write(transaction=True) as db:
            row = await (await db.execute(
                """SELECT MAX(s.started_at,
                              COALESCE((SELECT MAX(ts) FROM events WHERE session_id = s.id), 0),
                              COALESCE((SELECT MAX(ts) FROM hardware_snapshots WHERE session_id = s.id), 0),
                              COALESCE((SELECT MAX(ended_at) FROM student_runs WHERE session_id = s.id), 0),
                              COALESCE((SELECT MAX(started_at) FROM cycles WHERE session_id = s.id), 0))
                   FROM sessions AS s WHERE s.id = ?""", (session_id,))).fetchone()
            ended = float(row[0]) if row and row[0] is not None else time.time()
            await db.execute(
                """UPDATE cycles SET ended_at = ?,
                       completed = (SELECT COUNT(*) FROM student_runs r
                                    WHERE r.session_id = cycles.session_id AND r.cycle = cycles.n AND r.status = 'ok'),
                       skipped = (SELECT COUNT(*) FROM student_runs r WHERE r.session_id = cycles.session_id
                                  AND r.cycle = cycles.n AND r.status = 'skipped'),
                       tokens = (SELECT COALESCE(SUM(tokens), 0) FROM student_runs r WHERE
                                 r.session_id = cycles.session_id AND r.cycle = cycles.n AND r.status = 'ok'),
                       seconds = MAX(0, ? - started_at)
                   WHERE session_id = ? AND ended_at IS NULL""", (ended, ended, session_id))
            await db.execute("UPDATE sessions SET ended_at = ?, end_reason = ? WHERE id = ? AND ended_at IS NULL",
                             (ended, reason, session_id))
        return (ended, *await self.session_totals(session_id))

    async def session_totals(self, session_id: int) -> tuple[int, int, int]:
        """(cycles, ok runs, their tokens) of a session, as its SessionFinished counts them."""
        row = await self._one(
            """SELECT (SELECT COUNT(*) FROM cycles WHERE session_id = ?), COUNT(*), COALESCE(SUM(tokens), 0)
               FROM student_runs WHERE session_id = ? AND status = 'ok'""", (session_id, session_id))
        return (int(row[0]), int(row[1]), int(row[2])) if row else (0, 0, 0)

    async def end_session(self, session_id: int, ended_at: float, reason: str) -> None:
        """Mark a session finished, with why (finished, stopped, emergency, error...)."""
        async with self._write() as db:
            await db.execute("UPDATE sessions SET ended_at = ?, end_reason = ? WHERE id = ?",
                             (ended_at, reason, session_id))

    async def get_session(self, session_id: int) -> SessionInfo | None:
        """One session by id, or None."""
        row = await self._one(f"{_SESSION_SELECT} WHERE id = ?", (session_id,))
        return _session(row) if row else None

    async def latest_session(self, name: str | None = None) -> SessionInfo | None:
        """The most recently started session (with that name, if given), or None."""
        where, params = ("WHERE name = ?", [name]) if name is not None else ("", [])
        row = await self._one(f"{_SESSION_SELECT} {where} ORDER BY started_at DESC, id DESC LIMIT 1", params)
        return _session(row) if row else None

    async def list_sessions(self) -> list[SessionInfo]:
        """Every session, oldest first."""
        return [_session(r) for r in await self._all(f"{_SESSION_SELECT} ORDER BY started_at, id")]

    async def start_cycle(self, session_id: int, n: int, started_at: float, *, question: str = "",
                          kind: str = "cycle") -> int:
        """A new cycle (number `n` within its session) on `question`; `kind` is "cycle" for one of
        the agenda's, "ask" for a person's own question. Returns its row id."""
        return await self._insert(
            "INSERT INTO cycles (session_id, n, started_at, question, kind) VALUES (?, ?, ?, ?, ?)",
            (session_id, n, started_at, question or None, kind))

    async def end_cycle(self, cycle_id: int, ended_at: float, completed: int, skipped: int,
                        tokens: int, seconds: float) -> None:
        """Close a cycle with its totals."""
        async with self._write() as db:
            await db.execute(
                "UPDATE cycles SET ended_at = ?, completed = ?, skipped = ?, tokens = ?, seconds = ? WHERE id = ?",
                (ended_at, completed, skipped, tokens, seconds, cycle_id))

    # -- runs ---------------------------------------------------------------------------

    async def record_run(self, run: RunRecord) -> int:
        """Store one student's turn (every RunRecord field; `run.id` is ignored); returns its id.

        `run.cycle` is the cycle's number within its session (cycles.n), not a row id.
        """
        if run.status not in RUN_STATUSES:
            raise ValueError(f"unknown run status {run.status!r}; expected one of {', '.join(RUN_STATUSES)}")
        if run.kind not in RUN_KINDS:
            raise ValueError(f"unknown run kind {run.kind!r}; expected one of {', '.join(RUN_KINDS)}")
        marks = ", ".join("?" * len(_RUN_COLUMNS))
        return await self._insert(f"INSERT INTO student_runs ({', '.join(_RUN_COLUMNS)}) VALUES ({marks})",
                                  _encode_run(run))

    async def set_score(self, run_id: int, scores: dict | None, score: float | None) -> None:
        """Record the judges' rubric and mean for a run stored earlier (the judges run after it);
        None clears them. Raises LookupError when there is no run `run_id`."""
        payload = json.dumps(scores, default=str) if scores is not None else None
        async with self._write() as db:
            cursor = await db.execute("UPDATE student_runs SET scores = ?, score = ? WHERE id = ?",
                                      (payload, score, run_id))
            if cursor.rowcount == 0:
                raise LookupError(f"no run with id {run_id} to score")

    async def round_runs(self, session_id: int, cycle: int) -> list[RunRecord]:
        """Every run of one round (cycle `cycle` of the session), whatever its kind or status, in the
        order they were recorded."""
        return await self._runs(f"SELECT {_RUN_SELECT} FROM student_runs WHERE session_id = ? AND cycle = ? "
                                "ORDER BY id", (session_id, cycle))

    async def runs(self, session_id: int | None = None, session_name: str | None = None,
                   student: str | None = None, limit: int | None = None) -> list[RunRecord]:
        """Runs, oldest first; with `limit`, the latest `limit` of them (still oldest first).

        `session_name` selects every session carrying that name; `session_id` wins if both are given.
        """
        where, params = _session_filter(session_id, session_name)
        if student is not None:
            where += " AND student = ?"
            params.append(student)
        sql = f"SELECT {_RUN_SELECT} FROM student_runs WHERE {where} ORDER BY started_at DESC, id DESC"
        if limit is not None:
            sql += " LIMIT ?"
            params.append(limit)
        return await self._runs(f"SELECT * FROM ({sql}) ORDER BY started_at, id", params)

    async def recent_runs_by_student(self, limit_per_student: int = 200, *, include_skipped: bool = False,
                                     with_text: bool = False) -> dict[str, list[RunRecord]]:
        """The latest `limit_per_student` runs of each student across all sessions, oldest first.

        What the scheduler learns its profiles from. Skipped turns cost nothing and say nothing
        about cost, so they are left out unless asked for; `proposal` and `prompt` are "" unless `with_text`
        (the scheduler needs costs, not megabytes of prose). One query: ROW_NUMBER per student
        over the covering index (student, started_at, status), then the chosen rows by id.
        """
        where = "1" if include_skipped else "status != 'skipped'"
        columns = _RUN_SELECT if with_text else _RUN_SELECT_NO_TEXT
        runs = await self._runs(
            f"""SELECT {columns} FROM student_runs WHERE id IN (
                    SELECT id FROM (
                        SELECT id, ROW_NUMBER() OVER (PARTITION BY student ORDER BY started_at DESC, id DESC) AS rn
                        FROM student_runs WHERE {where})
                    WHERE rn <= ?)
                ORDER BY student, started_at, id""",
            (limit_per_student,))
        out: dict[str, list[RunRecord]] = {}
        for run in runs:
            out.setdefault(run.student, []).append(run)
        return out

    async def get_run(self, run_id: int) -> RunRecord | None:
        """One run by its id (a follower rebuilding StudentFinished)."""
        runs = await self._runs(f"SELECT {_RUN_SELECT} FROM student_runs WHERE id = ?", (run_id,))
        return runs[0] if runs else None

    async def latest_snapshot(self, session_id: int, after_ts: float | None = None) -> HardwareSnapshot | None:
        """The newest stored hardware sample of a session (newer than `after_ts`, if given)."""
        cols = ", ".join(c for c in _SNAPSHOT_COLUMNS if c != "session_id")
        row = await self._one(
            f"SELECT {cols} FROM hardware_snapshots WHERE session_id = ? AND ts > ? ORDER BY ts DESC LIMIT 1",
            (session_id, after_ts if after_ts is not None else float("-inf")))
        if row is None:
            return None
        names = [c for c in _SNAPSHOT_COLUMNS if c != "session_id"]
        return HardwareSnapshot(**dict(zip(names, row, strict=True)))

    async def proposals(self, session_id: int | None = None, session_name: str | None = None) -> list[RunRecord]:
        """The ok runs that produced text, oldest first (every session when neither is given)."""
        where, params = _session_filter(session_id, session_name)
        return await self._runs(
            f"SELECT {_RUN_SELECT} FROM student_runs WHERE {where} AND status = 'ok' AND proposal != '' "
            "ORDER BY started_at, id", params)

    # -- hardware snapshots -------------------------------------------------------------

    async def add_snapshot(self, snapshot: HardwareSnapshot, session_id: int | None) -> None:
        """Buffer one sample; the buffer is written in one transaction when it reaches `snapshot_batch`."""
        s = snapshot
        self._pending.append((s.ts, session_id, s.vram_used_mb, s.vram_total_mb, s.gpu_util_pct, s.temp_c,
                              s.power_w, s.ram_used_mb, s.ram_total_mb, s.cpu_pct, s.source))
        if len(self._pending) >= self.snapshot_batch:
            await self.flush()

    async def flush(self) -> None:
        """Write the buffered snapshots now (kept in the buffer if the database is busy or full)."""
        if not self._pending:
            return
        rows, self._pending = self._pending, []
        marks = ", ".join("?" * len(_SNAPSHOT_COLUMNS))
        try:
            async with self._write(transaction=True) as db:
                await db.executemany(
                    f"INSERT INTO hardware_snapshots ({', '.join(_SNAPSHOT_COLUMNS)}) VALUES ({marks})", rows)
        except (sqlite3.OperationalError, StoreFull):
            self._pending[:0] = rows  # busy or locked: try again at the next flush
            raise

    def drop_pending(self) -> int:
        """Give up the buffered samples (the disk is full: the memory they hold, and the write they
        would try first, are better spent closing the session); returns how many went."""
        n = len(self._pending)
        self._pending = []
        self.dropped_samples += n
        return n

    async def purge_snapshots(self, older_than_ts: float) -> int:
        """Retention: delete samples taken before `older_than_ts`; returns how many went."""
        await self.flush()
        async with self._write() as db:
            cursor = await db.execute("DELETE FROM hardware_snapshots WHERE ts < ?", (older_than_ts,))
            return cursor.rowcount

    # -- events and controls ------------------------------------------------------------

    async def add_event(self, session_id: int | None, ts: float, kind: str, level: str, message: str,
                        data: dict[str, Any] | None = None) -> int:
        """Log one engine event; returns its id (followers read by increasing id)."""
        payload = json.dumps(data, default=str) if data is not None else None
        return await self._insert("INSERT INTO events (session_id, ts, kind, level, message, data) "
                                  "VALUES (?, ?, ?, ?, ?, ?)", (session_id, ts, kind, level, message, payload))

    async def events_since(self, session_id: int | None, after_id: int = 0, limit: int = 1000) -> list[StoredEvent]:
        """Events with id > `after_id`, in id order (every session's when `session_id` is None)."""
        where, params = _session_filter(session_id, None)
        rows = await self._all(
            f"SELECT id, session_id, ts, kind, level, message, data FROM events WHERE {where} AND id > ? "
            "ORDER BY id LIMIT ?", [*params, after_id, limit])
        return [StoredEvent(id=r[0], session_id=r[1], ts=r[2], kind=r[3], level=r[4], message=r[5],
                            data=json.loads(r[6]) if r[6] is not None else None) for r in rows]

    async def push_control(self, session_id: int, command: str, arg: str | None = None, *,
                           ts: float | None = None) -> int:
        """Queue a command (pause, resume, skip, stop...) for the engine running `session_id`."""
        return await self._insert("INSERT INTO controls (session_id, ts, command, arg) VALUES (?, ?, ?, ?)",
                                  (session_id, time.time() if ts is None else ts, command, arg))

    async def take_controls(self, session_id: int, *, now: float | None = None) -> list[tuple[int, str, str | None]]:
        """The session's untaken commands, oldest first, marked taken in the same statement.

        One UPDATE ... RETURNING, so each command is taken exactly once even when several
        connections or processes take at the same time.
        """
        async with self._write() as db:
            rows = await db.execute_fetchall(
                "UPDATE controls SET taken_at = ? WHERE session_id = ? AND taken_at IS NULL "
                "RETURNING id, command, arg", (time.time() if now is None else now, session_id))
        return sorted((int(r[0]), r[1], r[2]) for r in rows)

    async def control_taken(self, control_id: int) -> float | None:
        """When the engine took a command pushed with `push_control` (None while it waits)."""
        row = await self._one("SELECT taken_at FROM controls WHERE id = ?", (control_id,))
        return row[0] if row else None

    # -- reports ------------------------------------------------------------------------

    async def health_inputs(self, session_id: int | None = None, session_name: str | None = None
                            ) -> tuple[list[RunRecord], list[tuple[int, str, float]]]:
        """What students' health is computed from (`scheduler.health_from_runs`): the runs, oldest
        first, with their status, reason and error but no text or figures; and the releases by a
        person, as (session id, student, ts), from the stored StudentHealthChanged events."""
        where, params = _session_filter(session_id, session_name)
        runs = await self._runs(
            f"SELECT session_id, cycle, student, model, status, started_at, ended_at, reason, error, id "
            f"FROM student_runs WHERE {where} ORDER BY started_at, id", params)
        rows = await self._all(
            f"SELECT session_id, json_extract(data, '$.student'), ts FROM events WHERE {where} "
            "AND kind = 'StudentHealthChanged' AND json_extract(data, '$.released') = 1 ORDER BY id", params)
        return runs, [(int(r[0]), str(r[1]), float(r[2])) for r in rows]

    async def student_stats(self, session_name: str | None = None, session_id: int | None = None) -> list[StudentStats]:
        """Per student (by name): attempted runs, failures, and means over the ok runs.

        Over every session, or those named `session_name` (all of them), or `session_id`.

        `runs` counts every status but skipped; `failures` counts timeout, error, aborted and
        emergency. VRAM mean and p95, seconds (total_s), tokens and tok/s are over ok runs.
        p95 is nearest-rank: the ceil(0.95 n)-th smallest value (p95 of 1..100 is 95), a value
        that was actually measured. Computed in one query with ROW_NUMBER and COUNT windows.
        """
        where, params = _session_filter(session_id, session_name)
        failures = ", ".join(f"'{s}'" for s in FAILURE_STATUSES)
        rows = await self._all(
            f"""WITH base AS (SELECT student, status, vram_mb, total_s, tokens, tok_per_s
                              FROM student_runs WHERE {where}),
                agg AS (
                    SELECT student,
                           SUM(status != 'skipped') AS runs,
                           SUM(status IN ({failures})) AS failures,
                           AVG(CASE WHEN status = 'ok' THEN vram_mb END) AS vram_mean,
                           AVG(CASE WHEN status = 'ok' THEN total_s END) AS seconds_mean,
                           AVG(CASE WHEN status = 'ok' THEN tokens END) AS tokens_mean,
                           AVG(CASE WHEN status = 'ok' THEN tok_per_s END) AS tps_mean
                    FROM base GROUP BY student),
                ranked AS (
                    SELECT student, vram_mb,
                           ROW_NUMBER() OVER (PARTITION BY student ORDER BY vram_mb) AS rn,
                           COUNT(*) OVER (PARTITION BY student) AS cnt
                    FROM base WHERE status = 'ok' AND vram_mb IS NOT NULL)
            SELECT agg.student, agg.runs, agg.failures, agg.vram_mean, p95.vram_mb,
                   agg.seconds_mean, agg.tokens_mean, agg.tps_mean
            FROM agg LEFT JOIN (SELECT student, vram_mb FROM ranked WHERE rn = (cnt * 95 + 99) / 100) AS p95
                 USING (student)
            ORDER BY agg.student""",
            params)
        return [StudentStats(*r) for r in rows]

    async def student_analysis(self, session_name: str | None = None,
                               session_id: int | None = None) -> list[StudentAnalysis]:
        """Per student (by name, sorted): attempts, ok runs, skips, success rate, the p50/p95/p99 of
        total_s over the ok runs, the max of vram_peak_mb over every run, ok tokens and energy.

        Selected as `student_stats` selects. Percentiles are nearest-rank (the ceil(q n)-th smallest,
        a measured value), as `student_stats`' p95 is; one query with ROW_NUMBER and COUNT windows.
        """
        where, params = _session_filter(session_id, session_name)
        rank = "(cnt * {q} + 99) / 100"
        rows = await self._all(
            f"""WITH base AS (SELECT student, status, total_s, tokens, vram_peak_mb, energy_j
                              FROM student_runs WHERE {where}),
                agg AS (
                    SELECT student, SUM(status != 'skipped') AS attempts, SUM(status = 'ok') AS ok_runs,
                           SUM(status = 'skipped') AS skipped, MAX(vram_peak_mb) AS peak,
                           COALESCE(SUM(CASE WHEN status = 'ok' THEN tokens END), 0) AS tokens,
                           SUM(energy_j) AS energy_j, COUNT(energy_j) AS energy_runs
                    FROM base GROUP BY student),
                ranked AS (
                    SELECT student, total_s,
                           ROW_NUMBER() OVER (PARTITION BY student ORDER BY total_s) AS rn,
                           COUNT(*) OVER (PARTITION BY student) AS cnt
                    FROM base WHERE status = 'ok' AND total_s IS NOT NULL),
                pct AS (
                    SELECT student,
                           MAX(CASE WHEN rn = {rank.format(q=50)} THEN total_s END) AS p50,
                           MAX(CASE WHEN rn = {rank.format(q=95)} THEN total_s END) AS p95,
                           MAX(CASE WHEN rn = {rank.format(q=99)} THEN total_s END) AS p99
                    FROM ranked GROUP BY student)
            SELECT agg.student, agg.attempts, agg.ok_runs, agg.skipped,
                   CASE WHEN agg.attempts > 0 THEN CAST(agg.ok_runs AS REAL) / agg.attempts END,
                   pct.p50, pct.p95, pct.p99, agg.peak, agg.tokens, agg.energy_j, agg.energy_runs
            FROM agg LEFT JOIN pct USING (student)
            ORDER BY agg.student""",
            params)
        return [StudentAnalysis(*r) for r in rows]

    async def cycle_summary(self, session_name: str | None = None, session_id: int | None = None,
                            limit: int | None = None) -> list[CycleSummary]:
        """Each cycle, oldest first (with `limit`, the latest `limit` of them): when it started, how
        long it took, and its runs counted: completed, skipped, failed, ok tokens, energy."""
        where, params = _session_filter(session_id, session_name)
        cycles_where, _ = _session_filter(session_id, session_name, "c.session_id")
        failures = ", ".join(f"'{s}'" for s in FAILURE_STATUSES)
        # the runs counted per (session, cycle) first, then joined to their cycles: one pass over each table
        sql = (
            f"""WITH r AS (
                    SELECT session_id, cycle, SUM(status = 'ok') AS ok, SUM(status = 'skipped') AS skipped,
                           SUM(status IN ({failures})) AS failed,
                           COALESCE(SUM(CASE WHEN status = 'ok' THEN tokens END), 0) AS tokens,
                           SUM(energy_j) AS energy_j
                    FROM student_runs WHERE {where} GROUP BY session_id, cycle)
                SELECT c.session_id, c.n, c.started_at, CASE WHEN c.ended_at IS NOT NULL THEN c.seconds END,
                       COALESCE(r.ok, 0), COALESCE(r.skipped, 0), COALESCE(r.failed, 0), COALESCE(r.tokens, 0),
                       r.energy_j
                FROM cycles AS c LEFT JOIN r ON r.session_id = c.session_id AND r.cycle = c.n
                WHERE {cycles_where} ORDER BY c.started_at DESC, c.id DESC""")
        params = [*params, *params]
        if limit is not None:
            sql += " LIMIT ?"
            params.append(limit)
        rows = await self._all(sql, params)
        return [CycleSummary(*r) for r in reversed(rows)]

    # -- research rounds: quality and the training export -------------------------------

    async def student_quality(self, session_id: int | None = None, *,
                              session_name: str | None = None) -> dict[str, StudentQuality]:
        """Per student that has a score or a verified answer (in one session, the sessions named
        `session_name`, or all): its mean score, validity rate and score per GPU-second (see
        `StudentQuality`). One pass over the covering index student_runs_quality."""
        where, params = _session_filter(session_id, session_name)
        rows = await self._all(
            f"""SELECT student,
                       AVG(CASE WHEN status = 'ok' THEN score END),
                       COUNT(verifier), SUM(verifier = '[]'),
                       AVG(CASE WHEN status = 'ok' AND total_s IS NOT NULL THEN score END),
                       AVG(CASE WHEN status = 'ok' AND score IS NOT NULL THEN total_s END)
                FROM student_runs WHERE {where} AND kind != 'judge'
                GROUP BY student HAVING COUNT(CASE WHEN status = 'ok' THEN score END) > 0 OR COUNT(verifier) > 0
                ORDER BY student""", params)
        out = {}
        for student, mean, verified, passed, timed_mean, seconds in rows:
            per_s = timed_mean / seconds if timed_mean is not None and seconds else None
            out[student] = StudentQuality(mean, passed / verified if verified else None, per_s)
        return out

    async def cycle_quality(self, session_id: int) -> list[CycleQuality]:
        """Each cycle of a session that has a question or an answer, oldest first: its question, the
        (student, kind, score) of its ok answers, and its synthesis' score."""
        cycles = await self._all("SELECT n, question FROM cycles WHERE session_id = ? ORDER BY n, id", (session_id,))
        runs = await self._all(
            "SELECT cycle, student, kind, score, question FROM student_runs "
            "WHERE session_id = ? AND status = 'ok' AND kind != 'judge' ORDER BY cycle, id", (session_id,))
        questions: dict[int, str] = {}
        for n, question in cycles:
            questions.setdefault(n, question or "")
        answers: dict[int, list[tuple[str, str, float | None]]] = {}
        synthesis: dict[int, float | None] = {}
        for cycle, student, kind, score, question in runs:
            answers.setdefault(cycle, []).append((student, kind, score))
            if not questions.get(cycle) and question:
                questions[cycle] = question  # a cycle row without its question: the runs say what it was
            if kind == "synthesis":
                synthesis[cycle] = score
        return [CycleQuality(n, questions.get(n, ""), answers.get(n, []), synthesis.get(n))
                for n in sorted(set(questions) | set(answers)) if questions.get(n) or answers.get(n)]

    @staticmethod
    def _export_filter(session: str | int | None, kinds: Sequence[str]) -> tuple[str, list]:
        unknown = [k for k in kinds if k not in EXPORT_KINDS]
        if unknown or not kinds:
            raise ValueError(f"cannot export runs of kind {', '.join(unknown) or '(none)'}; "
                             f"choose among {', '.join(EXPORT_KINDS)}")
        if isinstance(session, int):
            where, params = _session_filter(session, None)
        else:
            where, params = _session_filter(None, session)
        where += f" AND status = 'ok' AND proposal != '' AND kind IN ({', '.join('?' * len(kinds))})"
        return where, [*params, *kinds]

    async def runs_for_export(self, session: str | int | None, kinds: Sequence[str],
                              min_score: float | None) -> list[RunRecord]:
        """The answers fit to train on, oldest first: ok runs of `kinds` (among EXPORT_KINDS) with text
        and a recorded prompt, that the verifier did not fail (passed, or never checked), scored at
        least `min_score` when it is given (an unscored run then never is). `session` is a session's
        id, a name (every session so named) or None (all)."""
        where, params = self._export_filter(session, kinds)
        where += " AND COALESCE(prompt, '') != '' AND (verifier IS NULL OR verifier = '[]')"
        if min_score is not None:
            where += " AND score >= ?"
            params.append(min_score)
        return await self._runs(f"SELECT {_RUN_SELECT} FROM student_runs WHERE {where} ORDER BY started_at, id",
                                params)

    async def export_counts(self, session: str | int | None, kinds: Sequence[str],
                            min_score: float | None) -> dict[str, int]:
        """What `runs_for_export` keeps and why it leaves the rest out, counted: `answers` (ok runs of
        `kinds` with text), of which `failed_verifier`, `no_prompt` (recorded before prompts were kept),
        `unscored` and `below_min_score` (only with `min_score`), and `kept`."""
        where, params = self._export_filter(session, kinds)
        no_prompt = "COALESCE(prompt, '') = ''"
        failed = "(verifier IS NOT NULL AND verifier != '[]')"
        usable = f"NOT {no_prompt} AND NOT {failed}"
        row = await self._one(
            f"""SELECT COUNT(*), COALESCE(SUM({failed}), 0), COALESCE(SUM({no_prompt}), 0),
                       COALESCE(SUM({usable} AND score IS NULL), 0), COALESCE(SUM({usable} AND score < ?), 0),
                       COALESCE(SUM({usable} AND (? IS NULL OR score >= ?)), 0)
                FROM student_runs WHERE {where}""", [min_score, min_score, min_score, *params])
        answers, failed_n, no_prompt_n, unscored, below, kept = (int(v) for v in row)
        if min_score is None:
            unscored = below = 0
        return {"answers": answers, "failed_verifier": failed_n, "no_prompt": no_prompt_n,
                "unscored": unscored, "below_min_score": below, "kept": kept}

    async def vram_timeline(self, session_id: int | None = None, session_name: str | None = None,
                            start_ts: float | None = None, end_ts: float | None = None,
                            max_points: int = 500) -> list[TimelinePoint]:
        """VRAM use over time, downsampled in SQL to at most `max_points` points.

        The window [start_ts or first sample, end_ts or last sample] is cut into `max_points`
        equal time buckets; each non-empty bucket gives one point: the mean sample time, the
        mean and the max VRAM used (so a spike is never averaged away) and the card's total.
        """
        if max_points < 1:
            raise ValueError("max_points must be at least 1")
        await self.flush()
        where, params = _session_filter(session_id, session_name)
        if start_ts is not None:
            where += " AND ts >= ?"
            params.append(start_ts)
        if end_ts is not None:
            where += " AND ts <= ?"
            params.append(end_ts)
        # Bounds by index look-ups (MIN/MAX), then one pass that tags each sample with its bucket.
        rows = await self._all(
            f"""WITH bounds AS (
                    SELECT COALESCE(?, (SELECT MIN(ts) FROM hardware_snapshots WHERE {where})) AS t0,
                           COALESCE(?, (SELECT MAX(ts) FROM hardware_snapshots WHERE {where})) AS t1),
                b AS (SELECT t0, MAX(t1 - t0, 1e-9) AS span FROM bounds),
                tagged AS (
                    SELECT ts, vram_used_mb AS used, vram_total_mb AS total,
                           MIN(CAST((ts - b.t0) * ? / b.span AS INTEGER), ? - 1) AS bucket
                    FROM hardware_snapshots, b WHERE {where})
            SELECT AVG(ts), AVG(used), MAX(total), MAX(used) FROM tagged GROUP BY bucket ORDER BY bucket""",
            [start_ts, *params, end_ts, *params, max_points, max_points, *params])
        return [TimelinePoint(*r) for r in rows]
