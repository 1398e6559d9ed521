"""One proposal: its metrics beside it, and the text as Markdown, sanitised and inert."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Horizontal, VerticalScroll
from textual.widgets import Markdown, Static

from rhtui.engine.records import RunRecord
from rhtui.tui.text import fmt_clock, fmt_int, fmt_mb, fmt_num, markdown_parser, one_line, sanitize


def metrics_text(run: RunRecord) -> Text:
    rows = [
        ("student", one_line(run.student, 24)),
        ("model", one_line(run.model, 24)),
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
    t.append(f"{run.status}", style="bold")
    t.append(f" · {fmt_int(run.tokens)} tok · {fmt_num(run.tok_per_s)} tok/s · {fmt_num(secs)} s · "
             f"VRAM {fmt_mb(run.vram_mb)} · {fmt_clock(run.started_at)}")
    if run.reason or run.error:
        t.append(f" · {one_line(run.reason or run.error, 80)}")
    return t


class ProposalView(Horizontal):
    """`show(run)`: the Markdown text (raw HTML shown as text, links never opened) and the metrics."""

    DEFAULT_CSS = """
    ProposalView {
        height: 1fr;
        #proposal-scroll { width: 1fr; height: 1fr; }
        #proposal-md { margin: 0 1; }
        #proposal-summary { height: auto; padding: 0 1; color: $text-muted; }
        #proposal-metrics { width: 30; height: auto; padding: 0 1; border-left: vkey $foreground 20%; }
    }
    """

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self._shown: tuple | None = None

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="proposal-scroll"):
            yield Static(id="proposal-summary", markup=False)
            yield Markdown("*No proposal yet.*", id="proposal-md", open_links=False, parser_factory=markdown_parser)
        yield Static(id="proposal-metrics", markup=False)

    def show(self, run: RunRecord | None) -> None:
        key = None if run is None else (run.session_id, run.cycle, run.student, run.id, run.started_at)
        if key == self._shown:
            return
        self._shown = key
        md = self.query_one(Markdown)
        metrics = self.query_one("#proposal-metrics", Static)
        if run is None:
            md.update("*No proposal yet: they appear here as the students finish.*")
            metrics.update("")
            self.query_one("#proposal-summary", Static).update("")
            return
        md.update(sanitize(run.proposal) or "*(empty proposal)*")
        metrics.update(metrics_text(run))
        self.query_one("#proposal-summary", Static).update(summary_text(run))
        self.query_one("#proposal-scroll").scroll_home(animate=False)

    def on_markdown_link_clicked(self, event: Markdown.LinkClicked) -> None:
        event.stop()
        self.notify(
            f"Links in model text are not opened: {one_line(event.href, 120)}",
            title="Link not followed",
            severity="warning",
            markup=False,
        )
