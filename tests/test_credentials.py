"""Credentials: backend vetting, per-mode storage, the environment override, and the
login/logout/whoami commands against the local Alpaca-compatible sandbox.

Keyrings here are in-memory backends defined below (never auto-detected: ``viable = False``),
handed to ``select_backend`` directly or through a patched ``get_all_keyring``.
"""

from __future__ import annotations

import argparse
import getpass
import io
import json
import logging
import socket
import sys
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import keyring
import keyring.backend
import keyring.core
import keyring.errors
import pytest
from keyring.backend import KeyringBackend
from keyring.backends import fail
from keyring.backends.chainer import ChainerBackend

from tapewatch.console import login_cli
from tapewatch.engine.model.types import Mode
from tapewatch.engine.settings import credentials as cr
from tapewatch.sandbox import SandboxConfig, SandboxThread

PAPER_KEY = "PK" + "TESTPAPERKEY00WXYZ"  # built at run time: no key-shaped literal in the tree
PAPER_SECRET = "paper-secret-DO-NOT-PRINT-1f2e3d"
LIVE_KEY = "AK" + "TESTLIVEKEY0001QRS"
LIVE_SECRET = "live-secret-DO-NOT-PRINT-9a8b7c"
START = datetime(2024, 3, 5, 15, 0, tzinfo=UTC)


class MemoryKeyring(KeyringBackend):
    """A keyring in a dict; ``viable = False`` keeps it out of keyring's own detection."""

    priority = 5.0
    viable = False

    def __init__(self) -> None:
        super().__init__()
        self.data: dict[tuple[str, str], str] = {}
        self.threads: list[int] = []

    def get_password(self, service: str, username: str) -> str | None:
        self.threads.append(threading.get_ident())
        return self.data.get((service, username))

    def set_password(self, service: str, username: str, password: str) -> None:
        self.data[(service, username)] = password

    def delete_password(self, service: str, username: str) -> None:
        if self.data.pop((service, username), None) is None:
            raise keyring.errors.PasswordDeleteError("no such password")


class AltPlaintextKeyring(MemoryKeyring):
    """Stands in for keyrings.alt's plaintext file backend (not installed here)."""

    priority = 0.5


AltPlaintextKeyring.__module__ = "keyrings.alt.file"
AltPlaintextKeyring.__name__ = AltPlaintextKeyring.__qualname__ = "PlaintextKeyring"


class BrokenKeyring(MemoryKeyring):
    """Opens fine, then fails the way a locked or misbehaving backend does."""

    def __init__(self, error: Exception) -> None:
        super().__init__()
        self.error = error
        self.opened = False

    def get_password(self, service: str, username: str) -> str | None:
        if username == "probe" and not self.opened:
            self.opened = True
            return None
        raise self.error

    def set_password(self, service: str, username: str, password: str) -> None:
        raise self.error


@pytest.fixture(autouse=True)
def isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: object) -> Iterator[None]:
    """No real keyring, config file or environment keys leak into a test; state is restored."""
    for name in (
        cr.ENV_KEY_ID,
        cr.ENV_SECRET,
        cr.ENV_PASSPHRASE,
        cr.ENV_ALLOW_PLAINTEXT,
        cr.ENV_TRADING_URL,
        "PYTHON_KEYRING_BACKEND",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path))
    monkeypatch.setattr(keyring.core, "_keyring_backend", keyring.core._keyring_backend)
    monkeypatch.setattr(keyring.backend, "get_all_keyring", lambda: [])

    def no_prompt(prompt: str = "", stream: object = None) -> str:
        raise AssertionError(f"something prompted on the terminal: {prompt!r}")

    monkeypatch.setattr(getpass, "getpass", no_prompt)
    cr.reset_backend()
    yield
    cr.reset_backend()


def offer(monkeypatch: pytest.MonkeyPatch, *backends: KeyringBackend) -> None:
    """Make keyring's detection see exactly these backends."""
    monkeypatch.setattr(keyring.backend, "get_all_keyring", lambda: list(backends))


def assert_one_message(text: str) -> None:
    assert "\n" not in text.strip()
    for piece in (
        "gnome-keyring-daemon --unlock",
        "pip install keyrings.cryptfile",
        "TAPEWATCH_KEYRING_PASSPHRASE",
        "APCA_API_KEY_ID/APCA_API_SECRET_KEY",
    ):
        assert piece in text, piece


