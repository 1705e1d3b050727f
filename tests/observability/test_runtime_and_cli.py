"""Runtime facts (GIL, free-threading, keyring, endpoints, next session), ``tapewatch doctor``,
``tapewatch audit verify`` and the metrics flags."""

from __future__ import annotations

import argparse
import sys
import sysconfig
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tapewatch.console.observability_cli import (
    COMMANDS,
    add_metrics_flags,
    add_observability_commands,
    cmd_audit_verify,
    start_metrics,
)
from tapewatch.engine.observability import runtime
from tapewatch.engine.observability.audit import AuditLog, default_audit_path
from tapewatch.engine.observability.runtime import (
    collect_runtime_facts,
    fact_rows,
    strip_credentials,
)
from tests.helpers import make_engine

SATURDAY = datetime(2026, 1, 3, 12, 0, tzinfo=UTC)
MONDAY_OPEN = datetime(2026, 1, 5, 14, 30, tzinfo=UTC)


class FixedCalendar:
    def __init__(self, open_now: bool) -> None:
        self.open_now = open_now
        self.asked: list[datetime] = []

    def is_open(self, now: datetime) -> bool:
        self.asked.append(now)
        return self.open_now

    def next_open(self, now: datetime) -> datetime:
        return MONDAY_OPEN


def facts(**kwargs: object) -> runtime.RuntimeFacts:
    params: dict[str, object] = {
        "data_dir": Path("/data"),
        "env": {},
        "calendar": FixedCalendar(False),
        "keyring_name": lambda: "keyring.backends.SecretService.Keyring",
    }
    params.update(kwargs)
    return collect_runtime_facts(SATURDAY, **params)  # type: ignore[arg-type]


def test_gil_and_free_threading_come_from_the_interpreter(monkeypatch: pytest.MonkeyPatch) -> None:
    f = facts()
    assert f.python_version == ".".join(map(str, sys.version_info[:3]))
    assert f.free_threaded is bool(sysconfig.get_config_var("Py_GIL_DISABLED"))
    probe = getattr(sys, "_is_gil_enabled", None)
    assert f.gil_enabled == (probe() if probe else None)
    # A free-threaded 3.13t with the GIL off, simulated.
    real = sysconfig.get_config_var
    monkeypatch.setattr(
        sysconfig, "get_config_var", lambda name: 1 if name == "Py_GIL_DISABLED" else real(name)
    )
    monkeypatch.setattr(sys, "_is_gil_enabled", lambda: False, raising=False)
    f = facts()
    assert f.free_threaded is True and f.gil_enabled is False
    rows = dict(fact_rows(f))
    assert rows["free-threaded build"] == "yes" and rows["GIL enabled"] == "no"
    monkeypatch.delattr(sys, "_is_gil_enabled")
    assert facts().gil_enabled is None
    assert dict(fact_rows(facts()))["GIL enabled"].startswith("yes")


def test_next_session_uses_the_injected_now_and_calendar() -> None:
    calendar = FixedCalendar(False)
    f = facts(calendar=calendar)
    assert calendar.asked == [SATURDAY]
    assert f.next_session == MONDAY_OPEN and f.market_open is False
    assert dict(fact_rows(f))["next market session"] == "Mon 2026-01-05 09:30 ET (14:30 UTC)"
    open_now = dict(fact_rows(facts(calendar=FixedCalendar(True))))["next market session"]
    assert open_now.startswith("market open now")


def test_the_real_calendar_answers_the_next_session() -> None:
    f = collect_runtime_facts(SATURDAY, data_dir=Path("/data"), keyring_name=lambda: "k")
    assert f.next_session == MONDAY_OPEN  # Friday Jan 2 2026 was a session; Monday is next


def test_a_broken_calendar_is_a_note_not_a_crash() -> None:
    class Broken:
        def is_open(self, now: datetime) -> bool:
            raise ValueError("date outside the calendar")

        def next_open(self, now: datetime) -> datetime:
            raise AssertionError

    f = facts(calendar=Broken())
    assert f.next_session is None
    assert dict(fact_rows(f))["next market session"].startswith("unavailable: ValueError")


