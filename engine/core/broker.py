"""The broker interface every venue implements (SimBroker, AlpacaBroker).

Order updates and fills arrive asynchronously through the listener the engine registers,
as engine events (``OrderUpdated``, ``OrderFilled``); the engine does not know which broker it
has. A conformance suite in tests/ runs the same checks against every implementation.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol, runtime_checkable

from tapewatch.engine.model.events import Event
from tapewatch.engine.model.types import AccountSnapshot, Bar, Order, OrderRequest, Position
from tapewatch.engine.settings.errors import TapewatchError

BrokerListener = Callable[[Event], None]


class BrokerError(TapewatchError):
    """The broker could not be reached or answered with an error.

    ``retryable`` says whether the same call may work later (timeouts, 5xx, 429)."""

    def __init__(self, message: str, *, status: int | None = None, retryable: bool = False) -> None:
        super().__init__(message)
        self.status = status
        self.retryable = retryable


class DuplicateClientOrderId(BrokerError):
    """The broker already has an order with this client order id: look it up, never resend."""

    def __init__(self, client_order_id: str) -> None:
        super().__init__(f"client_order_id must be unique: {client_order_id}", status=422)
        self.client_order_id = client_order_id


@runtime_checkable
class FreshAccount(Protocol):
    """A broker whose ``get_account`` answers from a cache (Alpaca's account book) can also
    read the account now; reconciliation needs the fresh view."""

    async def fetch_account(self) -> AccountSnapshot: ...


class Broker(Protocol):
    name: str

    def set_listener(self, listener: BrokerListener) -> None:
        """Register the callback that receives OrderUpdated / OrderFilled events."""
        ...

    async def on_bar(self, bar: Bar) -> None:
        """Market data passed by: a simulated broker fills pending orders and marks to market."""
        ...

    async def submit_order(self, request: OrderRequest) -> Order:
        """Send a market order; returns the acknowledged (usually not yet filled) order.

        Rejections come back as an ``Order`` with status REJECTED and a reason, not as an
        exception; exceptions mean the outcome is unknown and the caller must look the order up.
        """
        ...

    async def get_order_by_client_id(self, client_order_id: str) -> Order | None: ...

    async def open_orders(self) -> list[Order]: ...

    async def cancel_order(self, client_order_id: str) -> Order | None:
        """Cancel one open order; returns its view after the cancel (None if unknown). An order
        that filled first stays filled: the answer says so."""
        ...

    async def cancel_all_orders(self) -> list[Order]:
        """Cancel every open order; returns the orders as cancelled."""
        ...

    async def get_positions(self) -> dict[str, Position]: ...

    async def get_account(self) -> AccountSnapshot: ...

    async def close(self) -> None: ...
