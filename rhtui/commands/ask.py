"""`rhtui ask "QUESTION"`: one research round on a person's question, its synthesis printed.

The round runs on the same engine, budget guard and database as a session (a session named
`ask` unless --session says otherwise, its cycle of kind `ask`). What the engine logs goes to
stderr (dim), so stdout holds the answer alone: plain sanitised text, or Markdown rendered by
Rich when stdout is a terminal; `--json` prints the whole round.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from typing import Any

from rich.console import Console
from rich.markdown import Markdown
from rich.text import Text

from rhtui.commands.context import make_console
from rhtui.commands.headless import run_headless
from rhtui.engine import events as ev
from rhtui.engine.backend import BackendUnreachable, LlmBackend
from rhtui.engine.clock import Clock
from rhtui.engine.config import Settings
from rhtui.engine.hardware import HardwareProbe
from rhtui.engine.records import RunRecord
from rhtui.engine.sanitize import sanitize
from rhtui.engine.store import Store


def round_json(rnd: Any, runs: list[RunRecord]) -> dict[str, Any]:
    """The whole round: the question, each answer with its kind, verifier and scores, the synthesis."""

    def one(r: RunRecord) -> dict[str, Any]:
        return {"id": r.id, "student": r.student, "kind": r.kind, "status": r.status, "reason": r.reason,
                "text": sanitize(r.proposal), "tokens": r.tokens, "seconds": r.total_s,
                "verifier": list(r.verifier) if r.verifier is not None else None, "score": r.score,
                "scores": r.scores, "target_id": r.target_id, "context_ids": list(r.context_ids)}

    synthesis = rnd.synthesis if rnd is not None else None
    return {
        "question": rnd.question if rnd is not None else None,
        "tier": rnd.tier if rnd is not None else None,
        "cycle": rnd.n if rnd is not None else None,
        "synthesis": sanitize(synthesis.proposal) if synthesis is not None else None,
        "runs": [one(r) for r in runs],
    }


async def run_ask(settings: Settings, backend: LlmBackend, probe: HardwareProbe, store: Store, clock: Clock,
                  ask: tuple[str, str], *, json_out: bool, on_event: Callable[[ev.Event], None]) -> int:
    """Run the round; print its synthesis (or the round as JSON). Exit 1 when no synthesis came out."""
    from rhtui.engine.orchestrator import Orchestrator

    err = make_console(stderr=True)
    orch = Orchestrator(settings, backend, probe, store, clock, retry_backend=False, only_asks=True)
    orch.bus.subscribe(on_event)
    orch.ask(*ask)
    quiet = Console(file=sys.stderr, style="dim", highlight=False)
    try:
        code = await run_headless(orch, quiet)
    except BackendUnreachable as exc:
        err.print(Text(f"rhtui: {exc}"))
        return 1
    rnd = orch.last_round
    runs = await store.round_runs(orch.session_id, rnd.n) if rnd is not None and orch.session_id else []
    if json_out:
        print(json.dumps(round_json(rnd, runs), indent=2, ensure_ascii=False))
        return code or (0 if rnd is not None and rnd.synthesis is not None else 1)
    if rnd is None or rnd.synthesis is None:
        why = "the round did not run" if rnd is None else _why_none(rnd)
        err.print(Text(f"rhtui ask: no synthesis: {why}"))
        return code or 1
    text = sanitize(rnd.synthesis.proposal)
    out = make_console()
    if out.is_terminal:
        out.print(Markdown(text))
    else:
        print(text)
    return code


def _why_none(rnd: Any) -> str:
    if not rnd.proposals:
        skipped = "; ".join(f"{name}: {why}" for name, why in rnd.skipped) or "no proposal came back"
        return f"no proposal ({skipped})"
    if not rnd.valid:
        return "no proposal passed the verifier"
    if rnd.roles.synthesiser is None:
        return "no student can synthesise (every proposer is disabled or missing)"
    return "the synthesiser's run failed (see the log above)"

