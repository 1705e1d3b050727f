"""A local Alpaca-compatible sandbox: trading REST, market-data REST and both websockets.

Speaks the wire protocol of alpaca-py 0.44 (see /work/shared/ALPACA-WIRE.md) on 127.0.0.1,
with a deterministic per-seed market and fault switches, so the Alpaca adapter is tested with
the real SDK and users can rehearse a session without an account (``tapewatch sandbox``).
"""

from tapewatch.sandbox.config import SandboxConfig, SandboxKey
from tapewatch.sandbox.server import Sandbox, SandboxThread, run_sandbox

__all__ = ["Sandbox", "SandboxConfig", "SandboxKey", "SandboxThread", "run_sandbox"]
