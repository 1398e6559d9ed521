"""Proposals: the latest of each student and every proposal of the session, with metrics."""

from __future__ import annotations

from textual import on
from textual.app import ComposeResult
from textual.containers import Horizontal

from rhtui.engine.records import RunRecord
from rhtui.tui.screens.base import RhtuiScreen, titled
from rhtui.tui.state import UiModel
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
            yield titled(ProposalList(id="proposal-list"), "Proposals")
            yield titled(ProposalView(id="proposal-view"), "Proposal")

    def _find(self, model: UiModel, seq: int) -> RunRecord | None:
        for s, run in reversed(model.proposals):
            if s == seq:
                return run
        for s, run in model.latest_proposal.values():
            if s == seq:
                return run
        return None

    @on(ProposalList.Picked)
    def _picked(self, event: ProposalList.Picked) -> None:
        self._selected = event.seq
        self._show_selected(self.rh_app.model)

    def _show_selected(self, model: UiModel) -> None:
        run = self._find(model, self._selected) if self._selected is not None else None
        view = self.query_one(ProposalView)
        view.show(run)
        if run is not None:
            view.border_title = f"{run.student} · cycle {run.cycle} · {run.status}"

    def sync_body(self, model: UiModel) -> None:
        if self.changed(model, "proposals"):
            self.query_one(ProposalList).show(model.latest_proposal, model.proposals, list(model.students))
            self.query_one(ProposalList).border_title = f"Proposals ({model.proposal_seq})"
