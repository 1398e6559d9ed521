"""`rhtui report` and `rhtui export`: the original system's analysis, built in."""

from __future__ import annotations

import csv
import dataclasses
import json
import time
from pathlib import Path
from typing import IO, Literal

from rich.console import Console
from rich.table import Table
from rich.text import Text

from rhtui.engine.config import CostPolicy
from rhtui.engine.cost import compare, cost_of, cost_per_mtok, energy_wh, fmt_energy, fmt_money, tokens_per_wh
from rhtui.engine.modelfile import student_order
from rhtui.engine.records import CycleSummary, Health, StudentAnalysis, StudentStats, TimelinePoint
from rhtui.engine.sanitize import csv_cell, one_line, sanitize_tree
from rhtui.engine.scheduler import health_from_runs
from rhtui.engine.store import Store, StoreError, StudentQuality

SPARK = " ▁▂▃▄▅▆▇█"


def _f(v: float | None, fmt: str = "{:,.1f}") -> str:
    return "—" if v is None else fmt.format(v)


async def open_existing(db: Path, console: Console, missing: str, *, mode: Literal["rw", "auto"] = "auto",
                        ) -> Store | None:
    """The database at `db`, never created here; None when there is none (`missing` said on
    `console`) or it cannot be opened (why, said there). `mode="auto"` reads read-only media as they are."""
    if not db.exists():
        console.print(Text(missing))
        return None
    try:
        return await Store.open(db, mode=mode)
    except StoreError as exc:
        console.print(Text(f"rhtui: {exc}"))
        return None


async def _open_existing(db: Path, console: Console) -> Store | None:
    return await open_existing(db, console, f"no database at {db}: no session has run yet (start one with "
                                            "`rhtui` or `rhtui --demo`)")


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


async def print_report(db: Path, session: str | None, fmt: str, points: int, console: Console, *,
                       cost: CostPolicy | None = None) -> int:
    """The report of the sessions named `session` (None: all): per student, per cycle, in total;
    `cost` holds the prices (`[cost]`) the energy is charged at and compared with."""
    store = await _open_existing(db, console)
    if store is None:
        return 1
    try:
        stats = sorted(await store.student_stats(session), key=lambda st: student_order(st.student))
        timeline = await store.vram_timeline(session_name=session, max_points=points)
        health = await student_health(store, session_name=session)
        analysis = {a.student: a for a in await store.student_analysis(session)}
        cycles = await store.cycle_summary(session_name=session)
        quality = await store.student_quality(session_name=session)
        rounds = await round_rows(store, session)
    finally:
        await store.close()
    if not stats and not timeline:
        console.print(Text(f"no runs recorded{f' for session {session!r}' if session else ''} in {db}"))
        return 1
    prices = cost or CostPolicy()
    students = with_quality(with_analysis(with_health(stats_rows(stats), health), analysis, prices), quality)
    totals = report_totals([analysis[s.student] for s in stats if s.student in analysis], prices)
    if fmt == "json":
        console.print_json(json.dumps(sanitize_tree({
            "session": session,
            "students": students,
            "totals": totals,
            "cycles": cycle_rows(cycles),
            "rounds": rounds,
            "vram_timeline": [dataclasses.asdict(p) for p in timeline],
        })))
        return 0
    if fmt == "csv":
        _write_csv(console.file, students)
        console.file.write("\n")
        # sections in a fixed order, each with its header even when it has no row
        _write_csv(console.file, [dataclasses.asdict(p) for p in timeline],
                   [f.name for f in dataclasses.fields(TimelinePoint)])
        console.file.write("\n")
        _write_csv(console.file, cycle_rows(cycles), [f.name for f in dataclasses.fields(CycleSummary)] + ["energy_wh"])
        console.file.write("\n")
        _write_csv(console.file, [totals])
        console.file.write("\n")
        _write_csv(console.file, [_round_csv_row(r) for r in rounds], list(ROUND_CSV_FIELDS))
        return 0
    _print_tables(console, session, stats, timeline, health, analysis=students, totals=totals, cycles=cycles,
                  prices=prices, rounds=rounds)
    return 0


