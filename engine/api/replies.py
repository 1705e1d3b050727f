"""What a command gets back: ``Accepted`` (with what happened) or ``Refused`` (with why).

A refusal is an answer, not an exception: it crosses a process boundary as data and the
console shows its reason as it is. Payloads are the few structured answers a screen needs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from tapewatch.engine.model.serde import from_data, to_data
from tapewatch.engine.model.types import Mode, Order, OrderRequest


@dataclass(frozen=True, slots=True)
class FlattenPreview:
    orders: tuple[OrderRequest, ...]
    in_flight: int  # open orders that would be cancelled first


@dataclass(frozen=True, slots=True)
class FlattenSent:
    orders: tuple[Order, ...]


@dataclass(frozen=True, slots=True)
class SwitchPreview:
    mode: Mode
    account: str  # one line naming the account and endpoint


@dataclass(frozen=True, slots=True)
class AccountSwitched:
    mode: Mode
    account: str


@dataclass(frozen=True, slots=True)
class SpeedChanged:
    speed: float


@dataclass(frozen=True, slots=True)
class ConfirmModeSet:
    mode: str  # "off", "entries" or "all"


@dataclass(frozen=True, slots=True)
class HeldOrderSent:
    """A confirmed order reached the broker (``order``), or the gate stopped it (None)."""

    order: Order | None


Payload = (
    FlattenPreview
    | FlattenSent
    | SwitchPreview
    | AccountSwitched
    | SpeedChanged
    | ConfirmModeSet
    | HeldOrderSent
)
PAYLOADS: dict[str, type[Any]] = {
    cls.__name__: cls
    for cls in (
        FlattenPreview,
        FlattenSent,
        SwitchPreview,
        AccountSwitched,
        SpeedChanged,
        ConfirmModeSet,
        HeldOrderSent,
    )
}


@dataclass(frozen=True, slots=True)
class Accepted:
    detail: str = ""
    payload: Payload | None = None


@dataclass(frozen=True, slots=True)
class Refused:
    reason: str  # one sentence for the operator, shown as it is: what is wrong, what to do


Reply = Accepted | Refused


def reply_to_data(reply: Reply) -> dict[str, Any]:
    if isinstance(reply, Refused):
        return {"reply": "Refused", "reason": reply.reason}
    payload = reply.payload
    return {
        "reply": "Accepted",
        "detail": reply.detail,
        "payload": None
        if payload is None
        else {"kind": type(payload).__name__, **to_data(payload)},
    }


def reply_from_data(raw: dict[str, Any]) -> Reply:
    kind = raw.get("reply")
    if kind == "Refused":
        return Refused(str(raw["reason"]))
    if kind != "Accepted":
        raise ValueError(f"unknown reply {kind!r}")
    payload = raw.get("payload")
    if payload is None:
        return Accepted(str(raw.get("detail", "")))
    fields = dict(payload)
    cls = PAYLOADS.get(str(fields.pop("kind", None)))
    if cls is None:
        raise ValueError(f"unknown reply payload {payload.get('kind')!r}")
    return Accepted(str(raw.get("detail", "")), from_data(cls, fields))
