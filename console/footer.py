"""The footer that never loses ``q Quit``: when the keys do not fit, the least needed go first.

Textual's footer lays its keys out in a row and clips whatever passes the right edge, which at
80 columns was ``t Th▏`` and no quit. This one first tightens the spacing (Textual's compact
style), then hides keys in ``DROP_ORDER``: demo speed and theme first, then keys it does not
know, then the command palette, then the operator's keys; quit always stays. Every hidden key
still works, and the ``?`` screen and the palette list them all.
"""

from __future__ import annotations

from textual import events
from textual.widgets import Footer
from textual.widgets._footer import FooterKey

FIRST_TO_GO = ("cycle_theme", "slower", "faster")
LAST_TO_GO = ("command_palette", "switch_account", "reset_breaker", "pause_resume", "flatten")
"""Dropped in this order after every other key; the first one goes first."""
ALWAYS = "quit"


def _action(key: FooterKey) -> str:
    return key.action.removeprefix("app.")


def drop_order(keys: list[FooterKey]) -> list[FooterKey]:
    """The keys that may be hidden, the first to hide first (quit is never among them)."""
    by_action = {_action(k): k for k in keys}
    first = [by_action[a] for a in FIRST_TO_GO if a in by_action]
    last = [by_action[a] for a in LAST_TO_GO if a in by_action]
    known = {*FIRST_TO_GO, *LAST_TO_GO, ALWAYS}
    others = [k for k in reversed(keys) if _action(k) not in known]  # rightmost first
    return [*first, *others, *last]


def _width(key: FooterKey) -> int:
    """Columns the key takes in the row: its label, padding, border and margin."""
    styles = key.styles
    return key.render().cell_len + styles.gutter.width + styles.margin.width


class KeyFooter(Footer):
    """Textual's footer, fitted to its width by dropping the least important keys."""

    async def recompose(self) -> None:
        await super().recompose()
        self._fit()

    def on_resize(self, event: events.Resize) -> None:
        self._fit()

    @property
    def shown_actions(self) -> list[str]:
        """The actions whose keys are on screen, left to right (tests read this)."""
        return [_action(k) for k in self.query_children(FooterKey) if k.display]

    def _fit(self) -> None:
        keys = list(self.query_children(FooterKey))
        if not keys or not self.size.width:
            return
        room = self.size.width
        for key in keys:
            key.display = True
        total = sum(_width(k) for k in keys)
        if self.compact and total + len(keys) <= room:  # the roomier spacing fits again
            self.compact = False
            self.call_after_refresh(self._fit)
            return
        if not self.compact and total > room:
            self.compact = True  # new spacing: measure again once it is applied
            self.call_after_refresh(self._fit)
            return
        for key in drop_order(keys):
            if total <= room:
                break
            key.display = False
            total -= _width(key)
