"""SimBroker specifics: next-bar-open fills, costs, fill-time checks, marks, events, ids."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import pytest

from tapewatch.engine.adapters.sim.broker import SimBroker
from tapewatch.engine.core.broker import Broker, BrokerError, DuplicateClientOrderId
from tapewatch.engine.core.clock import SimClock
from tapewatch.engine.core.portfolio import rebuild
from tapewatch.engine.model.events import Event, OrderFilled, OrderUpdated, SessionStarted
from tapewatch.engine.model.types import Bar, Intent, OrderRequest, OrderStatus, Side
from tapewatch.engine.settings.config import ExecutionConfig

T0 = datetime(2024, 3, 4, 14, 30, tzinfo=UTC)
STEP = timedelta(minutes=5)


class Market:
    """A SimBroker fed bar by bar, with the clock at each bar's close when it is delivered."""

    def __init__(
        self, cash: float = 100_000.0, execution: ExecutionConfig | None = None, **kw: str
    ) -> None:
        self.clock = SimClock(T0)
        self.broker = SimBroker(cash, execution or ExecutionConfig(), clock=self.clock, **kw)
        self.events: list[Event] = []
        self.broker.set_listener(self.events.append)
        self.n = 0
        self.submitted = 0

    async def bar(self, open_: float, close: float | None = None, symbol: str = "SPY") -> Bar:
        close = open_ if close is None else close
        ts = T0 + self.n * STEP
        self.n += 1
        bar = Bar(symbol, ts, open_, max(open_, close), min(open_, close), close, 1_000.0)
        self.clock.advance_to(ts + STEP)
        await self.broker.on_bar(bar)
        return bar

    async def order(
        self,
        side: Side,
        qty: float,
        cid: str | None = None,
        symbol: str = "SPY",
        estimated_price: float | None = None,
    ) -> OrderStatus:
        self.submitted += 1
        cid = cid or f"order-{self.submitted}"
        order = await self.broker.submit_order(
            OrderRequest(cid, symbol, side, qty, Intent.ENTRY, estimated_price=estimated_price)
        )
        self.last_order = order
        return order.status

    def fills(self) -> list[OrderFilled]:
        return [e for e in self.events if isinstance(e, OrderFilled)]

    def updates(self) -> list[OrderUpdated]:
        return [e for e in self.events if isinstance(e, OrderUpdated)]


async def test_a_market_order_fills_at_the_next_bars_open_not_the_signal_bars_close() -> None:
    m = Market()
    await m.bar(99.0, close=100.0)  # the signal bar
    assert await m.order(Side.BUY, 10) is OrderStatus.ACCEPTED
    assert m.fills() == []
    await m.bar(101.0, close=105.0, symbol="QQQ")  # another symbol's bar fills nothing
    assert m.fills() == []

    await m.bar(102.0, close=104.0)

    (event,) = m.fills()
    assert event.fill.price == 102.0
    assert event.order.filled_avg_price == 102.0
    assert m.broker.cash == 100_000.0 - 1_020.0
    assert m.broker.position_qty("SPY") == 10
    assert m.broker.portfolio.positions["SPY"].avg_entry_price == 102.0


async def test_an_order_submitted_before_any_bar_waits_for_the_first_one() -> None:
    m = Market()
    assert await m.order(Side.BUY, 1, estimated_price=50.0) is OrderStatus.ACCEPTED
    assert await m.broker.open_orders() == [m.last_order]
    await m.bar(51.0)
    assert [e.fill.price for e in m.fills()] == [51.0]
    assert await m.broker.open_orders() == []


async def test_slippage_and_commissions_arithmetic() -> None:
    execution = ExecutionConfig(
        slippage_bps=10.0, commission_per_order=1.0, commission_per_share=0.005
    )
    m = Market(cash=50_000.0, execution=execution)
    await m.bar(199.0, close=200.0)
    await m.order(Side.BUY, 100)
    await m.bar(200.0, close=205.0)

    buy = m.fills()[0].fill
    assert buy.price == pytest.approx(200.0 * 1.001)
    assert buy.fee == pytest.approx(1.0 + 0.005 * 100)
    assert m.broker.cash == pytest.approx(50_000.0 - 100 * 200.2 - 1.5)

    await m.order(Side.SELL, 100)
    await m.bar(210.0, close=211.0)

    sell = m.fills()[1].fill
    assert sell.price == pytest.approx(210.0 * 0.999)
    assert sell.fee == pytest.approx(1.5)
    assert m.broker.cash == pytest.approx(50_000.0 - 20_020.0 - 1.5 + 20_979.0 - 1.5)
    assert m.broker.portfolio.positions == {}
    assert m.broker.equity == pytest.approx(m.broker.cash)


