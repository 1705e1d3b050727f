"""Coalescing: many changes between two frames are one redraw; nothing is drawn without one.

The pacing objects take an injected clock, so these tests never depend on how fast the machine
is; the app-level ones count redraws, never time them.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from tapewatch.console.app import TapewatchApp
from tapewatch.console.pacing import FramePacer, StallProbe, Throttle
from tapewatch.engine.model.events import Notice
from tests.console.conftest import drawn, make_app, make_session, until

SLIDE = [10.5, 10.0, 9.95]


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_many_requests_before_a_frame_ask_for_one_timer() -> None:
    clock = FakeClock()
    pacer = FramePacer(interval=0.1, clock=clock)
    delays = [pacer.request() for _ in range(50)]
    assert delays[0] == 0.0  # nothing drawn yet: at once
    assert delays[1:] == [None] * 49  # all ride on that frame


def test_a_frame_soon_after_the_last_waits_out_the_interval() -> None:
    clock = FakeClock()
    pacer = FramePacer(interval=0.1, clock=clock)
    pacer.request()
    pacer.begin()
    clock.now += 0.03
    assert pacer.request() == pytest.approx(0.07)  # 10 frames a second at most
    pacer.begin()
    clock.now += 5.0  # long after: at once again
    assert pacer.request() == 0.0


def test_a_pane_owed_a_frame_asks_for_it_no_sooner_than_its_throttle() -> None:
    clock = FakeClock()
    pacer = FramePacer(interval=0.1, clock=clock)
    pacer.request()
    pacer.begin()
    clock.now += 0.2
    assert pacer.request(at_least=0.4) == 0.4


def test_throttle_says_how_long_until_a_pane_may_redraw() -> None:
    clock = FakeClock()
    throttle = Throttle(0.5, clock=clock)
    assert throttle.wait() == 0.0  # never drawn
    throttle.drawn()
    clock.now += 0.2
    assert throttle.wait() == pytest.approx(0.3)
    clock.now += 0.3
    assert throttle.wait() == 0.0


def test_stall_probe_summary_is_p99_and_max() -> None:
    probe = StallProbe()
    assert probe.summary() is None
    probe.samples.extend([0.001] * 99 + [0.2])
    p99, worst = probe.summary() or (0.0, 0.0)
    assert p99 == 0.001 and worst == 0.2


async def test_stall_probe_sleeps_only_while_changes_arrive() -> None:
    probe = StallProbe(idle=60.0)
    task = asyncio.create_task(probe.run())
    try:
        await asyncio.sleep(0.05)  # never woken: parked, so no sample (and no wake-ups)
        assert not probe.samples
        probe.wake()
        await asyncio.sleep(0.05)  # its 10 ms sleeps come due before this one
        assert probe.samples
    finally:
        task.cancel()


def _count_draws(app: TapewatchApp) -> list[int]:
    """Wrap the app's ``_draw`` to record each snapshot version it draws."""
    versions: list[int] = []
    original = app._draw

    def counting(snap, **kwargs):  # type: ignore[no-untyped-def]
        versions.append(snap.version)
        original(snap, **kwargs)

    app._draw = counting  # type: ignore[method-assign]
    return versions


async def test_fifty_changes_between_frames_are_one_redraw(tmp_path: Path) -> None:
    session = make_session(tmp_path, SLIDE)
    app = make_app(session, measured=False)
    async with app.run_test(size=(120, 36)) as pilot:
        await drawn(pilot, session)
        await pilot.pause(0.2)
        draws = _count_draws(app)
        engine = session.engine
        for n in range(50):  # no await between them: all before the next frame
            engine.bus.publish(Notice(ts=engine.clock.now(), level="info", message=f"tick {n}"))
            engine.state.touch()
        await drawn(pilot, session)
        await pilot.pause(0.3)  # room for any further (wrong) frame
        assert len(draws) == 1, draws
        assert app.drawn_version == engine.state.version


async def test_a_throttled_pane_gets_the_newest_picture_on_its_turn(tmp_path: Path) -> None:
    session = make_session(tmp_path, SLIDE)
    app = make_app(session, measured=False)
    async with app.run_test(size=(120, 36)) as pilot:
        await drawn(pilot, session)
        latency = app._latency
        clock = FakeClock()
        app._throttles[latency] = Throttle(latency.EVERY, clock=clock)
        app._throttles[latency].drawn()  # just drawn, as far as its throttle knows
        engine = session.engine
        engine.state.touch()
        app._request_frame()
        await drawn(pilot, session)
        assert latency in app._owed  # not yet its turn: owed, not dropped
        assert latency.last_view is not None
        assert latency.last_view.state.state_version < engine.state.version
        clock.now += latency.EVERY  # its turn comes
        await until(pilot, lambda: latency not in app._owed, "the owed latency redraw")
        assert latency.last_view.state.state_version == engine.state.version
