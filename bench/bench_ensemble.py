"""What a research round's extra steps (critique, judging, synthesis) cost beside its proposals,
what the governor (`ensemble.mode`, `ensemble.judge_every`) saves, and the Self-MoA baseline:
the GPU time of those extra steps spent instead on more proposals of the best student.

Every configuration runs the real engine (simulator over loopback HTTP ← ollama.AsyncClient ←
orchestrator → SQLite) on a fresh simulated card with the same seed, so each one gets the same
questions. The students carry their shipped Modelfiles, as in `rhtui --demo`. The figures are
the engine's own records: `total_s` (Ollama's durations on the simulated clock, what the card
spends), tokens, energy and judge scores of every run.

    .venv/bin/python -m bench.bench_ensemble [--rounds 4] [--speed 50] [--seed 3] [--quick]

Writes bench/results/ensemble.md.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import statistics
import tempfile
import time
from collections.abc import Iterable, Sequence
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench._machine import machine_lines
from rhtui.commands.cli import start_simulator
from rhtui.engine.backend import READ_EVERY_S, OllamaBackend
from rhtui.engine.clock import ScaledClock
from rhtui.engine.config import Settings
from rhtui.engine.ensemble import judge as jd
from rhtui.engine.ensemble import prompts as pr
from rhtui.engine.ensemble.agenda import Agenda, load_questions
from rhtui.engine.modelfile.students import resolve_students
from rhtui.engine.orchestrator import Orchestrator
from rhtui.engine.records import RunRecord
from rhtui.engine.store import CycleQuality, Store
from rhtui.sim.probe import SimProbe

OUT = Path(__file__).parent / "results" / "ensemble.md"
KINDS = ("proposal", "critique", "judge", "synthesis")
EXTRA = ("critique", "judge", "synthesis")
JUDGE = "rh-zeta"  # the reference ensemble's critic and judge
JUDGE_CHARS = 6000  # what of a sample the judge reads when the full rounds show no judge prompt to measure
SAMPLE_INTERVAL_S = 0.05  # wall seconds between hardware samples: power is integrated from them


@dataclass(frozen=True)
class Cost:
    """What the runs of one kind cost: their count, GPU-seconds (sum of total_s), the wall time
    during which at least one of them was under way, tokens, and energy where it was measured."""

    runs: int = 0
    gpu_s: float = 0.0
    wall_s: float = 0.0
    tokens: int = 0
    energy_j: float = 0.0
    energy_runs: int = 0


def cost(runs: Sequence[RunRecord]) -> Cost:
    ok = [r for r in runs if r.status == "ok"]
    with_energy = [r.energy_j for r in ok if r.energy_j is not None]
    return Cost(len(ok), sum(r.total_s or 0.0 for r in ok), union_s((r.started_at, r.ended_at) for r in ok),
                sum(r.tokens or 0 for r in ok), sum(with_energy), len(with_energy))


def union_s(spans: Iterable[tuple[float, float]]) -> float:
    """Length of the union of the intervals: wall time with at least one of them under way."""
    total, end = 0.0, -math.inf
    for a, b in sorted(spans):
        if b <= end:
            continue
        total += b - max(a, end)
        end = b
    return total


@dataclass(frozen=True)
class Judged:
    """A Self-MoA sample's score, and what judging it cost."""

    question: str
    score: float
    gpu_s: float
    tokens: int
    prompt_tokens: int