def _print_tables(
    console: Console, session: str | None, stats: list[StudentStats], timeline: list[TimelinePoint],
    health: dict[str, StudentHealth] | None = None, *, analysis: list[dict] | None = None,
    totals: dict | None = None, cycles: list[CycleSummary] | None = None, prices: CostPolicy | None = None,
    rounds: list[dict] | None = None,
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
    if analysis is not None and totals is not None:
        _print_analysis(console, analysis, totals, cycles or [], prices or CostPolicy())
    if analysis is not None:
        _print_quality(console, analysis, rounds or [])
    used = [p.vram_used_mb for p in timeline if p.vram_used_mb is not None]
    if not used:
        return
    # each point drawn at the highest sample of its stretch: downsampling never hides a spike
    peaks = [p.vram_used_max_mb if p.vram_used_max_mb is not None else p.vram_used_mb
             for p in timeline if p.vram_used_mb is not None]
    total = max((p.vram_total_mb or 0) for p in timeline) or max(peaks)
    t0, t1 = timeline[0].ts, timeline[-1].ts
    console.print(Text(
        f"\nVRAM timeline ({len(timeline)} points, each the highest sample of its stretch; "
        f"{time.strftime('%Y-%m-%d %H:%M', time.localtime(t0))} → "
        f"{time.strftime('%H:%M', time.localtime(t1))}), 0 … {total:,.0f} MB:"
    ))
    console.print(Text(sparkline(peaks, 0.0, total)))
    console.print(Text(f"min {min(used):,.0f} MB   mean {sum(used) / len(used):,.0f} MB   max {max(peaks):,.0f} MB"))


# -- the original system's analysis: success, percentiles, peaks, cycles, energy and cost ------------


def _energy_fields(tokens: int, energy_j: float | None, prices: CostPolicy) -> dict:
    wh = energy_wh(energy_j)
    cost = cost_of(wh, prices.price_per_kwh)
    return {"energy_wh": wh, "cost": cost, "tokens_per_wh": tokens_per_wh(tokens, wh),
            "cost_per_mtok": cost_per_mtok(cost, tokens)}


def with_analysis(rows: list[dict], analysis: dict[str, StudentAnalysis], prices: CostPolicy) -> list[dict]:
    """The stats rows with each student's success rate, p50/p95/p99 seconds, highest VRAM peak,
    ok tokens, energy (Wh), its cost at `prices`, tokens per Wh and the cost of a million tokens."""
    out = []
    for row in rows:
        a = analysis.get(row["student"])
        if a is None:
            out.append(row)
            continue
        out.append({
            **row, "ok_runs": a.ok_runs, "skipped": a.skipped, "success_rate": a.success_rate,
            "seconds_p50": a.seconds_p50, "seconds_p95": a.seconds_p95, "seconds_p99": a.seconds_p99,
            "vram_peak_max_mb": a.vram_peak_max_mb, "tokens_total": a.tokens, "energy_j": a.energy_j,
            "energy_runs": a.energy_runs, **_energy_fields(a.tokens, a.energy_j, prices),
        })
    return out


def report_totals(analysis: list[StudentAnalysis], prices: CostPolicy) -> dict:
    """The selected sessions as a whole: runs, success rate, ok tokens, energy and cost, the prices
    and the comparison with the API's price (`comparison`: the original system's sentence)."""
    attempts = sum(a.attempts for a in analysis)
    ok = sum(a.ok_runs for a in analysis)
    tokens = sum(a.tokens for a in analysis)
    measured = [a.energy_j for a in analysis if a.energy_j is not None]
    energy_j = sum(measured) if measured else None
    fields = _energy_fields(tokens, energy_j, prices)
    vs = compare(fields["cost_per_mtok"], prices.api_price_per_mtok, prices.currency)
    return {
        "runs": attempts, "ok_runs": ok, "skipped": sum(a.skipped for a in analysis),
        "success_rate": ok / attempts if attempts else None, "tokens_total": tokens,
        "vram_peak_max_mb": max((a.vram_peak_max_mb for a in analysis if a.vram_peak_max_mb is not None),
                                default=None),
        "energy_j": energy_j, "energy_runs": sum(a.energy_runs for a in analysis), **fields,
        "price_per_kwh": prices.price_per_kwh, "api_price_per_mtok": prices.api_price_per_mtok,
        "currency": prices.currency, "api_over_local": vs.api_over_local if vs else None,
        "comparison": vs.summary if vs else None,
    }


def cycle_rows(cycles: list[CycleSummary]) -> list[dict]:
    """Each cycle as a row: its session, number, start, seconds, completed/skipped/failed, tokens, Wh."""
    return [{**dataclasses.asdict(c), "energy_wh": energy_wh(c.energy_j)} for c in cycles]


CYCLES_SHOWN = 20
"""The per-cycle table shows the latest this many cycles; csv and json have them all."""


def _pct(v: float | None) -> str:
    return "—" if v is None else f"{v:.0%}"


def _print_analysis(console: Console, rows: list[dict], totals: dict, cycles: list[CycleSummary],
                    prices: CostPolicy) -> None:
    cur = prices.currency
    table = Table(title="\nPer-student runs: success, seconds (ok runs), highest VRAM peak, energy",
                  title_justify="left")
    table.add_column("student", no_wrap=True)
    cols = ["ok %", "p50 s", "p95 s", "p99 s", "peak MB", "tokens", "Wh", "tok/Wh"]
    if prices.price_per_kwh is not None:
        cols.append(f"cost {cur}".strip())
    for col in cols:
        table.add_column(col, justify="right", no_wrap=True)
    for r in rows:
        cells = [_pct(r.get("success_rate")), _f(r.get("seconds_p50")), _f(r.get("seconds_p95")),
                 _f(r.get("seconds_p99")), _f(r.get("vram_peak_max_mb"), "{:,.0f}"),
                 _f(r.get("tokens_total"), "{:,.0f}"), _f(r.get("energy_wh")), _f(r.get("tokens_per_wh"), "{:,.0f}")]
        if prices.price_per_kwh is not None:
            cells.append("—" if r.get("cost") is None else fmt_money(r["cost"]))
        table.add_row(Text(r["student"]), *cells)
    console.print(table)

    wh = totals["energy_wh"]
    if wh is None:
        console.print(Text("Energy: not measured — no run has power readings (NVML gives none without an NVIDIA "
                           "driver, or on a card that does not report power)."))
    else:
        per_wh = totals["tokens_per_wh"]
        line = (f"Energy: {fmt_energy(wh)} over the {totals['energy_runs']} runs measured"
                f"{f', {per_wh:,.0f} tokens per Wh' if per_wh is not None else ''}")
        if totals["cost"] is not None:
            line += (f"; cost {fmt_money(totals['cost'], cur)} at {fmt_money(prices.price_per_kwh or 0, cur)} "
                     "per kWh")
        else:
            line += "; cost: no price set (cost.price_per_kwh, or RHTUI_COST__PRICE_PER_KWH)"
        console.print(Text(line))
        if totals["comparison"] is not None:
            console.print(Text(str(totals["comparison"])))
        elif totals["cost_per_mtok"] is not None:
            console.print(Text(f"local: {fmt_money(totals['cost_per_mtok'], cur)} per Mtok (set "
                               "cost.api_price_per_mtok to compare with an API)"))

    if not cycles:
        return
    shown = cycles[-CYCLES_SHOWN:]
    title = ("\nCycles" if len(shown) == len(cycles) else
             f"\nCycles — the latest {len(shown)} of {len(cycles)} (all of them: --format csv or json)")
    table = Table(title=title, title_justify="left")
    for col in ("session", "cycle", "started", "seconds", "completed", "skipped", "failed", "tokens", "Wh"):
        table.add_column(col, justify="right", no_wrap=True)
    for c in shown:
        table.add_row(
            f"#{c.session_id}", str(c.cycle), time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(c.started_at)),
            _f(c.seconds), str(c.completed), str(c.skipped), str(c.failed), f"{c.tokens:,}",
            _f(energy_wh(c.energy_j), "{:,.2f}"),
        )
    console.print(table)


