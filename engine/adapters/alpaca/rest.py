"""Every alpaca-py REST call runs here: in a worker thread, with a timeout, under one retry policy.

alpaca-py's REST is synchronous ``requests`` with no timeout and its own hidden retries
(``time.sleep(3)`` three times on 429 and 504, *including* ``POST /v2/orders``). So each worker
thread gets its own client (a ``requests.Session`` is not thread-safe by contract) whose session
has a default timeout and counts every request into the ``RequestBudget``; the SDK's retries are
switched off by setting ``_retry = 0`` after construction (its loop is ``while retry >= 0``: 0
means exactly one attempt, while -1 would skip the request and return None), and tenacity owns
retries instead: exponential backoff with jitter (1, 2, 4 … capped at 60 s) on 429, a few quick
retries of *safe* calls on 5xx, timeouts and connection errors, and nothing at all for an order
POST (the broker looks an unanswered order up by client order id instead).

A dedicated, bounded thread pool (not the loop's default executor) keeps REST from starving
other blocking work and can be shut down with the broker.
"""

from __future__ import annotations

import asyncio
import random
import threading
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import requests
from tenacity import AsyncRetrying, RetryCallState

from tapewatch.engine.adapters.alpaca.errors import RequestTimeout, classify
from tapewatch.engine.adapters.alpaca.rate import RequestBudget
from tapewatch.engine.core.broker import BrokerError

C = TypeVar("C")
T = TypeVar("T")

