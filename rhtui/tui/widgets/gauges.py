"""Hardware gauges: VRAM with the reserve, the limit and the emergency line; GPU; RAM; CPU.

The VRAM zone (and so its colour and word) is the budget guard's own `BudgetGuard.zone`,
so the gauge says EMERGENCY exactly when the engine stops.
"""

from __future__ import annotations

from dataclasses import dataclass

from textual.content import Content
from textual.geometry import Region
from textual.widget import Widget

from rhtui.engine.budget import BudgetGuard, Zone
from rhtui.engine.config import BudgetPolicy
from rhtui.engine.hardware import HardwareSnapshot
from rhtui.tui.text import fmt_gb, fmt_mb, na, one_line

ZONE_STYLE: dict[Zone, str] = {
    "ok": "$success",
    "warning": "$warning",
    "limit": "bold $error",
    "emergency": "bold reverse $error",
    "unknown": "$text-muted",
}
ZONE_WORDS: dict[Zone, str] = {
    "ok": "ok",
    "warning": "high",
    "limit": "over the limit",
    "emergency": "EMERGENCY",
    "unknown": "N/A",
}


def vram_zone(used: float | None, total: float | None, budget: BudgetPolicy) -> Zone:
    """The guard's zone for `used` MB of a `total` MB card: ok / warning / limit / emergency / unknown."""
    snap = HardwareSnapshot(ts=0.0, source="gauge", vram_total_mb=total, vram_used_mb=used)
    return BudgetGuard(budget).zone(snap)


@dataclass(frozen=True, slots=True)
class GaugeValues:
    """What the gauges show, rounded to what a person can see: equal values, no redraw."""

    vram_used: float | None
    vram_total: float | None
    vram_source: str
    gpu_util: float | None
    temp: float | None
    power: float | None
    gpu_name: str | None
    processes: tuple[tuple[int, float | None], ...] | None
    ram_used: float | None
    ram_total: float | None
    cpu: float | None
    budget: tuple[float, float, float]
    zone: Zone = "unknown"
    """The guard's zone for the sample itself (not the rounded figures above)."""
    sampled: bool = True
    """False until the first hardware sample (nothing is known yet, not even what is missing)."""

    @classmethod
    def of(cls, snap: HardwareSnapshot | None, source: str, budget: BudgetPolicy) -> GaugeValues:
        def r(v: float | None, step: float = 1.0) -> float | None:
            return None if v is None or na(v) else round(v / step) * step

        if snap is None:
            return cls(None, None, source, None, None, None, None, None, None, None, None,
                       (budget.reserve_mb, budget.max_fraction, budget.emergency_fraction), sampled=False)
        return cls(
            vram_used=r(snap.vram_used_mb, 8.0),
            vram_total=r(snap.vram_total_mb),
            vram_source=source,
            gpu_util=r(snap.gpu_util_pct),
            temp=r(snap.temp_c),
            power=r(snap.power_w),
            gpu_name=snap.gpu_name,
            processes=None if snap.process_vram_mb is None else tuple(
                (pid, r(mb, 8.0)) for pid, mb in snap.process_vram_mb[:8]),
            ram_used=r(snap.ram_used_mb, 64.0),
            ram_total=r(snap.ram_total_mb),
            cpu=r(snap.cpu_pct),
            budget=(budget.reserve_mb, budget.max_fraction, budget.emergency_fraction),
            zone=BudgetGuard(budget).zone(snap),
        )


def _bar(frac: float | None, width: int, style: str) -> Content:
    if frac is None or width <= 0:
        return Content.styled("·" * max(0, width), "$text-muted")
    filled = max(0, min(width, round(frac * width)))
    return Content.assemble((("█" * filled), style), ("░" * (width - filled), "$text-muted"))


