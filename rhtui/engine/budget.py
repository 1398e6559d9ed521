"""The budget guard: the rules that protect the card, as pure functions of a snapshot.

No I/O, no clock, no sleeping: a `BudgetPolicy` and a `HardwareSnapshot` in, a
`Decision` (or a zone, or a yes/no) out, so every rule has a plain unit test.

The fit rule for a load of `need` MB (both must hold):

* ``need + reserve_mb <= free`` — the reserve stays free after the load;
* ``used + need <= max_fraction * total`` — use never passes the max fraction.

And, when the snapshot reports RAM, ``ram_total - ram_used >= ram_reserve_mb``.
When the snapshot has no VRAM figures (no NVML and nothing judged from Ollama's
/api/ps), the load is admitted on Ollama's own checks and the reason says so;
the RAM rule still applies.

Two students resident at once (`BudgetGuard.admit_pair`: the next one loads while
the running one writes). The snapshot is taken with the running student loaded, so
its resident memory is already in ``used``; it may still grow to its learned need,
so ``headroom = max(0, running_need - running_resident)`` (the whole running need
when its resident size is not known) is counted as used too:

* ``next_need + reserve_mb <= free - headroom``;
* ``used + headroom + next_need <= max_fraction * total``.

The RAM rule applies as for one student. Unknown VRAM refuses a pair: two students
overlap only when the card is measured. `BudgetGuard.pair_fits` is the same rule
before anything is loaded: ``a + b + reserve_mb <= total - baseline`` and
``baseline + a + b <= max_fraction * total``, where ``baseline`` is the VRAM other
processes use.

Zones of VRAM use (fraction f = used / total):

* ``unknown`` — no VRAM figures;
* ``ok`` — f < max_fraction - 0.05;
* ``warning`` — max_fraction - 0.05 <= f <= max_fraction;
* ``limit`` — max_fraction < f <= emergency_fraction;
* ``emergency`` — f > emergency_fraction (abort, unload, pause).

Comparisons are made in MB against ``fraction * total`` (never on a divided
fraction), so `is_emergency`, `zone` and `may_resume` agree at the boundaries.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal, TypeGuard

from rhtui.engine.config import BudgetPolicy
from rhtui.engine.hardware import HardwareSnapshot

Zone = Literal["unknown", "ok", "warning", "limit", "emergency"]

WARNING_MARGIN = 0.05
"""The warning zone starts this share of the card below max_fraction."""


@dataclass(frozen=True, slots=True)
class Decision:
    """The guard's answer; `reason` is always filled for a refusal (and usually for an admission)."""

    ok: bool
    reason: str = ""


def _mb(x: float) -> str:
    return f"{x:.0f} MB"


def _n(x: float) -> str:
    """5012.4 -> '5,012' (the pair rules' figures, grouped so sums read at a glance)."""
    return f"{x:,.0f}"


def _usable_need(x: float | None) -> TypeGuard[float]:
    """A need the rules can use: a finite number, not negative."""
    return x is not None and math.isfinite(x) and x >= 0


def _pct(fraction: float) -> str:
    """0.9 -> '90 %', 0.875 -> '87.5 %'."""
    return f"{round(fraction * 100, 1):g} %"


def vram_figures(snap: HardwareSnapshot) -> tuple[float, float] | None:
    """(total, used) in MB when the snapshot measures VRAM, else None."""
    total, used = snap.vram_total_mb, snap.vram_used_mb
    if total is None or used is None:
        return None
    if not (math.isfinite(total) and math.isfinite(used)) or total <= 0:
        return None
    return float(total), float(used)