# -- storage -----------------------------------------------------------------------------


def test_store_load_delete_per_mode() -> None:
    mem = MemoryKeyring()
    assert cr.select_backend(backend=mem) is mem
    assert keyring.get_keyring() is mem  # pinned for the process
    cr.store_credentials("paper", PAPER_KEY, PAPER_SECRET)
    cr.store_credentials(Mode.LIVE, LIVE_KEY, LIVE_SECRET)
    assert json.loads(mem.data[("tapewatch", "paper")]) == {
        "key_id": PAPER_KEY,
        "secret": PAPER_SECRET,
    }
    paper = cr.load_credentials(Mode.PAPER)
    live = cr.load_credentials("live")
    assert paper == cr.Credentials(PAPER_KEY, PAPER_SECRET, "paper", "keyring")
    assert live == cr.Credentials(LIVE_KEY, LIVE_SECRET, "live", "keyring")
    assert paper.notice is None
    assert cr.delete_credentials("paper") is True
    assert cr.load_credentials("paper") is None
    assert cr.load_credentials("live") == live
    assert cr.delete_credentials("paper") is False  # idempotent


def test_unknown_mode_is_refused() -> None:
    with pytest.raises(ValueError, match="paper or live"):
        cr.load_credentials("demo", env={})


def test_unreadable_entry_says_login_again_without_echoing_it() -> None:
    mem = MemoryKeyring()
    cr.select_backend(backend=mem)
    mem.data[("tapewatch", "live")] = "not json " + LIVE_SECRET
    with pytest.raises(cr.CredentialError) as err:
        cr.load_credentials("live")
    assert "tapewatch login --live" in str(err.value)
    assert LIVE_SECRET not in str(err.value)


def test_text_forms_never_show_the_secret_or_the_whole_key() -> None:
    creds = cr.Credentials(PAPER_KEY, PAPER_SECRET, "paper", "keyring")
    for text in (repr(creds), str(creds), f"{creds}", f"{creds!r}", repr([creds])):
        assert PAPER_SECRET not in text
        assert PAPER_KEY not in text
        assert "…WXYZ" in text
    assert creds.hint == "…WXYZ"


# -- the environment ---------------------------------------------------------------------


def test_environment_wins_with_a_notice_and_never_touches_the_keyring(
    caplog: pytest.LogCaptureFixture,
) -> None:
    cr.select_backend(backend=BrokenKeyring(keyring.errors.KeyringLocked("locked")))
    env = {cr.ENV_KEY_ID: LIVE_KEY, cr.ENV_SECRET: LIVE_SECRET}
    with caplog.at_level(logging.WARNING, logger="tapewatch.engine.settings.credentials"):
        creds = cr.load_credentials("live", env=env)
    assert creds is not None
    assert (creds.key_id, creds.secret, creds.mode, creds.source) == (
        LIVE_KEY,
        LIVE_SECRET,
        "live",
        "environment",
    )
    assert creds.notice == (
        "using API keys from APCA_API_KEY_ID/APCA_API_SECRET_KEY for live (key …1QRS)"
    )
    assert creds.notice in caplog.text
    assert LIVE_SECRET not in caplog.text


def test_half_set_environment_is_an_error_naming_the_missing_variable() -> None:
    with pytest.raises(cr.CredentialError, match="APCA_API_SECRET_KEY is not") as err:
        cr.load_credentials("paper", env={cr.ENV_KEY_ID: PAPER_KEY})
    assert PAPER_KEY not in str(err.value)


async def test_aload_runs_the_keyring_off_the_event_loop() -> None:
    mem = MemoryKeyring()
    cr.select_backend(backend=mem)
    cr.store_credentials("paper", PAPER_KEY, PAPER_SECRET)
    mem.threads.clear()
    creds = await cr.aload_credentials("paper", env={})
    assert creds is not None and creds.secret == PAPER_SECRET
    assert mem.threads and threading.get_ident() not in mem.threads


# -- backend vetting ---------------------------------------------------------------------


