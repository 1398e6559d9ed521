"""The adaptive scheduler: learns what each student costs and decides who runs next.

Pure and deterministic: past `RunRecord`s, candidates, a `HardwareSnapshot` and
the session's remaining seconds in; `StudentProfile`s and `RunOrSkip`s out. No I/O,
no clock reads, no sleeping, no asyncio.

Learning (`StudentProfile.from_runs`)
    Runs are taken in time order (``started_at``, stable). Skipped runs are
    ignored. ``runs``, ``ok_runs``, ``failures`` (timeout, error, aborted,
    emergency) and ``failure_rate`` count every attempted run. The cost
    statistics (VRAM, seconds, tokens, tok/s, efficiency) come from the most
    recent `PROFILE_WINDOW` ok runs only, so a profile follows a student whose
    cost changes. VRAM is the resident size Ollama reports (``vram_mb``);
    seconds are Ollama's ``total_s`` (``wall_s`` when absent). p95 is the
    nearest-rank percentile: the ``ceil(0.95 * n)``-th smallest value, always
    one of the observed values. ``score_mean`` is the mean judge score (0-10) of
    the most recent `PROFILE_WINDOW` scored runs.

Ordering (`AdaptiveScheduler.order`)
    fair: the given order. efficiency: never-run students first (their cost is
    learned by running them), then by a weighted score (`PolicyWeights`), each
    term in 0..1: quality = judge score / 10; throughput = tokens per GPU-second
    relative to the fastest candidate; VRAM = 1 - need / the largest need; failures
    = 1 - failure rate. A term that is not known counts as the neutral 0.5. The
    score is the weighted mean of the terms (ties by name); students that ran but
    never succeeded come last. `order_explained` says why each one is where it is.

Pairs (`AdaptiveScheduler.order_for_pairs`)
    With preloading the next student loads while the running one writes, so two
    neighbours of the order are resident at once. The round is reordered so that as
    many consecutive pairs as possible fit together (`BudgetGuard.pair_fits`): an
    exhaustive search up to `PAIR_SEARCH_MAX` students (the first best order in the
    order of the given positions, so a working order is kept), greedy beyond.

Deciding (`AdaptiveScheduler.plan`), for the next enabled student not done:
    1. no need estimate (never ran with VRAM measured, no model size) → skip
       "unknown", unless VRAM is not measured at all (then Ollama decides);
    2. session time: skip "time" only on learned evidence — expected seconds (learned, or
       the timeout for a student that has timed out) > remaining seconds. A student with
       no such evidence (never ran, or only failed otherwise) is run, not skipped on a
       guess: the timeout bounds it and its run teaches the scheduler. With no time left
       at all every student is skipped "time";
    3. VRAM trend above `TREND_THRESHOLD_MB_PER_MIN`: used VRAM is projected
       to the end of each student's expected run; students that fit now but
       not under the projection are skipped "trend", the largest first (they
       are taken before the next student in order);
    4. the budget guard refuses → skip "budget" with the guard's reason;
    5. otherwise run.

Health (`HealthBook`, `health_from_runs`)
    A student's failures in a row (error or timeout; not a run charged to an Ollama outage, not
    aborted, emergency or skipped), since its last ok run or its release by a person. After a
    failure it waits a back-off on the engine clock before it is tried again (`RETRY_BACKOFF_S`,
    doubling): its turn in a cycle before then is skipped "backoff". After `QUARANTINE_AFTER`
    failures in a row it is quarantined: skipped "quarantined" for `PROBE_AFTER_CYCLES` cycles
    (doubling after each failed probe), then given one probe run. A success or a release makes it
    healthy. When every student is failing the engine waits as a whole between cycles
    (`ENGINE_BACKOFF_S`, doubling until a run succeeds or a student is released). The caller
    passes the times and cycle numbers in.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Literal, TypeGuard

from rhtui.engine.budget import BudgetGuard, vram_figures
from rhtui.engine.config import BudgetPolicy, PolicyWeights, SessionOptions
from rhtui.engine.hardware import HardwareSnapshot
from rhtui.engine.records import Health, RunRecord, StudentStats

PROFILE_WINDOW = 50
"""Cost statistics come from this many most recent ok runs."""
TREND_THRESHOLD_MB_PER_MIN = 100.0
"""Above this rise of used VRAM the trend rule skips the largest students first."""
TREND_MIN_SAMPLES = 3
TREND_MIN_WINDOW_S = 10.0
FAILURE_STATUSES = frozenset({"timeout", "error", "aborted", "emergency"})

SkipKind = Literal["budget", "trend", "time", "disabled", "unknown", "backoff", "quarantined"]
QUARANTINE_AFTER = 3
"""Failures in a row after which a student is quarantined."""
RETRY_BACKOFF_S = (10.0, 300.0)
"""Engine-clock seconds a failed student waits before it is tried again: after its first failure, at most."""
PROBE_AFTER_CYCLES = (1, 8)
"""Cycles a quarantined student sits out before its probe run: the first time, at most (doubling)."""
ENGINE_BACKOFF_S = (15.0, 300.0)
"""Engine-clock seconds the engine waits between cycles while every student is failing: first, most."""
BACKEND_LOST_PREFIX = "Ollama went down during the run"
"""How the reason of a run charged to an Ollama outage starts: such a run says nothing of the student."""
LAST_ERROR_CHARS = 160
PAIR_SEARCH_MAX = 8
"""Rounds up to this many students are reordered for pairs by an exhaustive search; longer ones greedily."""
NEUTRAL_TERM = 0.5
"""What a term of the weighted score counts when it is not known (no score yet, no measured VRAM)."""


# -- statistics -----------------------------------------------------------------


def p95_nearest_rank(values: Sequence[float]) -> float | None:
    """Nearest-rank 95th percentile: the ceil(0.95 n)-th smallest value (None when empty)."""
    if not values:
        return None
    ordered = sorted(values)
    rank = math.ceil(0.95 * len(ordered))
    return ordered[max(rank, 1) - 1]


def _mean(values: Sequence[float]) -> float | None:
    """fsum mean, clamped to [min, max] so rounding can never push it outside the data."""
    if not values:
        return None
    m = math.fsum(values) / len(values)
    return min(max(m, min(values)), max(values))


def _finite(x: float | None, *, positive: bool = False) -> TypeGuard[float]:
    """`x` is a number, finite and not negative (positive, if asked)."""
    if x is None or not math.isfinite(x):
        return False
    return x > 0 if positive else x >= 0


def _seconds(r: RunRecord) -> float | None:
    s = r.total_s if r.total_s is not None else r.wall_s
    return float(s) if _finite(s, positive=True) else None


def _tok_per_s(r: RunRecord) -> float | None:
    if _finite(r.tok_per_s):
        return float(r.tok_per_s)
    if _finite(r.tokens) and _finite(r.eval_s, positive=True):
        return r.tokens / r.eval_s
    return None


@dataclass(frozen=True, slots=True)
class StudentProfile:
    """What a student costs, learned from its past runs."""

    student: str
    runs: int
    """Attempted runs (skipped ones are not counted)."""
    ok_runs: int
    failures: int
    failure_rate: float
    vram_mean_mb: float | None
    vram_p95_mb: float | None
    vram_max_mb: float | None
    seconds_mean: float | None
    seconds_p95: float | None
    tokens_mean: float | None
    tok_per_s_mean: float | None
    efficiency: float | None
    """Tokens per GPU-second: total tokens / total seconds of the recent ok runs that have both."""
    last_status: str | None
    timeouts: int = 0
    """Attempted runs cancelled at the timeout (evidence a run takes the whole timeout)."""
    score_mean: float | None = None
    """Mean judge score (0-10) of the most recent scored runs; None before any was scored."""
    scored_runs: int = 0
    """How many runs `score_mean` rests on."""

    @property
    def knows_seconds(self) -> bool:
        """Whether the time a run takes is learned: measured ok runs, or a timeout."""
        return self.seconds_p95 is not None or self.seconds_mean is not None or self.timeouts > 0

    @classmethod
    def from_runs(
        cls, student: str, runs: Sequence[RunRecord], window: int = PROFILE_WINDOW
    ) -> StudentProfile:
        attempted = sorted(
            (r for r in runs if r.status != "skipped"), key=lambda r: r.started_at
        )
        ok = [r for r in attempted if r.status == "ok"]
        failures = sum(1 for r in attempted if r.status in FAILURE_STATUSES)
        recent = ok[-window:] if window > 0 else ok

        vram = [float(r.vram_mb) for r in recent if _finite(r.vram_mb, positive=True)]
        secs = [s for s in (_seconds(r) for r in recent) if s is not None]
        tokens = [float(r.tokens) for r in recent if _finite(r.tokens)]
        tps = [v for v in (_tok_per_s(r) for r in recent) if v is not None]
        eff_tokens = 0.0
        eff_secs = 0.0
        for r in recent:
            s = _seconds(r)
            if s is not None and _finite(r.tokens):
                eff_tokens += r.tokens
                eff_secs += s
        scores = [float(r.score) for r in attempted if _finite(r.score) and r.score <= 10]
        scores = scores[-window:] if window > 0 else scores
        n = len(attempted)
        return cls(
            student=student,
            runs=n,
            ok_runs=len(ok),
            failures=failures,
            failure_rate=failures / n if n else 0.0,
            vram_mean_mb=_mean(vram),
            vram_p95_mb=p95_nearest_rank(vram),
            vram_max_mb=max(vram) if vram else None,
            seconds_mean=_mean(secs),
            seconds_p95=p95_nearest_rank(secs),
            tokens_mean=_mean(tokens),
            tok_per_s_mean=_mean(tps),
            efficiency=eff_tokens / eff_secs if eff_secs > 0 else None,
            last_status=attempted[-1].status if attempted else None,
            timeouts=sum(1 for r in attempted if r.status == "timeout"),
            score_mean=_mean(scores),
            scored_runs=len(scores),
        )


def stats_of(profile: StudentProfile) -> StudentStats:
    """The profile as the queue and `rhtui report` show it."""
    p = profile
    return StudentStats(
        student=p.student, runs=p.runs, failures=p.failures, vram_mean_mb=p.vram_mean_mb,
        vram_p95_mb=p.vram_p95_mb, seconds_mean=p.seconds_mean, tokens_mean=p.tokens_mean,
        tok_per_s_mean=p.tok_per_s_mean,
    )


def profiles_from_history(history: Mapping[str, Sequence[RunRecord]]) -> dict[str, StudentProfile]:
    """One profile per student from its past runs (computed once, outside `plan`)."""
    return {student: StudentProfile.from_runs(student, runs) for student, runs in history.items()}


def trend_mb_per_min(samples: Sequence[tuple[float, float]]) -> float | None:
    """Least-squares slope of (ts seconds, used MB), in MB per minute.

    None with fewer than 3 usable samples or a window shorter than 10 s.
    """
    pts = [
        (float(t), float(u))
        for t, u in samples
        if t is not None and u is not None and math.isfinite(t) and math.isfinite(u)
    ]
    if len(pts) < TREND_MIN_SAMPLES:
        return None
    ts = [t for t, _ in pts]
    if max(ts) - min(ts) < TREND_MIN_WINDOW_S:
        return None
    n = len(pts)
    t_mean = math.fsum(ts) / n
    u_mean = math.fsum(u for _, u in pts) / n
    sxx = math.fsum((t - t_mean) ** 2 for t in ts)
    if sxx <= 0:
        return None
    sxy = math.fsum((t - t_mean) * (u - u_mean) for t, u in pts)
    return sxy / sxx * 60.0


# -- order helpers --------------------------------------------------------------


def _ordinal(i: int) -> str:
    """0 -> 'first', 1 -> '2nd', 10 -> '11th', 21 -> '22nd'."""
    n = i + 1
    if n == 1:
        return "first"
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def _profile_words(p: StudentProfile, need: float | None) -> str:
    """'score 7.9, 104 tok/s, 3.7 GB, 0 % failed', with what is not known said so."""
    score = f"score {p.score_mean:.1f}" if p.score_mean is not None else "no score yet"
    speed = f"{p.efficiency:.0f} tok/s" if p.efficiency is not None else "tok/s not measured"
    vram = f"{need / 1024:.1f} GB" if need is not None else "VRAM not measured"
    return f"{score}, {speed}, {vram}, {p.failure_rate * 100:.0f} % failed"


def _pairs_fitting(seq: Sequence[int], fits: Sequence[Sequence[bool]]) -> int:
    return sum(1 for a, b in zip(seq, seq[1:], strict=False) if fits[a][b])


def _best_pairing(fits: Sequence[Sequence[bool]], cap: int) -> list[int]:
    """The first order (in the order of positions) with the most consecutive pairs that fit:
    a depth-first search over permutations, pruned when a branch cannot beat the best so far,
    ended when `cap` pairs fit (no order can have more)."""
    n = len(fits)
    best = list(range(n))
    best_score = _pairs_fitting(best, fits)
    path: list[int] = []
    used = [False] * n

    def search(score: int) -> bool:
        """True once `cap` pairs fit (nothing can beat it)."""
        nonlocal best, best_score
        if len(path) == n:
            if score > best_score:
                best, best_score = list(path), score
            return best_score >= cap
        left = n - len(path) if path else n - 1  # consecutive pairs still to be formed
        if min(score + left, cap) <= best_score:
            return False
        for j in range(n):
            if used[j]:
                continue
            gain = 1 if path and fits[path[-1]][j] else 0
            used[j] = True
            path.append(j)
            done = search(score + gain)
            path.pop()
            used[j] = False
            if done:
                return True
        return False

    search(0)
    return best


def _greedy_pairing(fits: Sequence[Sequence[bool]]) -> list[int]:
    """From the first position, always the first remaining student that fits with the last one
    (the first remaining when none does): bounded work for long rounds."""
    n = len(fits)
    seq = [0]
    rest = list(range(1, n))
    while rest:
        last = seq[-1]
        nxt = next((j for j in rest if fits[last][j]), rest[0])
        seq.append(nxt)
        rest.remove(nxt)
    return seq


# -- decisions ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Candidate:
    """A student the orchestrator may run; size_mb is the model file size Ollama reports."""

    name: str
    model: str
    enabled: bool = True
    size_mb: float | None = None


@dataclass(frozen=True, slots=True)
class RunOrSkip:
    """One decision of a cycle: run a student, or skip it with a reason and a kind."""

    student: str
    action: Literal["run", "skip"]
    need_mb: float | None
    expected_s: float | None
    reason: str = ""
    kind: str = ""
    """For skips: 'budget', 'trend', 'time', 'disabled' or 'unknown'."""


@dataclass(frozen=True, slots=True)
class _Estimate:
    """What the next run of a candidate is expected to cost."""

    candidate: Candidate
    need_mb: float | None
    """VRAM it needs (see `AdaptiveScheduler.estimate_need`); None when nothing is known."""
    seconds: float
    seconds_learned: bool = False
    """`seconds` is learned (see `StudentProfile.knows_seconds`), not the timeout assumed."""


class AdaptiveScheduler:
    """Orders the students and decides, one step at a time, who runs and who is skipped."""

    trend_threshold_mb_per_min = TREND_THRESHOLD_MB_PER_MIN

    def __init__(
        self,
        policy: BudgetPolicy,
        options: SessionOptions,
        guard: BudgetGuard | None = None,
        *,
        weights: PolicyWeights | None = None,
    ) -> None:
        self.policy = policy
        self.options = options
        self.guard = guard if guard is not None else BudgetGuard(policy)
        self.weights = weights if weights is not None else PolicyWeights()

    # helpers exposed for the orchestrator
    profiles_from_history = staticmethod(profiles_from_history)
    trend_mb_per_min = staticmethod(trend_mb_per_min)

    # -- estimates ------------------------------------------------------------

    def estimate_need(self, c: Candidate, p: StudentProfile | None) -> float | None:
        """p95 of learned resident VRAM; else model size + KV cache; else None."""
        if p is not None and p.vram_p95_mb is not None:
            return p.vram_p95_mb
        if c.size_mb is not None and _finite(c.size_mb, positive=True):
            return float(c.size_mb) + self.policy.kv_cache_mb
        return None

    def estimate_seconds(self, c: Candidate, p: StudentProfile | None) -> float:
        """Learned p95 seconds (or mean), capped at the timeout; the timeout when never measured."""
        if p is not None:
            learned = p.seconds_p95 if p.seconds_p95 is not None else p.seconds_mean
            if learned is not None:
                return min(learned, self.policy.timeout_s)
        return self.policy.timeout_s

    @staticmethod
    def knows_seconds(p: StudentProfile | None) -> bool:
        """Whether `estimate_seconds` rests on learned evidence rather than the assumed timeout."""
        return p is not None and p.knows_seconds

    # -- order ----------------------------------------------------------------

    def order(self, candidates: Sequence[Candidate], profiles: Mapping[str, StudentProfile]) -> list[str]:
        """fair: the given order. efficiency: never-run first (given order), then the weighted score
        descending, ties by name; students that ran but never succeeded come last."""
        return [name for name, _why in self.order_explained(candidates, profiles)]

    def order_explained(
        self, candidates: Sequence[Candidate], profiles: Mapping[str, StudentProfile]
    ) -> list[tuple[str, str]]:
        """`order` with a line for the log saying why each student is where it is
        ("rh-delta first: score 7.9, 104 tok/s, 3.7 GB, 0 % failed (weighted 0.91)")."""
        seen: set[str] = set()
        enabled: list[Candidate] = []
        for c in candidates:
            if c.enabled and c.name not in seen:
                seen.add(c.name)
                enabled.append(c)
        if self.options.policy == "fair":
            return [(c.name, f"{c.name} {_ordinal(i)}: fair policy, the configured order")
                    for i, c in enumerate(enabled)]
        fresh: list[Candidate] = []
        ranked: list[tuple[Candidate, StudentProfile]] = []
        failed: list[tuple[Candidate, StudentProfile]] = []
        for c in enabled:
            p = profiles.get(c.name)
            if p is None or p.runs == 0:
                fresh.append(c)
            elif p.ok_runs == 0:
                failed.append((c, p))
            else:
                ranked.append((c, p))
        weighted = self._weighted(ranked)
        ranked.sort(key=lambda cp: (-weighted[cp[0].name][0], cp[0].name))
        failed.sort(key=lambda cp: cp[0].name)
        out: list[tuple[str, str]] = []
        for c in fresh:
            out.append((c.name, f"{c.name} {_ordinal(len(out))}: never ran, runs early so its cost is learned"))
        for c, p in ranked:
            score, need = weighted[c.name]
            out.append((c.name, f"{c.name} {_ordinal(len(out))}: {_profile_words(p, need)} (weighted {score:.2f})"))
        for c, p in failed:
            out.append((
                c.name,
                f"{c.name} {_ordinal(len(out))}: {p.runs} run{'s' if p.runs != 1 else ''}, none succeeded "
                f"({p.failures} failed): after every student that has",
            ))
        return out

    def _weighted(self, ranked: Sequence[tuple[Candidate, StudentProfile]]) -> dict[str, tuple[float, float | None]]:
        """(weighted score 0..1, VRAM need) of each student with an ok run; see the module's Ordering."""
        w = self.weights
        needs = {c.name: self.estimate_need(c, p) for c, p in ranked}
        fastest = max((p.efficiency for _c, p in ranked if _finite(p.efficiency, positive=True)), default=None)
        largest = max((n for n in needs.values() if _finite(n, positive=True)), default=None)
        total_w = w.quality + w.throughput + w.vram + w.failures
        out: dict[str, tuple[float, float | None]] = {}
        for c, p in ranked:
            need = needs[c.name]
            quality = p.score_mean / 10.0 if _finite(p.score_mean) else NEUTRAL_TERM
            throughput = (
                min(1.0, p.efficiency / fastest) if fastest is not None and _finite(p.efficiency) else NEUTRAL_TERM
            )
            vram = 1.0 - need / largest if largest is not None and _finite(need) else NEUTRAL_TERM
            ok_share = 1.0 - p.failure_rate
            score = (
                (w.quality * quality + w.throughput * throughput + w.vram * vram + w.failures * ok_share) / total_w
                if total_w > 0 else 0.0
            )
            out[c.name] = (min(1.0, max(0.0, score)), need)
        return out

    # -- pairs ----------------------------------------------------------------

    def order_for_pairs(
        self,
        order: Sequence[str],
        needs: Mapping[str, float | None],
        baseline_used_mb: float | None,
        total_mb: float | None,
    ) -> tuple[list[str], str]:
        """The round reordered so that as many consecutive pairs as possible fit on the card
        together (`BudgetGuard.pair_fits`, with `baseline_used_mb` used by other processes),
        and a line for the log. Everyone stays exactly once; the given order is kept when no
        other fits more pairs. A student whose need is None (never ran, no estimate) pairs
        with no one."""
        names = list(order)
        n = len(names)
        if n < 2:
            return names, "order kept: fewer than two students, none is resident with another"
        if not (_finite(total_mb, positive=True) and baseline_used_mb is not None and math.isfinite(baseline_used_mb)):
            return names, "order kept: VRAM is not measured, so no two students are planned to be resident together"
        fits = [
            [i != j and self.guard.pair_fits(needs.get(a), needs.get(b), baseline_used_mb, total_mb).ok
             for j, b in enumerate(names)]
            for i, a in enumerate(names)
        ]
        given = list(range(n))
        given_score = _pairs_fitting(given, fits)
        if given_score == n - 1:
            return names, "order kept: every consecutive pair fits"
        # no order has more fitting neighbours than there are pairs that fit at all
        cap = min(n - 1, sum(fits[i][j] for i in range(n) for j in range(i + 1, n)))
        if given_score >= cap:
            best = given
        else:
            best = _best_pairing(fits, cap) if n <= PAIR_SEARCH_MAX else _greedy_pairing(fits)
        best_score = _pairs_fitting(best, fits)
        if best_score <= given_score:
            return names, f"order kept: {given_score} of {n - 1} consecutive pairs fit, no order fits more"
        adjacent = {frozenset((best[i], best[i + 1])) for i in range(n - 1)}

        def label(i: int) -> str:
            need = needs.get(names[i])
            return f"{names[i]} ({need:,.0f} MB)" if _finite(need) else f"{names[i]} (no estimate)"

        broken = [
            f"{label(i + 1)} no longer follows {label(i)}"
            for i in range(n - 1)
            if not fits[i][i + 1] and frozenset((i, i + 1)) not in adjacent
        ]
        return (
            [names[i] for i in best],
            f"reordered so consecutive pairs fit ({best_score} of {n - 1}, was {given_score}): " + "; ".join(broken),
        )

    # -- plan -----------------------------------------------------------------

    def plan(
        self,
        candidates: Sequence[Candidate],
        profiles: Mapping[str, StudentProfile],
        done: Collection[str],
        snap: HardwareSnapshot,
        remaining_s: float | None,
        vram_trend_mb_per_min: float | None = None,
    ) -> RunOrSkip | None:
        """The next decision of this cycle, or None when every enabled student is done."""
        by_name = {c.name: c for c in reversed(candidates)}  # first occurrence wins
        pending = [n for n in self.order(candidates, profiles) if n not in done]
        if not pending:
            return None
        ests = [
            _Estimate(by_name[n], self.estimate_need(by_name[n], profiles.get(n)),
                      self.estimate_seconds(by_name[n], profiles.get(n)), self.knows_seconds(profiles.get(n)))
            for n in pending
        ]
        vram_known = vram_figures(snap) is not None

        trend = vram_trend_mb_per_min
        if (
            self.options.skip_largest_on_trend
            and vram_known
            and trend is not None
            and math.isfinite(trend)
            and trend > self.trend_threshold_mb_per_min
        ):
            sized = [(e.need_mb, e) for e in ests if e.need_mb is not None]
            for _need, e in sorted(sized, key=lambda pair: (-pair[0], pair[1].candidate.name)):  # largest first
                if self._time_skip(e, remaining_s) is not None:
                    continue  # the time rule comes first, in its turn
                skip = self._trend_skip(e, snap, trend)
                if skip is not None:
                    return skip
        return self._decide(ests[0], snap, remaining_s, vram_known)

    def _decide(self, e: _Estimate, snap: HardwareSnapshot, remaining_s: float | None, vram_known: bool) -> RunOrSkip:
        name = e.candidate.name
        if e.need_mb is None and vram_known:
            return RunOrSkip(
                name, "skip", None, e.seconds,
                f"{name} has no VRAM estimate: it never ran with VRAM measured and "
                "Ollama reports no model size",
                "unknown",
            )
        time_skip = self._time_skip(e, remaining_s)
        if time_skip is not None:
            return time_skip
        if e.need_mb is None:
            d = self.guard.admit(0.0, snap)  # still applies the RAM rule
            if not d.ok:
                return RunOrSkip(name, "skip", None, e.seconds, d.reason, "budget")
            return RunOrSkip(
                name, "run", None, e.seconds,
                "VRAM is not measured and no estimate exists: admitted on Ollama's own checks",
            )
        d = self.guard.admit(e.need_mb, snap)
        if not d.ok:
            return RunOrSkip(name, "skip", e.need_mb, e.seconds, d.reason, "budget")
        return RunOrSkip(name, "run", e.need_mb, e.seconds, d.reason)

    def _time_skip(self, e: _Estimate, remaining_s: float | None) -> RunOrSkip | None:
        """Skip "time" when the learned time does not fit in what is left, or nothing is left.
        A student whose time is not learned is never skipped on the assumed timeout."""
        if not self.options.skip_slowest_when_short or remaining_s is None:
            return None
        if not (remaining_s > 0):  # also NaN: no time left at all, whatever the student needs
            return RunOrSkip(e.candidate.name, "skip", e.need_mb, e.seconds, "no time left in the session", "time")
        if not e.seconds_learned or e.seconds <= remaining_s:
            return None
        left = remaining_s
        return RunOrSkip(
            e.candidate.name, "skip", e.need_mb, e.seconds,
            f"needs ~{e.seconds:.1f} s, {left:.1f} s of the session left",
            "time",
        )

    def _trend_skip(self, e: _Estimate, snap: HardwareSnapshot, trend: float) -> RunOrSkip | None:
        """Skip `e` if it fits now but would not by the end of its expected run."""
        assert e.need_mb is not None
        if not self.guard.admit(e.need_mb, snap).ok:
            return None  # does not fit now: the budget rule says so in its turn
        figures = vram_figures(snap)
        assert figures is not None  # the trend rule runs only when VRAM is measured
        total, used = figures
        growth = trend * e.seconds / 60.0
        projected = replace(snap, vram_used_mb=min(total, used + growth))
        d = self.guard.admit(e.need_mb, projected)
        if d.ok:
            return None
        return RunOrSkip(
            e.candidate.name, "skip", e.need_mb, e.seconds,
            f"VRAM trending up +{trend:.0f} MB/min: {e.candidate.name} ({e.need_mb:.0f} MB) would not fit "
            f"by the end of its run (~{e.seconds:.1f} s, +{growth:.0f} MB: {d.reason})",
            "trend",
        )


