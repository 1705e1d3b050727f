"""Issue 9 item 9: whole shares where Alpaca allows no fractions, and the wire's odd orders.

Start-up reads the asset's ``fractionable`` and the account configuration's
``fractional_trading``; either one false makes the engine size entries in whole shares, said
once in a notice. The mapping reads a notional order's null ``qty``, a ``filled_avg_price`` of
"0" and ``done_for_day`` (not final) as Alpaca means them. SDK models parse the wire JSON; the
sessions run against the sandbox through the real SDK.
"""

from __future__ import annotations

import asyncio
import io
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from alpaca.trading.models import AccountConfiguration, Asset
from alpaca.trading.models import Order as SdkOrder

from tapewatch.engine.adapters.alpaca.mapping import (
    filled_notional,
    fractional_trading,
    order_status,
    to_asset,
    to_order,
)
from tapewatch.engine.adapters.alpaca.orders import OrderTracker
from tapewatch.engine.model.events import Event, Notice, OrderFilled, OrderUpdated
from tapewatch.engine.model.types import Mode, OrderStatus
from tapewatch.engine.root.headless import run_headless
from tapewatch.engine.root.live import LiveOptions, build_live_session
from tapewatch.sandbox import SandboxThread
from tests.alpaca.adapter_helpers import FAST_RETRIES, eventually, make_broker, sandbox_endpoints
from tests.alpaca.test_adapter_headless import credentials, quick_config

NOW = datetime(2024, 3, 5, 15, 0, tzinfo=UTC)


def wire_order(**fields: Any) -> dict[str, Any]:
    """An order as Alpaca's JSON has it (strings for numbers), with ``fields`` changed."""
    body: dict[str, Any] = {
        "id": "61e69015-8549-4bfd-b9c3-01e75843f47d",
        "client_order_id": "tw-entry-1",
        "created_at": "2024-03-05T15:00:01.942282Z",
        "updated_at": "2024-03-05T15:00:01.942282Z",
        "submitted_at": "2024-03-05T15:00:01.937734Z",
        "filled_at": None,
        "asset_id": "b0b6dd9d-8b9b-48a9-ba46-b9d54906e415",
        "symbol": "SPY",
        "asset_class": "us_equity",
        "notional": None,
        "qty": "10",
        "filled_qty": "0",
        "filled_avg_price": None,
        "order_class": "simple",
        "order_type": "market",
        "type": "market",
        "side": "buy",
        "time_in_force": "day",
        "status": "accepted",
        "extended_hours": False,
    }
    body.update(fields)
    return body


def both_forms(**fields: Any) -> list[Any]:
    """The same order as the SDK model (REST answers) and as a dict (207 bodies)."""
    body = wire_order(**fields)
    return [SdkOrder(**body), body]


# -- mapping -----------------------------------------------------------------------------------


@pytest.mark.parametrize("form", [0, 1])
def test_an_unfilled_notional_order_has_no_quantity_yet_and_does_not_crash(form: int) -> None:
    raw = both_forms(qty=None, notional="1000", status="new")[form]
    order = to_order(raw)
    assert order.qty == 0.0 and order.filled_qty == 0.0
    assert order.status is OrderStatus.NEW and order.filled_avg_price is None


@pytest.mark.parametrize("form", [0, 1])
def test_a_working_notional_order_is_sized_from_its_fills_so_far(form: int) -> None:
    raw = both_forms(
        qty=None,
        notional="1000",
        status="partially_filled",
        filled_qty="2.5",
        filled_avg_price="400",
    )[form]
    order = to_order(raw)
    assert order.qty == 2.5  # 1000 / 400
    assert order.status is OrderStatus.PARTIALLY_FILLED
    raw = both_forms(
        qty=None, notional="1000", status="accepted", filled_qty="1", filled_avg_price="300"
    )[form]
    assert to_order(raw).qty == 3.333333333  # notional ÷ price so far, floored to 9 places


