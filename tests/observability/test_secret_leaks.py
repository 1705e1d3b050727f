"""Known secrets fed through every observability path never come out: log file (messages,
arguments, exception text, stack traces, order lines), audit file, metrics, doctor output.

The secrets are built at run time (a repository hook greps committed files for key ids).
"""

from __future__ import annotations

import argparse
import logging
import random
import string
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tapewatch.console.observability_cli import cmd_doctor
from tapewatch.engine.model.events import OrderSubmitted
from tapewatch.engine.model.types import Order, OrderStatus, Side
from tapewatch.engine.observability import runtime
from tapewatch.engine.observability.audit import AuditLog, attach_audit, verify
from tapewatch.engine.observability.logs import (
    MASK,
    log_order_event,
    redact,
    setup_logging,
    teardown_logging,
)
from tapewatch.engine.observability.metrics import EngineMetrics
from tests.helpers import make_engine

T = datetime(2026, 1, 5, 15, 0, tzinfo=UTC)


def fake_key(tag: str, prefix: str = "PK") -> str:
    rng = random.Random(tag)
    return prefix + "".join(rng.choice(string.ascii_uppercase + string.digits) for _ in range(18))


KEY_ID = fake_key("key-id")
SECRET = fake_key("secret", prefix="sk")
PASSPHRASE = fake_key("passphrase", prefix="pp")
ALL = (KEY_ID, SECRET, PASSPHRASE)


@pytest.fixture
def secrets() -> Iterator[tuple[str, ...]]:
    for s in ALL:
        redact.add(s)
    yield ALL
    for s in ALL:
        redact.discard(s)


def assert_clean(text: str) -> None:
    for s in ALL:
        assert s not in text, f"secret {s[:4]}… leaked"


def all_files(root: Path) -> str:
    return "\n".join(p.read_text(errors="replace") for p in sorted(root.rglob("*")) if p.is_file())


def test_log_file_never_holds_a_registered_secret(tmp_path: Path, secrets: tuple[str, ...]) -> None:
    path = setup_logging(tmp_path)
    try:
        log = logging.getLogger("tapewatch.test")
        log.info("connecting with key %s and secret %s", KEY_ID, SECRET)
        log.warning("config: %r", {"passphrase": PASSPHRASE, "marker": "visible-1"})
        log.info(f"inline f-string {SECRET} visible-2")
        try:
            raise PermissionError(f"401 unauthorized for {KEY_ID}/{SECRET}")
        except PermissionError:
            log.exception("login failed visible-3")
        log.error("stack for %s", SECRET, stack_info=True)
        logging.getLogger("alpaca.common").error("SDK says %s", SECRET)  # a library's logger
        order = Order(f"id-{SECRET}", "rsisma-SPY-1", "SPY", Side.BUY, 1.0, OrderStatus.ACCEPTED)
        log_order_event(OrderSubmitted(ts=T, order=order, latency=0.01))
    finally:
        teardown_logging()
    text = all_files(tmp_path)
    assert path.exists() and path.parent == tmp_path / "logs"
    assert_clean(text)
    for marker in ("visible-1", "visible-2", "visible-3", "PermissionError", "401 unauthorized"):
        assert marker in text  # the records themselves did arrive
    assert text.count(MASK) >= 8
    assert "client_order_id=rsisma-SPY-1" in text  # order lines carry the ids


def test_secrets_in_the_environment_are_registered_by_setup(tmp_path: Path) -> None:
    env_secret = fake_key("env-secret", prefix="es")
    try:
        setup_logging(tmp_path, env={"APCA_API_SECRET_KEY": env_secret})
        logging.getLogger("tapewatch.test").error("leaking %s", env_secret)
    finally:
        teardown_logging()
        redact.discard(env_secret)
    text = all_files(tmp_path)
    assert env_secret not in text and MASK in text


def test_nothing_reaches_the_screen_under_the_console(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    root = logging.getLogger()
    screen = logging.StreamHandler()  # what a stray basicConfig() would have installed
    root.addHandler(screen)
    try:
        setup_logging(tmp_path)
        assert screen not in root.handlers
        logging.getLogger("tapewatch.test").error("only in the file")
    finally:
        teardown_logging()
        root.removeHandler(screen)
    captured = capfd.readouterr()
    assert "only in the file" not in captured.err + captured.out
    assert "only in the file" in all_files(tmp_path)


def test_log_files_rotate(tmp_path: Path) -> None:
    try:
        setup_logging(tmp_path, max_bytes=2_000, backups=2)
        for i in range(200):
            logging.getLogger("tapewatch.test").info("line %d %s", i, "x" * 40)
    finally:
        teardown_logging()
    names = sorted(p.name for p in (tmp_path / "logs").iterdir())
    assert names == ["tapewatch.log", "tapewatch.log.1", "tapewatch.log.2"]


async def test_audit_records_never_hold_a_secret(tmp_path: Path, secrets: tuple[str, ...]) -> None:
    path = tmp_path / "audit.jsonl"
    AuditLog(path).append(
        ts=T,
        who=f"ops {KEY_ID}@local",
        action="switch_account",
        detail=f"PAPER -> LIVE with {SECRET}",
        state_before={"account": KEY_ID, PASSPHRASE: [SECRET]},
        state_after={"note": f"pw={PASSPHRASE}"},
    )
    engine, _, _ = make_engine()
    trail = attach_audit(engine, path)
    await engine.start()
    await engine.pause(who=f"{SECRET}@10.1.1.1")
    trail.flush()
    text = path.read_text()
    assert_clean(text)
    assert text.count(MASK) >= 6
    assert verify(path).ok  # hashes cover the redacted text


def test_metrics_output_never_holds_a_secret(secrets: tuple[str, ...]) -> None:
    class LeakyBroker:  # every BrokerTelemetry method; the error counts carry a key id
        def rate_limit_used_ratio(self) -> float:
            return 0.0

        def api_error_counts(self) -> dict[str, int]:
            return {f"401 {KEY_ID}": 1, "429": 2}

        def api_request_count(self) -> int:
            return 3

        def websocket_connected(self) -> bool:
            return True

        def websocket_last_message_age(self, now: object) -> float | None:
            return None

    engine, _, _ = make_engine()
    text = EngineMetrics(engine, provider=LeakyBroker()).exposition().decode()
    assert_clean(text)
    assert f'status="401 {MASK}"' in text


def test_doctor_output_never_holds_a_secret(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    secrets: tuple[str, ...],
) -> None:
    unregistered = fake_key("never-registered", prefix="AK")
    monkeypatch.setenv("APCA_API_KEY_ID", unregistered)
    monkeypatch.setenv("APCA_API_SECRET_KEY", SECRET)
    monkeypatch.setenv(
        "TAPEWATCH_ALPACA_TRADING_URL", f"https://{unregistered}:{SECRET}@paper.example:8443"
    )
    monkeypatch.setenv("TAPEWATCH_ALPACA_DATA_URL", f"https://data.example/?token={PASSPHRASE}")
    monkeypatch.setattr(
        runtime, "keyring_backend_name", lambda: f"unavailable: ValueError: bad {PASSPHRASE}"
    )
    assert cmd_doctor(argparse.Namespace(data_dir=str(tmp_path))) == 0
    out = capsys.readouterr().out
    assert_clean(out)
    assert unregistered not in out
    assert "https://paper.example:8443" in out
    assert f"token={MASK}" in out
