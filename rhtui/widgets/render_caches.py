"""Render caches sized to what a widget can show.

Textual sizes the render caches of its list widgets for big documents (a
DataTable keeps 10,000 cells and 1,000 rows and lines, a RichLog 1,024 lines, an
OptionList 2,048 options) and keys many entries by an update count or a line
number that only grows. In a dashboard that changes every second for hours they
fill with renderings that are never read again: megabytes held, and a resident
size that creeps for hours until they are full. A few screens' worth is all our
widgets need, so they are capped here; a Textual without these caches keeps its own.
"""

from __future__ import annotations

from textual.cache import LRUCache
from textual.widget import Widget
from textual.widgets import DataTable

SCREENS_KEPT = 4
"""Renderings kept per visible cell/row/line: the current one and a few recent ones."""


def cap_caches(widget: Widget, **sizes: int) -> dict[str, int]:
    """Set the maxsize of the widget's named LRU caches; returns the sizes set."""
    done = {}
    for name, size in sizes.items():
        cache = getattr(widget, name, None)
        if isinstance(cache, LRUCache):
            cache.maxsize = max(64, size)
            done[name] = cache.maxsize
    return done


def bound_render_caches(table: DataTable, *, rows: int, columns: int) -> dict[str, int]:
    """Cap a DataTable's render caches for `rows` visible rows of `columns` cells."""
    return cap_caches(
        table,
        _cell_render_cache=rows * columns * SCREENS_KEPT,
        _row_render_cache=rows * SCREENS_KEPT,
        _row_renderable_cache=rows * SCREENS_KEPT,
        _line_cache=rows * SCREENS_KEPT,
    )
