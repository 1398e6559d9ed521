"""`rhtui report` and `rhtui export`: the original system's analysis, built in."""

from __future__ import annotations

import csv
import dataclasses
import json
import time
from pathlib import Path
from typing import IO

from rich.console import Console
from rich.table import Table
from rich.text import Text

from rhtui.engine.modelfile import student_order
from rhtui.engine.records import Health, StudentStats, TimelinePoint
from rhtui.engine.sanitize import csv_cell, sanitize_tree
from rhtui.engine.scheduler import health_from_runs
from rhtui.engine.store import Store, StoreError

SPARK = " ▁▂▃▄▅▆▇█"


def _f(v: float | None, fmt: str = "{:,.1f}") -> str:
    return "—" if v is None else fmt.format(v)


async def _open_existing(db: Path, console: Console) -> Store | None:
    if not db.exists():
        console.print(Text(f"no database at {db}: no session has run yet (start one with `rhtui` or `rhtui --demo`)"))
        return None
    try:
        return await Store.open(db, mode="auto")  # on read-only media: read as it is
    except StoreError as exc:
        console.print(Text(f"rhtui: {exc}"))
        return None


def stats_rows(stats: list[StudentStats]) -> list[dict]:
    return [dataclasses.asdict(s) for s in stats]


@dataclasses.dataclass(frozen=True, slots=True)
class StudentHealth:
    """A student's health at the end of the latest session it took part in (among those asked for)."""

    session_id: int
    health: Health
    failures_in_a_row: int
    last_error: str


async def student_health(store: Store, *, session_id: int | None = None,
                         session_name: str | None = None) -> dict[str, StudentHealth]:
    """Each student's health from the stored runs (and releases by a person), as the engine held it
    when the student's latest session (of those selected) ended or as it stands now in a running one:
    healthy, degraded (1-2 failures in a row), quarantined (3 or more)."""
    runs, releases = await store.health_inputs(session_id=session_id, session_name=session_name)
    latest: dict[str, int] = {}
    for r in runs:
        latest[r.student] = max(latest.get(r.student, r.session_id), r.session_id)
    out = {}
    for student, sid in latest.items():
        mine = [r for r in runs if r.student == student and r.session_id == sid]
        released = [ts for s, name, ts in releases if s == sid and name == student]
        health, failures, last = health_from_runs(mine, released)
        out[student] = StudentHealth(sid, health, failures, last)
    return out


def with_health(rows: list[dict], health: dict[str, StudentHealth]) -> list[dict]:
    """The stats rows with each student's `health` and `failures_in_a_row`."""
    out = []
    for row in rows:
        h = health.get(row["student"])
        out.append({**row, "health": h.health if h else None, "failures_in_a_row": h.failures_in_a_row if h else None})
    return out


def sparkline(values: list[float], lo: float, hi: float) -> str:
    if hi <= lo:
        return SPARK[1] * len(values)
    return "".join(SPARK[1 + min(7, int((v - lo) / (hi - lo) * 8))] for v in values)


async def print_report(db: Path, session: str | None, fmt: str, points: int, console: Console) -> int:
    store = await _open_existing(db, console)
    if store is None:
        return 1
    try:
        stats = sorted(await store.student_stats(session), key=lambda st: student_order(st.student))
        timeline = await store.vram_timeline(session_name=session, max_points=points)
        health = await student_health(store, session_name=session)
    finally:
        await store.close()
    if not stats and not timeline:
        console.print(Text(f"no runs recorded{f' for session {session!r}' if session else ''} in {db}"))
        return 1
    if fmt == "json":
        console.print_json(json.dumps(sanitize_tree({
            "session": session,
            "students": with_health(stats_rows(stats), health),
            "vram_timeline": [dataclasses.asdict(p) for p in timeline],
        })))
        return 0
    if fmt == "csv":
        _write_csv(console.file, with_health(stats_rows(stats), health))
        console.file.write("\n")
        _write_csv(console.file, [dataclasses.asdict(p) for p in timeline])
        return 0
    _print_tables(console, session, stats, timeline, health)
    return 0


def _print_tables(
    console: Console, session: str | None, stats: list[StudentStats], timeline: list[TimelinePoint],
    health: dict[str, StudentHealth] | None = None,
) -> None:
    title = f"Per-student averages — session {session}" if session else "Per-student averages — all sessions"
    table = Table(title=title, title_justify="left")
    table.add_column("student", no_wrap=True)
    for col in ("runs", "failed", "VRAM MB", "p95 MB", "seconds", "tokens", "tok/s"):
        table.add_column(col, justify="right", no_wrap=True)
    table.add_column("health", no_wrap=True)
    for s in stats:
        h = (health or {}).get(s.student)
        table.add_row(
            Text(s.student), str(s.runs), str(s.failures), _f(s.vram_mean_mb, "{:,.0f}"), _f(s.vram_p95_mb, "{:,.0f}"),
            _f(s.seconds_mean), _f(s.tokens_mean, "{:,.0f}"), _f(s.tok_per_s_mean),
            Text(h.health if h else "—"),
        )
    console.print(table)
    used = [p.vram_used_mb for p in timeline if p.vram_used_mb is not None]
    if not used:
        return
    total = max((p.vram_total_mb or 0) for p in timeline) or max(used)
    t0, t1 = timeline[0].ts, timeline[-1].ts
    console.print(Text(
        f"\nVRAM timeline ({len(timeline)} points, {time.strftime('%Y-%m-%d %H:%M', time.localtime(t0))} → "
        f"{time.strftime('%H:%M', time.localtime(t1))}), 0 … {total:,.0f} MB:"
    ))
    console.print(Text(sparkline(used, 0.0, total)))
    console.print(Text(f"min {min(used):,.0f} MB   mean {sum(used) / len(used):,.0f} MB   max {max(used):,.0f} MB"))


def _write_csv(out: IO[str], rows: list[dict]) -> None:
    """Rows as CSV; every text cell sanitised and a formula-like one neutralised (`csv_cell`):
    error text a server sent, and model names, are untrusted."""
    if not rows:
        return
    w = csv.DictWriter(out, fieldnames=list(rows[0]))
    w.writeheader()
    w.writerows({k: csv_cell(v) for k, v in row.items()} for row in rows)


async def export_data(db: Path, what: str, session: str | None, fmt: str, out: IO[str]) -> int:
    console = Console(stderr=True, highlight=False)
    store = await _open_existing(db, console)
    if store is None:
        return 1
    try:
        if what == "timeline":
            rows = [dataclasses.asdict(p) for p in await store.vram_timeline(session_name=session, max_points=5000)]
        elif what == "proposals":
            for r in await store.proposals(session_name=session):
                out.write(json.dumps(sanitize_tree({
                    "student": r.student, "model": r.model, "session_id": r.session_id, "cycle": r.cycle,
                    "started_at": r.started_at, "tokens": r.tokens, "seconds": r.total_s, "proposal": r.proposal,
                })) + "\n")
            return 0
        else:
            rows = [
                {k: v for k, v in dataclasses.asdict(r).items() if k != "proposal"}
                for r in await store.runs(session_name=session)
            ]
    finally:
        await store.close()
    if fmt == "json":
        json.dump(sanitize_tree(rows), out, indent=2)
        out.write("\n")
    else:
        _write_csv(out, rows)
    return 0
