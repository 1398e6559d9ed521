"""Every use of Textual's internals, behind one door.

The dashboard reaches past Textual's public API in a few places: to work around a bug
upstream, or to do what no public API allows. All of them live here, each a named
function or class whose docstring names the upstream issue (or says there is no public
API, and what one would need) and what it does on a Textual that no longer has what it
touches: nothing, so Textual's own behaviour is kept. Nothing else in `rhtui.tui` touches
a private name of Textual's (or of textual-plotext's).

`tests/ui/test_textual_compat.py` checks, one test per workaround, that what each one
touches still exists with the shape it expects, and fails loudly when an upgrade changes
it: an upgrade of Textual is then a deliberate act, not a silent loss of a fix.

Checked on Textual 8.2.8 and textual-plotext 1.0.1; pyproject.toml pins the range
(`TEXTUAL_CHECKED`).
"""

from __future__ import annotations

import inspect
import threading
from collections.abc import Callable, Mapping
from functools import lru_cache
from queue import Queue
from typing import TYPE_CHECKING, Any

from textual import _styles_cache
from textual.app import App
from textual.binding import Binding
from textual.cache import LRUCache
from textual.color import Color
from textual.dom import DOMNode
from textual.style import Style
from textual.widget import AwaitMount
from textual.widgets import DataTable, Footer, OptionList, RichLog
from textual.widgets.data_table import ColumnKey, RowKey
from textual_plotext import PlotextPlot
from textual_plotext.plot import Plot

TEXTUAL_CHECKED = ">=8.2.8,<8.3"
"""The Textual versions these workarounds were checked on (the pin in pyproject.toml)."""

PATCHED: dict[str, object] = {}
"""What a patch here replaced, by name: the tests check the shape of Textual's original."""


# -- render caches sized to what a widget can show -------------------------------------------

SCREENS_KEPT = 4
"""Renderings kept per visible cell/row/line: the current one and a few recent ones."""

RENDER_CACHES: dict[type[DOMNode], tuple[str, ...]] = {
    DataTable: ("_cell_render_cache", "_row_render_cache", "_row_renderable_cache", "_line_cache"),
    RichLog: ("_line_cache",),
    OptionList: ("_option_render_cache",),
    DOMNode: ("_query_one_cache",),
}
"""The LRU caches capped below, by the class that has them (for the tests)."""


def _cap(node: DOMNode, **sizes: int) -> dict[str, int]:
    """Set the maxsize of the node's named LRU caches (64 at least); returns the sizes set."""
    done = {}
    for name, size in sizes.items():
        cache = getattr(node, name, None)
        if isinstance(cache, LRUCache):
            cache.maxsize = max(64, size)
            done[name] = cache.maxsize
    return done


def bound_render_caches(table: DataTable[Any], *, rows: int, columns: int) -> dict[str, int]:
    """Cap a DataTable's render caches for `rows` visible rows of `columns` cells.

    No public API (no upstream issue): Textual sizes the render caches of its list widgets
    for big documents (a DataTable keeps 10,000 cells and 1,000 rows and lines) and keys
    many entries by an update count that only grows. In a dashboard that changes every
    second for hours they fill with renderings that are never read again: megabytes held,
    and a resident size that creeps for hours until they are full. A constructor argument
    (or a public cache size) would do. On a Textual without these attributes: nothing is
    capped, Textual keeps its own sizes. Returns the sizes set.
    """
    return _cap(
        table,
        _cell_render_cache=rows * columns * SCREENS_KEPT,
        _row_render_cache=rows * SCREENS_KEPT,
        _row_renderable_cache=rows * SCREENS_KEPT,
        _line_cache=rows * SCREENS_KEPT,
    )