@pytest.mark.parametrize("form", [0, 1])
def test_a_finished_notional_order_is_what_filled(form: int) -> None:
    raw = both_forms(
        qty=None,
        notional="1000",
        status="filled",
        filled_qty="2.219755826",
        filled_avg_price="450.5",
    )[form]
    order = to_order(raw)
    assert order.qty == order.filled_qty == 2.219755826
    assert order.status is OrderStatus.FILLED and order.filled_avg_price == 450.5
    cancelled = to_order(both_forms(qty=None, notional="1000", status="canceled")[form])
    assert cancelled.qty == 0.0 and cancelled.status is OrderStatus.CANCELLED


@pytest.mark.parametrize("price", ["0", 0, "0.0", None, ""])
def test_a_zero_average_price_means_no_fill_price(price: object) -> None:
    raw = wire_order(filled_avg_price=price)
    assert to_order(raw).filled_avg_price is None
    assert filled_notional(raw) == 0
    if price != "":  # the SDK model refuses an empty string for a number
        assert to_order(SdkOrder(**raw)).filled_avg_price is None


@pytest.mark.parametrize("form", [0, 1])
def test_done_for_day_is_not_final(form: int) -> None:
    assert order_status("done_for_day").is_open
    unfilled = to_order(both_forms(status="done_for_day")[form])
    assert unfilled.status.is_open and unfilled.status is OrderStatus.ACCEPTED
    partial = to_order(
        both_forms(status="done_for_day", filled_qty="4", filled_avg_price="451")[form]
    )
    assert partial.status is OrderStatus.PARTIALLY_FILLED and partial.filled_qty == 4.0
    assert not order_status("expired").is_open  # the DAY order's real end


def test_the_tracker_keeps_watching_an_order_done_for_the_day() -> None:
    events: list[Event] = []
    tracker = OrderTracker(events.append, lambda: NOW, poll_after=0.0)
    tracker.observe(SdkOrder(**wire_order(status="accepted")))
    partial = wire_order(status="done_for_day", filled_qty="4", filled_avg_price="451")
    tracker.observe(SdkOrder(**partial))
    fills = [e for e in events if isinstance(e, OrderFilled)]
    assert [f.fill.qty for f in fills] == [4.0] and fills[0].fill.price == 451.0
    assert not any(isinstance(e, OrderUpdated) for e in events)  # not reported as finished
    assert tracker.open_ids() == ["tw-entry-1"] and tracker.due_for_poll() == ["tw-entry-1"]
    tracker.observe(SdkOrder(**{**partial, "status": "done_for_day"}))  # a repeat: nothing new
    assert len(events) == 1
    tracker.observe(SdkOrder(**{**partial, "status": "expired"}))  # the next close ends it
    ended = [e for e in events if isinstance(e, OrderUpdated)]
    assert [e.order.status for e in ended] == [OrderStatus.EXPIRED]
    assert ended[0].order.filled_avg_price == 451.0 and tracker.open_ids() == []


def test_asset_and_account_configuration_are_read_from_sdk_models() -> None:
    asset = Asset.model_validate(  # as GET /v2/assets/BRK.A answers (the wire says "class")
        {
            "id": "b0b6dd9d-8b9b-48a9-ba46-b9d54906e415",
            "class": "us_equity",
            "exchange": "NYSE",
            "symbol": "BRK.A",
            "name": "Berkshire Hathaway Inc. Class A",
            "status": "active",
            "tradable": True,
            "marginable": True,
            "shortable": True,
            "easy_to_borrow": True,
            "fractionable": False,
        }
    )
    info = to_asset(asset)
    assert info.tradable and not info.fractionable and info.symbol == "BRK.A"
    configuration = AccountConfiguration.model_validate(  # GET /v2/account/configurations
        {
            "dtbp_check": "entry",
            "fractional_trading": False,
            "max_margin_multiplier": "1",
            "no_shorting": True,
            "pdt_check": "entry",
            "suspend_trade": False,
            "trade_confirm_email": "all",
            "ptp_no_exception_entry": False,
        }
    )
    assert fractional_trading(configuration) is False
    assert fractional_trading({"no_shorting": True}) is None  # not said: the asset decides


# -- the broker and the sandbox ----------------------------------------------------------------


