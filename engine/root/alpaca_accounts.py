"""The host's ``BrokerSource`` over Alpaca: keys read once, before any screen opens.

Why read them up front: a keyring may talk D-Bus or run Argon2, and no keyring backend may
prompt while the TUI owns the terminal. So ``load_accounts`` runs in ``launch`` (no screen yet)
and this object only hands the keys out. Naming the account behind the live keys is a REST call:
``look_up``/``alook_up`` run it in a thread and ``describe`` shows the last answer.

``APCA_API_KEY_ID``/``APCA_API_SECRET_KEY`` are one key pair: they serve the mode the console
starts in (paper). Live keys for the ``m`` switch come from the keyring only
(``tapewatch login --live``), so an environment paper key is never offered as a live account.

Alpaca's SDK is imported only inside ``connect``: the console's launch must stay light.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING

from tapewatch.engine.model.types import Mode
from tapewatch.engine.root.host import AccountUnavailable
from tapewatch.engine.settings.credentials import (
    ENV_KEY_ID,
    ENV_SECRET,
    CredentialError,
    Credentials,
    KeyringUnavailable,
    KeysRejected,
    fetch_account,
    load_credentials,
)

if TYPE_CHECKING:
    from tapewatch.engine.adapters.alpaca.endpoints import Endpoints
    from tapewatch.engine.adapters.alpaca.rest import RetryPolicy
    from tapewatch.engine.core.broker import Broker
    from tapewatch.engine.core.clock import Clock
log = logging.getLogger("tapewatch.accounts")

Loader = Callable[[Mode, Mapping[str, str]], Credentials | None]
"""Reads the keys of one mode given an environment (``load_credentials`` in production)."""


def _load(mode: Mode, env: Mapping[str, str]) -> Credentials | None:
    return load_credentials(mode, env=env)


def _flag(mode: Mode) -> str:
    return " --live" if mode is Mode.LIVE else ""


def rejected(mode: Mode, endpoint: str) -> str:
    """A 401: almost always keys of the other mode. Say exactly that and what to do."""
    name = mode.value.lower()
    other = "paper" if mode is Mode.LIVE else "live"
    return (
        f"the {name} endpoint {endpoint} refused the {name} keys (HTTP 401): are they {other} "
        f"keys, or revoked? store {name} keys with 'tapewatch login{_flag(mode)}'"
    )


def unreachable(mode: Mode, endpoint: str, exc: BaseException) -> str:
    """Alpaca did not answer: the console stops rather than quietly opening the demo."""
    return (
        f"could not reach Alpaca ({mode.value.lower()}) at {endpoint}: {exc}; check the network "
        "or the endpoint settings, or run 'tapewatch demo' for the offline demo"
    )


def busy(mode: Mode, endpoint: str, exc: BaseException) -> str:
    """A 429, 5xx or dropped connection on a switch: it passes; the switch can be asked again.

    (Start-up waits such failures out; a switch is a key press, so it says so and returns.)"""
    return (
        f"Alpaca ({mode.value.lower()}) at {endpoint} is not answering right now ({exc}); "
        "nothing changed: try the switch again in a minute"
    )


class AlpacaAccounts:
    """Paper and live Alpaca accounts from keys loaded at start-up (see the module docstring)."""

    def __init__(
        self,
        keys: Mapping[Mode, Credentials],
        endpoints: Mapping[Mode, Endpoints],
        *,
        problems: Mapping[Mode, str] | None = None,
        timeout: float = 10.0,
        rate_limit_per_minute: int = 200,
        policy: RetryPolicy | None = None,
    ) -> None:
        self._keys = {mode: keys[mode] for mode in (Mode.PAPER, Mode.LIVE) if mode in keys}
        self._endpoints = dict(endpoints)
        self._problems = dict(problems or {})
        self._timeout = timeout
        self._rate_limit = rate_limit_per_minute
        self._policy = policy
        self._clock: Clock | None = None
        self._described: dict[Mode, str] = {}
        self._lookups: set[asyncio.Task[str]] = set()

    # -- what is available -----------------------------------------------------------------
    def live_available(self) -> bool:
        return Mode.LIVE in self._keys

    def paper_available(self) -> bool:
        return Mode.PAPER in self._keys

    def keys(self, mode: Mode) -> Credentials | None:
        return self._keys.get(mode)

    def endpoints(self, mode: Mode) -> Endpoints:
        return self._endpoints[mode]

    def problem(self, mode: Mode) -> str | None:
        """Why the keys of ``mode`` could not be read (a keyring failure), else None."""
        return self._problems.get(mode)

    def use_clock(self, clock: Clock) -> None:
        """Brokers connected from now on stamp events with the session's clock."""
        self._clock = clock

    # -- naming the account ----------------------------------------------------------------
    def look_up(self, mode: Mode) -> str:
        """Blocking: ask Alpaca whose keys these are; remember and return the description."""
        creds = self._keys.get(mode)
        if creds is None:
            return self.describe(mode)
        url = self._endpoints[mode].trading
        try:
            info = fetch_account(creds, url=url, timeout=self._timeout)
        except KeysRejected:
            text = f"{mode.value} key {creds.hint} at {url}: REFUSED ({rejected(mode, url)})"
        except CredentialError as exc:
            text = f"{mode.value} key {creds.hint} at {url} (account not read: {exc})"
        else:
            text = f"{mode.value} account {info.account_number} ({info.status}) at {url}"
        self._described[mode] = text
        return text

    async def alook_up(self, mode: Mode) -> str:
        """``look_up`` in a worker thread: the event loop never waits on Alpaca."""
        return await asyncio.to_thread(self.look_up, mode)

    def look_up_soon(self, mode: Mode) -> None:
        """Start ``alook_up`` on the running loop (the result lands in ``describe``)."""
        if mode not in self._keys:
            return
        task = asyncio.get_running_loop().create_task(self.alook_up(mode))
        self._lookups.add(task)
        task.add_done_callback(self._lookups.discard)

    def described(self, mode: Mode) -> bool:
        """True once a look-up answered (or failed) for ``mode``."""
        return mode in self._described

    def describe(self, mode: Mode) -> str:
        if mode in self._described:
            return self._described[mode]
        creds = self._keys.get(mode)
        if creds is None:
            why = self._problems.get(mode)
            return f"no {mode.value.lower()} credentials stored" + (f" ({why})" if why else "")
        url = self._endpoints[mode].trading
        return f"{mode.value} key {creds.hint} at {url} (account number not read yet)"

    # -- connecting ------------------------------------------------------------------------
    async def connect(self, mode: Mode) -> tuple[Broker, str, str]:
        """An ``AlpacaBroker`` for ``mode``, started (trade_updates open) and its account read."""
        creds = self._keys.get(mode)
        if creds is None:
            raise AccountUnavailable(
                self.describe(mode) + f"; add them with 'tapewatch login{_flag(mode)}'"
            )
        from tapewatch.engine.adapters.alpaca.errors import is_transient
        from tapewatch.engine.core.broker import BrokerError
        from tapewatch.engine.root.live import open_broker  # alpaca-py: only when trading

        endpoints = self._endpoints[mode]
        broker = open_broker(
            creds,
            endpoints,
            clock=self._clock,
            timeout=self._timeout,
            policy=self._policy,
            rate_limit_per_minute=self._rate_limit,
        )
        try:
            await broker.start()
            account = await broker.fetch_account()
        except BrokerError as exc:
            await broker.close()
            if exc.status == 401:
                raise AccountUnavailable(rejected(mode, endpoints.trading)) from None
            if is_transient(exc):
                raise AccountUnavailable(busy(mode, endpoints.trading, exc)) from None
            raise AccountUnavailable(unreachable(mode, endpoints.trading, exc)) from None
        except BaseException:
            await broker.close()
            raise
        label = account.account_id or creds.hint
        self._described[mode] = f"{mode.value} account {label} ({account.status}) at " + (
            endpoints.trading
        )
        return broker, label, endpoints.trading


