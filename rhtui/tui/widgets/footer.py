"""The footer, without Textual's watcher leak on recompose.

Textual's Footer recomposes whenever the bindings change (focus, check_action) and
binds each new FooterKey to its `compact` reactive with `data_bind`. The watcher
entries of the removed keys stay in the Footer's watcher list until `compact`
changes, which it never does here, so every recompose leaked a handful of widgets
(Textualize/textual#6666). Over an 8-hour session that was thousands of widgets.
This footer drops the entries of keys that are gone after each recompose, and
recomposes only when what it shows changed (Textual asks on every focus change and
screen switch, and a recompose costs a layout). What it touches of Textual's is in
rhtui/tui/textual_compat.py.
"""

from __future__ import annotations

from textual.screen import Screen
from textual.widgets import Footer

from rhtui.tui.textual_compat import footer_bindings_ready, prune_dead_watchers


class RhFooter(Footer):
    _shown: tuple | None = None

    def bindings_changed(self, screen: Screen) -> None:
        shown = tuple(
            (key, binding.action, binding.description, enabled)
            for key, (_node, binding, enabled, _tip) in screen.active_bindings.items()
            if binding.show
        )
        if shown == self._shown and footer_bindings_ready(self):
            return
        self._shown = shown
        super().bindings_changed(screen)

    async def recompose(self) -> None:
        await super().recompose()
        self.prune_watchers()

    def prune_watchers(self) -> int:
        """Forget watchers whose widget has been removed; returns how many were dropped."""
        return prune_dead_watchers(self)