def test_detection_pins_the_highest_priority_backend(monkeypatch: pytest.MonkeyPatch) -> None:
    mem = MemoryKeyring()
    offer(monkeypatch, AltPlaintextKeyring(), mem, fail.Keyring())
    assert cr.select_backend() is mem
    assert cr.current_backend() is mem and keyring.get_keyring() is mem


def test_no_backend_is_refused_with_the_one_message(monkeypatch: pytest.MonkeyPatch) -> None:
    offer(monkeypatch)  # nothing viable: keyring falls back to its fail backend
    for allow in (False, True):  # nothing to opt into: fail cannot store anything
        with pytest.raises(cr.KeyringUnavailable) as err:
            cr.select_backend(allow_plaintext=allow)
        assert "fail.Keyring" in str(err.value)
        assert_one_message(str(err.value))
    assert cr.current_backend() is None


def test_plaintext_is_refused_unless_opted_in(monkeypatch: pytest.MonkeyPatch) -> None:
    from keyrings.cryptfile.file import PlaintextKeyring

    for plain in (AltPlaintextKeyring(), PlaintextKeyring()):
        with pytest.raises(cr.KeyringUnavailable) as err:
            cr.select_backend(backend=plain)
        assert "plaintext" in str(err.value) and "--allow-plaintext-keyring" in str(err.value)
        assert_one_message(str(err.value))
    alt = AltPlaintextKeyring()
    assert cr.select_backend(allow_plaintext=True, backend=alt) is alt
    cr.reset_backend()
    env = {cr.ENV_ALLOW_PLAINTEXT: "1"}
    assert cr.select_backend(backend=alt, env=env) is alt


def test_chainer_is_unwrapped_to_its_best_backend(monkeypatch: pytest.MonkeyPatch) -> None:
    plain_a, plain_b = AltPlaintextKeyring(), AltPlaintextKeyring()
    offer(monkeypatch, ChainerBackend(), plain_a, plain_b)
    with pytest.raises(cr.KeyringUnavailable, match="plaintext"):
        cr.select_backend()  # a chainer over plaintext files only is still plaintext
    mem = MemoryKeyring()
    offer(monkeypatch, ChainerBackend(), plain_a, mem)
    assert cr.select_backend() is mem  # never the chainer itself