class BudgetGuard:
    """Decides whether a load fits and which zone the card is in. Pure and deterministic."""

    def __init__(self, policy: BudgetPolicy) -> None:
        self.policy = policy

    # -- limits ---------------------------------------------------------------

    @property
    def warning_fraction(self) -> float:
        return max(0.0, self.policy.max_fraction - WARNING_MARGIN)

    def limits_mb(self, total_mb: float) -> tuple[float, float]:
        """(max_mb, emergency_mb): the use that must never be passed, and the emergency line."""
        return (self.policy.max_fraction * total_mb, self.policy.emergency_fraction * total_mb)

    # -- admission ------------------------------------------------------------

    def admit(self, need_mb: float, snap: HardwareSnapshot) -> Decision:
        """May a model needing `need_mb` MB of VRAM be loaded now?"""
        p = self.policy
        if need_mb is None or not math.isfinite(need_mb) or need_mb < 0:
            return Decision(False, f"no usable VRAM estimate ({need_mb!r} MB): not loaded")
        refusals: list[str] = []
        ram = self._ram_refusal(snap)
        if ram:
            refusals.append(ram)
        figures = vram_figures(snap)
        if figures is None:
            if refusals:
                return Decision(False, "; ".join(refusals))
            return Decision(
                True,
                f"VRAM is not measured: needs ~{_mb(need_mb)}, admitted on Ollama's own checks",
            )
        total, used = figures
        free = max(0.0, total - used)
        max_mb = p.max_fraction * total
        if need_mb + p.reserve_mb > free:
            refusals.append(f"needs {_mb(need_mb)} + {_mb(p.reserve_mb)} reserve, only {_mb(free)} free")
        if used + need_mb > max_mb:
            after = used + need_mb
            refusals.append(
                f"would reach {after:.0f} of {total:.0f} MB ({after / total * 100:.1f} %), "
                f"above the {_pct(p.max_fraction)} limit"
            )
        if refusals:
            return Decision(False, "; ".join(refusals))
        after = used + need_mb
        return Decision(
            True,
            f"fits: needs {_mb(need_mb)} + {_mb(p.reserve_mb)} reserve of {_mb(free)} free, "
            f"reaches {after:.0f} of {total:.0f} MB ({after / total * 100:.1f} %)",
        )

    def admit_pair(
        self,
        running_need_mb: float,
        next_need_mb: float,
        snap: HardwareSnapshot,
        *,
        running_resident_mb: float | None,
    ) -> Decision:
        """May the next student be loaded while the running one stays resident?

        `snap` was sampled with the running student loaded (its memory is in the used
        VRAM); `running_resident_mb` is what Ollama's /api/ps says it holds now (None:
        not reported, so all of its need is counted on top of the used VRAM)."""
        p = self.policy
        if not _usable_need(running_need_mb):
            return Decision(False, f"no usable VRAM estimate for the running student ({running_need_mb!r} MB): "
                                   "the next one waits until it is unloaded")
        if not _usable_need(next_need_mb):
            return Decision(False, f"no usable VRAM estimate ({next_need_mb!r} MB): not loaded alongside")
        refusals: list[str] = []
        ram = self._ram_refusal(snap)
        if ram:
            refusals.append(ram)
        figures = vram_figures(snap)
        if figures is None:
            refusals.append("VRAM is not measured: two students are resident at once only when the card's "
                            "use can be measured, so the next one loads after the running one is unloaded")
            return Decision(False, "; ".join(refusals))
        total, used = figures
        # not reported: none of its need is taken as already in `used`; never more than the card says is used
        resident = running_resident_mb
        counted = min(float(resident), max(0.0, used)) if _usable_need(resident) else 0.0
        headroom = max(0.0, running_need_mb - counted)
        running_mb = counted + headroom  # the running student at its need, or what it holds if more
        free = max(0.0, total - used)
        free_of_others = free + counted  # free but for the running student
        max_mb = p.max_fraction * total
        after = used + headroom + next_need_mb
        if next_need_mb + p.reserve_mb > free - headroom:
            refusals.append(
                f"both resident: {_n(running_mb)} + {_n(next_need_mb)} MB + {_n(p.reserve_mb)} MB reserve, "
                f"{_n(free_of_others)} MB free"
            )
        if after > max_mb:
            refusals.append(
                f"both resident would reach {_n(after)} of {_n(total)} MB ({after / total * 100:.1f} %), "
                f"above the {_pct(p.max_fraction)} limit"
            )
        if headroom > 0 and counted > 0:
            grows = f"; the running one holds {_n(counted)} MB now and may grow to {_n(running_mb)} MB"
        elif headroom > 0:
            grows = "; the running one's resident size is not reported: all its need is counted"
        else:
            grows = ""
        if refusals:
            return Decision(False, "; ".join(refusals) + grows)
        return Decision(
            True,
            f"both fit: {_n(running_mb)} + {_n(next_need_mb)} MB + {_n(p.reserve_mb)} MB reserve of "
            f"{_n(free_of_others)} MB free, reaches {_n(after)} of {_n(total)} MB ({after / total * 100:.1f} %)"
            + grows,
        )

    def pair_fits(
        self, a_need: float | None, b_need: float | None, baseline_used_mb: float | None, total_mb: float | None
    ) -> Decision:
        """Would students needing `a_need` and `b_need` MB fit on the card together, with
        `baseline_used_mb` used by other processes? For planning a round before loading."""
        p = self.policy
        if not (_usable_need(a_need) and _usable_need(b_need)):
            return Decision(False, f"no usable VRAM estimate ({a_need!r} + {b_need!r} MB): not planned together")
        if (
            total_mb is None or baseline_used_mb is None
            or not (math.isfinite(total_mb) and math.isfinite(baseline_used_mb)) or total_mb <= 0
        ):
            return Decision(False, "VRAM is not measured: two students are planned together only on a measured card")
        total, base = float(total_mb), float(baseline_used_mb)
        both = a_need + b_need
        free = total - base
        after = base + both
        refusals: list[str] = []
        if both + p.reserve_mb > free:
            refusals.append(
                f"together {_n(a_need)} + {_n(b_need)} MB + {_n(p.reserve_mb)} MB reserve, {_n(max(0.0, free))} MB free"
            )
        if after > p.max_fraction * total:
            refusals.append(
                f"together would reach {_n(after)} of {_n(total)} MB ({after / total * 100:.1f} %), "
                f"above the {_pct(p.max_fraction)} limit"
            )
        if refusals:
            return Decision(False, "; ".join(refusals))
        return Decision(
            True,
            f"together {_n(a_need)} + {_n(b_need)} MB + {_n(p.reserve_mb)} MB reserve of {_n(free)} MB free, "
            f"reaches {_n(after)} of {_n(total)} MB ({after / total * 100:.1f} %)",
        )

    def _ram_refusal(self, snap: HardwareSnapshot) -> str:
        total, used = snap.ram_total_mb, snap.ram_used_mb
        if total is None or used is None or not (math.isfinite(total) and math.isfinite(used)):
            return ""
        free = max(0.0, total - used)
        if free < self.policy.ram_reserve_mb:
            return f"only {_mb(free)} of RAM free, {_mb(self.policy.ram_reserve_mb)} must stay free"
        return ""

    # -- zones ----------------------------------------------------------------

    def is_emergency(self, snap: HardwareSnapshot) -> bool:
        """VRAM use above emergency_fraction of the card (False when VRAM is not measured)."""
        figures = vram_figures(snap)
        if figures is None:
            return False
        total, used = figures
        return used > self.policy.emergency_fraction * total

    def zone(self, snap: HardwareSnapshot) -> Zone:
        figures = vram_figures(snap)
        if figures is None:
            return "unknown"
        total, used = figures
        if used > self.policy.emergency_fraction * total:
            return "emergency"
        if used > self.policy.max_fraction * total:
            return "limit"
        if used >= self.warning_fraction * total:
            return "warning"
        return "ok"

    def may_resume(self, snap: HardwareSnapshot) -> bool:
        """Back under the max fraction. Unknown VRAM is not a confirmation: False (resume by key)."""
        figures = vram_figures(snap)
        if figures is None:
            return False
        total, used = figures
        return used <= self.policy.max_fraction * total
