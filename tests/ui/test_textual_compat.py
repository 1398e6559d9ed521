"""What rhtui/tui/textual_compat.py touches of Textual's internals is still there, as it expects.

One test (or a few) per workaround. Each workaround does nothing on a Textual that no longer
has what it patches, so without these tests an upgrade would silently lose the fix (a leak
back, a slow key, a session lost to a hung-up terminal); with them it fails here, loudly,
naming what changed. Update textual_compat and its pin in pyproject.toml together.
"""

from __future__ import annotations

import importlib.metadata
import inspect
import io
import re
import sys
import threading
import tomllib
from pathlib import Path
from queue import Queue

import pytest
import textual.message_pump
import textual.screen
import textual.timer
import textual.widget
import textual.worker
from rich.text import Text
from textual import _styles_cache, reactive
from textual.app import App
from textual.binding import BindingsMap
from textual.cache import LRUCache
from textual.color import Color
from textual.dom import DOMNode
from textual.events import ScreenResume
from textual.widget import Widget
from textual.widgets import DataTable, Footer, OptionList, RichLog
from textual.widgets._footer import FooterKey
from textual_plotext import PlotextPlot
from textual_plotext.plot import Plot

from rhtui.tui import textual_compat as compat
from rhtui.tui.app import RhtuiApp
from rhtui.tui.widgets.footer import RhFooter
from tests.ui import scenes

ROOT = Path(__file__).resolve().parents[2]


def _version(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in text.split(".")[:3])


def _parameters(function: object) -> list[str]:
    return list(inspect.signature(function).parameters)


# -- the range they were checked on ------------------------------------------------------------


def test_textual_is_in_the_range_the_workarounds_were_checked_on():
    dependencies = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    assert f"textual{compat.TEXTUAL_CHECKED}" in dependencies, "pin and TEXTUAL_CHECKED must agree"
    low, high = re.fullmatch(r">=([\d.]+),<([\d.]+)", compat.TEXTUAL_CHECKED).groups()
    installed = importlib.metadata.version("textual")
    assert _version(low) <= _version(installed) < _version(high), (
        f"Textual {installed} is outside {compat.TEXTUAL_CHECKED}: check every workaround in "
        "rhtui/tui/textual_compat.py against it (these tests), then move the pin"
    )


# -- StylesCache.get_inner_outer (Textualize/textual#6665) ---------------------------------------


def test_get_inner_outer_is_an_lru_cache_on_a_function_of_three_parameters():
    compat.unpin_styles_caches()  # once per process: the original is kept in PATCHED
    original = compat.PATCHED.get("StylesCache.get_inner_outer")
    assert original is not None, "unpin_styles_caches found nothing to patch: StylesCache.get_inner_outer changed"
    assert callable(getattr(original, "cache_clear", None)), "no longer an lru_cache"
    assert callable(getattr(original, "cache_info", None)), "no longer an lru_cache"
    assert _parameters(original.__wrapped__)[1:] == ["base_background", "background"]
    assert len(_parameters(original.__wrapped__)) == 3
    assert _styles_cache.StylesCache.__dict__["get_inner_outer"] is not original, "patched"
    assert compat.unpin_styles_caches() is False, "patched once only"


def test_the_unpinned_get_inner_outer_gives_textuals_colours():
    compat.unpin_styles_caches()
    base, background = Color(10, 20, 30), Color(200, 100, 0, 0.5)
    original = compat.PATCHED["StylesCache.get_inner_outer"]
    expected = original.__wrapped__(None, base, background)
    assert _styles_cache.StylesCache().get_inner_outer(base, background) == expected


# -- render caches sized to what a widget shows ---------------------------------------------------


@pytest.mark.parametrize("cls", list(compat.RENDER_CACHES), ids=lambda cls: cls.__name__)
def test_the_capped_render_caches_are_lru_caches(cls: type[DOMNode]):
    node = Widget() if cls is DOMNode else cls()
    for name in compat.RENDER_CACHES[cls]:
        cache = getattr(node, name, None)
        assert isinstance(cache, LRUCache), f"{cls.__name__}.{name} is no longer an LRUCache: {cache!r}"
        cache.maxsize = 99
        assert cache.maxsize == 99


def test_every_capping_function_caps_what_it_names():
    table = DataTable()
    assert set(compat.bound_render_caches(table, rows=12, columns=12)) == set(compat.RENDER_CACHES[DataTable])
    assert table._cell_render_cache.maxsize == 12 * 12 * compat.SCREENS_KEPT
    assert compat.cap_rich_log_cache(RichLog(), 256) == {"_line_cache": 256}
    assert compat.cap_option_list_cache(OptionList(), 512) == {"_option_render_cache": 512}
    assert compat.cap_query_one_cache(Widget(), 64) == {"_query_one_cache": 64}


# -- the footer's watchers (Textualize/textual#6666) ----------------------------------------------


def test_reactive_watchers_are_kept_in_the_watched_objects_watchers_attribute():
    assert _parameters(reactive._watch) == ["node", "obj", "attribute_name", "callback", "init"]
    assert 'getattr(obj, "__watchers")' in inspect.getsource(reactive._watch)
    assert isinstance(Widget()._closing, bool)
    assert isinstance(Footer.__dict__.get("_bindings_ready"), reactive.Reactive)
    assert "self._bindings_ready = True" in inspect.getsource(Footer.bindings_changed)


