"""Application logging: a rotating file under the data directory, secrets redacted everywhere.

The console owns the terminal, so log records never go to the screen while it runs (a stray
line would scribble over the TUI); headless runs may add stderr for warnings. Every handler
this module installs carries the redacting filter, so a secret registered with
``redact.add(secret)`` is masked in messages, arguments, exception text and stack traces alike.
Order events are logged with their client and broker order ids so a log line can be matched
to the journal and to the broker's records.
"""

from __future__ import annotations

import io
import logging
import logging.handlers
import os
import sys
import threading
from collections.abc import Mapping
from pathlib import Path

from tapewatch.engine.model.events import (
    Event,
    OrderFilled,
    OrderSubmitted,
    OrderUpdated,
    RiskDenied,
)
from tapewatch.engine.storage.datadir import private_dir, tighten, touch_private

MASK = "[REDACTED]"
MIN_SECRET_LENGTH = 6  # shorter strings would mask ordinary words
SECRET_ENV_VARS = ("APCA_API_KEY_ID", "APCA_API_SECRET_KEY", "TAPEWATCH_KEYRING_PASSPHRASE")
LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
_OURS = "_tapewatch_handler"


class Redactor:
    """The set of known secrets and a function that masks them in any text (thread-safe)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._secrets: tuple[str, ...] = ()

    def add(self, secret: str | None) -> None:
        """Register a secret (an API key, a passphrase) as soon as the program learns it."""
        if not secret or len(secret) < MIN_SECRET_LENGTH:
            return
        with self._lock:
            if secret not in self._secrets:
                # Longest first, so a secret containing another is masked whole.
                self._secrets = tuple(sorted((*self._secrets, secret), key=len, reverse=True))

    def add_from_env(self, env: Mapping[str, str] | None = None) -> None:
        """Register the credentials the environment may carry (``APCA_API_*``)."""
        source = os.environ if env is None else env
        for name in SECRET_ENV_VARS:
            self.add(source.get(name))

    def discard(self, secret: str) -> None:
        with self._lock:
            self._secrets = tuple(s for s in self._secrets if s != secret)

    def clear(self) -> None:
        with self._lock:
            self._secrets = ()

    def __len__(self) -> int:
        return len(self._secrets)

    def __call__(self, text: str) -> str:
        for secret in self._secrets:  # a tuple snapshot: no lock on the hot path
            if secret in text:
                text = text.replace(secret, MASK)
        return text


redact = Redactor()
"""The process-wide registry: ``redact.add(secret)`` to register, ``redact(text)`` to mask."""


class RedactingFilter(logging.Filter):
    """Masks registered secrets in the final message, exception text and stack info."""

    def __init__(self, redactor: Redactor = redact) -> None:
        super().__init__()
        self._redact = redactor
        self._formatter = logging.Formatter()

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a bad format string must not lose the record
            message = f"{record.msg!r} % {record.args!r}"
        record.msg = self._redact(message)
        record.args = None
        if record.exc_info and not record.exc_text:
            record.exc_text = self._formatter.formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = self._redact(record.exc_text)
        if record.stack_info:
            record.stack_info = self._redact(record.stack_info)
        return True


class PrivateRotatingFileHandler(logging.handlers.RotatingFileHandler):
    """A rotating log whose every file (the first, each one after a rollover) is 0600."""

    def _open(self) -> io.TextIOWrapper:
        touch_private(Path(self.baseFilename))
        return super()._open()


def log_path(data_dir: Path) -> Path:
    return data_dir / "logs" / "tapewatch.log"


def setup_logging(
    data_dir: Path,
    *,
    level: int = logging.INFO,
    stderr_level: int | None = None,
    max_bytes: int = 5_000_000,
    backups: int = 5,
    env: Mapping[str, str] | None = None,
) -> Path:
    """Send every log record to ``<data_dir>/logs/tapewatch.log`` (rotating); return its path.

    ``stderr_level`` also prints records at or above that level to stderr (headless runs only;
    leave it None under the console). Any other handler writing to a terminal is removed from
    the root logger, so nothing reaches the screen. Calling it again replaces what it installed.
    """
    path = log_path(data_dir)
    private_dir(path.parent)
    for number in range(1, backups + 1):  # backups left readable by an older tapewatch
        tighten(path.with_name(f"{path.name}.{number}"))
    redact.add_from_env(env)
    root = logging.getLogger()
    for handler in list(root.handlers):
        if getattr(handler, _OURS, False) or _writes_to_terminal(handler):
            root.removeHandler(handler)
            handler.close()
    file_handler = PrivateRotatingFileHandler(
        path, maxBytes=max_bytes, backupCount=backups, encoding="utf-8"
    )
    handlers: list[logging.Handler] = [file_handler]
    if stderr_level is not None:
        screen = logging.StreamHandler(sys.stderr)
        screen.setLevel(stderr_level)
        handlers.append(screen)
    for handler in handlers:
        setattr(handler, _OURS, True)
        handler.addFilter(RedactingFilter())
        handler.setFormatter(logging.Formatter(LOG_FORMAT))
        root.addHandler(handler)
    root.setLevel(level)
    logging.captureWarnings(True)  # warnings go to the file, not over the screen
    return path


def teardown_logging() -> None:
    """Remove and close the handlers ``setup_logging`` installed (tests, clean shutdown)."""
    root = logging.getLogger()
    for handler in list(root.handlers):
        if getattr(handler, _OURS, False):
            root.removeHandler(handler)
            handler.close()
    logging.captureWarnings(False)


def _writes_to_terminal(handler: logging.Handler) -> bool:
    if isinstance(handler, logging.FileHandler) or not isinstance(handler, logging.StreamHandler):
        return False
    return handler.stream in (sys.stderr, sys.stdout, sys.__stderr__, sys.__stdout__)


# -- order log lines ---------------------------------------------------------------------------

order_log = logging.getLogger("tapewatch.orders")


def format_order_event(event: Event) -> str | None:
    """One log line per order event, always naming the client order id (and the broker's)."""
    if isinstance(event, OrderSubmitted):
        o = event.order
        return (
            f"submitted {o.side.value} {o.qty:g} {o.symbol} status={o.status.value} "
            f"client_order_id={o.client_order_id} order_id={o.order_id or '-'} "
            f"latency={event.latency * 1000:.2f}ms"
        )
    if isinstance(event, OrderFilled):
        o, f = event.order, event.fill
        return (
            f"filled {f.side.value} {f.qty:g} {f.symbol} @ {f.price:.4f} "
            f"client_order_id={o.client_order_id} order_id={o.order_id or '-'}"
        )
    if isinstance(event, OrderUpdated):
        o = event.order
        reason = f" reason={o.reason}" if o.reason else ""
        return (
            f"updated status={o.status.value} client_order_id={o.client_order_id} "
            f"order_id={o.order_id or '-'}{reason}"
        )
    if isinstance(event, RiskDenied):
        r = event.request
        return (
            f"denied {r.side.value} {r.qty:g} {r.symbol} client_order_id={r.client_order_id} "
            f"breaker={event.breaker} reason={event.reason}"
        )
    return None


def log_order_event(event: Event) -> None:
    """A bus sink (``engine.add_sink(log_order_event)``): order events to the log file."""
    line = format_order_event(event)
    if line is not None:
        order_log.info(line)