def vram_bar(used: float | None, total: float | None, budget: BudgetPolicy, width: int,
             zone: Zone | None = None) -> Content:
    """The VRAM bar: used in the zone colour, free dim, the reserve shaded (▒), limit ┊ and emergency ┃ marks.

    `zone` is the guard's zone for the sample (computed from `used` and `total` when not given)."""
    if width <= 0:
        return Content("")
    if used is None or na(used) or not total:
        return Content.styled("·" * width, "$text-muted")
    if zone is None:
        zone = vram_zone(used, total, budget)
    used_cols = max(0, min(width, round(used / total * width)))
    reserve_col = max(0, min(width, round((total - budget.reserve_mb) / total * width)))
    limit_col = min(width - 1, int(budget.max_fraction * width))
    emerg_col = min(width - 1, int(budget.emergency_fraction * width))
    parts: list[tuple[str, str]] = []
    for col in range(width):
        if col < used_cols:
            ch, style = "█", ZONE_STYLE[zone] if zone != "emergency" else "bold $error"
            if col == limit_col:
                ch = "▌" if zone in ("ok", "warning") else "█"
            if col == emerg_col:
                ch = "▌" if zone != "emergency" else "█"
        elif col == emerg_col:
            ch, style = "┃", "bold $error"
        elif col == limit_col:
            ch, style = "┊", "bold $warning"
        elif col >= reserve_col:
            ch, style = "▒", "$text-muted"
        else:
            ch, style = "░", "$text-muted"
        if parts and parts[-1][1] == style:
            parts[-1] = (parts[-1][0] + ch, style)
        else:
            parts.append((ch, style))
    return Content.assemble(*parts)