def update_row_cells(table: DataTable[Any], row: str, cells: Mapping[str, Any]) -> None:
    """Set some cells of one row (keys of both given as str) and repaint that row alone.

    No public API (no upstream issue): `DataTable.update_cell` repaints the whole table, so
    a student's Now cell, which changes with every token update, re-rendered every row of
    the queue several times a second. A `repaint` argument to `update_cell` (or an
    `update_row`) would do. This stores the values as `update_cell` does (without
    `update_width`), counts the update as it does (the table's render caches are keyed by
    that count) and refreshes the row's region only. On a Textual without these
    attributes, or for a cell that does not exist: `update_cell` for each cell, Textual's
    own behaviour (and its error).
    """
    data = getattr(table, "_data", None)
    row_key = RowKey(row)
    keys = [ColumnKey(c) for c in cells]
    if (not isinstance(data, dict) or not isinstance(getattr(table, "_update_count", None), int)
            or row_key not in data or not all(k in table.columns for k in keys)):
        for column, value in cells.items():
            table.update_cell(row, column, value)
        return
    values = data[row_key]
    for key, value in zip(keys, cells.values(), strict=True):
        values[key] = value
    table._update_count += 1
    table.refresh_row(table.get_row_index(row_key))


def cap_rich_log_cache(log: RichLog, lines: int) -> dict[str, int]:
    """Cap a RichLog's rendered-line cache (1,024 in Textual, keyed by line number: a new
    entry for every line written). No public API, as `bound_render_caches`; on a Textual
    without it, nothing is capped."""
    return _cap(log, _line_cache=lines)


def cap_option_list_cache(options: OptionList, entries: int) -> dict[str, int]:
    """Cap an OptionList's option render cache (2,048 in Textual). No public API, as
    `bound_render_caches`; on a Textual without it, nothing is capped."""
    return _cap(options, _option_render_cache=entries)


def cap_query_one_cache(node: DOMNode, entries: int) -> dict[str, int]:
    """Cap a node's `query_one` cache. No public API: Textual keys `query_one` results by a
    count of changes to the node's children and keeps 1,024 of them (with the widgets they
    point to); a screen whose children change for hours fills it. On a Textual without it,
    nothing is capped."""
    return _cap(node, _query_one_cache=entries)


def unpin_styles_caches() -> bool:
    """Key `StylesCache.get_inner_outer` on its colours, not on the StylesCache.

    Textualize/textual#6665: `get_inner_outer` is an `lru_cache` on an instance method, so it
    keeps the last 1,024 StylesCache objects alive, with every line they rendered, long after
    their widgets are gone; a dashboard that replaces a proposal's Markdown blocks every few
    minutes fills it over hours. Here it is keyed on the two colours it depends on instead,
    computed by Textual's own function. Only the shape this works around is patched (a plain
    lru_cache on a function of (self, base_background, background)); on any other, nothing
    is done. Returns True if it was changed now, False if there was nothing to change (that
    other shape, or already changed here).
    """
    cls: Any = getattr(_styles_cache, "StylesCache", None)
    method = getattr(cls, "__dict__", {}).get("get_inner_outer")
    original = getattr(method, "__wrapped__", None)
    cache_clear = getattr(method, "cache_clear", None)
    if original is None or cache_clear is None or _parameter_count(original) != 3:
        return False

    @lru_cache(1024)
    def colours_only(base_background: Color, background: Color) -> tuple[Style, Style]:
        result: tuple[Style, Style] = original(None, base_background, background)
        return result

    def get_inner_outer(self: object, base_background: Color, background: Color) -> tuple[Style, Style]:
        return colours_only(base_background, background)

    cache_clear()  # let go of the instances it holds already
    PATCHED["StylesCache.get_inner_outer"] = method
    cls.get_inner_outer = get_inner_outer
    return True


def _parameter_count(function: Callable[..., object]) -> int:
    try:
        return len(inspect.signature(function).parameters)
    except (TypeError, ValueError):
        return -1


# -- the footer: watchers of removed keys ----------------------------------------------------


