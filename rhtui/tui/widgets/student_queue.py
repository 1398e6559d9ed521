"""The student queue: one row per student with its status, its role this cycle, its learned profile,
its mean score and whether it fits."""

from __future__ import annotations

from collections.abc import Sequence

from rich.text import Text
from textual.binding import Binding
from textual.widgets import DataTable
from textual.widgets.data_table import ColumnKey

from rhtui.tui.state import StudentRow
from rhtui.tui.text import fmt_gb, fmt_int, fmt_num, one_line, theme_color
from rhtui.tui.textual_compat import bound_render_caches, update_row_cells

STATUS_ICON = {
    "waiting": "· waiting",
    "next": "» next",
    "loading": "◌ loading",
    "running": "▶ running",
    "unloading": "◌ unloading",
    "done": "✔ done",
    "timeout": "◔ timeout",
    "failed": "✖ failed",
    "aborted": "✖ aborted",
    "emergency": "■ emergency",
    "skipped": "↷ skipped",
    "disabled": "⊘ disabled",
    "missing": "✖ missing",
    "idle": "· idle",
}
STATUS_COLOR = {
    "next": "text-accent",
    "loading": "text-accent",
    "running": "text-success",
    "unloading": "text-accent",
    "done": "text-success",
    "timeout": "text-warning",
    "failed": "text-error",
    "aborted": "text-warning",
    "emergency": "text-error",
    "skipped": "text-warning",
    "disabled": "dim",
    "missing": "text-error",
    "waiting": "",
    "idle": "dim",
}

ROLE_LABEL = {
    "proposal": "prop", "proposer": "prop", "critique": "crit", "critic": "crit",
    "synthesis": "synth", "judge": "judge",
}
"""A role (or a run's kind) in five cells at most."""

# (key, label, compact width, wide width); width 0 = takes the rest
COLUMNS = (
    ("name", "Student", 10, 13),
    ("status", "Status", 11, 12),
    ("role", "Role", 5, 5),
    ("now", "Now", 0, 0),
    ("runs", "Runs", 4, 5),
    ("vram", "GB μ/p95", 8, 0),
    ("vram_mean", "VRAM μ MB", 0, 9),
    ("vram_p95", "p95 MB", 0, 7),
    ("secs", "s μ", 5, 6),
    ("tps", "tok/s", 5, 6),
    ("score", "Score", 5, 5),
    ("need", "Need MB", 0, 7),
    ("fits", "Fits", 4, 4),
)
WIDE_AT = 118
DROPS = ("need", "vram_p95", "runs", "secs")
"""Left out in this order while the Now column would be narrower than NOW_MIN (an 80- or 120-column
terminal): what a row says now matters more than these."""
NOW_MIN = {False: 14, True: 26}