class Gauges(Widget):
    """Four lines: the VRAM bar, its legend, the GPU, RAM and CPU. N/A where not reported."""

    DEFAULT_CSS = """
    Gauges {
        height: 4;
        width: 1fr;
        padding: 0 1;
        text-wrap: nowrap;
        text-overflow: ellipsis;
    }
    """

    def __init__(self, budget: BudgetPolicy, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self._budget = budget
        self._values = GaugeValues.of(None, "probe", budget)
        self._cache: tuple[tuple, Content] | None = None

    def show(self, snap: HardwareSnapshot | None, source: str, budget: BudgetPolicy) -> None:
        self._budget = budget
        values = GaugeValues.of(snap, source, budget)
        if values == self._values:
            return
        self._values = values
        cache = self._cache
        width, height = self.content_size
        key = (values, width, height)
        if cache is None or cache[0][1:] != key[1:] or width <= 0:
            self.refresh()
            return
        # usually one figure moved (the CPU or the RAM): repaint only the rows whose text changed
        content = self._build(width)
        old_lines, new_lines = cache[1].split("\n"), content.split("\n")
        self._cache = (key, content)
        if len(old_lines) != len(new_lines):
            self.refresh()
            return
        rows = [Region(0, y, width, 1) for y, (a, b) in enumerate(zip(old_lines, new_lines, strict=True))
                if (a.plain, a.spans) != (b.plain, b.spans)]
        if rows:
            self.refresh(*rows)

    @property
    def values(self) -> GaugeValues:
        return self._values

    def render(self) -> Content:
        width = self.content_size.width
        key = (self._values, width, self.content_size.height)
        if self._cache is not None and self._cache[0] == key:
            return self._cache[1]
        content = self._build(width)
        self._cache = (key, content)
        return content

    def _build(self, width: int) -> Content:
        v, b = self._values, self._budget
        zone = v.zone
        if v.vram_total and v.vram_used is not None:
            nums = f" {fmt_gb(v.vram_used)}/{fmt_gb(v.vram_total)} GB {v.vram_used / v.vram_total:5.1%}"
        elif v.vram_used is not None:  # no NVML and no gpu_total_mb: what is used is known, the card's size not
            nums = f" {fmt_gb(v.vram_used)} GB used, total N/A"
        else:
            nums = " N/A"
        bar_w = max(10, width - 5 - len(nums))
        line1 = Content.assemble(
            ("VRAM ", "bold"), vram_bar(v.vram_used, v.vram_total, b, bar_w, zone), (nums, ZONE_STYLE[zone])
        )
        src = " (from Ollama /api/ps)" if v.vram_source == "ollama-ps" else ""
        if v.vram_total or not v.sampled:
            legend = Content.assemble(
                ("     ", ""),
                ("▒", "$text-muted"), (f" reserve {fmt_gb(b.reserve_mb)} GB  ", ""),
                ("┊", "bold $warning"), (f" {b.max_fraction:.0%} limit  ", ""),
                ("┃", "bold $error"), (f" {b.emergency_fraction:.0%} stop  ", ""),
                (ZONE_WORDS[zone], ZONE_STYLE[zone]),
                (src, "$text-muted"),
            )
        else:  # no marks to explain: say what is missing and how to give it
            legend = Content.assemble(
                ("     ", ""), ("card total N/A", ZONE_STYLE["unknown"]), (" (set gpu_total_mb)", "$text-muted"),
                (" · used from Ollama /api/ps" if v.vram_source == "ollama-ps" else "", "$text-muted"),
            )
        small = 10 if width >= 60 else 6
        gpu_parts: list[tuple[str, str] | Content] = [("GPU  ", "bold")]
        gpu_parts.append(_bar(None if v.gpu_util is None else v.gpu_util / 100, small, "$accent"))
        gpu_parts.append((f" {'N/A' if v.gpu_util is None else f'{v.gpu_util:3.0f} %'}", ""))
        gpu_parts.append((f"  temp {'N/A' if v.temp is None else f'{v.temp:.0f} °C'}", _temp_style(v.temp)))
        gpu_parts.append((f"  power {'N/A' if v.power is None else f'{v.power:.0f} W'}", ""))
        line3 = Content.assemble(*gpu_parts)
        ram_frac = (v.ram_used / v.ram_total) if (v.ram_total and v.ram_used is not None) else None
        ram_txt = f" {fmt_gb(v.ram_used)}/{fmt_gb(v.ram_total)} GB" if ram_frac is not None else " N/A"
        cpu_txt = "N/A" if v.cpu is None else f"{v.cpu:3.0f} %"
        line4 = Content.assemble(
            ("RAM  ", "bold"),
            _bar(ram_frac, small, "$accent"),
            (ram_txt, ""),
            ("   CPU ", "bold"),
            _bar(None if v.cpu is None else v.cpu / 100, small, "$accent"),
            (f" {cpu_txt}", ""),
        )
        lines = [line1, legend, line3, line4]
        if self.content_size.height >= 6:
            lines.append(Content(""))
            lines.append(Content.assemble(("card ", "bold"), (one_line(v.gpu_name, 60) or "N/A", "")))
        if self.content_size.height >= 7:
            if v.processes is None:
                procs = "not reported"
            elif not v.processes:
                procs = "none"
            else:
                procs = " · ".join(f"{pid} {'?' if mb is None else fmt_mb(mb)}" for pid, mb in v.processes)
            lines.append(Content.assemble(("GPU processes ", "bold"), (procs, "$text-muted")))
        if self.content_size.height >= 8 and v.vram_total and v.vram_used is not None:
            free = v.vram_total - v.vram_used
            room = min(free - b.reserve_mb, b.max_fraction * v.vram_total - v.vram_used)
            lines.append(Content.assemble(
                ("free ", "bold"), (f"{fmt_mb(free)}", ""),
                ("   room for a student ", "bold"),
                (f"{fmt_mb(max(0.0, room))}", ZONE_STYLE["ok" if room > 0 else "limit"]),
                (f" (keeps the reserve and {b.max_fraction:.0%})", "$text-muted"),
            ))
        return Content("\n").join(lines)


def _temp_style(temp: float | None) -> str:
    if temp is None:
        return "$text-muted"
    if temp >= 85:
        return "bold $error"
    if temp >= 75:
        return "$warning"
    return ""


__all__ = ["Gauges", "GaugeValues", "vram_bar", "vram_zone", "fmt_mb"]
