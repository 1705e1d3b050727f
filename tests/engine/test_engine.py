"""The engine's bar path end to end on a SimClock: signals, risk gate, fills, journal."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import pytest

from tapewatch.engine.adapters.sim.broker import SimBroker
from tapewatch.engine.core.portfolio import rebuild
from tapewatch.engine.model.events import (
    BreakerChanged,
    Event,
    Notice,
    OperatorAction,
    OrderFilled,
    OrderIntended,
    OrderUpdated,
    RiskDenied,
    SignalEvaluated,
)
from tapewatch.engine.model.types import (
    Bar,
    Intent,
    OrderRequest,
    OrderStatus,
    Side,
    TradingState,
    floor_qty,
)
from tapewatch.engine.settings.config import EngineConfig, RiskConfig
from tapewatch.engine.storage.journal import Journal, MemoryJournal
from tests.helpers import STEP, bars_from_closes, feed_bars, make_engine, small_config

# Rises (SMA below price), dips 3 bars (RSI(3) = 0 < 30 while close > SMA(5)): BUY on the last dip.
ENTRY = [100, 101, 102, 103, 104, 110, 109.5, 109, 108.8]
# Three rises: RSI(3) = 100 > 70: SELL.
EXIT = [109.6, 110.4, 111.0]


def collect(engine) -> list[Event]:  # type: ignore[no-untyped-def]
    seen: list[Event] = []
    engine.bus.add_sink(seen.append)
    return seen


def fills(events: list[Event]) -> list[OrderFilled]:
    return [e for e in events if isinstance(e, OrderFilled)]


async def test_buy_signal_fills_at_the_next_bars_open() -> None:
    engine, _broker, clock = make_engine()
    events = collect(engine)
    await engine.start()
    bars = bars_from_closes([*ENTRY, 109.2])
    await feed_bars(engine, clock, bars[: len(ENTRY)])
    signal = [e for e in events if isinstance(e, SignalEvaluated)][-1]
    assert signal.action == "buy"
    assert signal.rsi_oversold and signal.close_above_sma and signal.flat
    assert fills(events) == []  # not on the signal bar
    assert engine.state.in_flight == 1
    await feed_bars(engine, clock, bars[len(ENTRY) :])
    (fill,) = fills(events)
    assert fill.fill.price == bars[-1].open
    assert fill.fill.qty == floor_qty(0.02 * 100_000 / 108.8)
    assert engine.portfolio.positions["SPY"].qty == fill.fill.qty
    assert engine.state.in_flight == 0


async def test_sell_signal_exits_the_whole_position() -> None:
    engine, broker, clock = make_engine()
    events = collect(engine)
    await engine.start()
    await feed_bars(engine, clock, bars_from_closes([*ENTRY, *EXIT, 111.5]))
    sides = [f.fill.side for f in fills(events)]
    assert sides == [Side.BUY, Side.SELL]
    assert "SPY" not in engine.portfolio.positions
    assert broker.position_qty("SPY") == 0


def verify_next_bar_execution(bars: list[Bar], events: list[Event]) -> None:
    """Every fill happened at the open of the bar right after the bar that caused it."""
    index = {bar.ts: i for i, bar in enumerate(bars)}
    intents = {e.request.client_order_id: e.request for e in events if isinstance(e, OrderIntended)}
    for event in fills(events):
        request = intents[event.fill.client_order_id]
        assert request.bar_ts is not None
        nxt = bars[index[request.bar_ts] + 1]
        assert event.ts > nxt.ts, "filled when the signal bar closed: look-ahead"
        assert event.fill.price == nxt.open, "filled at a price before the next open: look-ahead"


class SameBarBroker(SimBroker):
    """An injected look-ahead: fills at the signal bar's own close, the classic backtest bug."""

    async def submit_order(self, request: OrderRequest):  # type: ignore[no-untyped-def]
        order = await super().submit_order(request)
        assert request.estimated_price is not None
        bar = Bar(
            request.symbol,
            self._clock.now(),
            request.estimated_price,
            request.estimated_price,
            request.estimated_price,
            request.estimated_price,
            1.0,
        )
        await self.on_bar(bar)
        return order