# -- health -----------------------------------------------------------------------


def run_outcome(run: RunRecord) -> Literal["ok", "failed"] | None:
    """What a run says of its student's health: ok, failed (error or timeout), or nothing (skipped,
    aborted by a person or an emergency, or charged to Ollama going away)."""
    if run.status == "ok":
        return "ok"
    if run.status in ("error", "timeout") and not run.reason.startswith(BACKEND_LOST_PREFIX):
        return "failed"
    return None


def health_of(failures: int, quarantine_after: int = QUARANTINE_AFTER) -> Health:
    if failures <= 0:
        return "healthy"
    return "quarantined" if failures >= quarantine_after else "degraded"


def _last_error(run: RunRecord) -> str:
    """The failure in the server's words (the error text, else the reason), on one bounded line."""
    text = " ".join((run.error or run.reason).split())
    return text if len(text) <= LAST_ERROR_CHARS else text[: LAST_ERROR_CHARS - 1] + "…"


def health_from_runs(runs: Sequence[RunRecord], released_at: Sequence[float] = ()) -> tuple[Health, int, str]:
    """(health, failures in a row, the last failure) of a student at the end of `runs` (its runs of
    one session): what `HealthBook` held when that session ended. `released_at`: when a person
    released it (the engine clock's time); failures that ended before the last release do not count."""
    last_release = max(released_at, default=-math.inf)
    failures, last = 0, ""
    for r in sorted(runs, key=lambda r: (r.started_at, r.id or 0)):
        outcome = run_outcome(r)
        if outcome is None or r.ended_at <= last_release:
            continue
        if outcome == "ok":
            failures, last = 0, ""
        else:
            failures, last = failures + 1, _last_error(r)
    return health_of(failures), failures, last


