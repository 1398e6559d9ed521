"""The original system's measurements on its 12 GB RTX 4070 Super, per student:
resident VRAM (MB), seconds per proposal, tokens per proposal. The reference scenario
(`rtx4070s.toml`) is built from them; tests and benchmarks use them as known-good numbers."""

from __future__ import annotations

CARD_TOTAL_MB = 12282.0
BASELINE_USED_MB = 900.0
MEASURED: dict[str, tuple[float, float, int]] = {
    "rh-alpha": (3847.0, 28.5, 2847),
    "rh-beta": (4389.0, 31.2, 3156),
    "rh-gamma": (4401.0, 22.1, 2200),
    "rh-delta": (3821.0, 29.3, 2900),
    "rh-epsilon": (4098.0, 33.5, 3300),
    "rh-zeta": (5012.0, 38.9, 3800),
}
