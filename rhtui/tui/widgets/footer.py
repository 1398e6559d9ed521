"""The footer, without Textual's watcher leak on recompose.

Textual's Footer recomposes whenever the bindings change (focus, check_action) and
binds each new FooterKey to its `compact` reactive with `data_bind`. The watcher
entries of the removed keys stay in the Footer's watcher list until `compact`
changes, which it never does here, so every recompose leaked a handful of widgets
(Textualize/textual#6666). Over an 8-hour session that was thousands of widgets.
This footer drops the entries of keys that are gone after each recompose, and
recomposes only when what it shows changed (Textual asks on every focus change and
screen switch, and a recompose costs a layout).
"""

from __future__ import annotations

from textual.screen import Screen
from textual.widgets import Footer


class RhFooter(Footer):
    _shown: tuple | None = None

    def bindings_changed(self, screen: Screen) -> None:
        shown = tuple(
            (key, binding.action, binding.description, enabled)
            for key, (_node, binding, enabled, _tip) in screen.active_bindings.items()
            if binding.show
        )
        if shown == self._shown and self._bindings_ready:
            return
        self._shown = shown
        super().bindings_changed(screen)

    async def recompose(self) -> None:
        await super().recompose()
        self.prune_watchers()

    def prune_watchers(self) -> int:
        """Forget watchers whose widget has been removed; returns how many were dropped."""
        watchers = getattr(self, "__watchers", None)
        if not watchers:
            return 0
        dropped = 0
        for name, entries in watchers.items():
            keep = [(node, cb) for node, cb in entries if node.is_attached and not node._closing]
            dropped += len(entries) - len(keep)
            entries[:] = keep
        return dropped
