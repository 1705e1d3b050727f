"""The rate-limit breaker's three tiers: backoff on 429 (tier 1), a warning at 80% of the
minute's budget (tier 2), no new entries at 95% until the budget recovers (tier 3); first with an
injected budget, then through the real SDK against the sandbox with a tiny limit and an injected
time source, and finally wired into a paper session."""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from tapewatch.console.panes.breakers import _value
from tapewatch.engine.adapters.alpaca.broker import AlpacaBroker
from tapewatch.engine.adapters.alpaca.errors import AlpacaApiError
from tapewatch.engine.adapters.alpaca.rate import RequestBudget
from tapewatch.engine.adapters.alpaca.rest import RestCaller, RetryPolicy
from tapewatch.engine.model.events import BreakerChanged, Event, Notice, TradingStateChanged
from tapewatch.engine.model.types import Intent, Mode, OrderRequest, OrderStatus, Side, TradingState
from tapewatch.engine.risk.gate import RiskGate
from tapewatch.engine.risk.ratelimit import RateLimitBreaker
from tapewatch.engine.root.live import LiveOptions, build_live_session, journal_path
from tapewatch.engine.settings.config import EngineConfig, RiskConfig, StrategyConfig
from tapewatch.engine.settings.credentials import Credentials
from tapewatch.engine.storage.journal import Journal
from tapewatch.sandbox import SandboxThread
from tests.alpaca.adapter_helpers import eventually, in_thread, make_broker, sandbox_endpoints
from tests.alpaca.conftest import KEY, SECRET, FakeTime, sandbox_config, trading_client

T0 = datetime(2024, 3, 5, 15, 0, tzinfo=UTC)


class Ratio:
    """An injected budget: the used fraction the test sets."""

    def __init__(self, value: float = 0.0) -> None:
        self.value = value

    def __call__(self) -> float:
        return self.value


class Sleeps(list[float]):
    """Records the backoff waits instead of sleeping them."""

    async def __call__(self, seconds: float) -> None:
        self.append(seconds)


def request(intent: Intent, side: Side = Side.BUY, qty: float = 1.0, cid: str = "") -> OrderRequest:
    return OrderRequest(cid or f"t-{intent.value}-{side.value}", "SPY", side, qty, intent)


def gate_with(breaker: RateLimitBreaker) -> RiskGate:
    """The rate-limit breaker beside a drawdown breaker that halts (the severest state)."""
    gate = RiskGate(RiskConfig(drawdown_action="halt"), 300, lambda _now: True)
    gate.add(breaker)
    return gate


# -- tiers 2 and 3 with an injected budget ----------------------------------------------------


def test_tiers_warn_once_per_crossing_block_at_95_and_clear_on_recovery() -> None:
    ratio = Ratio(0.5)
    breaker = RateLimitBreaker(ratio, limit=200)
    assert (breaker.tier, breaker.tripped, breaker.poll(T0)) == (1, False, [])

    ratio.value = 0.8
    events = breaker.poll(T0)
    assert breaker.tier == 2 and not breaker.tripped
    assert [type(e) for e in events] == [Notice]
    assert isinstance(events[0], Notice) and events[0].level == "warning"
    assert "160/200 req/min (80%)" in events[0].message
    assert breaker.poll(T0 + timedelta(seconds=1)) == []  # once per crossing
    status = breaker.status(T0)
    assert status.warning and not status.tripped

    ratio.value = 0.95
    t1 = T0 + timedelta(seconds=2)
    [changed] = breaker.poll(t1)
    assert isinstance(changed, BreakerChanged)
    assert (changed.name, changed.tripped, changed.state, changed.tripped_at) == (
        "ratelimit",
        True,
        TradingState.REDUCING,
        t1,
    )
    status = breaker.status(t1)
    assert status.tripped and status.warning and status.tripped_at == t1
    assert (status.value, status.threshold, status.unit) == (190.0, 200.0, "req/min")
    assert breaker.tier == 3 and "190/200 req/min" in breaker.reason

    ratio.value = 0.9  # below 95%: entries allowed again, the warning still stands
    [cleared] = breaker.poll(t1)
    assert isinstance(cleared, BreakerChanged) and not cleared.tripped
    assert cleared.tripped_at is None and "recovered" in cleared.reason
    assert breaker.tier == 2 and breaker.reason == "" and breaker.status(t1).tripped_at is None

    ratio.value = 0.3
    [back] = breaker.poll(t1)
    assert isinstance(back, Notice) and back.level == "info"
    ratio.value = 0.85
    assert [type(e) for e in breaker.poll(t1)] == [Notice]  # re-armed: a new crossing