DEFAULT_TIMEOUT = 10.0


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How often and how patiently a failed call is tried again."""

    rate_limit_attempts: int = 6  # 1 + 5 retries: waits 1, 2, 4, 8, 16 s (plus jitter)
    server_error_attempts: int = 3  # safe calls only: 5xx, timeouts, connection errors
    base: float = 1.0  # first wait after a 429, doubled each time
    server_error_base: float = 0.5
    cap: float = 60.0
    jitter: float = 0.25  # up to +25% of each wait, so clients do not retry in lockstep

    def wait(self, status: int | None, attempt: int, rng: random.Random) -> float:
        first = self.base if status == 429 else self.server_error_base
        delay = first * 2 ** (attempt - 1)
        return min(self.cap, delay * (1.0 + rng.uniform(0.0, self.jitter)))

    def attempts(self, status: int | None) -> int:
        return self.rate_limit_attempts if status == 429 else self.server_error_attempts


class TimedSession(requests.Session):
    """A requests session with a default timeout that reports every request to the budget."""

    def __init__(self, timeout: float, budget: RequestBudget) -> None:
        super().__init__()
        self.default_timeout = timeout
        self.budget = budget

    def request(self, method: Any, url: Any, *args: Any, **kwargs: Any) -> requests.Response:
        kwargs.setdefault("timeout", self.default_timeout)
        self.budget.record()
        response = super().request(method, url, *args, **kwargs)
        self.budget.observe_headers(response.headers)
        return response


def harden(client: C, *, timeout: float, budget: RequestBudget) -> C:
    """Give an SDK REST client our session and switch its hidden blocking retries off."""
    target: Any = client
    target._session = TimedSession(timeout, budget)
    target._retry = 0  # one attempt (``while retry >= 0``); the SDK never sleeps
    target._retry_wait = 0
    target._retry_codes = []
    return client


class RestCaller(Generic[C]):
    """Runs calls ``fn(client)`` on per-thread SDK clients built by ``factory``."""

    def __init__(
        self,
        name: str,
        factory: Callable[[], C],
        *,
        budget: RequestBudget,
        timeout: float = DEFAULT_TIMEOUT,
        policy: RetryPolicy | None = None,
        workers: int = 4,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        rng: random.Random | None = None,
        secrets: tuple[str, ...] = (),
    ) -> None:
        self.name = name
        self.budget = budget
        self.timeout = timeout
        self.policy = policy or RetryPolicy()
        self.errors: Counter[str] = Counter()
        self._factory = factory
        self._local = threading.local()
        self._pool = ThreadPoolExecutor(workers, thread_name_prefix=f"tapewatch-{name}-rest")
        self._sleep = sleep
        self._rng = rng or random.Random()
        self._secrets = secrets
        self._closed = False
        # Told each successful call's round trip (seconds): the engine's rest_roundtrip stage.
        self.on_roundtrip: Callable[[float], None] | None = None
        # Told each call's outcome (None, or its error): the broker's REST health.
        self.on_outcome: Callable[[BrokerError | None], None] | None = None

    # -- the worker side ------------------------------------------------------------------

    def _client(self) -> C:
        client: C | None = getattr(self._local, "client", None)
        if client is None:
            client = harden(self._factory(), timeout=self.timeout, budget=self.budget)
            self._local.client = client
        return client

    def _run(self, fn: Callable[[C], T]) -> T:
        return fn(self._client())

    # -- the loop side --------------------------------------------------------------------

    async def _attempt(self, what: str, fn: Callable[[C], T]) -> T:
        if self._closed:
            raise BrokerError(f"{what}: the Alpaca connection is closed")
        loop = asyncio.get_running_loop()
        future = loop.run_in_executor(self._pool, self._run, fn)
        # requests' timeout is per socket operation; this backstop bounds the whole call.
        deadline = 2 * self.timeout + 0.5
        started = time.perf_counter()
        try:
            result = await asyncio.wait_for(future, deadline)
        except TimeoutError as exc:
            self.errors["timeout"] += 1
            timeout = RequestTimeout(f"{what} timed out after {deadline:g} s", retryable=True)
            self._told(timeout)
            raise timeout from exc
        except Exception as exc:  # every SDK / requests failure, classified once
            error = classify(exc, what, secrets=self._secrets)
            self.errors[_bucket(exc, error)] += 1
            self._told(error)
            raise error from None
        self._told(None)
        if self.on_roundtrip is not None:
            self.on_roundtrip(time.perf_counter() - started)
        return result

    def _told(self, error: BrokerError | None) -> None:
        if self.on_outcome is not None:
            self.on_outcome(error)

    async def once(self, what: str, fn: Callable[[C], T]) -> T:
        """Exactly one attempt (an order POST): the caller decides what an error means."""
        return await self._attempt(what, fn)

    async def call(self, what: str, fn: Callable[[C], T], *, safe: bool = True) -> T:
        """Call with retries: 429 always (nothing happened), the rest only when ``safe``.

        The first attempt runs outside tenacity (its bookkeeping costs ~0.2 ms a call, paid
        now only by calls that fail); tenacity then owns every retry, its attempt numbers
        offset by the attempt already made.
        """
        policy = self.policy

        def should_retry(exc: BaseException | None) -> bool:
            if not isinstance(exc, BrokerError) or not exc.retryable:
                return False
            return exc.status == 429 or safe

        try:
            return await self._attempt(what, fn)
        except BrokerError as first:
            if not should_retry(first) or policy.attempts(first.status) <= 1:
                raise
            await self._sleep(policy.wait(first.status, 1, self._rng))

        def status_of(state: RetryCallState) -> int | None:
            exc = state.outcome.exception() if state.outcome else None
            return exc.status if isinstance(exc, BrokerError) else None

        def retry(state: RetryCallState) -> bool:
            return should_retry(state.outcome.exception() if state.outcome else None)

        def stop(state: RetryCallState) -> bool:
            return state.attempt_number + 1 >= policy.attempts(status_of(state))

        def wait(state: RetryCallState) -> float:
            return policy.wait(status_of(state), state.attempt_number + 1, self._rng)

        retrying = AsyncRetrying(retry=retry, stop=stop, wait=wait, sleep=self._sleep, reraise=True)
        result: T | None = None
        async for attempt in retrying:
            with attempt:
                result = await self._attempt(what, fn)
        return result  # type: ignore[return-value]

    @property
    def request_count(self) -> int:
        return self.budget.total

    def close(self) -> None:
        """No new calls; running ones finish (bounded by the session timeout) on their own."""
        self._closed = True
        self._pool.shutdown(wait=False, cancel_futures=True)


def _bucket(exc: BaseException, error: BrokerError) -> str:
    if error.status is not None:
        return str(error.status)
    if isinstance(exc, requests.Timeout):
        return "timeout"
    if isinstance(exc, requests.ConnectionError):
        return "connection"
    return "other"