@dataclass
class Session:
    """One configuration's rounds, as recorded."""

    label: str
    runs: list[RunRecord]
    seconds: dict[int, float]  # round -> its wall time on the engine clock
    quality: list[CycleQuality]
    wall: float  # real seconds the session took
    judged: list[Judged] = field(default_factory=list)
    """Self-MoA: each valid sample, judged afterwards."""

    def rounds(self) -> list[int]:
        return sorted(self.seconds)

    def by_kind(self, n: int | None = None) -> dict[str, Cost]:
        mine = [r for r in self.runs if n is None or r.cycle == n]
        return {k: cost([r for r in mine if r.kind == k]) for k in KINDS}

    def not_ok(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for r in self.runs:
            if r.status != "ok":
                out[r.status] = out.get(r.status, 0) + 1
        return out


def _settings(url: str, data_dir: Path, name: str, rounds: int, ensemble: dict[str, Any],
              students: Sequence[str] | None = None) -> Settings:
    base = Settings(ollama_host=url, data_dir=data_dir, sample_interval_s=SAMPLE_INTERVAL_S, ensemble=ensemble,
                    session={"name": name, "prompt_seed": 1, "max_cycles": rounds})
    specs = resolve_students(base)
    if students is not None:
        specs = [s for s in specs if s.name in students]
    return base.model_copy(update={"students": specs})


async def run_session(label: str, *, speed: float, seed: int, rounds: int, ensemble: dict[str, Any],
                      students: Sequence[str] | None = None, questions: Sequence[str] = (),
                      judge_chars: int | None = None) -> Session:
    """`rounds` rounds of the engine on a fresh simulated card; `questions`: asked in this order
    before the agenda's own (each a round); `judge_chars`: afterwards, the judge scores every valid
    proposal (its first `judge_chars` characters) through structured outputs, as the engine's judge does."""
    async with AsyncExitStack() as stack:
        clock = ScaledClock(speed)
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory()))
        every = Settings()
        every = every.model_copy(update={"students": resolve_students(every)})
        world, url = await start_simulator(stack, "rtx4070s", clock, seed, every)  # all six from their Modelfiles
        settings = _settings(url, tmp, "bench", rounds, ensemble, students)
        store = await Store.open(settings.db_path)
        stack.push_async_callback(store.close)
        backend = OllamaBackend(url, read_every_s=READ_EVERY_S / clock.speed)
        stack.push_async_callback(backend.close)
        agenda = Agenda(load_questions(None), settings.session.prompt_seed)
        for q in questions:
            agenda.push(q)
        orch = Orchestrator(settings, backend, SimProbe(world), store, clock, retry_backend=False, agenda=agenda)
        t0 = time.perf_counter()
        await orch.run()
        assert orch.session_id is not None
        runs = await store.runs(session_id=orch.session_id)
        summary = await store.cycle_summary(session_id=orch.session_id)
        quality = await store.cycle_quality(orch.session_id)
        judged = await judge_all(backend, runs, judge_chars) if judge_chars else []
        wall = time.perf_counter() - t0
    seconds = {c.cycle: c.seconds or 0.0 for c in summary}
    return Session(label, runs, seconds, quality, wall, judged)


def judged_chars(runs: Sequence[RunRecord]) -> int:
    """The most characters of an answer the engine's judge read in these runs (the engine trims each
    answer to what fits the judge's context), so the samples are judged on as much of their text."""
    sizes = []
    for r in runs:
        if r.kind != "judge" or not r.prompt:
            continue
        start, end = r.prompt.find("--- PROPOSAL by "), r.prompt.find("\n--- end of the ")
        if 0 <= start < end:
            start = r.prompt.find("\n", start) + 1
            sizes.append(end - start)
    return max(sizes, default=JUDGE_CHARS)


async def judge_all(backend: OllamaBackend, runs: Sequence[RunRecord], max_chars: int) -> list[Judged]:
    """Each valid proposal (ok, passed the verifier: what the engine judges) scored by the judge with
    the engine's judge prompt and rubric schema; the judge stays loaded between them and is unloaded after."""
    out = []
    for r in runs:
        if r.status != "ok" or r.kind != "proposal" or r.verifier != ():
            continue
        prompt = jd.judge_prompt(r.question, "proposal", r.student, pr.trim(r.proposal, max_chars))
        text, total_s, tokens, prompt_tokens = "", 0.0, 0, 0
        async for chunk in backend.generate(JUDGE, prompt, None, "5m", format=jd.rubric_schema()):
            text += chunk.text
            if chunk.done:
                total_s, tokens, prompt_tokens = chunk.total_s or 0.0, chunk.eval_tokens or 0, chunk.prompt_tokens or 0
        try:
            score = jd.mean_score(jd.parse_rubric(text))
        except jd.JudgeAnswerError:
            continue  # counted as not scored
        out.append(Judged(r.question, score, total_s, tokens, prompt_tokens))
    await backend.unload(JUDGE)
    return out


