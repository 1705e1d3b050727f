"""systemd's notify protocol for ``tapewatch run --headless`` under a ``Type=notify`` unit.

systemd hands a service ``NOTIFY_SOCKET`` (a datagram socket; a leading ``@`` is Linux's
abstract namespace) and, with ``WatchdogSec=``, ``WATCHDOG_USEC`` (and ``WATCHDOG_PID``). We
send ``READY=1`` once the session is connected and trading, ``STATUS=`` with the trading state
whenever it changes (``systemctl --user status tapewatch`` shows it), ``WATCHDOG=1`` at half the
interval — from the event loop itself, so a wedged loop stops the pings and systemd restarts
the unit — and ``STOPPING=1`` when the stop begins. No dependency: one ``AF_UNIX`` datagram.
Outside systemd (no ``NOTIFY_SOCKET``) all of it is a no-op.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING

from tapewatch.engine.model.events import TradingStateChanged

if TYPE_CHECKING:
    from tapewatch.engine.core.engine import Engine

log = logging.getLogger("tapewatch.systemd")

Sleep = Callable[[float], Awaitable[None]]


class SystemdNotifier:
    """Sends notify lines to the socket systemd gave this process."""

    def __init__(self, address: str) -> None:
        self._address = "\0" + address[1:] if address.startswith("@") else address
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
        self._warned = False

    @classmethod
    def from_env(cls, env: Mapping[str, str] = os.environ) -> SystemdNotifier | None:
        address = env.get("NOTIFY_SOCKET", "")
        if not address or not (address.startswith("/") or address.startswith("@")):
            return None
        return cls(address)

    def send(self, *lines: str) -> bool:
        """One datagram of ``KEY=value`` lines; False (logged once) if systemd is gone."""
        try:
            self._sock.sendto("\n".join(lines).encode(), self._address)
        except OSError as exc:
            if not self._warned:
                log.warning("systemd notify socket refused a message: %s", exc)
                self._warned = True
            return False
        return True

    def close(self) -> None:
        self._sock.close()


def watchdog_interval(env: Mapping[str, str] = os.environ, pid: int | None = None) -> float | None:
    """Seconds between ``WATCHDOG=1`` pings (half of ``WATCHDOG_USEC``), or None when the unit
    asks for none or asks another process (``WATCHDOG_PID``)."""
    usec = env.get("WATCHDOG_USEC", "")
    owner = env.get("WATCHDOG_PID", "")
    if owner and owner != str(pid if pid is not None else os.getpid()):
        return None
    try:
        value = int(usec)
    except ValueError:
        return None
    return value / 2_000_000 if value > 0 else None


def status_line(mode: str, symbol: str, state: str) -> str:
    return f"STATUS={mode.lower()} {symbol}: trading {state}"


class SystemdSession:
    """READY, STATUS on every trading-state change, and the watchdog, for one engine run."""

    def __init__(
        self,
        notifier: SystemdNotifier,
        *,
        interval: float | None,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self._notifier = notifier
        self._interval = interval
        self._sleep = sleep
        self._tasks: list[asyncio.Task[None]] = []

    def start(self, engine: Engine) -> None:
        """Call on the loop once the session trades: READY=1 and the first STATUS."""
        state = engine.state
        mode, symbol = state.mode.value, state.symbol
        self._notifier.send("READY=1", status_line(mode, symbol, state.trading_state.value))
        subscription = engine.subscribe()

        async def statuses() -> None:
            async for event in subscription:
                if isinstance(event, TradingStateChanged):
                    self._notifier.send(status_line(mode, symbol, event.new.value))

        self._tasks.append(asyncio.create_task(statuses()))
        if self._interval is not None:
            self._tasks.append(asyncio.create_task(self._watchdog(self._interval)))

    async def _watchdog(self, interval: float) -> None:
        while True:
            self._notifier.send("WATCHDOG=1")
            await self._sleep(interval)

    async def stopping(self) -> None:
        """The stop began: STOPPING=1, and no more pings (systemd's stop timeout takes over)."""
        self._notifier.send("STOPPING=1")
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()
        self._notifier.close()


def systemd_session(env: Mapping[str, str] = os.environ) -> SystemdSession | None:
    """The notify session systemd asked for through the environment, or None outside systemd."""
    notifier = SystemdNotifier.from_env(env)
    if notifier is None:
        return None
    return SystemdSession(notifier, interval=watchdog_interval(env))
