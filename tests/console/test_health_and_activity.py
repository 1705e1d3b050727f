"""Supervising by hand (issue 11 items 2, 3, 8): connection health in the header, the banner,
the activity pane, one toast per operator action, and a one-line start-up notice.

Health is driven by hand: a broker whose REST health the test sets, on the engine's SimClock,
so "reconnecting for 6 s" is six simulated seconds; Pilot drives the real app.
"""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console
from textual.widgets._toast import Toast

from tapewatch.console.activity import FILTERS, entries_for, link_changes, signal_text
from tapewatch.console.app import TapewatchApp
from tapewatch.console.format import money
from tapewatch.console.launch import NOTICE_CELLS, _demo_notice
from tapewatch.console.panes.activity import ActivityPane
from tapewatch.console.panes.banner import Banner
from tapewatch.console.panes.base import Palette, View
from tapewatch.console.panes.connections import GRACE, ago, health_text, outages
from tapewatch.console.panes.header import HeaderPane
from tapewatch.console.screens.confirm import ConfirmScreen
from tapewatch.console.screens.flatten import FlattenScreen
from tapewatch.engine.adapters.alpaca.broker import REST_PROBE_EVERY, AlpacaBroker
from tapewatch.engine.adapters.alpaca.endpoints import Endpoints
from tapewatch.engine.api.snapshot import (
    SCHEMA,
    Snapshot,
    StrategyView,
    Stream,
    snapshot_from_data,
    snapshot_to_data,
)
from tapewatch.engine.core.broker import BrokerError
from tapewatch.engine.core.clock import SimClock
from tapewatch.engine.model.events import (
    BreakerChanged,
    OperatorAction,
    OrderFilled,
    SignalEvaluated,
    TradingStateChanged,
)
from tapewatch.engine.model.types import Fill, Mode, Order, OrderStatus, Side, TradingState
from tapewatch.engine.observability.health import CallHealth, StreamHealth
from tapewatch.engine.risk.base import BreakerStatus
from tests.console.conftest import (
    BUY,
    SLIDE,
    Session,
    bars_processed,
    drawn,
    make_app,
    make_session,
    open_position,
    shown,
    until,
)
from tests.helpers import T0

SIZES = [(80, 24), (100, 30), (160, 48)]
PLAIN = Palette(*([Palette.ansi({}).strong] * 9))  # colours do not matter to these checks


def snap(**fields: Any) -> Snapshot:
    base = Snapshot(
        schema=SCHEMA,
        version=1,
        state_version=1,
        now=T0,
        operator="tester@local",
        mode=Mode.PAPER,
        account="PA1",
        endpoint="https://paper.example",
        symbol="SPY",
        timeframe="5Min",
        running=True,
        bars=(),
        rsi=(),
        sma=(),
        last_signal=None,
        strategy=StrategyView(14, 20, 30.0, 70.0),
        positions=(),
        cash=0.0,
        equity=0.0,
        day_start_equity=0.0,
        orders=(),
        trading_state=TradingState.ACTIVE,
        paused=False,
        in_flight=0,
        breakers=(),
        latency=(),
        market=None,
        streams=(),
        speed=None,
    )
    return replace(base, **fields)


def ok(at: timedelta = timedelta(0)) -> StreamHealth:
    return StreamHealth("ok", T0 - timedelta(hours=1) + at)


# ---------------------------------------------------------------- REST health from calls
def test_rest_health_follows_the_calls() -> None:
    now = [T0]
    health = CallHealth(lambda: now[0])
    assert health.health().state == "connecting"
    health.record(None)
    assert health.health().state == "ok"
    now[0] = T0 + timedelta(seconds=10)
    health.record("GET /v2/account: connection refused")
    first = health.health()
    assert (first.state, first.since, first.failures) == ("reconnecting", now[0], 1)
    now[0] += timedelta(seconds=30)
    health.record("GET /v2/account: connection refused")
    health.record("GET /v2/account: timed out", None)
    down = health.health()
    assert down.state == "down" and down.since == T0 + timedelta(seconds=10)  # the outage's start
    assert down.reason == "GET /v2/account: timed out" and down.failures == 3
    health.record("GET /v2/positions/SPY: 404", 404)  # an answer: the endpoint is up
    back = health.health()
    assert (
        back.state == "ok" and back.since == now[0] and back.reason == "GET /v2/account: timed out"
    )