async def test_execution_is_next_bar_and_an_injected_look_ahead_is_caught() -> None:
    bars = bars_from_closes([*ENTRY, *EXIT, 111.5, 112.0], gap=0.01)
    engine, _broker, clock = make_engine()
    events = collect(engine)
    await engine.start()
    await feed_bars(engine, clock, bars)
    assert len(fills(events)) == 2
    verify_next_bar_execution(bars, events)

    cheat_engine, _, cheat_clock = make_engine()
    cheat = SameBarBroker(100_000.0, cheat_engine.config.execution, clock=cheat_clock)
    cheat_engine.broker = cheat
    cheat.set_listener(cheat_engine._on_broker_event)
    cheat_events = collect(cheat_engine)
    await cheat_engine.start()
    await feed_bars(cheat_engine, cheat_clock, bars)
    assert fills(cheat_events), "the cheat must trade for the check to mean anything"
    with pytest.raises(AssertionError, match="look-ahead"):
        verify_next_bar_execution(bars, cheat_events)


async def test_pause_blocks_entries_but_not_exits() -> None:
    engine, broker, clock = make_engine()
    events = collect(engine)
    await engine.start()
    await feed_bars(engine, clock, bars_from_closes([*ENTRY, 109.2]))
    assert broker.position_qty("SPY") > 0
    await engine.pause()
    assert engine.gate.state is TradingState.REDUCING
    assert engine.state.paused
    bars = bars_from_closes([*ENTRY, 109.2, *EXIT, 111.5], start=engine.clock.now() - STEP * 10)
    await feed_bars(engine, clock, bars[len(ENTRY) + 1 :])
    assert broker.position_qty("SPY") == 0, "the exit went through while paused"
    # A fresh entry signal while paused is denied with a reason.
    later = bars_from_closes(ENTRY, start=engine.clock.now() + STEP)
    await feed_bars(engine, clock, later)
    denied = [e for e in events if isinstance(e, RiskDenied)]
    assert denied and denied[-1].request.intent is Intent.ENTRY
    assert "pause" in denied[-1].reason.lower()
    assert engine.state.orders[0].status == "denied"
    await engine.resume()
    assert engine.gate.state is TradingState.ACTIVE
    ops = [e.action for e in events if isinstance(e, OperatorAction)]
    assert ops == ["pause", "resume"]


async def test_journal_rebuild_equals_the_live_state(tmp_path: Path) -> None:
    from datetime import date

    from tapewatch.engine.market.calendar import MarketCalendar
    from tapewatch.engine.market.synthetic import generate

    config = replace(
        small_config(
            rsi_period=5, sma_period=10, position_pct=0.5, rsi_oversold=45.0, rsi_overbought=55.0
        ),
        risk=RiskConfig(max_drawdown=0.5),
    )
    journal = Journal(tmp_path / "j.sqlite3")
    bars = list(generate("SPY", seed=3, start=date(2024, 3, 4), n_bars=2000).iter_bars())
    engine, broker, clock = make_engine(
        config, journal=journal, start=bars[0].ts, in_session=MarketCalendar().is_open
    )
    events = collect(engine)
    await engine.start()
    await feed_bars(engine, clock, bars)
    assert len(fills(events)) > 20
    rebuilt = rebuild(e for _, e in journal.events())
    assert rebuilt.cash == broker.cash
    assert set(rebuilt.positions) == set(broker.portfolio.positions)
    for symbol, pos in broker.portfolio.positions.items():
        assert rebuilt.positions[symbol].qty == pos.qty
        assert rebuilt.positions[symbol].avg_entry_price == pos.avg_entry_price
    kinds = {e.kind for _, e in journal.events()}
    assert {
        "session_started",
        "bar",
        "signal",
        "intent",
        "order_submitted",
        "fill",
        "equity",
        "day_started",
    } <= kinds
    journal.close()


async def crash_into_halt(engine, clock) -> list[Bar]:  # type: ignore[no-untyped-def]
    """Enter with the whole account, then fall 10%: the drawdown breaker halts trading."""
    bars = bars_from_closes([*ENTRY, 109.0, 98.0, 97.0])
    await feed_bars(engine, clock, bars)
    return bars


def halting(config: EngineConfig) -> EngineConfig:
    """``[risk] drawdown_action = "halt"``: a trip stops every strategy order."""
    return replace(config, risk=replace(config.risk, drawdown_action="halt"))


