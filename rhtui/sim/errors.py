"""The one error type of the simulator's Ollama: an HTTP status and Ollama's error text."""

from __future__ import annotations

__all__ = ["SimError"]


class SimError(Exception):
    """An error Ollama would answer with: HTTP `status` and `message` (the "error" text)."""

    def __init__(self, status: int, message: str) -> None:
        self.status = status
        self.message = message
        super().__init__(message)