def test_refused_keys_are_down_at_once() -> None:
    health = CallHealth(lambda: T0)
    health.record("GET /v2/account: 401 unauthorized", 401)
    assert health.health().state == "down"


async def test_the_alpaca_brokers_rest_health_sees_a_dead_endpoint() -> None:
    dead = "http://127.0.0.1:9"  # nothing listens on the discard port
    endpoints = Endpoints(Mode.PAPER, dead, dead, "ws://127.0.0.1:9", "ws://127.0.0.1:9")
    clock = SimClock(T0)

    async def no_wait(_seconds: float) -> None:
        await asyncio.sleep(0)

    broker = AlpacaBroker(
        "KEY", "SECRET", endpoints, clock=clock, trade_stream=False, sleep=no_wait
    )
    try:
        assert broker.rest_health().state == "connecting"
        with pytest.raises(BrokerError):
            await broker.get_clock()  # retried under the policy, every attempt refused
        health = broker.rest_health()
        assert health.state in ("reconnecting", "down") and health.reason
        assert "KEY" not in health.reason and "SECRET" not in health.reason
    finally:
        await broker.close()


async def test_with_the_trade_stream_failing_rest_is_probed_without_any_call() -> None:
    dead = "http://127.0.0.1:9"
    endpoints = Endpoints(Mode.PAPER, dead, dead, "ws://127.0.0.1:9", "ws://127.0.0.1:9")
    clock = SimClock(T0)
    broker = AlpacaBroker("KEY", "SECRET", endpoints, clock=clock, poll_after=0.1)
    try:
        await broker.start()
        for _ in range(500):  # the socket's own attempts fail at once on the discard port
            health = broker.stream_health()
            if health is not None and health.state in ("reconnecting", "down"):
                break
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.2)  # several poll ticks: the engine clock has not moved
        assert broker.rest_health().state == "connecting"  # nothing asked yet, no probe yet
        clock.advance_to(T0 + timedelta(seconds=REST_PROBE_EVERY + 1))
        for _ in range(500):
            if broker.rest_health().state != "connecting":
                break
            await asyncio.sleep(0.01)
        probed = broker.rest_health()
        assert probed.state == "reconnecting" and probed.reason and "clock" in probed.reason
        assert broker.api_request_count() == 1  # one probe, then quiet until the next interval
    finally:
        await broker.close()


def test_the_snapshot_carries_rest_and_the_last_bar_across_the_wire() -> None:
    picture = snap(
        rest=StreamHealth("reconnecting", T0, "timed out", None, 2, 4.0),
        last_bar_at=T0 - timedelta(minutes=5),
        streams=(Stream("trades", ok()),),
    )
    again = snapshot_from_data(snapshot_to_data(picture))
    assert again == picture and SCHEMA == 4
    assert again.stream("rest") == picture.rest and again.stream("trades") == ok()
    assert again.stream("data") is None


# ---------------------------------------------------------------- the header's words
def test_the_header_names_each_connection_and_the_bar_age() -> None:
    now = T0 + timedelta(seconds=40)
    view = View(
        snap(
            now=now,
            rest=ok(),
            streams=(
                Stream("trades", StreamHealth("reconnecting", T0, "closed 1006", None, 2)),
                Stream("data", ok()),
            ),
            last_bar_at=T0 - timedelta(seconds=20),
        ),
        PLAIN,
    )
    wide = health_text(view).plain
    assert wide == "REST ok · trades reconnecting 40s · data ok · bar 09:29 1m00s ago"
    assert "trades reconnecting 40s" in health_text(view, short=True).plain
    all_ok = View(replace(view.state, streams=(Stream("data", ok()),)), PLAIN)
    assert health_text(all_ok, short=True).plain == "conn ok · bar 1m00s"
    demo = View(snap(mode=Mode.DEMO, last_bar_at=T0), PLAIN)  # a simulated broker: just the bar
    assert health_text(demo).plain == "bar 09:30 0s ago"


