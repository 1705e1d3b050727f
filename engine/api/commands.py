"""What the console may ask of the engine: each command is frozen data naming who issued it.

Commands carry no objects (no broker, no engine): switching to live is ``SwitchAccount(LIVE)``
and the host, which owns brokers and keys, does the connecting. ``who`` is journaled with every
action the command causes. ``command_to_data``/``command_from_data`` give the wire form.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from tapewatch.engine.model.serde import from_data, to_data
from tapewatch.engine.model.types import Mode

Choice = Literal["adopt", "flatten", "keep_paused"]
CHOICES: tuple[Choice, ...] = ("adopt", "flatten", "keep_paused")


@dataclass(frozen=True, slots=True)
class Command:
    who: str


@dataclass(frozen=True, slots=True)
class Pause(Command):
    """No new entries from now on; exits and flatten still go through."""

    reason: str = "paused by operator"


@dataclass(frozen=True, slots=True)
class Resume(Command):
    """Lift the operator's pause (a tripped breaker still holds its state)."""


@dataclass(frozen=True, slots=True)
class PreviewFlatten(Command):
    """The exact orders ``Flatten`` would send now; nothing is sent or journaled."""


@dataclass(frozen=True, slots=True)
class Flatten(Command):
    """Cancel open orders and close every position; allowed even when HALTED.

    ``pause`` also pauses new entries first (journaled as ``flatten_and_pause``), so the
    strategy cannot buy straight back on its next signal; ``Resume`` lifts it."""

    pause: bool = False


@dataclass(frozen=True, slots=True)
class ResetBreaker(Command):
    """Re-arm one tripped breaker by name, or every one (``None``)."""

    name: str | None = None


@dataclass(frozen=True, slots=True)
class PreviewSwitch(Command):
    """Which account ``SwitchAccount(mode)`` would trade (for the confirmation screen)."""

    mode: Mode


@dataclass(frozen=True, slots=True)
class SwitchAccount(Command):
    """Trade ``mode``'s account from now on; refused while HALTED or with orders in flight."""

    mode: Mode


@dataclass(frozen=True, slots=True)
class SetDemoSpeed(Command):
    """Demo pacing: simulated bar intervals per real one."""

    speed: float


@dataclass(frozen=True, slots=True)
class SkipToSignal(Command):
    """Demo: replay unpaced to just before the strategy's next signal, then at the set pace."""


@dataclass(frozen=True, slots=True)
class ResolveReconciliation(Command):
    """The operator's answer to the pending reconciliation differences."""

    choice: Choice


@dataclass(frozen=True, slots=True)
class ConfirmOrder(Command):
    """Send the strategy order that waits for confirmation (confirm mode) now.

    Refused for an entry whose time ran out: it was skipped and is never sent late."""

    client_order_id: str


@dataclass(frozen=True, slots=True)
class SkipOrder(Command):
    """Do not send the entry that waits for confirmation. An exit cannot be skipped: it is
    sent when its time runs out."""

    client_order_id: str


@dataclass(frozen=True, slots=True)
class SetConfirmMode(Command):
    """Which strategy orders wait for the operator from the next one on: off, entries, all."""

    mode: str


@dataclass(frozen=True, slots=True)
class HungUp(Command):
    """The embedded console's terminal went away (``why``: SIGHUP, "terminal lost"), and what
    the engine does about it (``[console] on_hangup``): journaled and audited as ``who``'s.

    ``keep-running`` changes nothing in the trading; ``pause`` also pauses new entries (exits,
    breakers and flatten go on); ``stop`` is followed by the usual ``Stop``."""

    policy: str = "keep-running"  # one of HANGUP_POLICIES
    why: str = "terminal lost"


@dataclass(frozen=True, slots=True)
class Stop(Command):
    """Stop after the bar in hand; nothing is sent on the way out."""

    reason: str = "stopped"


COMMANDS: dict[str, type[Command]] = {
    cls.__name__: cls
    for cls in (
        Pause,
        Resume,
        PreviewFlatten,
        Flatten,
        ResetBreaker,
        PreviewSwitch,
        SwitchAccount,
        SetDemoSpeed,
        SkipToSignal,
        ResolveReconciliation,
        ConfirmOrder,
        SkipOrder,
        SetConfirmMode,
        HungUp,
        Stop,
    )
}


def command_to_data(command: Command) -> dict[str, Any]:
    """``{"command": name, ...fields}``: JSON-compatible."""
    return {"command": type(command).__name__, **to_data(command)}


def command_from_data(raw: dict[str, Any]) -> Command:
    """The inverse of ``command_to_data``; ValueError for a command this version lacks."""
    fields = dict(raw)
    name = fields.pop("command", None)
    cls = COMMANDS.get(str(name))
    if cls is None:
        raise ValueError(f"unknown command {name!r}")
    if cls is ResolveReconciliation and fields.get("choice") not in CHOICES:
        raise ValueError(
            f"choice must be one of {', '.join(CHOICES)}, not {fields.get('choice')!r}"
        )
    return from_data(cls, fields)