def test_hovering_around_the_warning_level_warns_once() -> None:
    ratio = Ratio(0.8)
    breaker = RateLimitBreaker(ratio)
    assert len(breaker.poll(T0)) == 1
    for value in (0.79, 0.75, 0.81, 0.71, 0.8):
        ratio.value = value
        assert breaker.poll(T0) == []


def test_the_gate_reads_it_live_entries_denied_exits_and_flatten_allowed() -> None:
    ratio = Ratio(0.2)
    breaker = RateLimitBreaker(ratio, limit=20)
    gate = gate_with(breaker)
    entry = request(Intent.ENTRY)
    assert gate.check(entry, 0.0).allowed and gate.state is TradingState.ACTIVE

    ratio.value = 0.95  # no poll needed: the next check sees it
    denied = gate.check(entry, 0.0)
    assert not denied.allowed and denied.breaker == "ratelimit"
    assert "rate-limit budget 19/20 req/min (95%)" in denied.reason
    assert "no new entries" in denied.reason
    assert gate.state is TradingState.REDUCING
    assert gate.check(request(Intent.EXIT, Side.SELL, 5.0), 5.0).allowed
    assert gate.check(request(Intent.FLATTEN, Side.SELL, 5.0), 5.0).allowed
    assert not gate.check(request(Intent.EXIT, Side.SELL, 6.0), 5.0).allowed  # would go short

    ratio.value = 0.94
    assert gate.check(entry, 0.0).allowed and gate.state is TradingState.ACTIVE


def test_not_a_latch_reset_and_restore_change_nothing_and_a_halt_still_wins() -> None:
    ratio = Ratio(0.99)
    breaker = RateLimitBreaker(ratio)
    gate = gate_with(breaker)
    assert gate.reset(T0, "ratelimit")[0].tripped  # the budget is still spent
    ratio.value = 0.0
    gate.restore([BreakerChanged(T0, "ratelimit", True, TradingState.REDUCING, "old", T0)])
    assert not breaker.tripped and gate.state is TradingState.ACTIVE
    with pytest.raises(AttributeError):
        breaker.tripped = True
    ratio.value = 1.0
    gate.on_equity(100_000.0, T0)
    gate.start_day("d", 100_000.0)
    gate.on_equity(90_000.0, T0)  # drawdown: HALTED beats REDUCING
    decision = gate.check(request(Intent.EXIT, Side.SELL), 1.0)
    assert gate.state is TradingState.HALTED and decision.breaker == "drawdown"


def test_bad_levels_are_refused_and_a_nan_budget_fails_closed() -> None:
    with pytest.raises(ValueError):
        RateLimitBreaker(Ratio(), warn=0.96, block=0.95)
    with pytest.raises(ValueError):
        RateLimitBreaker(Ratio(), limit=0)
    assert RateLimitBreaker(Ratio(float("nan"))).tripped
    assert RateLimitBreaker(Ratio(7.0)).status(T0).value == 200.0  # clamped


def test_the_pane_shows_used_limit_and_tier() -> None:
    ratio = Ratio(0.85)
    breaker = RateLimitBreaker(ratio, limit=200)
    view: Any = SimpleNamespace(palette=None)  # the req/min row needs no colours
    assert _value(breaker.status(T0), view, 60).plain.endswith("170/200 req/min · tier 2")
    ratio.value = 0.1
    assert _value(breaker.status(T0), view, 60).plain.endswith("20/200 req/min · tier 1")
    ratio.value = 1.0
    assert _value(breaker.status(T0), view, 60).plain.endswith("200/200 req/min · tier 3")


# -- tier 1: tenacity's backoff, with an injected sleep -----------------------------------------


class FakeClient:
    """Stands in for an SDK client: ``harden`` sets attributes on it, nothing more."""


def failing(times: int, status: int = 429) -> Any:
    calls = [0]

    def fn(_client: Any) -> str:
        calls[0] += 1
        if calls[0] <= times:
            raise AlpacaApiError("limited", status=status, code=None, api_message="")
        return "ok"

    fn.calls = calls  # type: ignore[attr-defined]
    return fn


def rest(policy: RetryPolicy, sleeps: Sleeps, seed: int = 11) -> RestCaller[Any]:
    return RestCaller(
        "test",
        FakeClient,
        budget=RequestBudget(),
        policy=policy,
        sleep=sleeps,
        rng=random.Random(seed),
    )