def test_explicit_keyring_config_is_vetted_too(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PYTHON_KEYRING_BACKEND", "keyrings.cryptfile.file.PlaintextKeyring")
    with pytest.raises(cr.KeyringUnavailable, match="plaintext"):
        cr.select_backend()
    monkeypatch.setenv("PYTHON_KEYRING_BACKEND", "keyring.backends.fail.Keyring")
    with pytest.raises(cr.KeyringUnavailable, match="found no backend"):
        cr.select_backend()


def test_locked_keyring_is_caught_at_selection() -> None:
    class Locked(MemoryKeyring):
        def get_password(self, service: str, username: str) -> str | None:
            raise keyring.errors.InitError("Failed to create the collection: Prompt dismissed.")

    with pytest.raises(cr.KeyringUnavailable) as err:
        cr.select_backend(backend=Locked())
    assert "Prompt dismissed" in str(err.value)
    assert_one_message(str(err.value))


@pytest.mark.parametrize(
    "error",
    [
        keyring.errors.KeyringLocked("Failed to unlock the collection!"),
        keyring.errors.NoKeyringError("No recommended backend"),
        RuntimeError("org.freedesktop.DBus.Error.ServiceUnknown"),
        ValueError("MAC check failed"),
    ],
)
def test_every_keyring_failure_becomes_the_one_message(error: Exception) -> None:
    cr.select_backend(backend=BrokenKeyring(error))
    for action in (
        lambda: cr.load_credentials("paper", env={}),
        lambda: cr.store_credentials("paper", PAPER_KEY, PAPER_SECRET),
        lambda: cr.delete_credentials("paper"),
    ):
        with pytest.raises(cr.KeyringUnavailable) as err:
            action()
        text = str(err.value)
        assert_one_message(text)
        assert PAPER_SECRET not in text
        assert err.value.__cause__ is None and err.value.__suppress_context__


def test_a_failed_store_never_echoes_the_keys() -> None:
    blob = json.dumps({"key_id": PAPER_KEY, "secret": PAPER_SECRET})
    cr.select_backend(backend=BrokenKeyring(RuntimeError(f"cannot write {blob!r}")))
    with pytest.raises(cr.KeyringUnavailable) as err:
        cr.store_credentials("paper", PAPER_KEY, PAPER_SECRET)
    assert "RuntimeError: cannot write" in str(err.value)
    assert PAPER_SECRET not in str(err.value) and PAPER_KEY not in str(err.value)


# -- the encrypted file keyring ------------------------------------------------------------


def cheap_cryptfile(path: str) -> KeyringBackend:
    """keyrings.cryptfile with a tiny Argon2 cost (the default takes ~1.4 s per call)."""
    from keyrings.cryptfile.cryptfile import CryptFileKeyring

    ring = CryptFileKeyring()
    ring.file_path = path
    ring.time_cost = 1
    ring.memory_cost = 64
    return ring


def test_cryptfile_without_passphrase_is_refused_and_never_prompts(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from keyrings.cryptfile.cryptfile import CryptFileKeyring

    offer(monkeypatch, ChainerBackend(), CryptFileKeyring(), AltPlaintextKeyring())
    with pytest.raises(cr.KeyringUnavailable) as err:
        cr.select_backend(allow_plaintext=True)  # the opt-in is for plaintext, not prompts
    assert "needs its passphrase in TAPEWATCH_KEYRING_PASSPHRASE" in str(err.value)
    assert_one_message(str(err.value))


def test_cryptfile_with_passphrase_round_trips(tmp_path: object) -> None:
    path = f"{tmp_path}/ring.cfg"
    env = {cr.ENV_PASSPHRASE: "correct horse"}
    cr.select_backend(backend=cheap_cryptfile(path), env=env)
    cr.store_credentials("paper", PAPER_KEY, PAPER_SECRET)
    with open(path, encoding="utf-8") as f:
        assert PAPER_SECRET not in f.read()
    cr.reset_backend()
    cr.select_backend(backend=cheap_cryptfile(path), env=env)
    creds = cr.load_credentials("paper", env={})
    assert creds is not None and creds.secret == PAPER_SECRET


def test_cryptfile_wrong_passphrase_is_the_one_message(tmp_path: object) -> None:
    path = f"{tmp_path}/ring.cfg"
    cr.select_backend(backend=cheap_cryptfile(path), env={cr.ENV_PASSPHRASE: "right one"})
    cr.store_credentials("paper", PAPER_KEY, PAPER_SECRET)
    cr.reset_backend()
    with pytest.raises(cr.KeyringUnavailable) as err:
        cr.select_backend(backend=cheap_cryptfile(path), env={cr.ENV_PASSPHRASE: "wrong one"})
    text = str(err.value)
    assert "does not open the encrypted file keyring" in text and "MAC check failed" in text
    assert "wrong one" not in text
    assert_one_message(text)
    assert cr.current_backend() is None


def test_passphrase_in_environment_selects_cryptfile(monkeypatch: pytest.MonkeyPatch) -> None:
    from keyrings.cryptfile.cryptfile import CryptFileKeyring

    monkeypatch.setattr(CryptFileKeyring, "time_cost", 1)
    monkeypatch.setattr(CryptFileKeyring, "memory_cost", 64)
    offer(monkeypatch, MemoryKeyring())  # would win on priority without the passphrase
    backend = cr.select_backend(env={cr.ENV_PASSPHRASE: "pass"})
    assert isinstance(backend, CryptFileKeyring)


# -- login / logout / whoami against the sandbox -----------------------------------------


@pytest.fixture
def paper_sandbox() -> Iterator[SandboxThread]:
    with SandboxThread(SandboxConfig(start=START, bar_interval=0)) as sandbox:
        yield sandbox


@pytest.fixture
def live_sandbox() -> Iterator[SandboxThread]:
    with SandboxThread(SandboxConfig(start=START, bar_interval=0, live=True)) as sandbox:
        yield sandbox


@pytest.fixture
def ring(monkeypatch: pytest.MonkeyPatch) -> MemoryKeyring:
    mem = MemoryKeyring()
    offer(monkeypatch, mem)
    return mem


def run(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    command: str,
    *flags: str,
    stdin: str = "",
) -> tuple[int, str, str]:
    """Parse like the real CLI, run the command, return (status, stdout, stderr)."""
    parser = argparse.ArgumentParser(prog="tapewatch")
    login_cli.add_credential_commands(parser.add_subparsers(dest="command"))
    args = parser.parse_args([command, *flags])
    monkeypatch.setattr(sys, "stdin", io.StringIO(stdin))
    cr.reset_backend()  # each command is a fresh process in real life
    code = args.credential_command(args)
    out, err = capsys.readouterr()
    for secret in (PAPER_SECRET, LIVE_SECRET, PAPER_KEY, LIVE_KEY):
        assert secret not in out and secret not in err
    return code, out, err


def test_parser_flags() -> None:
    parser = argparse.ArgumentParser()
    login_cli.add_credential_commands(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["login", "--live", "--allow-plaintext-keyring"])
    assert (args.live, args.plaintext_ok, args.credential_command) == (
        True,
        True,
        login_cli.cmd_login,
    )
    args = parser.parse_args(["whoami"])
    assert (args.live, args.plaintext_ok, args.credential_command) == (
        False,
        False,
        login_cli.cmd_whoami,
    )


def test_login_verifies_then_stores_and_whoami_shows_the_account(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    paper_sandbox: SandboxThread,
    ring: MemoryKeyring,
) -> None:
    monkeypatch.setenv(cr.ENV_TRADING_URL, paper_sandbox.trading_url)
    code, out, _ = run(monkeypatch, capsys, "login", stdin=f"{PAPER_KEY}\n{PAPER_SECRET}\n")
    assert code == 0
    assert out.startswith("stored paper keys for account ") and "(key …WXYZ)" in out
    assert json.loads(ring.data[("tapewatch", "paper")])["secret"] == PAPER_SECRET
    assert ("tapewatch", "live") not in ring.data

    code, out, _ = run(monkeypatch, capsys, "whoami")
    assert code == 0
    lines = dict(line.split(":", 1) for line in out.strip().splitlines())
    assert lines["mode"].strip() == "paper"
    assert lines["key"].strip() == "…WXYZ"
    assert lines["status"].strip() == "ACTIVE"
    assert lines["account"].strip() == ring_account(paper_sandbox)
    assert lines["source"].strip().startswith("keyring (")


def ring_account(sandbox: SandboxThread) -> str:
    from alpaca.trading.client import TradingClient

    client = TradingClient(PAPER_KEY, PAPER_SECRET, url_override=sandbox.trading_url)
    account: Any = client.get_account()
    return str(account.account_number)


def test_login_with_live_keys_on_paper_says_so_and_stores_nothing(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    paper_sandbox: SandboxThread,
    ring: MemoryKeyring,
) -> None:
    monkeypatch.setenv(cr.ENV_TRADING_URL, paper_sandbox.trading_url)
    code, out, err = run(monkeypatch, capsys, "login", stdin=f"{LIVE_KEY}\n{LIVE_SECRET}\n")
    assert code == 2 and out == ""
    assert err == (
        "tapewatch: error: these keys were rejected by the paper endpoint: are they live keys? "
        "use 'tapewatch login --live'\n"
    )
    assert ring.data == {}


def test_login_live_checks_the_live_endpoint(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    live_sandbox: SandboxThread,
    ring: MemoryKeyring,
) -> None:
    monkeypatch.setenv(cr.ENV_TRADING_URL, live_sandbox.trading_url)
    code, _, err = run(
        monkeypatch, capsys, "login", "--live", stdin=f"{PAPER_KEY}\n{PAPER_SECRET}\n"
    )
    assert code == 2
    assert "rejected by the live endpoint: are they paper keys? use 'tapewatch login'" in err
    assert ring.data == {}
    code, out, _ = run(monkeypatch, capsys, "login", "--live", stdin=f"{LIVE_KEY}\n{LIVE_SECRET}\n")
    assert code == 0 and out.startswith("stored live keys for account ") and "…1QRS" in out
    assert set(ring.data) == {("tapewatch", "live")}


def test_login_unreachable_endpoint_is_one_line_and_stores_nothing(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], ring: MemoryKeyring
) -> None:
    with socket.socket() as s:  # a port that was free a moment ago: connection refused
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setenv(cr.ENV_TRADING_URL, f"http://127.0.0.1:{port}")
    code, out, err = run(monkeypatch, capsys, "login", stdin=f"{PAPER_KEY}\n{PAPER_SECRET}\n")
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and "cannot reach the paper endpoint" in err
    assert ring.data == {}


def test_a_silent_endpoint_times_out() -> None:
    with socket.socket() as server:  # listens, never answers
        server.bind(("127.0.0.1", 0))
        server.listen(1)
        url = f"http://127.0.0.1:{server.getsockname()[1]}"
        creds = cr.Credentials(PAPER_KEY, PAPER_SECRET, "paper", "keyring")
        with pytest.raises(cr.AccountUnreachable, match=r"did not answer within 0\.3 s"):
            cr.fetch_account(creds, url=url, timeout=0.3)


def test_login_needs_both_lines(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], ring: MemoryKeyring
) -> None:
    code, _, err = run(monkeypatch, capsys, "login", stdin=f"{PAPER_KEY}\n")
    assert code == 2 and "both an API key id and a secret key are needed" in err