def _header_lines(picture: Snapshot, width: int) -> list[str]:
    console = Console(width=width, color_system=None, record=True)
    console.print(HeaderPane.compose_header(View(picture, PLAIN), short=True, width=width))
    return console.export_text().splitlines()


def test_a_narrow_header_keeps_mode_and_clock_then_trouble_then_the_last_action() -> None:
    action = OperatorAction(T0, "flatten_and_pause", "showcase@tapewatch")
    fine = snap(rest=ok(), last_action=action, last_bar_at=T0)
    [line1, _] = _header_lines(fine, 78)
    assert line1.startswith(" PAPER ") and line1.endswith("03-04 09:30:00 ET")
    assert "flattened + paused 09:30 by showcase@tapewatch" in line1  # all ok: the action stays
    trouble = replace(fine, rest=StreamHealth("reconnecting", T0, "refused", None, 1))
    [line1, _] = _header_lines(trouble, 78)
    assert line1.startswith(" PAPER ") and line1.endswith("03-04 09:30:00 ET")
    assert "REST reconnecting 0s" in line1 and "flattened" not in line1
    assert len(line1) <= 78


def test_ages_are_short_tokens() -> None:
    assert [ago(s) for s in (0, 42, 185, 7500)] == ["0s", "42s", "3m05s", "2h05m"]


# ---------------------------------------------------------------- the banner's rule
def test_the_banner_calls_an_outage_after_the_grace_and_halted_at_once() -> None:
    start = T0
    wobbly = StreamHealth("reconnecting", start, "ConnectionRefusedError", None, 1)
    early = snap(now=start + timedelta(seconds=GRACE - 1), rest=wobbly)
    assert outages(early, early.now) == []  # a blip is the header's business
    late = replace(early, now=start + timedelta(seconds=GRACE + 1))
    [broker] = outages(late, late.now)
    assert broker.what == "broker" and "REST reconnecting 6s (ConnectionRefusedError)" in (
        broker.message
    )
    data_down = snap(
        streams=(Stream("data", StreamHealth("down", T0, "402 insufficient subscription")),),
        last_bar_at=T0 - timedelta(minutes=10),
    )
    [data] = outages(data_down, T0)
    assert data.message == (
        "NO MARKET DATA · data DOWN 0s (402 insufficient subscription) · last bar 09:20 ET"
    )
    trip = BreakerStatus("drawdown", True, TradingState.HALTED, "drawdown 5.1%", T0, 5.1, 5, "%")
    halted = snap(trading_state=TradingState.HALTED, breakers=(trip,))
    assert [o.message for o in outages(halted, T0)] == [
        "■ HALTED · no orders · drawdown: drawdown 5.1%"
    ]


# ---------------------------------------------------------------- the banner in the app
class RestHealth:
    """The test's hand on the broker's REST health."""

    def __init__(self) -> None:
        self.health: StreamHealth | None = None

    def __call__(self) -> StreamHealth | None:
        return self.health


