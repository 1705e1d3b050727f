"""tapewatch sweep: cells are plain backtests, the store answers reruns, the walk-forward
finds a planted regime change, seeded searches repeat, and bad flags are one line (exit 2).

One small LocalCluster (2 single-threaded worker processes) serves the whole module; the CLI
tests reach it through --scheduler, so no test starts a cluster of its own.
"""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Iterator
from dataclasses import replace
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tapewatch.console.cli import main
from tapewatch.engine.api.backtest import BarArrays, generate, run_backtest
from tapewatch.engine.research.executor import CellRunner, dask_client
from tapewatch.engine.research.heatmap import heat, text_heatmap
from tapewatch.engine.research.progress import ProgressLine, progress_text
from tapewatch.engine.research.space import apply, parse_grid, parse_span, toml_block
from tapewatch.engine.research.store import CellStore, cell_key, data_hash
from tapewatch.engine.research.sweep import CellRow, SweepPlan, run_sweep
from tapewatch.engine.research.windows import parse_walk_forward
from tapewatch.engine.settings.config import EngineConfig

BASE = EngineConfig().validate()


@pytest.fixture(scope="module")
def client() -> Iterator[Any]:
    with dask_client(workers=2) as c:
        yield c


@pytest.fixture(scope="module")
def bars() -> BarArrays:
    return generate("SPY", seed=11, start=date(2024, 1, 2), n_bars=3_000)


def _plain(config: EngineConfig, bars: BarArrays) -> dict[str, object]:
    report: dict[str, object] = json.loads(json.dumps(run_backtest(bars, config).report.as_dict()))
    return report


def test_a_sweeps_cells_equal_plain_backtests_and_invalid_cells_are_counted(
    client: Any, bars: BarArrays, tmp_path: Path
) -> None:
    plan = SweepPlan(
        axes=(
            parse_grid("rsi-period=1,7,14"),  # 1 is outside the field's range: skipped
            parse_grid("rsi-oversold=25,30,75"),  # 75 >= overbought 70: skipped
        )
    )
    result = run_sweep(bars, BASE, plan, CellRunner(client, bars, CellStore(tmp_path)))
    assert result.skipped == 3 + 2  # rsi-period=1 with every oversold; 75 with 7 and 14
    assert result.computed == 4 and result.from_store == 0
    assert len(result.rows) == 4
    for row in result.rows:
        assert row.report == _plain(apply(BASE, row.params), bars)
    scores = [r.score for r in result.rows]
    assert scores == sorted(scores, reverse=True)
    assert result.rows[0].score == result.rows[0].report["sharpe"]


def test_a_rerun_comes_from_the_store_and_no_cache_computes_again(
    client: Any, bars: BarArrays, tmp_path: Path
) -> None:
    plan = SweepPlan(axes=(parse_grid("rsi-period=7,14"), parse_grid("sma-period=20,50")))
    store = CellStore(tmp_path / "store")
    first = run_sweep(bars, BASE, plan, CellRunner(client, bars, store))
    again = run_sweep(bars, BASE, plan, CellRunner(client, bars, store))
    assert (first.computed, first.from_store) == (4, 0)
    assert (again.computed, again.from_store) == (0, 4)
    assert [r.as_dict() for r in again.rows] == [r.as_dict() for r in first.rows]
    uncached = run_sweep(bars, BASE, plan, CellRunner(client, bars, None))
    assert (uncached.computed, uncached.from_store) == (4, 0)
    # private: the folder 0700, the database 0600
    assert stat.S_IMODE(os.stat(tmp_path / "store").st_mode) == 0o700
    assert stat.S_IMODE(os.stat(store.path).st_mode) == 0o600


def test_the_bars_go_to_the_workers_once_for_the_whole_sweep(
    client: Any, bars: BarArrays, tmp_path: Path
) -> None:
    calls: list[int] = []

    class Counting:
        """The real client, counting what it scatters."""

        def __getattr__(self, name: str) -> Any:
            return getattr(client, name)

        def scatter(self, data: Any, **kwargs: Any) -> Any:
            calls.append(len(data))
            return client.scatter(data, **kwargs)

    plan = SweepPlan(
        axes=(parse_grid("rsi-period=7,14"),),
        walk_forward=parse_walk_forward("train=1000,test=500"),
    )
    result = run_sweep(bars, BASE, plan, CellRunner(Counting(), bars, CellStore(tmp_path)))
    assert result.walk is not None and len(result.walk.windows) == 4
    assert result.computed == 4 * 2 + 4  # each window's grid and its test run
    assert calls == [len(bars)]


def test_the_key_follows_the_settings_the_data_and_the_window(bars: BarArrays) -> None:
    other = generate("SPY", seed=12, start=date(2024, 1, 2), n_bars=3_000)
    key = cell_key(BASE, data_hash(bars), window=(0, 3_000), curve=False)
    assert key == cell_key(BASE, data_hash(bars), window=(0, 3_000), curve=False)
    assert key != cell_key(BASE, data_hash(other), window=(0, 3_000), curve=False)
    assert key != cell_key(
        apply(BASE, {"rsi-period": 7}), data_hash(bars), window=(0, 3_000), curve=False
    )
    assert key != cell_key(BASE, data_hash(bars), window=(0, 2_000), curve=False)
    changed = replace(BASE, execution=replace(BASE.execution, slippage_bps=1.0))
    assert key != cell_key(changed, data_hash(bars), window=(0, 3_000), curve=False)


