"""Shared by the reliability tests and ``bench/soak.py``: a paper session on a sandbox, the
broker-side and journal-side audits, and the seeded soak loop with its one-line summary.

The invariants every case checks are computed here, once, so the fault suite, the crash
tests and the soak agree on what "no duplicate order" and "no record lost" mean:

* a duplicate is a second order at the broker for the same decision (strategy, symbol, bar,
  intent), which the client order id encodes (read from the sandbox's own order book, so an
  order the engine never heard back about still counts);
* a lost record is a broker order with no journaled intent, a filled broker order whose fill
  the journal never saw (and no later adoption of the broker's account), or a position the
  journal's rebuild disagrees with.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import random
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from tapewatch.engine.adapters.alpaca.endpoints import Endpoints
from tapewatch.engine.adapters.alpaca.rest import RetryPolicy
from tapewatch.engine.core.portfolio import rebuild
from tapewatch.engine.model.events import Event, OrderFilled, OrderIntended
from tapewatch.engine.model.types import Mode
from tapewatch.engine.root.live import LiveOptions, LiveSession, build_live_session, journal_path
from tapewatch.engine.settings.config import EngineConfig, RiskConfig, StrategyConfig
from tapewatch.engine.storage.journal import Journal
from tapewatch.sandbox import SandboxConfig, SandboxThread
from tests.alpaca.adapter_helpers import sandbox_endpoints
from tests.alpaca.adapter_helpers import sandbox_env as urls_env

KEY = "PKSOAKTEST"
SECRET = "soak-secret"
MONDAY_OPEN = datetime(2024, 3, 4, 14, 30, tzinfo=UTC)  # 09:30 New York, a full trading week
FAST_RETRIES = RetryPolicy(base=0.01, server_error_base=0.01, cap=0.05)


@dataclass(frozen=True)
class Keys:
    key_id: str = KEY
    secret: str = SECRET


def quick_config(symbol: str = "SPY") -> EngineConfig:
    """Trades every few bars: tiny look-backs and thresholds that almost always fire."""
    return EngineConfig(
        strategy=StrategyConfig(
            symbol=symbol,
            timeframe="5Min",
            rsi_period=2,
            sma_period=3,
            rsi_oversold=90,
            rsi_overbought=95,
            position_pct=0.05,
        ),
        # The sandbox runs market minutes in milliseconds: a bar processed a few real
        # milliseconds after the next minute arrived is already "late" in market time. The
        # late-bar rule has its own tests; here it must not depend on the machine's load.
        # Nobody attaches a console to these runs either, and 15 market minutes pass in a
        # second: the dead-man's switch has its own tests (tests/engine/test_unattended_pause.py).
        risk=RiskConfig(late_bar_seconds=86_400.0, unattended_pause_after="off"),
    ).validate()


def sandbox_config(**overrides: Any) -> SandboxConfig:
    settings: dict[str, Any] = {
        "start": MONDAY_OPEN,
        "bar_interval": 0.02,
        "fill_delay": 0.005,
        "page_size": 200,
        "symbols": ("SPY",),
        "always_open": (),
        "keys": None,
    }
    settings.update(overrides)
    return SandboxConfig(**settings)


def endpoints(sandbox: SandboxThread) -> Endpoints:
    return sandbox_endpoints(sandbox, Mode.PAPER)


def sandbox_env(sandbox: SandboxThread) -> dict[str, str]:
    return {
        **urls_env(sandbox),
        "APCA_API_KEY_ID": KEY,
        "APCA_API_SECRET_KEY": SECRET,
    }


@contextlib.contextmanager
def fast_retries() -> Iterator[None]:
    """Build sessions whose brokers back off in milliseconds, not seconds (tests only)."""
    import tapewatch.engine.root.live as wiring

    original = wiring.AlpacaBroker
    wiring.AlpacaBroker = functools.partial(original, policy=FAST_RETRIES)  # type: ignore[assignment,misc]
    try:
        yield
    finally:
        wiring.AlpacaBroker = original  # type: ignore[misc]


async def open_session(
    sandbox: SandboxThread,
    data_dir: Path,
    config: EngineConfig | None = None,
    **overrides: Any,
) -> LiveSession:
    settings: dict[str, Any] = {
        "endpoints": endpoints(sandbox),
        "timeout": 1.0,
        "warmup_bars": 20,
        "poll_after": 0.5,
        "grace_seconds": 0.5,
        "data_timeout": 2.0,
    }
    settings.update(overrides)
    with fast_retries():
        return await build_live_session(
            config or quick_config(), Mode.PAPER, Keys(), data_dir, options=LiveOptions(**settings)
        )


class Driver:
    """Runs ``engine.run(feed)`` as a task and records what happened to it and the loop."""

    def __init__(self, session: LiveSession) -> None:
        self.session = session
        self.engine = session.engine
        self.events: list[Event] = []
        self.loop_errors: list[str] = []
        self.engine.bus.add_sink(self.events.append)
        loop = asyncio.get_running_loop()
        loop.set_exception_handler(self._on_loop_error)
        self.task = loop.create_task(self.engine.run(session.feed))

    def _on_loop_error(self, _loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        self.loop_errors.append(str(context.get("exception") or context.get("message")))

    @property
    def bars(self) -> int:
        return sum(e.kind == "bar" for e in self.events)

    def count(self, kind: str) -> int:
        return sum(e.kind == kind for e in self.events)

    def failed(self) -> BaseException | None:
        if self.task.done() and not self.task.cancelled():
            return self.task.exception()
        return None

    async def wait(self, condition: Callable[[], bool], timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while not condition():
            error = self.failed()
            if error is not None:
                raise AssertionError(f"the engine died waiting for {what}: {error!r}")
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out waiting for {what}")
            await asyncio.sleep(0.01)

    async def more_bars(self, n: int = 1, timeout: float = 10.0) -> None:
        target = self.bars + n
        await self.wait(lambda: self.bars >= target, timeout, f"{n} more bar(s)")

    async def responsive(self, limit: float = 1.0) -> float:
        """Pause and resume (journaled operator commands); returns how long pause took."""
        started = time.perf_counter()
        await asyncio.wait_for(self.engine.pause("soak@test"), limit)
        took = time.perf_counter() - started
        await asyncio.wait_for(self.engine.resume("soak@test"), limit)
        return took

    async def finish(self, sandbox: SandboxThread, settle: float = 5.0) -> None:
        """Stop trading, let open orders fill, close everything."""
        await self.engine.stop("test done")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(self.task), 5.0)
        if not self.task.done():
            self.task.cancel()
        await asyncio.to_thread(sandbox.apply_faults, hold_fills=False, reject_auth=False)
        deadline = time.monotonic() + settle
        while open_orders(sandbox) and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
        await asyncio.sleep(0.1)  # the last trade_updates frames
        await self.session.aclose()
        asyncio.get_running_loop().set_exception_handler(None)


# -- the broker's side -------------------------------------------------------------------------


def broker_orders(sandbox: SandboxThread) -> list[dict[str, Any]]:
    """Every order the sandbox accepted: client id, status, side, filled quantity."""

    async def read(box: Any) -> list[dict[str, Any]]:
        return [
            {
                "client_order_id": o.client_order_id,
                "status": o.status,
                "side": o.side,
                "filled_qty": float(o.filled_qty),
                "filled_avg_price": float(o.filled_avg_price or 0.0),
            }
            for o in box.state.account.orders.values()
        ]

    return sandbox.call(read)


def open_orders(sandbox: SandboxThread) -> int:
    account: Any = sandbox.snapshot()["account"]
    return int(account["open_orders"])


def broker_positions(sandbox: SandboxThread) -> dict[str, float]:
    account: Any = sandbox.snapshot()["account"]
    held = {s: float(q) for s, q in account["positions"].items()}
    return {s: q for s, q in held.items() if abs(q) > 1e-9}


def duplicate_orders(orders: list[dict[str, Any]]) -> int:
    """Orders beyond the first for one decision (one client order id, by construction)."""
    counts = Counter(o["client_order_id"] for o in orders)
    return sum(n - 1 for n in counts.values())


# -- the journal's side ------------------------------------------------------------------------


def journal_events(data_dir: Path) -> list[Event]:
    with Journal(journal_path(data_dir, Mode.PAPER)) as journal:
        return [event for _, event in journal.events()]


def journal_positions(events: list[Event]) -> dict[str, float]:
    portfolio = rebuild(events)
    return {s: p.qty for s, p in portfolio.positions.items() if abs(p.qty) > 1e-9}


@dataclass
class Audit:
    orders: int
    duplicates: int
    lost: int
    broker: dict[str, float]
    journal: dict[str, float]
    problems: list[str] = field(default_factory=list)
    missing_fills: int = 0  # orders whose filled quantity the journal's fills do not add up to
    max_exposure: float = 0.0  # the largest exposure the sandbox saw, in entries


def max_exposure_ratio(sandbox: SandboxThread) -> float:
    account: Any = sandbox.snapshot()["account"]
    return float(account["max_exposure_ratio"])


def audit(sandbox: SandboxThread, data_dir: Path) -> Audit:
    """Compare the broker with the journal (after the session closed)."""
    orders = broker_orders(sandbox)
    events = journal_events(data_dir)
    intended = {e.request.client_order_id for e in events if isinstance(e, OrderIntended)}
    filled: dict[str, float] = {}
    for e in events:
        if isinstance(e, OrderFilled):
            filled[e.fill.client_order_id] = filled.get(e.fill.client_order_id, 0.0) + e.fill.qty
    problems: list[str] = []
    missing = 0
    for order in orders:
        cid = order["client_order_id"]
        if cid not in intended:
            problems.append(f"{cid}: at the broker, no intent in the journal")
        journaled = filled.get(cid, 0.0)
        if abs(order["filled_qty"] - journaled) > 1e-6:  # every fill journaled, adoption or not
            missing += 1
            problems.append(
                f"{cid}: {order['filled_qty']} filled at the broker, {journaled} in the journal"
            )
    held, ours = broker_positions(sandbox), journal_positions(events)
    for symbol in sorted(set(held) | set(ours)):
        if abs(held.get(symbol, 0.0) - ours.get(symbol, 0.0)) > 1e-6:
            problems.append(f"{symbol}: broker {held.get(symbol, 0.0)}, journal {ours.get(symbol)}")
    return Audit(
        len(orders),
        duplicate_orders(orders),
        len(problems),
        held,
        ours,
        problems,
        missing_fills=missing,
        max_exposure=max_exposure_ratio(sandbox),
    )


# -- the soak ----------------------------------------------------------------------------------

FaultStep = tuple[str, dict[str, Any], dict[str, Any]]  # name, switch on, switch off


def fault_menu(rng: random.Random) -> FaultStep:
    """One random fault: how to switch it on and back off."""
    kind = rng.choice(
        (
            "rest_error",
            "latency",
            "lost_order_response",
            "drop_data_stream",
            "mute_data_stream",
            "refuse_data_stream",
            "hold_fills",
            "reject_auth",
            "updated_bars",
            "market_closed",
            "partial_fills",
            "late_order_response",
        )
    )
    if kind == "rest_error":
        status = rng.choice((429, 500, 502, 503, 504))
        spec = {"status": status, "count": rng.randint(1, 3)}
        return f"rest_{status}", {"rest_error": spec}, {"clear_rest_errors": True}
    if kind == "latency":
        return "latency", {"latency_ms": rng.choice((50, 150, 400))}, {"latency_ms": 0}
    if kind == "lost_order_response":
        return kind, {"lose_order_responses": 1}, {"lose_order_responses": 0}
    if kind == "drop_data_stream":
        return kind, {"drop_data_stream": True}, {}
    if kind == "mute_data_stream":
        return kind, {"data_stream": "mute"}, {"data_stream": "normal"}
    if kind == "refuse_data_stream":
        return kind, {"data_stream": "refuse", "drop_data_stream": True}, {"data_stream": "normal"}
    if kind == "hold_fills":
        return kind, {"hold_fills": True}, {"hold_fills": False}
    if kind == "reject_auth":
        return kind, {"reject_auth": True}, {"reject_auth": False}
    if kind == "market_closed":  # a halt: orders queue until it reopens
        return kind, {"market_closed": True}, {"market_closed": False}
    if kind == "partial_fills":
        return kind, {"partial_fills": rng.choice((2, 3))}, {"partial_fills": 1}
    if kind == "late_order_response":  # the stream's fill beats the POST answer
        ms = rng.choice((100, 300))
        return kind, {"late_order_response_ms": ms}, {"late_order_response_ms": 0}
    return kind, {"updated_bars": True}, {"updated_bars": False}


@dataclass
class SoakResult:
    orders: int
    injected: int
    survived: int
    duplicates: int
    lost: int
    bars: int
    problems: list[str]
    max_exposure: float = 0.0
    missing_fills: int = 0

    def line(self) -> str:
        return (
            f"soak: orders sent {self.orders}, faults injected {self.injected}, "
            f"faults survived {self.survived}, largest exposure {self.max_exposure:.2f}x one "
            f"entry, duplicate orders {self.duplicates}, fills missing from the journal "
            f"{self.missing_fills}, journal records lost {self.lost}"
        )


async def soak(
    data_dir: Path,
    *,
    seed: int = 1,
    duration: float = 40.0,
    bar_interval: float = 0.01,
    market_minutes: int | None = 5 * 390,
) -> SoakResult:
    """Replay market minutes at ``bar_interval`` real seconds each, injecting a seeded random
    fault every so often, until ``market_minutes`` have streamed or ``duration`` has passed."""
    rng = random.Random(seed)
    config = sandbox_config(seed=seed, bar_interval=bar_interval, fill_delay=bar_interval * 3)
    sandbox = SandboxThread(config).start()
    injected = survived = 0
    try:
        session = await open_session(sandbox, data_dir)
        driver = Driver(session)
        started = time.monotonic()
        budget = (market_minutes * bar_interval * 1.5) if market_minutes else duration
        end = started + min(duration, budget)
        week = market_minutes // 5 if market_minutes else None
        while time.monotonic() < end and (week is None or driver.bars < week):
            await asyncio.sleep(rng.uniform(0.1, 0.4))
            _name, on, off = fault_menu(rng)
            await asyncio.to_thread(functools.partial(sandbox.apply_faults, **on))
            injected += 1
            await asyncio.sleep(rng.uniform(0.05, 0.3))
            if off:
                await asyncio.to_thread(functools.partial(sandbox.apply_faults, **off))
            try:
                await driver.more_bars(1, timeout=15.0)
                await driver.responsive()
            except (AssertionError, TimeoutError):
                continue  # not survived: counted by the difference
            if driver.failed() is None and not driver.loop_errors:
                survived += 1
        await driver.finish(sandbox)
        problems = [f"engine: {driver.failed()!r}"] if driver.failed() else []
        problems += [f"loop: {e}" for e in driver.loop_errors]
        checked = audit(sandbox, data_dir)
    finally:
        sandbox.stop()
    return SoakResult(
        orders=checked.orders,
        injected=injected,
        survived=survived,
        duplicates=checked.duplicates,
        lost=checked.lost,
        bars=driver.bars,
        problems=problems + checked.problems,
        max_exposure=checked.max_exposure,
        missing_fills=checked.missing_fills,
    )
