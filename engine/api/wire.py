"""The served engine's wire: length-prefixed JSON frames, a versioned hello, one socket path.

Each frame is a 4-byte big-endian length and that many bytes of one UTF-8 JSON object with a
``type``. The payloads are the API's own data forms (``command_to_data``, ``reply_to_data``,
``snapshot_to_data``, ``engine.model.serde`` for events), so a command, a snapshot field or an
event someone adds crosses the socket with no code here. ``PROTOCOL`` names the frame
vocabulary; the snapshot's ``SCHEMA`` is checked with it, because a client that cannot read
the engine's snapshot is as useless as one that cannot read its frames.

The socket lives in the mode's folder of the data directory (``<data dir>/paper/engine.sock``),
beside the writer lock that makes its engine the only one there. A Unix socket's path is at
most 107 bytes; a longer one is reached through ``/proc/self/fd`` of its folder.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import struct
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from tapewatch.engine import __version__
from tapewatch.engine.api.snapshot import SCHEMA
from tapewatch.engine.model.events import EVENT_TYPES, Event
from tapewatch.engine.model.serde import from_data, to_data
from tapewatch.engine.model.types import Mode
from tapewatch.engine.settings.errors import TapewatchError

PROTOCOL = 2  # 2: the hello's read_only/take_control, take_control requests, control frames
SOCKET_NAME = "engine.sock"
HEADER = struct.Struct(">I")
MAX_FRAME = 64 * 1024 * 1024  # a snapshot with a long chart is a few MB; more is not ours
SUN_PATH_MAX = 107  # bytes of a Unix socket path, less its terminating NUL (Linux)
SERVED_MODES = (Mode.PAPER, Mode.LIVE, Mode.DEMO)

ATTACH = "attach"  # snapshots and events pushed, commands allowed
STATUS = "status"  # questions only: not an attached client
ROLES = (ATTACH, STATUS)


class ProtocolError(TapewatchError):
    """The peer sent something that is not this protocol (a cut frame, not JSON, no type)."""


class ProtocolMismatch(TapewatchError):
    """The engine and this client speak different protocol versions; one line with both."""


class EngineUnavailable(TapewatchError):
    """No engine answers on the socket (none running, a stale socket file, a hung engine)."""


def socket_path(data_dir: Path, mode: Mode) -> Path:
    """Where the engine trading ``mode`` for ``data_dir`` serves its API."""
    return Path(data_dir) / mode.value.lower() / SOCKET_NAME


def version_text(protocol: int, schema: int, version: str) -> str:
    return f"protocol {protocol} (snapshot schema {schema}, tapewatch {version})"


def mismatch_message(engine: tuple[int, int, str], client: tuple[int, int, str]) -> str:
    """The one line both sides show when the versions differ: both versions and the fix."""
    return (
        f"the engine speaks {version_text(*engine)} but this client speaks "
        f"{version_text(*client)}: attach with the tapewatch the engine runs, or restart the "
        "engine with this one"
    )


def ours() -> tuple[int, int, str]:
    return PROTOCOL, SCHEMA, __version__


def encode(message: dict[str, Any]) -> bytes:
    """One frame: the length, then compact JSON."""
    body = json.dumps(message, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    if len(body) > MAX_FRAME:
        raise ProtocolError(f"a {message.get('type')} frame of {len(body)} bytes is too large")
    return HEADER.pack(len(body)) + body


async def read_message(reader: asyncio.StreamReader) -> dict[str, Any] | None:
    """The next message, or None when the peer closed between frames."""
    try:
        header = await reader.readexactly(HEADER.size)
    except asyncio.IncompleteReadError as exc:
        if not exc.partial:
            return None
        raise ProtocolError("the connection closed in the middle of a frame") from None
    (size,) = HEADER.unpack(header)
    if size > MAX_FRAME:
        raise ProtocolError(
            f"a frame of {size} bytes is over the {MAX_FRAME} limit: not a tapewatch peer"
        )
    try:
        body = await reader.readexactly(size)
    except asyncio.IncompleteReadError:
        raise ProtocolError("the connection closed in the middle of a frame") from None
    try:
        message = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise ProtocolError("a frame is not UTF-8 JSON: not a tapewatch peer") from None
    if not isinstance(message, dict) or not isinstance(message.get("type"), str):
        raise ProtocolError("a frame is not an object with a type: not a tapewatch peer")
    return message


def event_to_data(event: Event) -> dict[str, Any]:
    return {"kind": event.kind, "event": to_data(event)}


def event_from_data(raw: dict[str, Any]) -> Event:
    """The event of ``raw``; ValueError for a kind or field this version does not know."""
    cls = EVENT_TYPES.get(str(raw.get("kind")))
    if cls is None:
        raise ValueError(f"unknown event kind {raw.get('kind')!r}")
    event: Event = from_data(cls, raw["event"])
    return event


@contextlib.contextmanager
def reachable(path: Path) -> Iterator[str]:
    """A path string short enough to bind or connect: ``path`` itself, or for a long one its
    folder opened and named through ``/proc/self/fd`` for the duration."""
    text = os.fsencode(path)
    if len(text) <= SUN_PATH_MAX:
        yield str(path)
        return
    try:
        fd = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError as exc:
        raise EngineUnavailable(f"cannot open {path.parent}: {exc.strerror or exc}") from None
    try:
        short = f"/proc/self/fd/{fd}/{path.name}"
        if not os.path.isdir(f"/proc/self/fd/{fd}"):
            raise EngineUnavailable(
                f"the socket path {path} is over {SUN_PATH_MAX} bytes; choose a shorter --data-dir"
            )
        yield short
    finally:
        os.close(fd)