def load_accounts(
    *,
    env: Mapping[str, str] | None = None,
    endpoint_settings: Mapping[str, str] | None = None,
    endpoints: Mapping[Mode, Endpoints] | None = None,
    load: Loader | None = None,
    timeout: float = 10.0,
    rate_limit_per_minute: int = 200,
) -> AlpacaAccounts:
    """Read paper and live keys once (blocking: call before the TUI owns the terminal).

    Paper keys: the environment, else the keyring. Live keys: the keyring only. A keyring that
    cannot be used is remembered as the mode's ``problem`` (the console then explains); any
    other credential error (one variable of the pair missing, unreadable stored keys) and bad
    endpoint settings raise ``CredentialError``/``ConfigError`` for a one-line exit.
    ``endpoints`` (the settings' own, config file and environment applied) wins over
    ``endpoint_settings``.
    """
    from tapewatch.engine.adapters.alpaca.endpoints import resolve_endpoints

    load = load or _load
    env = dict(os.environ if env is None else env)
    keyring_only = {k: v for k, v in env.items() if k not in (ENV_KEY_ID, ENV_SECRET)}
    keys: dict[Mode, Credentials] = {}
    problems: dict[Mode, str] = {}
    for mode, source in ((Mode.PAPER, env), (Mode.LIVE, keyring_only)):
        try:
            creds = load(mode, source)
        except KeyringUnavailable as exc:
            log.warning("%s keys unavailable: %s", mode.value.lower(), exc)
            problems[mode] = str(exc)
            continue
        except CredentialError as exc:
            if mode is Mode.PAPER:
                raise
            log.warning("live keys unavailable: %s", exc)
            problems[Mode.LIVE] = str(exc)
            continue
        if creds is not None:
            keys[mode] = creds
    chosen = dict(endpoints) if endpoints is not None else {}  # the settings' (file + env)
    for mode in (Mode.PAPER, Mode.LIVE):
        if mode not in chosen:
            chosen[mode] = resolve_endpoints(mode, env=env, config=endpoint_settings)
    return AlpacaAccounts(
        keys,
        chosen,
        problems=problems,
        timeout=timeout,
        rate_limit_per_minute=rate_limit_per_minute,
    )
