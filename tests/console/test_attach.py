"""``tapewatch attach`` in a Pilot: the console over a served demo engine on this event loop.

The engine is the offline demo served by ``run_headless(serve_at=...)`` with an injected replay
clock (``tests.test_engine_socket.served``); the console is ``TapewatchApp(attach=...)`` over
a real ``SocketHandle`` on its Unix socket. Checked here: the same panes draw from the socket,
q detaches and the engine trades on (no Stop), a second console is a read-only viewer whose
command keys send nothing (and the engine refuses a viewer's command frame itself), taking
control hands over (journaled, both told), a lost socket raises the banner and a restarted
engine is followed again, and another protocol version is one line with exit 2.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from tapewatch.console.app import TapewatchApp
from tapewatch.console.attach import DETACHED, Attachment
from tapewatch.console.commands import STOPPED_ENGINE
from tapewatch.engine.api.commands import Pause, command_to_data
from tapewatch.engine.api.replies import Refused, reply_from_data
from tapewatch.engine.api.socket_client import ControlChange, SocketHandle
from tapewatch.engine.api.types import OperatorAction
from tapewatch.engine.api.wire import PROTOCOL, encode, read_message
from tests.console.conftest import shown, until
from tests.test_engine_socket import WAIT, raw_hello, served

SIZE = (120, 40)


def attach_app(path: Path, **options: Any) -> TapewatchApp:
    read_only = bool(options.pop("read_only", False))
    protocol = int(options.pop("protocol", PROTOCOL))

    async def connect(take_control: bool) -> SocketHandle:
        return await SocketHandle.connect(
            path, read_only=read_only, take_control=take_control, protocol=protocol
        )

    attachment = Attachment(connect, backoff=options.pop("backoff", (0.05,)), **options)
    return TapewatchApp(attach=attachment, measured=False)


def messages(app: TapewatchApp) -> list[str]:
    """Every notice the console gave (the activity pane keeps them; toasts come and go)."""
    return [e.text for e in app._activity.entries if e.kind == "notice"]


async def test_attach_draws_the_same_panes_from_the_socket_and_q_detaches(tmp_path: Path) -> None:
    async with served(tmp_path) as engine:
        await asyncio.wait_for(_bars(engine, 3), WAIT)
        app = attach_app(engine.path)
        async with app.run_test(size=SIZE) as pilot:
            await until(pilot, lambda: app.drawn_version >= 0, "the first frame")
            assert "DEMO" in shown(app._header) and "SPY" in shown(app._header)
            drawn = {p.id for p in app._panes if p.display}
            assert drawn == {
                "bars",
                "indicators",
                "positions",
                "latency",
                "orders",
                "breakers",
                "activity",
            }
            assert "you control it" in app._banner.text  # the first console controls
            assert len(engine.server.clients) == 1
            before = engine.bars
            await until(pilot, lambda: app.drawn_version > 1 and engine.bars > before, "events")
            await pilot.press("q")
            await until(pilot, lambda: not app.is_running, "the detach")
        assert app.detached == DETACHED and app.return_code == 0
        # The engine keeps trading: no Stop was sent, bars keep coming, nobody is attached.
        await until_async(lambda: not engine.server.clients, "the server saw it go")
        bars = engine.bars
        await until_async(lambda: engine.bars > bars + 2, "more bars after the detach")
        assert not engine.run.done()
        assert engine.session.engine.last_action is None or (
            engine.session.engine.last_action.action != "quit"
        )


async def test_a_second_console_is_read_only_and_its_keys_send_nothing(tmp_path: Path) -> None:
    async with served(tmp_path) as engine:
        controller = await SocketHandle.connect(engine.path)
        app = attach_app(engine.path)
        try:
            async with app.run_test(size=SIZE, notifications=True) as pilot:
                await until(pilot, lambda: app.drawn_version >= 0, "the first frame")
                assert "a viewer, " in app._banner.text and "attach #1" in app._banner.text
                await pilot.press("p")
                await pilot.pause(0.2)
                assert any(m.startswith("read-only: ") for m in messages(app)), messages(app)
                assert not engine.session.engine.state.paused  # nothing reached the engine
                for key in ("f", "ctrl+x"):  # no flatten dialog, no stop dialog either
                    await pilot.press(key)
                    await pilot.pause(0.1)
                    assert len(app.screen_stack) == 1, key
                assert not engine.run.done()
        finally:
            await controller.close()


async def test_the_engine_itself_refuses_a_viewers_command(tmp_path: Path) -> None:
    async with served(tmp_path) as engine:
        controller = await SocketHandle.connect(engine.path)
        reader, writer = await raw_hello(engine.path)  # a client that skips its own check
        try:
            assert (await read_message(reader) or {})["control"] is False  # welcome
            frame = {"type": "command", "id": 7, "command": command_to_data(Pause(who="x"))}
            writer.write(encode(frame))
            await writer.drain()
            while True:
                message = await asyncio.wait_for(read_message(reader), WAIT)
                assert message is not None
                if message["type"] == "reply":
                    break
            reply = reply_from_data(message["reply"])
            assert isinstance(reply, Refused) and reply.reason.startswith("read-only: ")
            assert "attach #1" in reply.reason  # it names who controls
            assert not engine.session.engine.state.paused
        finally:
            writer.close()
            await controller.close()


async def test_take_control_hands_over_journaled_and_both_are_told(tmp_path: Path) -> None:
    async with served(tmp_path) as engine:
        actions: list[OperatorAction] = []
        engine.session.engine.bus.add_sink(
            lambda e: actions.append(e) if isinstance(e, OperatorAction) else None
        )
        first = attach_app(engine.path)
        second = attach_app(engine.path)
        async with (
            first.run_test(size=SIZE, notifications=True) as one,
            second.run_test(size=SIZE, notifications=True) as two,
        ):
            await until(one, lambda: first.drawn_version >= 0, "the first console")
            await until(two, lambda: second.drawn_version >= 0, "the second console")
            a, b = first._attachment, second._attachment
            assert a is not None and b is not None and a.handle and b.handle
            assert a.handle.control and not b.handle.control
            await two.press("C")
            await until(two, lambda: bool(b.handle and b.handle.control), "the handover")
            await until(one, lambda: not (a.handle and a.handle.control), "the old one told")
            handed = [x for x in actions if x.action == "take_control"]
            assert len(handed) == 1 and "attach #2" in handed[0].who
            assert "from" in handed[0].detail and "attach #1" in handed[0].detail
            await until(one, lambda: any("read-only" in m for m in messages(first)), "notice 1")
            await until(two, lambda: any("you control" in m for m in messages(second)), "2")
            await one.press("p")  # the old controller is a viewer now
            await two.pause(0.2)
            assert not engine.session.engine.state.paused
            await two.press("p")
            await until(two, lambda: engine.session.engine.state.paused, "the new one's pause")
            assert engine.session.engine.last_action is not None
            assert "attach #2" in engine.session.engine.last_action.who


async def test_the_controller_leaving_tells_the_viewers_nobody_controls(tmp_path: Path) -> None:
    async with served(tmp_path) as engine:
        controller = await SocketHandle.connect(engine.path)
        viewer = await SocketHandle.connect(engine.path)
        heard: list[ControlChange] = []
        viewer.on_control = heard.append
        try:
            assert viewer.controller is not None and "attach #1" in viewer.controller
            await controller.close()
            await until_async(lambda: bool(heard), "the viewers told")
            assert heard[0].controller is None and not heard[0].control
            assert "attach #1" in heard[0].notice and "nobody controls" in heard[0].notice
            refused = await viewer.send(Pause(who="x"))
            assert isinstance(refused, Refused) and "nobody controls" in refused.reason
            assert not isinstance(await viewer.take_control(), Refused)
            assert viewer.control and "attach #2" in (viewer.controller or "")
            assert not isinstance(await viewer.send(Pause(who="x")), Refused)
        finally:
            await viewer.close()


async def test_ctrl_x_stops_the_served_engine_only_when_confirmed(tmp_path: Path) -> None:
    async with served(tmp_path) as engine:
        app = attach_app(engine.path)
        async with app.run_test(size=SIZE, notifications=True) as pilot:
            await until(pilot, lambda: app.drawn_version >= 0, "the first frame")
            await pilot.press("ctrl+x")
            await until(pilot, lambda: len(app.screen_stack) == 2, "the confirmation")
            await pilot.press("n")
            await until(pilot, lambda: len(app.screen_stack) == 1, "dismissed")
            assert not engine.run.done()
            await pilot.press("ctrl+x")
            await until(pilot, lambda: len(app.screen_stack) == 2, "asked again")
            await pilot.press("y")
            await until(pilot, lambda: not app.is_running, "the detach after the stop")
        assert app.detached == STOPPED_ENGINE
        assert await asyncio.wait_for(engine.run, WAIT) == 0  # the engine ended its run


async def test_a_lost_socket_shows_the_banner_and_a_restarted_engine_is_followed(
    tmp_path: Path,
) -> None:
    app = attach_app(tmp_path / "demo" / "engine.sock")
    async with (
        served(tmp_path, seed=11) as engine,
        app.run_test(size=SIZE, notifications=True) as pilot,
    ):
        await until(pilot, lambda: app.drawn_version >= 0, "the first frame")
        await engine.session.engine.stop("restarting")
        await asyncio.wait_for(engine.run, WAIT)
        await until(pilot, lambda: "LOST THE ENGINE" in app._banner.text, "the banner")
        assert "-alarm" in app._banner.classes
        assert app._banner.display
        # A command while lost is a refusal naming it, never a crash.
        await pilot.press("p")
        await until(
            pilot, lambda: any("not connected to the engine" in m for m in messages(app)), "no"
        )
        async with served(tmp_path, seed=12) as again:
            await until(pilot, lambda: app._attachment.reconnects == 1, "the reconnect")  # type: ignore[union-attr]
            await until(pilot, lambda: "LOST" not in app._banner.text, "the banner clears")
            assert len(again.server.clients) == 1
            await until(pilot, lambda: app.drawn_version >= 0, "drawn again")
            await pilot.press("q")
            await until(pilot, lambda: not app.is_running, "the detach")
    assert app.detached == DETACHED


async def test_another_protocol_version_is_one_line_and_exit_2(tmp_path: Path) -> None:
    async with served(tmp_path) as engine:
        app = attach_app(engine.path, protocol=PROTOCOL + 1)
        async with app.run_test(size=SIZE) as pilot:
            await until(pilot, lambda: not app.is_running, "the refusal")
        assert app.return_code == 2
        line = app.error_message or ""
        assert line.startswith("tapewatch attach: error: ") and "\n" not in line
        assert f"protocol {PROTOCOL}" in line and f"protocol {PROTOCOL + 1}" in line


async def test_no_engine_at_the_first_connection_is_one_line_and_exit_1(tmp_path: Path) -> None:
    app = attach_app(tmp_path / "demo" / "engine.sock")
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: not app.is_running, "the failure")
    assert app.return_code == 1
    assert "no engine is serving" in (app.error_message or "")


async def _bars(engine: Any, count: int) -> None:
    while engine.bars < count:
        await asyncio.sleep(0.01)


async def until_async(check: Any, what: str) -> None:
    loop = asyncio.get_running_loop()
    end = loop.time() + WAIT
    while not check():
        assert loop.time() < end, f"timed out waiting for {what}"
        await asyncio.sleep(0.01)
