"""The cycle loop: one research round a cycle, and the preloading that overlaps its runs.

A round (see `rhtui.engine.ensemble`): one question from the agenda (or a person's, `ask`);
the proposers answer it, each given the previous round's synthesis and critique; the critic
critiques this round's valid proposals; a judge (or a panel) scores each valid proposal through
Ollama's structured outputs; the synthesiser merges the valid proposals and the critique; the
synthesis is scored. Every step is a student run planned by the same scheduler and budget guard,
recorded with its kind, its prompt and the runs it was given.

While one student writes, the next one is loaded beside it when the budget guard admits both
(`BudgetGuard.admit_pair`); otherwise, or with `session.preload = false`, one at a time.

`Rounds` builds on the engine's core (`rhtui.engine.session`) and its controls.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence
from dataclasses import replace

from rhtui.engine import events as ev
from rhtui.engine.controls import Controls
from rhtui.engine.ensemble import judge as jd
from rhtui.engine.ensemble import prompts as pr
from rhtui.engine.ensemble.roles import Roles, assign_roles, role_of
from rhtui.engine.ensemble.round import TIER_SECONDS, Round
from rhtui.engine.ensemble.verifier import required_sections, verify
from rhtui.engine.records import RunKind, RunRecord
from rhtui.engine.runs import TRIED_AGAIN, UNLOAD_WAIT_S, Preloading, Request
from rhtui.engine.scheduler import Candidate, HealthState, RunOrSkip, StudentProfile
from rhtui.engine.session import PROFILE_WINDOW
from rhtui.engine.store import StoreFull

IDLE_RETRY_S = 15.0  # engine-clock seconds to wait after a cycle in which no student could run
IDLE_RETRY_MAX_S = 120.0  # the wait doubles while cycle after cycle nobody can run, up to this
JUDGE_TRIES = 2  # a malformed judge answer is asked once more, then the answer is recorded unscored


class Rounds(Controls):
    """The cycle loop and the research round (see the module docstring)."""

    # -- the loop --------------------------------------------------------------------------

    async def _cycles(self) -> str:
        max_cycles = self.settings.session.max_cycles
        idle_streak = 0  # cycles in a row in which no student could run
        while True:
            await self._runnable.wait()
            if self._stop.is_set():
                return self._stop_reason
            if self.remaining_s() == 0.0:
                return "session time is up"
            ask = self._asks.popleft() if self._asks else None
            if ask is None and self.only_asks:
                return "the question was answered"
            if ask is None and max_cycles is not None and self.cycle >= max_cycles:
                return f"{max_cycles} cycles done"
            attempted, skip_kinds = await self._one_cycle(ask)
            if self._stop.is_set():
                continue
            if skip_kinds and all(k == "time" for k in skip_kinds):
                return "session time is up (no student's expected time fits in what is left)"
            eligible = [n for n in self.students if self.enabled[n] and n not in self._missing]
            if self.health.all_failing(eligible):
                # every student failed its last try (a broken Ollama, say): never a busy loop
                wait = self.health.next_engine_wait()
                last = max(eligible, key=lambda n: self.health.get(n).failures)
                self.log("warning", (
                    f"every student is failing ({len(eligible)} students; {last}: "
                    f"{self.health.get(last).last_error}); the engine waits {wait:g} s before cycle {self.cycle + 1} "
                    "(doubling while it lasts, until a run succeeds or a student is released); "
                    "Ollama's server log says why (`journalctl -u ollama`, ~/.ollama/logs/server.log)"))
                await self._idle(wait)
                continue
            if attempted:
                idle_streak = 0
                continue
            # nobody could run (the card is taken, every student disabled or missing): wait, then retry;
            # the wait doubles while it lasts, so a card held for hours is not a row of skips every 15 s
            wait = min(IDLE_RETRY_S * 2**idle_streak, IDLE_RETRY_MAX_S)
            idle_streak += 1
            self.log("warning", f"no student could run in cycle {self.cycle}; next try in {wait:.0f} s"
                     + (" (doubling while nobody can run)" if idle_streak > 1 else ""))
            await self._idle(wait)

    async def _idle(self, seconds: float) -> None:
        """Wait between cycles, `seconds` of the engine clock at most (never past the session's end);
        a stop, a released student or a question asked ends the wait early. A student preloaded for
        the next round is unloaded first: the card is not held through a wait."""
        await self._drop_preload()
        remaining = self.remaining_s()
        if remaining is not None:
            seconds = min(seconds, remaining)
        self._wake.clear()
        waits = [asyncio.ensure_future(self._stop.wait()), asyncio.ensure_future(self._wake.wait())]
        try:
            await asyncio.wait(waits, timeout=max(0.0, seconds) / self.clock.speed,
                               return_when=asyncio.FIRST_COMPLETED)
        finally:
            for w in waits:
                w.cancel()

    # -- one round -------------------------------------------------------------------------

    def _candidate(self, name: str) -> Candidate:
        s = self.students[name]
        return Candidate(name, s.tag, self.enabled[name] and name not in self._missing, self._sizes.get(name))

    def _recent_scores(self) -> dict[str, float]:
        """Each student's mean judge score over its recent scored proposals (the default synthesiser's pick)."""
        window = self.settings.ensemble.synthesis_window
        out: dict[str, float] = {}
        for name, runs in self._history.items():
            scored = [r.score for r in runs if r.kind == "proposal" and r.score is not None][-window:]
            if scored:
                out[name] = sum(scored) / len(scored)
        return out

    async def _one_cycle(self, ask: tuple[str, str] | None = None) -> tuple[int, list[str]]:
        """One research round; returns (students attempted, kinds of the skips)."""
        self.cycle += 1
        n = self.cycle
        started, t0 = self.clock.now(), self.clock.monotonic()
        question, tier = (ask[0], ask[1]) if ask else (self.agenda.next(), None)
        usable = {name: self.enabled[name] and name not in self._missing for name in self.students}
        ens = self.settings.ensemble
        roles = assign_roles(self.settings.students, usable, judges=ens.judges, scores=self._recent_scores(),
                             tier=tier)
        # the proposers whether or not they can run now: a disabled or missing one is recorded skipped
        cast = assign_roles(self.settings.students, dict.fromkeys(self.students, True), tier=tier).proposers
        if tier is None and ens.mode == "proposals-only":
            # no critique, synthesis or judge to do: every student proposes (the critic too)
            cast = tuple(self.students)
            roles = Roles(tuple(name for name in cast if usable[name]), None, None, ())
        judged = bool(roles.judges) and (tier is not None or (ens.judge_every > 0 and n % ens.judge_every == 0))
        rnd = Round(n, question, roles, kind="ask" if ask else "cycle", tier=tier, judged=judged,
                    deadline=(self.clock.monotonic() + TIER_SECONDS[tier]) if tier else None)
        cycle_id = await self.store.start_cycle(self._session_row(), n, started, question=question, kind=rnd.kind)
        proposers = [self._candidate(name) for name in cast]
        explained = self.scheduler.order_explained([c for c in proposers if c.enabled], self.latest_profiles)
        order = [name for name, _why in explained]
        if self.settings.session.policy == "efficiency":
            for _name, why in explained:  # why each student is where it is
                self.log("info", f"round order: {why}")
        else:  # fair: everyone once, in an order where consecutive pairs fit when it can
            order = self._order_for_pairs(order)
        role_list = [(name, role_of(roles, name)) for name in dict.fromkeys(
            [*order, *(x for x in (roles.critic, roles.synthesiser) if x), *roles.judges])]
        rnd.order = list(order)
        self.emit(ev.CycleStarted(ts=self.clock.now(), cycle=n, order=tuple(order), question=question,
                                  roles=tuple(role_list)))
        snap = await self.sampler.snapshot()
        by_name = {c.name: c for c in proposers}
        fits = self._fits([by_name[name] for name in order], snap)
        for pos, (name, need, ok, why) in enumerate(fits):
            self.emit(ev.StudentQueued(ts=self.clock.now(), cycle=n, student=name, position=pos + 1,
                                       need_mb=need, fits=ok, reason=why))
        self._waiting = [by_name[name] for name in order]
        done: set[str] = set()
        self._waiting_done = done
        self._fits_shown = tuple((name, ok) for name, _need, ok, _why in fits if self._still_waiting(by_name[name]))
        for c in proposers:
            if not c.enabled:
                why = self._missing.get(c.name) or "disabled by user"
                kind = "missing" if c.name in self._missing else "disabled"
                await self._record_skip(n, c, why, kind)
                rnd.skipped.append((c.name, why))
        try:
            await self._proposals(rnd, [by_name[name] for name in order], done)
            self._waiting = []
            await self._after_proposals(rnd)
        finally:
            self._waiting = []
            if self._stop.is_set():  # else a preload of the next round's first proposer is kept for it
                await self._drop_preload()
        seconds = self.clock.monotonic() - t0
        await self.store.end_cycle(cycle_id, self.clock.now(), len(rnd.completed), len(rnd.skipped), rnd.tokens,
                                   seconds)
        if rnd.synthesis is not None or rnd.critique is not None:
            self._previous = (rnd.synthesis, rnd.critique)
        self.last_round = rnd
        self.emit(
            ev.CycleFinished(
                ts=self.clock.now(), cycle=n, completed=tuple(rnd.completed), skipped=tuple(rnd.skipped),
                failed=tuple(rnd.failed), seconds=seconds, tokens=rnd.tokens,
            )
        )
        return rnd.attempted, rnd.skip_kinds

    def _order_for_pairs(self, order: list[str]) -> list[str]:
        """With preloading, reorder the proposers so that consecutive pairs fit together (fair: everyone once)."""
        if not self.settings.session.preload or len(order) < 3:
            return order
        snap = self.latest_snapshot
        if snap is None or snap.vram_used_mb is None or snap.vram_total_mb is None:
            return order
        needs = {name: self.scheduler.estimate_need(self._candidate(name), self.latest_profiles.get(name))
                 for name in order}
        others = max(0.0, snap.vram_used_mb - (self.sampler.ours_mb or 0.0))
        new, why = self.scheduler.order_for_pairs(order, needs, others, snap.vram_total_mb)
        if new != order:
            self.log("info", f"round order: {' → '.join(new)} ({why})")
        return list(new)

    async def _proposals(self, rnd: Round, candidates: list[Candidate], done: set[str]) -> None:
        """Every proposer once, in the scheduler's order, under its budget and health rules."""
        n = rnd.n
        prev_synthesis, prev_critique = self._previous if rnd.kind == "cycle" else (None, None)
        ran = False  # a run just ended: tell who still fits, on the snapshot the next plan reads
        while True:
            await self._wait_runnable()
            if self._stop.is_set() or self._past_deadline(rnd):
                break
            for c in candidates:  # disabled by the user during this cycle, before its turn
                if c.enabled and c.name not in done and not self.enabled[c.name]:
                    done.add(c.name)
                    await self._record_skip(n, c, "disabled by user", "disabled")
                    rnd.skipped.append((c.name, "disabled by user"))
            # a student already loaded (preloaded) is planned on the card as it is without it; were another
            # to come first instead, the preload is unloaded before that one loads (`_step`)
            snap = await self._plan_snapshot(self._pre.student if self._pre is not None else None)
            if ran:  # who still fits, once the run's unload and the next one's preload have settled
                self._spawn(self._check_fits_settled())
                ran = False
            step = self.scheduler.plan(candidates, self.latest_profiles, done, snap, self.remaining_s(),
                                       self._trend())
            if step is None:
                break
            done.add(step.student)
            c = next(x for x in candidates if x.name == step.student)
            context = [r for r in (prev_synthesis, prev_critique) if r is not None]
            budget = self._budget_chars(c.name)
            prompt = pr.proposal_prompt(rnd.question, prev_synthesis.proposal if prev_synthesis else None,
                                        prev_critique.proposal if prev_critique else None, budget)
            req = Request(prompt=prompt, kind="proposal", question=rnd.question, system=self._systems.get(c.name),
                          context_ids=tuple(r.id for r in context if r.id is not None),
                          digest=self._digests.get(c.name))
            nxt = next((x.name for x in candidates if x.name not in done and x.enabled and self.enabled[x.name]), None)
            if nxt is None:
                nxt = self._first_after_proposals(rnd)
            run = await self._step(rnd, c, step, req, next_student=nxt)
            ran = ran or run is not None
            if run is not None and run.status == "ok":
                rnd.proposals.append(run)

    def _next_round_first(self, rnd: Round) -> str | None:
        """Who runs first in the next round, when this round's last step runs now: its first proposer
        (the same order next round; a wrong guess is unloaded), unless the session ends or a person's
        question comes next."""
        max_cycles = self.settings.session.max_cycles
        if self._stop.is_set() or self._asks or self.only_asks or rnd.kind != "cycle":
            return None
        if max_cycles is not None and self.cycle >= max_cycles:
            return None
        return next((name for name in rnd.order if self.enabled.get(name) and name not in self._missing), None)

    def _first_after_proposals(self, rnd: Round) -> str | None:
        r = rnd.roles
        return r.critic or (r.judges[0] if rnd.judged and r.judges else None) or r.synthesiser

    async def _after_proposals(self, rnd: Round) -> None:
        """Critique, judging of the proposals, synthesis, judging of the synthesis."""
        roles = rnd.roles
        if not rnd.valid and roles.critic is None and roles.synthesiser is None:
            return
        valid = rnd.valid
        if roles.critic and valid and self._go_on(rnd):
            c = self._candidate(roles.critic)
            after = roles.judges[0] if rnd.judged and roles.judges else roles.synthesiser
            prompt = pr.critique_prompt(rnd.question, [(r.student, r.proposal) for r in valid],
                                        self._budget_chars(c.name),
                                        headings=required_sections(self._systems.get(c.name)))
            req = Request(prompt=prompt, kind="critique", question=rnd.question, system=self._systems.get(c.name),
                          context_ids=tuple(r.id for r in valid if r.id is not None), digest=self._digests.get(c.name))
            run = await self._single_step(rnd, c, req, next_student=after)
            if run is not None and run.status == "ok":
                rnd.critique = run
        if rnd.judged and valid and self._go_on(rnd):
            await self._judge(rnd, valid, then=roles.synthesiser)
        if roles.synthesiser and valid and self._go_on(rnd):
            c = self._candidate(roles.synthesiser)
            critique = rnd.critique if rnd.critique is not None and rnd.critique.verifier == () else None
            prompt = pr.synthesis_prompt(rnd.question, [(r.student, r.proposal) for r in valid],
                                         critique.proposal if critique else None, self._budget_chars(c.name),
                                         headings=required_sections(self._systems.get(c.name)))
            ids = [r.id for r in valid] + ([critique.id] if critique else [])
            req = Request(prompt=prompt, kind="synthesis", question=rnd.question, system=self._systems.get(c.name),
                          context_ids=tuple(i for i in ids if i is not None), digest=self._digests.get(c.name))
            after = roles.judges[0] if rnd.judged and roles.judges else None
            run = await self._single_step(rnd, c, req, next_student=after)
            if run is not None and run.status == "ok":
                rnd.synthesis = run
                if rnd.judged and run.verifier == () and self._go_on(rnd):
                    await self._judge(rnd, [run], then=None)

    def _go_on(self, rnd: Round) -> bool:
        return not self._stop.is_set() and not self._past_deadline(rnd)

    def _past_deadline(self, rnd: Round) -> bool:
        if rnd.deadline is not None and self.clock.monotonic() >= rnd.deadline:
            if not rnd.deadline_said:
                self.log("warning", f"the {rnd.tier} round's {TIER_SECONDS[rnd.tier or 'standard']:.0f} s are up: "
                         "its remaining steps are skipped")
                rnd.deadline_said = True
            return True
        return False

    async def _judge(self, rnd: Round, answers: Sequence[RunRecord], *, then: str | None) -> None:
        """Each answer scored by every judge of the panel (each judge's runs back to back, so it stays
        loaded); a malformed answer is asked once more, then the answer is recorded unscored."""
        judges = list(rnd.roles.judges)
        verdicts: dict[int, list[jd.Rubric]] = {}
        failures: dict[int, list[str]] = {}
        for ji, judge_name in enumerate(judges):
            c = self._candidate(judge_name)
            for ai, answer in enumerate(answers):
                if not self._go_on(rnd) or answer.id is None:
                    break
                last_of_judge = ai == len(answers) - 1
                nxt = (judges[ji + 1] if ji + 1 < len(judges) else then) if last_of_judge else judge_name
                text = pr.trim(answer.proposal, max(2000, self._budget_chars(c.name) - 2000))
                req = Request(prompt=jd.judge_prompt(rnd.question, answer.kind, answer.student, text), kind="judge",
                              question=rnd.question, system=self._systems.get(c.name), context_ids=(answer.id,),
                              target_id=answer.id, format=jd.rubric_schema(), digest=self._digests.get(c.name))
                for attempt in range(1, JUDGE_TRIES + 1):
                    run = await self._single_step(rnd, c, req, next_student=nxt)
                    if run is None or run.status != "ok":
                        failures.setdefault(answer.id, []).append(
                            f"{judge_name}: {run.reason if run else 'not run'}")
                        break
                    try:
                        verdicts.setdefault(answer.id, []).append(jd.parse_rubric(run.proposal))
                        break
                    except jd.JudgeAnswerError as exc:
                        why = f"{judge_name}'s answer was not a valid rubric ({exc})"
                        if attempt < JUDGE_TRIES:
                            self.log("warning", f"[{judge_name}] {why}; asked once more")
                        else:
                            failures.setdefault(answer.id, []).append(why + ", twice")
        for answer in answers:
            if answer.id is None:
                continue
            rubrics = verdicts.get(answer.id, [])
            if rubrics:
                scores = jd.combine(rubrics)
                score: float | None = jd.scores_mean(scores)
                reason = ""
            else:
                scores, score = None, None
                reason = "; ".join(failures.get(answer.id, [])) or "not judged"
            await self.store.set_score(answer.id, scores, score)
            self._scored(answer, scores, score)
            self.emit(ev.RunScored(ts=self.clock.now(), cycle=rnd.n, student=answer.student, run_id=answer.id,
                                   kind=answer.kind, score=score, scores=scores, judges=tuple(judges), reason=reason))

    def _scored(self, run: RunRecord, scores: dict | None, score: float | None) -> None:
        """The learned history keeps the score (the default synthesiser and the efficiency policy read it)."""
        history = self._history.get(run.student, [])
        for i in range(len(history) - 1, -1, -1):
            if history[i].id == run.id:
                history[i] = replace(history[i], scores=scores, score=score)
                self.latest_profiles[run.student] = StudentProfile.from_runs(run.student, history)
                break

    async def _single_step(self, rnd: Round, c: Candidate, req: Request, *,
                           next_student: str | None) -> RunRecord | None:
        """A step of one named student (critique, synthesis, a judge's run) under the scheduler's rules."""
        await self._wait_runnable()
        if not self._go_on(rnd):
            return None
        if not c.enabled or not self.enabled[c.name]:
            why = self._missing.get(c.name) or "disabled by user"
            kind = "missing" if c.name in self._missing else "disabled"
            await self._record_skip(rnd.n, c, f"{req.kind}: {why}", kind, run_kind=req.kind)
            rnd.skipped.append((c.name, why))
            return None
        snap = await self._plan_snapshot(c.name)
        # a judge's run is a short JSON answer: the student's learned time (its long answers) is not its cost
        remaining = None if req.kind == "judge" else self.remaining_s()
        step = self.scheduler.plan([c], self.latest_profiles, set(), snap, remaining, self._trend())
        if step is None:
            return None
        return await self._step(rnd, c, step, req, next_student=next_student)

    async def _plan_snapshot(self, student: str | None):
        """A fresh sample; a student already resident (preloaded, or kept for its next step) counts as
        free. A step that must load its student waits first for the unloads behind to end, so that it
        is planned on settled figures; one already loaded does not wait (the memory being freed is
        still counted: the plan errs on the side of the card)."""
        if student is None or not self.sampler.resident.get(student):
            await self.runs.behind_done()
        snap = await self.sampler.snapshot()
        if student is not None and self.sampler.resident.get(student):
            return self.sampler.without_ours(snap, student)
        return snap

    async def _wait_runnable(self) -> None:
        """Wait while paused or in an emergency; a preload waiting for its run is dropped meanwhile."""
        if not self._runnable.is_set() and self._pre is not None:
            await self._drop_preload()
        await self._runnable.wait()

    async def _step(self, rnd: Round, c: Candidate, step: RunOrSkip, req: Request, *,
                    next_student: str | None) -> RunRecord | None:
        """Run or skip one planned step; the run is verified, recorded and learned from."""
        n = rnd.n
        if step.action == "skip":
            await self._drop_preload(only=c.name)
            await self._record_skip(n, c, step.reason, step.kind or "budget", step, run_kind=req.kind)
            rnd.skipped.append((c.name, step.reason))
            rnd.skip_kinds.append(step.kind or "budget")
            return None
        held = self.health.hold(c.name, self.clock.monotonic(), n)
        if held is not None:  # failing: waits its back-off, or sits out its quarantine
            held_kind, why = held[0], self._held_reason(c.name, *held)
            await self._drop_preload(only=c.name)
            await self._record_skip(n, c, why, held_kind, step, run_kind=req.kind)
            rnd.skipped.append((c.name, why))
            rnd.skip_kinds.append(held_kind)
            return None
        if self.health.is_probe(c.name, n):
            h = self.health.get(c.name)
            self.log("info", f"[{c.name}] quarantined after {h.failures} failures in a row: its probe run now")
        rnd.attempted += 1
        pre = self._pre if self._pre is not None and self._pre.student == c.name else None
        if self._pre is not None and pre is None:
            await self._drop_preload()  # it was loaded for a step that did not come
        self._pre = None
        if next_student is None:
            next_student = self._next_round_first(rnd)
        keep = next_student == c.name
        watcher = None
        if next_student is not None and not keep and self.settings.session.preload:
            watcher = asyncio.ensure_future(self._preload_when_loaded(n, c, step.need_mb, next_student))
        try:
            nxt = next_student
            outcome = await self.runs.run(
                n, c.name, c.model, step.need_mb, req, preloaded=pre, keep_loaded=keep,
                # the next student is loaded beside this one (the pair was admitted together): it starts
                # at once, and this one is unloaded behind it
                unload_later=lambda: self._pre is not None and self._pre.student == nxt and not self._stop.is_set())
        finally:
            if watcher is not None and not watcher.done():
                watcher.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await watcher
        if outcome.unload_later is not None:
            self._spawn(self.runs.unload_behind(*outcome.unload_later))
        run = outcome.run
        if "missing" in outcome.fields:
            self._missing[c.name] = outcome.fields["missing"]
        if run.status == "ok" and req.kind != "judge":
            verdict = verify(run.proposal, system=req.system, done_reason=run.done_reason, kind=req.kind)
            run = replace(run, verifier=verdict.failures)
            if not verdict.ok:
                self.log("warning", f"[{c.name}] its {req.kind} failed the verifier: {'; '.join(verdict.failures)}")
        if run.prompt_tokens and req.prompt:
            self._chars.observe(c.name, len(req.prompt) + len(req.system or ""), run.prompt_tokens)
        run = await self._record(n, c, run)
        if run.status == "ok":
            rnd.completed.append(c.name)
            rnd.tokens += run.tokens or 0
        elif run.status == "skipped":
            rnd.skipped.append((c.name, run.reason))
        else:
            rnd.failed.append(c.name)
        if outcome.backend_lost:
            # nothing to ask a server that is gone (a hung one holds each call for its timeout): what
            # the preload left is unloaded with the rest once Ollama is back
            pre, self._pre = self._pre, None
            if pre is not None:
                pre.task.cancel()
                self.sampler.settled(pre.student, None)
            if await self._connect(initial=False):
                await self._unload_students()
            if not self._stop.is_set():
                self._set_state("running" if self._runnable.is_set() else "paused")
        return run

    async def _record(self, n: int, c: Candidate, run: RunRecord) -> RunRecord:
        """Store the run, update health and the learned profile, and tell every face."""
        run = replace(run, session_id=self._session_row())
        changed = self.health.record(c.name, run, self.clock.monotonic(), n)
        if changed is not None and changed[1].health == "quarantined":
            # the run's own reason said it is tried again next cycle: not while it is quarantined
            note = f"quarantined after {changed[1].failures} failures in a row"
            run = replace(run, reason=TRIED_AGAIN.sub(note, run.reason))
        try:
            run_id = await self.store.record_run(run)
        except StoreFull as exc:  # the row without its text may still fit: keep what the run cost
            self._on_store_full(exc)
            reason = f"{run.reason}; its text was not kept: {exc}".lstrip("; ")
            run = replace(run, proposal="", prompt="", reason=reason)
            run_id = await self.store.record_run(run)
        run = replace(run, id=run_id)
        if run.kind != "judge":
            # what the profile learns from: costs, not prose, and only the window it reads (a week-long
            # session would otherwise keep every proposal in memory); a judge's short runs would skew it
            history = self._history.setdefault(c.name, [])
            history.append(replace(run, proposal="", prompt="", system=None))
            del history[:-PROFILE_WINDOW]
            self.latest_profiles[c.name] = StudentProfile.from_runs(c.name, history)
        self._totals["runs"] += run.status == "ok"
        self._totals["tokens"] += (run.tokens or 0) if run.status == "ok" else 0
        self.emit(ev.StudentFinished(ts=run.ended_at, cycle=n, student=c.name, run=run))
        if changed is not None:
            self.emit(self._health_changed(n, c.name, *changed))
        self._share_profiles(c.name)
        return run

    # -- preloading ------------------------------------------------------------------------

    async def _preload_when_loaded(self, n: int, cur: Candidate, cur_need: float | None,
                                   nxt: str) -> None:
        """Once `cur` is loaded and writing, load `nxt` beside it if the budget guard admits both."""
        # its own load first (Ollama loads one at a time), and its memory measured: the pair is judged
        # on what it holds while it writes
        while not (self.runs.writing.is_set() and self.sampler.resident.get(cur.name) is not None):
            if self.runs.current not in (None, cur.name):
                return
            await asyncio.sleep(self.runs.poll_s())
        if self.runs.current != cur.name:
            return
        if nxt not in self.students or not self.enabled.get(nxt) or nxt in self._missing:
            return
        await self.runs.behind_done(nxt)  # being unloaded behind this one: it is loaded again once gone
        if self.sampler.resident.get(nxt):
            return  # already resident (kept from an earlier step)
        c = self._candidate(nxt)
        reason = await self._pair_refusal(cur, cur_need, c)
        snap = self.latest_snapshot
        if reason and snap is not None and (snap.vram_used_mb is None or not snap.vram_total_mb):
            # the card is not measured (no NVML, no gpu_total_mb): said once, not at every step
            if self._said_unmeasured:
                return
            self._said_unmeasured = True
            reason += " (said once: it holds for the whole session; set gpu_total_mb to allow overlaps)"
        if reason:
            self.emit(ev.Preload(ts=self.clock.now(), cycle=n, student=nxt, beside=cur.name, overlapped=False,
                                 reason=reason))
            return
        snap = self.latest_snapshot
        need = self.scheduler.estimate_need(c, self.latest_profiles.get(nxt))
        cur_mb = self.sampler.resident.get(cur.name) or 0.0
        why = f"both fit: {cur_mb:,.0f} + {need or 0:,.0f} MB"
        if snap is not None and snap.vram_total_mb:
            why += f" of {snap.vram_total_mb:,.0f} MB"
        self.emit(ev.Preload(ts=self.clock.now(), cycle=n, student=nxt, beside=cur.name, overlapped=True, reason=why))
        self.emit(ev.StudentPhaseChanged(ts=self.clock.now(), cycle=n, student=nxt, phase="loading"))
        pre = self.runs.preload(nxt, c.model, cur.name)
        self._pre = pre
        beside = cur.name
        pre.task.add_done_callback(lambda _task: self._preloaded(n, pre, beside))

    def _preloaded(self, n: int, pre: Preloading, beside: str) -> None:
        if pre.task.cancelled() or pre.task.exception() is not None:
            return
        if self.runs.current != beside:
            self.log("info", f"[{pre.student}] Ollama loaded it only after {beside} finished (its own memory "
                     "estimate, or OLLAMA_MAX_LOADED_MODELS): no overlap this time")

    async def _pair_refusal(self, cur: Candidate, cur_need: float | None, nxt: Candidate) -> str:
        """Why `nxt` may not load beside `cur` now ("" when it may)."""
        if self._stop.is_set() or not self._runnable.is_set():
            return "the engine is stopping or paused"
        need = self.scheduler.estimate_need(nxt, self.latest_profiles.get(nxt.name))
        if need is None:
            return "no VRAM estimate for it yet"
        trend = self._trend()
        if trend is not None and trend > self.scheduler.trend_threshold_mb_per_min:
            return f"VRAM is trending up ({trend:+.0f} MB/min)"
        snap = await self.sampler.snapshot()
        running = cur_need if cur_need is not None else (self.sampler.resident.get(cur.name) or 0.0)
        d = self.guard.admit_pair(running, need, snap, running_resident_mb=self.sampler.resident.get(cur.name))
        return "" if d.ok else d.reason

    async def _drop_preload(self, only: str | None = None) -> None:
        """Unload a preloaded student whose run will not come now (`only`: if it is that student)."""
        pre = self._pre
        if pre is None or (only is not None and pre.student != only):
            return
        self._pre = None
        self.log("info", f"[{pre.student}] its preload is dropped: its run does not come next")
        await self.runs.drop_preload(pre)

    # -- helpers ---------------------------------------------------------------------------

    def _budget_chars(self, name: str) -> int:
        """Characters of context that fit `name`'s num_ctx beside its system prompt and its answer."""
        num_ctx, num_predict = self._ctx.get(name, (None, None))
        return pr.budget_chars(num_ctx or 4096, num_predict, len(self._systems.get(name) or ""),
                               self._chars.ratio(name))

    def _fits(self, candidates: list[Candidate], snap) -> list[tuple[str, float | None, bool, str]]:
        """(student, need, fits, reason) for each candidate, judged on `snap`."""
        out = []
        for c in candidates:
            need = self.scheduler.estimate_need(c, self.latest_profiles.get(c.name))
            decision = self.guard.admit(need, snap) if need is not None else None
            why = decision.reason if decision else "no estimate yet"
            out.append((c.name, need, bool(decision and decision.ok), why))
        return out

    def _still_waiting(self, c: Candidate) -> bool:
        return c.enabled and self.enabled[c.name] and c.name not in self._waiting_done and c.name != self.current

    def _check_fits(self, snap, *, always: bool = False) -> None:
        """Send FitsChecked for the students still waiting in this cycle: after every run
        (`always`), and from the sampler when an answer changed."""
        waiting = [c for c in self._waiting if self._still_waiting(c)]
        ours = self.sampler.ours_mb
        if not waiting or ours is None or snap.vram_used_mb is None:
            return  # between cycles, or a load/unload in flight: the figure is not settled
        if ours:  # our students' memory is freed before the next one loads
            snap = snap.with_vram(max(0.0, snap.vram_used_mb - ours), snap.vram_total_mb)
        fits = self._fits(waiting, snap)
        shown = tuple((name, ok) for name, _need, ok, _why in fits)
        if always or shown != self._fits_shown:
            self._fits_shown = shown
            self.emit(ev.FitsChecked(ts=self.clock.now(), cycle=self.cycle, fits=tuple(fits)))

    async def _check_fits_settled(self) -> None:
        """After a run: FitsChecked on the first sample in which no load or unload of ours is in flight
        (not on the run's path: the next student is already writing). Gives up after UNLOAD_WAIT_S."""
        await self.runs.behind_done()
        deadline = self.clock.monotonic() + UNLOAD_WAIT_S
        while self.sampler.ours_mb is None and self.clock.monotonic() < deadline:
            await asyncio.sleep(self.runs.poll_s())
        self._check_fits(await self.sampler.snapshot(), always=True)

    def _trend(self) -> float | None:
        """VRAM trend of everything but our students, over the last TREND_WINDOW_S."""
        return self.scheduler.trend_mb_per_min(self.sampler.trend_points())

    def _held_reason(self, name: str, kind: str, h: HealthState) -> str:
        """Why a failing student sits out its turn, and what happens next."""
        times = "time" if h.failures == 1 else "times"
        if kind == "backoff":
            left = max(0.0, (h.retry_at or 0.0) - self.clock.monotonic())
            return (f"failed {h.failures} {times} in a row (last: {h.last_error}); waits a {h.backoff_s:g} s back-off "
                    f"({left:.0f} s left), then is tried at its next turn")
        cycles = max(1, (h.probe_cycle or 0) - self.cycle)
        return (f"{h.failures} failures in a row (last: {h.last_error}); one probe run in "
                f"{cycles} {'cycle' if cycles == 1 else 'cycles'}; release it with `u` on its row or "
                f"`rhtui students release {name}`")

    def _health_changed(self, n: int, name: str, before: HealthState,
                        after: HealthState) -> ev.StudentHealthChanged:
        """The event for a change of a student's health after a run."""
        if after.failures == 0:
            what = "its probe run succeeded" if before.health == "quarantined" else "a run succeeded"
            reason = f"{what} after {before.failures} {'failure' if before.failures == 1 else 'failures'} in a row"
        elif after.health == "quarantined":
            probe = f"one probe run in {after.probe_every} {'cycle' if after.probe_every == 1 else 'cycles'}"
            first = "its probe run failed too; " if before.health == "quarantined" else ""
            reason = (f"{first}{after.failures} failures in a row (last: {after.last_error}); skipped from now on, "
                      f"with {probe}; a success releases it, or `u` on its row, or `rhtui students release {name}`")
        else:
            reason = (f"{after.failures} {'failure' if after.failures == 1 else 'failures'} in a row "
                      f"(last: {after.last_error}); tried again after a {after.backoff_s:g} s back-off; "
                      f"quarantined after {self.health.quarantine_after}")
        return ev.StudentHealthChanged(ts=self.clock.now(), cycle=n, student=name, health=after.health,
                                       failures=after.failures, reason=reason)

    async def _record_skip(self, n: int, c: Candidate, reason: str, kind: str,
                           step: RunOrSkip | None = None, run_kind: RunKind = "proposal") -> None:
        now = self.clock.now()
        run = RunRecord(
            session_id=self._session_row(), cycle=n, student=c.name, model=c.model, status="skipped",
            started_at=now, ended_at=now, reason=f"{kind}: {reason}", kind=run_kind,
        )
        await self.store.record_run(run)
        self.emit(ev.StudentSkipped(ts=now, cycle=n, student=c.name, reason=reason, kind=kind))