@pytest.mark.parametrize("size", SIZES)
async def test_a_dead_rest_endpoint_raises_the_banner_and_it_clears_itself(
    tmp_path: Path, size: tuple[int, int]
) -> None:
    session = make_session(tmp_path, SLIDE, mode=Mode.PAPER)
    hand = RestHealth()
    session.engine.broker.rest_health = hand  # type: ignore[attr-defined]
    clock = session.feed._clock
    assert isinstance(clock, SimClock)
    app = make_app(session)
    fine = "conn ok" if size[0] <= 100 else "REST ok"  # narrow: one word while all are ok
    async with app.run_test(size=size) as pilot:
        await until(pilot, lambda: session.engine.state.running, "engine running")
        banner = app.query_one(Banner)
        hand.health = StreamHealth("ok", clock.now())
        await until(pilot, lambda: app._snapshot is not None and app._snapshot.rest == hand.health)
        assert not banner.display
        assert fine in shown(app.query_one("#header"))

        went = clock.now()
        hand.health = StreamHealth("reconnecting", went, "GET /v2/account: connection refused")
        clock.advance_to(went + timedelta(seconds=1))
        await until(pilot, lambda: app._snapshot is not None and app._snapshot.rest == hand.health)
        assert not banner.display  # one second of trouble: the header says so, no banner
        assert "REST reconnecting" in shown(app.query_one("#header"))

        clock.advance_to(went + timedelta(seconds=6))  # well inside 10 s of the failure
        await until(pilot, lambda: "BROKER UNREACHABLE" in shown(banner), "the banner on screen")
        assert banner.shown == ("broker",) and banner.size.height == 1
        text = shown(banner)
        assert "BROKER UNREACHABLE" in text and "REST reconnecting 6s" in text

        hand.health = StreamHealth("ok", clock.now(), "GET /v2/account: connection refused")
        await until(pilot, lambda: not banner.display, "the banner clears itself")
        assert fine in shown(app.query_one("#header"))
        log = app.query_one(ActivityPane)
        texts = [e.text for e in log.entries]
        assert any(t.startswith("REST reconnecting: GET /v2/account") for t in texts)
        assert any(t.startswith("REST ok again after") for t in texts)
    session.journal.close()


# ---------------------------------------------------------------- the activity log's lines
def test_signals_fills_breakers_and_actions_become_lines() -> None:
    signal = SignalEvaluated(T0, "SPY", T0, 10.5, 27.9, 10.2, "buy", True, True, True, False)
    assert signal_text(signal) == "BUY SPY · RSI 27.9 oversold · close 10.50 > SMA 10.20"
    [line] = entries_for(signal)
    assert line.kind == "signal" and "RSI 27.9" in line.text
    assert entries_for(replace(signal, action="hold")) == []  # every bar would drown the log
    fill = Fill("o1", "c1", "SPY", Side.SELL, 5.0, 10.75, 0.0, T0)
    order = Order("o1", "c1", "SPY", Side.SELL, 5.0, OrderStatus.FILLED, 5.0, 10.75)
    [filled] = entries_for(OrderFilled(T0, fill, order))
    assert filled.text == "filled sell 5 SPY @ 10.75" and filled.client_order_id == "c1"
    trip = BreakerChanged(T0, "stale", True, TradingState.HALTED, "no bar for 600 s", T0)
    assert entries_for(trip)[0].text == "breaker stale tripped → HALTED: no bar for 600 s"
    state = TradingStateChanged(T0, TradingState.ACTIVE, TradingState.REDUCING, "paused")
    assert entries_for(state)[0].text == "trading ACTIVE → REDUCING: paused"
    action = OperatorAction(T0, "flatten_and_pause", "alice@local")
    assert entries_for(action)[0].text == "flattened + paused by alice"


def test_connection_changes_are_logged_once_each() -> None:
    before = snap(rest=ok())
    after = snap(rest=StreamHealth("down", T0, "401 unauthorized", 401, 1))
    [line] = link_changes(before, after)
    assert line.text == "REST DOWN: 401 unauthorized" and line.tone == "bad"
    assert list(link_changes(after, after)) == []
    assert list(link_changes(None, before)) == []  # the first picture: only what is wrong


