"""Start-up inputs: the [keys] table, theme files, and the launcher's one-line refusals."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from tapewatch.console import launch
from tapewatch.console.keymap import ACTIONS, KeymapError, effective_keys, load_keymap, parse_keys
from tapewatch.console.themes import ThemeError, load_themes, resolve_theme, theme_from_file


def test_defaults_are_valid_and_distinct() -> None:
    assert parse_keys({}) == {}
    keys = effective_keys({})
    assert keys["pause"] == "p" and keys["quit"] == "q"
    assert len(set(keys.values())) == len(ACTIONS)


def test_a_remap_is_kept_and_normalised() -> None:
    assert parse_keys({"pause": "space", "quit": " q , ctrl+q "}) == {
        "pause": "space",
        "quit": "q,ctrl+q",
    }
    assert parse_keys({"flatten": "F", "theme": "f5", "faster": "ctrl+plus"})["flatten"] == "F"


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ({"pasue": "x"}, "unknown action 'pasue'"),
        ({"pause": "ctrl+nope"}, r"'ctrl\+nope' is not a key name"),
        ({"pause": "hyperspace"}, "is not a key name"),
        ({"pause": 3}, "must be a key name in quotes"),
        ({"pause": "f"}, "bound to both"),
        ({"pause": "1"}, "reserved"),
        ({"flatten": "ctrl+q"}, "reserved"),
    ],
)
def test_bad_entries_are_one_clear_line(table: dict[str, object], message: str) -> None:
    with pytest.raises(KeymapError, match=message) as caught:
        parse_keys(table)
    assert "\n" not in str(caught.value)


def test_load_keymap_from_a_file(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    assert load_keymap(path) == {}  # no file: defaults
    path.write_text('[ui]\ntheme = "light"\n')
    assert load_keymap(path) == {}  # no [keys] table
    path.write_text('[keys]\npause = "space"\n')
    assert load_keymap(path) == {"pause": "space"}
    path.write_text("[keys\npause = 1\n")
    with pytest.raises(KeymapError, match="not valid TOML"):
        load_keymap(path)


def test_bundled_themes_load_as_data() -> None:
    themes = load_themes()
    names = [t.name for t in themes]
    assert names[0] == "dark" and {"dark", "light", "high-contrast"} <= set(names)
    light = next(t for t in themes if t.name == "light")
    assert light.dark is False and light.variables["chart-up"]
    assert resolve_theme(None, themes) == "dark"
    assert resolve_theme("nord", themes) == "nord"  # Textual's own themes are allowed too
    with pytest.raises(ThemeError, match="unknown theme 'neon'; choose one of: dark"):
        resolve_theme("neon", themes)


def test_a_user_theme_file_is_checked(tmp_path: Path) -> None:
    good = tmp_path / "sunset.toml"
    good.write_text('primary = "#ff8800"\n[variables]\nchart-up = "#00ff00"\n')
    assert theme_from_file(good).name == "sunset"
    bad = tmp_path / "bad.toml"
    bad.write_text('primary = "orangeish"\n')
    with pytest.raises(ThemeError, match="not a colour"):
        theme_from_file(bad)
    bad.write_text('primary = "#ff8800"\nsparkle = true\n')
    with pytest.raises(ThemeError, match="unknown field"):
        theme_from_file(bad)
    bad.unlink()
    names = [t.name for t in load_themes([tmp_path / "missing", tmp_path])]
    assert names == ["sunset"]


def test_without_a_terminal_the_console_refuses_at_once(capsys: pytest.CaptureFixture[str]) -> None:
    code = launch.launch_console(argparse.Namespace(), demo=False, config=None)
    assert code == 2
    err = capsys.readouterr().err
    assert err.strip() == launch.NO_TTY
    assert "ssh -t" in err and "--headless" in err


@pytest.fixture
def fake_terminal(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    monkeypatch.setattr(launch, "has_terminal", lambda: True)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.setenv("TAPEWATCH_DATA_DIR", str(tmp_path / "data"))
    folder = tmp_path / "config" / "tapewatch"
    folder.mkdir(parents=True)
    return folder


def test_a_bad_keymap_stops_start_up_with_exit_2(
    fake_terminal: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (fake_terminal / "config.toml").write_text('[keys]\nflaten = "x"\n')
    code = launch.launch_console(argparse.Namespace(), demo=True, config=None)
    assert code == 2
    err = capsys.readouterr().err
    assert err.startswith("tapewatch: error: ") and "unknown action 'flaten'" in err
    assert err.count("\n") == 1


def test_an_unknown_theme_stops_start_up_with_exit_2(
    fake_terminal: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = launch.launch_console(argparse.Namespace(theme="neon"), demo=True, config=None)
    assert code == 2
    assert "unknown theme 'neon'" in capsys.readouterr().err


async def test_help_screen_shows_runtime_facts_read_off_the_loop() -> None:
    """Issue 6: the help screen shows Python, free-threading, the GIL, keyring, data dir,
    endpoints and the next session (read in a thread: the keyring may talk to D-Bus)."""
    from tapewatch.console.app import create_app
    from tapewatch.engine.root.console_session import prime
    from tapewatch.engine.root.demo import DemoOptions, build_demo
    from tapewatch.engine.settings.config import EngineConfig
    from tests.console.conftest import until

    session = build_demo(EngineConfig().validate(), DemoOptions(seed=3), data_dir=None)
    await prime(session, bars=5)
    app = create_app(session, measured=True)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("question_mark")

        def facts() -> str:
            return str(app.screen.query_one("#facts").render())

        await until(pilot, lambda: "GIL enabled" in facts(), "the runtime facts")
        text = facts()
        for label in (
            "Python",
            "free-threaded build",
            "keyring backend",
            "data directory",
            "endpoint: trading",
            "next market session",
        ):
            assert label in text
