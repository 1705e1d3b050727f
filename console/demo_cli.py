"""``tapewatch demo --headless``: the offline demo without a screen."""

from __future__ import annotations

import argparse
import asyncio
import sys
from dataclasses import replace

from tapewatch.engine.api.observability import setup_logging
from tapewatch.engine.api.sessions import Root, run_headless
from tapewatch.engine.api.settings import Settings, check_metrics, data_dir
from tapewatch.engine.api.storage import prepare_data_dir


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
            return await run_headless(session.engine, session.feed)
        finally:
            observers.close()
            if session.journal is not None:
                session.journal.close()

    return asyncio.run(main())
