"""A simulated 8-hour session at a high speed factor, through the real code path
(simulator over loopback HTTP ← ollama.AsyncClient ← orchestrator → SQLite).

Checks that it completes and that its cycle summaries match the scenario's
arithmetic: a cycle's time should be close to the sum of its students'
load + generation times (plus unload and the small gaps between them).

    .venv/bin/python -m bench.bench_session [--speed 400] [--hours 8]

Writes bench/results/session.md.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from pathlib import Path

from bench._machine import machine_lines
from rhtui.engine import events as ev
from rhtui.engine.backend import READ_EVERY_S, OllamaBackend
from rhtui.engine.clock import ScaledClock
from rhtui.engine.config import Settings
from rhtui.engine.orchestrator import Orchestrator
from rhtui.engine.store import Store
from rhtui.sim.probe import SimProbe
from rhtui.sim.scenario import load_scenario
from rhtui.sim.server import SimServer
from rhtui.sim.world import SimWorld

OUT = Path(__file__).parent / "results" / "session.md"


def _measured(value: float | None) -> float:
    """A figure every ok run has (statistics.mean would fail on a None all the same)."""
    if value is None:
        raise TypeError("an ok run without this measurement")
    return value


async def main(speed: float, hours: float, scenario: str) -> str:
    clock = ScaledClock(speed)
    sc = load_scenario(scenario)
    world = SimWorld(sc, clock, seed=3)
    server = SimServer(world)
    url = await server.start()
    cycles: list[ev.CycleFinished] = []
    finished: dict[int, list[ev.StudentFinished]] = {}

    def on(e: ev.Event) -> None:
        if isinstance(e, ev.CycleFinished):
            cycles.append(e)
        elif isinstance(e, ev.StudentFinished):
            finished.setdefault(e.cycle, []).append(e)

    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(ollama_host=url, data_dir=Path(tmp), sample_interval_s=1.0,
                            session={"name": "bench", "prompt_seed": 1})
        store = await Store.open(settings.db_path)
        backend = OllamaBackend(url, read_every_s=READ_EVERY_S / clock.speed)
        orch = Orchestrator(settings, backend, SimProbe(world), store, clock, retry_backend=False,
                            session_seconds=hours * 3600)
        orch.bus.subscribe(on)
        t0 = time.perf_counter()
        await orch.run()
        wall = time.perf_counter() - t0
        runs = await store.runs(session_id=orch.session_id)
        await backend.close()
        await store.close()
    await server.stop()

    ok = [r for r in runs if r.status == "ok"]
    ratios, gaps = [], []
    for c in cycles:
        if c.failed or c.skipped or not c.completed:  # a complete research round: every step ran and was ok
            continue
        work = sum((f.run.total_s or 0) for f in finished.get(c.cycle, []) if f.run.status == "ok")
        ratios.append(c.seconds / work)
        gaps.append((c.seconds - work) / len(c.completed))  # per run (proposals, critique, judging, synthesis)
    statuses: dict[str, int] = {}
    for r in runs:
        statuses[r.status] = statuses.get(r.status, 0) + 1
    skip_kinds: dict[str, int] = {}
    for r in runs:
        if r.status == "skipped":
            kind = r.reason.split(":", 1)[0]
            skip_kinds[kind] = skip_kinds.get(kind, 0) + 1
    per_student = []
    for s in sc.students:
        mine = [r for r in ok if r.student == s.name and r.kind != "judge"]  # its long answers
        if mine:
            vram = statistics.mean(_measured(r.vram_mb) for r in mine)
            secs = statistics.mean(_measured(r.total_s) for r in mine)
            tokens = statistics.mean(_measured(r.tokens) for r in mine)
            tps = statistics.mean(_measured(r.tok_per_s) for r in mine)
            per_student.append(
                f"| {s.name} | {len(mine)} | {vram:.0f} ({s.resident_mb}) "
                f"| {secs:.1f} | {tokens:.0f} ({s.tokens_mean}) "
                f"| {tps:.1f} |"
            )
    kinds: dict[str, int] = {}
    for r in ok:
        kinds[r.kind] = kinds.get(r.kind, 0) + 1
    lines = [
        "# Simulated 8-hour session",
        "",
        f"Command: `.venv/bin/python -m bench.bench_session --speed {speed:g} --hours {hours:g}`",
        "",
        *machine_lines(),
        "",
        f"- scenario {scenario}, speed {speed:g}x: {hours:g} simulated hours in {wall:.1f} s of wall time",
        f"- cycles (research rounds): {len(cycles)} ({len(ratios)} complete: every step ran and was ok), runs: "
        f"{len(runs)} {statuses}; ok runs by kind: {kinds}; skips by kind: {skip_kinds}",
        f"- round time / sum of its runs' load + generation time: median {statistics.median(ratios):.3f}, "
        f"min {min(ratios):.3f}, max {max(ratios):.3f}" if ratios else "- no complete cycle",
        f"- overhead per run (unload, measurement, gaps): median {statistics.median(gaps):.2f} simulated s "
        f"= {1000 * statistics.median(gaps) / speed:.1f} ms of real time (HTTP round trips and polls, "
        f"multiplied by the speed factor in simulated time)"
        if gaps else "",
        f"- mean cycle: {statistics.mean(c.seconds for c in cycles):.1f} simulated s, "
        f"{statistics.mean(c.tokens for c in cycles):.0f} tokens" if cycles else "",
        "",
        "Per student, its ok runs other than a judge's (proposals, critiques, syntheses: the scenario's figures are "
        "for these):",
        "",
        "| student | ok runs | mean VRAM MB (scenario) | mean s | mean tokens (scenario) | tok/s |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
        *per_student,
        "",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--speed", type=float, default=400)
    ap.add_argument("--hours", type=float, default=8)
    ap.add_argument("--scenario", default="rtx4070s")
    a = ap.parse_args()
    text = asyncio.run(main(a.speed, a.hours, a.scenario))
    OUT.write_text(text)
    print(text)