async def test_backoff_on_429_is_1_2_4_8_with_jitter_capped_at_60() -> None:
    sleeps = Sleeps()
    caller = rest(RetryPolicy(rate_limit_attempts=10), sleeps)
    fn = failing(9)
    try:
        assert await caller.call("GET x", fn) == "ok"
    finally:
        caller.close()
    assert fn.calls[0] == 10 and len(sleeps) == 9
    for n, wait in enumerate(sleeps[:6], start=1):
        base = 2.0 ** (n - 1)  # 1, 2, 4, 8, 16, 32
        assert base <= wait <= 1.25 * base
    assert sleeps[6:] == [60.0, 60.0, 60.0]  # 64, 128, 256 capped
    fractions = {round(w / 2.0**n - 1, 6) for n, w in enumerate(sleeps[:6])}
    assert len(fractions) == 6  # jittered: no two waits share a multiple
    assert caller.errors == {"429": 9}


async def test_the_default_policy_gives_up_after_five_waits_and_never_retries_an_order() -> None:
    sleeps = Sleeps()
    caller = rest(RetryPolicy(), sleeps)
    try:
        with pytest.raises(AlpacaApiError) as raised:
            await caller.call("GET x", failing(99))
        assert raised.value.status == 429
        assert len(sleeps) == 5 and sleeps[-1] <= 16 * 1.25
        sleeps.clear()
        with pytest.raises(AlpacaApiError):
            await caller.once("POST /v2/orders", failing(1))
        with pytest.raises(AlpacaApiError):
            await caller.call("GET y", failing(1, status=403))
        assert sleeps == []
    finally:
        caller.close()


# -- against the sandbox: a 20 requests/minute key and an injected clock ------------------------


@pytest.fixture
def fake_time() -> FakeTime:
    return FakeTime()


@pytest.fixture
def small_sandbox(fake_time: FakeTime) -> Iterator[SandboxThread]:
    box = SandboxThread(
        sandbox_config(bar_interval=0, fill_delay=0.0, rate_limit=20, time_source=fake_time)
    ).start()
    yield box
    box.stop()


def broker_on(sandbox: SandboxThread, clock: FakeTime, sleeps: Sleeps) -> AlpacaBroker:
    broker = make_broker(
        sandbox,
        policy=RetryPolicy(),
        sleep=sleeps,
        rate_limit_per_minute=20,
        trade_stream=False,
    )
    # AlpacaBroker takes no time source for its budget; give it the test's before any request.
    budget = RequestBudget(20, monotonic=clock)
    broker.budget = budget
    broker._rest.budget = budget
    return broker


async def outside_requests(sandbox: SandboxThread, count: int) -> None:
    """Another program on the same key: only the server's headers can tell us about these."""
    client = trading_client(sandbox)

    def spend() -> None:
        for _ in range(count):
            client.get_clock()

    await in_thread(spend)


