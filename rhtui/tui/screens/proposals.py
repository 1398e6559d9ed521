"""Proposals: this session's research rounds (question, proposals, critique, synthesis, with their
scores and verifier results), and the answer picked, with its metrics."""

from __future__ import annotations

from textual import on
from textual.app import ComposeResult
from textual.containers import Horizontal

from rhtui.tui.screens.base import RhtuiScreen, titled
from rhtui.tui.state import Answer, Round, UiModel
from rhtui.tui.widgets.proposal_list import ProposalList
from rhtui.tui.widgets.proposal_view import ProposalView


class ProposalsScreen(RhtuiScreen):
    VIEW = "proposals"
    FOCUS = ProposalList

    def __init__(self) -> None:
        super().__init__()
        self._selected: int | None = None

    def compose_body(self) -> ComposeResult:
        with Horizontal(id="proposals-body"):
            yield titled(ProposalList(id="proposal-list"), "Rounds")
            yield titled(ProposalView(id="proposal-view"), "Answer")

    def _find(self, model: UiModel, seq: int) -> tuple[Answer, Round] | None:
        for rnd in reversed(model.rounds):
            for items in rnd.runs.values():
                for a in items:
                    if a.seq == seq:
                        return a, rnd
        return None

    @on(ProposalList.Picked)
    def _picked(self, event: ProposalList.Picked) -> None:
        self._selected = event.seq
        self._show_selected(self.rh_app.model)

    def _show_selected(self, model: UiModel) -> None:
        found = self._find(model, self._selected) if self._selected is not None else None
        view = self.query_one(ProposalView)
        if found is None:
            view.show(None)
            view.border_title = "Answer"
            return
        answer, rnd = found
        run = answer.run
        view.show(run, answer, rnd)
        score = f" · {answer.score:.1f}/10" if answer.score is not None else ""
        view.border_title = f"{run.student} · {run.kind} · cycle {run.cycle} · {run.status}{score}"

    def sync_body(self, model: UiModel) -> None:
        if self.changed(model, "proposals"):
            listing = self.query_one(ProposalList)
            listing.show(model.rounds)
            listing.border_title = f"Rounds · {model.proposal_seq} answers"
            self._show_selected(model)  # a score may have arrived for the answer shown