def test_login_without_keyring_fails_before_asking(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    offer(monkeypatch)
    code, _, err = run(monkeypatch, capsys, "login", stdin=f"{PAPER_KEY}\n{PAPER_SECRET}\n")
    assert code == 2
    assert err.startswith("tapewatch: error: no usable keyring")
    assert_one_message(err)
    assert sys.stdin.read() == f"{PAPER_KEY}\n{PAPER_SECRET}\n"  # never read


def test_whoami_without_keys(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], ring: MemoryKeyring
) -> None:
    code, out, err = run(monkeypatch, capsys, "whoami")
    assert (code, out, err) == (
        2,
        "",
        "tapewatch: error: no paper credentials: run 'tapewatch login'\n",
    )
    code, _, err = run(monkeypatch, capsys, "whoami", "--live")
    assert err == "tapewatch: error: no live credentials: run 'tapewatch login --live'\n"


def test_whoami_from_environment_needs_no_keyring(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    paper_sandbox: SandboxThread,
) -> None:
    offer(monkeypatch)  # no keyring at all on this server
    monkeypatch.setenv(cr.ENV_TRADING_URL, paper_sandbox.trading_url)
    monkeypatch.setenv(cr.ENV_KEY_ID, PAPER_KEY)
    monkeypatch.setenv(cr.ENV_SECRET, PAPER_SECRET)
    code, out, err = run(monkeypatch, capsys, "whoami")
    assert code == 0
    assert "using API keys from APCA_API_KEY_ID/APCA_API_SECRET_KEY for paper" in err
    assert "source:   environment (APCA_API_KEY_ID/APCA_API_SECRET_KEY)" in out
    assert "status:   ACTIVE" in out


