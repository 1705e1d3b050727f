"""The sandbox server: one aiohttp app serving Alpaca's REST and both websockets on loopback.

``Sandbox`` runs on the caller's event loop (async start/stop, async context manager);
``SandboxThread`` runs one on its own loop in a background thread, for tests that drive it with
alpaca-py's blocking REST clients; ``run_sandbox`` is the blocking ``tapewatch sandbox``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import sys
import threading
from collections.abc import Awaitable, Callable
from types import TracebackType
from typing import Any, TypeVar

from aiohttp import web

from tapewatch.sandbox.config import SandboxConfig
from tapewatch.sandbox.control import add_control_routes, apply_faults
from tapewatch.sandbox.data_rest import add_data_routes
from tapewatch.sandbox.data_stream import FEEDS
from tapewatch.sandbox.middleware import alpaca_gate
from tapewatch.sandbox.state import STATE, SandboxState
from tapewatch.sandbox.trading_rest import add_trading_routes

T = TypeVar("T")
log = logging.getLogger(__name__)


def build_app(state: SandboxState) -> web.Application:
    app = web.Application(middlewares=[alpaca_gate])
    app[STATE] = state
    add_control_routes(app)
    add_trading_routes(app)
    add_data_routes(app)
    app.router.add_get(
        "/v2/{feed:" + "|".join(FEEDS) + "}", state.data_hub.handle, name="data_stream"
    )
    app.router.add_get("/stream", state.trade_hub.handle, name="trade_stream")
    return app


class Sandbox:
    """One sandbox on the running event loop."""

    def __init__(self, config: SandboxConfig | None = None) -> None:
        self.config = config or SandboxConfig()
        self.state = SandboxState(self.config)
        self.app = build_app(self.state)
        self.port = 0
        self._runner: web.AppRunner | None = None
        self._ticker: asyncio.Task[None] | None = None

    async def start(self) -> None:
        runner = web.AppRunner(self.app, access_log=None, shutdown_timeout=1.0)
        await runner.setup()
        site = web.TCPSite(runner, self.config.host, self.config.port)
        try:
            await site.start()
        except BaseException:
            await runner.cleanup()
            raise
        self._runner = runner
        self.port = int(runner.addresses[0][1])
        if self.config.bar_interval > 0:
            self._ticker = asyncio.create_task(self._tick_forever(self.config.bar_interval))

    async def stop(self) -> None:
        if self._ticker is not None:
            self._ticker.cancel()
            await asyncio.wait([self._ticker])
            self._ticker = None
        await self.close_streams()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def close_streams(self, code: int = 1001) -> None:
        """Close every websocket (going away); the SDK streams notice at once."""
        await self.state.data_hub.drop(code)
        await self.state.trade_hub.drop(code)

    async def _tick_forever(self, interval: float) -> None:
        loop = asyncio.get_running_loop()
        due = loop.time() + interval
        while True:
            await asyncio.sleep(max(0.0, due - loop.time()))
            try:
                self.state.tick()
            except Exception:  # a bug in one minute must not freeze the market for good
                log.exception("sandbox market tick failed")
            due += interval
            if due < loop.time():  # fell behind (a paused process): do not burst
                due = loop.time() + interval

    async def apply_faults(self, **spec: Any) -> dict[str, object]:
        """The ``POST /_sandbox/faults`` switches, from Python."""
        return await apply_faults(self.state, spec)

    async def __aenter__(self) -> Sandbox:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    # -- addresses -------------------------------------------------------------------------

    @property
    def url(self) -> str:
        host = f"[{self.config.host}]" if ":" in self.config.host else self.config.host
        return f"http://{host}:{self.port}"

    @property
    def trading_url(self) -> str:
        return self.url

    @property
    def data_url(self) -> str:
        return self.url

    @property
    def data_stream_url(self) -> str:
        return "ws" + self.url.removeprefix("http") + "/v2/iex"

    @property
    def trade_stream_url(self) -> str:
        return "ws" + self.url.removeprefix("http") + "/stream"

    def banner(self) -> str:
        """One line for the terminal: where it listens and how to point tapewatch at it."""
        return (
            f"tapewatch sandbox listening on {self.url} (seed {self.config.seed}); "
            f"export TAPEWATCH_ALPACA_TRADING_URL={self.trading_url} "
            f"TAPEWATCH_ALPACA_DATA_URL={self.data_url} "
            f"TAPEWATCH_ALPACA_STREAM_URL={self.data_stream_url} "
            f"TAPEWATCH_ALPACA_TRADE_STREAM_URL={self.trade_stream_url}"
        )


class SandboxThread:
    """A sandbox on its own event loop in a background thread (for blocking SDK clients)."""

    def __init__(self, config: SandboxConfig | None = None) -> None:
        self.config = config or SandboxConfig()
        self._sandbox: Sandbox | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None

    @property
    def sandbox(self) -> Sandbox:
        if self._sandbox is None:
            raise RuntimeError("the sandbox thread is not running")
        return self._sandbox

    def start(self, timeout: float = 30.0) -> SandboxThread:
        self._thread = threading.Thread(target=self._main, name="tapewatch-sandbox", daemon=True)
        self._thread.start()
        if not self._ready.wait(timeout):
            raise TimeoutError("the sandbox did not start in time")
        if self._error is not None:
            self._thread.join()
            raise self._error
        return self

    def _main(self) -> None:
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        try:
            self._sandbox = Sandbox(self.config)
            loop.run_until_complete(self._sandbox.start())
        except BaseException as exc:
            self._error = exc
            self._ready.set()
            loop.close()
            return
        self._loop = loop
        self._ready.set()
        try:
            loop.run_forever()
        finally:
            loop.run_until_complete(self._sandbox.stop())
            _cancel_leftovers(loop)
            loop.close()

    def stop(self, timeout: float = 10.0) -> None:
        if self._loop is not None and self._thread is not None and self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout)
            if self._thread.is_alive():
                raise TimeoutError("the sandbox thread did not stop")
        self._loop = None

    def call(self, action: Callable[[Sandbox], Awaitable[T]], timeout: float = 10.0) -> T:
        """Run ``action(sandbox)`` on the sandbox's loop and wait for its result."""
        if self._loop is None:
            raise RuntimeError("the sandbox thread is not running")

        async def run() -> T:
            return await action(self.sandbox)

        return asyncio.run_coroutine_threadsafe(run(), self._loop).result(timeout)

    def apply_faults(self, **spec: Any) -> dict[str, object]:
        return self.call(lambda sandbox: sandbox.apply_faults(**spec))

    def snapshot(self) -> dict[str, object]:
        """What ``GET /_sandbox/state`` shows, from Python."""

        async def read(sandbox: Sandbox) -> dict[str, object]:
            return sandbox.state.snapshot()

        return self.call(read)

    def close_streams(self) -> None:
        self.call(lambda sandbox: sandbox.close_streams())

    def __enter__(self) -> SandboxThread:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def url(self) -> str:
        return self.sandbox.url

    @property
    def trading_url(self) -> str:
        return self.sandbox.trading_url

    @property
    def data_url(self) -> str:
        return self.sandbox.data_url

    @property
    def data_stream_url(self) -> str:
        return self.sandbox.data_stream_url

    @property
    def trade_stream_url(self) -> str:
        return self.sandbox.trade_stream_url


def _cancel_leftovers(loop: asyncio.AbstractEventLoop) -> None:
    tasks = [t for t in asyncio.all_tasks(loop) if not t.done()]
    for task in tasks:
        task.cancel()
    if tasks:
        loop.run_until_complete(asyncio.gather(*tasks, return_exceptions=True))
    loop.run_until_complete(loop.shutdown_asyncgens())


async def _serve(config: SandboxConfig) -> int:
    sandbox = Sandbox(config)
    try:
        await sandbox.start()
    except OSError as exc:
        reason = exc.strerror or exc
        print(
            f"tapewatch sandbox: cannot listen on {config.host}:{config.port}: {reason}",
            file=sys.stderr,
        )
        return 2
    print(sandbox.banner(), flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    signals = (signal.SIGINT, signal.SIGTERM)
    for sig in signals:
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        for sig in signals:
            with contextlib.suppress(ValueError, RuntimeError):
                loop.remove_signal_handler(sig)
        await sandbox.stop()
    return 0


def run_sandbox(config: SandboxConfig) -> int:
    """Serve until SIGINT/SIGTERM, then stop cleanly (0); 2 if the port cannot be bound."""
    return asyncio.run(_serve(config))
