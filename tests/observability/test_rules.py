"""engine/observability/rules/tapewatch.rules.yml: valid Prometheus rules, the five conditions,
exported metrics only.

The YAML is always parsed and checked by hand, and every metric an expression names must be one a
live registry actually exports. promtool (Debian package ``prometheus``) then checks the file and
unit-tests each alert on synthetic series; without it that test skips naming the install command,
and CI (which installs it) fails on that skip (tests/services.py).
"""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any

import yaml

from tapewatch.engine.observability.metrics import EngineMetrics
from tests.helpers import make_engine
from tests.services import PROMTOOL, require

RULES = (
    Path(__file__).resolve().parents[2]
    / "engine"
    / "observability"
    / "rules"
    / "tapewatch.rules.yml"
)
ALERTS = {
    "TapewatchOrderLatencyHigh",
    "TapewatchApiErrorRateHigh",
    "TapewatchDrawdownHigh",
    "TapewatchRateLimitBudgetHigh",
    "TapewatchWebsocketDisconnected",
}
PROMQL_WORDS = {
    "by", "without", "on", "ignoring", "group_left", "group_right", "and", "or", "unless",
    "bool", "offset", "inf", "nan",
}  # fmt: skip


def load_rules() -> list[dict[str, Any]]:
    doc = yaml.safe_load(RULES.read_text())
    return [rule for group in doc["groups"] for rule in group["rules"]]


def exported_names() -> set[str]:
    """Sample names a live registry produces (histograms as _bucket/_sum/_count)."""
    engine, _, _ = make_engine()
    registry = EngineMetrics(engine).registry
    return {sample.name for family in registry.collect() for sample in family.samples}


def metric_names(expr: str) -> set[str]:
    """The metric names in a PromQL expression (functions, keywords and labels removed)."""
    text = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)  # strings
    text = re.sub(r"\{[^}]*\}", "", text)  # label matchers
    text = re.sub(r"\[[^\]]*\]", "", text)  # range selectors
    text = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", "", text)
    names = set()
    for match in re.finditer(r"[A-Za-z_:][A-Za-z0-9_:]*", text):
        word = match.group(0)
        following = text[match.end() :].lstrip()
        if following.startswith("(") or word.lower() in PROMQL_WORDS:
            continue
        names.add(word)
    return names


def test_the_rule_file_is_well_formed() -> None:
    rules = load_rules()
    for rule in rules:
        assert set(rule) <= {"alert", "expr", "for", "labels", "annotations"}, rule
        assert isinstance(rule["expr"], str) and rule["expr"].strip()
        assert rule["expr"].count("(") == rule["expr"].count(")")
        if "for" in rule:
            assert re.fullmatch(r"\d+[smh]", rule["for"]), rule["for"]
        assert rule["labels"]["severity"] in {"warning", "critical"}
        assert rule["annotations"]["summary"]
    assert {rule["alert"] for rule in rules} == ALERTS


def test_promtool_checks_and_unit_tests_the_rules(tmp_path: Path) -> None:
    promtool = require(PROMTOOL)["promtool"]
    check = subprocess.run(
        [promtool, "check", "rules", str(RULES)], capture_output=True, text=True, timeout=60
    )
    assert check.returncode == 0, check.stdout + check.stderr
    assert "SUCCESS: 5 rules found" in check.stdout
    unit = tmp_path / "tapewatch.test.yml"
    unit.write_text(json.dumps(promtool_unit_tests()))  # JSON is YAML
    run = subprocess.run(
        [promtool, "test", "rules", str(unit)], capture_output=True, text=True, timeout=60
    )
    assert run.returncode == 0, run.stdout + run.stderr


def test_every_expression_names_only_exported_metrics() -> None:
    exported = exported_names()
    seen: set[str] = set()
    for rule in load_rules():
        names = metric_names(rule["expr"])
        assert names, f"{rule['alert']} names no metric"
        assert names <= exported, f"{rule['alert']} names unexported {names - exported}"
        seen |= names
    assert "tapewatch_order_latency_seconds_bucket" in seen
    assert "tapewatch_api_errors_total" in seen and "tapewatch_api_requests_total" in seen


def test_the_name_check_is_not_vacuous() -> None:
    names = metric_names(
        'histogram_quantile(0.99, sum by (le) (rate(nope_seconds_bucket{stage="x"}[5m]))) > 0.2'
        " and on (instance) other_metric == 1"
    )
    assert names == {"nope_seconds_bucket", "other_metric"}
    assert not names <= exported_names()


