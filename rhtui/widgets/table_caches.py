"""Render caches of a DataTable sized to what it can show.

Textual sizes a DataTable's render caches for big tables (10,000 cells, 1,000 rows
and lines) and keys their entries by the table's update count. In a table that
changes every second, such as the student queue, they fill with renderings that
are never read again: megabytes held for hours, and a resident size that creeps
until they are full. A few screens' worth is all a dashboard table needs.
"""

from __future__ import annotations

from textual.cache import LRUCache
from textual.widgets import DataTable

SCREENS_KEPT = 4
"""Renderings kept per visible cell/row/line: the current one and a few recent ones."""


def bound_render_caches(table: DataTable, *, rows: int, columns: int) -> dict[str, int]:
    """Cap the table's render caches for `rows` visible rows of `columns` cells; returns the sizes set."""
    sizes = {
        "_cell_render_cache": rows * columns * SCREENS_KEPT,
        "_row_render_cache": rows * SCREENS_KEPT,
        "_row_renderable_cache": rows * SCREENS_KEPT,
        "_line_cache": rows * SCREENS_KEPT,
    }
    done = {}
    for name, size in sizes.items():
        cache = getattr(table, name, None)
        if isinstance(cache, LRUCache):  # absent in another Textual: its own sizes stand
            cache.maxsize = max(64, size)
            done[name] = cache.maxsize
    return done
