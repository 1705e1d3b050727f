"""Each finished cell, kept at once in a local SQLite file, so no cell is computed twice.

A cell's key is a hash of its full configuration, a hash of the bars it ran on and the
strategy code's version (``code_version``): change the data, a setting or the strategy and
the key changes; rerun or resume the same sweep and every finished cell is read back. The
file lives under the cache directory ($XDG_CACHE_HOME/tapewatch/sweep, else
~/.cache/tapewatch/sweep), private: 0600 in 0700 folders, like the journal. Only the process
driving the sweep writes (workers return results to it), one commit per cell, so a Ctrl+C or a
crash loses at most the cells still running.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import sqlite3
from collections.abc import Mapping
from dataclasses import asdict
from pathlib import Path

import numpy as np

from tapewatch.engine.core.clock import Clock, LiveClock
from tapewatch.engine.market.bars import BarArrays
from tapewatch.engine.settings.config import EngineConfig
from tapewatch.engine.storage.datadir import private_dir, touch_private

STRATEGY_VERSION = 1
"""Bump when results change for a reason the hashed sources do not show."""

FILE_NAME = "cells.sqlite3"
_CODE_FOLDERS = ("strategy", "backtest", "risk", "core", "adapters/sim")


def cache_dir(override: str | os.PathLike[str] | None = None) -> Path:
    """``--cache-dir``, else $XDG_CACHE_HOME/tapewatch/sweep, else ~/.cache/tapewatch/sweep."""
    if override:
        return Path(override).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(xdg) / "tapewatch" / "sweep"


@functools.cache
def code_version() -> str:
    """A hash of the engine sources a cell's result depends on, plus ``STRATEGY_VERSION``."""
    root = Path(__file__).resolve().parents[1]
    digest = hashlib.sha256(f"v{STRATEGY_VERSION}".encode())
    for folder in _CODE_FOLDERS:
        for path in sorted((root / folder).rglob("*.py")):
            digest.update(str(path.relative_to(root)).encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def data_hash(bars: BarArrays) -> str:
    """A hash of the bars' symbol and every column (the same bars always hash the same)."""
    digest = hashlib.sha256(bars.symbol.encode())
    for column in (bars.ts_ns, bars.open, bars.high, bars.low, bars.close, bars.volume):
        digest.update(np.ascontiguousarray(column).data)
    return digest.hexdigest()[:24]


def config_text(config: EngineConfig) -> str:
    return json.dumps(asdict(config), sort_keys=True, separators=(",", ":"))


def cell_key(config: EngineConfig, data: str, *, window: tuple[int, int], curve: bool) -> str:
    """The key a cell is stored under: its settings, the bars, the window and the code."""
    text = "|".join(
        (config_text(config), data, f"{window[0]}:{window[1]}", str(curve), code_version())
    )
    return hashlib.sha256(text.encode()).hexdigest()


class CellStore:
    """The SQLite store: ``get`` a finished cell by key, ``put`` one as soon as it finishes."""

    def __init__(self, folder: Path, *, clock: Clock | None = None) -> None:
        """``clock`` stamps each cell's ``created`` (the wall clock unless a test injects one)."""
        self._clock: Clock = clock or LiveClock()
        self.folder = private_dir(Path(folder))
        self.path = touch_private(self.folder / FILE_NAME)
        self._db = sqlite3.connect(self.path, timeout=30.0)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS cells (key TEXT PRIMARY KEY, params TEXT NOT NULL, "
            "report TEXT NOT NULL, curve BLOB, code TEXT NOT NULL, created REAL NOT NULL)"
        )
        self._db.commit()

    def get(self, key: str) -> tuple[dict[str, object], np.ndarray | None] | None:
        row = self._db.execute("SELECT report, curve FROM cells WHERE key = ?", (key,)).fetchone()
        if row is None:
            return None
        curve = np.frombuffer(row[1], dtype=np.float64).copy() if row[1] is not None else None
        return json.loads(row[0]), curve

    def put(
        self,
        key: str,
        params: Mapping[str, object],
        report: Mapping[str, object],
        curve: np.ndarray | None = None,
    ) -> None:
        blob = None if curve is None else np.ascontiguousarray(curve, dtype=np.float64).tobytes()
        self._db.execute(
            "INSERT OR REPLACE INTO cells VALUES (?, ?, ?, ?, ?, ?)",
            (
                key,
                json.dumps(dict(params), sort_keys=True),
                json.dumps(dict(report), sort_keys=True),
                blob,
                code_version(),
                self._clock.now().timestamp(),
            ),
        )
        self._db.commit()

    def count(self) -> int:
        return int(self._db.execute("SELECT COUNT(*) FROM cells").fetchone()[0])

    def close(self) -> None:
        self._db.close()