def prune_dead_watchers(node: DOMNode) -> int:
    """Forget the node's reactive watchers whose widget has been removed; returns how many.

    Textualize/textual#6666: Textual's Footer recomposes whenever the bindings change and
    binds each new FooterKey to its `compact` reactive with `data_bind`; the watcher entries
    of the removed keys stay in the Footer's watcher list (the `__watchers` attribute that
    `textual.reactive._watch` keeps) until `compact` changes, which it never does here, so
    every recompose leaked a handful of widgets. On a Textual without that list: nothing.
    """
    watchers = getattr(node, "__watchers", None)
    if not isinstance(watchers, dict) or not watchers:
        return 0
    dropped = 0
    for entries in watchers.values():
        keep = [(watcher, callback) for watcher, callback in entries if _alive(watcher)]
        dropped += len(entries) - len(keep)
        entries[:] = keep
    return dropped


def _alive(node: DOMNode) -> bool:
    """Attached and not being removed (a node that is closing is still attached)."""
    return node.is_attached and not getattr(node, "_closing", False)


def footer_bindings_ready(footer: Footer) -> bool:
    """Whether the Footer has been given bindings at least once (`Footer._bindings_ready`).

    No public API: a footer that skips a recompose when what it shows has not changed must
    still compose the first time. On a Textual without it: False, so every change recomposes,
    as Textual's own Footer does.
    """
    return bool(getattr(footer, "_bindings_ready", False))


# -- the help: a widget's own bindings ---------------------------------------------------------


def widget_bindings(node: DOMNode) -> list[Binding]:
    """Every binding the node answers to itself: its class's and the inherited ones, merged.

    No public API: they are `DOMNode._bindings` (a BindingsMap); `Screen.active_bindings`
    has only the ones that win in the focus chain. A public `DOMNode.bindings` would do. On
    a Textual without it: none (the help has no rows for the focused widget).
    """
    key_map = getattr(getattr(node, "_bindings", None), "key_to_bindings", None)
    if not isinstance(key_map, Mapping):
        return []
    return [binding for bindings in key_map.values() for binding in bindings]


# -- the stylesheet's generation ----------------------------------------------------------------


def stylesheet_generation(app: App[Any]) -> object:
    """A value that changes whenever the app's stylesheet is re-applied (`App._css_update_count`).

    No public API: a view that is shown again skips re-applying the whole stylesheet
    (`ScreenResume.refresh_styles = False`) when nothing a style depends on changed while
    it was hidden; this is one of those things (a CSS or theme variable change). A public
    counter or signal would do. On a Textual without it: a new object every call, which
    equals nothing, so every shown view re-applies its styles as Textual does by default.
    """
    count = getattr(app, "_css_update_count", None)
    return count if isinstance(count, int) else object()


# -- the app: an unhandled exception, an instant mode switch ------------------------------------

if TYPE_CHECKING:
    _AppMixin = App[Any]
else:
    _AppMixin = object


class StopOnUnhandledError(_AppMixin):
    """An app mixin: `unhandled_exception(error)` runs first when nothing handled an exception.

    No public API: `App._handle_exception(error)` is Textual's single door for an exception
    nothing handled — a widget's render or compose, a message or event handler, a timer, a
    callback, a worker with exit_on_error (textual/app.py, message_pump.py, widget.py,
    screen.py, timer.py, worker.py call it); Textual then closes the app with return code 1
    and prints the traceback. A public hook (an `App.on_exception` before the app exits)
    would do. On a Textual without it: `unhandled_exception` is never called and the app
    closes as Textual closes it. Put it before `App` in the bases.
    """

    def unhandled_exception(self, error: Exception) -> None:
        """Called once per unhandled exception, before Textual closes the app."""

    def _handle_exception(self, error: Exception) -> None:
        self.unhandled_exception(error)
        super()._handle_exception(error)


