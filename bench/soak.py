"""The long soak: the reliability suite's seeded week-with-faults loop, for as long as asked.

The sandbox fast-forwards nights and weekends, so ten minutes of wall time replay weeks of
market minutes, each of them with seeded random faults (REST errors, latency, lost order
responses, dropped / muted / refused sockets, held fills, revoked keys, late corrections,
market halts, partial fills, POST answers that arrive after the fill), with fills that take a
few market minutes. Prints the same one line as ``tests/reliability/test_soak.py`` — orders,
faults, the largest exposure seen as a multiple of one entry, duplicate orders, fills missing
from the journal — and exits 1 if exposure went above one entry, an order was sent twice, or a
fill or journal record was lost.

    python bench/soak.py --duration 10m [--seed 1] [--bar-interval 0.01] [--keep DIR]
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import re
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.reliability.soak_helpers import soak

_UNITS = {"s": 1.0, "m": 60.0, "h": 3600.0}


def seconds(text: str) -> float:
    """``90``, ``90s``, ``10m`` or ``2h`` in seconds."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smh]?)\s*", text)
    if match is None:
        raise argparse.ArgumentTypeError(f"not a duration: {text!r} (try 90s, 10m or 1h)")
    return float(match.group(1)) * _UNITS[match.group(2) or "s"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench/soak.py", description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=seconds, default=600.0, help="e.g. 90s, 10m, 1h")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--bar-interval", type=float, default=0.01, help="real s per minute")
    parser.add_argument("--keep", type=Path, help="keep the journal in this folder")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.CRITICAL)  # the faults are expected; the line says it all
    with tempfile.TemporaryDirectory() as scratch:
        folder = args.keep or Path(scratch)
        result = asyncio.run(
            soak(
                folder,
                seed=args.seed,
                duration=args.duration,
                bar_interval=args.bar_interval,
                market_minutes=None,
            )
        )
    print(result.line(), flush=True)
    for problem in result.problems[:20]:
        print(f"  {problem}", file=sys.stderr)
    clean = result.duplicates == 0 and result.lost == 0 and result.missing_fills == 0
    return 0 if clean and result.max_exposure <= 1.0 + 1e-9 and not result.problems else 1


if __name__ == "__main__":
    sys.exit(main())
