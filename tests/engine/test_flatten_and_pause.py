"""Flatten that sticks: after flatten-and-pause no entry goes out until the operator resumes.

Driven through the real engine (SimBroker, SimClock, the journal) and through the API handle,
with bars crafted so the strategy signals a buy again right after the flatten.
"""

from __future__ import annotations

from pathlib import Path

from tapewatch.engine.api.commands import Flatten, Resume, command_from_data, command_to_data
from tapewatch.engine.api.handle import InProcessHandle
from tapewatch.engine.api.replies import Accepted
from tapewatch.engine.api.snapshot import snapshot_from_data, snapshot_to_data
from tapewatch.engine.core.engine import Engine
from tapewatch.engine.core.pnl import RealizedPnl
from tapewatch.engine.model.events import (
    BreakerChanged,
    Event,
    OperatorAction,
    OrderFilled,
    OrderIntended,
    RiskDenied,
    SignalEvaluated,
)
from tapewatch.engine.model.types import (
    Bar,
    Fill,
    Intent,
    Order,
    OrderStatus,
    Position,
    Side,
    TradingState,
)
from tapewatch.engine.storage.journal import Journal, MemoryJournal
from tapewatch.engine.strategy.rsi_sma import signal_reason
from tests.helpers import STEP, bars_from_closes, feed_bars, make_engine

# RSI(3)/SMA(5): rises then three dips (RSI 0 < 30, close above the SMA): a buy on the last dip.
ENTRY = [100, 101, 102, 103, 104, 110, 109.5, 109, 108.8]
FILL = [109.2]  # the entry fills at this bar's open
# After the flatten fills: a rise and three more dips, another buy signal on the last one.
AGAIN = [109.0, 110.0, 111.0, 112.0, 118.0, 117.5, 117.0, 116.8]
WHO = "alice@local"


def collect(engine: Engine) -> list[Event]:
    seen: list[Event] = []
    engine.bus.add_sink(seen.append)
    return seen


def entries(events: list[Event]) -> list[OrderIntended]:
    return [e for e in events if isinstance(e, OrderIntended) and e.request.intent is Intent.ENTRY]


async def holding(engine: Engine, clock) -> list[Bar]:  # type: ignore[no-untyped-def]
    """Feed the entry and its fill: the engine holds SPY."""
    bars = bars_from_closes([*ENTRY, *FILL])
    await feed_bars(engine, clock, bars)
    assert engine.portfolio.positions["SPY"].qty > 0
    return bars


def after(bars: list[Bar], closes: list[float]) -> list[Bar]:
    return bars_from_closes(closes, start=bars[-1].ts + STEP)


async def test_no_entry_goes_out_after_flatten_and_pause_until_resume() -> None:
    journal = MemoryJournal(check_serde=True)
    engine, broker, clock = make_engine(journal=journal)
    events = collect(engine)
    await engine.start()
    bars = await holding(engine, clock)
    assert len(entries(events)) == 1

    await engine.flatten(WHO, pause=True)
    assert engine.gate.state is TradingState.REDUCING and engine.state.paused
    since = len(events)
    again = after(bars, AGAIN)
    await feed_bars(engine, clock, again)
    assert broker.position_qty("SPY") == 0  # the flatten filled on the first bar
    new = events[since:]
    buys = [e for e in new if isinstance(e, SignalEvaluated) and e.action == "buy"]
    assert buys, "the crafted bars must make the strategy want to buy again"
    assert entries(new) == []  # the buy-back of today's bug does not happen
    [denied] = [e for e in new if isinstance(e, RiskDenied)]
    assert denied.breaker == "pause" and "paused after flatten by alice@local" in denied.reason
    assert engine.state.orders[0].status == "denied"

    await engine.resume(WHO)
    since = len(events)
    await feed_bars(engine, clock, after(again, AGAIN))
    assert len(entries(events[since:])) == 1  # resumed: the next buy signal is acted on

    journaled = [e for _, e in journal.events()]
    acts = [(e.action, e.who) for e in journaled if isinstance(e, OperatorAction)]
    assert acts == [("flatten_and_pause", WHO), ("resume", WHO)]
    pauses = [e for e in journaled if isinstance(e, BreakerChanged) and e.name == "pause"]
    assert [p.tripped for p in pauses] == [True, False]


async def test_flatten_only_lets_the_strategy_buy_back() -> None:
    """The other choice keeps today's behaviour: the position is closed, entries stay allowed."""
    engine, _broker, clock = make_engine()
    events = collect(engine)
    await engine.start()
    bars = await holding(engine, clock)
    await engine.flatten(WHO)
    assert engine.gate.state is TradingState.ACTIVE
    since = len(events)
    await feed_bars(engine, clock, after(bars, AGAIN))
    assert len(entries(events[since:])) == 1
    assert engine.last_action is not None and engine.last_action.action == "flatten"


