"""How fast the store writes samples and answers the queries the engine and the UI need.

    .venv/bin/python -m bench.bench_store [--reps N] [--seed S]

On a file database in a temporary directory (WAL, synchronous=NORMAL, the real
indexes), it measures:

- snapshot inserts through `add_snapshot` batched by 500 (target >= 10,000 rows/s),
  and unbatched (batch of 1) to show what batching buys;
- the 8-hour VRAM chart: 28,800 one-second samples of one session in a database
  that also holds an earlier 8-hour session, then `vram_timeline(session_id,
  max_points=500)` repeated (target < 30 ms; median and p95);
- 10,000 past runs of the six students, then `recent_runs_by_student(200)`
  (what the scheduler loads at start) and `student_stats()` (the report);
- `Store.open` on the resulting file (it runs `PRAGMA quick_check`).

Writes `bench/results/store.md`. Targets are reported, not asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import math
import os
import platform
import random
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import aiosqlite

from rhtui.engine.hardware import HardwareSnapshot
from rhtui.engine.records import RunRecord
from rhtui.engine.store import SCHEMA_VERSION, Store
from rhtui.sim.reference import MEASURED

RESULTS = Path(__file__).resolve().parent / "results" / "store.md"
COMMAND = ".venv/bin/python -m bench.bench_store"
TOTAL_MB = 12282.0
EIGHT_HOURS = 8 * 3600
INSERT_ROWS = 100_000
UNBATCHED_ROWS = 2_000
N_RUNS = 10_000
TARGET_ROWS_S = 10_000
TARGET_TIMELINE_MS = 30.0
REF = MEASURED  # resident MB, seconds per proposal, tokens
PROSE = "Consider the zeros of the zeta function on the critical line and the explicit formula. "
STATUSES = ["ok"] * 93 + ["timeout"] * 3 + ["skipped"] * 2 + ["error", "aborted"]


def samples(rng: random.Random, start: float, n: int) -> list[HardwareSnapshot]:
    """n one-second samples: a baseline with a student (4-5 GB) loaded about 80 % of the time."""
    out = []
    for i in range(n):
        loaded = (i % 40) < 32
        used = 900.0 + (4400.0 if loaded else 0.0) + rng.uniform(-40, 40)
        out.append(HardwareSnapshot(ts=start + i, source="sim", vram_total_mb=TOTAL_MB, vram_used_mb=used,
                                    gpu_util_pct=95.0 if loaded else 2.0, temp_c=60.0, power_w=180.0,
                                    ram_used_mb=9000.0, ram_total_mb=32000.0, cpu_pct=12.0))
    return out


def past_runs(rng: random.Random, session_ids: list[int], n: int) -> list[RunRecord]:
    names = list(REF)
    t = 1_690_000_000.0
    runs = []
    for i in range(n):
        name = names[i % len(names)]
        mb, secs, tokens = REF[name]
        status = rng.choice(STATUSES)
        sid = session_ids[i * len(session_ids) // n]
        s = secs * rng.uniform(0.9, 1.1)
        tok = int(tokens * rng.uniform(0.9, 1.1))
        ok = status == "ok"
        runs.append(RunRecord(
            session_id=sid, cycle=i // 6, student=name, model=f"{name}:latest", status=status,  # type: ignore[arg-type]
            started_at=t, ended_at=t + (s if ok else 60.0), load_s=1.5 if ok else None,
            total_s=s if ok else None, wall_s=s + 0.2, tokens=tok if ok else None,
            tok_per_s=tok / (s * 0.9) if ok else None, vram_mb=mb * rng.uniform(0.985, 1.015) if ok else None,
            proposal=(PROSE * (tok * 4 // len(PROSE) + 1))[: tok * 4] if ok else "",  # ~4 chars a token
        ))
        t += s + 2.0
    return runs


def stats_ms(times: list[float]) -> tuple[float, float, float]:
    ordered = sorted(t * 1000 for t in times)
    p95 = ordered[max(0, math.ceil(0.95 * len(ordered)) - 1)]
    return statistics.median(ordered), p95, ordered[-1]


async def timed(fn: Callable[[], Awaitable[object]], reps: int) -> list[float]:
    await fn()  # warm the page cache and the statement cache
    out = []
    for _ in range(reps):
        t0 = time.perf_counter()
        await fn()
        out.append(time.perf_counter() - t0)
    return out


async def bench(tmp: Path, reps: int, seed: int) -> dict[str, object]:
    rng = random.Random(seed)
    res: dict[str, object] = {}

    # 1. snapshot inserts, batched and not
    path = tmp / "inserts.db"
    rows = samples(rng, 1_700_000_000.0, INSERT_ROWS)
    store = await Store.open(path, snapshot_batch=500)
    sid = await store.start_session("inserts", rows[0].ts, {})
    t0 = time.perf_counter()
    for s in rows:
        await store.add_snapshot(s, sid)
    await store.flush()
    res["batched_s"] = time.perf_counter() - t0
    await store.close()
    store = await Store.open(tmp / "unbatched.db", snapshot_batch=1)
    sid = await store.start_session("unbatched", rows[0].ts, {})
    t0 = time.perf_counter()
    for s in rows[:UNBATCHED_ROWS]:
        await store.add_snapshot(s, sid)
    res["unbatched_s"] = time.perf_counter() - t0
    await store.close()

    # 2. the 8-hour timeline, in a database that also holds an earlier 8-hour session
    path = tmp / "rhtui.db"
    store = await Store.open(path)
    day1 = 1_700_000_000.0
    earlier = await store.start_session("nightly", day1, {})
    for s in samples(rng, day1, EIGHT_HOURS):
        await store.add_snapshot(s, earlier)
    tonight = await store.start_session("nightly", day1 + 86_400, {})
    for s in samples(rng, day1 + 86_400, EIGHT_HOURS):
        await store.add_snapshot(s, tonight)
    await store.flush()
    points = await store.vram_timeline(session_id=tonight, max_points=500)
    res["timeline_points"] = len(points)
    res["timeline_session"] = await timed(lambda: store.vram_timeline(session_id=tonight, max_points=500), reps)
    res["timeline_name"] = await timed(lambda: store.vram_timeline(session_name="nightly", max_points=500), reps)
    res["timeline_window"] = await timed(lambda: store.vram_timeline(
        session_id=tonight, start_ts=day1 + 86_400 + 3600, end_ts=day1 + 86_400 + 7200, max_points=500), reps)

    # 3. 10,000 past runs over 40 sessions, then what the scheduler and the report read
    session_ids = [await store.start_session(f"past-{i}", day1 - 86_400 * (40 - i), {}) for i in range(40)]
    runs = past_runs(rng, session_ids, N_RUNS)
    t0 = time.perf_counter()
    for r in runs:
        await store.record_run(r)
    res["record_run_s"] = time.perf_counter() - t0
    recent = await store.recent_runs_by_student(200)
    res["recent_sizes"] = sorted({len(v) for v in recent.values()})
    res["recent"] = await timed(lambda: store.recent_runs_by_student(200), reps)
    res["recent_text"] = await timed(lambda: store.recent_runs_by_student(200, with_text=True), reps)
    res["stats"] = await timed(lambda: store.student_stats(), reps)
    await store.close()

    # 4. opening the populated file (quick_check + migrations check)
    res["db_mb"] = path.stat().st_size / 1e6
    opens = []
    for _ in range(max(3, reps // 10)):
        t0 = time.perf_counter()
        opened = await Store.open(path)
        opens.append(time.perf_counter() - t0)
        await opened.close()
    res["open"] = opens
    return res


def cpu_model() -> str:
    with_model = Path("/proc/cpuinfo")
    if with_model.exists():
        for line in with_model.read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def render(res: dict[str, object], reps: int, seed: int) -> str:
    batched = INSERT_ROWS / float(res["batched_s"])  # type: ignore[arg-type]
    unbatched = UNBATCHED_ROWS / float(res["unbatched_s"])  # type: ignore[arg-type]
    runs_s = N_RUNS / float(res["record_run_s"])  # type: ignore[arg-type]

    def row(label: str, key: str, target: str = "") -> str:
        med, p95, worst = stats_ms(res[key])  # type: ignore[arg-type]
        return f"| {label} | {med:.2f} | {p95:.2f} | {worst:.2f} | {target} |"

    tl_med, tl_p95, _ = stats_ms(res["timeline_session"])  # type: ignore[arg-type]
    verdict = lambda ok: "met" if ok else "MISSED"  # noqa: E731
    return "\n".join([
        "# Store benchmark",
        "",
        f"`{COMMAND} --reps {reps} --seed {seed}` — {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC",
        "",
        f"- machine: {cpu_model()}, {os.cpu_count()} CPUs, {platform.system()} {platform.release()}",
        f"- Python {platform.python_version()}, SQLite {sqlite3.sqlite_version}, aiosqlite "
        f"{getattr(aiosqlite, '__version__', '?')}; rhtui schema v{SCHEMA_VERSION}",
        "- a file database in a temporary directory: WAL, synchronous=NORMAL, foreign keys on, every index",
        "",
        "## Writes",
        "",
        "| what | rows | rate | target |",
        "| --- | ---: | ---: | --- |",
        f"| `add_snapshot`, batch 500 (executemany, one transaction per batch) | {INSERT_ROWS:,} | "
        f"{batched:,.0f} rows/s | >= {TARGET_ROWS_S:,} rows/s: {verdict(batched >= TARGET_ROWS_S)} |",
        f"| `add_snapshot`, batch 1 (for comparison) | {UNBATCHED_ROWS:,} | {unbatched:,.0f} rows/s | |",
        f"| `record_run` (one autocommit insert each) | {N_RUNS:,} | {runs_s:,.0f} runs/s | |",
        "",
        "## Reads (ms over "
        f"{reps} repetitions after one warm-up)",
        "",
        "| query | median | p95 | max | target |",
        "| --- | ---: | ---: | ---: | --- |",
        row(f"`vram_timeline(session_id, max_points=500)`: 8 h = {EIGHT_HOURS:,} samples "
            f"-> {res['timeline_points']} points", "timeline_session",
            f"< {TARGET_TIMELINE_MS:.0f} ms: {verdict(tl_p95 < TARGET_TIMELINE_MS)}"),
        row(f"`vram_timeline(session_name=...)`: two 8 h sessions, {2 * EIGHT_HOURS:,} samples", "timeline_name"),
        row("`vram_timeline` of a 1 h window of the session", "timeline_window"),
        row(f"`recent_runs_by_student(200)` over {N_RUNS:,} runs "
            f"(returns {res['recent_sizes']} per student)", "recent"),
        row("`recent_runs_by_student(200, with_text=True)` (the proposals' text too)", "recent_text"),
        row(f"`student_stats()` over {N_RUNS:,} runs (p95 by window functions)", "stats"),
        row(f"`Store.open` of the {res['db_mb']:.1f} MB file (quick_check included)", "open"),
        "",
        "The database holds two 8-hour sessions of samples and 10,000 runs (ok runs carry a proposal "
        "of about 4 characters per token, 9-15 kB) when the run queries are timed.",
        "",
    ])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=50)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="rhtui-bench-") as tmp:
        res = asyncio.run(bench(Path(tmp), args.reps, args.seed))
    text = render(res, args.reps, args.seed)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text)
    sys.stdout.write(text)


if __name__ == "__main__":
    main()
