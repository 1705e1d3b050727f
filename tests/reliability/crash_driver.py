"""A paper session that SIGKILLs itself at one exact point of an order's life (tests only).

``python -m tests.reliability.crash_driver DATA_DIR POINT`` with the sandbox's addresses in
the ``TAPEWATCH_ALPACA_*`` variables. The kill points are installed by wrapping methods here,
so production code carries no test hooks:

* ``after_intent``: the intent is journaled, the broker has not heard of the order;
* ``after_submit``: the broker accepted the order, the acknowledgement is not journaled;
* ``after_fill``: the broker reported the fill, the journal has not recorded it;
* ``after_pause``: a fill is journaled, then the operator pauses (a breaker trips), then death.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path
from typing import Any

from tapewatch.engine.adapters.alpaca.broker import AlpacaBroker
from tapewatch.engine.adapters.alpaca.endpoints import Endpoints
from tapewatch.engine.core.engine import Engine
from tapewatch.engine.model.events import Event, OrderFilled
from tapewatch.engine.model.types import Mode
from tapewatch.engine.root.headless import run_headless
from tapewatch.engine.root.live import LiveOptions, build_live_session
from tests.reliability.soak_helpers import Keys, fast_retries, quick_config

POINTS = ("after_intent", "after_submit", "after_fill", "after_pause")


def die() -> None:
    sys.stdout.flush()
    os.kill(os.getpid(), signal.SIGKILL)


def install(point: str) -> None:
    submit = AlpacaBroker.submit_order
    on_event = Engine._on_broker_event

    async def submit_then_die(self: AlpacaBroker, request: Any) -> Any:
        if point == "after_intent":
            die()
        order = await submit(self, request)
        if point == "after_submit":
            die()
        return order

    def die_on_fill(self: Engine, event: Event) -> None:
        if point == "after_fill" and isinstance(event, OrderFilled):
            die()
        on_event(self, event)

    AlpacaBroker.submit_order = submit_then_die  # type: ignore[method-assign]
    Engine._on_broker_event = die_on_fill  # type: ignore[method-assign]


async def main(data_dir: Path, point: str) -> int:
    install(point)
    env = os.environ
    endpoints = Endpoints(
        mode=Mode.PAPER,
        trading=env["TAPEWATCH_ALPACA_TRADING_URL"],
        data=env["TAPEWATCH_ALPACA_DATA_URL"],
        data_stream=env["TAPEWATCH_ALPACA_STREAM_URL"],
        trade_stream=env["TAPEWATCH_ALPACA_TRADE_STREAM_URL"],
    )
    options = LiveOptions(endpoints=endpoints, timeout=2.0, warmup_bars=20, grace_seconds=0.5)
    with fast_retries():
        session = await build_live_session(
            quick_config(), Mode.PAPER, Keys(), data_dir, options=options
        )
    engine = session.engine
    if point == "after_pause":

        def pause_after_fill(event: Event) -> None:
            if isinstance(event, OrderFilled):
                asyncio.get_running_loop().call_soon(
                    lambda: asyncio.ensure_future(pause_then_die(engine))
                )

        engine.bus.add_sink(pause_after_fill)
    print("started", flush=True)
    return await run_headless(engine, session.feed)


async def pause_then_die(engine: Engine) -> None:
    await engine.pause("crash@test")
    die()


if __name__ == "__main__":
    sys.exit(asyncio.run(main(Path(sys.argv[1]), sys.argv[2])))