def test_keyring_backend_failure_reads_unavailable(monkeypatch: pytest.MonkeyPatch) -> None:
    import keyring

    def boom() -> object:
        raise RuntimeError("no D-Bus session")

    monkeypatch.setattr(keyring, "get_keyring", boom)
    assert runtime.keyring_backend_name() == "unavailable: RuntimeError: no D-Bus session"

    from keyring.backends import fail

    monkeypatch.setattr(keyring, "get_keyring", lambda: fail.Keyring())
    assert "no usable backend" in runtime.keyring_backend_name()


def test_endpoints_come_from_the_environment_with_paper_defaults() -> None:
    f = facts(env={"TAPEWATCH_ALPACA_TRADING_URL": "http://127.0.0.1:8765"})
    endpoints = dict(f.endpoints)
    assert endpoints["trading"] == "http://127.0.0.1:8765"
    assert endpoints["market data"] == "https://data.alpaca.markets"
    assert endpoints["data stream"].startswith("wss://stream.data.alpaca.markets/v2/")
    assert endpoints["trade updates"] == "wss://paper-api.alpaca.markets/stream"
    assert strip_credentials("https://user:pw@host.example:8443/v2?x=1") == (
        "https://host.example:8443/v2?x=1"
    )


# -- the CLI --------------------------------------------------------------------------------


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="tapewatch")
    sub = p.add_subparsers(dest="command")
    add_observability_commands(sub)
    demo = sub.add_parser("demo")
    add_metrics_flags(demo)
    demo.add_argument("--data-dir")
    return p


def test_doctor_prints_every_fact(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(runtime, "keyring_backend_name", lambda: "keyring.backends.fail.Keyring")
    audit = AuditLog(default_audit_path(tmp_path))
    audit.append(ts="2026-01-05T15:00:00+00:00", who="a", action="pause")
    args = parser().parse_args(["doctor", "--data-dir", str(tmp_path)])
    assert COMMANDS[args.command](args) == 0
    out = capsys.readouterr().out
    for label in (
        "Python",
        "free-threaded build",
        "GIL enabled",
        "keyring backend",
        "data directory",
        "endpoint: trading",
        "next market session",
        "log file",
        "audit trail",
    ):
        assert label in out, label
    assert sys.version.split()[0] in out
    assert str(tmp_path) in out
    assert "1 record(s), chain intact" in out


def test_audit_verify_exit_codes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "a.jsonl"
    log = AuditLog(path)
    for i in range(3):
        log.append(ts="2026-01-05T15:00:00+00:00", who="ops", action=f"act{i}")
    args = parser().parse_args(["audit", "verify", "--file", str(path)])
    assert args.audit_command == "verify"
    assert COMMANDS["audit"](args) == 0
    assert "OK, 3 record(s)" in capsys.readouterr().out
    rows = path.read_bytes().splitlines(keepends=True)
    path.write_bytes(rows[0] + rows[2])
    assert cmd_audit_verify(args) == 1
    out = capsys.readouterr().out
    assert "chain broken at seq 2" in out and "1 record(s) before seq 2" in out
    missing = parser().parse_args(["audit", "verify", "--data-dir", str(tmp_path / "none")])
    assert cmd_audit_verify(missing) == 2
    assert "no audit file" in capsys.readouterr().err


def test_audit_needs_an_action() -> None:
    with pytest.raises(SystemExit):
        parser().parse_args(["audit"])


async def test_metrics_are_off_unless_a_port_is_given(tmp_path: Path) -> None:
    engine, _, _ = make_engine()
    off = parser().parse_args(["demo"])
    assert off.metrics_host == "127.0.0.1" and off.metrics_port is None
    assert start_metrics(engine, off) is None
    on = parser().parse_args(["demo", "--metrics-port", "0", "--data-dir", str(tmp_path)])
    server = start_metrics(engine, on)
    assert server is not None
    try:
        assert server.host == "127.0.0.1" and server.port > 0
        assert server.sampler is not None and server.sampler.running  # started in the loop
    finally:
        server.stop()
    assert not server.running