class StudentQueue(DataTable):
    """Rows keyed by student name. `show(rows, next_student)` updates only changed cells.

    `space` on a row asks the screen to enable/disable that student, `u` to release it from
    quarantine (the bindings live on the dashboard screen, so they show in the footer and the help).
    """

    DEFAULT_CSS = """
    StudentQueue {
        height: auto;
        max-height: 12;
        scrollbar-size-vertical: 1;
    }
    """

    BINDINGS = [Binding("enter", "select_cursor", "Select", show=False)]

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id, cursor_type="row", zebra_stripes=False, show_cursor=True)
        bound_render_caches(self, rows=12, columns=12)  # max-height 12; updated every second
        self._rows: dict[str, tuple] = {}
        self._order: list[str] = []
        self._wide: bool | None = None
        self._last: tuple[Sequence[StudentRow], str | None] = ((), None)

    def on_mount(self) -> None:
        self.app.theme_changed_signal.subscribe(self, lambda _t: self._rebuild())

    def on_resize(self) -> None:
        wide = self.size.width >= WIDE_AT
        width = self.size.width
        if wide != self._wide or getattr(self, "_built_width", None) != width:
            self._built_width = width
            self._wide = wide
            self._rebuild()

    @property
    def cursor_student(self) -> str | None:
        if not self.row_count:
            return None
        try:
            key = self.coordinate_to_cell_key(self.cursor_coordinate).row_key
        except Exception:
            return None
        return key.value

    def _columns(self) -> list[tuple[str, str, int]]:
        cols = [
            (k, label, ww if self._wide else cw)
            for k, label, cw, ww in COLUMNS
            if (ww if self._wide else cw) or k == "now"
        ]

        def rest(cs: list[tuple[str, str, int]]) -> int:
            return self.size.width - (sum(w + 2 * self.cell_padding for _, _, w in cs) + 1)

        for key in DROPS:
            if rest(cols) >= NOW_MIN[bool(self._wide)]:
                break
            cols = [c for c in cols if c[0] != key]
        now_w = max(10, rest(cols))
        return [(k, label, now_w if k == "now" else w) for k, label, w in cols]

    def _rebuild(self) -> None:
        if self._wide is None:
            return
        cursor = self.cursor_student
        self.clear(columns=True)
        self._rows.clear()
        self._order.clear()
        for key, label, width in self._columns():
            self.add_column(Text(label, style="bold", end=""), key=key, width=width)
        rows, nxt = self._last
        self._apply(rows, nxt)
        if cursor in self._order:
            self.move_cursor(row=self._order.index(cursor), animate=False)

    def show(self, rows: Sequence[StudentRow], next_student: str | None) -> None:
        self._last = (list(rows), next_student)
        if self._wide is None:
            return
        self._apply(rows, next_student)

    def _apply(self, rows: Sequence[StudentRow], next_student: str | None) -> None:
        keys = [k.value or "" for k in self.columns]  # every column is added with a key
        colors = self.app.theme_variables
        now_w = self.columns[ColumnKey("now")].width if "now" in self.columns else 20
        for r in rows:
            cells = self._cells(r, next_student, colors, now_w)
            vals = tuple(cells[k] for k in keys)
            sig = tuple((c.plain, str(c.style)) for c in vals)
            old = self._rows.get(r.name)
            if old is None:
                self.add_row(*vals, key=r.name)
                self._order.append(r.name)
            elif old != sig:
                # the changed cells only, repainting this row alone (usually the Now cell)
                update_row_cells(self, r.name, {k: cell for k, a, b, cell in zip(keys, old, sig, vals, strict=False)
                                                if a != b})
            self._rows[r.name] = sig

    def _cells(self, r: StudentRow, next_student: str | None, colors: dict, now_w: int) -> dict[str, Text]:
        status = r.status
        if status == "waiting" and r.name == next_student:
            status = "next"
        if not r.enabled and status in ("waiting", "next", "idle", "done", "skipped"):
            status = "disabled"
        cname = STATUS_COLOR.get(status, "")
        color = "dim" if cname == "dim" else theme_color(colors, cname) if cname else ""
        active = status in ("running", "loading", "unloading")
        base = "bold" if active else ""
        style = f"{base} {color}".strip()
        p = r.profile()

        def t(s: str, st: str = "") -> Text:
            return Text(s, style=st or base, end="", no_wrap=True, overflow="ellipsis")

        roomy = now_w >= 26
        if active and r.status == "loading" and r.preload_beside is not None:
            now = f"preloading beside {one_line(r.preload_beside, 20)}" if roomy else "preloading"
        elif active:
            bits = []
            if r.tok_s is not None:
                bits.append(f"{r.tok_s:.0f} t/s")
            if r.tokens and roomy:
                bits.append(f"{fmt_int(r.tokens)} tok")
            bits.append(f"{r.elapsed_s or 0:.0f}/{r.timeout_s or 0:.0f}s" if not roomy
                        else f"{r.elapsed_s or 0:.0f}/{r.timeout_s or 0:.0f} s")
            if r.status == "loading" and r.tok_s is None:
                bits.insert(0, "loading")
            now = " ".join(bits)
        elif status in ("done",):
            now = (f"{fmt_int(r.tokens)} tok in {fmt_num(r.elapsed_s)} s" if roomy
                   else f"{fmt_int(r.tokens)} tok {r.elapsed_s or 0:.0f}s")
        elif status == "disabled":
            now = "disabled (space to enable)" if r.status != "disabled" or not r.reason else one_line(r.reason)
        elif r.health != "healthy":  # failing: say so first (quarantined: how to release it)
            hint = " (u releases)" if r.health == "quarantined" else ""
            now = f"{r.health}{hint}: {one_line(r.health_reason)}"
        elif status in ("next", "waiting") and r.fits is False:
            now = "may not fit: " + one_line(r.fit_reason)
        elif status in ("next", "waiting") and r.position:
            now = f"#{r.position} in cycle"
        else:
            now = one_line(r.reason)
        if self._wide:
            vram = {
                "vram_mean": t(fmt_int(p.vram_mean_mb)),
                "vram_p95": t(fmt_int(p.vram_p95_mb)),
                "need": t(fmt_int(r.need_mb)),
            }
        else:
            vram = {"vram": t(f"{_gb(p.vram_mean_mb)}/{_gb(p.vram_p95_mb)}")}
        if r.fits is None:
            fits = t("—")
        elif r.fits:
            fits = t("yes", f"{base} {theme_color(colors, 'text-success')}".strip())
        else:
            fits = t("NO", f"bold {theme_color(colors, 'text-error')}".strip())
        return {
            "name": t(("▶ " if active else "  ") + r.name if self._wide else r.name, style),
            "status": t(STATUS_ICON.get(status, status), style),
            "role": t(_role(r, active)),
            "now": t(now, style if active else _health_style(r.health, colors)),
            "runs": t(str(p.runs) if p.runs else "—"),
            **vram,
            "secs": t(fmt_num(p.seconds_mean)),
            "tps": t(fmt_num(p.tok_per_s_mean, 0)),
            "score": t(fmt_num(r.mean_score)),
            "fits": fits,
        }


def _health_style(health: str, colors: dict) -> str:
    """The Now cell of a failing student: warning colour when degraded, error when quarantined."""
    name = {"degraded": "text-warning", "quarantined": "text-error"}.get(health)
    return theme_color(colors, name) if name else ""


def _role(r: StudentRow, active: bool) -> str:
    """Its role this cycle; while it runs, what the run is (the critic judges after its critique)."""
    label = (r.kind if active else "") or r.role
    if not label:
        return "—"
    return ROLE_LABEL.get(label, one_line(label, 5))


def _gb(mb: float | None) -> str:
    return "—" if mb is None else fmt_gb(mb)
