"""The RSI/SMA mean-reversion rule: buy an oversold dip in an uptrend, sell when overbought.

The strategy only reads closed bars and returns a ``SignalEvaluated`` with every condition of
the rule, so the journal and the console can show *why* it acted or held. It never sizes against
the broker or sends orders itself: the engine does that through the risk gate.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import datetime

from tapewatch.engine.model.events import SignalEvaluated
from tapewatch.engine.model.types import Bar, floor_qty
from tapewatch.engine.settings.config import StrategyConfig
from tapewatch.engine.strategy.indicators import RSI, SMA

FLAT_EPSILON = 1e-12
"""A position smaller than this (binary residue of fills) counts as flat."""


def shown_beside(value: float, limit: float) -> str:
    """``value`` to one decimal, or more where rounding would land on ``limit`` (29.96 < 30
    reads 29.96, not 30.0): a reason never contradicts its own inequality."""
    for places in range(1, 7):
        text = f"{value:.{places}f}"
        if float(text) != limit:
            return text
    return repr(value)


def signal_reason(signal: SignalEvaluated, oversold: float, overbought: float) -> str:
    """Why the rule acted, in the values it read: ``RSI 27.9 < 30, close > SMA`` for a buy,
    ``RSI 72.4 > 70`` for a sell; empty for a hold (or a signal without an RSI)."""
    rsi = signal.rsi
    if rsi is None or signal.action == "hold":
        return ""
    if signal.action == "buy":
        return f"RSI {shown_beside(rsi, oversold)} < {oversold:g}, close > SMA"
    return f"RSI {shown_beside(rsi, overbought)} > {overbought:g}"


def rule_action(
    rsi: float | None,
    sma: float | None,
    close: float,
    exposure: float,
    oversold: float,
    overbought: float,
) -> str:
    """The rule, once, for every path (the engine and the backtest's fast loop): "buy" when
    RSI < oversold and close > SMA while flat, "sell" when RSI > overbought while long, else
    "hold" (also before both indicators have a value). ``exposure`` is the position plus open
    buys; strict inequalities throughout."""
    if rsi is None or sma is None:
        return "hold"
    if -FLAT_EPSILON < exposure < FLAT_EPSILON:
        return "buy" if rsi < oversold and close > sma else "hold"
    return "sell" if rsi > overbought and exposure > 0 else "hold"


class RsiSmaStrategy:
    """Buy when RSI < oversold and close > SMA while flat; sell everything when RSI > overbought."""

    __slots__ = ("_cfg", "_rsi", "_sma")

    def __init__(self, cfg: StrategyConfig) -> None:
        self._cfg = cfg
        self._rsi = RSI(cfg.rsi_period, cfg.rsi_method)
        self._sma = SMA(cfg.sma_period)

    @property
    def config(self) -> StrategyConfig:
        return self._cfg

    @property
    def rsi(self) -> float | None:
        return self._rsi.value

    @property
    def sma(self) -> float | None:
        return self._sma.value

    @property
    def ready(self) -> bool:
        """Both indicators have a value (after ``cfg.warmup_bars`` closes)."""
        return self._rsi.ready and self._sma.ready

    def reset(self) -> None:
        self._rsi.reset()
        self._sma.reset()

    def warm(self, bar: Bar) -> None:
        """Prime the indicators with a historical bar; no decision is made."""
        close = bar.close
        self._rsi.update(close)
        self._sma.update(close)

    @property
    def updaters(self) -> tuple[Callable[[float], float | None], Callable[[float], float | None]]:
        """The (rsi, sma) update functions, for the backtest loop's inner path."""
        return self._rsi.update, self._sma.update

    def evaluate(self, bar: Bar, position_qty: float, *, ts: datetime) -> SignalEvaluated:
        """Update the indicators with this closed bar, then apply the rule (strict inequalities)."""
        close = bar.close
        rsi = self._rsi.update(close)
        sma = self._sma.update(close)
        return self.decide(bar, position_qty, rsi, sma, ts=ts)

    def decide(
        self,
        bar: Bar,
        position_qty: float,
        rsi: float | None,
        sma: float | None,
        *,
        ts: datetime,
    ) -> SignalEvaluated:
        """Apply the rule to indicator values already updated with ``bar`` (see ``update``)."""
        cfg = self._cfg
        close = bar.close
        oversold = rsi is not None and rsi < cfg.rsi_oversold
        overbought = rsi is not None and rsi > cfg.rsi_overbought
        above = sma is not None and close > sma
        flat = abs(position_qty) < FLAT_EPSILON
        action = rule_action(rsi, sma, close, position_qty, cfg.rsi_oversold, cfg.rsi_overbought)
        return SignalEvaluated(
            ts=ts,
            symbol=bar.symbol,
            bar_ts=bar.ts,
            close=close,
            rsi=rsi,
            sma=sma,
            action=action,
            rsi_oversold=oversold,
            close_above_sma=above,
            flat=flat,
            rsi_overbought=overbought,
        )

    def reason(self, signal: SignalEvaluated) -> str:
        """The rule values behind ``signal``'s action, for the order it causes."""
        cfg = self._cfg
        return signal_reason(signal, cfg.rsi_oversold, cfg.rsi_overbought)

    def entry_qty(self, equity: float, close: float, *, whole_shares: bool = False) -> float:
        """Shares for an entry: ``position_pct`` of equity at ``close``, floored to 9 decimals
        (or to whole shares where the asset or the account cannot trade fractions)."""
        if not close > 0 or not equity > 0:
            return 0.0
        qty = floor_qty(self._cfg.position_pct * equity / close)
        return float(math.floor(qty)) if whole_shares else qty
