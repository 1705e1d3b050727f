"""Credentials against a REAL Secret Service (gnome-keyring under dbus-run-session) and
against a machine with no keyring at all.

Each case runs a child Python inside its own D-Bus session with private HOME, XDG_DATA_HOME,
XDG_RUNTIME_DIR and XDG_CONFIG_HOME (created before dbus starts, DESIGN.md §5), so nothing
touches the developer's own keyring. The real-service cases need the Debian packages ``dbus`` and
``gnome-keyring``: without them they skip naming the install command, and CI (which installs
them) fails on that skip (tests/services.py).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tapewatch.sandbox import SandboxConfig, SandboxThread
from tests.services import SECRET_SERVICE, require

ROOT = Path(__file__).resolve().parents[1]
PASSWORD = "keyring-test-password"
PAPER_KEY = "PK" + "REALSECRETSVC0ABCD"  # built at run time: no key-shaped literal in the tree
PAPER_SECRET = "ss-paper-secret-never-shown-5e6f"
LIVE_KEY = "AK" + "REALSECRETSVC0LIVE"
LIVE_SECRET = "ss-live-secret-never-shown-7a8b"
START = datetime(2024, 3, 5, 15, 0, tzinfo=UTC)
UNLOCK = 'printf %s "$PW" | gnome-keyring-daemon --unlock --components=secrets >/dev/null'
START_LOCKED = "gnome-keyring-daemon --start --components=secrets >/dev/null 2>&1"


@dataclass
class Box:
    """Private directories for one simulated user; reusing a Box keeps its keyring file."""

    root: Path

    def __post_init__(self) -> None:
        for name in ("home", "data", "config"):
            (self.root / name).mkdir(parents=True, exist_ok=True)
        runtime = self.root / "run"
        runtime.mkdir(parents=True, exist_ok=True)
        runtime.chmod(0o700)

    def env(self, **extra: str) -> dict[str, str]:
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(self.root / "home"),
            "XDG_DATA_HOME": str(self.root / "data"),
            "XDG_RUNTIME_DIR": str(self.root / "run"),
            "XDG_CONFIG_HOME": str(self.root / "config"),
            "PYTHONPATH": str(ROOT),
            "LANG": "C.UTF-8",
        }
        env.update(extra)
        return env


def run_child(
    box: Box,
    script: str,
    *,
    session: str | None = UNLOCK,
    stdin: str = "",
    **extra_env: str,
) -> tuple[int, str, str]:
    """Run ``script`` in a child Python, inside a fresh D-Bus session unless ``session`` is None."""
    env = box.env(PW=PASSWORD, SCRIPT=textwrap.dedent(script), PY=sys.executable, **extra_env)
    if session is None:
        cmd = [sys.executable, "-c", env["SCRIPT"]]
    else:
        cmd = ["dbus-run-session", "--", "sh", "-c", f'{session}; exec "$PY" -c "$SCRIPT"']
    proc = subprocess.run(
        cmd, input=stdin, capture_output=True, text=True, env=env, timeout=60, cwd=ROOT
    )
    for secret in (PAPER_SECRET, LIVE_SECRET, PASSWORD):
        assert secret not in proc.stdout and secret not in proc.stderr
    return proc.returncode, proc.stdout, proc.stderr


def last_json(stdout: str) -> dict[str, object]:
    return dict(json.loads(stdout.strip().splitlines()[-1]))


@pytest.fixture
def box(tmp_path: Path) -> Box:
    require(SECRET_SERVICE)
    return Box(tmp_path / "user")


@pytest.fixture
def paper_sandbox() -> Iterator[SandboxThread]:
    with SandboxThread(SandboxConfig(start=START, bar_interval=0)) as sandbox:
        yield sandbox


STORE = f"""
    import json
    from tapewatch.engine.settings import credentials as cr
    backend = cr.select_backend()
    cr.store_credentials("paper", {PAPER_KEY!r}, {PAPER_SECRET!r})
    cr.store_credentials("live", {LIVE_KEY!r}, {LIVE_SECRET!r})
    paper, live = cr.load_credentials("paper"), cr.load_credentials("live")
    print(json.dumps({{
        "backend": cr.backend_name(backend),
        "paper_ok": (paper.key_id, paper.secret) == ({PAPER_KEY!r}, {PAPER_SECRET!r}),
        "live_ok": (live.key_id, live.secret) == ({LIVE_KEY!r}, {LIVE_SECRET!r}),
        "sources": [paper.source, live.source],
    }}))
"""

RELOAD_AND_DELETE = f"""
    import json
    from tapewatch.engine.settings import credentials as cr
    cr.select_backend()
    paper = cr.load_credentials("paper")
    first, second = cr.delete_credentials("paper"), cr.delete_credentials("paper")
    live = cr.load_credentials("live")
    print(json.dumps({{
        "paper_ok": paper is not None and paper.secret == {PAPER_SECRET!r},
        "deleted": [first, second],
        "paper_after": cr.load_credentials("paper") is None,
        "live_kept": live is not None and live.secret == {LIVE_SECRET!r},
    }}))