# -- research rounds: what the judges and the verifier made of the answers ---------------------------


QUALITY_FIELDS = ("mean_score", "validity_rate", "score_per_gpu_s")
ROUND_CSV_FIELDS = ("session_id", "cycle", "question", "scores", "synthesis_score")


def with_quality(rows: list[dict], quality: dict[str, StudentQuality]) -> list[dict]:
    """The stats rows with each student's mean score, validity rate and score per GPU-second
    (`StudentQuality`; None where it has none)."""
    out = []
    for row in rows:
        q = quality.get(row["student"])
        out.append({**row, **dict(zip(QUALITY_FIELDS, q if q is not None else (None,) * 3, strict=True))})
    return out


async def round_rows(store: Store, session: str | None) -> list[dict]:
    """Each judged or asked round of the sessions named `session` (None: all), oldest first: its session,
    cycle, question, each ok answer's (student, kind, score), and the synthesis' score."""
    out = []
    for info in await store.list_sessions():
        if session is not None and info.name != session:
            continue
        for q in await store.cycle_quality(info.id):
            out.append({"session_id": info.id, "cycle": q.cycle, "question": q.question,
                        "runs": [{"student": st, "kind": kind, "score": score} for st, kind, score in q.runs],
                        "synthesis_score": q.synthesis_score})
    return out


