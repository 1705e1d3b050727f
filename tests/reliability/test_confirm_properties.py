"""The money path under confirm mode: random answers, silences and timeouts.

Hypothesis interleaves closed bars (a price cycle that buys and sells every seven bars) with
the operator's yes and no, sent through the engine API, and with time passing on the engine's
SimClock (firing the deadline timers). Whatever the order, after every step:

- no entry is ever sent at or after its deadline (skipped, never late), and none twice;
- no order of any kind is intended twice (one client order id, one intent);
- an answer that races the deadline's timer (time has passed it, the timer's task has not run)
  changes nothing of the above;
- every exit that was held is sent: by the operator's yes or at its deadline at the latest
  (after the run, time is moved past every deadline and each held exit must have gone out).

Seeded (``derandomize=True``); nothing reads the wall clock.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from dataclasses import replace
from datetime import datetime, timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tapewatch.engine.api.commands import ConfirmOrder, SkipOrder
from tapewatch.engine.api.handle import InProcessHandle
from tapewatch.engine.core.confirm import HeldOrder
from tapewatch.engine.model.events import Event, OrderIntended
from tapewatch.engine.model.types import Intent
from tapewatch.engine.settings.config import ConfirmConfig
from tests.helpers import STEP, bars_from_closes, make_engine, small_config

WHO = "tester@local"
CYCLE = (1.0, 1.0, 1.0, 1.0, -0.1, -0.1, -0.1)
TIMEOUT = 30.0

PROPERTY = settings(
    derandomize=True,
    deadline=None,
    max_examples=120,
    suppress_health_check=[HealthCheck.too_slow],
)

Step = tuple[str, int]
SECONDS = st.sampled_from((1, 10, 29, 30, 31, 45))  # on the engine clock, about the deadline
reaction = st.one_of(
    st.tuples(st.sampled_from(("yes", "no")), st.integers(0, 1)),
    st.tuples(st.just("wait"), SECONDS),
    st.tuples(st.just("race"), SECONDS),  # the same, but the next step beats the timer
)
steps = st.lists(st.lists(reaction, max_size=3), min_size=3, max_size=30).map(
    lambda rounds: [step for answers in rounds for step in [("bar", 0), *answers]]
)
"""Rounds of a closed bar and what follows it before the next: answers and time passing."""


def _closes(count: int) -> list[float]:
    closes, price = [], 100.0
    for i in range(count):
        price += CYCLE[i % len(CYCLE)] * 0.5
        closes.append(price)
    return closes


async def _turns() -> None:
    for _ in range(5):
        await asyncio.sleep(0)  # the deadline timers' tasks run


async def _run(mode: str, plan: list[Step]) -> tuple[dict[str, HeldOrder], dict[str, datetime]]:
    config = replace(small_config(), confirm=ConfirmConfig(mode, TIMEOUT))
    engine, _, clock = make_engine(config)
    seen: list[Event] = []
    engine.add_sink(seen.append)
    handle = InProcessHandle(engine, alerts=False)
    await engine.start()
    every = bars_from_closes(_closes(400))
    bars, more = every[:20], iter(every[20:])  # the indicators warm up on the first 20
    for bar in bars:
        clock.advance_to(bar.ts + STEP)
        await engine.on_bar(bar)
    await engine.expire_held()
    engine.hold.clear()  # what the warm-up held is not part of the plan
    held: dict[str, HeldOrder] = {}
    sent_at: dict[str, datetime] = {}

    def check() -> None:
        for h in engine.hold.pending:
            held.setdefault(h.client_order_id, h)
        counts = Counter(e.request.client_order_id for e in seen if isinstance(e, OrderIntended))
        assert all(n == 1 for n in counts.values()), counts
        for event in seen:
            if isinstance(event, OrderIntended):
                sent_at.setdefault(event.request.client_order_id, event.ts)
        for cid, when in sent_at.items():
            h = held.get(cid)
            if h is not None and h.request.intent is Intent.ENTRY:
                assert when < h.deadline, f"{cid} sent at {when}, after its deadline {h.deadline}"

    next_close = bars[-1].ts + STEP
    for action, arg in plan:
        if action == "bar":
            bar = next(more)
            next_close = bar.ts + STEP
            clock.advance_to(next_close)  # as the replay feed does: no turn before the bar
            await engine.on_bar(bar)
        elif action in ("wait", "race"):
            later = clock.now() + timedelta(seconds=arg)
            clock.advance_to(min(later, next_close + STEP - timedelta(seconds=1)))
            if action == "wait":
                await _turns()  # "race": the next step runs before the deadline timer's task
        else:
            pending = engine.hold.pending
            if pending:
                target = pending[min(arg, len(pending) - 1)].client_order_id
                command = ConfirmOrder if action == "yes" else SkipOrder
                await handle.send(command(who=WHO, client_order_id=target))
        check()
    clock.advance_to(clock.now() + timedelta(seconds=TIMEOUT + 1))  # past every deadline
    await _turns()
    await engine.expire_held()
    check()
    assert not engine.hold.pending
    for cid, h in held.items():
        if h.request.intent is Intent.EXIT:
            assert cid in sent_at, f"held exit {cid} was never sent"
    return held, sent_at


@PROPERTY
@given(mode=st.sampled_from(("entries", "all")), plan=steps)
def test_no_entry_late_or_twice_and_every_exit_sent(mode: str, plan: list[Step]) -> None:
    asyncio.run(_run(mode, plan))


def test_the_cycle_holds_entries_and_exits() -> None:
    """The property is not vacuous: the cycle holds entries and exits, and a yes sends them."""
    plan: list[Step] = [("bar", 0), ("yes", 0)] * 10
    held, sent = asyncio.run(_run("all", plan))
    intents = [h.request.intent for h in held.values()]
    assert Intent.ENTRY in intents and Intent.EXIT in intents
    assert all(cid in sent for cid in held)
