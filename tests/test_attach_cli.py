"""``tapewatch serve`` and ``tapewatch attach``'s command line, without a browser or a screen.

``serve`` must build textual-serve's ``Server`` on the loopback interface running the attach
client, read-only unless ``--control``, and refuse any other host with one line and exit 2.
``attach`` finds the one engine serving a data directory, asks for ``--mode`` when several do
(exit 2) and says so in one line when none does (exit 1).
"""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

import pytest
from textual_serve.server import Server

from tapewatch.console.attach_cli import engine_socket
from tapewatch.console.cli import build_parser, main
from tapewatch.console.serve_cli import build_server
from tapewatch.engine.api.types import Mode
from tapewatch.engine.api.wire import socket_path


def serve_args(*argv: str) -> argparse.Namespace:
    return build_parser().parse_args(["serve", *argv])


def test_serve_builds_a_loopback_server_running_the_read_only_attach_client() -> None:
    server = build_server(serve_args("--port", "8123", "--data-dir", "/srv/tw"))
    assert isinstance(server, Server)
    assert server.host == "127.0.0.1" and server.port == 8123
    words = shlex.split(server.command)
    assert words[:4] == [sys.executable, "-m", "tapewatch.console.cli", "attach"]
    assert words[4:] == ["--data-dir", "/srv/tw", "--read-only"]
    assert "read-only" in (server.title or "")


def test_serve_with_control_runs_the_attach_client_without_read_only() -> None:
    server = build_server(serve_args("--control", "--mode", "paper"))
    words = shlex.split(server.command)
    assert "--read-only" not in words
    assert words[-2:] == ["--mode", "paper"]
    assert server.host == "127.0.0.1" and server.port == 8000


@pytest.mark.parametrize("host", ["0.0.0.0", "192.168.1.5", "example.com", "::"])
def test_serve_refuses_a_non_loopback_host_in_one_line_with_exit_2(
    host: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["serve", "--host", host]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("tapewatch serve: error: ")
    assert f"--host {host} is not loopback" in err


def test_serve_refuses_a_port_out_of_range(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["serve", "--port", "70000"])
    assert exited.value.code == 2
    assert "1-65535" in capsys.readouterr().err


def _socket_file(data: Path, mode: Mode) -> Path:
    path = socket_path(data, mode)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.touch()  # only its presence is looked at here
    return path


def test_attach_finds_the_one_engine_and_asks_for_a_mode_when_several_serve(
    tmp_path: Path,
) -> None:
    path, why, code = engine_socket(str(tmp_path), None)
    assert path is None and code == 1 and "no engine is serving" in why
    demo = _socket_file(tmp_path, Mode.DEMO)
    assert engine_socket(str(tmp_path), None) == (demo, "", 0)
    paper = _socket_file(tmp_path, Mode.PAPER)
    path, why, code = engine_socket(str(tmp_path), None)
    assert path is None and code == 2 and "--mode" in why and "paper, demo" in why
    assert engine_socket(str(tmp_path), "paper") == (paper, "", 0)
    path, why, code = engine_socket(str(tmp_path), "live")
    assert path is None and code == 1 and "no live engine" in why


def test_attach_read_only_and_take_control_exclude_each_other(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["attach", "--read-only", "--take-control"])
    assert exited.value.code == 2
    assert "not allowed with" in capsys.readouterr().err


def test_status_says_which_attached_console_controls() -> None:
    from tapewatch.console.status_cli import describe

    text = describe(
        {
            "mode": "DEMO",
            "clients": [
                {"id": 1, "user": "ann", "pid": 10, "since": "t", "control": True},
                {"id": 2, "user": "bob", "pid": 11, "since": "t", "control": False},
            ],
        }
    )
    assert "#1 ann (PID 10) since t, controls" in text
    assert "#2 bob (PID 11) since t, watches (read-only)" in text