"""


def test_store_load_delete_through_a_real_secret_service(box: Box) -> None:
    code, out, err = run_child(box, STORE)
    assert code == 0, err
    assert last_json(out) == {
        "backend": "keyring.backends.SecretService.Keyring",
        "paper_ok": True,
        "live_ok": True,
        "sources": ["keyring", "keyring"],
    }
    assert (Path(box.root) / "data" / "keyrings").is_dir()  # gnome-keyring wrote its file here
    # a new session (daemon restarted and unlocked again) still has both entries
    code, out, err = run_child(box, RELOAD_AND_DELETE)
    assert code == 0, err
    assert last_json(out) == {
        "paper_ok": True,
        "deleted": [True, False],
        "paper_after": True,
        "live_kept": True,
    }


def test_login_whoami_logout_with_a_real_secret_service(
    box: Box, paper_sandbox: SandboxThread
) -> None:
    script = """
        import argparse, io, sys
        from tapewatch.console import login_cli
        from tapewatch.engine.settings import credentials as cr
        parser = argparse.ArgumentParser(prog="tapewatch")
        login_cli.add_credential_commands(parser.add_subparsers(dest="command"))
        for argv in (["login"], ["whoami"], ["logout"], ["logout"], ["whoami"]):
            cr.reset_backend()
            args = parser.parse_args(argv)
            code = args.credential_command(args)
            print(f"== {argv[0]} -> {code}", flush=True)
            sys.stderr.flush()
    """
    code, out, err = run_child(
        box,
        script,
        stdin=f"{PAPER_KEY}\n{PAPER_SECRET}\n",
        TAPEWATCH_ALPACA_TRADING_URL=paper_sandbox.trading_url,
    )
    assert code == 0, err
    assert "stored paper keys for account " in out and "(key …ABCD)" in out
    assert "in keyring.backends.SecretService.Keyring" in out
    assert "== login -> 0" in out and "== whoami -> 0" in out
    assert "source:   keyring (keyring.backends.SecretService.Keyring)" in out
    assert "status:   ACTIVE" in out and "key:      …ABCD" in out
    assert "removed the stored paper keys" in out
    assert "no paper keys were stored: nothing to remove" in out
    assert out.rstrip().endswith("== whoami -> 2")
    assert "no paper credentials: run 'tapewatch login'" in err
    assert PAPER_KEY not in out and PAPER_KEY not in err


def test_locked_secret_service_is_the_one_message(box: Box) -> None:
    script = """
        from tapewatch.engine.settings import credentials as cr
        try:
            cr.select_backend()
        except cr.KeyringUnavailable as exc:
            print("REFUSED", exc)
    """
    code, out, err = run_child(box, STORE)  # a login keyring protected by PASSWORD
    assert code == 0, err
    code, out, err = run_child(box, script, session=START_LOCKED)  # not unlocked this time
    assert code == 0, err
    line = out.strip()
    assert line.startswith("REFUSED no usable keyring: could not open the keyring")
    assert "KeyringLocked" in line or "Prompt dismissed" in line
    assert "gnome-keyring-daemon --unlock" in line and "TAPEWATCH_KEYRING_PASSPHRASE" in line
    assert "APCA_API_KEY_ID/APCA_API_SECRET_KEY" in line


WHOAMI = """
    import argparse, sys
    from tapewatch.console import login_cli
    args = argparse.Namespace(live=False, plaintext_ok=False)
    sys.exit(login_cli.cmd_whoami(args))
"""


def test_no_keyring_backend_is_the_one_message(tmp_path: Path) -> None:
    box = Box(tmp_path / "nobody")
    code, out, err = run_child(
        box, WHOAMI, session=None, PYTHON_KEYRING_BACKEND="keyring.backends.fail.Keyring"
    )
    assert (code, out) == (2, "")
    assert err.count("\n") == 1
    assert err.startswith("tapewatch: error: no usable keyring: keyring found no backend")
    for piece in (
        "gnome-keyring-daemon --unlock",
        "pip install keyrings.cryptfile and set TAPEWATCH_KEYRING_PASSPHRASE",
        "APCA_API_KEY_ID/APCA_API_SECRET_KEY",
    ):
        assert piece in err


def test_no_dbus_session_at_all(tmp_path: Path) -> None:
    """A bare server: no session bus. Whatever keyring finds, the answer is the one message."""
    box = Box(tmp_path / "bare")
    code, out, err = run_child(
        box,
        WHOAMI,
        session=None,
        DBUS_SESSION_BUS_ADDRESS=f"unix:path={tmp_path}/no-such-bus",
    )
    assert (code, out) == (2, "")
    assert err.count("\n") == 1 and err.startswith("tapewatch: error: no usable keyring")
    assert "gnome-keyring-daemon --unlock" in err and "APCA_API_KEY_ID" in err


def test_environment_keys_work_without_any_keyring(
    tmp_path: Path, paper_sandbox: SandboxThread
) -> None:
    box = Box(tmp_path / "unattended")
    code, out, err = run_child(
        box,
        WHOAMI,
        session=None,
        PYTHON_KEYRING_BACKEND="keyring.backends.fail.Keyring",
        APCA_API_KEY_ID=PAPER_KEY,
        APCA_API_SECRET_KEY=PAPER_SECRET,
        TAPEWATCH_ALPACA_TRADING_URL=paper_sandbox.trading_url,
    )
    assert code == 0, err
    assert "using API keys from APCA_API_KEY_ID/APCA_API_SECRET_KEY for paper (key …ABCD)" in err
    assert "status:   ACTIVE" in out
