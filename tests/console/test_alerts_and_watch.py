"""Which events become toasts, the toast budget, and the flatten watch's verdicts."""

from __future__ import annotations

from dataclasses import replace

from tapewatch.console.alerts import AlertBudget, alert_for
from tapewatch.console.flatten_watch import FlattenWatch
from tapewatch.engine.api.snapshot import SCHEMA, OrderLine, Snapshot, StrategyView
from tapewatch.engine.model.events import BarClosed, BreakerChanged, OrderSubmitted, RiskDenied
from tapewatch.engine.model.types import (
    Intent,
    Mode,
    Order,
    OrderRequest,
    OrderStatus,
    Position,
    Side,
    TradingState,
)
from tests.helpers import T0, bars_from_closes


def test_trips_rejections_and_denials_are_toasts_bars_are_not() -> None:
    trip = BreakerChanged(T0, "drawdown", True, TradingState.HALTED, "drawdown 5.1%", T0)
    assert alert_for(trip) == ("Breaker drawdown tripped → HALTED: drawdown 5.1%", "error")
    assert alert_for(replace(trip, name="pause")) is None  # the operator just did it
    order = Order("o1", "c1", "SPY", Side.BUY, 3.0, OrderStatus.REJECTED, reason="no cash")
    assert alert_for(OrderSubmitted(T0, order)) == ("Rejected buy 3 SPY: no cash", "error")
    request = OrderRequest("c2", "SPY", Side.BUY, 2.0, Intent.ENTRY)
    denied = alert_for(RiskDenied(T0, request, "pause", "paused by operator: no new entries"))
    assert denied is not None and denied[1] == "warning" and "paused" in denied[0]
    assert alert_for(BarClosed(T0, bars_from_closes([1.0])[0])) is None


def test_a_burst_of_toasts_is_capped_per_second() -> None:
    budget = AlertBudget(per_second=3)
    allowed = [budget.allow(100.0 + i * 0.01) for i in range(10)]
    assert allowed.count(True) == 3 and budget.dropped == 7
    assert budget.allow(101.5)


def _state(position_qty: float, status: str) -> Snapshot:
    return Snapshot(
        schema=SCHEMA,
        version=1,
        state_version=1,
        now=T0,
        operator="tester@local",
        mode=Mode.DEMO,
        account="DEMO",
        endpoint="",
        symbol="SPY",
        timeframe="5Min",
        running=True,
        bars=tuple(bars_from_closes([10.0, 10.1])),
        rsi=(),
        sma=(),
        last_signal=None,
        strategy=StrategyView(14, 20, 30.0, 70.0),
        positions=(Position("SPY", position_qty, 10.0, 10.1),) if position_qty else (),
        cash=0.0,
        equity=0.0,
        day_start_equity=0.0,
        orders=(OrderLine(T0, "flat-1", "sell", 5.0, "SPY", status),),
        trading_state=TradingState.ACTIVE,
        paused=False,
        in_flight=0,
        breakers=(),
        latency=(),
        market=None,
        streams=(),
        speed=None,
    )


def test_flatten_watch_waits_for_the_orders_then_reports_flat() -> None:
    watch = FlattenWatch(("flat-1",))
    assert watch.check(_state(5.0, "accepted")) is None
    assert watch.check(_state(0.0, "filled")) == ("Flat: every position is closed", "information")
    assert watch.check(_state(0.0, "filled")) is None  # reported once


def test_flatten_watch_reports_what_is_left_after_one_more_bar() -> None:
    watch = FlattenWatch(("flat-1",))
    state = _state(5.0, "rejected")
    assert watch.check(state) is None  # positions refresh on the next bar: wait for it
    later = bars_from_closes([10.2], start=T0 + 10 * (state.bars[1].ts - T0))
    state = replace(state, bars=(*state.bars, *later))
    message, severity = watch.check(state) or ("", "")
    assert severity == "error"
    assert "still open: SPY 5" in message and "rejected" in message
