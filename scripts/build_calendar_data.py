"""Regenerate ``engine/market/data/xnys_sessions.npz`` from exchange-calendars' XNYS schedule.

The engine answers market-hours questions from that shipped table so the offline demo never
imports pandas. Run this after changing the pinned exchange-calendars version (the calendar
tests fail until you do), from the repository root:

    python scripts/build_calendar_data.py            # write the file
    python scripts/build_calendar_data.py --check    # exit 1 if the file is missing or stale

The output is byte-for-byte reproducible for a given exchange-calendars version.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run as a plain script from a checkout
    sys.path.insert(0, str(ROOT))

from tapewatch.engine.market.calendar import EARLIEST, LATEST  # noqa: E402
from tapewatch.engine.market.calendar_data import encode_table, from_exchange_calendars  # noqa: E402

DEFAULT_OUT = ROOT / "engine" / "market" / "data" / "xnys_sessions.npz"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="where to write the table")
    parser.add_argument(
        "--check", action="store_true", help="compare with the existing file instead of writing"
    )
    args = parser.parse_args(argv)
    table = from_exchange_calendars(EARLIEST, LATEST)
    data = encode_table(table)
    span = f"{len(table)} sessions {EARLIEST}..{LATEST} from {table.source}"
    out: Path = args.out
    if args.check:
        if not out.is_file() or out.read_bytes() != data:
            print(f"{out} is missing or stale: run python {Path(__file__).name}", file=sys.stderr)
            return 1
        print(f"{out} is up to date ({span})")
        return 0
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(data)
    print(f"wrote {out} ({len(data):,} bytes, {span})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
