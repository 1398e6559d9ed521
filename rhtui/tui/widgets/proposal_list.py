"""The list of proposals: the latest of each student, then all of this session's, newest first."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from textual.content import Content
from textual.message import Message
from textual.widgets import OptionList
from textual.widgets.option_list import Option

from rhtui.engine.records import RunRecord
from rhtui.tui.text import fmt_int, one_line
from rhtui.tui.textual_compat import cap_option_list_cache

MARK = {"ok": "✔", "timeout": "◔", "error": "✖", "aborted": "✖", "emergency": "■", "skipped": "↷"}


def _label(seq: int, run: RunRecord) -> Content:
    """``✔ rh-alpha   c3   2,847`` (mark, student, cycle, tokens): 23 cells."""
    mark = MARK.get(run.status, "·")
    style = "$text-success" if run.status == "ok" else "$text-warning"
    return Content.assemble(
        (f"{mark} ", style),
        (f"{one_line(run.student, 10):<10}", "bold"),
        (f" c{run.cycle:<3}{fmt_int(run.tokens):>6}", "$text-muted"),
    )


class ProposalList(OptionList):
    """Option ids: ``latest-<seq>`` and ``all-<seq>``; `Picked` carries the sequence number."""

    DEFAULT_CSS = """
    ProposalList {
        width: 30;
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
        cap_option_list_cache(self, 512)  # ~210 options at most (200 proposals, 6 latest, headings)
        self._shown: tuple = ()

    def show(self, latest: Mapping[str, tuple[int, RunRecord]], items: Sequence[tuple[int, RunRecord]],
             student_order: Sequence[str]) -> None:
        key = (tuple(seq for seq, _ in latest.values()), items[-1][0] if items else 0, len(items))
        if key == self._shown:
            return
        self._shown = key
        highlighted = self.highlighted_option.id if self.highlighted_option is not None else None
        options: list[Option | None] = [
            Option(Content.styled("Latest per student  tokens", "bold $accent"), disabled=True)
        ]
        order = [s for s in student_order if s in latest] + [s for s in latest if s not in student_order]
        for student in order:
            seq, run = latest[student]
            options.append(Option(_label(seq, run), id=f"latest-{seq}"))
        if not latest:
            options.append(Option(Content.styled("  none yet", "$text-muted"), disabled=True))
        options.append(None)
        options.append(Option(Content.styled(f"All {len(items)} (newest first)", "bold $accent"), disabled=True))
        for seq, run in reversed(items):
            options.append(Option(_label(seq, run), id=f"all-{seq}"))
        self.clear_options()
        self.add_options(options)
        target = highlighted
        if target is None or not self._has(target):
            # nothing chosen yet: the newest proposal, in the per-student list at the top
            target = f"latest-{items[-1][0]}" if items else None
            if target is None or not self._has(target):
                target = next((o.id for o in options if o is not None and o.id), None)
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