async def test_the_pause_and_the_last_action_survive_a_restart(tmp_path: Path) -> None:
    path = tmp_path / "journal.sqlite3"
    journal = Journal(path)
    engine, _broker, clock = make_engine(journal=journal)
    await engine.start()
    bars = await holding(engine, clock)
    await engine.flatten(WHO, pause=True)
    flattened_at = clock.now()
    await engine.stop("test", who=WHO)  # a quit is journaled but is not the action to show
    journal.close()

    journal2 = Journal(path)
    engine2, _broker2, clock2 = make_engine(journal=journal2, start=clock.now())
    events = collect(engine2)
    await engine2.start()
    last = engine2.last_action
    assert last is not None
    assert (last.action, last.who, last.ts) == ("flatten_and_pause", WHO, flattened_at)
    assert engine2.state.paused
    await feed_bars(engine2, clock2, after(bars, AGAIN))
    assert entries(events) == []
    journal2.close()


async def test_the_handle_carries_the_pause_choice_and_the_snapshot_shows_the_action() -> None:
    engine, _broker, clock = make_engine()
    handle = InProcessHandle(engine, alerts=False)
    await engine.start()
    await holding(engine, clock)
    command = Flatten(who=WHO, pause=True)
    assert command_from_data(command_to_data(command)) == command
    assert command_from_data({"command": "Flatten", "who": WHO}) == Flatten(who=WHO)
    reply = await handle.send(command)
    assert isinstance(reply, Accepted) and "paused until resume" in reply.detail
    snap = handle.snapshot()
    assert snap is not None and snap.paused
    assert snap.last_action is not None
    assert (snap.last_action.action, snap.last_action.who) == ("flatten_and_pause", WHO)
    assert snap.orders[0].why == f"flatten + pause by {WHO}"
    assert snapshot_from_data(snapshot_to_data(snap)) == snap
    await handle.send(Resume(who="bob@local"))
    snap = handle.snapshot()
    assert snap is not None and not snap.paused
    assert snap.last_action is not None and snap.last_action.action == "resume"


async def test_strategy_orders_carry_the_rule_values_and_exits_their_realized_pnl() -> None:
    engine, _broker, clock = make_engine()
    await engine.start()
    bars = await holding(engine, clock)
    entry = engine.state.orders[0]
    assert entry.why == "RSI 0.0 < 30, close > SMA"
    assert entry.realized_pnl is None  # an entry closes nothing
    # Up 0.4, 0.4 after a 0.2 dip: RSI(3) = 80 > 70 on the 109.6 bar; it fills at the next open.
    await feed_bars(engine, clock, after(bars, [109.6, 110.4]))
    exit_row = engine.state.orders[0]
    assert exit_row.intent == "exit" and exit_row.why == "RSI 80.0 > 70"
    assert exit_row.status == "filled"
    assert (entry.fill_price, exit_row.fill_price) == (108.8, 109.6)
    expected = (109.6 - 108.8) * entry.qty  # no commission configured
    assert exit_row.realized_pnl is not None
    assert abs(exit_row.realized_pnl - expected) < 1e-9


def fill(side: Side, qty: float, price: float, fee: float) -> Fill:
    return Fill("o", "c", "SPY", side, qty, price, fee, bars_from_closes([1.0])[0].ts)


def test_realized_pnl_charges_the_entry_fees_to_the_fills_that_close() -> None:
    ledger = RealizedPnl()
    assert ledger.on_fill(None, fill(Side.BUY, 10, 100.0, 2.0)) is None
    held = Position("SPY", 10, 100.0)
    # Half closed: half the entry fee and this fill's own fee.
    first = ledger.on_fill(held, fill(Side.SELL, 5, 110.0, 1.0))
    assert first is not None and abs(first - (5 * 10.0 - 1.0 - 1.0)) < 1e-9
    rest = ledger.on_fill(Position("SPY", 5, 100.0), fill(Side.SELL, 5, 90.0, 1.0))
    assert rest is not None and abs(rest - (5 * -10.0 - 1.0 - 1.0)) < 1e-9
    # A short closed by a buy gains when the price fell.
    assert ledger.on_fill(None, fill(Side.SELL, 4, 50.0, 0.0)) is None
    cover = ledger.on_fill(Position("SPY", -4, 50.0), fill(Side.BUY, 4, 45.0, 0.0))
    assert cover is not None and abs(cover - 20.0) < 1e-9


def test_realized_pnl_ledger_is_rebuilt_from_the_journal() -> None:
    ts = bars_from_closes([1.0])[0].ts
    buy = fill(Side.BUY, 10, 100.0, 3.0)
    order = Order("o", "c", "SPY", Side.BUY, 10, OrderStatus.FILLED, 10, 100.0)
    ledger = RealizedPnl()
    ledger.replay([OrderFilled(ts=ts, fill=buy, order=order)])
    gain = ledger.on_fill(Position("SPY", 10, 100.0), fill(Side.SELL, 10, 101.0, 0.0))
    assert gain is not None and abs(gain - (10.0 - 3.0)) < 1e-9


def test_a_reason_never_contradicts_its_own_inequality() -> None:
    ts = bars_from_closes([1.0])[0].ts

    def signal(action: str, rsi: float) -> SignalEvaluated:
        return SignalEvaluated(ts, "SPY", ts, 10.0, rsi, 9.0, action, True, True, True, True)

    assert signal_reason(signal("buy", 27.94), 30, 70) == "RSI 27.9 < 30, close > SMA"
    assert signal_reason(signal("buy", 29.96), 30, 70) == "RSI 29.96 < 30, close > SMA"
    assert signal_reason(signal("sell", 70.04), 30, 70) == "RSI 70.04 > 70"
    assert signal_reason(signal("hold", 50.0), 30, 70) == ""
