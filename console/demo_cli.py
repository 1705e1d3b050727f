"""``tapewatch demo --headless``: the offline demo without a screen."""

from __future__ import annotations

import argparse
import asyncio

from engine.config import EngineConfig, data_dir
from engine.headless import run_headless
from engine.wiring import DemoOptions, build_demo


def run_demo_headless(args: argparse.Namespace, config: EngineConfig) -> int:
    options = DemoOptions(seed=args.seed, speed=args.speed)
    session = build_demo(config, options, data_dir=data_dir(args.data_dir))

    async def main() -> int:
        try:
            return await run_headless(session.engine, session.feed)
        finally:
            if session.journal is not None:
                session.journal.close()

    return asyncio.run(main())