# -- promtool unit tests: each alert fires on a bad series, stays quiet on a good one ----------

LABELS = 'job="tapewatch",instance="bot"'


def series(name: str, values: str, **labels: str) -> dict[str, str]:
    extra = "".join(f',{k}="{v}"' for k, v in labels.items())
    return {"series": f"{name}{{{LABELS}{extra}}}", "values": values}


def fired(alert: str, severity: str, summary: str, description: str) -> dict[str, Any]:
    return {
        "eval_time": "10m",
        "alertname": alert,
        "exp_alerts": [
            {
                "exp_labels": {"severity": severity, "job": "tapewatch", "instance": "bot"},
                "exp_annotations": {"summary": summary, "description": description},
            }
        ],
    }


def quiet(alert: str, at: str = "10m") -> dict[str, Any]:
    return {"eval_time": at, "alertname": alert, "exp_alerts": []}


def latency_series(slow_per_step: int) -> list[dict[str, str]]:
    """Per 15 s: 1000 fast orders (<= 0.1 s) plus ``slow_per_step`` between 0.2 and 0.5 s."""
    total = 1000 + slow_per_step
    stage = {"stage": "submit_to_ack"}
    return [
        series("tapewatch_order_latency_seconds_bucket", "0+1000x60", le="0.1", **stage),
        series("tapewatch_order_latency_seconds_bucket", "0+1000x60", le="0.2", **stage),
        series("tapewatch_order_latency_seconds_bucket", f"0+{total}x60", le="0.5", **stage),
        series("tapewatch_order_latency_seconds_bucket", f"0+{total}x60", le="+Inf", **stage),
    ]


def promtool_unit_tests() -> dict[str, Any]:
    bad = {
        "interval": "15s",
        "input_series": [
            *latency_series(slow_per_step=50),  # ~5% slow: p99 above 0.2 s
            series("tapewatch_api_errors_total", "0+3x60", status="429"),
            series("tapewatch_api_requests_total", "0+100x60"),
            series("tapewatch_drawdown_ratio", "0.01 0.02 0.035x60"),
            series("tapewatch_rate_limit_used_ratio", "0.5 0.9x60"),
            series("tapewatch_websocket_connected", "1 0x60"),
            series("tapewatch_websocket_expected", "1x60"),
        ],
        "alert_rule_test": [
            fired(
                "TapewatchOrderLatencyHigh",
                "warning",
                "p99 order latency above 200 ms on bot",
                # 1050 per step, 50 in (0.2, 0.5]: 0.2 + 0.3 * (1039.5 - 1000) / 50
                "p99 submit-to-acknowledgement latency over 5 minutes is 437ms.",
            ),
            fired(
                "TapewatchApiErrorRateHigh",
                "warning",
                "Broker API error rate above 1% on bot",
                "3% of broker API requests failed over 5 minutes.",
            ),
            fired(
                "TapewatchDrawdownHigh",
                "critical",
                "Drawdown above 3% on bot",
                "Equity is 3.5% below the day's starting equity.",
            ),
            fired(
                "TapewatchRateLimitBudgetHigh",
                "warning",
                "Broker rate-limit budget above 80% on bot",
                "90% of the API rate limit is used.",
            ),
            fired(
                "TapewatchWebsocketDisconnected",
                "critical",
                "Broker websocket disconnected for more than 30 s on bot",
                "No streaming connection: bars and order updates are not arriving.",
            ),
            quiet("TapewatchWebsocketDisconnected", at="30s"),  # disconnected 15 s: not yet
            quiet("TapewatchDrawdownHigh", at="15s"),  # 2%: under the limit
        ],
    }
    good = {
        "interval": "15s",
        "input_series": [
            *latency_series(slow_per_step=5),  # 0.5% slow: p99 under 0.2 s
            series("tapewatch_api_errors_total", "0+0x60", status="429"),
            series("tapewatch_api_requests_total", "0+100x60"),
            series("tapewatch_drawdown_ratio", "0.02x60"),
            series("tapewatch_rate_limit_used_ratio", "0.7x60"),
            # The offline demo: no websocket expected, so "disconnected" is not an alert.
            series("tapewatch_websocket_connected", "0x60"),
            series("tapewatch_websocket_expected", "0x60"),
        ],
        "alert_rule_test": [quiet(alert) for alert in sorted(ALERTS)],
    }
    return {"rule_files": [str(RULES)], "evaluation_interval": "15s", "tests": [bad, good]}
