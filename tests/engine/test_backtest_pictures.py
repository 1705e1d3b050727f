"""Pictures of a backtest: the rebuilt curves agree with the report, the terminal plot has its
titles, dates and legend at a fixed size, the HTML page is self-contained with one series per
compared run and monthly returns that compound to the report's total return, and --json stays
byte for byte the report whatever --plot says."""

from __future__ import annotations

import json
import math
import re
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from tapewatch.console.cli import main
from tapewatch.engine.backtest.curves import fill_bar, monthly_returns, rebuild
from tapewatch.engine.backtest.html_report import html_report
from tapewatch.engine.backtest.plots import DRAWDOWN_TITLE, EQUITY_TITLE, terminal_plot
from tapewatch.engine.backtest.runner import run_backtest, with_thresholds
from tapewatch.engine.market.bars import BarArrays, ns_from_datetime
from tapewatch.engine.market.synthetic import generate
from tapewatch.engine.model.types import Fill, Side
from tapewatch.engine.settings.config import EngineConfig, StrategyConfig

CONFIG = EngineConfig(strategy=StrategyConfig(rsi_period=2)).validate()
PAIRS = ((70.0, 30.0), (60.0, 40.0))
SYNTHETIC = ["backtest", "--start", "2024-01-02", "--end", "2024-03-29", "--rsi-period", "2"]


@pytest.fixture(scope="module")
def bars() -> BarArrays:
    return generate("SPY", seed=7, start=date(2024, 1, 2), end=date(2024, 3, 29))


def _runs(bars: BarArrays) -> tuple[list[object], list[object]]:
    reports, curves = [], []
    for hi, lo in PAIRS:
        config = with_thresholds(CONFIG, hi, lo)
        result = run_backtest(bars, config)
        reports.append(result.report)
        curves.append(rebuild(f"{hi:g}/{lo:g}", bars, result.fills, config.starting_cash, 300))
    return reports, curves


def test_rebuilt_curves_agree_with_the_report(bars: BarArrays) -> None:
    reports, curves = _runs(bars)
    for report, run in zip(reports, curves, strict=True):
        assert report.trades > 10  # type: ignore[attr-defined]
        assert run.equity[-1] == pytest.approx(report.end_equity, rel=1e-12)  # type: ignore[attr-defined]
        assert -run.drawdown.min() == pytest.approx(report.max_drawdown, rel=1e-9)  # type: ignore[attr-defined]
        months = monthly_returns(run)
        assert [m.month for m in months] == ["2024-01", "2024-02", "2024-03"]
        compounded = math.prod(1.0 + m.value for m in months) - 1.0
        assert compounded == pytest.approx(report.total_return, rel=1e-9)  # type: ignore[attr-defined]


def test_terminal_plot_has_titles_dates_legend_at_a_fixed_size(bars: BarArrays) -> None:
    _, curves = _runs(bars)
    text = terminal_plot(curves, width=100, height=30)  # type: ignore[arg-type]
    lines = text.splitlines()
    assert len(lines) == 30 and max(len(line) for line in lines) == 100
    assert EQUITY_TITLE in lines[0] and sum(DRAWDOWN_TITLE in line for line in lines) == 1
    assert text.count("2024-01-02") == 2  # the first date under each chart
    assert "70/30" in text and "60/40" in text  # the legend names each compared run
    assert "\x1b[" not in text  # colourless unless asked…
    assert "+ 60/40" in text  # …so the second run is drawn (and named) with its own marker
    assert "\x1b[" in terminal_plot(curves, width=100, height=30, color=True)  # type: ignore[arg-type]
    single = terminal_plot(curves[:1], width=80, height=24)  # type: ignore[arg-type]
    assert "70/30" not in single and len(single.splitlines()) == 24


def _html(path: Path) -> str:
    return path.read_text(encoding="utf-8")