async def test_a_429_storm_backs_off_then_the_tiers_follow_the_server_budget(
    small_sandbox: SandboxThread, fake_time: FakeTime
) -> None:
    sandbox = small_sandbox
    sleeps = Sleeps()
    broker = broker_on(sandbox, fake_time, sleeps)
    breaker = RateLimitBreaker(broker.rate_limit_used_ratio, limit=20)
    gate = gate_with(breaker)
    entry = request(Intent.ENTRY, cid="rl-entry-2")
    try:
        # tier 1: three 429s, backed off 1, 2, 4 s (+ jitter), then the answer
        sandbox.apply_faults(rest_error={"status": 429, "count": 3, "path": "/v2/clock"})
        reading = await broker.get_clock()
        assert reading.is_open
        assert len(sleeps) == 3
        for n, wait in enumerate(sleeps):
            assert 2**n <= wait <= 1.25 * 2**n
        assert broker.api_error_counts() == {"429": 3}
        assert broker.budget.server_view() == (20, 16)  # the 429s counted at the server too
        assert breaker.tier == 1 and breaker.poll(T0) == []

        bought = await broker.submit_order(request(Intent.ENTRY, qty=1.0, cid="rl-entry-1"))
        assert bought.status is not OrderStatus.REJECTED  # 5 used

        # tier 2: other programs spend the key's budget; X-RateLimit-Remaining tells us
        await outside_requests(sandbox, 10)  # 15 used at the server, 5 by us
        assert breaker.used_ratio() == pytest.approx(5 / 20)
        await broker.get_clock()  # 16 used: the headers say 4 remain
        assert broker.budget.server_view() == (20, 4)
        assert broker.rate_limit_used_ratio() == pytest.approx(0.8)
        [warning] = breaker.poll(T0)
        assert isinstance(warning, Notice) and "16/20 req/min (80%)" in warning.message
        assert breaker.status(T0).warning and gate.check(entry, 0.0).allowed

        # tier 3: 19 of 20 used; entries denied, the exit goes through
        await outside_requests(sandbox, 2)
        await broker.get_clock()
        assert broker.rate_limit_used_ratio() == pytest.approx(0.95)
        denied = gate.check(entry, 1.0)
        assert not denied.allowed and denied.breaker == "ratelimit"
        assert "19/20 req/min" in denied.reason
        [tripped] = breaker.poll(T0)
        assert isinstance(tripped, BreakerChanged) and tripped.tripped
        exit_order = request(Intent.EXIT, Side.SELL, qty=1.0, cid="rl-exit-1")
        assert gate.check(exit_order, 1.0).allowed
        sold = await broker.submit_order(exit_order)  # the 20th request of the minute
        assert sold.status is not OrderStatus.REJECTED
        assert len(sleeps) == 3  # no 429 on the way

        # recovery: a minute later the window is empty and entries are allowed again
        fake_time.advance(61)
        assert gate.check(entry, 0.0).allowed and gate.state is TradingState.ACTIVE
        kinds = [type(e) for e in breaker.poll(T0)]
        assert kinds == [Notice, BreakerChanged] and not breaker.tripped
        await broker.get_clock()
        assert broker.budget.server_view() == (20, 19)
        assert broker.rate_limit_used_ratio() == pytest.approx(1 / 20)
    finally:
        await broker.close()
    stats: Any = sandbox.snapshot()["stats"]
    assert stats["injected_429"] == 3 and stats.get("rate_limited", 0) == 0


# -- wired into a paper session ----------------------------------------------------------------


def quick_config() -> EngineConfig:
    return EngineConfig(
        strategy=StrategyConfig(symbol="SPY", timeframe="5Min", rsi_period=2, sma_period=3),
        risk=RiskConfig(rate_limit_per_minute=50),
    ).validate()


async def test_a_paper_session_publishes_the_breaker_and_changes_trading_state(
    tmp_path: Path, fake_time: FakeTime
) -> None:
    sandbox = SandboxThread(
        sandbox_config(bar_interval=0, fill_delay=0.0, rate_limit=50, time_source=fake_time)
    ).start()
    try:
        options = LiveOptions(
            endpoints=sandbox_endpoints(sandbox),
            timeout=2.0,
            warmup_bars=5,
            rate_check_every=0.01,
        )
        creds = Credentials(KEY, SECRET, "paper", "environment")
        session = await build_live_session(
            quick_config(), Mode.PAPER, creds, tmp_path, options=options
        )
        engine = session.engine
        seen: list[Event] = []
        engine.bus.add_sink(seen.append)
        try:
            breaker = session.rate_limit
            assert breaker is not None and engine.gate.breaker("ratelimit") is breaker
            assert breaker.limit == 50 and session.broker.book.refresh_after == 60.0
            server = session.broker.budget.server_view()
            assert server is not None and server[0] == 50
            await outside_requests(sandbox, server[1] - 3)
            await session.broker.get_clock()  # 48 of 50 used: 96%
            await eventually(lambda: engine.state.trading_state is TradingState.REDUCING)
            changed = [e for e in seen if isinstance(e, BreakerChanged)]
            assert [(e.name, e.tripped) for e in changed] == [("ratelimit", True)]
            assert any(isinstance(e, Notice) and "rate limit" in e.message for e in seen)
            assert any(isinstance(e, TradingStateChanged) for e in seen)

            fake_time.advance(61)  # the server's minute rolls over
            await session.broker.get_clock()
            await eventually(lambda: engine.state.trading_state is TradingState.ACTIVE)
            changed = [e for e in seen if isinstance(e, BreakerChanged)]
            assert [(e.name, e.tripped) for e in changed] == [
                ("ratelimit", True),
                ("ratelimit", False),
            ]
        finally:
            await engine.stop()
            await session.aclose()
        with Journal(journal_path(tmp_path, Mode.PAPER)) as journal:
            records = [e for _, e in journal.events() if isinstance(e, BreakerChanged)]
        assert [(e.name, e.tripped) for e in records] == [("ratelimit", True), ("ratelimit", False)]
    finally:
        sandbox.stop()