async def test_the_broker_reads_fractionable_and_the_account_switch(
    make_sandbox: Callable[..., SandboxThread],
) -> None:
    sandbox = make_sandbox(bar_interval=0, non_fractionable=("AAPL",), fractional_trading=False)
    broker = make_broker(sandbox, trade_stream=False)
    try:
        assert (await broker.check_symbol("SPY")).fractionable
        assert not (await broker.check_symbol("AAPL")).fractionable
        assert await broker.fractional_trading() is False
    finally:
        await broker.close()


# -- end to end through live_wiring ------------------------------------------------------------


async def _trade_until_fills(
    sandbox: SandboxThread, tmp_path: Path, fills: int = 1
) -> tuple[bool, list[Event]]:
    options = LiveOptions(
        endpoints=sandbox_endpoints(sandbox), timeout=2.0, warmup_bars=20, policy=FAST_RETRIES
    )
    session = await build_live_session(
        quick_config(), Mode.PAPER, credentials(), tmp_path, options=options
    )
    engine = session.engine
    seen: list[Event] = []
    engine.bus.add_sink(seen.append)
    try:
        allowed = engine.allow_fractional

        async def stop_after_fills() -> None:
            try:
                await eventually(
                    lambda: sum(isinstance(e, OrderFilled) for e in seen) >= fills, timeout=20.0
                )
            finally:  # no fill in time: stop anyway, and the assertion ends the test
                await engine.stop("test done")

        stopper = asyncio.create_task(stop_after_fills())
        assert await run_headless(engine, session.feed, out=io.StringIO()) == 0
        await stopper
        await eventually(lambda: engine.state.in_flight == 0, what="orders to settle")
    finally:
        await session.aclose()
    return allowed, _journal(tmp_path)


def _journal(data_dir: Path) -> list[Event]:
    from tapewatch.engine.root.live import journal_path
    from tapewatch.engine.storage.journal import Journal

    with Journal(journal_path(data_dir, Mode.PAPER)) as journal:
        return [event for _, event in journal.events()]


def _entries(events: list[Event]) -> list[float]:
    return [e.fill.qty for e in events if isinstance(e, OrderFilled) and e.fill.side.value == "buy"]


def _notices(events: list[Event]) -> list[str]:
    return [e.message for e in events if isinstance(e, Notice)]


async def test_a_non_fractionable_symbol_is_entered_in_whole_shares(
    make_sandbox: Callable[..., SandboxThread], tmp_path: Path
) -> None:
    sandbox = make_sandbox(bar_interval=0.05, fill_delay=0.01, non_fractionable=("SPY",))
    allowed, journal = await _trade_until_fills(sandbox, tmp_path)
    assert allowed is False
    entries = _entries(journal)
    assert entries and all(qty == int(qty) and qty > 0 for qty in entries)
    assert "SPY is not fractionable on Alpaca: entries are sized in whole shares" in _notices(
        journal
    )
    rejected = [
        e for e in journal if isinstance(e, OrderUpdated) and e.order.status.value == "rejected"
    ]
    assert rejected == []  # the sandbox refuses fractions here: none was sent


async def test_an_account_without_fractional_trading_enters_whole_shares(
    make_sandbox: Callable[..., SandboxThread], tmp_path: Path
) -> None:
    sandbox = make_sandbox(bar_interval=0.05, fill_delay=0.01, fractional_trading=False)
    allowed, journal = await _trade_until_fills(sandbox, tmp_path)
    assert allowed is False
    entries = _entries(journal)
    assert entries and all(qty == int(qty) for qty in entries)
    assert any("cannot trade fractional shares" in text for text in _notices(journal))


async def test_a_fractionable_symbol_keeps_fractional_entries(
    make_sandbox: Callable[..., SandboxThread], tmp_path: Path
) -> None:
    sandbox = make_sandbox(bar_interval=0.05, fill_delay=0.01)
    allowed, journal = await _trade_until_fills(sandbox, tmp_path)
    assert allowed is True
    entries = _entries(journal)
    assert entries and any(qty != int(qty) for qty in entries)  # 5% of equity at ~450 a share
    assert not any("whole shares" in text for text in _notices(journal))