async def test_the_footers_keys_watch_it_where_prune_dead_watchers_looks(make_ui):
    app = make_ui(scenes.mid_cycle_events())
    async with app.run_test() as pilot:
        await pilot.pause()
        footer = app.screen.query_one(RhFooter)
        assert compat.footer_bindings_ready(footer)
        entries = getattr(footer, "__watchers", {}).get("compact", [])
        assert entries, "FooterKey no longer data_binds Footer.compact: textual#6666 may be fixed"
        keys = [node for node, callback in entries if isinstance(node, FooterKey) and callable(callback)]
        assert keys and all(key.is_attached for key in keys)
        assert compat.prune_dead_watchers(footer) == 0  # nothing dead: nothing dropped


# -- App._handle_exception: an unhandled exception ---------------------------------------------


def test_handle_exception_is_the_apps_one_door_for_unhandled_exceptions():
    assert _parameters(App._handle_exception) == ["self", "error"]
    for module in (textual.message_pump, textual.widget, textual.screen, textual.timer, textual.worker):
        assert "_handle_exception(" in inspect.getsource(module), module.__name__
    assert RhtuiApp._handle_exception is compat.StopOnUnhandledError._handle_exception


# -- switch_mode's 50 ms hold -------------------------------------------------------------------


def test_switch_mode_holds_updates_through_delay_update():
    assert _parameters(App.delay_update) == ["self", "delay"]
    assert "self.delay_update()" in inspect.getsource(App.switch_mode)
    assert RhtuiApp.delay_update is compat.InstantModeSwitch.delay_update


async def test_a_view_shown_again_skips_the_hold_and_a_new_one_keeps_it(make_ui, monkeypatch):
    holds: list[float] = []
    textuals = App.delay_update

    def delay_update(self: App, delay: float = 0.05) -> None:
        holds.append(delay)
        textuals(self, delay)

    monkeypatch.setattr(App, "delay_update", delay_update)
    app = make_ui(scenes.mid_cycle_events())
    async with app.run_test() as pilot:
        await pilot.pause()
        before = len(holds)
        await pilot.press("2")  # mounted now: behind Textual's hold
        await pilot.pause()
        assert len(holds) == before + 1 and app.current_mode == "charts"
        await pilot.press("1")  # mounted before: no hold
        await pilot.pause()
        assert len(holds) == before + 1 and app.current_mode == "dashboard"


# -- App._css_update_count: the stylesheet's generation ------------------------------------------


def test_the_app_counts_stylesheet_changes_in_css_update_count():
    app = App()
    count = app._css_update_count
    assert isinstance(count, int)
    app._invalidate_css()
    assert app._css_update_count == count + 1
    assert compat.stylesheet_generation(app) == count + 1
    assert "_css_update_count" in inspect.getsource(App.switch_mode)
    assert ScreenResume().refresh_styles is True
    assert "event.refresh_styles" in inspect.getsource(textual.screen.Screen)


# -- DOMNode._bindings: a widget's own bindings ----------------------------------------------------


def test_a_widgets_own_bindings_are_its_bindings_map():
    table = DataTable()
    assert isinstance(table._bindings, BindingsMap)
    assert isinstance(table._bindings.key_to_bindings, dict)
    actions = {binding.action for binding in compat.widget_bindings(table)}
    assert {"select_cursor", "cursor_down", "cursor_up"} <= actions


# -- the driver after a hangup -----------------------------------------------------------------------


@pytest.mark.skipif(sys.platform == "win32", reason="Textual's Linux driver")
async def test_the_linux_driver_has_what_release_dead_terminal_touches():
    from textual.drivers._writer_thread import WriterThread
    from textual.drivers.linux_driver import LinuxDriver

    app = App()
    assert "_driver" in vars(app) and app._driver is None
    driver = LinuxDriver(app)
    assert driver._auto_restart is True
    assert "self._auto_restart" in inspect.getsource(LinuxDriver._sigcont_application)
    assert isinstance(driver.exit_event, threading.Event)
    assert "_writer_thread" in vars(driver)
    writer = WriterThread(io.StringIO())
    assert isinstance(writer._queue, Queue) and writer._queue.maxsize > 0
    assert "self._queue.put(None)" in inspect.getsource(WriterThread.stop)

    driver._writer_thread = writer
    app._driver = driver
    writer._queue.put("a frame for a dead terminal")
    compat.release_dead_terminal(app)
    assert driver._auto_restart is False
    assert driver.exit_event.is_set()
    drain = next(t for t in threading.enumerate() if t.name == "rhtui-hangup-drain")
    writer._queue.put(None)  # the stop marker: drained, then handed back
    drain.join(timeout=5)
    assert not drain.is_alive()
    assert writer._queue.get_nowait() is None and writer._queue.empty()


# -- textual-plotext ------------------------------------------------------------------------------------


def test_textual_plotext_names_its_theme_and_sizes_its_figure_as_expected():
    assert _parameters(PlotextPlot._get_plotext_theme_name) == ["self", "app_theme_name"]
    assert _parameters(Plot._set_size) == ["self", "width", "height"]
    assert compat.plotext_theme_name(PlotextPlot(), "nord") == "textual-auto-nord"
    figure = Plot()
    compat.size_plot(figure, 40, 10)
    lines = Text.from_ansi(figure.build()).plain.splitlines()
    assert len(lines) == 10 and {len(line) for line in lines} == {40}
