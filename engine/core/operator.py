"""Who is at the controls: the local user and, over SSH, the client address.

Every operator action is journaled with this identity.
"""

from __future__ import annotations

import getpass
import os


def operator_identity() -> str:
    try:
        user = getpass.getuser()
    except Exception:  # no passwd entry in some containers
        user = os.environ.get("USER", "unknown")
    ssh = os.environ.get("SSH_CLIENT") or os.environ.get("SSH_CONNECTION")
    where = ssh.split()[0] if ssh else "local"
    return f"{user}@{where}"
