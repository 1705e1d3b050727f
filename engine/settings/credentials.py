"""Alpaca API keys: where they come from, where they are kept, and whether they work.

Why this module exists: a trading console on a headless server meets every keyring failure
there is (no Secret Service, a locked one, keyrings.alt silently writing base64 plaintext,
keyrings.cryptfile prompting with getpass over a running TUI). So the backend is chosen and
pinned once, vetted, and every failure becomes one ``CredentialError`` that says what to do.

Storage: keyring service ``tapewatch``, one entry per mode (username ``paper`` or ``live``)
holding the JSON ``{"key_id": ..., "secret": ...}``, so a key pair is stored and removed
atomically and paper keys can never be read as live ones.

Backend choice (``select_backend``), in order:

1. an explicit ``backend`` argument, else keyring's own explicit configuration
   (``PYTHON_KEYRING_BACKEND`` or ``keyringrc.cfg``);
2. else, when ``TAPEWATCH_KEYRING_PASSPHRASE`` is set, the encrypted file keyring of
   ``keyrings.cryptfile`` (setting a passphrase is how a user asks for it);
3. else keyring's recommended backend (the highest priority one). The ``chainer`` is unwrapped
   to the best backend it chains, because chaining would read through plaintext files and let
   an encrypted file keyring prompt.

The choice is then vetted: ``fail``/``null`` (no keyring) are always refused; plaintext
backends (``keyrings.alt``, any ``Plaintext*``) only with ``allow_plaintext`` (the
``--allow-plaintext-keyring`` flag or ``TAPEWATCH_ALLOW_PLAINTEXT_KEYRING=1``); an encrypted
file keyring only with its passphrase in ``TAPEWATCH_KEYRING_PASSPHRASE``, so it never prompts.

``APCA_API_KEY_ID``/``APCA_API_SECRET_KEY`` win over the keyring for the mode asked for (for
unattended runs), and the keyring is then not touched at all; ``Credentials.notice`` says so.
Secrets never appear in a repr, a log line or an exception message.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import logging
import os
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from tapewatch.engine.settings.errors import UsageError
from tapewatch.engine.settings.fields import ENV_TRADING_URL  # defined once, with its setting

if TYPE_CHECKING:
    from keyring.backend import KeyringBackend

# keyring (and its backends' D-Bus/crypto stacks) is imported by the functions that use it:
# registering the login/logout/whoami flags must not slow the console's first frame.

log = logging.getLogger(__name__)

SERVICE = "tapewatch"
ENV_KEY_ID = "APCA_API_KEY_ID"
ENV_SECRET = "APCA_API_SECRET_KEY"
ENV_PASSPHRASE = "TAPEWATCH_KEYRING_PASSPHRASE"
ENV_ALLOW_PLAINTEXT = "TAPEWATCH_ALLOW_PLAINTEXT_KEYRING"
DEFAULT_TRADING_URLS = {
    "paper": "https://paper-api.alpaca.markets",
    "live": "https://api.alpaca.markets",
}

ModeName = Literal["paper", "live"]
Source = Literal["keyring", "environment"]

WAYS_FORWARD = (
    'Ways forward: unlock the Secret Service (e.g. printf %s "$PASSWORD" | '
    "gnome-keyring-daemon --unlock --components=secrets, inside a D-Bus session); "
    "or use the encrypted file keyring (pip install keyrings.cryptfile and set "
    f"{ENV_PASSPHRASE}); or set {ENV_KEY_ID}/{ENV_SECRET} in the environment."
)


class CredentialError(UsageError):
    """Anything wrong with keys or the keyring; the message is one line, free of secrets
    (exit status 2: the fix is the user's)."""


class KeyringUnavailable(CredentialError):
    """No usable keyring: the message lists the ways forward."""


class KeysRejected(CredentialError):
    """The endpoint refused the keys (401/403): usually paper keys on live or the reverse."""


class AccountUnreachable(CredentialError):
    """The account endpoint could not be asked (network, timeout, 5xx, odd answer)."""


def normalize_mode(mode: object) -> ModeName:
    """``"paper"``/``"live"`` from a string or ``engine.model.types.Mode`` (a StrEnum)."""
    name = str(mode).strip().lower()
    if name == "paper":
        return "paper"
    if name == "live":
        return "live"
    raise ValueError(f"credentials exist for paper or live only, not {mode!r}")


def key_hint(key_id: str) -> str:
    """The key id's last 4 characters, which is all a screen or log may show."""
    return "…" + (key_id[-4:] if len(key_id) >= 8 else "")


@dataclass(frozen=True, slots=True, repr=False)
class Credentials:
    """One Alpaca key pair and where it came from; its text forms never show the secret."""

    key_id: str
    secret: str
    mode: ModeName
    source: Source

    @property
    def hint(self) -> str:
        return key_hint(self.key_id)

    @property
    def notice(self) -> str | None:
        """The visible notice when the environment overrides the keyring, else None."""
        if self.source != "environment":
            return None
        return f"using API keys from {ENV_KEY_ID}/{ENV_SECRET} for {self.mode} (key {self.hint})"

    def __repr__(self) -> str:
        return f"Credentials(mode={self.mode!r}, key={self.hint!r}, source={self.source!r})"

    def __str__(self) -> str:
        return f"{self.mode} key {self.hint} from the {self.source}"


@dataclass(frozen=True, slots=True)
class AccountInfo:
    """What ``whoami`` and ``login`` show about the account behind a key pair."""

    account_number: str
    status: str
    mode: ModeName
    endpoint: str


# -- backend selection -------------------------------------------------------------------

_lock = threading.RLock()
_pinned: KeyringBackend | None = None


def backend_name(backend: KeyringBackend) -> str:
    cls = type(backend)
    return f"{cls.__module__}.{cls.__qualname__}"


def _unavailable(reason: str, extra: str = "") -> KeyringUnavailable:
    reason = " ".join(reason.split()).rstrip(".")
    return KeyringUnavailable(f"no usable keyring: {reason}. {WAYS_FORWARD}{extra}")


def _is_no_keyring(backend: KeyringBackend) -> bool:
    from keyring.backends import fail, null

    return isinstance(backend, fail.Keyring | null.Keyring)


def _is_encrypted_file(backend: KeyringBackend) -> bool:
    """keyrings.cryptfile (and keyrings.alt's EncryptedKeyring): a passphrase, else a prompt."""
    return isinstance(getattr(type(backend), "keyring_key", None), property)


def _is_plaintext(backend: KeyringBackend) -> bool:
    cls = type(backend)
    return cls.__module__.startswith("keyrings.alt") or "plaintext" in cls.__name__.lower()


def _unwrap_chainer(backend: KeyringBackend) -> KeyringBackend:
    from keyring.backends.chainer import ChainerBackend

    if not isinstance(backend, ChainerBackend):
        return backend
    from keyring.backends import fail

    chained: list[KeyringBackend] = list(ChainerBackend.backends)
    return chained[0] if chained else fail.Keyring()


def _detect(env: Mapping[str, str]) -> KeyringBackend:
    import keyring.backend
    import keyring.core

    explicit = keyring.core.load_env() or keyring.core.load_config()
    if explicit is not None:
        return explicit
    if env.get(ENV_PASSPHRASE):
        try:
            from keyrings.cryptfile.cryptfile import CryptFileKeyring
        except ImportError:
            raise _unavailable(
                f"{ENV_PASSPHRASE} is set but keyrings.cryptfile is not installed"
            ) from None
        return CryptFileKeyring()
    from keyring.backends import fail

    candidates = keyring.backend.get_all_keyring()
    best = max(candidates, key=keyring.backend.by_priority, default=fail.Keyring())
    return best


def _vet(backend: KeyringBackend, allow_plaintext: bool, env: Mapping[str, str]) -> None:
    name = backend_name(backend)
    if _is_no_keyring(backend):
        raise _unavailable(f"keyring found no backend ({name})")
    if _is_encrypted_file(backend):
        passphrase = env.get(ENV_PASSPHRASE, "")
        if not passphrase.strip():
            raise _unavailable(
                f"the encrypted file keyring ({name}) needs its passphrase in {ENV_PASSPHRASE}, "
                "and tapewatch never lets it prompt"
            )
        try:
            vars_backend: Any = backend
            vars_backend.keyring_key = passphrase
        except Exception as exc:  # wrong passphrase is "MAC check failed"
            raise _unavailable(
                f"the passphrase in {ENV_PASSPHRASE} does not open the encrypted file keyring "
                f"({_reason(exc, (passphrase,))})"
            ) from None
        return
    if _is_plaintext(backend) and not allow_plaintext:
        raise _unavailable(
            f"refusing the plaintext keyring {name}, which stores secrets unencrypted",
            " To use it anyway, pass --allow-plaintext-keyring.",
        )
    try:  # a locked Secret Service fails here, before anyone types keys for nothing
        backend.get_password(SERVICE, "probe")
    except Exception as exc:
        raise _keyring_failure(f"open the keyring {name}", exc, ()) from None


def select_backend(
    allow_plaintext: bool = False,
    *,
    env: Mapping[str, str] | None = None,
    backend: KeyringBackend | None = None,
) -> KeyringBackend:
    """Choose, vet and pin (``keyring.set_keyring``) the backend; raise KeyringUnavailable."""
    global _pinned
    env = os.environ if env is None else env
    allow = allow_plaintext or env.get(ENV_ALLOW_PLAINTEXT, "") == "1"
    with _lock:
        try:
            chosen = backend if backend is not None else _detect(env)
            chosen = _unwrap_chainer(chosen)
        except CredentialError:
            raise
        except Exception as exc:  # a broken keyring config or plugin
            raise _unavailable(f"keyring could not choose a backend ({_reason(exc)})") from None
        _vet(chosen, allow, env)
        import keyring

        keyring.set_keyring(chosen)
        _pinned = chosen
        log.info("keyring backend: %s", backend_name(chosen))
        return chosen


def current_backend() -> KeyringBackend | None:
    """The pinned backend, or None before ``select_backend``."""
    return _pinned


def reset_backend() -> None:
    """Forget the pinned backend (tests; a process otherwise selects once)."""
    global _pinned
    with _lock:
        _pinned = None


def _backend(env: Mapping[str, str]) -> KeyringBackend:
    return _pinned if _pinned is not None else select_backend(env=env)


# -- errors without secrets --------------------------------------------------------------


def _reason(exc: BaseException, secrets: tuple[str, ...] = ()) -> str:
    text = " ".join(str(exc).split()).rstrip(".") or "no details"
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    if len(text) > 200:
        text = text[:200] + "…"
    return f"{type(exc).__name__}: {text}"


def _keyring_failure(action: str, exc: Exception, secrets: tuple[str, ...]) -> CredentialError:
    return _unavailable(f"could not {action} ({_reason(exc, secrets)})")


# -- load, store, delete -----------------------------------------------------------------


def env_credentials(mode: object, env: Mapping[str, str] | None = None) -> Credentials | None:
    """Keys from APCA_API_KEY_ID/APCA_API_SECRET_KEY; one without the other is an error."""
    env = os.environ if env is None else env
    key_id = env.get(ENV_KEY_ID, "").strip()
    secret = env.get(ENV_SECRET, "").strip()
    if not key_id and not secret:
        return None
    if not key_id or not secret:
        missing = ENV_SECRET if key_id else ENV_KEY_ID
        present = ENV_KEY_ID if key_id else ENV_SECRET
        raise CredentialError(f"{present} is set but {missing} is not: set both or neither")
    return Credentials(key_id, secret, normalize_mode(mode), "environment")


def load_credentials(mode: object, *, env: Mapping[str, str] | None = None) -> Credentials | None:
    """The keys for ``mode``: the environment first, else the keyring; None if neither has any.

    Blocking (a keyring may talk D-Bus or run Argon2): from async code use ``aload_credentials``.
    """
    env = os.environ if env is None else env
    name = normalize_mode(mode)
    from_env = env_credentials(name, env)
    if from_env is not None:
        log.warning("%s", from_env.notice)
        return from_env
    backend = _backend(env)
    try:
        stored = backend.get_password(SERVICE, name)
    except Exception as exc:  # every backend failure becomes one message
        raise _keyring_failure(f"read the {name} keys from the keyring", exc, ()) from None
    if stored is None:
        return None
    try:
        data = json.loads(stored)
        key_id, secret = str(data["key_id"]), str(data["secret"])
    except (ValueError, KeyError, TypeError):
        raise CredentialError(
            f"the stored {name} keys are unreadable: run 'tapewatch login{_flag(name)}' again"
        ) from None
    return Credentials(key_id, secret, name, "keyring")


async def aload_credentials(
    mode: object, *, env: Mapping[str, str] | None = None
) -> Credentials | None:
    """``load_credentials`` in a worker thread, so the event loop never waits on a keyring."""
    return await asyncio.to_thread(load_credentials, mode, env=env)


def store_credentials(
    mode: object, key_id: str, secret: str, *, env: Mapping[str, str] | None = None
) -> Credentials:
    """Keep a key pair for ``mode`` in the pinned keyring (replacing what was there)."""
    env = os.environ if env is None else env
    name = normalize_mode(mode)
    key_id, secret = key_id.strip(), secret.strip()
    if not key_id or not secret:
        raise CredentialError("both a key id and a secret are needed")
    backend = _backend(env)
    blob = json.dumps({"key_id": key_id, "secret": secret})
    try:
        backend.set_password(SERVICE, name, blob)
    except Exception as exc:
        raise _keyring_failure(
            f"store the {name} keys in the keyring", exc, (blob, secret, key_id)
        ) from None
    return Credentials(key_id, secret, name, "keyring")


def delete_credentials(mode: object, *, env: Mapping[str, str] | None = None) -> bool:
    """Remove the stored keys for ``mode``; False when there were none (idempotent)."""
    env = os.environ if env is None else env
    name = normalize_mode(mode)
    backend = _backend(env)
    from keyring.errors import PasswordDeleteError

    try:
        if backend.get_password(SERVICE, name) is None:
            return False
        backend.delete_password(SERVICE, name)
    except PasswordDeleteError:
        return False
    except Exception as exc:
        raise _keyring_failure(f"remove the {name} keys from the keyring", exc, ()) from None
    return True


def _flag(mode: ModeName) -> str:
    return " --live" if mode == "live" else ""


# -- asking Alpaca who the keys belong to -------------------------------------------------


def trading_url(mode: object, env: Mapping[str, str] | None = None) -> str:
    """The trading REST base for ``mode``: TAPEWATCH_ALPACA_TRADING_URL, else Alpaca's host."""
    env = os.environ if env is None else env
    return env.get(ENV_TRADING_URL, "").strip() or DEFAULT_TRADING_URLS[normalize_mode(mode)]


def rejected_message(mode: ModeName) -> str:
    """A 401 is almost always paper keys on the live endpoint or the reverse: say exactly that."""
    if mode == "paper":
        return (
            "these keys were rejected by the paper endpoint: are they live keys? "
            "use 'tapewatch login --live'"
        )
    return (
        "these keys were rejected by the live endpoint: are they paper keys? use 'tapewatch login'"
    )


def _new_session(timeout: float) -> Any:
    import requests

    class _TimeoutSession(requests.Session):
        """The SDK's session has no timeout; a hung server would block forever."""

        def request(self, method: Any, url: Any, *args: Any, **kwargs: Any) -> Any:
            kwargs.setdefault("timeout", timeout)
            return super().request(method, url, *args, **kwargs)

    return _TimeoutSession()


def _get_account(creds: Credentials, url: str, timeout: float) -> AccountInfo:
    from alpaca.trading.client import TradingClient

    client = TradingClient(
        creds.key_id, creds.secret, paper=creds.mode == "paper", url_override=url
    )
    client._session = _new_session(timeout)
    client._retry = 0  # one attempt: a login answers fast or says why, no hidden 9 s of sleeps
    account: Any = client.get_account()
    status = getattr(account.status, "value", account.status)
    return AccountInfo(str(account.account_number), str(status), creds.mode, url)


def fetch_account(
    creds: Credentials,
    *,
    url: str | None = None,
    timeout: float = 10.0,
    env: Mapping[str, str] | None = None,
) -> AccountInfo:
    """Ask the account endpoint of ``creds.mode`` who these keys belong to.

    Runs in a worker thread with an overall timeout; raises KeysRejected on 401/403 and
    AccountUnreachable on anything else, with messages that never contain the keys.
    """
    import requests
    from alpaca.common.exceptions import APIError

    endpoint = url or trading_url(creds.mode, env)
    secrets = (creds.secret, creds.key_id)
    where = f"the {creds.mode} endpoint {endpoint}"
    pool = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="tapewatch-account")
    try:
        future = pool.submit(_get_account, creds, endpoint, timeout)
        return future.result(timeout=timeout + 1.0)
    except APIError as exc:
        status = exc.status_code
        if status == 401:
            raise KeysRejected(rejected_message(creds.mode)) from None
        if status == 403:
            raise KeysRejected(
                f"{where} refused these keys (HTTP 403): is the account blocked or the key "
                "disabled?"
            ) from None
        raise AccountUnreachable(f"{where} answered HTTP {status}") from None
    except concurrent.futures.TimeoutError:
        raise AccountUnreachable(f"{where} did not answer within {timeout:g} s") from None
    except requests.Timeout:
        raise AccountUnreachable(f"{where} did not answer within {timeout:g} s") from None
    except requests.RequestException as exc:
        raise AccountUnreachable(f"cannot reach {where} ({type(exc).__name__})") from None
    except Exception as exc:  # an odd answer must not leak keys or a traceback
        raise AccountUnreachable(
            f"unexpected answer from {where} ({_reason(exc, secrets)})"
        ) from None
    finally:
        pool.shutdown(wait=False, cancel_futures=True)