async def test_the_activity_pane_logs_the_trade_with_its_pnl_and_filters(tmp_path: Path) -> None:
    session = make_session(tmp_path, [BUY, 10.0, 9.95])
    app = make_app(session)
    async with app.run_test(size=(160, 48)) as pilot:
        await until(pilot, lambda: session.engine.state.running)
        await open_position(pilot, session)
        pane = app.query_one(ActivityPane)
        assert pane.display and pane.region.width == 160  # a row of its own at 160x48
        await pilot.press("p")
        log = app.query_one("#activity-log")
        await until(pilot, lambda: "paused by tester" in shown(log), "the pause's line")
        text = shown(log)
        assert "signal   BUY SPY · RSI" in text and "close 10.50 > SMA" in text
        assert "filled buy" in text and "paused by tester" in text
        pane.focus()
        await pilot.press("v")  # trades only
        await until(pilot, lambda: "paused by tester" not in shown(log), "the filter")
        assert pane.filter_name == FILTERS[1][0] == "trades"
        assert "Activity · trades" in shown(pane)
        text = shown(log)
        assert "filled buy" in text and "paused by tester" not in text
        await pilot.press("f")
        await until(pilot, lambda: isinstance(app.screen, FlattenScreen), "flatten dialog")
        await pilot.press("o")  # flatten only
        await until(pilot, lambda: session.engine.state.in_flight == 1, "flatten in flight")
        await bars_processed(pilot, session, 1)
        await until(pilot, lambda: "realized" in shown(log), "the exit's realized P&L")
        [exit_line] = [line for line in shown(log).splitlines() if "filled sell" in line]
        pnl = session.engine.state.orders[0].realized_pnl
        assert pnl is not None and f"realized {money(pnl, sign=True)}" in exit_line
    session.journal.close()


# ---------------------------------------------------------------- toasts
def _messages(app: TapewatchApp) -> list[str]:
    return [n.message for n in app._notifications]


async def test_each_pause_is_one_toast_in_the_headers_words(session: Session) -> None:
    app = make_app(session)
    async with app.run_test(size=(80, 24), notifications=True) as pilot:
        await until(pilot, lambda: session.engine.state.running)
        await until(pilot, lambda: app._handle is not None)
        for press in range(4):
            await pilot.press("p")
            paused = press % 2 == 0
            await until(pilot, lambda p=paused: session.engine.state.paused == p, "paused")
            await drawn(pilot, session)
            await pilot.pause()
            messages = _messages(app)
            assert len(messages) == 1, messages  # the state change is no second toast
            assert messages[0].startswith("Paused" if paused else "Resumed")
        header = shown(app.query_one("#header"))
        assert "ACTIVE" in header and not any("REDUCING" in m for m in _messages(app))


async def test_flatten_and_pause_raises_one_toast_at_a_time(session: Session) -> None:
    app = make_app(session)
    async with app.run_test(size=(100, 30), notifications=True) as pilot:
        await until(pilot, lambda: session.engine.state.running)
        await open_position(pilot, session)
        app.clear_notifications()
        await pilot.press("f")
        await pilot.pause()
        await pilot.press("y")
        await until(pilot, lambda: session.engine.state.in_flight == 1, "flatten in flight")
        await bars_processed(pilot, session, 1)
        await until(pilot, lambda: app._flatten_watch is None, "the flatten watch's verdict")
        await pilot.pause()
        messages = _messages(app)
        assert len(messages) == 1 and "Flat" in messages[0], messages
    session.journal.close()


async def test_a_pile_of_toasts_never_reaches_the_header(session: Session) -> None:
    app = make_app(session)
    async with app.run_test(size=(80, 24), notifications=True) as pilot:
        await until(pilot, lambda: app._handle is not None)
        for i in range(12):
            app._toast(f"breaker {i} tripped: a reason long enough to wrap", severity="error")
        await until(pilot, lambda: "breaker 11" in " ".join(_messages(app)), "the newest toast")
        await pilot.pause()
        assert _messages(app) == [
            f"breaker {i} tripped: a reason long enough to wrap" for i in (9, 10, 11)
        ]
        toasts = list(app.screen.query(Toast))
        header = app.query_one("#header")
        assert len(toasts) == 3
        assert min(t.region.y for t in toasts) >= header.region.bottom
        assert max(t.region.bottom for t in toasts) <= 24  # the newest is on screen too