def _regime_bars(n: int = 4_000) -> BarArrays:
    """Prices that climb for the first half and fall for the second (seeded noise): buying
    dips pays in the first half and loses in the second, where not trading is best."""
    stamps = generate("SPY", seed=1, start=date(2024, 1, 2), n_bars=n).ts_ns
    rng = np.random.default_rng(5)
    drift = np.where(np.arange(n) < n // 2, 0.0004, -0.0004)
    close = 100.0 * np.exp(np.cumsum(drift + rng.normal(0.0, 0.002, n)))
    open_ = np.concatenate(([100.0], close[:-1]))
    high = np.maximum(open_, close) * 1.0005
    low = np.minimum(open_, close) * 0.9995
    return BarArrays("SPY", stamps, open_, high, low, close, np.full(n, 1_000.0))


def test_a_walk_forward_finds_a_planted_regime_change(client: Any, tmp_path: Path) -> None:
    data = _regime_bars()
    plan = SweepPlan(
        axes=(parse_grid("rsi-oversold=5,45"),),
        walk_forward=parse_walk_forward("train=1000,test=500"),
    )
    base = apply(BASE, {"sma-period": 10})  # a short SMA: dips above it come in both regimes
    result = run_sweep(data, base, plan, CellRunner(client, data, CellStore(tmp_path)))
    walk = result.walk
    assert walk is not None
    starts = [w.window.test_start for w in walk.windows]
    assert starts == [1000, 1500, 2000, 2500, 3000, 3500]
    picks = {w.window.test_start: w.best.params["rsi-oversold"] for w in walk.windows}
    assert picks[1000] == 45.0 and picks[1500] == 45.0  # trained on the climb: trade the dips
    assert picks[3000] == 5.0 and picks[3500] == 5.0  # trained on the fall: stay out
    # trained on the climb, tested on the fall: the in-sample winner loses out of sample
    turn = next(w for w in walk.windows if w.window.test_start == 2000)
    assert float(turn.best.report["total_return"]) > 0  # type: ignore[arg-type]
    assert float(turn.out_of_sample["total_return"]) < 0  # type: ignore[arg-type]
    # the stitched test windows are the windows' returns chained
    chained = np.prod([1 + float(w.out_of_sample["total_return"]) for w in walk.windows]) - 1  # type: ignore[arg-type]
    assert walk.stitched["total_return"] == pytest.approx(chained, rel=1e-9, abs=1e-12)
    assert walk.stitched["bars"] == 3_000


def test_a_seeded_search_tries_the_same_cells(client: Any, bars: BarArrays, tmp_path: Path) -> None:
    plan = SweepPlan(
        spans=(parse_span("rsi-period=5:30"), parse_span("rsi-oversold=20:35")),
        search="tpe",
        trials=12,
        seed=3,
    )
    first = run_sweep(bars, BASE, plan, CellRunner(client, bars, CellStore(tmp_path)))
    again = run_sweep(bars, BASE, plan, CellRunner(client, bars, CellStore(tmp_path)))
    assert [r.params for r in again.rows] == [r.params for r in first.rows]
    assert again.computed == 0 and again.from_store == first.computed
    assert all(5 <= int(r.params["rsi-period"]) <= 30 for r in first.rows)


# ---------------------------------------------------------------------------- pieces


def test_the_progress_line_counts_cells_hits_rate_and_eta() -> None:
    assert progress_text(10, 30, 4, 6, 3.0) == (
        "[######--------------] 10/30 cells  4 from store  2.0 cells/s  ETA 0:10"
    )
    ticks = iter([100.0, 100.0, 102.0, 105.0])  # start, then one reading per line drawn

    class Sink(list[str]):
        def write(self, text: str) -> None:
            self.append(text)

        def flush(self) -> None:
            pass

    sink = Sink()
    line = ProgressLine(sink, in_place=False, clock=lambda: next(ticks))  # type: ignore[arg-type]
    line.plan(4)
    line.cell(from_store=True)
    line.cell(from_store=False)
    assert sink[-1] == "[##########----------] 2/4 cells  1 from store  0.2 cells/s  ETA 0:10\n"


def test_the_heat_map_keeps_the_best_score_per_square() -> None:
    rows = [
        CellRow({"a": a, "b": b, "c": c}, {}, a + b / 10 + c)
        for a in (7, 14)
        for b in (25.0, 30.0)
        for c in (0, 100)
    ]
    h = heat(rows, "a", "b")
    assert h.xs == (7, 14) and h.ys == (25.0, 30.0)
    assert h.values == ((109.5, 116.5), (110.0, 117.0))
    text = text_heatmap(h, color=False)
    assert "b (rows) x a (columns)" in text and "117.00@" in text


def test_the_best_parameters_paste_into_config_toml(tmp_path: Path) -> None:
    block = toml_block({"rsi-period": 7, "rsi-oversold": 25.0, "slippage-bps": 2.5})
    assert (
        block == "[strategy]\nrsi_period = 7\nrsi_oversold = 25\n\n[execution]\nslippage_bps = 2.5"
    )
    from tapewatch.engine.api.settings import load_config_file

    path = tmp_path / "config.toml"
    path.write_text(block + "\n")
    loaded = load_config_file(path).engine
    assert loaded.strategy.rsi_period == 7 and loaded.execution.slippage_bps == 2.5


# ---------------------------------------------------------------------------- the command


def _address(client: Any) -> str:
    return str(client.scheduler.address)


def test_the_command_prints_the_table_heat_map_and_block_then_hits_the_store(
    client: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = [
        "sweep",
        "--bars",
        "2000",
        "--grid",
        "rsi-period=7,14",
        "--grid",
        "rsi-oversold=25,30",
        "--scheduler",
        _address(client),
        "--cache-dir",
        str(tmp_path / "cache"),
    ]
    assert main([*argv, "--json"]) == 0
    first = json.loads(capsys.readouterr().out)
    assert (first["computed"], first["from_store"], first["skipped"]) == (4, 0, 0)
    assert first["best"] == first["cells"][0]["params"]
    html = tmp_path / "sweep.html"
    assert main([*argv, "--html", str(html)]) == 0
    text = capsys.readouterr().out
    assert "0 computed, 4 from the store" in text
    assert "rsi-oversold (rows) x rsi-period (columns)" in text
    assert "[strategy]\nrsi_period = " in text
    page = html.read_text()
    assert page.count("data-value=") == 4 and "<script" not in page and "http" not in page


def test_the_config_files_sweep_scheduler_is_used(
    client: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "config.toml"
    config.write_text(f'[sweep]\nscheduler = "{_address(client)}"\n')
    code = main(
        [
            "--config",
            str(config),
            "sweep",
            "--bars",
            "1500",
            "--grid",
            "rsi-period=7,14",
            "--no-cache",
            "--json",
        ]
    )
    assert code == 0
    assert json.loads(capsys.readouterr().out)["computed"] == 2
    config.write_text("[sweep]\nscheduler = 8786\n")
    assert main(["--config", str(config), "sweep", "--bars", "100", "--grid", "rsi-period=7"]) == 2
    err = capsys.readouterr().err.strip()
    assert "sweep.scheduler" in err and "\n" not in err


@pytest.mark.parametrize(
    ("flags", "words"),
    [
        (["--grid", "rsi-period=7,x"], "'x' is not a whole number"),
        (["--grid", "colour=1,2"], "'colour' is not a strategy, execution or risk setting"),
        (["--grid", "rsi-period"], "is not NAME=VALUES"),
        (["--grid", "rsi-method=sma,median"], "'median' is not one of sma, wilder"),
        (["--search", "tpe", "--range", "rsi-period=5:30"], "needs --trials N"),
        (["--range", "rsi-period=5:30"], "--range is for --search"),
        (["--search", "random", "--trials", "5", "--range", "rsi-period=30:5"], "must be below"),
        ([], "give --grid NAME=V1,V2"),
        (["--grid", "rsi-period=7", "--walk-forward", "train=6M"], "needs both train= and test="),
        (["--grid", "rsi-period=7", "--walk-forward", "train=6M,test=100"], "same kind"),
        (["--grid", "rsi-period=7", "--scheduler", "http://host:1"], "is not a Dask address"),
        (["--grid", "rsi-period=7", "--heatmap", "rsi-period,sma-period"], "is not swept"),
        (["--grid", "rsi-period=7", "--grid", "rsi-period=9"], "given twice"),
        (["--grid", "rsi-period=7", "--objective", "luck"], "invalid choice"),
    ],
)
def test_bad_flags_are_one_line_and_exit_2(
    flags: list[str], words: str, capsys: pytest.CaptureFixture[str]
) -> None:
    try:
        code = main(["sweep", "--bars", "100", *flags])
    except SystemExit as stop:  # argparse's own refusals (a bad choice) exit from the parser
        code = stop.code  # type: ignore[assignment]
    assert code == 2
    err = capsys.readouterr().err.strip()
    assert words in err and "\n" not in err, err


def test_a_stored_cell_is_stamped_by_the_injected_clock(tmp_path: Path) -> None:
    import sqlite3
    from datetime import UTC, datetime

    from tapewatch.engine.core.clock import SimClock

    when = datetime(2026, 3, 2, 15, 0, tzinfo=UTC)
    store = CellStore(tmp_path, clock=SimClock(when))
    store.put("k", {"rsi_period": 14}, {"sharpe": 1.0})
    store.close()
    with sqlite3.connect(tmp_path / "cells.sqlite3") as db:
        (created,) = db.execute("SELECT created FROM cells WHERE key = 'k'").fetchone()
    assert created == when.timestamp()
