"""In-process alerts: the rule file's five conditions, with hysteresis so they do not flap."""

from __future__ import annotations

from datetime import datetime

import pytest

from tapewatch.engine.observability.alerts import RULES, AlertEvaluator, EngineAlerts, quantile
from tests.helpers import make_engine


def test_the_five_conditions_match_the_rule_file() -> None:
    thresholds = {rule.name: rule.raise_above for rule in RULES}
    assert thresholds == {
        "OrderLatencyHigh": 0.2,
        "ApiErrorRateHigh": 0.01,
        "DrawdownHigh": 0.03,
        "RateLimitBudgetHigh": 0.8,
        "WebsocketDisconnected": 30.0,
    }
    for rule in RULES:
        assert rule.clear_below < rule.raise_above


def test_an_alert_raises_above_and_clears_only_well_below_for_a_while() -> None:
    ev = AlertEvaluator()
    assert ev.update({"DrawdownHigh": 0.02}, 0.0).active == []
    changes = ev.update({"DrawdownHigh": 0.031}, 1.0)
    assert [a.name for a in changes.raised] == ["DrawdownHigh"]
    assert changes.active[0].message.startswith("drawdown 3.1%")
    assert changes.active[0].severity == "error"
    # Hovering around the threshold does not flap: under 3% but above the 2.5% clear level.
    for t, v in ((2.0, 0.029), (3.0, 0.031), (4.0, 0.026), (100.0, 0.027)):
        changes = ev.update({"DrawdownHigh": v}, t)
        assert [a.name for a in changes.active] == ["DrawdownHigh"], (t, v)
        assert changes.raised == [] and changes.cleared == []
    # Below the clear level, but not for long enough.
    assert ev.update({"DrawdownHigh": 0.01}, 101.0).cleared == []
    assert ev.update({"DrawdownHigh": 0.026}, 120.0).active  # back above: the wait restarts
    assert ev.update({"DrawdownHigh": 0.01}, 121.0).cleared == []
    assert ev.update({"DrawdownHigh": 0.01}, 140.0).cleared == []
    changes = ev.update({"DrawdownHigh": 0.01}, 151.0)
    assert changes.cleared == ["DrawdownHigh"] and changes.active == []
    # And it can raise again afterwards.
    assert ev.update({"DrawdownHigh": 0.05}, 152.0).raised[0].since == 152.0


def test_a_rule_with_a_hold_time_raises_only_once_it_has_held() -> None:
    ev = AlertEvaluator()
    # Websocket: the value is seconds disconnected; raises above 30.
    assert ev.update({"WebsocketDisconnected": 29.0}, 29.0).active == []
    raised = ev.update({"WebsocketDisconnected": 31.0}, 31.0).raised
    assert [a.name for a in raised] == ["WebsocketDisconnected"]
    assert ev.update({"WebsocketDisconnected": 0.0}, 32.0).active  # reconnected: wait 5 s
    assert ev.update({"WebsocketDisconnected": 0.0}, 37.0).cleared == ["WebsocketDisconnected"]


def test_no_data_counts_as_clear() -> None:
    ev = AlertEvaluator()
    ev.update({"OrderLatencyHigh": 0.5}, 0.0)
    assert ev.update({"OrderLatencyHigh": None}, 10.0).active
    assert ev.update({}, 40.0).cleared == ["OrderLatencyHigh"]


def test_quantile_matches_prometheus_histogram_quantile() -> None:
    bounds = (0.1, 0.2, 0.5)
    assert quantile(0.99, bounds, (1000, 1000, 1050, 1050)) == pytest.approx(0.437)
    assert quantile(0.5, bounds, (10, 20, 20, 20)) == pytest.approx(0.1)
    assert quantile(0.99, bounds, (0, 0, 0, 10)) == 0.5  # all beyond the last bound
    assert quantile(0.99, bounds, (0, 0, 0, 0)) is None


class FakeBroker:
    def __init__(self) -> None:
        self.errors = 0
        self.requests = 0
        self.connected = True
        self.used = 0.1

    def api_error_counts(self) -> dict[str, int]:
        return {"500": self.errors}

    def api_request_count(self) -> int:
        return self.requests

    def websocket_connected(self) -> bool:
        return self.connected

    def websocket_last_message_age(self, now: datetime) -> float:
        return 0.0

    def rate_limit_used_ratio(self) -> float:
        return self.used


def test_engine_alerts_read_rates_over_a_window_and_websocket_time() -> None:
    engine, _, _ = make_engine()
    broker = FakeBroker()
    alerts = EngineAlerts(engine, provider=broker, window=60.0)
    assert alerts.evaluate(0.0) == []
    # 5 errors in 100 requests within the window: 5% > 1%.
    broker.requests, broker.errors = 100, 5
    broker.used = 0.9
    broker.connected = False
    names = {a.name for a in alerts.evaluate(10.0)}
    assert names == {"ApiErrorRateHigh", "RateLimitBudgetHigh"}
    names = {a.name for a in alerts.evaluate(41.0)}  # disconnected since t=10
    assert "WebsocketDisconnected" in names
    # Then a long healthy stretch: errors stop, so the windowed rate falls to 0.
    broker.connected, broker.used = True, 0.1
    for t in range(42, 200, 5):
        broker.requests += 50
        alerts.evaluate(float(t))
    assert alerts.evaluate(200.0) == []
    assert alerts.values(201.0)["ApiErrorRateHigh"] == 0.0


def test_order_latency_alert_uses_the_engines_histogram() -> None:
    engine, _, _ = make_engine()
    alerts = EngineAlerts(engine, window=60.0)
    for _ in range(95):
        engine.latency.record("submit_to_ack", 0.01)
    for _ in range(5):
        engine.latency.record("submit_to_ack", 0.4)
    assert [a.name for a in alerts.evaluate(0.0)] == ["OrderLatencyHigh"]
    values = alerts.values(1.0)
    assert values["WebsocketDisconnected"] is None  # the simulated broker has no websocket
    assert values["ApiErrorRateHigh"] is None  # no requests: nothing to judge
    assert values["DrawdownHigh"] == 0.0