async def test_drawdown_halts_persists_across_restart_and_needs_a_journaled_reset(
    tmp_path: Path,
) -> None:
    config = halting(small_config(position_pct=1.0))
    path = tmp_path / "journal.sqlite3"
    journal = Journal(path)
    engine, _broker, clock = make_engine(config, journal=journal)
    await engine.start()
    bars = await crash_into_halt(engine, clock)
    assert engine.gate.state is TradingState.HALTED
    tripped = journal.last("breaker")
    assert isinstance(tripped, BreakerChanged) and tripped.tripped and tripped.name == "drawdown"
    await engine.stop("test")
    journal.close()

    # Restart: a new engine over the same journal comes back HALTED, not silently re-armed.
    journal2 = Journal(path)
    engine2, _broker2, _clock2 = make_engine(config, journal=journal2, start=clock.now())
    await engine2.start()
    assert engine2.gate.state is TradingState.HALTED
    assert engine2.state.trading_state is TradingState.HALTED
    assert engine2.gate.day_start_equity == pytest.approx(100_000.0)
    await engine2.reset_breaker()
    assert engine2.gate.state is TradingState.ACTIVE
    tail = [e for _, e in journal2.events()][-3:]
    assert any(isinstance(e, OperatorAction) and e.action == "reset_breaker" for e in tail)
    assert any(isinstance(e, BreakerChanged) and not e.tripped for e in tail)
    journal2.close()
    del bars


async def test_flatten_closes_positions_even_when_halted() -> None:
    engine, broker, clock = make_engine(halting(small_config(position_pct=1.0)))
    events = collect(engine)
    await engine.start()
    bars = await crash_into_halt(engine, clock)
    assert engine.gate.state is TradingState.HALTED
    preview = engine.preview_flatten()
    assert [(r.side, r.qty) for r in preview] == [(Side.SELL, broker.position_qty("SPY"))]
    await engine.flatten()
    nxt = bars_from_closes([97.0, 97.5], start=bars[-1].ts + STEP)
    await feed_bars(engine, clock, nxt[1:])
    assert broker.position_qty("SPY") == 0
    assert fills(events)[-1].fill.side is Side.SELL
    assert not [
        e for e in events if isinstance(e, RiskDenied) and e.request.intent is Intent.FLATTEN
    ]


async def test_stale_data_goes_reducing_during_the_session() -> None:
    engine, _broker, clock = make_engine(replace(small_config(), risk=RiskConfig(stale_bars=2)))
    events = collect(engine)
    await engine.start()
    bars = bars_from_closes([100, 101, 102])
    await feed_bars(engine, clock, bars)
    assert engine.gate.state is TradingState.ACTIVE
    clock.advance_to(bars[-1].ts + STEP * 3 + STEP / 2)  # 2.5 intervals with no bar
    assert engine.gate.state is TradingState.REDUCING
    assert any(isinstance(e, BreakerChanged) and e.name == "stale" and e.tripped for e in events)


async def test_an_intent_journaled_but_never_sent_is_not_resent_after_restart(
    tmp_path: Path,
) -> None:
    from tapewatch.engine.model.events import SessionStarted
    from tests.helpers import T0

    path = tmp_path / "j.sqlite3"
    journal = Journal(path)
    request = OrderRequest("tw-x-SPY-1-entry", "SPY", Side.BUY, 1.0, Intent.ENTRY, T0, 100.0)
    journal.append(
        SessionStarted(
            ts=T0,
            mode="DEMO",
            account="DEMO",
            starting_cash=100_000.0,
            symbol="SPY",
            timeframe="5Min",
        )
    )
    journal.append(OrderIntended(ts=T0, request=request))  # the process died right here
    engine, broker, _clock = make_engine(journal=journal)
    await engine.start()
    assert await broker.open_orders() == []
    resolved = journal.last("order_updated")
    assert isinstance(resolved, OrderUpdated)
    assert resolved.order.client_order_id == request.client_order_id
    assert resolved.order.status is OrderStatus.REJECTED
    assert "not resent" in resolved.order.reason
    journal.close()


async def test_a_slow_subscriber_loses_oldest_events_not_the_engine() -> None:
    engine, _broker, clock = make_engine()
    sub = engine.subscribe(maxsize=5)
    await engine.start()
    await feed_bars(engine, clock, bars_from_closes([100 + i * 0.1 for i in range(20)]))
    assert sub.pending() == 5
    assert sub.dropped > 0
    assert engine.state.bars[-1].close == pytest.approx(101.9)