async def test_a_buy_that_no_longer_fits_after_a_gap_up_is_rejected_at_fill_time() -> None:
    m = Market(cash=10_000.0)
    await m.bar(100.0)
    assert await m.order(Side.BUY, 99, cid="gap") is OrderStatus.ACCEPTED  # $9,900 at 100

    await m.bar(110.0)  # gap up: 99 x 110 = $10,890

    assert m.fills() == []
    (update,) = m.updates()
    assert update.order.client_order_id == "gap"
    assert update.order.status is OrderStatus.REJECTED
    assert update.order.reason == "insufficient cash: need $10,890.00, have $10,000.00"
    assert update.ts == m.clock.now()
    assert (await m.broker.get_order_by_client_id("gap")) == update.order
    assert m.broker.cash == 10_000.0
    assert m.broker.portfolio.positions == {}
    assert await m.broker.open_orders() == []


async def test_submit_time_rejections_say_why() -> None:
    m = Market(cash=10_000.0)
    await m.bar(100.0)
    for qty in (0.0, -1.0, math.nan, math.inf):
        assert await m.order(Side.BUY, qty) is OrderStatus.REJECTED
        assert m.last_order.reason == "quantity must be positive"

    assert await m.order(Side.SELL, 1) is OrderStatus.REJECTED
    assert m.last_order.reason == "cannot sell 1 SPY: only 0 held"

    assert await m.order(Side.BUY, 101) is OrderStatus.REJECTED
    assert m.last_order.reason == "insufficient cash: need $10,100.00, have $10,000.00"

    assert await m.broker.open_orders() == []
    assert m.events == []  # rejections at submission are answers, not events


async def test_pending_orders_reserve_what_they_will_use() -> None:
    m = Market(cash=10_000.0)
    await m.bar(100.0)
    assert await m.order(Side.BUY, 60) is OrderStatus.ACCEPTED
    assert await m.order(Side.BUY, 50) is OrderStatus.REJECTED
    assert m.last_order.reason == "insufficient cash: need $5,000.00, have $4,000.00"
    assert await m.order(Side.BUY, 40) is OrderStatus.ACCEPTED
    await m.bar(100.0)
    assert m.broker.position_qty("SPY") == 100
    assert m.broker.cash == 0.0

    assert await m.order(Side.SELL, 60) is OrderStatus.ACCEPTED
    assert await m.order(Side.SELL, 60) is OrderStatus.REJECTED
    assert m.last_order.reason == "cannot sell 60 SPY: only 40 held"
    assert await m.order(Side.SELL, 40) is OrderStatus.ACCEPTED


async def test_estimated_price_is_used_only_until_a_price_is_known() -> None:
    m = Market(cash=1_000.0)
    assert await m.order(Side.BUY, 20, estimated_price=60.0) is OrderStatus.REJECTED
    assert await m.order(Side.BUY, 20, estimated_price=40.0) is OrderStatus.ACCEPTED
    await m.bar(45.0)  # fills at 45: $900
    assert m.broker.last_price("SPY") == 45.0
    # Now the last close (45) counts, not a stale estimate.
    assert await m.order(Side.BUY, 3, estimated_price=1.0) is OrderStatus.REJECTED
    assert m.last_order.reason == "insufficient cash: need $135.00, have $100.00"


async def test_pending_orders_fill_in_submission_order_within_a_bar() -> None:
    m = Market()
    await m.bar(10.0)
    await m.order(Side.BUY, 10, cid="a")
    await m.bar(10.0)
    await m.order(Side.SELL, 10, cid="b")
    await m.order(Side.BUY, 4, cid="c")
    await m.bar(12.0)
    assert [e.fill.client_order_id for e in m.fills()] == ["a", "b", "c"]
    assert m.broker.position_qty("SPY") == 4
    assert m.broker.portfolio.positions["SPY"].avg_entry_price == 12.0


async def test_positions_are_marked_to_each_bars_close() -> None:
    m = Market(cash=10_000.0)
    await m.bar(100.0)
    await m.order(Side.BUY, 10)
    await m.bar(100.0, close=103.0)
    assert m.broker.equity == pytest.approx(9_000.0 + 10 * 103.0)
    await m.bar(99.0, close=97.5, symbol="QQQ")  # other symbols do not move SPY's mark
    await m.bar(104.0, close=95.0)

    (position,) = (await m.broker.get_positions()).values()
    assert position.last_price == 95.0
    assert position.unrealized_pnl == pytest.approx(-50.0)
    account = await m.broker.get_account()
    assert account.cash == 9_000.0
    assert account.equity == pytest.approx(9_950.0)
    assert m.broker.equity == account.equity
    assert account.positions == (position,)
    assert (account.account_id, account.status) == ("SIM", "ACTIVE")
    assert m.broker.last_price("SPY") == 95.0
    assert m.broker.last_price("QQQ") == 97.5
    assert m.broker.last_price("IWM") is None


