"""``tapewatch demo --headless``: the offline demo without a screen."""

from __future__ import annotations

import argparse
import asyncio
import sys

from console.instrument import instrument
from console.observability_cli import check_metrics_args
from engine.config import EngineConfig, data_dir
from engine.datadir import prepare_data_dir
from engine.headless import run_headless
from engine.logs import setup_logging
from engine.wiring import DemoOptions, build_demo


def run_demo_headless(args: argparse.Namespace, config: EngineConfig) -> int:
    """Each demo run writes its own journal under ``demo/``: no writer lock to take."""
    warning = check_metrics_args(args)  # before anything is built
    if warning:
        sys.stderr.write(f"tapewatch demo: {warning}\n")
    options = DemoOptions(seed=args.seed, speed=args.speed)
    data = prepare_data_dir(data_dir(args.data_dir))  # 0700
    session = build_demo(config, options, data_dir=data)
    setup_logging(data)

    async def main() -> int:
        instruments = instrument(session.engine, data, args)
        try:
            return await run_headless(session.engine, session.feed)
        finally:
            instruments.close()
            if session.journal is not None:
                session.journal.close()

    return asyncio.run(main())
