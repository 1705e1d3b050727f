"""SimBroker passes the broker conformance contract (the same one AlpacaBroker must pass)."""

from __future__ import annotations

import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tapewatch.engine.adapters.sim.broker import SimBroker
from tapewatch.engine.core.clock import SimClock
from tapewatch.engine.model.events import Event
from tapewatch.engine.model.types import Bar
from tapewatch.engine.settings.config import ExecutionConfig

try:
    from tests.conformance.broker_contract import CONTRACT, BrokerHarness, Check
except ModuleNotFoundError:  # bare `pytest` does not put the project root on sys.path
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
    from tests.conformance.broker_contract import CONTRACT, BrokerHarness, Check

START = datetime(2024, 3, 4, 14, 30, tzinfo=UTC)
STEP = timedelta(minutes=5)


class SimHarness:
    """Moves the simulated market one flat bar at a time; orders fill only on the next bar."""

    fills_immediately = False

    def __init__(self, *, starting_cash: float = 100_000.0, symbol: str = "SPY") -> None:
        self.symbol = symbol
        self.clock = SimClock(START)
        self.broker = SimBroker(starting_cash, ExecutionConfig(), clock=self.clock)
        self.events: list[Event] = []
        self.broker.set_listener(self.events.append)
        self._price: float | None = None
        self._bar_ts = START

    async def set_price(self, price: float) -> None:
        self._price = price
        await self._deliver_bar()

    async def settle(self) -> None:
        await self._deliver_bar()

    async def _deliver_bar(self) -> None:
        assert self._price is not None, "call set_price before settle"
        price = self._price
        bar = Bar(self.symbol, self._bar_ts, price, price, price, price, 1_000.0)
        self._bar_ts += STEP
        self.clock.advance_to(self._bar_ts)  # the bar is delivered when it closes
        await self.broker.on_bar(bar)


@pytest.fixture
def harness() -> BrokerHarness:
    return SimHarness()


def test_contract_covers_the_promised_behaviours() -> None:
    names = {check.__name__ for check in CONTRACT}
    assert len(names) == len(CONTRACT) >= 9
    for word in ("buy", "flat", "more_than_held", "zero", "duplicate", "unknown", "cancel"):
        assert any(word in name for name in names), word
    for word in ("equity", "fractional"):
        assert any(word in name for name in names), word


@pytest.mark.parametrize("check", CONTRACT, ids=lambda c: c.__name__)
async def test_sim_broker_meets_the_contract(check: Check, harness: BrokerHarness) -> None:
    await check(harness)
