"""Energy and what it costs: the arithmetic and the wording `rhtui report` and the status bar share.

Energy is what the runs drew: each run's `energy_j` (its power samples integrated, see the
orchestrator), summed. The cost is that energy at `cost.price_per_kwh`; the cost of a million
tokens here is set against `cost.api_price_per_mtok`, an API's price, as the original system's
cost report did ("local: X per Mtok vs API: Y per Mtok, N× cheaper").
"""

from __future__ import annotations

import math
from dataclasses import dataclass

J_PER_WH = 3600.0


def energy_wh(energy_j: float | None) -> float | None:
    """Joules as watt-hours (None stays None: nothing was measured)."""
    return None if energy_j is None else energy_j / J_PER_WH


def cost_of(wh: float | None, price_per_kwh: float | None) -> float | None:
    """What `wh` cost at `price_per_kwh`; None when either is unknown."""
    if wh is None or price_per_kwh is None:
        return None
    return wh / 1000.0 * price_per_kwh


def tokens_per_wh(tokens: int | None, wh: float | None) -> float | None:
    """Tokens for each Wh drawn; None without energy (or with none drawn)."""
    if tokens is None or wh is None or wh <= 0:
        return None
    return tokens / wh


def cost_per_mtok(cost: float | None, tokens: int | None) -> float | None:
    """What a million tokens cost here; None without a cost or a token."""
    if cost is None or not tokens:
        return None
    return cost / tokens * 1_000_000


def fmt_energy(wh: float | None) -> str:
    """'12.3 Wh', '4.56 kWh' from 1,000 Wh; 'N/A' when no power was measured."""
    if wh is None:
        return "N/A"
    if wh >= 1000:
        return f"{wh / 1000:,.2f} kWh"
    return f"{wh:,.1f} Wh"


def fmt_money(amount: float, currency: str = "") -> str:
    """An amount with three significant digits (two decimals from 1 on), the currency after it."""
    if amount == 0:
        text = "0"
    elif abs(amount) >= 100:
        text = f"{amount:,.0f}"
    elif abs(amount) >= 1:
        text = f"{amount:,.2f}"
    else:
        decimals = min(8, 2 - math.floor(math.log10(abs(amount))))
        text = f"{amount:.{decimals}f}"
    return f"{text} {currency}" if currency else text


@dataclass(frozen=True, slots=True)
class Comparison:
    """The cost of a million tokens here against an API's price."""

    local_per_mtok: float
    api_per_mtok: float
    api_over_local: float | None
    """How many times the API costs what the same tokens cost here (None when they cost nothing here)."""
    summary: str
    """'local: 0.0123 EUR per Mtok vs API: 2.00 EUR per Mtok, 163× cheaper'."""


def compare(local_per_mtok: float | None, api_per_mtok: float | None, currency: str = "") -> Comparison | None:
    """The comparison, or None when either price is unknown."""
    if local_per_mtok is None or api_per_mtok is None:
        return None
    head = (f"local: {fmt_money(local_per_mtok, currency)} per Mtok vs API: "
            f"{fmt_money(api_per_mtok, currency)} per Mtok")
    if local_per_mtok == 0:
        return Comparison(local_per_mtok, api_per_mtok, None, f"{head}, free here")
    ratio = api_per_mtok / local_per_mtok
    if ratio >= 1:
        verdict = f"{ratio:,.0f}× cheaper" if ratio >= 10 else f"{ratio:.1f}× cheaper"
    else:
        inverse = 1 / ratio if ratio > 0 else math.inf
        verdict = "the API is free" if math.isinf(inverse) else (
            f"the API is {inverse:,.0f}× cheaper" if inverse >= 10 else f"the API is {inverse:.1f}× cheaper")
    return Comparison(local_per_mtok, api_per_mtok, ratio, f"{head}, {verdict}")
