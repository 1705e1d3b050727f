"""``tapewatch login``, ``logout`` and ``whoami``: Alpaca keys in the OS keyring.

Kept out of cli.py so the entry point stays small; the lead wires these in with
``add_credential_commands(subparsers)`` plus the ``COMMANDS`` table below. Every failure is
one line on stderr and exit status 2; the secret is never printed, and the key id only as its
last 4 characters.
"""

from __future__ import annotations

import argparse
import getpass
import os
import sys
from collections.abc import Callable
from typing import Any

from tapewatch.engine.api.accounts import (
    ENV_KEY_ID,
    ENV_SECRET,
    AccountInfo,
    CredentialError,
    Credentials,
    ModeName,
    backend_name,
    current_backend,
    delete_credentials,
    env_credentials,
    fetch_account,
    load_credentials,
    select_backend,
    store_credentials,
)

FAILED = 2
PROG = "tapewatch"


def _mode(args: argparse.Namespace) -> ModeName:
    return "live" if getattr(args, "live", False) else "paper"


def _login_cmd(mode: ModeName) -> str:
    return "tapewatch login --live" if mode == "live" else "tapewatch login"


def _error(message: str) -> int:
    sys.stderr.write(f"{PROG}: error: {message}\n")
    return FAILED


def _note(message: str) -> None:
    sys.stderr.write(f"{PROG}: {message}\n")


def _env_keys_set() -> bool:
    return bool(os.environ.get(ENV_KEY_ID) or os.environ.get(ENV_SECRET))


def _url(args: argparse.Namespace) -> str | None:
    url = getattr(args, "trading_url", None)
    return str(url) if url else None


def _read_keys(mode: ModeName) -> tuple[str, str]:
    """No echo on a terminal; two lines from stdin otherwise (scripts and tests)."""
    stdin = sys.stdin
    if stdin is None:
        raise CredentialError("no input to read the keys from")
    if stdin.isatty():
        key_id = getpass.getpass(f"Alpaca {mode} API key id: ")
        secret = getpass.getpass(f"Alpaca {mode} API secret key: ")
    else:
        key_id = stdin.readline()
        secret = stdin.readline()
    key_id, secret = key_id.strip(), secret.strip()
    if not key_id or not secret:
        raise CredentialError("both an API key id and a secret key are needed")
    return key_id, secret


def cmd_login(args: argparse.Namespace) -> int:
    """Ask for a key pair, verify it against the mode's account endpoint, then store it."""
    mode = _mode(args)
    if _env_keys_set():
        _note(f"note: {ENV_KEY_ID}/{ENV_SECRET} are set and take precedence over stored keys")
    try:
        backend = select_backend(bool(getattr(args, "plaintext_ok", False)))
        key_id, secret = _read_keys(mode)
    except EOFError:
        return _error("no keys given")
    except CredentialError as exc:
        return _error(str(exc))
    candidate = Credentials(key_id, secret, mode, "keyring")
    try:
        account = fetch_account(candidate, url=_url(args))
        stored = store_credentials(mode, key_id, secret)
    except CredentialError as exc:
        return _error(str(exc))
    print(
        f"stored {mode} keys for account {account.account_number} (key {stored.hint}) "
        f"in {backend_name(backend)}"
    )
    return 0


def cmd_logout(args: argparse.Namespace) -> int:
    """Remove the mode's stored keys; nothing stored is a note, not an error."""
    mode = _mode(args)
    try:
        backend = select_backend(bool(getattr(args, "plaintext_ok", False)))
        removed = delete_credentials(mode)
    except CredentialError as exc:
        return _error(str(exc))
    if removed:
        print(f"removed the stored {mode} keys from {backend_name(backend)}")
    else:
        print(f"no {mode} keys were stored: nothing to remove")
    if _env_keys_set():
        _note(f"note: {ENV_KEY_ID}/{ENV_SECRET} are still set and will still be used")
    return 0


def _source_line(creds: Credentials) -> str:
    if creds.source == "environment":
        return f"environment ({ENV_KEY_ID}/{ENV_SECRET})"
    backend = current_backend()
    return f"keyring ({backend_name(backend)})" if backend is not None else "keyring"


def _account_lines(account: AccountInfo) -> list[str]:
    return [
        f"account:  {account.account_number}",
        f"status:   {account.status}",
        f"endpoint: {account.endpoint}",
    ]


def cmd_whoami(args: argparse.Namespace) -> int:
    """Key hint, account number, status, mode and where the keys came from; never the secret."""
    mode = _mode(args)
    try:
        creds = env_credentials(mode)
        if creds is None:
            select_backend(bool(getattr(args, "plaintext_ok", False)))
            creds = load_credentials(mode)
    except CredentialError as exc:
        return _error(str(exc))
    if creds is None:
        return _error(f"no {mode} credentials: run '{_login_cmd(mode)}'")
    if creds.notice:
        _note(creds.notice)
    print(f"mode:     {mode}")
    print(f"key:      {creds.hint}")
    print(f"source:   {_source_line(creds)}")
    try:
        account = fetch_account(creds, url=_url(args))
    except CredentialError as exc:
        return _error(str(exc))
    print("\n".join(_account_lines(account)))
    return 0


COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {
    "login": cmd_login,
    "logout": cmd_logout,
    "whoami": cmd_whoami,
}


def add_credential_commands(subparsers: Any) -> None:
    """Register ``login``, ``logout`` and ``whoami`` (each with --live and the plaintext opt-in)."""
    helps = {
        "login": "verify Alpaca API keys and store them in the OS keyring",
        "logout": "remove the stored Alpaca API keys",
        "whoami": "show the account behind the stored keys (never the secret)",
    }
    for name, text in helps.items():
        parser = subparsers.add_parser(name, help=text, description=text)
        parser.add_argument(
            "--live", action="store_true", help="the live account's keys (default: paper)"
        )
        parser.add_argument(
            "--allow-plaintext-keyring",
            dest="plaintext_ok",
            action="store_true",
            help="accept a keyring backend that stores secrets unencrypted (not recommended)",
        )
        parser.set_defaults(credential_command=COMMANDS[name])
