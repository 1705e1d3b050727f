"""AlpacaBroker, through the real alpaca-py SDK against the local sandbox, meets the broker
contract that SimBroker meets (tests/conformance/broker_contract.py)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime

import pytest

from tapewatch.engine.adapters.alpaca.broker import AlpacaBroker
from tapewatch.engine.model.events import Event
from tapewatch.engine.model.types import Bar
from tapewatch.sandbox import SandboxThread
from tests.alpaca.adapter_helpers import eventually, in_thread, make_broker
from tests.conformance.broker_contract import CONTRACT, BrokerHarness, Check

SYMBOL = "SPY"


class AlpacaHarness:
    """The sandbox's market stands still (no ticker), so a set price is the fill price; orders
    fill a moment after they are acknowledged and the fills arrive over trade_updates."""

    fills_immediately = True

    def __init__(self, sandbox: SandboxThread, broker: AlpacaBroker) -> None:
        self.sandbox = sandbox
        self.broker = broker
        self.symbol = SYMBOL
        self.events: list[Event] = []
        broker.set_listener(self.events.append)

    async def set_price(self, price: float) -> None:
        await in_thread(lambda: self.sandbox.apply_faults(set_price={self.symbol: price}))
        now = datetime.now(UTC).replace(second=0, microsecond=0)
        await self.broker.on_bar(Bar(self.symbol, now, price, price, price, price, 100.0))

    async def settle(self) -> None:
        """Wait until the sandbox has no open order and every fill has reached us."""
        deadline = time.monotonic() + 5.0
        while True:
            state = await in_thread(self.sandbox.snapshot)
            if state["account"]["open_orders"] == 0:
                break
            assert time.monotonic() < deadline, "orders never settled"
            await asyncio.sleep(0.005)
        await eventually(lambda: not self.broker._tracker.open_ids(), what="fills to arrive")


@pytest.fixture
async def harness(make_sandbox: Callable[..., SandboxThread]) -> AsyncIterator[BrokerHarness]:
    sandbox = make_sandbox(bar_interval=0, fill_delay=0.01)
    broker = make_broker(sandbox)
    await broker.start()
    await eventually(broker.websocket_connected, what="trade_updates to connect")
    try:
        yield AlpacaHarness(sandbox, broker)
    finally:
        await broker.close()


@pytest.mark.parametrize("check", CONTRACT, ids=lambda c: c.__name__)
async def test_alpaca_broker_meets_the_contract(check: Check, harness: BrokerHarness) -> None:
    await check(harness)
