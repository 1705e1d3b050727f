"""The config file: where it is found, what it may say, one-line errors, and precedence."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tapewatch.engine.settings.config import ConfigError, EngineConfig
from tapewatch.engine.settings.config_file import (
    DEFAULT_METRICS_HOST,
    ENDPOINT_ENV,
    ENV_CONFIG,
    SCHEMA,
    FileConfig,
    config_path,
    load_config_file,
)

FULL = """\
# every table tapewatch reads
[strategy]
symbol = "qqq"
timeframe = "15Min"
rsi_period = 10
sma_period = 40
rsi_oversold = 25
rsi_overbought = 75.5
rsi_method = "wilder"
position_pct = 0.1

[execution]
slippage_bps = 2.5
commission_per_order = 1
commission_per_share = 0.005

[risk]
max_drawdown = 0.03
stale_bars = 3
rate_limit_per_minute = 150

[account]
starting_cash = 25000

[alpaca]
trading_url = "http://127.0.0.1:8765"
data_url = "http://127.0.0.1:8765"
stream_url = "ws://127.0.0.1:8765/v2/iex"
trade_stream_url = "ws://127.0.0.1:8765/stream"
feed = "SIP"

[metrics]
port = 9464
host = "0.0.0.0"

[console]
theme = "nord"

