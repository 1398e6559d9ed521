"""The list of answers grouped by research round, newest round first: its cycle and question, then
its proposals (author, score, verifier), the critique and the synthesis. A judge's run is not listed:
its score shows on the answer it scored."""

from __future__ import annotations

from collections.abc import Sequence

from textual.content import Content
from textual.message import Message
from textual.widgets import OptionList
from textual.widgets.option_list import Option

from rhtui.tui.state import Answer, Round
from rhtui.tui.text import one_line
from rhtui.tui.textual_compat import cap_option_list_cache

MARK = {"ok": "✔", "timeout": "◔", "error": "✖", "aborted": "✖", "emergency": "■", "skipped": "↷"}


KIND_LABEL = {"proposal": "prop", "critique": "crit", "synthesis": "synth", "judge": "judge"}
QUESTION_CHARS = 75
"""The question in the list: about three lines of it (the view shows it whole)."""


def score_label(answer: Answer) -> str:
    """``7.4`` or ``unscored`` (not judged yet, or the judges' answers were malformed)."""
    return "unscored" if answer.score is None else f"{answer.score:.1f}"


def verifier_mark(verifier: tuple[str, ...] | None) -> tuple[str, str]:
    """(mark, style): ✓ passed, ✗ failed, blank when the run was not verified."""
    if verifier is None:
        return " ", ""
    return ("✓", "$text-success") if not verifier else ("✗", "bold $text-error")


def _label(answer: Answer) -> Content:
    """``✔ rh-alpha   prop       7.4 ✓`` (status, author, kind, score, verifier): 29 cells."""
    run = answer.run
    mark = MARK.get(run.status, "·")
    style = "$text-success" if run.status == "ok" else "$text-warning"
    scored = run.kind in ("proposal", "synthesis")
    score = score_label(answer) if scored else ""
    vmark, vstyle = verifier_mark(run.verifier)
    return Content.assemble(
        (f"{mark} ", style),
        (f"{one_line(run.student, 10):<10}", "bold"),
        (f" {KIND_LABEL.get(run.kind, one_line(run.kind, 5)):<5}", "$text-muted"),
        (f" {score:>8}", "$text-muted" if answer.score is None else "bold"),
        (f" {vmark}", vstyle),
    )


class ProposalList(OptionList):
    """Option ids: ``run-<seq>`` (an answer's sequence number); `Picked` carries it."""

    DEFAULT_CSS = """
    ProposalList {
        width: 34;
        height: 1fr;
        scrollbar-size-vertical: 1;
    }
    """

    class Picked(Message):
        def __init__(self, seq: int) -> None:
            super().__init__()
            self.seq = seq

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id, markup=False)
        cap_option_list_cache(self, 512)  # ~400 options at most (40 rounds of 2 headings and ~8 answers)
        self._shown: tuple = ()

    def show(self, rounds: Sequence[Round]) -> None:
        key = tuple(
            (rnd.cycle, rnd.question, tuple((a.seq, a.score, a.scored, a.run.verifier) for a in rnd.answers()))
            for rnd in rounds
        )
        if key == self._shown:
            return
        self._shown = key
        highlighted = self.highlighted_option.id if self.highlighted_option is not None else None
        options: list[Option | None] = []
        newest: int | None = None
        for rnd in reversed(rounds):
            answers = rnd.answers()
            if options:
                options.append(None)
            count = f" · {len(answers)} answer{'' if len(answers) == 1 else 's'}" if answers else " · under way"
            options.append(Option(Content.assemble((f"Cycle {rnd.cycle}", "bold $accent"), (count, "$text-muted")),
                                  disabled=True))
            if rnd.question:
                options.append(Option(Content.styled(one_line(rnd.question, QUESTION_CHARS), "italic $text-muted"),
                                      disabled=True))
            for a in answers:
                options.append(Option(_label(a), id=f"run-{a.seq}"))
                newest = a.seq if newest is None else max(newest, a.seq)
        if not options:
            options.append(Option(Content.styled("No answer yet: the rounds appear here as the students finish.",
                                                 "$text-muted"), disabled=True))
        self.clear_options()
        self.add_options(options)
        target = highlighted
        if target is None or not self._has(target):
            # nothing chosen yet (or it was dropped): the newest answer
            target = f"run-{newest}" if newest is not None else None
        if target is not None:
            self.highlighted = self.get_option_index(target)

    def _has(self, option_id: str) -> bool:
        try:
            self.get_option_index(option_id)
            return True
        except Exception:
            return False

    def on_option_list_option_highlighted(self, event: OptionList.OptionHighlighted) -> None:
        if event.option_id:
            event.stop()
            self.post_message(self.Picked(int(event.option_id.split("-", 1)[1])))