def test_whoami_with_rejected_stored_keys(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    paper_sandbox: SandboxThread,
    ring: MemoryKeyring,
) -> None:
    ring.data[("tapewatch", "paper")] = json.dumps({"key_id": LIVE_KEY, "secret": LIVE_SECRET})
    monkeypatch.setenv(cr.ENV_TRADING_URL, paper_sandbox.trading_url)
    code, out, err = run(monkeypatch, capsys, "whoami")
    assert code == 2
    assert "key:      …1QRS" in out
    assert "rejected by the paper endpoint: are they live keys?" in err


def test_logout_removes_one_mode_and_is_idempotent(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], ring: MemoryKeyring
) -> None:
    ring.data[("tapewatch", "paper")] = json.dumps({"key_id": PAPER_KEY, "secret": PAPER_SECRET})
    ring.data[("tapewatch", "live")] = json.dumps({"key_id": LIVE_KEY, "secret": LIVE_SECRET})
    code, out, _ = run(monkeypatch, capsys, "logout")
    assert code == 0 and out.startswith("removed the stored paper keys from ")
    assert set(ring.data) == {("tapewatch", "live")}
    code, out, _ = run(monkeypatch, capsys, "logout")
    assert (code, out) == (0, "no paper keys were stored: nothing to remove\n")
    code, out, _ = run(monkeypatch, capsys, "logout", "--live")
    assert code == 0 and ring.data == {}


def test_logout_without_keyring_is_the_one_message(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    offer(monkeypatch)
    code, _, err = run(monkeypatch, capsys, "logout")
    assert code == 2
    assert_one_message(err)
