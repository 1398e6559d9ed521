"""One answer of a research round: the round (its question and every answer's author, score and
verifier) on top, the answer's scores with the judges' reasons, its metrics beside it, and the text
as Markdown, sanitised and inert (questions, reasons and answers are untrusted model text)."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Horizontal, VerticalScroll
from textual.content import Content
from textual.widgets import Markdown, Static

from rhtui.engine.records import RunRecord
from rhtui.tui.state import Answer, Round
from rhtui.tui.text import fmt_clock, fmt_int, fmt_mb, fmt_num, markdown_parser, one_line, sanitize
from rhtui.tui.widgets.proposal_list import score_label, verifier_mark

REASON_CHARS = 300
"""A judge's reason or a verifier's failure, at most (on one line each)."""


def verifier_words(verifier: tuple[str, ...] | None) -> str:
    if verifier is None:
        return "not verified"
    if not verifier:
        return "✓ passed"
    return f"✗ {len(verifier)} failed"


def metrics_text(run: RunRecord, answer: Answer | None = None) -> Text:
    rows = [
        ("student", one_line(run.student, 24)),
        ("model", one_line(run.model, 24)),
        ("kind", one_line(run.kind, 24)),
        ("cycle", str(run.cycle)),
        ("status", run.status),
        ("started", fmt_clock(run.started_at)),
        ("tokens", fmt_int(run.tokens)),
        ("tok/s", fmt_num(run.tok_per_s)),
        ("total", f"{fmt_num(run.total_s if run.total_s is not None else run.wall_s)} s"),
        ("load", f"{fmt_num(run.load_s)} s"),
        ("prompt", f"{fmt_num(run.prompt_s)} s"),
        ("eval", f"{fmt_num(run.eval_s)} s"),
        ("VRAM", fmt_mb(run.vram_mb)),
        ("peak", fmt_mb(run.vram_peak_mb)),
    ]
    if run.energy_j is not None:
        rows.append(("energy", f"{run.energy_j:,.0f} J"))
    if answer is not None and run.kind in ("proposal", "synthesis"):
        rows.append(("score", "unscored" if answer.score is None else f"{answer.score:.1f}/10"))
    rows.append(("checks", verifier_words(run.verifier)))
    if run.reason or run.error:
        rows.append(("note", one_line(run.reason or run.error, 200)))
    t = Text(end="")
    for i, (k, v) in enumerate(rows):
        if i:
            t.append("\n")
        t.append(f"{k:<8}", style="bold")
        t.append(v)
    return t


def summary_text(run: RunRecord) -> Text:
    secs = run.total_s if run.total_s is not None else run.wall_s
    t = Text(end="", no_wrap=False)
    t.append(f"{run.kind} · {run.status}", style="bold")
    t.append(f" · {fmt_int(run.tokens)} tok · {fmt_num(run.tok_per_s)} tok/s · {fmt_num(secs)} s · "
             f"VRAM {fmt_mb(run.vram_mb)} · {fmt_clock(run.started_at)}")
    if run.reason or run.error:
        t.append(f" · {one_line(run.reason or run.error, 80)}")
    return t


def question_text(rnd: Round) -> Content:
    """The round's question, whole (sanitised: it may come from a model or a person's paste)."""
    return Content.assemble((f"Cycle {rnd.cycle} · question ", "bold $text-accent"), sanitize(rnd.question).strip())


def round_text(rnd: Round, selected: int | None) -> Content:
    """The round at a glance: each answer (author, kind, score or unscored, verifier ✓ or its
    failures); ▸ marks the one shown below."""
    parts: list[str | tuple[str, str]] = []
    for a in rnd.answers():
        run = a.run
        if parts:
            parts.append("\n")
        parts.append(("▸ " if a.seq == selected else "  ", "bold $text-accent"))
        parts.append((f"{one_line(run.student, 12):<12}", "bold"))
        parts.append((f"{one_line(run.kind, 10):<10}", "$text-muted"))
        score = score_label(a) if run.kind in ("proposal", "synthesis") else ""
        parts.append((f"{score:>8}", "$text-muted" if a.score is None else "bold"))
        mark, style = verifier_mark(run.verifier)
        parts.append((f" {mark}", style))
        if run.status != "ok":
            parts.append((f" {run.status}", "$text-warning"))
        if run.verifier:
            parts.append((f" {one_line('; '.join(run.verifier), REASON_CHARS)}", "$text-error"))
    return Content.assemble(*parts)


def detail_text(answer: Answer) -> Content:
    """The answer's scores, criterion by criterion with the judges' reasons, and the verifier's failures."""
    run = answer.run
    parts: list[str | tuple[str, str]] = []
    if run.kind in ("proposal", "synthesis"):
        by = f" by {', '.join(one_line(j, 24) for j in answer.judges)}" if answer.judges else ""
        if answer.score is not None:
            parts += [("Score ", "bold"), (f"{answer.score:.1f}/10", "bold $text-success"), by]
        elif answer.scored:
            why = f": {one_line(answer.score_reason, REASON_CHARS)}" if answer.score_reason else ""
            parts += [("Unscored", "bold $text-warning"), by + why]
        for criterion, value in (answer.scores or {}).items():
            score, reason = _criterion(value)
            parts.append("\n  ")
            parts.append((f"{one_line(str(criterion), 16):<12}", "bold"))
            parts.append(f" {score:>4}")
            if reason:
                parts.append((f"  {one_line(reason, REASON_CHARS)}", "$text-muted"))
    if run.verifier:
        if parts:
            parts.append("\n")
        parts.append(("Verifier ✗ ", "bold $text-error"))
        parts.append("; ".join(one_line(f, REASON_CHARS) for f in run.verifier))
    return Content.assemble(*parts)