def test_html_report_is_self_contained_with_one_series_per_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    page = tmp_path / "report.html"
    argv = [*SYNTHETIC, "--compare", "70/30,60/40", "--json"]
    assert main([*argv, "--html", str(page)]) == 0
    reports = json.loads(capsys.readouterr().out)["compare"]
    text = _html(page)
    assert text.startswith("<!DOCTYPE html>")
    assert not re.search(r"https?:", text) and "<script" not in text and "<link" not in text
    assert " src=" not in text and "url(" not in text
    for kind in ("equity", "drawdown"):
        runs = re.findall(rf'class="series {kind}" data-run="([^"]+)"', text)
        assert runs == ["70/30", "60/40"]
    assert len(re.findall(r'class="series price"', text)) == 1
    for report, label in zip(reports, ("70/30", "60/40"), strict=True):
        marks = re.findall(rf'class="trade (buy|sell)" data-run="{label}"', text)
        assert marks.count("sell") == report["trades"] > 10  # one sell closes each round trip
        assert marks.count("buy") - report["trades"] in (0, 1)  # and one may still be open
        cells = re.findall(rf'data-run="{label}" data-month="([0-9-]+)" data-value="([^"]+)"', text)
        assert [m for m, _ in cells] == ["2024-01", "2024-02", "2024-03"]
        compounded = math.prod(1.0 + float(v) for _, v in cells) - 1.0
        assert compounded == pytest.approx(report["total_return"], rel=1e-9)


def test_html_report_needs_one_report_per_run(bars: BarArrays) -> None:
    reports, curves = _runs(bars)
    with pytest.raises(ValueError):
        html_report(bars, reports[:1], curves)  # type: ignore[arg-type]


def test_json_is_byte_identical_with_plot_and_html(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main([*SYNTHETIC, "--json"]) == 0
    plain = capsys.readouterr().out
    assert main([*SYNTHETIC, "--json", "--plot", "--html", str(tmp_path / "r.html")]) == 0
    assert capsys.readouterr().out == plain


def test_plot_flag_draws_under_the_table_and_no_plot_leaves_it_out(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main([*SYNTHETIC, "--no-plot"]) == 0
    table = capsys.readouterr().out
    assert EQUITY_TITLE not in table
    assert main([*SYNTHETIC, "--plot"]) == 0  # stdout is not a terminal here: 100 columns
    plotted = capsys.readouterr().out
    assert plotted.startswith(table.rstrip("\n"))
    picture = plotted[len(table) :].strip("\n").splitlines()
    assert EQUITY_TITLE in picture[0] and len(picture) == 30
    assert main(SYNTHETIC) == 0  # not a terminal and no flag: the table only
    assert capsys.readouterr().out == table


def test_html_into_a_missing_folder_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main([*SYNTHETIC, "--html", str(tmp_path / "nope" / "r.html")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--html" in err


def test_a_fill_is_placed_in_its_bar_whether_stamped_at_the_open_or_the_bar_end() -> None:
    """The fill priced at bar 2's open: stamped 10:10 (its open, the convention now) or 10:15
    (the bar's end, the one before) or a millisecond later, it belongs to bar 2."""
    start = datetime(2024, 3, 1, 15, 0, tzinfo=UTC)
    stamps = [start + timedelta(minutes=5 * i) for i in range(4)]
    opens = [100.0, 101.0, 103.0, 102.0]
    bars = BarArrays(
        "SPY", [ns_from_datetime(s) for s in stamps], opens, opens, opens, opens, opens
    )
    for when in (stamps[2], stamps[3], stamps[3] + timedelta(milliseconds=1)):
        fill = Fill("o", "c", "SPY", Side.BUY, 1.0, 103.01, 0.0, when)
        assert fill_bar(bars, fill, 300) == 2, when
    gap = BarArrays("SPY", [ns_from_datetime(s) for s in (stamps[0], stamps[3])], *[opens[:2]] * 5)
    late = Fill("o", "c", "SPY", Side.SELL, 1.0, 100.99, 0.0, stamps[3])  # priced at bar 1's open
    assert fill_bar(gap, late, 300) == 1
