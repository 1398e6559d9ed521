"""Render caches sized to what a widget can show.

Textual sizes the render caches of its list widgets for big documents (a
DataTable keeps 10,000 cells and 1,000 rows and lines, a RichLog 1,024 lines, an
OptionList 2,048 options) and keys many entries by an update count or a line
number that only grows. In a dashboard that changes every second for hours they
fill with renderings that are never read again: megabytes held, and a resident
size that creeps for hours until they are full. A few screens' worth is all our
widgets need, so they are capped here; a Textual without these caches keeps its own.

One more cache is Textual's by accident: `StylesCache.get_inner_outer` is an
`lru_cache` on an instance method, so it keeps the last 1,024 StylesCache
objects alive, with every line they rendered, long after their widgets are
gone (Textualize/textual#6665). A dashboard that replaces a proposal's Markdown
blocks every few minutes fills it over hours. `unpin_styles_caches` keys it on
the two colours it depends on instead.
"""

from __future__ import annotations

import inspect
from functools import lru_cache

from textual import _styles_cache
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


def unpin_styles_caches() -> bool:
    """Key `StylesCache.get_inner_outer` on its colours, not on the StylesCache.

    Returns True if it was changed now, False if there was nothing to change (a
    Textual where it holds no instances, or where it was already changed here).
    The colours are computed by Textual's own function, as before.
    """
    cls = getattr(_styles_cache, "StylesCache", None)
    # only the shape this works around: a plain lru_cache on a function of (self, base, background)
    method = getattr(cls, "__dict__", {}).get("get_inner_outer")
    original = getattr(method, "__wrapped__", None)
    if original is None or not hasattr(method, "cache_clear"):
        return False
    try:
        if len(inspect.signature(original).parameters) != 3:
            return False
    except (TypeError, ValueError):
        return False

    @lru_cache(1024)
    def colours_only(base_background, background):  # type: ignore[no-untyped-def]
        return original(None, base_background, background)

    def get_inner_outer(self, base_background, background):  # type: ignore[no-untyped-def]
        return colours_only(base_background, background)

    method.cache_clear()  # let go of the instances it holds already
    cls.get_inner_outer = get_inner_outer
    return True