class InstantModeSwitch(_AppMixin):
    """An app mixin: `switch_mode_now(mode)` swaps modes in the same frame.

    No public API: `App.switch_mode` always holds updates back 50 ms (`App.delay_update()`)
    to hide a screen that is still being mounted; a screen that is mounted already and up to
    date has nothing to hide, and the hold only makes a key feel slow. This skips that one
    call. An argument to `switch_mode` (a delay of 0) would do. On a Textual whose
    `switch_mode` no longer calls `delay_update`: a plain `switch_mode`. Put it before `App`
    in the bases.
    """

    _instant_switch = False

    def switch_mode_now(self, mode: str) -> AwaitMount:
        """`switch_mode` without the anti-flicker hold (only for a mode mounted before)."""
        self._instant_switch = True
        try:
            return self.switch_mode(mode)
        finally:
            self._instant_switch = False

    def delay_update(self, delay: float = 0.05) -> None:
        if not self._instant_switch:
            super().delay_update(delay)


# -- a terminal that hung up ----------------------------------------------------------------------


def release_dead_terminal(app: App[Any]) -> None:
    """The terminal is gone (SIGHUP): make sure nothing in Textual's driver waits on it.

    No public API (no upstream issue): Textual's Linux driver writes frames through a thread
    with a 30-slot queue (`driver._writer_thread._queue`); a write to a hung-up terminal
    fails, that thread dies, and the next 30 frames block the event loop for good, so a
    graceful stop never runs. The kernel's SIGCONT after the hangup would also restart
    application mode on the dead terminal (`driver._auto_restart`). So: application mode is
    not restarted on SIGCONT, the input thread is told to stop (`exit_event`), and anything
    still queued for a dead writer thread is drained. A driver method for "the terminal is
    gone" would do. On a driver without these attributes: the missing steps are skipped.
    The caller points the terminal's descriptors at /dev/null first.
    """
    driver = getattr(app, "_driver", None)
    if driver is None:
        return
    if hasattr(driver, "_auto_restart"):
        driver._auto_restart = False
    exit_event = getattr(driver, "exit_event", None)
    if isinstance(exit_event, threading.Event):
        exit_event.set()
    queue = getattr(getattr(driver, "_writer_thread", None), "_queue", None)
    if isinstance(queue, Queue):
        threading.Thread(target=_drain, args=(queue,), name="rhtui-hangup-drain", daemon=True).start()


def _drain(queue: Queue[str | None]) -> None:
    """Consume a dead writer's queue; hand its stop marker back to a live writer."""
    while True:
        item = queue.get()
        if item is None:
            queue.put(None)
            return


# -- textual-plotext ---------------------------------------------------------------------------


def plotext_theme_name(plot: PlotextPlot, app_theme: str) -> str:
    """The plotext theme a PlotextPlot draws with under the app theme `app_theme`.

    No public API: `PlotextPlot._get_plotext_theme_name` (textual-plotext 1.0.1) names the
    theme it registers for "auto"; a chart that renders by itself (at a height of its own)
    needs the same name. On a textual-plotext without it: the same rule, computed here.
    """
    method = getattr(plot, "_get_plotext_theme_name", None)
    if callable(method):
        return str(method(app_theme))
    return f"textual-auto-{app_theme}" if plot.theme == "auto" else plot.theme


def size_plot(plot: Plot, width: int, height: int) -> None:
    """Size a plotext figure to `width` x `height` cells, as PlotextPlot.render does.

    Textualize/textual-plotext#5: `plotsize` alone does not resize the plot reliably;
    textual-plotext also calls the figure's private `_set_size`. On a plotext without it:
    `plotsize` alone.
    """
    plot.plotsize(width, height)
    set_size = getattr(plot, "_set_size", None)
    if callable(set_size):
        set_size(width, height)


__all__ = [
    "PATCHED",
    "RENDER_CACHES",
    "SCREENS_KEPT",
    "TEXTUAL_CHECKED",
    "InstantModeSwitch",
    "StopOnUnhandledError",
    "bound_render_caches",
    "cap_option_list_cache",
    "cap_query_one_cache",
    "cap_rich_log_cache",
    "footer_bindings_ready",
    "plotext_theme_name",
    "prune_dead_watchers",
    "release_dead_terminal",
    "size_plot",
    "stylesheet_generation",
    "unpin_styles_caches",
    "widget_bindings",
]