_KIND_MARK = {"proposal": "", "critique": "critique ", "synthesis": "synthesis "}


def _scores_cell(runs: list[dict]) -> str:
    """`student 7.5 · student 6.0 · critique student —`: each answer's score, in recorded order."""
    return " · ".join(f"{_KIND_MARK.get(r['kind'], r['kind'] + ' ')}{r['student']} {_f(r['score'])}" for r in runs)


def _round_csv_row(row: dict) -> dict:
    return {"session_id": row["session_id"], "cycle": row["cycle"], "question": row["question"],
            "scores": _scores_cell(row["runs"]), "synthesis_score": row["synthesis_score"]}


QUESTION_SHOWN = 60
"""Characters of a round's question the table shows (csv and json have it whole)."""


def _print_quality(console: Console, students: list[dict], rounds: list[dict]) -> None:
    """The per-student quality table and the per-round table, each only when there is something to show
    (a database from before research rounds has neither)."""
    judged = [r for r in students if any(r.get(k) is not None for k in QUALITY_FIELDS)]
    if judged:
        table = Table(title="\nPer-student quality: judges' mean score, verifier pass %, score per GPU-s",
                      title_justify="left")
        table.add_column("student", no_wrap=True)
        for col in ("score", "valid %", "score/GPU-s"):
            table.add_column(col, justify="right", no_wrap=True)
        for r in judged:
            table.add_row(Text(r["student"]), _f(r.get("mean_score"), "{:.2f}"), _pct(r.get("validity_rate")),
                          _f(r.get("score_per_gpu_s"), "{:.3f}"))
        console.print(table)
    if not rounds:
        return
    shown = rounds[-CYCLES_SHOWN:]
    title = ("\nRounds: question, each answer's score, the synthesis' score" if len(shown) == len(rounds) else
             f"\nRounds — the latest {len(shown)} of {len(rounds)} (all of them: --format csv or json)")
    table = Table(title=title, title_justify="left")
    for col in ("session", "cycle"):
        table.add_column(col, justify="right", no_wrap=True)
    table.add_column("question", overflow="ellipsis", max_width=QUESTION_SHOWN)
    table.add_column("scores")
    table.add_column("synthesis", justify="right", no_wrap=True)
    for r in shown:
        table.add_row(f"#{r['session_id']}", str(r["cycle"]), Text(one_line(r["question"], QUESTION_SHOWN)),
                      Text(one_line(_scores_cell(r["runs"]))), _f(r["synthesis_score"]))
    console.print(table)


def _write_csv(out: IO[str], rows: list[dict], fieldnames: list[str] | None = None) -> None:
    """Rows as CSV; every text cell sanitised and a formula-like one neutralised (`csv_cell`):
    error text a server sent, and model names, are untrusted. No rows: `fieldnames` alone, if given."""
    if not rows and not fieldnames:
        return
    w = csv.DictWriter(out, fieldnames=list(rows[0]) if rows else fieldnames or [])
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
                    "student": r.student, "model": r.model, "kind": r.kind, "session_id": r.session_id,
                    "cycle": r.cycle,
                    "started_at": r.started_at, "tokens": r.tokens, "seconds": r.total_s, "proposal": r.proposal,
                })) + "\n")
            return 0
        else:
            # the text (answer and prompt) is in the proposals and sft exports
            rows = [
                {k: v for k, v in dataclasses.asdict(r).items() if k not in ("proposal", "prompt", "system")}
                for r in await store.runs(session_name=session)
            ]
            if fmt != "json":  # a CSV cell holds the structured provenance as JSON
                rows = [{k: json.dumps(v) if isinstance(v, dict | list | tuple) else v for k, v in row.items()}
                        for row in rows]
    finally:
        await store.close()
    if fmt == "json":
        json.dump(sanitize_tree(rows), out, indent=2)
        out.write("\n")
    else:
        _write_csv(out, rows)
    return 0