def _criterion(value: object) -> tuple[str, str]:
    """(score, reason) of one rubric entry, whatever shape the judge's answer had."""
    if isinstance(value, dict):
        score, reason = value.get("score"), value.get("reason", "")
    else:
        score, reason = value, ""
    shown = f"{score:.1f}" if isinstance(score, int | float) else one_line(str(score), 6) if score is not None else "—"
    return shown, str(reason or "")


class ProposalView(Horizontal):
    """`show(run)`: the Markdown text (raw HTML shown as text, links never opened) and the metrics."""

    DEFAULT_CSS = """
    ProposalView {
        height: 1fr;
        #proposal-scroll { width: 1fr; height: 1fr; }
        #proposal-md { margin: 0 1; }
        #proposal-question { height: auto; padding: 0 1 1 1; }
        #proposal-round { height: auto; padding: 0 1; }
        #proposal-round.-none { display: none; }
        #proposal-detail { height: auto; padding: 1 1 0 1; }
        #proposal-summary { height: auto; padding: 0 1; color: $text-muted; }
        #proposal-metrics { width: 30; height: auto; padding: 0 1; border-left: vkey $foreground 20%; }
    }
    """

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self._shown: tuple | None = None
        self._shown_run: tuple | None = None

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="proposal-scroll"):
            yield Static(id="proposal-question", markup=False)
            yield Static(id="proposal-round", markup=False)
            yield Static(id="proposal-summary", markup=False)
            yield Static(id="proposal-detail", markup=False)
            yield Markdown("*No proposal yet.*", id="proposal-md", open_links=False, parser_factory=markdown_parser)
        yield Static(id="proposal-metrics", markup=False)

    def show(self, run: RunRecord | None, answer: Answer | None = None, rnd: Round | None = None) -> None:
        """Show `run` (with its `answer`'s score, and its round `rnd` on top, when given)."""
        which = None if run is None else (run.session_id, run.cycle, run.student, run.id, run.started_at)
        key = None if run is None else (
            which,
            None if answer is None else (answer.seq, answer.scored, answer.score, answer.score_reason),
            None if rnd is None else (rnd.question, tuple((a.seq, a.score, a.run.verifier) for a in rnd.answers())),
        )
        if key == self._shown:
            return
        same_run = which is not None and which == self._shown_run
        self._shown, self._shown_run = key, which
        md = self.query_one(Markdown)
        metrics = self.query_one("#proposal-metrics", Static)
        question = self.query_one("#proposal-question", Static)
        round_card = self.query_one("#proposal-round", Static)
        detail = self.query_one("#proposal-detail", Static)
        if run is None:
            md.update("*No proposal yet: they appear here as the students finish.*")
            metrics.update("")
            self.query_one("#proposal-summary", Static).update("")
            question.update("")
            round_card.update("")
            detail.update("")
            question.display = detail.display = False
            round_card.set_class(True, "-none")
            return
        question.update(question_text(rnd) if rnd is not None else "")
        round_card.update(round_text(rnd, answer.seq if answer else None) if rnd is not None else "")
        question.display = rnd is not None and bool(rnd.question)  # an older engine's runs have none
        round_card.set_class(rnd is None, "-none")  # a class, not `display`: app.tcss hides it when narrow
        facts = detail_text(answer if answer is not None else Answer(seq=0, run=run))
        detail.update(facts)
        detail.display = bool(facts.plain)
        metrics.update(metrics_text(run, answer))
        self.query_one("#proposal-summary", Static).update(summary_text(run))
        if same_run:
            return  # a score arrived for the answer shown: keep the text and where the reader is in it
        md.update(sanitize(run.proposal) or "*(empty proposal)*")
        self.query_one("#proposal-scroll").scroll_home(animate=False)

    def on_markdown_link_clicked(self, event: Markdown.LinkClicked) -> None:
        event.stop()
        self.notify(
            f"Links in model text are not opened: {one_line(event.href, 120)}",
            title="Link not followed",
            severity="warning",
            markup=False,
        )