# -- the figures -------------------------------------------------------------------------------


def extra_s(costs: dict[str, Cost]) -> float:
    return sum(costs[k].gpu_s for k in EXTRA)


def ratio(costs: dict[str, Cost]) -> str:
    p = costs["proposal"].gpu_s
    return f"{extra_s(costs) / p:.2f}" if p else "n/a"


def mean(values: Iterable[float | None]) -> float | None:
    got = [v for v in values if v is not None]
    return statistics.fmean(got) if got else None


def fmt(v: float | None, spec: str = ".2f") -> str:
    return "n/a" if v is None else format(v, spec)


def proposal_scores(s: Session) -> dict[str, list[float]]:
    out: dict[str, list[float]] = {}
    for q in s.quality:
        for student, kind, score in q.runs:
            if kind == "proposal" and score is not None:
                out.setdefault(student, []).append(score)
    return out


def _mean_of(runs: Sequence[RunRecord], name: str) -> float | None:
    return mean(getattr(r, name) for r in runs)


def _loading(r: RunRecord) -> float | None:
    """The part of a run's GPU-s that is neither prompt evaluation nor decoding: its load, or the wait
    for its preload."""
    if r.total_s is None or r.prompt_s is None or r.eval_s is None:
        return None
    return max(0.0, r.total_s - r.prompt_s - r.eval_s)


def best_student(s: Session) -> tuple[str, float, int]:
    """The student with the highest mean judged proposal score: (name, mean, proposals scored)."""
    scores = proposal_scores(s)
    if not scores:
        raise SystemExit("no proposal was scored in the full-mode rounds: nothing to pick the best student by")
    name = max(scores, key=lambda k: (statistics.fmean(scores[k]), k))
    return name, statistics.fmean(scores[name]), len(scores[name])


def extra_wall(s: Session, n: int) -> float:
    """Wall seconds of round `n` during which a critique, judge or synthesis run was under way."""
    return union_s((r.started_at, r.ended_at) for r in s.runs if r.cycle == n and r.status == "ok" and r.kind in EXTRA)


