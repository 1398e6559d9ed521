"""The app shell against Textual's own attributes: nothing of rhtui's shadows a private
attribute of Textual's App, Screen or widgets by accident (an override of `App._flush`
once made every `print(..., flush=True)` raise while the dashboard ran)."""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import re
import sys
import textwrap

from textual.app import App
from textual.widget import Widget

import rhtui.tui
from rhtui.tui.app import RhtuiApp
from tests.ui import scenes
from tests.ui.fakes import FakeOrchestrator

INTENDED = {
    (RhtuiApp, "_handle_exception"),  # on purpose: a failure in the dashboard stops the session first
}


async def test_print_with_flush_while_the_dashboard_runs(make_ui):
    app = make_ui(scenes.mid_cycle_events(), orchestrator=FakeOrchestrator(), start_engine=True)
    async with app.run_test(size=(80, 24)) as pilot:
        print("a line on stdout", flush=True)
        print("a line on stderr", file=sys.stderr, flush=True)
        sys.stdout.flush()
        sys.stderr.flush()
        await pilot.pause()
        assert app.is_running
    assert app.return_code in (None, 0) and app.crash is None


def _classes() -> list[type]:
    out = []
    for info in pkgutil.walk_packages(rhtui.tui.__path__, "rhtui.tui."):
        module = importlib.import_module(info.name)
        for obj in vars(module).values():
            if inspect.isclass(obj) and obj.__module__ == module.__name__ and issubclass(obj, (App, Widget)):
                out.append(obj)
    return out


def _textual_base(cls: type) -> type:
    return next(b for b in cls.__mro__ if not b.__module__.startswith("rhtui"))


def _rhtui_names(cls: type) -> set[str]:
    """Class attributes and `self.x = ...` attributes that rhtui's classes in the MRO define."""
    names: set[str] = set()
    for b in cls.__mro__:
        if b.__module__.startswith("rhtui"):
            names |= set(vars(b))
            source = textwrap.dedent(inspect.getsource(b))
            names |= set(re.findall(r"self\.(\w+)\s*(?::[^=\n]+)?=(?!=)", source))
    return names


def test_no_private_textual_attribute_is_shadowed():
    clashes = []
    for cls in _classes():
        base = _textual_base(cls)
        plain = type("Plain", (base,), {})  # what Textual's metaclass puts on every subclass
        try:
            instance_names = set(vars(base()))
        except Exception:  # pragma: no cover - every base used here builds without arguments
            instance_names = set()
        textual_names = set(dir(base)) | instance_names
        for name in sorted(_rhtui_names(cls) & textual_names):
            if not name.startswith("_") or name.startswith("__") or name in vars(plain):
                continue  # public API overridden on purpose (compose, render, BINDINGS...)
            if any(issubclass(cls, c) and name == n for c, n in INTENDED):
                continue
            clashes.append(f"{cls.__qualname__}.{name} shadows {base.__name__}.{name}")
    assert clashes == []
