"""The orchestrator: one session of research rounds on one card.

plan (AdaptiveScheduler) → admit (BudgetGuard) → load (or take over a preload) → generate
(streamed, with timeout) → verify → record (Store) → unload → next, while the next student
loads beside the one writing when both fit. Its parts, each built on the one before:

- the core (`rhtui.engine.session.EngineCore`): connect, learn, open and close the session, the
  sampler's loop, emergencies, shutdown; every event goes to `self.bus` and the store;
- the sampler and the budget watch (`rhtui.engine.sampler`), and one student's run
  (`rhtui.engine.runs.RunExecutor`), which the core holds;
- the controls (`rhtui.engine.controls`): plain method calls, safe from the same event loop;
  `rhtui watch` sends them through the store's `controls` table, which the sampler polls;
- the cycle loop and the research round (`rhtui.engine.rounds`).
"""

from __future__ import annotations

from rhtui.engine.rounds import Rounds


class Orchestrator(Rounds):
    """The whole engine (see the module docstring); faces hold it as an `EngineHandle`."""


__all__ = ["Orchestrator"]