def per_round_table(s: Session) -> list[str]:
    lines = [
        "| round | proposals GPU-s (runs) | critique GPU-s | judge GPU-s (runs) | synthesis GPU-s "
        "| extra / proposals | round wall s | proposals wall s | extra steps wall s |",
        "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for n in s.rounds():
        c = s.by_kind(n)
        lines.append(
            f"| {n} | {c['proposal'].gpu_s:.1f} ({c['proposal'].runs}) | {c['critique'].gpu_s:.1f} "
            f"| {c['judge'].gpu_s:.1f} ({c['judge'].runs}) | {c['synthesis'].gpu_s:.1f} | {ratio(c)} "
            f"| {s.seconds[n]:.1f} | {c['proposal'].wall_s:.1f} | {extra_wall(s, n):.1f} |")
    c = s.by_kind()
    k = len(s.rounds()) or 1
    lines.append(
        f"| mean | {c['proposal'].gpu_s / k:.1f} | {c['critique'].gpu_s / k:.1f} | {c['judge'].gpu_s / k:.1f} "
        f"| {c['synthesis'].gpu_s / k:.1f} | {ratio(c)} | {statistics.fmean(s.seconds.values()):.1f} "
        f"| {c['proposal'].wall_s / k:.1f} | {statistics.fmean(extra_wall(s, n) for n in s.rounds()):.1f} |")
    return lines


def kind_table(s: Session) -> list[str]:
    k = len(s.rounds()) or 1
    lines = [
        "| kind | runs | GPU-s | GPU-s per run | tokens | tokens per run | energy kJ (runs measured) | J per token |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for kind, c in s.by_kind().items():
        if not c.runs:
            continue
        jpt = c.energy_j / c.tokens if c.tokens and c.energy_runs == c.runs else None
        lines.append(f"| {kind} | {c.runs} | {c.gpu_s:.1f} | {c.gpu_s / c.runs:.1f} | {c.tokens} "
                     f"| {c.tokens / c.runs:.0f} | {c.energy_j / 1000:.2f} ({c.energy_runs}/{c.runs}) | {fmt(jpt)} |")
    lines.append(f"\nOver the {k} rounds, the proposals' share of all GPU-s: "
                 f"{s.by_kind()['proposal'].gpu_s / max(1e-9, sum(c.gpu_s for c in s.by_kind().values())):.0%}.")
    return lines


def score_table(s: Session) -> list[str]:
    lines = [
        "| round | proposals ok / passed the verifier / scored | mean proposal score | best proposal "
        "| synthesis (by) | synthesis score |",
        "| ---: | ---: | ---: | --- | --- | ---: |",
    ]
    synth_by = {r.cycle: r.student for r in s.runs if r.kind == "synthesis" and r.status == "ok"}
    for q in s.quality:
        props = [(st, sc) for st, kind, sc in q.runs if kind == "proposal" and sc is not None]
        best = max(props, key=lambda p: p[1]) if props else None
        ok = [r for r in s.runs if r.cycle == q.cycle and r.kind == "proposal" and r.status == "ok"]
        passed = sum(r.verifier == () for r in ok)
        lines.append(
            f"| {q.cycle} | {len(ok)} / {passed} / {len(props)} | {fmt(mean(sc for _, sc in props))} "
            f"| {f'{best[0]} {best[1]:.2f}' if best else 'n/a'} | {synth_by.get(q.cycle, 'none')} "
            f"| {fmt(q.synthesis_score)} |")
    return lines


def governor_table(sessions: Sequence[Session]) -> list[str]:
    lines = [
        "| configuration | proposals | critique | judge | synthesis | total GPU-s | extra / proposals "
        "| round wall s | tokens | energy kJ | answers scored | real s |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for s in sessions:
        k = len(s.rounds()) or 1
        c = s.by_kind()
        total = sum(x.gpu_s for x in c.values())
        tokens = sum(x.tokens for x in c.values())
        energy = sum(x.energy_j for x in c.values())
        scored = sum(1 for q in s.quality for _st, kind, sc in q.runs if sc is not None and kind != "judge")
        lines.append(
            f"| {s.label} | {c['proposal'].gpu_s / k:.1f} ({c['proposal'].runs / k:g}) | {c['critique'].gpu_s / k:.1f} "
            f"| {c['judge'].gpu_s / k:.1f} ({c['judge'].runs / k:g}) | {c['synthesis'].gpu_s / k:.1f} "
            f"| {total / k:.1f} | {ratio(c)} | {statistics.fmean(s.seconds.values()):.1f} | {tokens / k:.0f} "
            f"| {energy / k / 1000:.2f} | {scored} | {s.wall:.1f} |")
    return lines


def context_line(full: Session, alone: Session) -> str:
    """What the previous round's synthesis and critique add to the next round's proposal prompts."""
    proposers = {r.student for r in full.runs if r.kind == "proposal"}
    later = [r for r in full.runs if r.kind == "proposal" and r.status == "ok" and r.cycle > 1]
    bare = [r for r in alone.runs if r.kind == "proposal" and r.status == "ok" and r.cycle > 1
            and r.student in proposers]
    return (f"The extra steps also lengthen the next round's proposal prompts (the previous synthesis and critique): "
            f"from round 2 on, a proposal of the same five students has {fmt(_mean_of(later, 'prompt_tokens'), '.0f')} "
            f"prompt tokens and {fmt(_mean_of(later, 'prompt_s'))} s of prompt evaluation in the full rounds, "
            f"{fmt(_mean_of(bare, 'prompt_tokens'), '.0f')} and {fmt(_mean_of(bare, 'prompt_s'))} s in proposals-only "
            "(counted above as proposal GPU-s).")


def summary(full: Session, every2: Session, alone: Session, plan: Plan, moa: Session | None) -> list[str]:
    k = len(full.rounds()) or 1

    def per_round(x: Session) -> float:
        return sum(c.gpu_s for c in x.by_kind().values()) / (len(x.rounds()) or 1)

    f, e2, al = per_round(full), per_round(every2), per_round(alone)
    c = full.by_kind()
    samples = moa.by_kind()["proposal"].runs if moa else 0
    return [
        f"- a full round costs {f:.1f} GPU-s: {c['proposal'].gpu_s / k:.1f} of proposals and "
        f"{extra_s(c) / k:.1f} of critique + judging + synthesis, {ratio(c)} of the proposals' GPU time "
        f"(critique {c['critique'].gpu_s / k:.1f}, judge {c['judge'].gpu_s / k:.1f} in "
        f"{c['judge'].runs / k:g} short runs, synthesis {c['synthesis'].gpu_s / k:.1f})",
        f"- judge_every = 2 saves {f - e2:.1f} GPU-s a round ({(f - e2) / f:.0%}); proposals-only (six "
        f"proposals, nothing after) costs {al:.1f} GPU-s a round, {(f - al) / f:.0%} less than full",
        f"- Self-MoA: the extra steps' {sum(plan.budget.values()):.1f} GPU-s buy "
        f"{sum(plan.samples.values())} more proposals of {plan.student} over {k} rounds "
        f"({sum(plan.samples.values()) / k:.1f} a round, at {plan.per_proposal_s:.1f} GPU-s each); "
        f"{samples} were run (below)",
        "- the judge scores are synthetic on the simulator: they test the plumbing, not which way is better",
    ]


@dataclass(frozen=True)
class Plan:
    """The Self-MoA budget: per round, the extra steps' GPU-s and the samples of the best student it buys."""

    student: str
    student_score: float
    student_scored: int
    per_proposal_s: float
    budget: dict[int, float]
    samples: dict[int, int]


def self_moa_plan(full: Session) -> Plan:
    name, score, scored = best_student(full)
    secs = [r.total_s or 0.0 for r in full.runs if r.student == name and r.kind == "proposal" and r.status == "ok"]
    per = statistics.fmean(secs)
    budget = {n: extra_s(full.by_kind(n)) for n in full.rounds()}
    # the whole budget's samples, dealt to the rounds as their budgets add up (no round's remainder is lost)
    samples, spent = {}, 0.0
    for n, b in budget.items():
        samples[n] = int((spent + b) // per) - int(spent // per)
        spent += b
    return Plan(name, score, scored, per, budget, samples)


def self_moa_lines(full: Session, plan: Plan, moa: Session | None) -> list[str]:
    questions = {q.cycle: q.question for q in full.quality}
    total_budget = sum(plan.budget.values())
    total_samples = sum(plan.samples.values())
    lines = [
        f"- best student in the full rounds: **{plan.student}**, mean judge score {plan.student_score:.2f} over "
        f"{plan.student_scored} proposals; {plan.per_proposal_s:.1f} GPU-s per proposal there (its ok proposals)",
        f"- the extra steps' GPU time: {total_budget:.1f} GPU-s over {len(plan.budget)} rounds "
        f"({total_budget / max(1, len(plan.budget)):.1f} per round) buys "
        f"{total_samples} more proposals of {plan.student} "
        f"({', '.join(f'round {n}: {k}' for n, k in plan.samples.items())})",
    ]
    if moa is None or not total_samples:
        return [*lines, "- no sample was run"]
    c = moa.by_kind()["proposal"]
    moa_props = [r for r in moa.runs if r.kind == "proposal" and r.status == "ok"]
    full_props = [r for r in full.runs if r.kind == "proposal" and r.status == "ok" and r.student == plan.student]
    scores = [j.score for j in moa.judged]
    judge_s = sum(j.gpu_s for j in moa.judged)
    judge_tokens = sum(j.tokens for j in moa.judged)
    valid = [r for r in moa_props if r.verifier == ()]
    engine_judges = [r for r in full.runs if r.kind == "judge" and r.status == "ok"]
    lines += [
        f"- ran: {c.runs} samples (proposals-only, {plan.student} alone, each round's question asked "
        f"again that many times): {c.gpu_s:.1f} GPU-s ({c.gpu_s / max(1, c.runs):.1f} per sample, "
        f"{c.gpu_s / max(1e-9, total_budget):.0%} of the budget), {c.tokens} tokens "
        f"({c.tokens / max(1, c.runs):.0f} per sample), {c.energy_j / 1000:.2f} kJ "
        f"({c.energy_runs}/{c.runs} runs measured); other statuses: {moa.not_ok() or 'none'}",
        f"- a sample beside {plan.student}'s proposals in the full rounds (means): GPU-s "
        f"{c.gpu_s / max(1, c.runs):.1f} vs {plan.per_proposal_s:.1f}, of which loading (or waiting for a "
        f"preload) {fmt(mean(_loading(r) for r in moa_props))} vs {fmt(mean(_loading(r) for r in full_props))}; "
        f"prompt tokens {fmt(_mean_of(moa_props, 'prompt_tokens'), '.0f')} vs "
        f"{fmt(_mean_of(full_props, 'prompt_tokens'), '.0f')}; tokens {fmt(_mean_of(moa_props, 'tokens'), '.0f')} vs "
        f"{fmt(_mean_of(full_props, 'tokens'), '.0f')} (a full round's proposal prompt carries the previous "
        "synthesis and critique; the engine unloads a student after its run unless the next step is its own, so "
        "each sample loads it again, where in a full round a preload beside the student before hides most of "
        "the load)",
        f"- judged afterwards by {JUDGE} with the engine's judge prompt and rubric schema, each sample trimmed "
        f"to {judged_chars(full.runs)} characters (the most of an answer the engine's judge read in the full "
        f"rounds); the samples that passed the verifier, as the engine judges: {len(valid)} of {c.runs}; "
        f"{len(scores)} scored, mean "
        f"{fmt(mean(scores))}; judging them cost {judge_s:.1f} GPU-s and {judge_tokens} tokens more, outside the "
        "budget (Self-MoA must still pick or merge its samples, which costs a judge's or an aggregator's run "
        f"too); their judge prompts: {fmt(mean(j.prompt_tokens for j in moa.judged), '.0f')} tokens on average, "
        f"the engine's in the full rounds {fmt(_mean_of(engine_judges, 'prompt_tokens'), '.0f')}",
        "",
        "| round | samples scored | mean sample score | best sample score | round's synthesis score "
        "| round's best proposal |",
        "| ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    by_q: dict[str, list[float]] = {}
    for j in moa.judged:
        by_q.setdefault(j.question, []).append(j.score)
    for fq in full.quality:
        got = by_q.get(questions.get(fq.cycle, ""), [])
        best_prop = max((sc for _st, kind, sc in fq.runs if kind == "proposal" and sc is not None), default=None)
        lines.append(f"| {fq.cycle} | {len(got)} | {fmt(mean(got))} | {fmt(max(got) if got else None)} "
                     f"| {fmt(fq.synthesis_score)} | {fmt(best_prop)} |")
    return lines


async def main(rounds: int, speed: float, seed: int, command: str) -> str:
    full = await run_session("full, judge every round", speed=speed, seed=seed, rounds=rounds,
                             ensemble={"mode": "full", "judge_every": 1})
    every2 = await run_session("full, judge_every = 2", speed=speed, seed=seed, rounds=rounds,
                               ensemble={"mode": "full", "judge_every": 2})
    alone = await run_session("proposals-only", speed=speed, seed=seed, rounds=rounds,
                              ensemble={"mode": "proposals-only"})
    plan = self_moa_plan(full)
    asked = [q.question for q in full.quality for _ in range(plan.samples.get(q.cycle, 0))]
    moa = None
    if asked:
        moa = await run_session(f"Self-MoA: {plan.student} alone", speed=speed, seed=seed, rounds=len(asked),
                                ensemble={"mode": "proposals-only"}, students=[plan.student], questions=asked,
                                judge_chars=judged_chars(full.runs))
    sessions = [full, every2, alone]
    lines = [
        "# The research round's cost, the governor, and the Self-MoA baseline",
        "",
        f"Command: `{command}`",
        "",
        *machine_lines(),
        "",
        f"- scenario rtx4070s (reference), simulator seed {seed}, question seed 1, speed {speed:g}x; "
        f"{rounds} rounds per configuration, each on a fresh simulated card (same questions in the same order)",
        "- students built from the shipped Modelfiles (as `rhtui --demo`); rh-alpha … rh-epsilon propose, rh-zeta "
        "critiques and judges, the best-scoring proposer of recent rounds synthesises",
        "- GPU-s: the sum of the runs' `total_s` (Ollama's total_duration on the simulated clock, plus any wait for "
        "a preload): what the card spends on each run. Wall s: simulated seconds during which at least one run "
        "of that kind was under way (it adds each run's unload and the engine's measurement around it; a preload "
        "overlapping the run before can make it less than GPU-s). "
        "Energy: the simulated card's power integrated over each run's samples "
        f"({SAMPLE_INTERVAL_S:g} s of real time apart, {SAMPLE_INTERVAL_S * speed:g} simulated s): "
        "a short judge run can fall between two samples and have no figure",
        f"- runs that did not end ok: {'; '.join(f'{s.label}: {s.not_ok() or {}}' for s in sessions)}",
        "",
        "## Summary",
        "",
        *summary(full, every2, alone, plan, moa),
        "",
        "## Full rounds: GPU time per round, by kind",
        "",
        "Extra = critique + judge + synthesis.",
        "",
        *per_round_table(full),
        "",
        "## Full rounds: tokens and energy, by kind",
        "",
        *kind_table(full),
        "",
        "## Judge scores: proposals and the synthesis",
        "",
        "On the simulator the scores are synthetic (`rhtui.sim.text.answer_quality`): the judge's rubric is "
        "drawn around a quality that, for a proposal, is half its author's fixed level (from the seed) and "
        "half a draw from the text; for a synthesis it is a draw from the judge prompt alone (0.2-0.9), "
        "whoever merged what. A synthesis scoring below or above the proposals says nothing about merging, "
        "and the best student's samples below score near its level by construction. These rows show that "
        "the plumbing works (the judge runs, its structured answer parses, the score is stored and picks "
        "the next synthesiser), not which answer is better. A proposal cut off at num_predict fails the "
        "verifier and is neither critiqued, merged nor judged.",
        "",
        *score_table(full),
        "",
        "## What the governor saves",
        "",
        "GPU-s per round, by kind (runs per round in brackets). proposals-only: every student proposes, "
        "rh-zeta too, and nothing is critiqued, merged or judged. judge_every = 2: rounds 2, 4, … are "
        "judged, the others are critiqued and merged but not scored.",
        "",
        *governor_table(sessions),
        "",
        context_line(full, alone),
        "",
        "## Self-MoA baseline: the same GPU time on more samples of the best student",
        "",
        *self_moa_lines(full, plan, moa),
        "",
        "## What the simulator can and cannot say",
        "",
        "- It can say what the extra steps cost in GPU time, tokens and energy, and how many more "
        "proposals of one student that time buys: the simulated card's load, prompt and decode times follow "
        "the reference scenario's measurements (memory bandwidth, model sizes, each student's tokens per "
        "answer), and the engine measures them through the same code path it uses against a real Ollama.",
        "- The prompt lengths are real (the critique and synthesis prompts hold every proposal), so the "
        "prompt-evaluation share of the extra steps is as the engine would send it; a real model's answer "
        "lengths for a critique or a synthesis may differ from the scenario's per-student token counts.",
        "- It cannot say whether critique + synthesis beats Self-MoA on quality: every score above is "
        "synthetic. That needs the real students on a real card, judged by people or a stronger judge "
        "(Self-MoA's finding, that one strong model sampled repeatedly can beat a mix of weaker ones, is "
        "about real quality, which no simulator can reproduce).",
        "",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=4)
    ap.add_argument("--speed", type=float, default=50)
    ap.add_argument("--seed", type=int, default=3)
    ap.add_argument("--quick", action="store_true", help="2 rounds per configuration")
    a = ap.parse_args()
    rounds = 2 if a.quick else a.rounds
    cmd = ".venv/bin/python -m bench.bench_ensemble" + (" --quick" if a.quick else "")
    if not a.quick and (a.rounds, a.speed, a.seed) != (4, 50, 3):
        cmd += f" --rounds {a.rounds} --speed {a.speed:g} --seed {a.seed}"
    text = asyncio.run(main(rounds, a.speed, a.seed, cmd))
    OUT.write_text(text)
    print(text)