async def test_events_carry_the_clocks_time_and_fills_the_time_of_their_price() -> None:
    m = Market()
    await m.bar(10.0)
    await m.order(Side.BUY, 1, cid="fill-me")
    priced = await m.bar(10.0)
    fill_time = m.clock.now()
    await m.order(Side.BUY, 1, cid="cancel-me")
    m.clock.advance_to(fill_time + timedelta(seconds=7))
    (cancelled,) = await m.broker.cancel_all_orders()

    filled, update = m.events
    assert isinstance(filled, OrderFilled) and isinstance(update, OrderUpdated)
    assert filled.ts == fill_time  # the event: when it was learnt, at the bar's close
    assert filled.fill.ts == priced.ts  # the fill: the time of the price used, the bar's open
    assert update.ts == fill_time + timedelta(seconds=7)
    assert update.order == cancelled
    assert cancelled.status is OrderStatus.CANCELLED
    assert m.last_order.submitted_at == fill_time


async def test_cancel_releases_reserved_cash() -> None:
    m = Market(cash=1_000.0)
    await m.bar(10.0)
    await m.order(Side.BUY, 100)
    assert await m.order(Side.BUY, 1) is OrderStatus.REJECTED
    await m.broker.cancel_all_orders()
    assert await m.order(Side.BUY, 100) is OrderStatus.ACCEPTED
    assert await m.broker.cancel_all_orders() != []
    assert await m.broker.cancel_all_orders() == []


async def test_order_ids_are_deterministic_and_include_rejections() -> None:
    async def run(prefix: str) -> list[str]:
        m = Market(id_prefix=prefix)
        await m.bar(10.0)
        ids = []
        for cid, qty in (("x", 1.0), ("y", 0.0), ("z", 2.0)):
            await m.order(Side.BUY, qty, cid=cid)
            ids.append(m.last_order.order_id)
        with pytest.raises(DuplicateClientOrderId):
            await m.order(Side.BUY, 1.0, cid="y")  # a rejected id is taken too
        await m.order(Side.BUY, 1.0, cid="w")
        ids.append(m.last_order.order_id)
        rejected = await m.broker.get_order_by_client_id("y")
        assert rejected is not None and rejected.status is OrderStatus.REJECTED
        return ids

    assert await run("sim") == ["sim-00000001", "sim-00000002", "sim-00000003", "sim-00000004"]
    assert await run("bt") == ["bt-00000001", "bt-00000002", "bt-00000003", "bt-00000004"]


async def test_portfolio_rebuilt_from_the_fills_equals_the_live_one() -> None:
    execution = ExecutionConfig(slippage_bps=3.0, commission_per_order=0.35)
    m = Market(cash=25_000.0, execution=execution)
    prices = [100.0 + 7 * math.sin(i / 3) for i in range(40)]
    for i, price in enumerate(prices):
        await m.bar(price, close=price + 0.25)
        if i % 5 == 0:
            await m.order(Side.BUY, 3.3 + i / 7)
        elif i % 5 == 3 and m.broker.position_qty("SPY") > 0:
            await m.order(Side.SELL, m.broker.position_qty("SPY") / 2)
    assert len(m.fills()) > 10

    started = SessionStarted(T0, "BACKTEST", "SIM", 25_000.0, "SPY", "5Min")
    rebuilt = rebuild([started, *m.fills()])
    live = m.broker.portfolio
    assert rebuilt.cash == live.cash
    assert {s: (p.qty, p.avg_entry_price) for s, p in rebuilt.positions.items()} == {
        s: (p.qty, p.avg_entry_price) for s, p in live.positions.items()
    }


async def test_close_refuses_new_orders_but_keeps_state_readable() -> None:
    m = Market(cash=500.0)
    await m.bar(5.0)
    await m.broker.close()
    with pytest.raises(BrokerError):
        await m.order(Side.BUY, 1)
    assert (await m.broker.get_account()).cash == 500.0


async def test_the_nothing_pending_bar_path_only_marks_to_market() -> None:
    m = Market(cash=1_000.0)
    await m.bar(10.0)
    await m.order(Side.BUY, 10)
    await m.bar(10.0)
    broker = m.broker
    bars = [
        Bar("SPY", T0, 10.0 + i % 7, 11.0 + i % 7, 9.0, 10.0 + i % 5, 1.0) for i in range(100_000)
    ]
    for bar in bars:
        await broker.on_bar(bar)
    assert broker.portfolio.positions["SPY"].last_price == 10.0 + 99_999 % 5
    assert broker.cash == m.broker.cash and broker.position_qty("SPY") == 10


def test_sim_broker_satisfies_the_broker_protocol() -> None:
    broker: Broker = SimBroker(1.0, ExecutionConfig(), clock=SimClock(T0))  # mypy checks this
    assert broker.name == "sim"