async def test_an_account_switch_is_journaled_so_a_rebuild_follows_the_new_account(
    tmp_path: Path,
) -> None:
    from tapewatch.engine.core.reconcile import Reconciler
    from tapewatch.engine.model.types import Mode

    journal = Journal(tmp_path / "j.sqlite3")
    engine, broker, clock = make_engine(journal=journal, mode=Mode.PAPER)
    await engine.start()
    await feed_bars(engine, clock, bars_from_closes([*ENTRY, 109.2]))
    assert broker.position_qty("SPY") > 0
    reconciler = Reconciler(engine, broker)
    assert reconciler.broker is broker
    other = SimBroker(25_000.0, engine.config.execution, clock=clock)
    await engine.switch_account(mode=Mode.LIVE, broker=other, account="L-1", endpoint="x")
    assert reconciler.broker is other  # compares with the account now traded
    rebuilt = rebuild(e for _, e in journal.events())
    assert rebuilt.cash == 25_000.0 and rebuilt.positions == {}
    assert engine.gate.day_start_equity == 25_000.0
    journal.close()


async def test_a_journal_failing_outside_a_bar_stops_trading_without_a_stray_exception() -> None:
    """A stream fill arrives between bars and the disk is full: the callback must not raise
    into the event loop; trading stops and run() reports the journal error once."""
    from tapewatch.engine.adapters.sim.replay import ReplayFeed
    from tapewatch.engine.model.types import Fill, Order
    from tapewatch.engine.storage.journal import JournalError, MemoryJournal

    class FullDisk(MemoryJournal):
        failing = False

        def append_many(self, events):  # type: ignore[no-untyped-def]
            if self.failing:
                raise JournalError("journal x: disk is full; free space")
            return super().append_many(events)

    journal = FullDisk()
    engine, _broker, clock = make_engine(journal=journal)
    await engine.start()
    journal.failing = True
    now = clock.now()
    order = Order("o1", "c1", "SPY", Side.BUY, 1.0, OrderStatus.FILLED, 1.0, 100.0)
    fill = Fill("o1", "c1", "SPY", Side.BUY, 1.0, 100.0, 0.0, now)
    engine._on_broker_event(OrderFilled(ts=now, fill=fill, order=order))  # must not raise
    assert engine._stopping
    from datetime import date

    from tapewatch.engine.market.bars import BarArrays
    from tapewatch.engine.market.synthetic import generate

    bars: BarArrays = generate("SPY", seed=1, start=date(2024, 3, 4), n_bars=5)
    with pytest.raises(JournalError, match="disk is full"):
        await engine.run(ReplayFeed(bars, clock))


@pytest.mark.parametrize("delay_s", [0.0, 59.0, 61.0, 900.0])
async def test_a_bar_that_arrives_after_the_tolerance_decides_nothing(delay_s: float) -> None:
    """The buy bar delivered ``delay_s`` after its close: within the 60 s tolerance it trades;
    past it (a backlog after an outage) it still moves the indicators and the chart, places
    no order, and the journal says why."""
    engine, _broker, clock = make_engine(journal=MemoryJournal())
    events = collect(engine)
    await engine.start()
    bars = bars_from_closes(ENTRY)
    await feed_bars(engine, clock, bars[:-1])
    last = bars[-1]
    clock.advance_to(last.ts + STEP + timedelta(seconds=delay_s))
    await engine.on_bar(last)
    intents = [e for e in events if isinstance(e, OrderIntended)]
    assert engine.state.bars[-1] == last  # charted either way
    assert engine.strategy.rsi == 0.0  # and the indicators took its close
    assert engine.journal is not None
    notices = [
        e.message for _, e in engine.journal.events(kinds=("notice",)) if isinstance(e, Notice)
    ]
    if delay_s <= 60.0:
        assert len(intents) == 1 and not notices
    else:
        assert intents == []
        assert any("after its close" in m and "no order placed" in m for m in notices)
        # The next bar, on time, is decided as usual (the late one is not re-decided).
        nxt = bars_from_closes([108.0], start=clock.now())
        await feed_bars(engine, clock, nxt)
        assert [e for e in events if isinstance(e, SignalEvaluated)][-1].bar_ts == nxt[0].ts
