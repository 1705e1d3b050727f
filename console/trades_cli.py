"""``tapewatch trades``: the fills a journal recorded, as a table or JSON Lines, for the records.

Safe beside a running session (the journal is only read, see engine.trades). ``--json`` prints
JSON Lines: one object per fill, in journal order, nothing at all when there are none, so the
output appends to a file and streams into ``jq``. Numbers are the journaled values printed
shortest-exact (``repr``): 0.1 stays 0.1, never 0.1000000000000000055.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

USAGE_ERROR = 2
PROG = "tapewatch trades"
HEADERS = ("time (UTC)", "client order id", "symbol", "side", "qty", "price", "fee")

DESCRIPTION = (
    "Print the fills recorded in a journal: client order id, symbol, side, quantity, price, "
    "time and fee, exactly as journaled. The journal is opened read-only, so this is safe while "
    "a session runs. Which journal: --journal FILE, else <data dir>/<mode>/journal.sqlite3 "
    "(--mode demo: the newest demo run's journal). --json prints JSON Lines, one object per "
    "fill with the keys time, order_id, client_order_id, symbol, side, qty, price, fee."
)


def add_trades_command(subparsers: Any, date_type: Callable[[str], date]) -> None:
    """Register ``trades`` (the CLI maps "trades" to ``cmd_trades``); cheap: no engine import."""
    trades: argparse.ArgumentParser = subparsers.add_parser(
        "trades",
        help="the fills recorded in the journal, for your records",
        description=DESCRIPTION,
    )
    trades.add_argument(
        "--json", action="store_true", help="JSON Lines (one object per fill) instead of a table"
    )
    trades.add_argument(
        "--since",
        type=date_type,
        metavar="DATE",
        help="only fills on or after this trading day, YYYY-MM-DD (New York date)",
    )
    trades.add_argument(
        "--mode",
        choices=("paper", "live", "demo"),
        default="paper",
        help="whose journal: paper (default), live, or the newest demo run",
    )
    trades.add_argument(
        "--journal", type=Path, metavar="FILE", help="read this journal file instead"
    )
    trades.add_argument(
        "--data-dir",
        help="where the journals live (default: $TAPEWATCH_DATA_DIR or XDG data dir)",
    )


def number(value: float) -> str:
    """Shortest text that reads back as exactly ``value``; whole numbers without ".0"."""
    if value.is_integer() and abs(value) < 1e16:
        return str(int(value))
    return repr(value)


def _error(message: str) -> int:
    from tapewatch.console.cli import one_line

    sys.stderr.write(one_line(f"{PROG}: error: {message}") + "\n")
    return USAGE_ERROR


def _journal(args: argparse.Namespace) -> Path | str:
    """The journal to read, or the one-line reason there is none."""
    from tapewatch.engine.api.settings import data_dir
    from tapewatch.engine.api.storage import journal_for

    if args.journal is not None:
        path: Path = args.journal.expanduser()
        if not path.is_file():
            what = "is a folder" if path.is_dir() else "does not exist"
            return f"--journal {path} {what}; name a journal.sqlite3 file"
        return path
    folder = data_dir(args.data_dir)
    found = journal_for(folder, args.mode)
    if found is None:
        where = folder / "demo" if args.mode == "demo" else folder / args.mode
        return (
            f"no {args.mode} journal under {where}: nothing has traded there yet; "
            "pass --data-dir DIR or --mode paper|live|demo, or --journal FILE"
        )
    return found


def as_json(fill: Any) -> str:
    return json.dumps(
        {
            "time": fill.ts.isoformat(),
            "order_id": fill.order_id,
            "client_order_id": fill.client_order_id,
            "symbol": fill.symbol,
            "side": fill.side.value,
            "qty": fill.qty,
            "price": fill.price,
            "fee": fill.fee,
        }
    )


def table(fills: list[Any]) -> str:
    from datetime import UTC

    rows = [
        (
            fill.ts.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S"),
            fill.client_order_id,
            fill.symbol,
            fill.side.value,
            number(fill.qty),
            number(fill.price),
            number(fill.fee),
        )
        for fill in fills
    ]
    widths = [max(len(row[i]) for row in (HEADERS, *rows)) for i in range(len(HEADERS))]
    numeric = {4, 5, 6}

    def line(cells: tuple[str, ...]) -> str:
        return "  ".join(
            c.rjust(w) if i in numeric else c.ljust(w)
            for i, (c, w) in enumerate(zip(cells, widths, strict=True))
        ).rstrip()

    return "\n".join([line(HEADERS), *(line(row) for row in rows)])


def cmd_trades(args: argparse.Namespace) -> int:
    from tapewatch.engine.api.errors import JournalError
    from tapewatch.engine.api.storage import read_fills

    path = _journal(args)
    if isinstance(path, str):
        return _error(path)
    try:
        fills = read_fills(path, since=args.since)
    except JournalError as exc:
        return _error(str(exc))
    if args.json:
        for fill in fills:
            print(as_json(fill))
        return 0
    if not fills:
        since = f" since {args.since}" if args.since else ""
        print(f"no fills{since} in {path}")
        return 0
    print(table(fills))
    return 0