# ---------------------------------------------------------------- start-up without keys
async def test_start_up_without_keys_is_one_line_with_the_logs_path(
    session: Session, tmp_path: Path
) -> None:
    log_path = tmp_path / "logs" / "tapewatch.log"
    app = make_app(
        session,
        startup_notice=_demo_notice("The keyring backend failed. Ways forward:\n1. ...\n2. ..."),
        log_path=log_path,
    )
    async with app.run_test(size=(80, 24), notifications=True) as pilot:
        await until(pilot, lambda: app._handle is not None)
        await pilot.pause()
        banner = app.query_one(Banner)
        assert banner.display and banner.size.height == 1
        assert "running the offline demo" in banner.text and str(log_path) in banner.text
        assert _messages(app) == []  # no toast over the panes
        notices = [e.text for e in app.query_one(ActivityPane).entries if e.kind == "notice"]
        assert notices == [banner.text]
        banner.clear_note()
        assert not banner.display


def test_a_keyring_complaint_is_cut_to_one_short_sentence() -> None:
    long = "Keyring backend kwallet raised DBusException: " + "x" * 200 + ". Ways forward: a, b"
    line = _demo_notice(long)
    assert "\n" not in line and len(line) <= NOTICE_CELLS
    assert line.startswith("Could not read stored Alpaca keys (Keyring backend kwallet")
    assert _demo_notice(None) == "No Alpaca credentials stored: running the offline demo"


# ---------------------------------------------------------------- the layout
async def test_activity_is_page_5_small_and_swaps_with_the_orders_at_100x30(
    session: Session,
) -> None:
    app = make_app(session)
    async with app.run_test(size=(80, 24)) as pilot:
        await until(pilot, lambda: app._handle is not None)
        tab = app.query_one("#page-tabs").query_one("Tab#activity")
        assert tab.display and tab.region.width > 0 and "5 Activity" in shown(tab)
        await pilot.press("5")
        await pilot.pause()
        assert {w.id for w in app.query(".pane") if w.display} == {"activity"}
        assert app.focused is app.query_one(ActivityPane)
        await pilot.resize_terminal(100, 30)
        await pilot.pause()
        visible = {w.id for w in app.query(".pane") if w.display}
        assert "activity" in visible and "orders" not in visible and len(visible) == 6
        await pilot.press("3")
        await pilot.pause()
        visible = {w.id for w in app.query(".pane") if w.display}
        assert "orders" in visible and "activity" not in visible
        await pilot.press("1")  # the other page keys stay inert on a mid screen
        await pilot.pause()
        assert "orders" in {w.id for w in app.query(".pane") if w.display}


async def test_a_halt_raises_the_banner_and_a_reset_is_one_toast(tmp_path: Path) -> None:
    session = make_session(tmp_path, [BUY, *SLIDE], max_drawdown=0.01, drawdown_action="halt")
    app = make_app(session)
    async with app.run_test(size=(100, 30), notifications=True) as pilot:
        await until(pilot, lambda: session.engine.state.running)
        await open_position(pilot, session)
        assert session.engine.state.trading_state is TradingState.HALTED
        banner = app.query_one(Banner)
        await until(pilot, lambda: "HALTED" in shown(banner), "the HALTED banner")
        assert banner.shown == ("halted",) and "drawdown" in banner.text
        app.clear_notifications()
        await pilot.press("r")
        await until(pilot, lambda: isinstance(app.screen, ConfirmScreen), "the reset dialog")
        await pilot.press("y")
        await until(pilot, lambda: session.engine.state.trading_state is TradingState.ACTIVE)
        await until(pilot, lambda: not banner.display, "the banner clears itself")
        await until(pilot, lambda: bool(_messages(app)), "the reset's toast")
        await pilot.pause()
        messages = _messages(app)
        assert len(messages) == 1 and "drawdown" in messages[0], messages  # not three
        kinds = [e.text for e in app.query_one(ActivityPane).entries if e.kind == "risk"]
        assert "breaker drawdown reset" in kinds and "trading HALTED → ACTIVE" in " ".join(kinds)
    session.journal.close()
