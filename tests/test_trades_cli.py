"""``tapewatch trades``: the journal's fills as a table or JSON Lines, exact numbers, --since by
New York trading day, read-only beside a running writer, one-line errors."""

from __future__ import annotations

import hashlib
import json
import sqlite3
import subprocess
import sys
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tapewatch.console.cli import main
from tapewatch.console.trades_cli import HEADERS
from tapewatch.engine.model.events import OrderFilled
from tapewatch.engine.model.types import Fill, Mode, Order, OrderStatus, Side
from tapewatch.engine.settings.config import ExecutionConfig
from tapewatch.engine.storage.journal import Journal
from tapewatch.engine.storage.trades import journal_for, read_fills
from tests.helpers import bars_from_closes, feed_bars, make_engine, small_config

ENTRY = [100, 101, 102, 103, 104, 110, 109.5, 109, 108.8]  # tests/engine/test_engine.py: BUY
EXIT = [109.6, 110.4, 111.0]  # then SELL


@pytest.fixture(autouse=True)
def _no_user_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.delenv("TAPEWATCH_CONFIG", raising=False)
    monkeypatch.setenv("TAPEWATCH_DATA_DIR", str(tmp_path / "default-data"))


def run_main(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    try:
        code = main(argv)
    except SystemExit as exc:
        code = int(exc.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


async def traded_journal(path: Path) -> list[Fill]:
    """A round trip by the real engine on a SimBroker, journaled to ``path``; its fills."""
    config = replace(small_config(), execution=ExecutionConfig(commission_per_order=1.25))
    journal = Journal(path)
    engine, _broker, clock = make_engine(config.validate(), journal=journal, mode=Mode.PAPER)
    await engine.start()
    await feed_bars(engine, clock, bars_from_closes([*ENTRY, *EXIT, 111.5]))
    fills = [e.fill for _, e in journal.events(kinds={"fill"}) if isinstance(e, OrderFilled)]
    journal.close()
    assert [f.side for f in fills] == [Side.BUY, Side.SELL]
    return fills


def fill_event(cid: str, qty: float, price: float, ts: datetime, fee: float = 0.0) -> OrderFilled:
    fill = Fill(f"o-{cid}", cid, "SPY", Side.BUY, qty, price, fee, ts)
    order = Order(f"o-{cid}", cid, "SPY", Side.BUY, qty, OrderStatus.FILLED, qty, price, ts)
    return OrderFilled(ts=ts, fill=fill, order=order)


def crafted_journal(path: Path) -> None:
    """Fills on three New York days, one of them after 8 pm (already the next day in UTC)."""
    with Journal(path) as journal:
        journal.append(fill_event("a", 0.1 + 0.2, 412.37, datetime(2024, 3, 4, 15, 0, tzinfo=UTC)))
        journal.append(fill_event("b", 8.82, 0.1, datetime(2024, 3, 6, 1, 30, tzinfo=UTC), 0.01))
        journal.append(fill_event("c", 3.0, 100.0, datetime(2024, 3, 6, 15, 0, tzinfo=UTC)))


def paper_journal(data: Path) -> Path:
    path = data / "paper" / "journal.sqlite3"
    path.parent.mkdir(parents=True)
    return path


async def test_the_table_lists_every_journaled_fill_exactly(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = tmp_path / "data"
    fills = await traded_journal(paper_journal(data))
    code, out, err = run_main(["trades", "--data-dir", str(data)], capsys)
    assert (code, err) == (0, "")
    header, *rows = out.splitlines()
    assert header.split("  ")[0] == HEADERS[0] and "client order id" in header
    assert len(rows) == len(fills) == 2
    for row, fill in zip(rows, fills, strict=True):
        day, clock, cid, symbol, side, qty, price, fee = row.split()
        assert f"{day} {clock}" == fill.ts.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")
        assert (cid, symbol, side) == (fill.client_order_id, "SPY", fill.side.value)
        assert float(qty) == fill.qty and float(price) == fill.price  # exact, not rounded
        assert float(fee) == fill.fee == 1.25


async def test_json_lines_carry_every_field_exactly(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = tmp_path / "data"
    fills = await traded_journal(paper_journal(data))
    code, out, err = run_main(["trades", "--json", "--data-dir", str(data)], capsys)
    assert (code, err) == (0, "")
    records = [json.loads(line) for line in out.splitlines()]
    assert records == [
        {
            "time": f.ts.isoformat(),
            "order_id": f.order_id,
            "client_order_id": f.client_order_id,
            "symbol": f.symbol,
            "side": f.side.value,
            "qty": f.qty,
            "price": f.price,
            "fee": f.fee,
        }
        for f in fills
    ]


def test_numbers_are_printed_shortest_exact_without_float_noise(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = tmp_path / "data"
    crafted_journal(paper_journal(data))
    code, out, _ = run_main(["trades", "--data-dir", str(data)], capsys)
    assert code == 0
    rows = [line.split() for line in out.splitlines()[1:]]
    assert [r[5:] for r in rows] == [
        ["0.30000000000000004", "412.37", "0"],  # the journaled double, exactly
        ["8.82", "0.1", "0.01"],
        ["3", "100", "0"],
    ]
    code, out, _ = run_main(["trades", "--json", "--data-dir", str(data)], capsys)
    assert '"qty": 8.82, "price": 0.1, "fee": 0.01' in out
    assert [json.loads(line)["qty"] for line in out.splitlines()] == [0.1 + 0.2, 8.82, 3.0]


@pytest.mark.parametrize(
    ("since", "ids"),
    [
        ("2024-03-04", ["a", "b", "c"]),
        ("2024-03-05", ["b", "c"]),  # b filled 2024-03-05 20:30 New York (03-06 in UTC)
        ("2024-03-06", ["c"]),
        ("2024-03-07", []),
    ],
)
def test_since_keeps_fills_from_that_new_york_trading_day_on(
    since: str, ids: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = tmp_path / "data"
    crafted_journal(paper_journal(data))
    code, out, err = run_main(
        ["trades", "--json", "--since", since, "--data-dir", str(data)], capsys
    )
    assert (code, err) == (0, "")
    assert [json.loads(line)["client_order_id"] for line in out.splitlines()] == ids
    code, out, _ = run_main(["trades", "--since", since, "--data-dir", str(data)], capsys)
    assert code == 0
    if ids:
        assert [line.split()[2] for line in out.splitlines()[1:]] == ids
    else:
        assert out == f"no fills since {since} in {data / 'paper' / 'journal.sqlite3'}\n"


def test_modes_and_an_explicit_journal_pick_their_own_files(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    data = tmp_path / "data"
    crafted_journal(paper_journal(data))
    (data / "demo").mkdir()
    old, new = (
        data / "demo" / "journal-seed7-20240101T000000.sqlite3",
        data / "demo" / ("journal-seed7-20240102T000000.sqlite3"),
    )
    with Journal(old) as journal:
        journal.append(fill_event("old", 1.0, 1.0, datetime(2024, 1, 1, 15, tzinfo=UTC)))
    with Journal(new) as journal:
        journal.append(fill_event("new", 2.0, 2.0, datetime(2024, 1, 2, 15, tzinfo=UTC)))

    def ids(argv: list[str]) -> list[str]:
        code, out, err = run_main(["trades", "--json", *argv], capsys)
        assert (code, err) == (0, "")
        return [json.loads(line)["client_order_id"] for line in out.splitlines()]

    assert ids(["--data-dir", str(data), "--mode", "demo"]) == ["new"]  # the newest demo run
    assert ids(["--data-dir", str(data)]) == ["a", "b", "c"]  # paper by default
    assert ids(["--journal", str(old)]) == ["old"]
    monkeypatch.setenv("TAPEWATCH_DATA_DIR", str(data))
    assert ids([]) == ["a", "b", "c"]


def test_the_layout_is_the_one_the_engine_writes(tmp_path: Path) -> None:
    from tapewatch.engine.root.demo import demo_journal_path
    from tapewatch.engine.root.live import journal_path

    for mode in (Mode.PAPER, Mode.LIVE):
        path = journal_path(tmp_path, mode)
        path.parent.mkdir(parents=True)
        Journal(path).close()
        assert journal_for(tmp_path, mode.value.lower()) == path
    demo = demo_journal_path(tmp_path, 7)
    demo.parent.mkdir(parents=True)
    Journal(demo).close()
    assert journal_for(tmp_path, "demo") == demo


def test_no_fills_is_a_line_on_stdout_and_empty_json(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = tmp_path / "data"
    Journal(paper_journal(data)).close()
    code, out, err = run_main(["trades", "--data-dir", str(data)], capsys)
    assert (code, err) == (0, "")
    assert out == f"no fills in {data / 'paper' / 'journal.sqlite3'}\n"
    code, out, err = run_main(["trades", "--json", "--data-dir", str(data)], capsys)
    assert (code, out, err) == (0, "", "")


def _one_error(code: int, out: str, err: str) -> str:
    assert code == 2 and out == ""
    (line,) = err.splitlines()
    assert "Traceback" not in err
    return line


def test_no_journal_is_one_line_naming_where_it_looked(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = tmp_path / "empty"
    data.mkdir()
    line = _one_error(*run_main(["trades", "--data-dir", str(data)], capsys))
    assert str(data / "paper") in line and "--data-dir" in line
    line = _one_error(*run_main(["trades", "--data-dir", str(data), "--mode", "live"], capsys))
    assert str(data / "live") in line
    line = _one_error(*run_main(["trades", "--data-dir", str(data), "--mode", "demo"], capsys))
    assert str(data / "demo") in line
    assert sorted(data.iterdir()) == []  # looking created nothing
    line = _one_error(*run_main(["trades", "--journal", str(data / "nope.sqlite3")], capsys))
    assert "--journal" in line and "nope.sqlite3" in line
    line = _one_error(*run_main(["trades", "--journal", str(data)], capsys))
    assert "--journal" in line and "folder" in line


def test_a_file_that_is_not_a_journal_is_one_line_and_left_alone(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    garbage = tmp_path / "garbage.sqlite3"
    garbage.write_bytes(b"this is not SQLite at all" * 100)
    other = tmp_path / "other.sqlite3"
    with sqlite3.connect(other) as conn:
        conn.execute("CREATE TABLE t (x)")
    newer = tmp_path / "newer.sqlite3"
    Journal(newer).close()
    with sqlite3.connect(newer) as conn:
        conn.execute("UPDATE meta SET value = '99' WHERE key = 'schema_version'")
    for path, needle in ((garbage, "corrupt"), (other, "not a tapewatch journal"), (newer, "99")):
        before = hashlib.sha256(path.read_bytes()).hexdigest()
        line = _one_error(*run_main(["trades", "--journal", str(path)], capsys))
        assert needle in line and str(path) in line
        assert hashlib.sha256(path.read_bytes()).hexdigest() == before


WRITER = """
import sqlite3, sys
from datetime import UTC, datetime
from pathlib import Path
from tapewatch.engine.model.events import OrderFilled
from tapewatch.engine.storage.journal import Journal
from tapewatch.engine.model.types import Fill, Order, OrderStatus, Side
from tapewatch.engine.storage.writer_lock import WriterLock
path = Path(sys.argv[1])
lock = WriterLock.acquire(path.parent)  # the running session's one-writer lock
journal = Journal(path)
ts = datetime(2024, 3, 4, 15, tzinfo=UTC)
fill = Fill("o-1", "committed", "SPY", Side.BUY, 5.5, 10.25, 0.0, ts)
order = Order("o-1", "committed", "SPY", Side.BUY, 5.5, OrderStatus.FILLED, 5.5, 10.25, ts)
journal.append(OrderFilled(ts=ts, fill=fill, order=order))
pending = sqlite3.connect(path, isolation_level=None)  # a write in progress, not committed
pending.execute("BEGIN IMMEDIATE")
pending.execute("INSERT INTO events (ts, kind, payload) VALUES ('x', 'fill', '{}')")
print("ready", flush=True)
sys.stdin.readline()
"""


def test_it_reads_while_another_process_holds_the_lock_and_a_write_transaction(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = tmp_path / "data"
    path = paper_journal(data)
    root = Path(__file__).resolve().parent.parent
    writer = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(path)],
        cwd=root,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert writer.stdout is not None and writer.stdout.readline() == "ready\n"
        code, out, err = run_main(["trades", "--json", "--data-dir", str(data)], capsys)
        assert (code, err) == (0, "")
        (record,) = [json.loads(line) for line in out.splitlines()]
        assert (record["client_order_id"], record["qty"], record["price"]) == (
            "committed",
            5.5,
            10.25,
        )
    finally:
        assert writer.stdin is not None
        writer.stdin.write("\n")
        writer.stdin.close()
        writer.wait(timeout=30)
    assert writer.returncode == 0
    assert [f.client_order_id for f in read_fills(path)] == ["committed"]


def test_reading_never_changes_the_journal(tmp_path: Path) -> None:
    path = tmp_path / "j.sqlite3"
    crafted_journal(path)
    before = hashlib.sha256(path.read_bytes()).hexdigest()
    assert len(read_fills(path)) == 3
    assert hashlib.sha256(path.read_bytes()).hexdigest() == before
    with Journal(path) as journal:  # the writer can still open and append afterwards
        journal.append(fill_event("d", 1.0, 1.0, datetime(2024, 3, 7, 15, tzinfo=UTC)))
    assert [f.client_order_id for f in read_fills(path)] == ["a", "b", "c", "d"]
