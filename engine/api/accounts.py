"""The broker accounts a host may trade, and the keys behind them: ``engine.root`` and
``engine.settings.credentials`` as a front end names them.

``load_accounts`` reads the keys once, before any screen opens (a keyring may talk D-Bus);
``tapewatch login`` stores and removes them with the credential calls below.
"""

from tapewatch.engine.root.alpaca_accounts import AlpacaAccounts, load_accounts
from tapewatch.engine.settings.credentials import (
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

__all__ = [
    "ENV_KEY_ID",
    "ENV_SECRET",
    "AccountInfo",
    "AlpacaAccounts",
    "CredentialError",
    "Credentials",
    "ModeName",
    "backend_name",
    "current_backend",
    "delete_credentials",
    "env_credentials",
    "fetch_account",
    "load_accounts",
    "load_credentials",
    "select_backend",
    "store_credentials",
]
