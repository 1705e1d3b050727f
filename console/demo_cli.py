"""``tapewatch demo --headless``: the offline demo without a screen."""

from __future__ import annotations

import argparse
import asyncio
import sys
from dataclasses import replace
from typing import Any

from tapewatch.engine.api.observability import setup_logging
from tapewatch.engine.api.sessions import Root, run_headless
from tapewatch.engine.api.settings import Settings, TapewatchError, check_metrics, data_dir
from tapewatch.engine.api.storage import prepare_data_dir
from tapewatch.engine.api.types import Mode
from tapewatch.engine.api.wire import socket_path


def run_demo_headless(args: argparse.Namespace, settings: Settings) -> int:
    """Each demo run writes its own journal under ``demo/``: no writer lock to take."""
    warning = check_metrics(settings.metrics)  # before anything is built
    if warning:
        sys.stderr.write(f"tapewatch demo: {warning}\n")
    data = prepare_data_dir(settings.data_dir or data_dir(None))  # 0700
    root = Root(replace(settings, data_dir=data))
    session = root.demo()
    setup_logging(data)

    async def main() -> int:
        observers = root.observe(session.engine, headless=True)
        try:
            # Served like run --headless: 'tapewatch attach' can be tried offline.
            return await run_headless(
                session.engine,
                session.feed,
                serve_at=socket_path(data, Mode.DEMO),
                on_serving=_serving,
                serve_optional=True,  # a second demo on this data directory runs unserved
            )
        except TapewatchError as exc:
            sys.stderr.write(f"tapewatch demo: error: {exc}\n")
            return 2
        finally:
            observers.close()
            if session.journal is not None:
                session.journal.close()

    return asyncio.run(main())


def _serving(server: Any) -> None:
    print(
        f"serving the demo engine on {server.path}: 'tapewatch attach' opens the console on it",
        flush=True,
    )