@dataclass(frozen=True, slots=True)
class HealthState:
    """One student's health as `HealthBook` holds it."""

    failures: int = 0
    """Failures in a row, since its last ok run or its release."""
    last_error: str = ""
    retry_at: float | None = None
    """Degraded: not tried again before this (engine-clock monotonic seconds)."""
    probe_cycle: int | None = None
    """Quarantined: the cycle in which it has its probe run."""
    probe_every: int = 0
    """Quarantined: the cycles it sits out before that probe."""
    backoff_s: float = 0.0
    """Degraded: the back-off it waits."""

    @property
    def health(self) -> Health:
        return health_of(self.failures)


class HealthBook:
    """Every student's health in one session, and the engine's back-off while all of them fail.

    Pure: the caller passes the engine clock's monotonic seconds and the cycle number.
    """

    def __init__(
        self,
        *,
        quarantine_after: int = QUARANTINE_AFTER,
        backoff_s: tuple[float, float] = RETRY_BACKOFF_S,
        probe_cycles: tuple[int, int] = PROBE_AFTER_CYCLES,
        engine_backoff_s: tuple[float, float] = ENGINE_BACKOFF_S,
    ) -> None:
        self.quarantine_after = quarantine_after
        self.backoff_s = backoff_s
        self.probe_cycles = probe_cycles
        self.engine_backoff = engine_backoff_s
        self.states: dict[str, HealthState] = {}
        self.engine_waits = 0
        """Engine-wide back-offs since the last success or release."""

    def get(self, student: str) -> HealthState:
        return self.states.get(student, HealthState())

    def health(self, student: str) -> Health:
        return self.get(student).health

    def record(self, student: str, run: RunRecord, now: float, cycle: int) -> tuple[HealthState, HealthState] | None:
        """Account for a finished run; (before, after) when the student's health state changed."""
        outcome = run_outcome(run)
        if outcome is None:
            return None
        before = self.get(student)
        if outcome == "ok":
            self.engine_waits = 0
            if before.failures == 0:
                return None
            after = HealthState()
        else:
            n = before.failures + 1
            if n >= self.quarantine_after:
                first, most = self.probe_cycles
                every = first if before.probe_cycle is None else min(2 * before.probe_every, most)
                after = HealthState(n, _last_error(run), None, cycle + every + 1, every)
            else:
                first_s, most_s = self.backoff_s
                wait = min(first_s * 2 ** (n - 1), most_s)
                after = HealthState(n, _last_error(run), now + wait, backoff_s=wait)
        self.states[student] = after
        return before, after

    def release(self, student: str) -> bool:
        """A person released the student: healthy, tried at its next turn. False if it was healthy."""
        if self.get(student).failures == 0:
            return False
        self.states[student] = HealthState()
        self.engine_waits = 0
        return True

    def hold(self, student: str, now: float, cycle: int) -> tuple[str, HealthState] | None:
        """("quarantined" | "backoff", state) when the student must sit out its turn now; None when it may
        run (healthy, its back-off passed, or its probe cycle has come)."""
        s = self.get(student)
        if s.health == "quarantined":
            if s.probe_cycle is not None and cycle >= s.probe_cycle:
                return None
            return "quarantined", s
        if s.retry_at is not None and now < s.retry_at:
            return "backoff", s
        return None

    def is_probe(self, student: str, cycle: int) -> bool:
        s = self.get(student)
        return s.health == "quarantined" and s.probe_cycle is not None and cycle >= s.probe_cycle

    def all_failing(self, students: Collection[str]) -> bool:
        """Every one of `students` (at least one) failed its last attempt."""
        return bool(students) and all(self.get(s).failures > 0 for s in students)

    def next_engine_wait(self) -> float:
        """The engine-wide back-off to wait now (doubling each time, until a success or a release)."""
        first, most = self.engine_backoff
        wait = min(first * 2 ** min(self.engine_waits, 30), most)
        self.engine_waits += 1
        return wait
