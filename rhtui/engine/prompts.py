"""The research prompt bank shipped in `rhtui/data/prompts.toml`."""

from __future__ import annotations

import random
import tomllib
from importlib import resources


def load_prompts() -> list[str]:
    data = resources.files("rhtui").joinpath("data/prompts.toml").read_text(encoding="utf-8")
    prompts = [p.strip() for p in tomllib.loads(data).get("prompts", []) if str(p).strip()]
    if not prompts:  # pragma: no cover - the shipped file has prompts
        raise RuntimeError("the shipped prompt bank is empty")
    return prompts


class PromptBank:
    """Deals prompts so that a student does not get the same question twice in a row."""

    def __init__(self, prompts: list[str] | None = None, seed: int | None = None) -> None:
        self.prompts = prompts or load_prompts()
        self._rng = random.Random(seed)
        self._last: dict[str, int] = {}

    def next_for(self, student: str) -> str:
        choices = [i for i in range(len(self.prompts)) if i != self._last.get(student)] or [0]
        i = self._rng.choice(choices)
        self._last[student] = i
        return self.prompts[i]
