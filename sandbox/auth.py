"""Which key pairs the sandbox accepts, including Alpaca's paper/live separation.

Without a configured key table any non-empty pair works; key ids starting ``PK`` count as paper
and ``AK`` as live (Alpaca's own prefixes), so "a paper key against a live endpoint" can be
rehearsed without configuring anything. A configured table marks each key explicitly.
"""

from __future__ import annotations

from collections.abc import Mapping

from tapewatch.sandbox.config import SandboxKey


class KeyPolicy:
    def __init__(self, keys: Mapping[str, SandboxKey] | None, live: bool) -> None:
        self._keys = dict(keys) if keys is not None else None
        self._live = live

    def _is_paper(self, key_id: str) -> bool | None:
        if key_id.startswith("PK"):
            return True
        if key_id.startswith("AK"):
            return False
        return None

    def accepts(self, key_id: str | None, secret: str | None) -> bool:
        if not key_id or not secret:
            return False
        if self._keys is not None:
            spec = self._keys.get(key_id)
            if spec is None or spec.secret != secret:
                return False
            paper: bool | None = spec.paper
        else:
            paper = self._is_paper(key_id)
        return paper is None or paper != self._live
