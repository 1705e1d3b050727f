"""``tapewatch service print``: a systemd user unit for ``tapewatch run --headless``, as printed.

The unit is ``Type=notify``: the engine says READY once it is connected and trading, keeps a
STATUS line with its trading state, and pings the watchdog from its event loop, so a wedged
engine is restarted (``Restart=on-failure``). ``ExecStart`` is the absolute path of this very
``tapewatch`` (a unit has no PATH of ours), and the environment carries what the keyring needs
from a user session (the D-Bus session bus under ``%t``, the runtime dir).
"""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path
from typing import Any

from tapewatch.engine.api.process import STOP_DEADLINE

WATCHDOG_SECONDS = 60  # the engine pings at half of it, from its event loop


def add_service_command(sub: Any) -> None:
    """Register ``service print`` (cheap: nothing of the engine is imported)."""
    service: argparse.ArgumentParser = sub.add_parser(
        "service", help="run the headless engine as a systemd user service"
    )
    actions = service.add_subparsers(dest="service_command", metavar="ACTION", required=True)
    printer = actions.add_parser("print", help="print a user unit for `tapewatch run --headless`")
    printer.add_argument("--live", action="store_true", help="trade the live account (real money)")
    printer.add_argument("--data-dir", type=Path, help="the data directory the service uses")
    printer.add_argument("--config", type=Path, dest="unit_config", help="config file to pass on")


def tapewatch_command() -> list[str]:
    """How a unit starts this installation: the ``tapewatch`` script beside the interpreter,
    else the interpreter running the CLI module."""
    script = Path(sys.executable).parent / "tapewatch"
    if script.is_file():
        return [str(script.absolute())]
    return [str(Path(sys.executable).absolute()), "-m", "tapewatch.console.cli"]


def unit_text(*, live: bool, data_dir: Path | None, config: Path | None) -> str:
    argv = [*tapewatch_command(), "run", "--headless"]
    if live:
        argv += ["--live", "--confirm-live"]
    if data_dir is not None:
        argv += ["--data-dir", str(data_dir.expanduser().absolute())]
    if config is not None:
        argv += ["--config", str(config.expanduser().absolute())]
    account = "live" if live else "paper"
    warning = "# LIVE: this unit trades real money whenever it runs.\n" if live else ""
    flag = " --live" if live else ""
    return f"""# tapewatch: the headless engine ({account}) as a systemd user service.
{warning}# Install:   mkdir -p ~/.config/systemd/user
#            tapewatch service print{flag} > ~/.config/systemd/user/tapewatch.service
#            systemctl --user daemon-reload && systemctl --user enable --now tapewatch
# Stay up after logout:  loginctl enable-linger "$USER"
# Watch it:  systemctl --user status tapewatch    journalctl --user -u tapewatch -f
# Keys come from the keyring (tapewatch login{flag}); a keyring that is locked
# without a login session can be replaced by an EnvironmentFile with APCA_API_KEY_ID and
# APCA_API_SECRET_KEY (or TAPEWATCH_KEYRING_PASSPHRASE for the file keyring), chmod 600,
# uncommented below.
[Unit]
Description=tapewatch headless trading engine ({account})
Wants=network-online.target
After=network-online.target

[Service]
Type=notify
NotifyAccess=main
ExecStart={shlex.join(argv)}
Restart=on-failure
RestartSec=15
WatchdogSec={WATCHDOG_SECONDS}
TimeoutStopSec={int(STOP_DEADLINE) + 5}
KillSignal=SIGTERM
UMask=0077
Environment=PYTHONUNBUFFERED=1
Environment=XDG_RUNTIME_DIR=%t
Environment=DBUS_SESSION_BUS_ADDRESS=unix:path=%t/bus
#EnvironmentFile=%h/.config/tapewatch/alpaca.env

[Install]
WantedBy=default.target
"""


def cmd_service(args: argparse.Namespace) -> int:
    if args.service_command == "print":
        sys.stdout.write(unit_text(live=args.live, data_dir=args.data_dir, config=args.unit_config))
        return 0
    return 2  # pragma: no cover - argparse requires an action