[keys]
pause = "space"
"""


def write(tmp_path: Path, text: str, name: str = "config.toml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def error_for(tmp_path: Path, text: str) -> str:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as caught:
        load_config_file(path, env={})
    message = str(caught.value)
    assert "\n" not in message, "errors are one line"
    assert str(path) in message, "errors name the file"
    return message


# ---------------------------------------------------------------------------- finding it


def test_the_default_file_may_be_missing_and_nothing_is_created(tmp_path: Path) -> None:
    env = {"XDG_CONFIG_HOME": str(tmp_path / "xdg")}
    loaded = load_config_file(env=env)
    assert loaded.path is None
    assert loaded.engine == EngineConfig().validate()
    assert loaded.theme is None and dict(loaded.keys) == {} and loaded.metrics.port is None
    assert not (tmp_path / "xdg").exists(), "reading the config never creates anything"


def test_the_default_file_is_read_from_xdg_config_home(tmp_path: Path) -> None:
    folder = tmp_path / "xdg" / "tapewatch"
    folder.mkdir(parents=True)
    write(folder, '[strategy]\nsymbol = "IWM"\n')
    env = {"XDG_CONFIG_HOME": str(tmp_path / "xdg")}
    assert config_path(env=env) == folder / "config.toml"
    assert load_config_file(env=env).engine.strategy.symbol == "IWM"


def test_an_explicit_file_beats_the_environment_variable_which_beats_the_default(
    tmp_path: Path,
) -> None:
    flag = write(tmp_path, '[strategy]\nsymbol = "AAA"\n', "flag.toml")
    named = write(tmp_path, '[strategy]\nsymbol = "BBB"\n', "named.toml")
    env = {ENV_CONFIG: str(named), "XDG_CONFIG_HOME": str(tmp_path / "none")}
    assert load_config_file(flag, env=env).engine.strategy.symbol == "AAA"
    assert load_config_file(env=env).engine.strategy.symbol == "BBB"


@pytest.mark.parametrize("how", ["flag", "env"])
def test_a_missing_explicitly_named_file_is_an_error(tmp_path: Path, how: str) -> None:
    missing = tmp_path / "nope.toml"
    env = {"XDG_CONFIG_HOME": str(tmp_path)}
    with pytest.raises(ConfigError) as caught:
        if how == "flag":
            load_config_file(missing, env=env)
        else:
            load_config_file(env={**env, ENV_CONFIG: str(missing)})
    message = str(caught.value)
    assert str(missing) in message and "does not exist" in message and "\n" not in message
    assert ("--config" if how == "flag" else f"${ENV_CONFIG}") in message


def test_a_folder_or_non_utf8_file_is_one_clear_line(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="is a folder"):
        load_config_file(tmp_path, env={})
    binary = tmp_path / "bin.toml"
    binary.write_bytes(b'[strategy]\nsymbol = "\xff\xfe"\n')
    with pytest.raises(ConfigError, match=r"not UTF-8.*save it as UTF-8"):
        load_config_file(binary, env={})


def test_the_file_is_never_written(tmp_path: Path) -> None:
    path = write(tmp_path, FULL)
    before = (path.read_bytes(), path.stat().st_mtime_ns)
    os.utime(path, ns=(1_000_000_000, 1_000_000_000))
    load_config_file(path, env={})
    bad = write(tmp_path, "[strategy]\nrsi_period = 1\n", "bad.toml")
    with pytest.raises(ConfigError):
        load_config_file(bad, env={})
    assert path.read_bytes() == before[0]
    assert path.stat().st_mtime_ns == 1_000_000_000
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.toml", "config.toml"]


# ---------------------------------------------------------------------------- what it says


def test_every_table_and_key_lands_where_it_belongs(tmp_path: Path) -> None:
    loaded = load_config_file(write(tmp_path, FULL), env={})
    s, x, r = loaded.engine.strategy, loaded.engine.execution, loaded.engine.risk
    assert (s.symbol, s.timeframe, s.rsi_period, s.sma_period) == ("QQQ", "15Min", 10, 40)
    assert (s.rsi_oversold, s.rsi_overbought, s.rsi_method, s.position_pct) == (
        25.0,
        75.5,
        "wilder",
        0.1,
    )
    assert isinstance(s.rsi_oversold, float)
    assert (x.slippage_bps, x.commission_per_order, x.commission_per_share) == (2.5, 1.0, 0.005)
    assert (r.max_drawdown, r.stale_bars, r.rate_limit_per_minute) == (0.03, 3.0, 150)
    assert loaded.engine.starting_cash == 25_000.0
    a = loaded.alpaca
    assert a.trading_url == a.data_url == "http://127.0.0.1:8765"
    assert a.stream_url == "ws://127.0.0.1:8765/v2/iex"
    assert a.trade_stream_url == "ws://127.0.0.1:8765/stream"
    assert a.feed == "sip"
    assert (loaded.metrics.port, loaded.metrics.host, loaded.theme) == (9464, "0.0.0.0", "nord")
    assert dict(loaded.keys) == {"pause": "space"}
    assert loaded.values["strategy.rsi_period"] == 10


def test_the_tables_are_the_documented_ones() -> None:
    assert {table: set(keys) for table, keys in SCHEMA.items()} == {
        "strategy": {
            "symbol",
            "timeframe",
            "rsi_period",
            "sma_period",
            "rsi_oversold",
            "rsi_overbought",
            "rsi_method",
            "position_pct",
        },
        "execution": {"slippage_bps", "commission_per_order", "commission_per_share"},
        "risk": {
            "max_drawdown",
            "stale_bars",
            "rate_limit_per_minute",
            "late_bar_seconds",
            "entry_timeout_seconds",
            "order_deadline_seconds",
            "drawdown_action",
            "unattended_pause_after",
        },
        "account": {"starting_cash"},
        "alpaca": {"trading_url", "data_url", "stream_url", "trade_stream_url", "feed"},
        "metrics": {"port", "host"},
        "sweep": {"scheduler"},
        "console": {"theme", "confirm_orders", "confirm_timeout_seconds", "on_hangup"},
    }


def test_the_keys_table_is_left_to_the_console_and_still_read_by_it(tmp_path: Path) -> None:
    from tapewatch.console.keymap import KeymapError, load_keymap

    path = write(tmp_path, FULL + 'flatten = "F"\n')
    assert dict(load_config_file(path, env={}).keys) == {"pause": "space", "flatten": "F"}
    assert load_keymap(path) == {"pause": "space", "flatten": "F"}
    bad_keys = write(tmp_path, '[strategy]\nrsi_period = 12\n[keys]\nnosuch = "x"\n', "k.toml")
    assert load_config_file(bad_keys, env={}).engine.strategy.rsi_period == 12
    with pytest.raises(KeymapError, match="unknown action"):
        load_keymap(bad_keys)


# ---------------------------------------------------------------------------- errors

ERRORS = [
    # (file text, what the message must name, a fragment of the fix, line)
    ("[strategy]\nrsi_period = \n", "not valid TOML", "fix that line", 2),
    ("[strategy]\nsymbol = SPY\n", "not valid TOML", 'symbol = "SPY"', 2),
    ("[strategy]\nrsi_period = 14\nrsi_period = 15\n", "not valid TOML", "fix that line", None),
    ("[strateg]\nrsi_period = 14\n", "[strateg]", "did you mean [strategy]?", 1),
    ("[colours]\nx = 1\n", "[colours]", "tables: strategy", 1),
    ("[strategy]\n\nrsi_perod = 14\n", "strategy.rsi_perod", "did you mean rsi_period?", 3),
    ("[risk]\nzzz = 1\n", "risk.zzz", "valid keys: max_drawdown", 2),
    ("[strategy]\nmax_drawdown = 0.1\n", "strategy.max_drawdown", "belongs in [risk]", 2),
    ('symbol = "SPY"\n', "symbol", "put it under [strategy]", 1),
    ('keys = "x"\n', "keys must be a table", "write [keys]", 1),
    (
        '[strategy]\nrsi_period = "fourteen"\n',
        "strategy.rsi_period must be a whole number, got 'fourteen'",
        "rsi_period = 14",
        2,
    ),
    ("[strategy]\nrsi_period = 14.5\n", "strategy.rsi_period must be a whole number", "= 14", 2),
    ("[strategy]\nrsi_period = true\n", "whole number, got true", "rsi_period = 14", 2),
    ("[risk]\nmax_drawdown = true\n", "risk.max_drawdown must be a number, got true", "0.05", 2),
    ("[risk]\nmax_drawdown = [0.1]\n", "risk.max_drawdown must be a number", "0.05", 2),
    ("[execution]\nslippage_bps = nan\n", "execution.slippage_bps must be a finite", "= 0", 2),
    ("[account]\nstarting_cash = inf\n", "account.starting_cash must be a finite", "= 100000", 2),
    ("[strategy]\nsymbol = 5\n", "strategy.symbol must be a string", 'symbol = "SPY"', 2),
    ("[strategy]\nrsi_period = 1\n", "strategy.rsi_period", "at least 2", 2),
    ("[strategy]\nsma_period = 0\n", "strategy.sma_period", "at least 2", 2),
    ("[strategy]\nrsi_oversold = 120\n", "strategy.rsi_oversold must", "between 0 and 100", 2),
    (
        "[strategy]\nrsi_oversold = 60\nrsi_overbought = 50\n",
        "strategy.rsi_oversold (60) must be below strategy.rsi_overbought (50)",
        "e.g. 30 and 70",
        2,
    ),
    ('[strategy]\nrsi_method = "ema"\n', "strategy.rsi_method", "'sma' or 'wilder'", 2),
    ("[strategy]\nposition_pct = 1.5\n", "strategy.position_pct", "e.g. 0.02", 2),
    ('[strategy]\ntimeframe = "7Sec"\n', "strategy.timeframe", "5Min", 2),
    ('[strategy]\nsymbol = "S P Y"\n', "strategy.symbol", "such as SPY", 2),
    ("[execution]\nslippage_bps = 10000\n", "execution.slippage_bps", "between 0 and 10000", 2),
    ("[execution]\ncommission_per_share = -1\n", "execution.commission_per_share", "use 0", 2),
    ("[risk]\nmax_drawdown = 1.0\n", "risk.max_drawdown", "e.g. 0.05", 2),
    ("[risk]\nstale_bars = 0\n", "risk.stale_bars", "stale_bars = 2", 2),
    ("[risk]\nrate_limit_per_minute = 0\n", "risk.rate_limit_per_minute", "= 200", 2),
    ("[account]\nstarting_cash = 0\n", "account.starting_cash", "= 100000", 2),
    ('[alpaca]\ntrading_url = "paper-api.alpaca.markets"\n', "alpaca.trading_url", "https://", 2),
    ('[alpaca]\ndata_url = "ftp://x"\n', "alpaca.data_url", "http:// or https://", 2),
    ('[alpaca]\nstream_url = "https://x/v2/iex"\n', "alpaca.stream_url", "ws:// or wss://", 2),
    ('[alpaca]\ntrade_stream_url = "wss://"\n', "alpaca.trade_stream_url", "wss://", 2),
    ('[alpaca]\nfeed = "bats"\n', 'alpaca.feed must be "iex" or "sip"', 'feed = "iex"', 2),
    ("[metrics]\nport = 70000\n", "metrics.port must be a port number 0-65535", "= 9464", 2),
    ('[metrics]\nhost = ""\n', "metrics.host must not be empty", "127.0.0.1", 2),
    ("[console]\ntheme = 3\n", "console.theme must be a string", 'theme = "dark"', 2),
    ('[console]\non_hangup = "run"\n', "console.on_hangup", 'on_hangup = "keep-running"', 2),
    ("strategy.rsi_period = 0\n", "strategy.rsi_period", "at least 2", 1),
]


@pytest.mark.parametrize(("text", "names", "fix", "line"), ERRORS)
def test_each_mistake_is_one_line_naming_the_file_the_key_and_the_fix(
    tmp_path: Path, text: str, names: str, fix: str, line: int | None
) -> None:
    message = error_for(tmp_path, text)
    assert names in message
    assert fix in message
    if line is not None:
        assert f"config.toml:{line}" in message
    assert "--" not in message, "file errors name file keys, not command-line flags"


def test_an_error_in_one_table_is_reported_even_after_valid_tables(tmp_path: Path) -> None:
    message = error_for(tmp_path, FULL.replace("rate_limit_per_minute = 150", "rate_limit = 1"))
    assert "risk.rate_limit" in message and "did you mean rate_limit_per_minute?" in message
    assert "config.toml:20:" in message


# ---------------------------------------------------------------------------- precedence


def test_precedence_defaults_then_file_then_environment_then_flags(tmp_path: Path) -> None:
    defaults = load_config_file(env={"XDG_CONFIG_HOME": str(tmp_path / "none")})
    assert defaults.engine.strategy.rsi_period == 14
    assert defaults.alpaca.trading_url is None  # Alpaca's own host for the mode

    path = write(tmp_path, FULL)
    env = {
        "TAPEWATCH_ALPACA_TRADING_URL": "https://paper-api.alpaca.markets",
        "TAPEWATCH_ALPACA_STREAM_URL": "wss://stream.data.alpaca.markets/v2/test",
    }
    loaded = load_config_file(path, env=env)
    assert loaded.engine.strategy.rsi_period == 10  # the file over the default
    assert loaded.alpaca.trading_url == "https://paper-api.alpaca.markets"  # env over file
    assert loaded.alpaca.stream_url == "wss://stream.data.alpaca.markets/v2/test"
    assert loaded.alpaca.data_url == "http://127.0.0.1:8765"  # no variable: the file's
    assert loaded.alpaca.sources["trading_url"] == "TAPEWATCH_ALPACA_TRADING_URL"
    assert str(path) in loaded.alpaca.sources["data_url"]

    flagged = loaded.engine_config({"rsi_period": 21, "cash": 5_000.0, "symbol": None})
    assert flagged.strategy.rsi_period == 21  # a flag the user gave beats the file
    assert flagged.starting_cash == 5_000.0  # argparse's "cash" is starting_cash
    assert flagged.strategy.symbol == "QQQ"  # None: the flag was not given; the file's stands
    assert flagged.strategy.sma_period == 40
    assert loaded.engine_config({}) == loaded.engine


def test_environment_endpoints_also_apply_without_a_file(tmp_path: Path) -> None:
    env = {
        "XDG_CONFIG_HOME": str(tmp_path),
        "TAPEWATCH_ALPACA_DATA_URL": "http://127.0.0.1:9/",
    }
    assert load_config_file(env=env).alpaca.overrides() == {"data_url": "http://127.0.0.1:9"}


def test_a_bad_environment_endpoint_names_the_variable(tmp_path: Path) -> None:
    env = {"XDG_CONFIG_HOME": str(tmp_path), "TAPEWATCH_ALPACA_TRADE_STREAM_URL": "http://x"}
    with pytest.raises(ConfigError) as caught:
        load_config_file(env=env)
    message = str(caught.value)
    assert "TAPEWATCH_ALPACA_TRADE_STREAM_URL" in message and "ws:// or wss://" in message


def test_a_flag_wrong_on_its_own_keeps_the_flag_message(tmp_path: Path) -> None:
    loaded = load_config_file(write(tmp_path, FULL), env={})
    with pytest.raises(ConfigError) as caught:
        loaded.engine_config({"rsi_period": 1})
    assert str(caught.value).startswith("--rsi-period must be a whole number of at least 2")


def test_a_flag_that_clashes_with_the_file_says_which_file_setting(tmp_path: Path) -> None:
    path = write(tmp_path, "[strategy]\nrsi_oversold = 60\nrsi_overbought = 80\n")
    loaded = load_config_file(path, env={})
    with pytest.raises(ConfigError) as caught:
        loaded.engine_config({"rsi_overbought": 55.0})
    message = str(caught.value)
    assert "--rsi-oversold (60) must be below --rsi-overbought (55)" in message
    assert f"strategy.rsi_oversold = 60 from {path}" in message
    assert "\n" not in message


def test_an_unknown_override_name_is_a_programming_error() -> None:
    with pytest.raises(TypeError, match="rsi_periodd"):
        FileConfig(path=None).engine_config({"rsi_periodd": 3})


# ---------------------------------------------------------------------------- agreement


def test_the_names_agree_with_the_modules_that_use_them(tmp_path: Path) -> None:
    from tapewatch.engine.adapters.alpaca.endpoints import CONFIG_KEYS, resolve_endpoints
    from tapewatch.engine.model.types import Mode
    from tapewatch.engine.observability.metrics import DEFAULT_HOST

    assert DEFAULT_METRICS_HOST == DEFAULT_HOST
    assert ENDPOINT_ENV == CONFIG_KEYS
    loaded = load_config_file(write(tmp_path, FULL), env={})
    endpoints = resolve_endpoints(Mode.PAPER, env={}, config=loaded.alpaca.overrides())
    assert endpoints.trading == "http://127.0.0.1:8765"
    assert endpoints.trade_stream == "ws://127.0.0.1:8765/stream"


def test_drawdown_action_is_read_and_checked(tmp_path: Path) -> None:
    path = write(tmp_path, '[risk]\ndrawdown_action = "flatten"\n')
    assert load_config_file(path, env={}).engine.risk.drawdown_action == "flatten"
    message = error_for(tmp_path, '[risk]\ndrawdown_action = "panic"\n')
    assert "risk.drawdown_action" in message and "reduce" in message and "config.toml:2" in message
