"""Waiting in tests: one way to wait for something, with a deadline and a readable failure.

`until(predicate)` polls a condition from plain (thread) code; `until_async(predicate)`
from a coroutine (the predicate may then be async too). Both return the predicate's
first truthy value, and fail the test (AssertionError) with `what` when the deadline
passes. A predicate may itself assert, to stop waiting early (the program exited, the
session ended...).

`wait` is what is done between two polls, for `interval` seconds: `time.sleep` /
`asyncio.sleep` by default; pass `pilot.pause` for a Textual app (it lets the app
process its messages) or a terminal's `pump` (a terminal nobody reads blocks its program).
"""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

T = TypeVar("T")

Describe = str | Callable[[], str]
"""What was waited for, or a function that says it (called only on failure: it may read a log)."""


def _failure(what: Describe, predicate: Callable[[], object], timeout: float) -> str:
    text = what() if callable(what) else what
    name = getattr(predicate, "__name__", "the condition")
    return f"not met within {timeout:g} s: {text or name}"


def until(
    predicate: Callable[[], T],
    *,
    timeout: float = 30.0,
    interval: float = 0.05,
    what: Describe = "",
    wait: Callable[[float], object] = time.sleep,
) -> T:
    """Poll `predicate` every `interval` s until it returns a truthy value (returned); fail after `timeout` s."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(_failure(what, predicate, timeout))
        wait(interval)


async def until_async(
    predicate: Callable[[], T | Awaitable[T]],
    *,
    timeout: float = 30.0,
    interval: float = 0.05,
    what: Describe = "",
    wait: Callable[[float], Awaitable[object]] = asyncio.sleep,
) -> T:
    """`until` for coroutines: the wait between polls is awaited (`asyncio.sleep`, `pilot.pause`), and so
    is the predicate's answer when it is a coroutine (`until_async(lambda: backend.ps())`)."""
    deadline = time.monotonic() + timeout
    while True:
        answer = predicate()
        value = await answer if inspect.isawaitable(answer) else answer
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(_failure(what, predicate, timeout))
        await wait(interval)
